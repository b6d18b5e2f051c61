//! `tzstore copy SRC DST`: a consistent copy of a store while its writer
//! runs. The source is opened read-only (never locked, never changed); the
//! copy is written into a fresh directory beside DST through the library
//! (so it is a valid store by construction), verified with the store's
//! check and its record count, then renamed to DST. A failed copy leaves no
//! DST. What "consistent" means, per store:
//!
//! * block store: the cemented chunks and floating blocks of the one
//!   manifest state the read-only open saw (every block stored before the
//!   copy started is there; later ones are not), with the same chunk
//!   boundaries, history mode and metadata;
//! * cemented / floating store: the chunks / blocks as of the read-only
//!   open;
//! * index: the entries the read-only open replayed from `data` and the
//!   logs, i.e. every entry flushed before the copy started;
//! * indexed file: the keys of the generation the read-only open saw, each
//!   with the value it holds when read (a key replaced during the copy may
//!   carry its newer value);
//! * key/value store: a state the store had: the root digest of the copy
//!   must equal the source's digest taken just before or just after
//!   copying (values are plain files, so this is the snapshot proof); on a
//!   mismatch the copy is redone, up to 5 times, then `Conflict`;
//! * singleton: the value as read (a write replaces the file atomically).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tzstore::block::cemented::{Cemented, DEFAULT_LOG_SIZE};
use tzstore::block::floating::Floating;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::block::{Block, Hash};
use tzstore::check::CheckReport;
use tzstore::index::Index;
use tzstore::indexed_file::IndexedFile;
use tzstore::kv::{Kind, Kv};
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions, Result};

use crate::detect::{StoreKind, detect};
use crate::fmt::{hex, thousands};
use crate::progress::{Unit, bar};
use crate::{open, walk};

/// Copies of a kv store redone when it changed during the copy.
const KV_TRIES: usize = 5;

pub fn run(src: &Path, dst: &Path) -> Result<()> {
    let kind = detect(src)?;
    match std::fs::symlink_metadata(dst) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("stat", dst, e)),
        Ok(_) => {
            return Err(Error::invalid(format!(
                "{} already exists: copy writes a new store and never overwrites",
                dst.display()
            )));
        }
    }
    let name = dst
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} names no file", dst.display())))?;
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("create directory", &parent, e))?;
    let tmp = parent.join(format!(
        ".{}.tzstore-copy-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = copy_into(kind, src, &tmp).and_then(|summary| {
        std::fs::rename(&tmp, dst).map_err(|e| Error::io("rename", &tmp, e))?;
        Ok(summary)
    });
    // A singleton's writer locks `<file>.lock` beside the file: the copy's
    // lock file, under our fresh name, is ours to remove.
    let mut lock = tmp.clone().into_os_string();
    lock.push(".lock");
    let _ = std::fs::remove_file(PathBuf::from(lock));
    match result {
        Ok(summary) => {
            println!(
                "copied {kind} {} -> {}: {summary}; the copy checks clean",
                src.display(),
                dst.display()
            );
            Ok(())
        }
        Err(e) => {
            // The half-written copy is ours alone (a fresh name): drop it.
            let _ = if tmp.is_dir() {
                std::fs::remove_dir_all(&tmp)
            } else {
                std::fs::remove_file(&tmp)
            };
            Err(e)
        }
    }
}

fn rw() -> OpenOptions {
    OpenOptions::read_write()
}

