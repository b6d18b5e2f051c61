//! History-mode garbage collection.
//!
//! Before changing anything, GC reads back every chunk it drops (shape,
//! records, both index bindings) and the lowest chunk it keeps; damage
//! aborts it with `Corrupted`, the store as it was.
//!
//! Rolling GC: (1) the new table, without the dropped chunks, is swapped in,
//! so readers stop seeing them at once; (2) their entries are removed from
//! both indexes (tombstones, no rewrite: the cost grows with what is
//! dropped, not with the store) and the indexes flushed; (3) the chunk
//! files, then their zips, are unlinked. A crash during (2) or before (3)
//! leaves chunk files whose ends are unindexed: the open re-indexes them
//! (the GC is undone, to be run again). In (3) the files are first renamed
//! to trash names (recovery removes trash and zips without chunks at open),
//! then deleted gradually: unlinking a chunk of tens of megabytes at once
//! would stall every other fsync on the file system (`io::reclaim`).

use std::sync::Arc;

use super::chunk::Chunk;
use super::chunk::ChunkRange;
use super::metadata::{self, MetaChunk};
use super::table::Tables;
use super::{Cemented, HistoryMode};
use crate::block::hex;
use crate::block::{HASH_SIZE, Hash};
use crate::error::{Error, Result};
use crate::io::OpenMode;
use crate::io::reclaim::{self, trash_path};

pub(super) fn run(store: &Cemented, mode: HistoryMode, offset: usize) -> Result<()> {
    let _w = store.writer.lock();
    let t = store.snapshot();
    let n = t.chunks.len();
    if mode == HistoryMode::Archive || offset >= n {
        return Ok(());
    }
    // Everything below `keep_from` loses its metadata (Full) or all (Rolling).
    let keep_from = t.chunks[n - offset..]
        .first()
        .map_or(i64::MAX, |c| i64::from(c.range().start));
    let (old_meta, kept_meta): (Vec<Arc<MetaChunk>>, Vec<Arc<MetaChunk>>) = t
        .meta
        .iter()
        .cloned()
        .partition(|m| i64::from(m.range().start) < keep_from);
    let dropped: Vec<Arc<Chunk>> = match mode {
        HistoryMode::Rolling => t.chunks[..n - offset].to_vec(),
        _ => Vec::new(),
    };
    // Verify before anything changes: a damaged chunk or index aborts the
    // GC with `Corrupted` and the store keeps its state.
    let mut hashes = Vec::with_capacity(dropped.len());
    for c in &dropped {
        hashes.push(verify_dropped(store, c)?);
    }
    if let Some(first_kept) = t.chunks.get(n - offset) {
        first_kept.verify()?;
    }
    let fs = store.fs.as_ref();
    let kept_chunks = t.chunks[dropped.len()..].to_vec();
    let is_kept = |r: ChunkRange| kept_chunks.iter().any(|c| c.range() == r);
    // A kept chunk written with a zip gets a durable marker before its zip
    // goes, so that a missing zip stays distinguishable from a dropped one.
    let mut dropped_meta: Vec<ChunkRange> = t
        .dropped_meta
        .iter()
        .copied()
        .filter(|r| is_kept(*r))
        .collect();
    let mut marked = false;
    for m in &old_meta {
        let r = m.range();
        if is_kept(r) && !t.meta_dropped(r) {
            fs.open(
                &store.meta_dir.join(metadata::dropped_name(r)),
                OpenMode::Truncate,
            )?
            .sync()?;
            dropped_meta.push(r);
            marked = true;
        }
    }
    if marked {
        fs.sync_dir(&store.meta_dir)?;
    }
    dropped_meta.sort();
    store.publish(Tables {
        chunks: kept_chunks.clone(),
        meta: kept_meta,
        dropped_meta,
    });
    if !dropped.is_empty() {
        for (c, h) in dropped.iter().zip(&hashes) {
            unindex(store, c, h)?;
        }
        store.h2l.flush()?;
        store.l2h.flush()?;
    }
    let chunks: Vec<_> = dropped.iter().map(|c| c.path().to_path_buf()).collect();
    let zips: Vec<_> = old_meta.iter().map(|m| m.path().to_path_buf()).collect();
    let mut trash = Vec::with_capacity(chunks.len() + zips.len());
    for (paths, dir) in [(&chunks, &store.dir), (&zips, &store.meta_dir)] {
        if paths.is_empty() {
            continue;
        }
        // One directory fsync per rename, lowest chunk first: a power cut
        // may persist directory operations out of order, and only a prefix
        // of dropped chunks leaves a contiguous chain to re-index at open.
        for p in paths {
            let t = trash_path(p)?;
            fs.rename(p, &t)?;
            fs.sync_dir(dir)?;
            trash.push(t);
        }
    }
    for t in &trash {
        reclaim::remove_file_gradually(fs, t)?;
    }
    // Markers of dropped chunks (the open also removes those left behind).
    for c in &dropped {
        if t.meta_dropped(c.range()) {
            fs.remove_file(&store.meta_dir.join(metadata::dropped_name(c.range())))?;
        }
    }
    Ok(())
}

/// Reads back every record of a chunk GC drops and checks that both
/// indexes bind exactly its blocks, so that GC removes the right entries;
/// returns the chunk's hashes in level order.
fn verify_dropped(store: &Cemented, c: &Chunk) -> Result<Vec<Hash>> {
    let hashes = c.verify()?;
    let r = c.range();
    for (level, hash) in (r.start..=r.end).zip(&hashes) {
        let lv = level.to_be_bytes();
        let mut h = [0u8; HASH_SIZE];
        if !store.l2h.find_into(&lv, &mut h)? || &h != hash {
            return Err(Error::corrupted(
                &store.dir.join(super::LEVEL_TO_HASH),
                format!(
                    "level {level} of {} is not bound to its block {}",
                    c.path().display(),
                    hex(hash)
                ),
            ));
        }
        let mut l = [0u8; 4];
        if !store.h2l.find_into(hash, &mut l)? || l != lv {
            return Err(Error::corrupted(
                &store.dir.join(super::HASH_TO_LEVEL),
                format!(
                    "block {} of {} is not bound to its level {level}",
                    hex(hash),
                    c.path().display()
                ),
            ));
        }
    }
    Ok(hashes)
}

fn unindex(store: &Cemented, c: &Chunk, hashes: &[Hash]) -> Result<()> {
    let r = c.range();
    for (level, hash) in (r.start..=r.end).zip(hashes) {
        store.h2l.remove(hash, false)?;
        store.l2h.remove(&level.to_be_bytes(), false)?;
    }
    Ok(())
}
