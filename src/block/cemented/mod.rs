//! The cemented block store (Octez `Cemented_block_store`): the finalized
//! chain, in chunks of consecutive levels.
//!
//! Files in the store's directory:
//! * `<start>_<end>`: one chunk file per chunk ([`chunk`]);
//! * `metadata/<start>_<end>.zip`: the chunk's metadata, one zstd entry per
//!   level that has some ([`metadata`]);
//! * `hash_to_level/` and `level_to_hash/`: the two indexes (removable, so
//!   that GC drops entries without rewriting them whole);
//! * `lock`: held by the read-write instance.
//!
//! * `metadata/<start>_<end>.dropped`: an empty marker left by GC for a
//!   zip it dropped from a chunk it keeps (a chunk written with a zip
//!   says so, so a zip that is missing without a marker is damage);
//! * `.tzs-quarantine/`: what a repair ([`Cemented::check`]) or an open
//!   set aside; never read.
//!
//! Writes are ordered so that a crash leaves at most one chunk that is on
//! disk but not (fully) indexed, which recovery completes at open: chunk
//! file (temporary name, fsync, rename, fsync of the directory), then its
//! metadata zip (same steps; the temporary zip is complete before the chunk
//! is renamed, so recovery can finish its rename), then both indexes,
//! flushed. Readers use an immutable table of chunks swapped in after a
//! write and swapped out before a GC deletes anything.

mod add_metadata;
mod check;
pub mod chunk;
mod file_writer;
mod gc;
mod iter;
mod meta_writer;
pub mod metadata;
mod recover;
mod repair;
mod salvage;
mod table;
mod writer;
mod zip_format;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::{Mutex, RwLock};

pub use chunk::ChunkRange;
pub use iter::ChunkIter;
pub use writer::ChunkWriter;

use super::reader::BlockReader;
use super::{Block, BlockRef, HASH_SIZE, Hash};
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::FileSystem;
use crate::options::OpenOptions;
use crate::store_dir::StoreDir;
use table::Tables;

/// Directory of the hash -> level index.
pub const HASH_TO_LEVEL: &str = "hash_to_level";
/// Directory of the level -> hash index.
pub const LEVEL_TO_HASH: &str = "level_to_hash";
/// Index log size used when the caller passes 0 (Octez uses 10,000).
pub const DEFAULT_LOG_SIZE: u64 = 10_000;

/// What `gc` keeps (Octez history modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryMode {
    /// Keep everything: GC does nothing.
    Archive,
    /// Keep every block, and the metadata of the last `offset` chunks.
    Full,
    /// Keep only the last `offset` chunks (blocks and metadata).
    Rolling,
}

/// Tuning of a cemented store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CementedConfig {
    /// Log size of both indexes (entries before a merge); 0 = [`DEFAULT_LOG_SIZE`].
    pub log_size: u64,
    /// zstd level of metadata entries (1..=22), or 0 ([`metadata::STORED`]):
    /// stored uncompressed, so that borrowed reads point into the zip.
    pub zstd_level: i32,
}

impl Default for CementedConfig {
    fn default() -> Self {
        CementedConfig {
            log_size: 0,
            zstd_level: metadata::DEFAULT_ZSTD_LEVEL,
        }
    }
}