/// Copies into `dst` (absent), verifies, and returns what was copied.
fn copy_into(kind: StoreKind, src: &Path, dst: &Path) -> Result<String> {
    let (summary, report) = match kind {
        StoreKind::BlockStore => block_store(src, dst)?,
        StoreKind::Cemented => {
            let from = open::cemented(src)?;
            let to = Cemented::open(dst, &rw(), DEFAULT_LOG_SIZE)?;
            let n = chunks(
                &from.chunks(),
                &from.metadata_chunks(),
                |c, m| from.iter_chunk(c, m),
                |h| from.resulting_context_hash(h),
                &to,
            )?;
            drop(to);
            (
                format!("{} blocks in {} chunks", thousands(n), from.chunks().len()),
                Cemented::check(dst, &open::ro(), false)?,
            )
        }
        StoreKind::Floating => {
            let stores = open::floating(src)?;
            let total: u64 = stores.iter().map(|s| s.len()).sum();
            let pb = bar(total, Unit::Records("blocks"), "copying");
            let mut n = 0u64;
            for s in &stores {
                let to = Floating::open(dst, s.kind(), &rw())?;
                for e in s.iter(true) {
                    let e = e?;
                    to.append_with_context(&e.block.as_ref(), &e.context, &e.preds, false)?;
                    n += 1;
                    pb.inc(1);
                }
                to.flush()?;
            }
            pb.finish_and_clear();
            expect_count(
                "blocks",
                n,
                open::floating(dst)?.iter().map(|f| f.len()).sum(),
            )?;
            (
                format!("{} blocks", thousands(n)),
                Floating::check(dst, &open::ro(), false)?,
            )
        }
        StoreKind::Index => {
            let from = open::index(src)?;
            let mut cfg = Index::config_of(src, &rw())?;
            cfg.open = rw();
            let to = Index::open(dst, cfg)?;
            let pb = bar(from.len(), Unit::Records("entries"), "copying");
            let mut n = 0u64;
            for e in from.iter()? {
                let (k, v) = e?;
                to.add(&k, &v, false)?;
                n += 1;
                pb.inc(1);
            }
            to.close()?;
            pb.finish_and_clear();
            expect_count("entries", n, open::index(dst)?.len())?;
            (
                format!("{} entries", thousands(n)),
                Index::check(dst, &open::ro(), false)?,
            )
        }
        StoreKind::IndexedFile => {
            let from = open::indexed_file(src)?;
            let mut cfg = IndexedFile::config_of(src, &rw())?;
            cfg.open = rw();
            let in_value = cfg.header_in_value;
            let to = IndexedFile::open(dst, cfg)?;
            let keys = from.keys()?;
            let pb = bar(keys.len() as u64, Unit::Records("keys"), "copying");
            let mut n = 0u64;
            for k in &keys {
                if let Some((value, header)) = from.read(k)? {
                    let h = if in_value {
                        None
                    } else {
                        Some(header.as_slice())
                    };
                    to.append(k, h, &value, false)?;
                    n += 1;
                }
                pb.inc(1);
            }
            to.flush()?;
            drop(to);
            pb.finish_and_clear();
            expect_count("keys", n, open::indexed_file(dst)?.len())?;
            (
                format!("{} keys", thousands(n)),
                IndexedFile::check(dst, &open::ro(), false)?,
            )
        }
        StoreKind::Kv => kv(src, dst)?,
        StoreKind::Singleton => {
            let v = open::singleton(src)?.read();
            let to = Singleton::open(dst, &rw())?;
            if let Some(v) = &v {
                to.write(v)?;
            }
            drop(to);
            (
                match &v {
                    Some(v) => format!("a value of {} bytes", thousands(v.len() as u64)),
                    None => "no value (unset)".into(),
                },
                Singleton::check(dst, &open::ro(), false)?,
            )
        }
    };
    if !report.is_ok() {
        return Err(Error::Corrupted(format!(
            "the copy in {} fails its check: {}",
            dst.display(),
            report.problems.join("; ")
        )));
    }
    Ok(summary)
}

fn expect_count(what: &str, copied: u64, found: u64) -> Result<()> {
    if copied != found {
        return Err(Error::Inconsistent(format!(
            "copied {copied} {what} but the copy holds {found}"
        )));
    }
    Ok(())
}

/// Writes each chunk of the source into `to`, with metadata where the
/// source keeps it and each block's resulting context hash (`context`);
/// returns the blocks written.
fn chunks(
    ranges: &[tzstore::block::cemented::ChunkRange],
    with_meta: &[tzstore::block::cemented::ChunkRange],
    iter: impl Fn(
        tzstore::block::cemented::ChunkRange,
        bool,
    ) -> Result<tzstore::block::cemented::ChunkIter>,
    context: impl Fn(&Hash) -> Result<Option<Hash>>,
    to: &Cemented,
) -> Result<u64> {
    let total: u64 = ranges.iter().map(|c| c.len() as u64).sum();
    let pb = bar(total, Unit::Records("cemented blocks"), "copying");
    let mut n = 0u64;
    for (i, &c) in ranges.iter().enumerate() {
        let meta = with_meta.contains(&c);
        // The first chunk of a pruned (rolling) store has no predecessor
        // in the copy: only later ones are linked to the previous chunk.
        let mut w = to.begin_chunk(c.start, c.end, meta, i > 0)?;
        for b in iter(c, meta)? {
            let b = b?;
            let ctx = context(&b.hash)?.ok_or_else(|| {
                Error::Inconsistent(format!(
                    "cemented block {} vanished during the copy",
                    hex(&b.hash)
                ))
            })?;
            w.push_with_context(&b.as_ref(), &ctx)?;
            n += 1;
            pb.inc(1);
        }
        w.commit()?;
    }
    pb.finish_and_clear();
    Ok(n)
}

