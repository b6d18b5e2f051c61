//! Metadata zips: `metadata/<start>_<end>.zip` holds one entry per level of
//! the chunk that has metadata, named by the decimal level and compressed
//! with zstd (zip method 93). Each entry is compressed on its own, so one
//! level's metadata is read without decompressing the others. Compression
//! runs in batches on the worker pool while the chunk is being written.

use std::collections::VecDeque;
use std::fmt;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};
use zip::result::ZipError;
use zip::write::{PreparedZipFile, SimpleFileOptions, ZipFileBuilder};
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::chunk::ChunkRange;
use super::file_writer::{ErrorSlot, FileWriter};
use crate::error::{Error, Result};
use crate::io::{FileSystem, Mapped, OpenMode};
use crate::worker::WorkerPool;

/// Name of the metadata directory inside the store.
pub const DIR: &str = "metadata";
/// Suffix of metadata files.
pub const SUFFIX: &str = ".zip";
/// Largest metadata entry accepted when reading (a damaged size field
/// must not cause a huge allocation); Octez caps metadata at 10 MB.
const MAX_ENTRY: u64 = 1 << 32;
/// Default zstd level (zstd's own default: fast, and smaller than deflate).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// A batch is handed to the pool when it holds this many bytes...
const BATCH_BYTES: usize = 1 << 20;
/// ... or this many entries.
const BATCH_ENTRIES: usize = 256;

/// The file name of a chunk's metadata zip.
pub fn file_name(range: ChunkRange) -> String {
    format!("{}{SUFFIX}", range.file_name())
}

/// Parses a metadata file name; other names give `None`.
pub fn parse_name(name: &str) -> Option<ChunkRange> {
    ChunkRange::parse(name.strip_suffix(SUFFIX)?)
}

/// The bytes of a mapped file, shareable by cloned zip readers.
#[derive(Clone)]
struct MapBytes(Arc<Mapped>);

impl AsRef<[u8]> for MapBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

type Archive = ZipArchive<Cursor<MapBytes>>;

/// An immutable metadata zip, mapped and parsed on first read.
pub struct MetaChunk {
    range: ChunkRange,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    loaded: OnceCell<(Archive, MapBytes)>,
}

impl fmt::Debug for MetaChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetaChunk({})", self.path.display())
    }
}

impl MetaChunk {
    /// The metadata of chunk `range` in directory `meta_dir` (opened lazily).
    pub fn new(fs: Arc<dyn FileSystem>, meta_dir: &Path, range: ChunkRange) -> MetaChunk {
        MetaChunk {
            range,
            path: meta_dir.join(file_name(range)),
            fs,
            loaded: OnceCell::new(),
        }
    }

    /// The chunk's levels.
    pub fn range(&self) -> ChunkRange {
        self.range
    }

    /// The zip's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<&(Archive, MapBytes)> {
        self.loaded.get_or_try_init(|| {
            let file = self.fs.open(&self.path, OpenMode::Read)?;
            let map = MapBytes(Arc::new(file.map()?));
            let a = ZipArchive::new(Cursor::new(map.clone()))
                .map_err(|e| Error::corrupted(&self.path, e))?;
            Ok((a, map))
        })
    }

    fn archive(&self) -> Result<Archive> {
        // Clones share the parsed central directory and the mapping.
        Ok(self.load()?.0.clone())
    }

    /// The metadata of `level`, or `None` if the block had none.
    /// A damaged entry is `Corrupted`.
    pub fn read(&self, level: i32) -> Result<Option<Vec<u8>>> {
        let mut a = self.archive()?;
        let Some(i) = a.index_for_name(&level.to_string()) else {
            return Ok(None);
        };
        let raw = {
            let e = a
                .by_index_raw(i)
                .map_err(|e| Error::corrupted(&self.path, format!("level {level}: {e}")))?;
            match (e.compression(), e.data_start()) {
                (CompressionMethod::Zstd, Some(start)) => {
                    Some((start, e.compressed_size(), e.size(), e.crc32()))
                }
                _ => None,
            }
        };
        match raw {
            Some((start, len, size, crc)) => self.read_zstd(level, start, len, size, crc).map(Some),
            // Other methods (zips written by other tools) go through the
            // zip crate's decoders.
            None => self.read_generic(&mut a, level),
        }
    }

    /// Decompresses a zstd entry straight from the mapping with a reusable
    /// per-thread context (the zip crate sets up a new one per entry, which
    /// costs more than decompressing a few KiB).
    fn read_zstd(&self, level: i32, start: u64, len: u64, size: u64, crc: u32) -> Result<Vec<u8>> {
        thread_local! {
            static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        let data = self.load()?.1.as_ref();
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| bad(format!("entry data {start}+{len} is outside the file")))?;
        if size > MAX_ENTRY {
            return Err(bad(format!("entry size {size} is implausible")));
        }
        let src = &data[start as usize..end as usize];
        let out = DCTX.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(
                    zstd::bulk::Decompressor::new()
                        .map_err(|e| Error::Io(format!("zstd context: {e}")))?,
                );
            }
            match slot.as_mut() {
                Some(d) => d
                    .decompress(src, size as usize)
                    .map_err(|e| bad(format!("zstd: {e}"))),
                None => Err(Error::Io("zstd context".into())),
            }
        })?;
        if out.len() as u64 != size || crc32fast::hash(&out) != crc {
            return Err(bad("entry checksum mismatch".into()));
        }
        Ok(out)
    }

    fn read_generic(&self, a: &mut Archive, level: i32) -> Result<Option<Vec<u8>>> {
        let mut entry = match a.by_name(&level.to_string()) {
            Ok(e) => e,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(Error::corrupted(&self.path, format!("level {level}: {e}"))),
        };
        let mut out = Vec::with_capacity(entry.size().min(1 << 30) as usize);
        entry
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupted(&self.path, format!("level {level}: {e}")))?;
        Ok(Some(out))
    }

    /// The levels that have an entry, checked to be in the chunk's range.
    pub fn levels(&self) -> Result<Vec<i32>> {
        let a = self.archive()?;
        let mut out = Vec::with_capacity(a.len());
        for name in a.file_names() {
            let name = name.map_err(|e| Error::corrupted(&self.path, e))?;
            let level: i32 = name
                .parse()
                .ok()
                .filter(|l| self.range.contains(*l))
                .ok_or_else(|| {
                    Error::corrupted(
                        &self.path,
                        format!("entry {name:?} is not a level of {}", self.range),
                    )
                })?;
            out.push(level);
        }
        out.sort_unstable();
        Ok(out)
    }
}

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
    Done(Result<Vec<PreparedZipFile>>),
    Taken,
}

