//! The streaming chunk writer behind `cement` and `begin_chunk`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::Cemented;
use super::chunk::{Chunk, ChunkRange, HAS_METADATA, OFFSET_SIZE};
use super::file_writer::FileWriter;
use super::meta_writer::MetaWriter;
use super::metadata::{self, MetaChunk};
use crate::block::{BlockRef, Hash, hex, record};
use crate::error::{Error, Result};
use crate::io::{OpenMode, atomic};

/// A chunk being written. Push exactly the blocks of its range, in level
/// order, then [`ChunkWriter::commit`]. Dropping it without committing
/// abandons the chunk (its temporary files are removed).
pub struct ChunkWriter<'a> {
    store: &'a Cemented,
    _guard: MutexGuard<'a, ()>,
    range: ChunkRange,
    write_metadata: bool,
    check_consistency: bool,
    tmp: PathBuf,
    meta_tmp: PathBuf,
    file: FileWriter,
    offsets: Vec<u64>,
    hashes: Vec<Hash>,
    seen: HashSet<Hash>,
    prev_hash: Option<Hash>,
    meta: Option<MetaWriter>,
    scratch: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for ChunkWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChunkWriter({}, {} blocks)",
            self.range,
            self.offsets.len()
        )
    }
}

impl<'a> ChunkWriter<'a> {
    pub(super) fn begin(
        store: &'a Cemented,
        start: i32,
        end: i32,
        write_metadata: bool,
        check_consistency: bool,
    ) -> Result<ChunkWriter<'a>> {
        store.check_writable("cement")?;
        let range = ChunkRange::new(start, end)
            .map_err(|e| Error::Inconsistent(e.message().to_string()))?;
        let guard = store.writer.lock();
        let t = store.snapshot();
        if t.overlaps(range) {
            return Err(Error::Inconsistent(format!(
                "chunk {range} overlaps a cemented chunk"
            )));
        }
        let mut prev_hash = None;
        if check_consistency {
            if let Some(h) = t.highest() {
                if i64::from(h) + 1 != i64::from(start) {
                    return Err(Error::Inconsistent(format!(
                        "chunk {range} does not follow the highest cemented level {h}"
                    )));
                }
                prev_hash = t.chunk(h).map(|c| c.hash(h)).transpose()?;
            }
        }
        let path = store.dir.join(range.file_name());
        let tmp = atomic::tmp_path(&path)?;
        let meta_tmp = atomic::tmp_path(&store.meta_dir.join(metadata::file_name(range)))?;
        let handle = store.fs.open(&tmp, OpenMode::Truncate)?;
        let mut file = FileWriter::new(handle);
        let table = range.len() as u64 * OFFSET_SIZE as u64;
        // Records go after the offset table, which is written at commit.
        file.seek_to(table)?;
        Ok(ChunkWriter {
            store,
            _guard: guard,
            range,
            write_metadata,
            check_consistency,
            tmp,
            meta_tmp,
            file,
            offsets: Vec::with_capacity(range.len().min(1 << 20)),
            hashes: Vec::with_capacity(range.len().min(1 << 20)),
            seen: HashSet::new(),
            prev_hash,
            meta: None,
            scratch: Vec::new(),
            done: false,
        })
    }

    /// The chunk's levels.
    pub fn range(&self) -> ChunkRange {
        self.range
    }

    /// Appends the next block (its level must be the next of the range).
    /// `Inconsistent` if it is not, if its hash is already cemented or
    /// pushed, or (with consistency checks) if its predecessor is not the
    /// previous block. After an error the chunk can only be dropped.
    pub fn push(&mut self, b: &BlockRef<'_>) -> Result<()> {
        self.push_with_context(b, &record::NO_CONTEXT)
    }

    /// [`ChunkWriter::push`], with the block's resulting context hash.
    pub fn push_with_context(&mut self, b: &BlockRef<'_>, context: &Hash) -> Result<()> {
        let r = self.push_inner(b, context);
        if r.is_err() {
            self.done = true;
        }
        r
    }

    fn push_inner(&mut self, b: &BlockRef<'_>, context: &Hash) -> Result<()> {
        if self.done {
            return Err(Error::invalid(format!(
                "chunk {} was abandoned after an error",
                self.range
            )));
        }
        let expected = i64::from(self.range.start) + self.offsets.len() as i64;
        if expected > i64::from(self.range.end) {
            return Err(Error::Inconsistent(format!(
                "chunk {}: one block too many (level {})",
                self.range, b.level
            )));
        }
        if i64::from(b.level) != expected {
            return Err(Error::Inconsistent(format!(
                "chunk {}: expected level {expected}, got a block of level {}",
                self.range, b.level
            )));
        }
        // `level_of` ignores index entries of a chunk whose commit failed
        // after indexing began (not in the table; a retry re-adds them).
        if !self.seen.insert(*b.hash) || self.store.level_of(b.hash)?.is_some() {
            return Err(Error::Inconsistent(format!(
                "chunk {}: block {} at level {} is already cemented",
                self.range,
                hex(b.hash),
                b.level
            )));
        }
        if self.check_consistency {
            if let Some(p) = &self.prev_hash {
                if p != b.predecessor {
                    return Err(Error::Inconsistent(format!(
                        "chunk {}: block {} at level {} has predecessor {}, not the previous block {}",
                        self.range,
                        hex(b.hash),
                        b.level,
                        hex(b.predecessor),
                        hex(p)
                    )));
                }
            }
        }
        self.scratch.clear();
        record::encode_into_with_context(&mut self.scratch, b, context, false)?;
        self.offsets.push(self.file.position());
        self.file.put(&self.scratch)?;
        if self.write_metadata {
            if let Some(m) = b.metadata {
                if self.meta.is_none() {
                    let level = self.store.zstd_level();
                    self.meta = Some(MetaWriter::create(
                        self.store.fs.as_ref(),
                        &self.meta_tmp,
                        level,
                    )?);
                }
                if let Some(w) = self.meta.as_mut() {
                    w.push(b.level, m)?;
                }
            }
        }
        self.hashes.push(*b.hash);
        self.prev_hash = Some(*b.hash);
        Ok(())
    }

    /// Makes the chunk durable and visible: chunk file, then metadata, then
    /// both indexes (see the module documentation of the store).
    pub fn commit(mut self) -> Result<ChunkRange> {
        let r = self.commit_inner();
        self.done = true;
        r
    }

    fn commit_inner(&mut self) -> Result<ChunkRange> {
        if self.done {
            return Err(Error::invalid(format!(
                "chunk {} was abandoned after an error",
                self.range
            )));
        }
        let range = self.range;
        if self.offsets.len() != range.len() {
            return Err(Error::Inconsistent(format!(
                "chunk {range} needs {} blocks, {} were pushed",
                range.len(),
                self.offsets.len()
            )));
        }
        // The zip is complete and durable before the chunk is renamed, so
        // recovery may finish a rename interrupted by a crash.
        let has_meta = match self.meta.take() {
            Some(m) => {
                m.finish()?;
                // The temporary zip's entry too: a power cut after the
                // chunk's rename must find it to finish the zip's rename.
                self.store.fs.sync_dir(&self.store.meta_dir)?;
                true
            }
            None => false,
        };
        let mut table = Vec::with_capacity(self.offsets.len() * OFFSET_SIZE);
        for (i, o) in self.offsets.iter().enumerate() {
            let flag = if i == 0 && has_meta { HAS_METADATA } else { 0 };
            table.extend_from_slice(&(o | flag).to_be_bytes());
        }
        self.file.flush_buf()?;
        self.file.file().write_all_at(&table, 0)?;
        self.file.sync()?;
        let st = self.store;
        let fs = st.fs.as_ref();
        let path = st.dir.join(range.file_name());
        fs.rename(&self.tmp, &path)?;
        fs.sync_dir(&st.dir)?;
        let meta = if has_meta {
            let m = MetaChunk::new(st.fs.clone(), &st.meta_dir, range);
            fs.rename(&self.meta_tmp, m.path())?;
            fs.sync_dir(&st.meta_dir)?;
            Some(Arc::new(m))
        } else {
            None
        };
        for (i, h) in self.hashes.iter().enumerate() {
            let level = (range.start + i as i32).to_be_bytes();
            st.h2l.add(h, &level, false)?;
            st.l2h.add(&level, h, false)?;
        }
        st.h2l.flush()?;
        st.l2h.flush()?;
        let chunk = Arc::new(Chunk::new(st.fs.clone(), &st.dir, range));
        let t = st.snapshot().with_chunk(chunk, meta);
        st.publish(t);
        Ok(range)
    }
}

impl Drop for ChunkWriter<'_> {
    fn drop(&mut self) {
        // Best effort: leftovers are also removed at the next open.
        let fs = self.store.fs.as_ref();
        let _ = fs.remove_file(&self.tmp);
        let _ = fs.remove_file(&self.meta_tmp);
    }
}