fn block_store(src: &Path, dst: &Path) -> Result<(String, CheckReport)> {
    let from = open::block_store(src)?;
    let (mode, offset) = from.history();
    let opts = BlockStoreOptions {
        open: rw(),
        history_mode: mode,
        history_offset: offset,
        ..BlockStoreOptions::default()
    };
    // Created empty first (the manifest), so that the cemented store
    // written next belongs to a block store.
    drop(BlockStore::open(dst, opts.clone())?);
    let ranges = from.cemented_chunks();
    {
        let to = Cemented::open(dst.join("cemented"), &rw(), DEFAULT_LOG_SIZE)?;
        chunks(
            &ranges,
            &from.cemented_metadata_chunks(),
            |c, m| from.iter_cemented_chunk(c, m),
            |h| from.resulting_context_hash(h),
            &to,
        )?;
    }
    let to = BlockStore::open(dst, opts)?;
    let total = from.stats()?.floating_blocks;
    let pb = bar(total, Unit::Records("floating blocks"), "copying");
    // Oldest store first, arrival order within: predecessors come first.
    // A block whose predecessor is still unknown (stores of a merge in
    // flight seen in another order) waits for a second round.
    let mut waiting: Vec<(Block, Hash)> = Vec::new();
    let mut stored: HashSet<Hash> = HashSet::new();
    for it in from.floating_iters(true) {
        for e in it {
            let e = e?;
            let (b, ctx) = (e.block, e.context);
            match to.store_floating(&b.as_ref(), &ctx, false) {
                Ok(()) => {
                    stored.insert(b.hash);
                }
                Err(Error::Inconsistent(_)) => waiting.push((b, ctx)),
                Err(e) => return Err(e),
            }
            pb.inc(1);
        }
    }
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut still = Vec::new();
        for (b, ctx) in waiting {
            match to.store_floating(&b.as_ref(), &ctx, false) {
                Ok(()) => {
                    stored.insert(b.hash);
                }
                Err(Error::Inconsistent(_)) => still.push((b, ctx)),
                Err(e) => return Err(e),
            }
        }
        if still.len() == before {
            return Err(Error::Inconsistent(format!(
                "{} floating blocks of {} connect to no stored block (first: {} at level {})",
                still.len(),
                src.display(),
                hex(&still[0].0.hash),
                still[0].0.level
            )));
        }
        waiting = still;
    }
    to.flush()?;
    to.restore_marks(&from.marks())?;
    pb.finish_and_clear();
    let (a, b) = (from.stats()?, to.stats()?);
    expect_count("cemented blocks", a.cemented_blocks, b.cemented_blocks)?;
    // A block seen both cemented and floating is stored once: the copy must
    // hold every block copied, not one floating entry per block read.
    for h in &stored {
        if !to.mem(h)? {
            return Err(Error::Inconsistent(format!(
                "block {} was copied but the copy does not hold it",
                hex(h)
            )));
        }
    }
    drop(to);
    let report = BlockStore::check_dir(
        dst,
        &BlockStoreOptions {
            open: open::ro(),
            ..BlockStoreOptions::default()
        },
        false,
    )?;
    Ok((
        format!(
            "{} cemented blocks in {} chunks, {} floating blocks",
            thousands(a.cemented_blocks),
            ranges.len(),
            thousands(b.floating_blocks)
        ),
        report,
    ))
}

fn kv(src: &Path, dst: &Path) -> Result<(String, CheckReport)> {
    let from = open::kv(src)?;
    for attempt in 1..=KV_TRIES {
        let before = from.digest("")?;
        if dst.exists() {
            std::fs::remove_dir_all(dst).map_err(|e| Error::io("remove", dst, e))?;
        }
        std::fs::create_dir_all(dst).map_err(|e| Error::io("create directory", dst, e))?;
        let to = Kv::open(dst, &rw())?;
        let tree = walk::kv_tree(&from)?;
        let pb = bar(tree.len() as u64, Unit::Records("keys"), "copying");
        let mut values = 0u64;
        // Written in batches (one journal sync each) rather than one
        // durable `set` per key: a shorter copy races fewer writes.
        let mut batch: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        for (key, kind) in &tree {
            if *kind == Kind::Value {
                match from.get(key) {
                    Ok(v) => {
                        bytes += v.len();
                        batch.push((key, v));
                        values += 1;
                    }
                    // Removed since the listing: the digests will differ.
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if batch.len() >= KV_BATCH_KEYS || bytes >= KV_BATCH_BYTES {
                commit(&to, &mut batch)?;
                bytes = 0;
            }
            pb.inc(1);
        }
        commit(&to, &mut batch)?;
        pb.finish_and_clear();
        let copied = to.digest("")?;
        drop(to);
        // Equal to the digest before or after the copy: the copy is the
        // state the store had at that moment.
        if copied == before || copied == from.digest("")? {
            return Ok((
                format!(
                    "{} values (root digest {}, attempt {attempt})",
                    thousands(values),
                    hex(&copied)
                ),
                Kv::check(dst, &open::ro(), false)?,
            ));
        }
    }
    Err(Error::Conflict(format!(
        "{} changed during each of {KV_TRIES} copies: no consistent state was copied",
        src.display()
    )))
}

/// Keys and bytes per batch of a kv copy.
const KV_BATCH_KEYS: usize = 10_000;
const KV_BATCH_BYTES: usize = 64 << 20;

fn commit(to: &Kv, batch: &mut Vec<(&str, Vec<u8>)>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    to.batch(0, |b| {
        for (k, v) in batch.iter() {
            b.set(k, v)?;
        }
        Ok(())
    })?;
    batch.clear();
    Ok(())
}