/// A cemented block store. `Send + Sync`: reads run concurrently with each
/// other and with a writer; writers (`cement`, a `ChunkWriter`, `gc`) are
/// serialised.
///
/// A node uses it through [`BlockStore`](super::store::BlockStore), whose
/// merges cement chunks; alone, it stores chunks of consecutive levels:
///
/// ```
/// use tzstore::OpenOptions;
/// use tzstore::block::cemented::{Cemented, HistoryMode};
/// use tzstore::block::BlockRef;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let c = Cemented::open(dir.path(), &OpenOptions::read_write(), 0)?;
/// // Block n: hash 32 bytes of n + 1, predecessor block n - 1, genesis its own.
/// let hashes: Vec<[u8; 32]> = (0..8u8).map(|n| [n + 1; 32]).collect();
/// let blocks: Vec<BlockRef> = (0..8)
///     .map(|n| BlockRef {
///         hash: &hashes[n],
///         level: n as i32,
///         predecessor: &hashes[n.saturating_sub(1)],
///         contents: b"contents",
///         metadata: Some(b"metadata"),
///     })
///     .collect();
/// let first = c.cement(&blocks[..4], true, true)?; // levels 0..=3, with metadata
/// c.cement(&blocks[4..], true, true)?; // levels 4..=7
/// assert_eq!((first.start, first.end), (0, 3));
/// assert_eq!(c.hash_of(5)?, Some(hashes[5]));
/// let b = c.read_by_level(2, true)?.expect("cemented above");
/// assert_eq!(b.metadata.as_deref(), Some(&b"metadata"[..]));
/// // Rolling history keeping the last chunk drops levels 0..=3.
/// c.gc(HistoryMode::Rolling, 1)?;
/// assert_eq!(c.lowest_level(), Some(4));
/// # Ok(())
/// # }
/// ```
pub struct Cemented {
    dir: PathBuf,
    meta_dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    read_only: bool,
    tables: RwLock<Arc<Tables>>,
    writer: Mutex<()>,
    h2l: Index,
    l2h: Index,
    zstd_level: AtomicI32,
    _lock: StoreDir,
}

impl std::fmt::Debug for Cemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cemented({})", self.dir.display())
    }
}

impl Cemented {
    /// Opens (read-write: creating if needed) the store in `dir`, with
    /// `log_size` entries per index log (0 = default). A read-write open
    /// takes `dir/lock` (a second one gets `Locked`), removes temporary
    /// files, re-indexes a chunk left unindexed by a crash, and moves an
    /// incomplete last chunk that no index covers (never acknowledged)
    /// into `dir/.tzs-quarantine/`.
    ///
    /// Damage is never repaired here: a chunk file the indexes cover whose
    /// shape is wrong, a chunk file missing while the indexes or its zip
    /// hold its levels, a directory in place of a chunk or zip, overlapping
    /// chunks, or a damaged index give `Corrupted` naming the file and the
    /// offset, with nothing changed; [`Cemented::check`] with repair
    /// salvages such a store.
    ///
    /// Errors: `NotFound` (read-only open of a missing store), `Locked`,
    /// `Corrupted`, `Io`, `NoSpace`.
    pub fn open(dir: impl AsRef<Path>, opts: &OpenOptions, log_size: u64) -> Result<Cemented> {
        Cemented::open_with(
            dir,
            opts,
            CementedConfig {
                log_size,
                ..CementedConfig::default()
            },
        )
    }

