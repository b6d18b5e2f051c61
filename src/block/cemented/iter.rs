//! Iteration over the blocks of one chunk (Octez `iter_cemented_file`).

use std::path::PathBuf;
use std::sync::Arc;

use super::chunk::Chunk;
use super::metadata::MetaChunk;
use crate::block::Block;
use crate::error::{Error, Result};

/// The blocks of one chunk in level order. It holds the chunk's mapping,
/// so it keeps working if GC drops the chunk meanwhile (metadata already
/// unlinked by GC reads as absent).
#[derive(Debug)]
pub struct ChunkIter {
    chunk: Arc<Chunk>,
    meta: Option<Arc<MetaChunk>>,
    /// The chunk's zip, when it was written with one that is missing.
    missing_meta: Option<PathBuf>,
    next: i64,
}

impl ChunkIter {
    pub(super) fn new(
        chunk: Arc<Chunk>,
        meta: Option<Arc<MetaChunk>>,
        missing_meta: Option<PathBuf>,
    ) -> ChunkIter {
        let next = i64::from(chunk.range().start);
        ChunkIter {
            chunk,
            meta,
            missing_meta,
            next,
        }
    }

    fn read(&self, level: i32) -> Result<Block> {
        let mut b = self.chunk.read(level)?;
        if let Some(p) = &self.missing_meta {
            return Err(Error::corrupted(
                p,
                "missing (its chunk was written with it)",
            ));
        }
        if let Some(m) = &self.meta {
            b.metadata = super::absent_if_gone(m.read(level))?;
        }
        Ok(b)
    }
}

impl Iterator for ChunkIter {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Result<Block>> {
        if self.next > i64::from(self.chunk.range().end) {
            return None;
        }
        let level = self.next as i32;
        let r = self.read(level);
        // Stop after an error: a damaged chunk is reported once.
        self.next = if r.is_ok() { self.next + 1 } else { i64::MAX };
        Some(r)
    }
}
