//! Loading the tables at open, and (read-write) repairing what a crash left.

use std::sync::Arc;

use super::Cemented;
use super::chunk::{Chunk, ChunkRange};
use super::metadata::{self, MetaChunk};
use super::table::Tables;
use crate::block::{HASH_SIZE, Hash};
use crate::error::{Error, Result};
use crate::io::atomic::TMP_SUFFIX;
use crate::io::reclaim::TRASH_SUFFIX;

struct Listing {
    chunks: Vec<ChunkRange>,
    metas: Vec<ChunkRange>,
    /// Temporaries and trash (both removed at a read-write open).
    tmps: Vec<String>,
    meta_tmps: Vec<String>,
}

/// A temporary or trash name: never loaded, removed at a read-write open.
fn is_leftover(name: &str) -> bool {
    name.ends_with(TMP_SUFFIX) || name.ends_with(TRASH_SUFFIX)
}

fn list(store: &Cemented) -> Result<Listing> {
    let fs = store.fs.as_ref();
    let mut l = Listing {
        chunks: Vec::new(),
        metas: Vec::new(),
        tmps: Vec::new(),
        meta_tmps: Vec::new(),
    };
    for e in fs.read_dir(&store.dir)? {
        if e.is_dir {
            continue;
        }
        if let Some(r) = ChunkRange::parse(&e.name) {
            l.chunks.push(r);
        } else if is_leftover(&e.name) {
            l.tmps.push(e.name);
        }
    }
    if fs.is_dir(&store.meta_dir)? {
        for e in fs.read_dir(&store.meta_dir)? {
            if let Some(r) = metadata::parse_name(&e.name) {
                l.metas.push(r);
            } else if is_leftover(&e.name) {
                l.meta_tmps.push(e.name);
            }
        }
    }
    l.chunks.sort();
    l.metas.sort();
    for w in l.chunks.windows(2) {
        if w[1].start <= w[0].end {
            return Err(Error::corrupted(
                &store.dir,
                format!("chunks {} and {} overlap", w[0], w[1]),
            ));
        }
    }
    Ok(l)
}

fn tables(store: &Cemented, l: &Listing) -> Tables {
    Tables {
        chunks: l
            .chunks
            .iter()
            .map(|&r| Arc::new(Chunk::new(store.fs.clone(), &store.dir, r)))
            .collect(),
        // A zip whose chunk is gone (GC interrupted) is not shown.
        meta: l
            .metas
            .iter()
            .filter(|r| l.chunks.binary_search(r).is_ok())
            .map(|&r| Arc::new(MetaChunk::new(store.fs.clone(), &store.meta_dir, r)))
            .collect(),
    }
}

/// Read-only open: the tables as the directory holds them, no repair.
pub(super) fn load(store: &Cemented) -> Result<Tables> {
    Ok(tables(store, &list(store)?))
}

/// Read-write open: finishes or removes what a crash left, then loads.
pub(super) fn recover(store: &Cemented) -> Result<Tables> {
    let fs = store.fs.as_ref();
    let l = list(store)?;
    // A temporary zip beside its renamed chunk was complete and fsynced
    // before the chunk's rename: finish its own rename. Others are garbage.
    for name in &l.meta_tmps {
        let tmp = store.meta_dir.join(name);
        let target = name
            .strip_suffix(TMP_SUFFIX)
            .and_then(metadata::parse_name)
            .filter(|r| l.chunks.binary_search(r).is_ok() && l.metas.binary_search(r).is_err());
        match target {
            Some(r) => fs.rename(&tmp, &store.meta_dir.join(metadata::file_name(r)))?,
            None => fs.remove_file(&tmp)?,
        }
    }
    for name in &l.tmps {
        fs.remove_file(&store.dir.join(name))?;
    }
    let l = list(store)?;
    // Zips of chunks dropped by an interrupted GC.
    for r in &l.metas {
        if l.chunks.binary_search(r).is_err() {
            fs.remove_file(&store.meta_dir.join(metadata::file_name(*r)))?;
        }
    }
    fs.sync_dir(&store.meta_dir)?;
    let mut t = tables(store, &l);
    // Only the last chunk can be torn (without fsync, at a power cut):
    // chunk files are renamed into place only once complete.
    if let Some(last) = t.chunks.last().cloned() {
        if let Err(e) = last.check_shape() {
            if !matches!(e, Error::Corrupted(_)) {
                return Err(e);
            }
            drop_torn(store, last.range())?;
            t.chunks.pop();
            t.meta.retain(|m| m.range() != last.range());
        }
    }
    let mut repaired = false;
    for c in &t.chunks {
        if !indexed(store, c)? {
            reindex(store, c)?;
            repaired = true;
        }
    }
    if repaired {
        store.h2l.flush()?;
        store.l2h.flush()?;
    }
    Ok(t)
}

/// True if the first and last blocks of `c` are in both indexes. Chunks are
/// indexed in level order and GC unindexes in level order, so a chunk
/// whose ends are indexed is wholly indexed.
fn indexed(store: &Cemented, c: &Chunk) -> Result<bool> {
    let r = c.range();
    for level in [r.start, r.end] {
        let hash = match c.hash(level) {
            Ok(h) => h,
            // A damaged record cannot be re-indexed anyway: open the store
            // and let reads of that level report the damage.
            Err(Error::Corrupted(_)) if store.l2h.mem(&level.to_be_bytes())? => continue,
            Err(e) => return Err(e),
        };
        let mut h = [0u8; HASH_SIZE];
        if !store.l2h.find_into(&level.to_be_bytes(), &mut h)? || h != hash {
            return Ok(false);
        }
        let mut l = [0u8; 4];
        if !store.h2l.find_into(&hash, &mut l)? || i32::from_be_bytes(l) != level {
            return Ok(false);
        }
    }
    Ok(true)
}

fn reindex(store: &Cemented, c: &Chunk) -> Result<()> {
    let r = c.range();
    for level in r.start..=r.end {
        let hash = c.hash(level)?;
        let lv = level.to_be_bytes();
        store.h2l.add(&hash, &lv, false)?;
        store.l2h.add(&lv, &hash, false)?;
    }
    Ok(())
}

/// Removes a torn last chunk, its zip and whatever index entries it got.
fn drop_torn(store: &Cemented, r: ChunkRange) -> Result<()> {
    for level in r.start..=r.end {
        let lv = level.to_be_bytes();
        if let Some(h) = store.l2h.find(&lv)? {
            let hash: Hash = h
                .as_slice()
                .try_into()
                .map_err(|_| Error::corrupted(&store.dir, "level_to_hash value size"))?;
            store.h2l.remove(&hash, false)?;
            store.l2h.remove(&lv, false)?;
        }
    }
    store.h2l.flush()?;
    store.l2h.flush()?;
    let fs = store.fs.as_ref();
    fs.remove_file(&store.dir.join(r.file_name()))?;
    fs.sync_dir(&store.dir)?;
    fs.remove_file(&store.meta_dir.join(metadata::file_name(r)))?;
    fs.sync_dir(&store.meta_dir)
}