impl Batch {
    /// Compresses the batch if nobody has claimed it yet.
    fn run(&self, options: SimpleFileOptions) {
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
        let out = compress(&entries, options);
        *self.state.lock() = BatchState::Done(out);
        self.done.notify_all();
    }

    /// The batch's result, compressing it here if no worker started it.
    fn take(&self, options: SimpleFileOptions) -> Result<Vec<PreparedZipFile>> {
        self.run(options);
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

fn compress(
    entries: &[(i32, Vec<u8>)],
    options: SimpleFileOptions,
) -> Result<Vec<PreparedZipFile>> {
    let zerr = |e: ZipError| Error::Io(format!("zstd compression of metadata: {e}"));
    entries
        .iter()
        .map(|(level, data)| {
            let mut b = ZipFileBuilder::new(level.to_string(), options).map_err(zerr)?;
            b.write_all(data)
                .map_err(|e| Error::Io(format!("zstd compression of metadata: {e}")))?;
            b.finish().map_err(zerr)
        })
        .collect()
}

/// Writes a metadata zip (to a temporary path chosen by the caller),
/// compressing entries in parallel on the worker pool.
pub(crate) struct MetaWriter {
    path: PathBuf,
    zip: ZipWriter<FileWriter>,
    failed: ErrorSlot,
    options: SimpleFileOptions,
    pending: Vec<(i32, Vec<u8>)>,
    pending_bytes: usize,
    inflight: VecDeque<Arc<Batch>>,
    max_inflight: usize,
}

impl MetaWriter {
    /// Creates (truncating) the zip at `path`.
    pub(crate) fn create(fs: &dyn FileSystem, path: &Path, zstd_level: i32) -> Result<MetaWriter> {
        let file = fs.open(path, OpenMode::Truncate)?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Zstd)
            .compression_level(Some(i64::from(zstd_level)));
        let writer = FileWriter::new(file);
        Ok(MetaWriter {
            path: path.to_path_buf(),
            failed: writer.error_slot(),
            zip: ZipWriter::new(writer),
            options,
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
        let job = batch.clone();
        let options = self.options;
        // The handle is not kept: the result is collected through `batch`.
        let _ = WorkerPool::global().submit(move || {
            job.run(options);
            Ok(())
        });
        self.inflight.push_back(batch);
        while self.inflight.len() > self.max_inflight {
            self.complete_oldest()?;
        }
        Ok(())
    }

    fn complete_oldest(&mut self) -> Result<()> {
        if let Some(batch) = self.inflight.pop_front() {
            let files = batch.take(self.options)?;
            for f in files {
                let r = self.zip.add_prepared_file(f);
                r.map_err(|e| self.zip_err(e))?;
            }
        }
        Ok(())
    }

    fn zip_err(&mut self, e: ZipError) -> Error {
        self.failed
            .take()
            .unwrap_or_else(|| Error::Io(format!("writing {}: {e}", self.path.display())))
    }

    /// Writes the remaining entries and the central directory, and fsyncs.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.dispatch()?;
        while !self.inflight.is_empty() {
            self.complete_oldest()?;
        }
        let path = self.path.clone();
        let mut w = match self.zip.finish() {
            Ok(w) => w,
            Err(e) => {
                return Err(self
                    .failed
                    .take()
                    .unwrap_or_else(|| Error::Io(format!("finishing {}: {e}", path.display()))));
            }
        };
        w.sync()
    }
}
