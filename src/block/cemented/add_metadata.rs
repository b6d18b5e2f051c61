//! Metadata for blocks cemented without it (Octez's
//! `cement_blocks_metadata`, used when a node reconstructs the metadata
//! of a store imported without it).
//!
//! Order, so that a crash leaves the chunk without metadata or with all of
//! it: the zip is written under a temporary name and made durable, renamed
//! in (directory fsynced), the GC's "dropped" marker of the chunk, if any,
//! removed, and only then the chunk's `HAS_METADATA` flag set, by replacing
//! the chunk file with a copy that has it (never in place: readers map the
//! file). A zip without the flag reads as the chunk's metadata; the flag
//! only makes a later loss of the zip damage.

use std::sync::Arc;

use super::Cemented;
use super::chunk::{Chunk, ChunkRange, HAS_METADATA};
use super::meta_writer::MetaWriter;
use super::metadata::{self, MetaChunk};
use crate::block::{BlockRef, hex};
use crate::error::{Error, Result};
use crate::io::{OpenMode, atomic};

impl Cemented {
    /// Writes the metadata of `blocks`, blocks of one chunk cemented
    /// without metadata (or whose metadata GC dropped), in level order;
    /// each must be the cemented block at its level (same hash). Blocks
    /// without metadata are skipped; levels of the chunk not given have
    /// none. Durable on return. Returns the chunk.
    ///
    /// Errors: `InvalidArgument` (no block, levels not increasing, the
    /// chunk already has metadata), `NotFound` (a level is not cemented),
    /// `Inconsistent` (the blocks span two chunks, or a hash differs from
    /// the cemented one), `ReadOnly`, `Corrupted`, `Io`, `NoSpace`.
    pub fn cement_metadata<'b>(
        &self,
        blocks: impl IntoIterator<Item = BlockRef<'b>>,
    ) -> Result<ChunkRange> {
        self.check_writable("cement_metadata")?;
        let _w = self.writer.lock();
        let t = self.snapshot();
        let mut blocks = blocks.into_iter().peekable();
        let first = blocks
            .peek()
            .map(|b| b.level)
            .ok_or_else(|| Error::invalid("cement_metadata: no block given"))?;
        let chunk = t
            .chunk(first)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("level {first} is not cemented")))?;
        let range = chunk.range();
        if t.meta(range.start).is_some() {
            return Err(Error::invalid(format!(
                "chunk {range} already has metadata"
            )));
        }
        let fs = self.fs.as_ref();
        let path = self.meta_dir.join(metadata::file_name(range));
        // Not the writer's temporary name: recovery completes a temporary
        // zip beside its chunk as a crashed cementing's, but this one's
        // chunk exists before the zip is whole. This name is garbage to it.
        let tmp = atomic::tmp_path(
            &path.with_file_name(format!("{}.adding", metadata::file_name(range))),
        )?;
        let mut zip: Option<MetaWriter> = None;
        let mut last = None;
        for b in blocks {
            if !range.contains(b.level) {
                return Err(Error::Inconsistent(format!(
                    "block at level {} is outside chunk {range} of the first block",
                    b.level
                )));
            }
            if last.is_some_and(|l| b.level <= l) {
                return Err(Error::invalid(format!(
                    "block levels must increase: {} after {}",
                    b.level,
                    last.unwrap_or(b.level)
                )));
            }
            last = Some(b.level);
            let cemented = chunk.hash(b.level)?;
            if cemented != *b.hash {
                return Err(Error::Inconsistent(format!(
                    "block {} at level {} is not the cemented block {}",
                    hex(b.hash),
                    b.level,
                    hex(&cemented)
                )));
            }
            if let Some(m) = b.metadata {
                if zip.is_none() {
                    zip = Some(MetaWriter::create(fs, &tmp, self.zstd_level())?);
                }
                if let Some(w) = zip.as_mut() {
                    w.push(b.level, m)?;
                }
            }
        }
        let Some(zip) = zip else {
            return Ok(range); // no metadata among the blocks
        };
        zip.finish()?;
        fs.sync_dir(&self.meta_dir)?;
        fs.rename(&tmp, &path)?;
        fs.sync_dir(&self.meta_dir)?;
        let dropped = self.meta_dir.join(metadata::dropped_name(range));
        if fs.exists(&dropped)? {
            fs.remove_file(&dropped)?;
            fs.sync_dir(&self.meta_dir)?;
        }
        set_metadata_flag(self, range)?;
        let meta = Arc::new(MetaChunk::new(self.fs.clone(), &self.meta_dir, range));
        // A fresh handle: the old one may have cached the flag.
        let fresh = Arc::new(Chunk::new(self.fs.clone(), &self.dir, range));
        let mut next = t.as_ref().clone();
        next.chunks.retain(|c| c.range() != range);
        next.dropped_meta.retain(|r| *r != range);
        self.publish(next.with_chunk(fresh, Some(meta)));
        Ok(range)
    }
}

/// Replaces chunk `range`'s file, durably, with a copy whose first offset
/// has `HAS_METADATA` set. Readers keep the old file through their maps.
fn set_metadata_flag(store: &Cemented, range: ChunkRange) -> Result<()> {
    const PIECE: u64 = 1 << 20;
    let fs = store.fs.as_ref();
    let path = store.dir.join(range.file_name());
    let tmp = atomic::tmp_path(&path)?;
    let from = fs.open(&path, OpenMode::Read)?;
    let to = fs.open(&tmp, OpenMode::Truncate)?;
    let len = from.len()?;
    let mut buf = vec![0u8; PIECE.min(len) as usize];
    let mut at = 0u64;
    while at < len {
        let n = PIECE.min(len - at) as usize;
        from.read_exact_at(&mut buf[..n], at)?;
        if at == 0 && n >= 8 {
            let first = u64::from_be_bytes([
                buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7],
            ]);
            buf[..8].copy_from_slice(&(first | HAS_METADATA).to_be_bytes());
        }
        to.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    to.sync()?;
    fs.rename(&tmp, &path)?;
    fs.sync_dir(&store.dir)
}
