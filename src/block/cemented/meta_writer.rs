//! Writes a chunk's metadata zip while the chunk is written: entries are
//! compressed in batches on the worker pool (one reusable zstd context per
//! thread) and appended in level order by [`ZipOut`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::file_writer::FileWriter;
use super::metadata::STORED;
use super::zip_format::{METHOD_STORED, METHOD_ZSTD, RawEntry, ZipOut};
use crate::error::{Error, Result};
use crate::io::{FileSystem, OpenMode};
use crate::worker::WorkerPool;

/// A batch is handed to the pool when it holds this many bytes...
const BATCH_BYTES: usize = 1 << 20;
/// ... or this many entries.
const BATCH_ENTRIES: usize = 256;

/// A batch of entries to compress, claimed by whichever comes first: a pool
/// worker or the writer needing its result. The writer never waits for a
/// batch no worker has started, so a busy (or blocked) pool cannot stall it.
struct Batch {
    state: Mutex<BatchState>,
    done: Condvar,
}

enum BatchState {
    Pending(Vec<(i32, Vec<u8>)>),
    Running,
    Done(Result<Vec<RawEntry>>),
    Taken,
}

impl Batch {
    /// Compresses the batch if nobody has claimed it yet.
    fn run(&self, level: i32) {
        let entries = {
            let mut st = self.state.lock();
            match std::mem::replace(&mut *st, BatchState::Running) {
                BatchState::Pending(e) => e,
                other => {
                    *st = other;
                    return;
                }
            }
        };
        let out = compress(entries, level);
        *self.state.lock() = BatchState::Done(out);
        self.done.notify_all();
    }

    /// The batch's result, compressing it here if no worker started it.
    fn take(&self, level: i32) -> Result<Vec<RawEntry>> {
        self.run(level);
        let mut st = self.state.lock();
        while matches!(*st, BatchState::Running) {
            self.done.wait(&mut st);
        }
        match std::mem::replace(&mut *st, BatchState::Taken) {
            BatchState::Done(r) => r,
            _ => Err(Error::Panic("metadata batch taken twice".into())),
        }
    }
}

/// Compresses each entry as one zstd frame (level [`STORED`]: keeps it as
/// it is, for reads that point into the zip). The thread's context is reused:
/// a one-shot compression knows the input size, so zstd sizes its tables
/// to the entry instead of clearing a window's worth for each.
fn compress(entries: Vec<(i32, Vec<u8>)>, level: i32) -> Result<Vec<RawEntry>> {
    if level == STORED {
        return Ok(entries
            .into_iter()
            .map(|(lvl, data)| RawEntry {
                name: lvl.to_string(),
                method: METHOD_STORED,
                crc32: crc32fast::hash(&data),
                uncompressed_size: data.len() as u64,
                data,
            })
            .collect());
    }
    thread_local! {
        static CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { RefCell::new(None) };
    }
    let zerr = |e: std::io::Error| Error::Io(format!("zstd compression of metadata: {e}"));
    CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).map_err(zerr)?));
        }
        let Some((_, c)) = slot.as_mut() else {
            return Err(Error::Io("zstd context".into()));
        };
        entries
            .into_iter()
            .map(|(lvl, data)| {
                Ok(RawEntry {
                    name: lvl.to_string(),
                    method: METHOD_ZSTD,
                    crc32: crc32fast::hash(&data),
                    uncompressed_size: data.len() as u64,
                    data: c.compress(&data).map_err(zerr)?,
                })
            })
            .collect()
    })
}

/// Writes a metadata zip (to a temporary path chosen by the caller),
/// compressing entries in parallel on the worker pool.
pub(crate) struct MetaWriter {
    file: FileWriter,
    zip: ZipOut,
    level: i32,
    pending: Vec<(i32, Vec<u8>)>,
    pending_bytes: usize,
    inflight: VecDeque<Arc<Batch>>,
    max_inflight: usize,
}

impl MetaWriter {
    /// Creates (truncating) the zip at `path`.
    pub(crate) fn create(fs: &dyn FileSystem, path: &Path, zstd_level: i32) -> Result<MetaWriter> {
        let file = fs.open(path, OpenMode::Truncate)?;
        Ok(MetaWriter {
            file: FileWriter::new(file),
            zip: ZipOut::new(),
            level: zstd_level,
            pending: Vec::new(),
            pending_bytes: 0,
            inflight: VecDeque::new(),
            // Enough to keep every worker and the writer busy, while
            // bounding the memory held by uncompressed batches.
            max_inflight: 2 * WorkerPool::global().threads().max(1),
        })
    }

    /// Adds the metadata of `level` (entries must come in level order).
    pub(crate) fn push(&mut self, level: i32, data: &[u8]) -> Result<()> {
        self.pending.push((level, data.to_vec()));
        self.pending_bytes += data.len();
        if self.pending_bytes >= BATCH_BYTES || self.pending.len() >= BATCH_ENTRIES {
            self.dispatch()?;
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(Batch {
            state: Mutex::new(BatchState::Pending(std::mem::take(&mut self.pending))),
            done: Condvar::new(),
        });
        self.pending_bytes = 0;
        if crate::io::foreground::foreground_busy() {
            // While a node is storing, the writer compresses alone: a merge
            // then takes one core, and the caller's threads keep the rest
            // (on two cores, compressing on the pool as well doubled the
            // p99 of stores made during a merge).
            batch.run(self.level);
        } else {
            let job = batch.clone();
            let level = self.level;
            // The handle is not kept: the result is collected through `batch`.
            let _ = WorkerPool::global().submit(move || {
                job.run(level);
                Ok(())
            });
        }
        self.inflight.push_back(batch);
        while self.inflight.len() > self.max_inflight {
            self.complete_oldest()?;
        }
        Ok(())
    }

    fn complete_oldest(&mut self) -> Result<()> {
        if let Some(batch) = self.inflight.pop_front() {
            for e in batch.take(self.level)? {
                self.zip.add(&mut self.file, &e)?;
            }
        }
        Ok(())
    }

    /// Writes the remaining entries and the central directory, and fsyncs.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.dispatch()?;
        while !self.inflight.is_empty() {
            self.complete_oldest()?;
        }
        self.zip.finish(&mut self.file)?;
        self.file.sync()
    }
}
