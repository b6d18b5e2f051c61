//! Loading the tables at open, and (read-write) repairing what a crash left.

use std::sync::Arc;

use super::Cemented;
use super::chunk::{Chunk, ChunkRange};
use super::metadata::{self, MetaChunk};
use super::table::Tables;
use crate::block::HASH_SIZE;
use crate::error::{Error, Result};
use crate::io::atomic::TMP_SUFFIX;
use crate::io::quarantine::Quarantine;
use crate::io::reclaim::TRASH_SUFFIX;

struct Listing {
    chunks: Vec<ChunkRange>,
    metas: Vec<ChunkRange>,
    /// Temporaries and trash (both removed at a read-write open).
    tmps: Vec<String>,
    meta_tmps: Vec<String>,
    /// Markers of zips dropped by GC.
    dropped: Vec<ChunkRange>,
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
        dropped: Vec::new(),
    };
    for e in fs.read_dir(&store.dir)? {
        if e.is_dir {
            if ChunkRange::parse(&e.name).is_some() {
                return Err(not_regular(&store.dir.join(&e.name)));
            }
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
            if e.is_dir {
                if metadata::parse_name(&e.name).is_some() {
                    return Err(not_regular(&store.meta_dir.join(&e.name)));
                }
                continue;
            }
            if let Some(r) = metadata::parse_dropped(&e.name) {
                l.dropped.push(r);
            } else if let Some(r) = metadata::parse_name(&e.name) {
                l.metas.push(r);
            } else if is_leftover(&e.name) {
                l.meta_tmps.push(e.name);
            }
        }
    }
    l.chunks.sort();
    l.metas.sort();
    l.dropped.sort();
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

fn not_regular(path: &std::path::Path) -> Error {
    Error::corrupted(path, "not a regular file (a directory)")
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
        dropped_meta: l.dropped.clone(),
    }
}

/// Read-only open: the tables as the directory holds them, no repair. A
/// writer may have renamed a chunk it has not indexed yet, so the indexes
/// may cover fewer levels than the chunks, never more.
pub(super) fn load(store: &Cemented) -> Result<Tables> {
    let mut tries = 0;
    loop {
        let t = tables(store, &list(store)?);
        match check_counts(store, &t, false) {
            Ok(()) => return Ok(t),
            // A rolling GC unindexes chunks, then renames them away: the
            // indexes, loaded before the listing, may predate both steps.
            // Reloaded after the listing, they cannot hold more levels
            // than it unless a chunk file is really missing.
            Err(e) if tries >= 4 => return Err(e),
            Err(_) => {
                tries += 1;
                store.h2l.sync()?;
                store.l2h.sync()?;
            }
        }
    }
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
    // Zips of chunks dropped by an interrupted GC, which unindexed them
    // before renaming the chunk: a zip whose levels are still indexed lost
    // its chunk file to damage.
    for r in &l.metas {
        if l.chunks.binary_search(r).is_err() {
            let zip = store.meta_dir.join(metadata::file_name(*r));
            if covered(store, *r)? {
                return Err(Error::corrupted(
                    &store.dir.join(r.file_name()),
                    format!(
                        "the chunk file is missing while the index and {} hold its levels",
                        zip.display()
                    ),
                ));
            }
            fs.remove_file(&zip)?;
        }
    }
    // Markers of zips dropped by GC, left by a rolling GC that dropped
    // their chunk.
    for r in &l.dropped {
        if l.chunks.binary_search(r).is_err() {
            fs.remove_file(&store.meta_dir.join(metadata::dropped_name(*r)))?;
        }
    }
    fs.sync_dir(&store.meta_dir)?;
    let mut t = tables(store, &l);
    // A chunk is renamed into place only once complete and fsynced, and
    // indexed after: a damaged last chunk that the indexes cover is damage
    // (reported, nothing changed). One they do not cover was never
    // acknowledged (torn by a power cut without fsync, or planted): it is
    // moved into the quarantine, not deleted.
    if let Some(last) = t.chunks.last().cloned() {
        if let Err(e) = last.check_shape() {
            let others: u64 = t.chunks[..t.chunks.len() - 1]
                .iter()
                .map(|c| c.range().len() as u64)
                .sum();
            // Either index binding more levels than the other chunks hold
            // also covers it (the other index may have lost its entries).
            let counted = store.l2h.len() > others || store.h2l.len() > others;
            if !matches!(e, Error::Corrupted(_)) || counted || covered(store, last.range())? {
                return Err(e);
            }
            set_aside(store, last.range())?;
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
    check_counts(store, &t, true)?;
    Ok(t)
}

/// True if the level -> hash index holds an end of `r`: the chunk was
/// complete when its indexing began.
fn covered(store: &Cemented, r: ChunkRange) -> Result<bool> {
    Ok(store.l2h.mem(&r.start.to_be_bytes())? || store.l2h.mem(&r.end.to_be_bytes())?)
}

/// Compares the levels the chunks hold with the bindings of both indexes:
/// more bindings than levels means a chunk file the indexes know of is
/// missing. After a read-write recovery they must be equal.
fn check_counts(store: &Cemented, t: &Tables, exact: bool) -> Result<()> {
    let levels: u64 = t.chunks.iter().map(|c| c.range().len() as u64).sum();
    for (name, index) in [
        (super::LEVEL_TO_HASH, &store.l2h),
        (super::HASH_TO_LEVEL, &store.h2l),
    ] {
        let n = index.len();
        if n > levels || (exact && n != levels) {
            return Err(Error::corrupted(
                &store.dir.join(name),
                format!(
                    "the index binds {n} levels but the chunk files hold {levels}: \
                     a chunk file is missing or the index is damaged"
                ),
            ));
        }
    }
    Ok(())
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

/// Re-indexes a chunk left unindexed by a crash; its shape is checked
/// first, which bounds the loop by the file's size.
fn reindex(store: &Cemented, c: &Chunk) -> Result<()> {
    c.check_shape()?;
    let r = c.range();
    for level in r.start..=r.end {
        let hash = c.hash(level)?;
        let lv = level.to_be_bytes();
        store.h2l.add(&hash, &lv, false)?;
        store.l2h.add(&lv, &hash, false)?;
    }
    Ok(())
}

/// Moves an unacknowledged, incomplete last chunk and its zip into the
/// quarantine.
fn set_aside(store: &Cemented, r: ChunkRange) -> Result<()> {
    let fs = store.fs.as_ref();
    let mut q = Quarantine::new(fs, &store.dir);
    q.move_in(&store.dir.join(r.file_name()))?;
    let zip = store.meta_dir.join(metadata::file_name(r));
    if fs.exists(&zip)? {
        q.move_in(&zip)?;
    }
    Ok(())
}