    /// [`Cemented::open`] with every setting.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: &OpenOptions,
        cfg: CementedConfig,
    ) -> Result<Cemented> {
        check_zstd_level(cfg.zstd_level)?;
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        let meta_dir = dir.join(metadata::DIR);
        // Creating the metadata folder creates `dir` with it.
        let lock = StoreDir::open_creating(
            fs.as_ref(),
            &dir,
            &meta_dir,
            opts.read_only,
            "cemented store",
        )?;
        let log_size = if cfg.log_size == 0 {
            DEFAULT_LOG_SIZE
        } else {
            cfg.log_size
        };
        let index = |name: &str, k: usize, v: usize| {
            Index::open(
                dir.join(name),
                IndexConfig {
                    key_size: k,
                    value_size: v,
                    removable: true,
                    log_size,
                    open: opts.clone(),
                },
            )
        };
        let h2l = index(HASH_TO_LEVEL, HASH_SIZE, 4)?;
        let l2h = index(LEVEL_TO_HASH, 4, HASH_SIZE)?;
        let store = Cemented {
            dir,
            meta_dir,
            fs,
            read_only: opts.read_only,
            tables: RwLock::new(Arc::new(Tables::default())),
            writer: Mutex::new(()),
            h2l,
            l2h,
            zstd_level: AtomicI32::new(cfg.zstd_level),
            _lock: lock,
        };
        let tables = if opts.read_only {
            recover::load(&store)?
        } else {
            recover::recover(&store)?
        };
        *store.tables.write() = Arc::new(tables);
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True for a read-only handle.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Sets the zstd level of metadata written from now on (1..=22, or 0
    /// to store it uncompressed).
    pub fn set_zstd_level(&self, level: i32) -> Result<()> {
        check_zstd_level(level)?;
        self.zstd_level.store(level, Ordering::Relaxed);
        Ok(())
    }

    /// The zstd level of metadata written from now on.
    pub fn zstd_level(&self) -> i32 {
        self.zstd_level.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<Tables> {
        self.tables.read().clone()
    }

    fn publish(&self, t: Tables) {
        *self.tables.write() = Arc::new(t);
    }

    /// Read-only handles: loads the chunks, metadata and index entries the
    /// read-write instance has written since the open or the last sync
    /// (a chunk whose index entries are not flushed yet is readable by
    /// level at once, by hash after a later sync). A no-op on a
    /// read-write handle. Errors: `Corrupted`, `Io`.
    pub fn sync(&self) -> Result<()> {
        if !self.read_only {
            return Ok(());
        }
        let _w = self.writer.lock();
        self.h2l.sync()?;
        self.l2h.sync()?;
        let fresh = recover::load(self)?;
        let old = self.snapshot();
        // Keep the chunks already open, with their mappings and parsed zips.
        let chunks = fresh
            .chunks
            .into_iter()
            .map(|c| match old.chunk(c.range().start) {
                Some(o) if o.range() == c.range() => o.clone(),
                _ => c,
            })
            .collect();
        let meta = fresh
            .meta
            .into_iter()
            .map(|m| match old.meta(m.range().start) {
                Some(o) if o.range() == m.range() => o.clone(),
                _ => m,
            })
            .collect();
        self.publish(Tables {
            chunks,
            meta,
            dropped_meta: fresh.dropped_meta,
        });
        Ok(())
    }

    /// The lowest cemented level, `None` when the store is empty.
    pub fn lowest_level(&self) -> Option<i32> {
        self.snapshot().lowest()
    }

    /// The highest cemented level, `None` when the store is empty.
    pub fn highest_level(&self) -> Option<i32> {
        self.snapshot().highest()
    }

    /// The resulting context hash of the cemented block `hash` (read from
    /// its record, checked, without copying it); `None` if not cemented.
    pub fn resulting_context_hash(&self, hash: &Hash) -> Result<Option<Hash>> {
        let Some(level) = self.level_of(hash)? else {
            return Ok(None);
        };
        let Some(c) = self.snapshot().chunk(level).cloned() else {
            return Ok(None);
        };
        absent_if_gone(c.parse_with_context(level).map(|(_, ctx)| Some(ctx)))
    }

    /// The level of the cemented block `hash`.
    pub fn level_of(&self, hash: &Hash) -> Result<Option<i32>> {
        let mut v = [0u8; 4];
        if !self.h2l.find_into(hash, &mut v)? {
            return Ok(None);
        }
        let level = i32::from_be_bytes(v);
        // A chunk being dropped by GC leaves the table before the index.
        let Some(c) = self.snapshot().chunk(level).cloned() else {
            return Ok(None);
        };
        // The index entry is trusted only if the chunk's record agrees: a
        // damaged index must not hand out another block.
        match absent_if_gone(c.hash(level).map(Some))? {
            Some(h) if &h == hash => Ok(Some(level)),
            Some(h) => Err(Error::corrupted(
                &self.dir.join(HASH_TO_LEVEL),
                format!(
                    "maps block {} to level {level}, whose record in {} holds block {}",
                    crate::block::hex(hash),
                    c.path().display(),
                    crate::block::hex(&h)
                ),
            )),
            None => Ok(None),
        }
    }

    /// True if `hash` is cemented.
    pub fn is_cemented(&self, hash: &Hash) -> Result<bool> {
        Ok(self.level_of(hash)?.is_some())
    }

    /// The hash of the cemented block at `level` (read from its chunk, where
    /// the level -> hash index says it is, as Octez §8 suggests).
    pub fn hash_of(&self, level: i32) -> Result<Option<Hash>> {
        match self.snapshot().chunk(level) {
            Some(c) => absent_if_gone(c.hash(level).map(Some)),
            None => Ok(None),
        }
    }

    /// The block at `level`, with its metadata if `read_metadata` and it has
    /// some still stored. `Corrupted` if the record or the metadata entry
    /// is damaged.
    pub fn read_by_level(&self, level: i32, read_metadata: bool) -> Result<Option<Block>> {
        let t = self.snapshot();
        let Some(c) = t.chunk(level) else {
            return Ok(None);
        };
        let mut b = match c.read(level) {
            // The snapshot predates a GC that unlinked the chunk.
            Err(Error::NotFound(_)) => return Ok(None),
            r => r?,
        };
        if read_metadata {
            b.metadata = metadata_of(&t, c, level)?;
        }
        Ok(Some(b))
    }

    /// [`Cemented::read_by_level`] without copying the block: borrowed
    /// from what `reader` holds after this call (the chunk's map; the
    /// metadata, decompressed, is the reader's own).
    pub fn read_view_by_level<'r>(
        &self,
        level: i32,
        read_metadata: bool,
        reader: &'r mut BlockReader,
    ) -> Result<Option<BlockRef<'r>>> {
        reader.start(read_metadata);
        if self.hold_level(level, read_metadata, reader)?.is_none() {
            return Ok(None);
        }
        reader.block()
    }

    /// [`Cemented::read_by_hash`] without copying the block, as
    /// [`Cemented::read_view_by_level`].
    pub fn read_view_by_hash<'r>(
        &self,
        hash: &Hash,
        read_metadata: bool,
        reader: &'r mut BlockReader,
    ) -> Result<Option<BlockRef<'r>>> {
        reader.start(read_metadata);
        match self.level_of(hash)? {
            Some(l) if self.hold_level(l, read_metadata, reader)?.is_some() => reader.block(),
            _ => Ok(None),
        }
    }

    /// Has `reader` hold the block at `level` (and its metadata when
    /// `read_metadata` and it has some): its hash and whether metadata was
    /// found, or `None` if the level is not cemented.
    pub(crate) fn hold_level(
        &self,
        level: i32,
        read_metadata: bool,
        reader: &mut BlockReader,
    ) -> Result<Option<(Hash, bool)>> {
        let t = self.snapshot();
        let Some(c) = t.chunk(level) else {
            return Ok(None);
        };
        let hash = match c.parse(level) {
            // The snapshot predates a GC that unlinked the chunk.
            Err(Error::NotFound(_)) => return Ok(None),
            r => *r?.hash,
        };
        let metadata = if read_metadata {
            held_metadata_of(&t, c, level)?
        } else {
            None
        };
        let found = metadata.is_some();
        reader.hold_chunk(c.clone(), level, metadata);
        Ok(Some((hash, found)))
    }

    /// The block `hash`, as [`Cemented::read_by_level`].
    pub fn read_by_hash(&self, hash: &Hash, read_metadata: bool) -> Result<Option<Block>> {
        match self.level_of(hash)? {
            Some(l) => self.read_by_level(l, read_metadata),
            None => Ok(None),
        }
    }

    /// The metadata of the block at `level`; `None` if it has none (or it
    /// was dropped by GC). Only that level's zip entry is decompressed.
    pub fn read_metadata(&self, level: i32) -> Result<Option<Vec<u8>>> {
        let t = self.snapshot();
        match t.chunk(level) {
            Some(c) => absent_if_gone(metadata_of(&t, c, level)),
            None => Ok(None),
        }
    }

    /// Appends the chunk `blocks` (levels `first..=last`, in order). With
    /// `write_metadata`, blocks' metadata go to the chunk's zip (written
    /// only if some block has metadata). With `check_consistency`, the
    /// chunk must start right after the highest cemented level and each
    /// block's predecessor must be the previous block. Durable on return.
    ///
    /// Errors: `InvalidArgument` (no block), `Inconsistent` (levels not
    /// consecutive, overlap with a stored chunk, duplicated or already
    /// cemented hash, broken contiguity or predecessor link), `ReadOnly`,
    /// `NoSpace`, `Io`. On error nothing is visible and nothing is left on
    /// disk but temporary files, removed by the next open.
    pub fn cement(
        &self,
        blocks: &[BlockRef<'_>],
        write_metadata: bool,
        check_consistency: bool,
    ) -> Result<ChunkRange> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Err(Error::invalid("cement: no block given"));
        };
        if last.level < first.level {
            return Err(Error::Inconsistent(format!(
                "cement: last block's level {} is below the first's {}",
                last.level, first.level
            )));
        }
        let mut w = self.begin_chunk(first.level, last.level, write_metadata, check_consistency)?;
        for b in blocks {
            w.push(b)?;
        }
        w.commit()
    }

    /// Starts writing the chunk of levels `start..=end` block by block, for
    /// chunks too large to hold in memory (Octez's `chunk_iterator`). The
    /// writer holds the store's write lock until it is committed or dropped
    /// (dropping it abandons the chunk). Checks as [`Cemented::cement`].
    pub fn begin_chunk(
        &self,
        start: i32,
        end: i32,
        write_metadata: bool,
        check_consistency: bool,
    ) -> Result<ChunkWriter<'_>> {
        ChunkWriter::begin(self, start, end, write_metadata, check_consistency)
    }

    /// The chunks, ascending.
    pub fn chunks(&self) -> Vec<ChunkRange> {
        self.snapshot().ranges()
    }

    /// The chunks that have a metadata zip, ascending.
    pub fn metadata_chunks(&self) -> Vec<ChunkRange> {
        self.snapshot().meta_ranges()
    }

    /// The chunk holding `level`.
    pub fn find_chunk(&self, level: i32) -> Option<ChunkRange> {
        self.snapshot().chunk(level).map(|c| c.range())
    }

    /// Iterates over the blocks of `chunk` (which must be one of
    /// [`Cemented::chunks`]), in level order, with metadata if asked. The
    /// iterator keeps the chunk readable even if GC drops it meanwhile.
    pub fn iter_chunk(&self, chunk: ChunkRange, read_metadata: bool) -> Result<ChunkIter> {
        let t = self.snapshot();
        let c = t
            .chunk(chunk.start)
            .filter(|c| c.range() == chunk)
            .ok_or_else(|| {
                Error::NotFound(format!("no chunk {chunk} in {}", self.dir.display()))
            })?;
        let (meta, missing) = if read_metadata {
            let m = t.meta(chunk.start).filter(|m| m.range() == chunk).cloned();
            let missing = m.is_none() && missing_zip(&t, c).is_err();
            (
                m,
                missing.then(|| self.meta_dir.join(metadata::file_name(chunk))),
            )
        } else {
            (None, None)
        };
        Ok(ChunkIter::new(c.clone(), meta, missing))
    }

    /// Drops what `mode` does not keep: see [`HistoryMode`]. Readers keep
    /// working; a chunk disappears from them at once, before its index
    /// entries and files are removed. A crash mid-GC is repaired at open.
    /// Errors: `ReadOnly`, `Io`.
    pub fn gc(&self, mode: HistoryMode, offset: u32) -> Result<()> {
        self.check_writable("gc")?;
        gc::run(self, mode, offset as usize)
    }

    /// Checks every chunk, block, metadata entry and index entry (hashes,
    /// levels, predecessor links, both indexes, every zip entry decompressed
    /// and checksummed); the first problem is returned as `Inconsistent` or
    /// `Corrupted`.
    pub fn check_consistency(&self, genesis: Option<&Hash>) -> Result<()> {
        check::run(self, genesis)
    }

    /// Verifies the store in `dir` without opening it (so it works on a
    /// store that refuses to open): every chunk file read back (shape,
    /// records' checksums and levels), every metadata entry decompressed
    /// and checksummed, both indexes against the chunks. Changes nothing
    /// without `repair`. With `repair` (takes `dir/lock`: no read-write
    /// handle may be open) it moves damaged or overlapping chunk files, and
    /// the zips of chunks it moves, into `dir/.tzs-quarantine/<time>/`,
    /// rewrites a damaged zip with its intact entries (the original to the
    /// quarantine), and rebuilds both indexes from the intact chunks when
    /// they disagree with them or a chunk was moved (the old indexes to the
    /// quarantine). Nothing is deleted. The report's problems are those
    /// that remain after the repair; the store then opens. Without repair
    /// it may run beside a writer, but a chunk cemented or dropped
    /// meanwhile may then show as a problem.
    ///
    /// Errors: `NotFound` (no such directory), `Locked` (with `repair`, a
    /// read-write handle is open), `Io`, `NoSpace`.
    pub fn check(dir: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        repair::run(dir.as_ref(), opts, repair)
    }

    fn check_writable(&self, what: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(format!(
                "{what}: cemented store {} was opened read-only",
                self.dir.display()
            )));
        }
        Ok(())
    }
}

