//! History-mode garbage collection.
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
use super::metadata::MetaChunk;
use super::table::Tables;
use super::{Cemented, HistoryMode};
use crate::block::Hash;
use crate::error::{Error, Result};
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
    store.publish(Tables {
        chunks: t.chunks[dropped.len()..].to_vec(),
        meta: kept_meta,
    });
    let fs = store.fs.as_ref();
    if !dropped.is_empty() {
        for c in &dropped {
            unindex(store, c)?;
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
    Ok(())
}

fn unindex(store: &Cemented, c: &Chunk) -> Result<()> {
    let r = c.range();
    for level in r.start..=r.end {
        let lv = level.to_be_bytes();
        // The index is the authority on what to remove (the chunk's record
        // could be damaged).
        let Some(h) = store.l2h.find(&lv)? else {
            continue;
        };
        let hash: Hash = h
            .as_slice()
            .try_into()
            .map_err(|_| Error::corrupted(&store.dir, "level_to_hash value size"))?;
        store.h2l.remove(&hash, false)?;
        store.l2h.remove(&lv, false)?;
    }
    Ok(())
}