/// The metadata of `level` in chunk `c`: its zip's entry, or none if the
/// chunk has no zip. `Corrupted` if the chunk was written with a zip that
/// is neither there nor dropped by GC.
fn metadata_of(t: &Tables, c: &chunk::Chunk, level: i32) -> Result<Option<Vec<u8>>> {
    match t.meta(level) {
        Some(m) => absent_if_gone(m.read(level)),
        None => missing_zip(t, c).map(|()| None),
    }
}

/// [`metadata_of`] for a reader: lent by the zip's map when stored.
fn held_metadata_of(
    t: &Tables,
    c: &chunk::Chunk,
    level: i32,
) -> Result<Option<metadata::MetaBytes>> {
    match t.meta(level) {
        Some(m) => absent_if_gone(m.read_held(level)),
        None => missing_zip(t, c).map(|()| None),
    }
}

/// `Ok` unless chunk `c`, which has no zip in `t`, was written with one
/// that GC did not drop.
fn missing_zip(t: &Tables, c: &chunk::Chunk) -> Result<()> {
    match c.has_metadata() {
        Ok(true) if !t.meta_dropped(c.range()) => Err(Error::corrupted(
            c.path(),
            format!(
                "written with a metadata zip, but {}/{} is missing",
                metadata::DIR,
                metadata::file_name(c.range())
            ),
        )),
        // A chunk unlinked by GC since the snapshot reads as absent.
        Err(Error::NotFound(_)) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A file unlinked by GC after the reader took its snapshot reads as absent.
fn absent_if_gone<T>(r: Result<Option<T>>) -> Result<Option<T>> {
    match r {
        Err(Error::NotFound(_)) => Ok(None),
        r => r,
    }
}

fn check_zstd_level(level: i32) -> Result<()> {
    if !(metadata::STORED..=22).contains(&level) {
        return Err(Error::invalid(format!(
            "zstd level must be 1..=22, or 0 to store metadata uncompressed, got {level}"
        )));
    }
    Ok(())
}
