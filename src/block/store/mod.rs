//! The block store a node uses (Octez `Block_store`): a cemented store and
//! floating stores under one directory. Blocks are stored as they arrive
//! (any fork), read by hash, ancestor or level, and the finalized part of the
//! chain is merged ("cemented") in the background.
//!
//! Layout of `dir`: `lock`, `manifest` (see [`manifest`]), `cemented/`, and
//! `floating/<id>/`, one directory per floating store. Which store is the RW
//! one, which are read-only, and which one a running merge fills is recorded
//! only in the manifest, so switching roles is one atomic file replacement
//! (Octez deletes the old floating directory before renaming the new one in;
//! a crash in between loses blocks, which cannot happen here).

mod chain;
mod history;
pub mod manifest;
mod merge;
mod repair;
mod salvage;
mod sync;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use super::cemented::{Cemented, CementedConfig, HistoryMode};
use super::floating::{Floating, FloatingKind, ReadHandles};
pub(crate) use super::hex;
use super::predecessors;
use super::reader::BlockReader;
use super::record::NO_CONTEXT;
use super::{Block, BlockRef, Hash};
use crate::error::{Error, Result};
use crate::io::{FileSystem, reclaim};
use crate::options::OpenOptions;
use crate::published::Published;
use crate::store_dir::StoreDir;
use crate::worker::{JobHandle, WorkerPool};
use manifest::Manifest;

pub use chain::{ChainMarks, MergeStatus};
pub use history::MAX_HISTORY_OFFSET;
pub use manifest::BlockDescr;
pub use repair::CheckReport;

/// Options of [`BlockStore::open`].
#[derive(Debug, Clone)]
pub struct BlockStoreOptions {
    /// Read-only flag and file system.
    pub open: OpenOptions,
    /// History mode of a new store (an existing store keeps its own).
    pub history_mode: HistoryMode,
    /// Chunks kept by FULL (metadata) and ROLLING (blocks) modes.
    pub history_offset: u32,
    /// Threads for background merges (0 = 1, at most [`MAX_WORKERS`]; more
    /// is `InvalidArgument`). Compression of metadata runs on the shared
    /// pool.
    pub workers: u32,
    /// Index log size of every index (0 = default).
    pub index_log_size: u64,
    /// zstd level of cemented metadata (1..=22; 0 stores it uncompressed,
    /// so that borrowed reads of cemented blocks point into the zip).
    pub zstd_level: i32,
}

impl Default for BlockStoreOptions {
    fn default() -> Self {
        BlockStoreOptions {
            open: OpenOptions::default(),
            history_mode: HistoryMode::Full,
            history_offset: 1,
            workers: 0,
            index_log_size: 0,
            zstd_level: CementedConfig::default().zstd_level,
        }
    }
}

/// The most merge threads a store accepts. One merge runs at a time, so a
/// few threads are all it can use; the bound keeps a wrong value from
/// spawning threads until the system refuses.
pub const MAX_WORKERS: u32 = 64;

/// Read-only opens retried when the manifest changed under them: a merge
/// swaps stores twice, so losing this many races in a row means a merge
/// loop far faster than any real node runs.
const READ_ONLY_OPEN_TRIES: usize = 100;

/// Counters and levels reported by [`BlockStore::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStoreStats {
    /// Lowest cemented level, if any block is cemented.
    pub cemented_lowest: Option<i32>,
    /// Highest cemented level, if any block is cemented.
    pub cemented_highest: Option<i32>,
    /// Blocks in the cemented store.
    pub cemented_blocks: u64,
    /// Blocks in the floating stores.
    pub floating_blocks: u64,
    /// Bytes of every file of the store.
    pub bytes_on_disk: u64,
    /// Merges completed since the store was created.
    pub merges_done: u64,
    /// Duration of the last merge, in milliseconds.
    pub last_merge_ms: u64,
    /// True while a merge runs.
    pub merging: bool,
}

/// The live floating stores: RW first, then read-only ones, newest first.
#[derive(Debug)]
pub(crate) struct Parts {
    pub rw: Arc<Floating>,
    pub ros: Vec<Arc<Floating>>,
}

impl Parts {
    fn all(&self) -> impl Iterator<Item = &Arc<Floating>> {
        std::iter::once(&self.rw).chain(self.ros.iter())
    }

    fn read_handles(&self) -> Vec<ReadHandles> {
        self.all().map(|f| f.read_handles()).collect()
    }
}

/// What [`BlockStore::set_merge_hook`] calls when a merge ends.
pub type MergeHook = Arc<dyn Fn(&Result<()>) + Send + Sync>;

pub(crate) struct Inner {
    dir: PathBuf,
    opts: BlockStoreOptions,
    fs: Arc<dyn FileSystem>,
    cemented: Cemented,
    parts: RwLock<Arc<Parts>>,
    /// The floating stores' maps and tables of places, in `parts`' order,
    /// for readers to keep (module `reader`); replaced with `parts`.
    read_parts: Published<Vec<ReadHandles>>,
    /// The persisted manifest; held while changing roles or storing.
    manifest: Mutex<Manifest>,
    /// The manifest's stamp when a read-only handle last loaded it.
    synced: Mutex<Option<crate::io::FileStamp>>,
    /// The running (or last) merge job.
    merge_job: Mutex<Option<JobHandle>>,
    merging: AtomicBool,
    /// How the last merge of this handle ended (`None`: none ended yet).
    last_merge: Mutex<Option<Result<()>>>,
    /// Called on the merge's worker thread when a merge ends.
    merge_hook: Mutex<Option<MergeHook>>,
    /// Floating stores replaced by a merge, deleted once no reader holds them.
    retired: Mutex<Vec<Arc<Floating>>>,
    /// The background deletion of retired stores, if one was started.
    reaping: Mutex<Option<JobHandle>>,
    _lock: StoreDir,
}

/// One node's block store. `Send + Sync`: stores, reads and a background
/// merge run concurrently; every read sees the state before or after a merge.
///
/// ```
/// use tzstore::block::BlockRef;
/// use tzstore::block::cemented::HistoryMode;
/// use tzstore::block::store::{BlockStore, BlockStoreOptions};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let opts = BlockStoreOptions {
///     history_mode: HistoryMode::Rolling,
///     history_offset: 2, // keep the last 2 cemented chunks
///     ..BlockStoreOptions::default()
/// };
/// let store = BlockStore::open(dir.path(), opts)?;
/// // Block n: level n, hash 32 bytes of n + 1, predecessor block n - 1
/// // (genesis is its own predecessor).
/// let hash = |n: u8| [n + 1; 32];
/// for n in 0..30u8 {
///     let contents = format!("block {n}");
///     store.store(&BlockRef {
///         hash: &hash(n),
///         level: n.into(),
///         predecessor: &hash(n.saturating_sub(1)),
///         contents: contents.as_bytes(),
///         metadata: None,
///     })?; // durable on return
/// }
/// let ancestor = store.read(&hash(29), 10, false)?.expect("stored above");
/// assert_eq!(ancestor.contents, b"block 19");
/// // Cement levels 0..=9 and 10..=19 in the background; reads go on.
/// store.merge(&hash(29), &[9, 19])?;
/// store.await_merge()?;
/// assert_eq!(store.read_by_level(15, false)?.map(|b| b.level), Some(15));
/// assert_eq!(store.stats()?.cemented_highest, Some(19));
/// # Ok(())
/// # }
/// ```
pub struct BlockStore {
    inner: Arc<Inner>,
    /// Kept outside `Inner`: a merge job holds an `Arc<Inner>`, and the
    /// pool must never be dropped from one of its own threads.
    pool: Option<WorkerPool>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockStore({})", self.inner.dir.display())
    }
}

fn floating_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join("floating").join(id.to_string())
}

impl BlockStore {
    /// Opens (read-write: creating) the block store in `dir`. A read-write
    /// open takes `dir/lock` and repairs what a crash left: a merge that was
    /// running is rolled back (its half-filled store deleted; the blocks it
    /// was copying are still in the stores it read), floating stores that a
    /// manifest generation proves abandoned are deleted, torn tails are cut
    /// and unindexed blocks re-indexed. Nothing else is deleted: a
    /// directory that holds floating or cemented data but no manifest, or a
    /// damaged manifest, is `Corrupted` (see [`BlockStore::check_dir`]).
    ///
    /// A read-only open runs beside the writer's merges: when a store it
    /// opens vanishes because a merge swapped the manifest meanwhile, it
    /// starts again from the new manifest.
    pub fn open(dir: impl AsRef<Path>, opts: BlockStoreOptions) -> Result<BlockStore> {
        if opts.workers > MAX_WORKERS {
            return Err(Error::invalid(format!(
                "workers {} is above the maximum {MAX_WORKERS}",
                opts.workers
            )));
        }
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.open.fs.clone();
        let read_only = opts.open.read_only;
        let lock = StoreDir::open(fs.as_ref(), &dir, read_only, "block store")?;
        let mut tries = 0;
        let (manifest, cemented, parts) = loop {
            let mut manifest = match Manifest::load(fs.as_ref(), &dir)? {
                Some(m) => m,
                None => {
                    salvage::refuse_without_manifest(fs.as_ref(), &dir)?;
                    if read_only {
                        return Err(Error::NotFound(format!(
                            "{} holds no block store (no manifest)",
                            dir.display()
                        )));
                    }
                    // The first RW store exists before the manifest names
                    // it, so a listed store is never legitimately missing;
                    // a crash in between leaves only an empty store.
                    let m = Manifest::new(opts.history_mode, opts.history_offset);
                    drop(open_floating(&dir, &opts, m.rw)?);
                    m.store(fs.as_ref(), &dir)?;
                    m
                }
            };
            if !read_only {
                repair::recover_at_open(fs.as_ref(), &dir, &mut manifest)?;
            }
            match open_parts(&dir, &opts, &manifest) {
                // A read-only open races the writer's merges: a store it
                // opened may have been in deletion already (a swap retired
                // it), and a half-deleted index opens as an empty one. The
                // writer deletes only after replacing the manifest, so an
                // unchanged manifest now proves every store was whole when
                // opened.
                Ok((cemented, parts))
                    if !read_only
                        || Manifest::load(fs.as_ref(), &dir)?.as_ref() == Some(&manifest) =>
                {
                    break (manifest, cemented, parts);
                }
                Ok(_) if tries < READ_ONLY_OPEN_TRIES => tries += 1,
                Ok(_) => {
                    return Err(Error::Io(format!(
                        "read-only open of {}: the manifest changed {READ_ONLY_OPEN_TRIES} times while the stores were opened",
                        dir.display()
                    )));
                }
                Err(e) if read_only && tries < READ_ONLY_OPEN_TRIES => {
                    tries += 1;
                    // Unchanged manifest: the error is the store's own.
                    if Manifest::load(fs.as_ref(), &dir)?.as_ref() == Some(&manifest) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        // Merges get threads of their own: a merge waits on compression jobs
        // of the shared pool, so it must never occupy one of its threads.
        let pool = if read_only {
            None
        } else {
            Some(WorkerPool::new(opts.workers.max(1) as usize)?)
        };
        Ok(BlockStore {
            pool,
            inner: Arc::new(Inner {
                dir,
                fs,
                cemented,
                read_parts: Published::new(Arc::new(parts.read_handles())),
                parts: RwLock::new(Arc::new(parts)),
                manifest: Mutex::new(manifest),
                synced: Mutex::new(None),
                merge_job: Mutex::new(None),
                merging: AtomicBool::new(false),
                last_merge: Mutex::new(None),
                merge_hook: Mutex::new(None),
                retired: Mutex::new(Vec::new()),
                reaping: Mutex::new(None),
                opts,
                _lock: lock,
            }),
        })
    }

    /// Checks the block store in `dir` without a handle (it works on a store
    /// that refuses to open): the manifest, every floating store (each entry
    /// verified, file and index compared), orphan directories, and the
    /// cemented store. Changes nothing without `repair`. With `repair` it
    /// takes the store's lock, rebuilds a missing or damaged manifest from
    /// the floating stores found, copies the intact entries of a damaged
    /// floating store into a new one and moves the damaged one (and any
    /// orphan no manifest generation accounts for) into
    /// `dir/.tzs-quarantine/<UTC time>-<n>/`; nothing is deleted but what
    /// a read-write open would delete. The report lists what was checked,
    /// kept and moved; damage of the cemented store is reported, not
    /// repaired (see the cemented store's own check).
    ///
    /// `InvalidArgument` when `dir` holds no block store (nothing is
    /// created); `Locked` when repairing while a read-write handle is open.
    pub fn check_dir(
        dir: impl AsRef<Path>,
        opts: &BlockStoreOptions,
        repair: bool,
    ) -> Result<CheckReport> {
        salvage::check_dir(dir.as_ref(), opts, repair)
    }

    /// Stores `block`, durable on return. Computes its predecessor list. A
    /// block already stored is a no-op; a block whose predecessor is unknown
    /// is `Inconsistent`, except the first block of an empty store (genesis).
    pub fn store(&self, block: &BlockRef<'_>) -> Result<()> {
        self.store_with(block, true)
    }

    /// [`BlockStore::store`] with explicit durability: without `flush` the
    /// block survives a process crash but not a power cut until the next
    /// flushed store or [`BlockStore::flush`].
    pub fn store_with(&self, block: &BlockRef<'_>, flush: bool) -> Result<()> {
        self.inner.store(block, &NO_CONTEXT, flush, false)
    }

    /// [`BlockStore::store_with`], recording the block's resulting context
    /// hash (Octez's `store_block block resulting_context_hash`), read back
    /// by [`BlockStore::resulting_context_hash`].
    pub fn store_with_context(
        &self,
        block: &BlockRef<'_>,
        context: &Hash,
        flush: bool,
    ) -> Result<()> {
        self.inner.store(block, context, flush, false)
    }

    /// The resulting context hash `block` was stored with (zeros if none
    /// was given), without reading the block: from the floating index, or
    /// from the cemented record (checked, not copied). `None` if the block
    /// is not stored.
    pub fn resulting_context_hash(&self, hash: &Hash) -> Result<Option<Hash>> {
        let parts = self.inner.parts.read().clone();
        for f in parts.all() {
            if let Some((_, context)) = f.find_info(hash)? {
                return Ok(Some(context));
            }
        }
        self.inner.cemented.resulting_context_hash(hash)
    }

    /// Stores `block` in the floating store even if it is cemented (the
    /// copy a merge keeps of the blocks it preserves), so that a tool
    /// copying a store reproduces its floating part exactly. A block
    /// already floating is left as it is. Same errors as
    /// [`BlockStore::store_with`].
    pub fn store_floating(&self, block: &BlockRef<'_>, context: &Hash, flush: bool) -> Result<()> {
        self.inner.store(block, context, flush, true)
    }

    /// Makes every stored block durable.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_writable()?;
        let _m = self.inner.manifest.lock();
        self.inner.parts.read().rw.flush()
    }

    /// True if the block is stored (floating or cemented).
    pub fn mem(&self, hash: &Hash) -> Result<bool> {
        let parts = self.inner.parts.read().clone();
        self.inner.mem_in(&parts, hash)
    }

    /// The block `distance` blocks below `hash` (0 = the block itself), with
    /// its metadata when `read_metadata` and it has any. `None` when `hash`
    /// is unknown or the distance runs past genesis or into pruned history.
    pub fn read(&self, hash: &Hash, distance: u32, read_metadata: bool) -> Result<Option<Block>> {
        let parts = self.inner.parts.read().clone();
        let Some(target) = self.inner.resolve(&parts, hash, distance as u64)? else {
            return Ok(None);
        };
        self.inner.read_exact(&parts, &target, read_metadata)
    }

    /// The cemented block at `level`; `None` if that level is not cemented.
    /// A block cemented without metadata that a merge preserved in the
    /// floating store is read with the floating copy's metadata.
    pub fn read_by_level(&self, level: i32, read_metadata: bool) -> Result<Option<Block>> {
        let block = self.inner.cemented.read_by_level(level, read_metadata)?;
        match block {
            Some(b) if read_metadata && b.metadata.is_none() => {
                let parts = self.inner.parts.read().clone();
                for f in parts.all() {
                    if let Some(floating) = f.read_block(&b.hash)? {
                        return Ok(Some(floating));
                    }
                }
                Ok(Some(b))
            }
            other => Ok(other),
        }
    }

    /// [`BlockStore::read`] without copying the block: borrowed from what
    /// `reader` holds after this call, a map of the floating or cemented
    /// file that holds it (see [`BlockReader`] for what keeps it valid
    /// across merges and GC). `None` as for `read`; the reader then holds
    /// nothing.
    pub fn read_view<'r>(
        &self,
        hash: &Hash,
        distance: u32,
        read_metadata: bool,
        reader: &'r mut BlockReader,
    ) -> Result<Option<BlockRef<'r>>> {
        reader.start(read_metadata);
        // Cloned per read, not kept in the reader: a reader holding the
        // floating stores would keep a closed store's lock and a retired
        // store's directory (the maps it holds keep only the files' bytes).
        // Not taken at all for a block found placed at distance 0.
        let mut parts = None;
        let target = if distance == 0 {
            *hash
        } else {
            let p = self.inner.parts.read().clone();
            let Some(t) = self.inner.resolve(&p, hash, distance as u64)? else {
                return Ok(None);
            };
            parts = Some(p);
            t
        };
        // A block placed in a floating store's map: found with the copies
        // the reader keeps of the stores' maps and tables, no lock taken.
        if reader.hold_placed_in_parts(&self.inner.read_parts, &target) {
            return reader.block();
        }
        let parts = parts.unwrap_or_else(|| self.inner.parts.read().clone());
        if !self
            .inner
            .hold_unplaced(&parts, &target, read_metadata, reader)?
        {
            return Ok(None);
        }
        reader.block()
    }

    /// [`BlockStore::read_by_level`] without copying the block, as
    /// [`BlockStore::read_view`].
    pub fn read_view_by_level<'r>(
        &self,
        level: i32,
        read_metadata: bool,
        reader: &'r mut BlockReader,
    ) -> Result<Option<BlockRef<'r>>> {
        reader.start(read_metadata);
        let cemented = &self.inner.cemented;
        let Some((hash, has_metadata)) = cemented.hold_level(level, read_metadata, reader)? else {
            return Ok(None);
        };
        if read_metadata && !has_metadata {
            // A preserved block: its metadata is in the floating copy.
            let parts = self.inner.parts.read().clone();
            for f in parts.all() {
                if f.hold_block(&hash, reader)? {
                    break;
                }
            }
        }
        reader.block()
    }

    /// Starts a background merge: cements the ancestors of `head` up to the
    /// last of `chunk_ends`, one chunk per interval `(previous end + 1 ..=
    /// end]`, keeps the blocks above it that descend from the new cemented
    /// top in a fresh read-only floating store, drops branches that no longer
    /// connect, and applies the history mode's GC. Returns once the merge is
    /// started; new blocks go to a fresh RW store meanwhile.
    ///
    /// Ends at or below the highest cemented level are skipped (so a merge
    /// interrupted by a crash can simply be asked again). A second `merge`
    /// while one runs first waits for it; if it failed, its error is
    /// returned and no new merge starts.
    ///
    /// The new cemented top stays in the floating store too, with its
    /// metadata (Octez keeps the last preserved block there); see
    /// [`BlockStore::merge_preserving`] to keep more of its ancestors.
    pub fn merge(&self, head: &Hash, chunk_ends: &[i32]) -> Result<()> {
        self.merge_preserving(head, chunk_ends, 0)
    }

    /// [`BlockStore::merge`], keeping in the floating store, with their
    /// metadata, the new cemented top (the head's last preserved block,
    /// the last chunk end) and up to `max_op_ttl` of its ancestors (as many
    /// as the floating stores hold), as Octez's `merge_stores` does with
    /// the blocks from the LPBL down to `LPBL - max_op_ttl`. They are
    /// then both cemented and floating; reads take the floating copy.
    pub fn merge_preserving(&self, head: &Hash, chunk_ends: &[i32], max_op_ttl: u32) -> Result<()> {
        let pool = self.pool.as_ref().ok_or_else(|| {
            Error::ReadOnly(format!(
                "block store {} was opened read-only",
                self.inner.dir.display()
            ))
        })?;
        merge::start(&self.inner, pool, head, chunk_ends, max_op_ttl)
    }

    /// Waits for the running merge, if any, and returns its error.
    pub fn await_merge(&self) -> Result<()> {
        self.inner.await_merge()
    }

    /// Sets (or, with `None`, removes) the function told of each merge's
    /// end: `Ok` once the merge has swapped the stores and run its GC, or
    /// the error it failed with (the store then holds what it held before
    /// the merge). It runs once per merge that ends while it is set, on the
    /// merge's worker thread after [`BlockStore::merging`] turned false (or,
    /// for a `merge` with nothing left to cement, on the caller's thread
    /// before `merge` returns). It must return quickly and must not call
    /// `merge`, `await_merge` or close this store from the worker (it would
    /// wait for itself). [`BlockStore::await_merge`] still returns the
    /// merge's result.
    pub fn set_merge_hook(&self, hook: Option<MergeHook>) {
        *self.inner.merge_hook.lock() = hook;
    }

    /// True while a merge runs: a cheap poll, unlike [`BlockStore::stats`]
    /// (which measures the bytes on disk).
    pub fn merging(&self) -> bool {
        self.inner.merging.load(Ordering::SeqCst)
    }

    /// True while a merge runs or the floating stores it replaced are
    /// still being deleted in the background.
    pub fn busy(&self) -> bool {
        self.merging() || self.inner.reaping()
    }

    /// Levels, counts and sizes.
    pub fn stats(&self) -> Result<BlockStoreStats> {
        self.inner.reap_retired();
        let parts = self.inner.parts.read().clone();
        let m = self.inner.manifest.lock().clone();
        let cemented_blocks = self
            .inner
            .cemented
            .chunks()
            .iter()
            .map(|c| c.len() as u64)
            .sum();
        Ok(BlockStoreStats {
            cemented_lowest: self.inner.cemented.lowest_level(),
            cemented_highest: self.inner.cemented.highest_level(),
            cemented_blocks,
            floating_blocks: parts.all().map(|f| f.len()).sum(),
            bytes_on_disk: repair::dir_size(self.inner.fs.as_ref(), &self.inner.dir)?,
            merges_done: m.merges_done,
            last_merge_ms: m.last_merge_ms,
            merging: self.inner.merging.load(Ordering::SeqCst),
        })
    }

    /// Checks every invariant of the open store: each floating store's
    /// entries pass their checksums and agree with its index, the cemented
    /// chain is consistent, and no directory of `floating/` is unaccounted
    /// for. With `repair` (read-write handles), moves such orphans into the
    /// quarantine; damaged stores stay problems, since they are in use:
    /// close the store and use [`BlockStore::check_dir`] to salvage them.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        // Stores being deleted would look like orphans.
        self.inner.reap_retired();
        self.inner.await_reaping();
        repair::check(&self.inner, repair)
    }

    /// The history mode and offset of the store.
    pub fn history(&self) -> (HistoryMode, u32) {
        let m = self.inner.manifest.lock();
        (m.history_mode, m.history_offset)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Chunks of the cemented store, ascending.
    pub fn cemented_chunks(&self) -> Vec<super::cemented::ChunkRange> {
        self.inner.cemented.chunks()
    }

    /// Chunks of the cemented store that keep their blocks' metadata,
    /// ascending (FULL mode drops the metadata of older chunks).
    pub fn cemented_metadata_chunks(&self) -> Vec<super::cemented::ChunkRange> {
        self.inner.cemented.metadata_chunks()
    }

    /// Iterates the blocks of cemented `chunk` (one of
    /// [`BlockStore::cemented_chunks`]) in level order, with metadata if
    /// asked; the chunk stays readable even if GC drops it meanwhile.
    pub fn iter_cemented_chunk(
        &self,
        chunk: super::cemented::ChunkRange,
        read_metadata: bool,
    ) -> Result<super::cemented::ChunkIter> {
        self.inner.cemented.iter_chunk(chunk, read_metadata)
    }

    /// Iterators over the blocks of every live floating store as this
    /// handle sees them, oldest store first (the read-only ones, then the
    /// RW one), each in arrival order: a block's predecessor, if floating,
    /// comes before it, so storing the blocks in this order into another
    /// store succeeds. A read-only handle's iterator ends at an entry the
    /// writer is still appending.
    pub fn floating_iters(&self, with_metadata: bool) -> Vec<super::floating::FloatingIter> {
        let parts = self.inner.parts.read().clone();
        let mut out: Vec<_> = parts
            .ros
            .iter()
            .rev()
            .map(|f| f.iter(with_metadata))
            .collect();
        out.push(parts.rw.iter(with_metadata));
        out
    }
}

impl Drop for BlockStore {
    fn drop(&mut self) {
        // A merge holds its own reference to the store's internals; let it
        // finish so its files are complete (it is safe to crash mid-merge,
        // but a clean close should not leave work to repair).
        let _ = self.inner.await_merge();
        self.inner.reap_retired();
        self.inner.await_reaping();
    }
}

/// Opens the cemented store and the floating stores `manifest` lists.
fn open_parts(
    dir: &Path,
    opts: &BlockStoreOptions,
    manifest: &Manifest,
) -> Result<(Cemented, Parts)> {
    let cemented = Cemented::open_with(
        dir.join("cemented"),
        &opts.open,
        CementedConfig {
            log_size: opts.index_log_size,
            zstd_level: opts.zstd_level,
        },
    )?;
    let open_listed = |id: u64| {
        let path = floating_dir(dir, id);
        if !opts.open.fs.is_dir(&path)? {
            return Err(Error::corrupted(
                &path,
                "floating store listed in the manifest is missing",
            ));
        }
        // A listed store always has its blocks file (it is created before
        // the manifest names the store): a read-write open must not
        // create an empty one under an index that points into it.
        let file = walk::file_of(&path);
        if !opts.open.fs.exists(&file)? {
            return Err(Error::corrupted(&file, "floating blocks file is missing"));
        }
        open_floating(dir, opts, id)
    };
    let rw = open_listed(manifest.rw)?;
    let ros = manifest
        .ros
        .iter()
        .map(|&id| open_listed(id))
        .collect::<Result<Vec<_>>>()?;
    Ok((cemented, Parts { rw, ros }))
}

/// Opens (read-write: creates) floating store `id` of the block store in
/// `dir`. Roles live in the manifest, so every store uses the RW file names.
fn open_floating(dir: &Path, opts: &BlockStoreOptions, id: u64) -> Result<Arc<Floating>> {
    let log_size = match opts.index_log_size {
        0 => super::floating::DEFAULT_LOG_SIZE,
        n => n,
    };
    Ok(Arc::new(Floating::open_with_log_size(
        floating_dir(dir, id),
        FloatingKind::Rw,
        &opts.open,
        log_size,
    )?))
}

impl Inner {
    /// Makes `parts` the live floating stores, and their read handles the
    /// ones readers keep.
    fn set_parts(&self, parts: Parts) {
        let mut current = self.parts.write();
        self.read_parts.replace(Arc::new(parts.read_handles()));
        *current = Arc::new(parts);
    }

    fn check_writable(&self) -> Result<()> {
        if self.opts.open.read_only {
            return Err(Error::ReadOnly(format!(
                "block store {} was opened read-only",
                self.dir.display()
            )));
        }
        Ok(())
    }

    fn mem_in(&self, parts: &Parts, hash: &Hash) -> Result<bool> {
        for f in parts.all() {
            if f.mem(hash)? {
                return Ok(true);
            }
        }
        self.cemented.is_cemented(hash)
    }

    fn floating_preds(&self, parts: &Parts, hash: &Hash) -> Result<Option<Vec<Hash>>> {
        for f in parts.all() {
            if let Some(p) = f.find_predecessors(hash)? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Entry `i` of `hash`'s predecessor list: from its floating index, or by
    /// level arithmetic when it is cemented.
    fn nth_predecessor(&self, parts: &Parts, hash: &Hash, i: usize) -> Result<Option<Hash>> {
        if let Some(p) = self.floating_preds(parts, hash)? {
            return Ok(p.get(i).copied());
        }
        match self.cemented.level_of(hash)? {
            Some(level) => self.cemented_below(level, 1u64 << i),
            None => Ok(None),
        }
    }

    fn cemented_below(&self, level: i32, distance: u64) -> Result<Option<Hash>> {
        let target = level as i64 - distance as i64;
        match self.cemented.lowest_level() {
            Some(low) if target >= low as i64 => self.cemented.hash_of(target as i32),
            _ => Ok(None),
        }
    }

    /// The hash `distance` blocks below `hash`, walking floating predecessor
    /// lists and switching to level arithmetic once in the cemented part.
    fn resolve(&self, parts: &Parts, hash: &Hash, distance: u64) -> Result<Option<Hash>> {
        let mut current = *hash;
        let mut left = distance;
        loop {
            if let Some(preds) = self.floating_preds(parts, &current)? {
                if left == 0 {
                    return Ok(Some(current));
                }
                let Some(step) = largest_step(left, preds.len()) else {
                    return Ok(None); // genesis: nothing below
                };
                current = preds[step];
                left -= 1u64 << step;
                continue;
            }
            return match self.cemented.level_of(&current)? {
                Some(_) if left == 0 => Ok(Some(current)),
                Some(level) => self.cemented_below(level, left),
                None => Ok(None),
            };
        }
    }

    fn read_exact(&self, parts: &Parts, hash: &Hash, read_metadata: bool) -> Result<Option<Block>> {
        for f in parts.all() {
            if let Some(mut b) = f.read_block(hash)? {
                if !read_metadata {
                    b.metadata = None;
                }
                return Ok(Some(b));
            }
        }
        self.cemented.read_by_hash(hash, read_metadata)
    }

    /// Has `reader` hold block `hash` as [`Inner::read_exact`] finds it,
    /// after [`BlockReader::hold_placed_in_parts`] found it in no table of
    /// places (so the floating stores are searched through their indexes);
    /// false if it is not stored.
    fn hold_unplaced(
        &self,
        parts: &Parts,
        hash: &Hash,
        read_metadata: bool,
        reader: &mut BlockReader,
    ) -> Result<bool> {
        for f in parts.all() {
            if f.hold_indexed(hash, reader)? {
                return Ok(true);
            }
        }
        match self.cemented.level_of(hash)? {
            Some(level) => Ok(self
                .cemented
                .hold_level(level, read_metadata, reader)?
                .is_some()),
            None => Ok(false),
        }
    }

    fn level_of_stored(&self, parts: &Parts, hash: &Hash) -> Result<Option<i32>> {
        for f in parts.all() {
            if let Some((level, _)) = f.level_and_predecessor(hash)? {
                return Ok(Some(level));
            }
        }
        self.cemented.level_of(hash)
    }

    fn store(
        &self,
        block: &BlockRef<'_>,
        context: &Hash,
        flush: bool,
        even_if_cemented: bool,
    ) -> Result<()> {
        self.check_writable()?;
        self.reap_retired();
        // The manifest lock orders stores with a merge's role switches.
        let mut m = self.manifest.lock();
        let parts = self.parts.read().clone();
        let stored = if even_if_cemented {
            self.floating_preds(&parts, block.hash)?.is_some()
        } else {
            self.mem_in(&parts, block.hash)?
        };
        if stored {
            return Ok(());
        }
        let empty = parts.all().all(|f| f.is_empty()) && self.cemented.highest_level().is_none();
        let preds = if empty {
            chain::record_genesis(self, &mut m, block)?;
            Vec::new()
        } else {
            let Some(pred_level) = self.level_of_stored(&parts, block.predecessor)? else {
                return Err(Error::Inconsistent(format!(
                    "block {} at level {}: predecessor {} is unknown",
                    hex(block.hash),
                    block.level,
                    hex(block.predecessor)
                )));
            };
            if pred_level.checked_add(1) != Some(block.level) {
                return Err(Error::Inconsistent(format!(
                    "block {} has level {} but its predecessor has level {pred_level}",
                    hex(block.hash),
                    block.level
                )));
            }
            predecessors::compute(block.predecessor, |h, i| self.nth_predecessor(&parts, h, i))?
        };
        parts.rw.append_with_context(block, context, &preds, flush)
    }

    /// The highest level merged so far: the cemented top, or above it the
    /// highwatermark of merges that cemented nothing (ROLLING 0).
    fn merged_floor(&self) -> Option<i32> {
        let watermark = self.manifest.lock().highwatermark;
        self.cemented.highest_level().max(watermark)
    }

    /// Tells the merge hook, if one is set, how a merge ended (the lock is
    /// released first: the hook may set another).
    fn merge_ended(&self, result: &Result<()>) {
        let hook = self.merge_hook.lock().clone();
        if let Some(hook) = hook {
            hook(result);
        }
    }

    fn await_merge(&self) -> Result<()> {
        let job = self.merge_job.lock().take();
        match job {
            Some(j) => j.wait(),
            None => Ok(()),
        }
    }

    /// Deletes, in the background, the retired floating stores that no
    /// reader holds any more (the handle is closed before its directory is
    /// removed). Deletion is gradual (see [`crate::io::reclaim`]) so that it
    /// does not stall the fsyncs of `store`.
    fn reap_retired(&self) {
        let mut retired = self.retired.lock();
        if retired.is_empty() {
            return;
        }
        let mut free = Vec::new();
        retired.retain(|f| {
            if Arc::strong_count(f) > 1 {
                return true;
            }
            free.push(f.dir().to_path_buf());
            false
        });
        drop(retired);
        if free.is_empty() {
            return;
        }
        let fs = self.fs.clone();
        let parent = self.dir.join("floating");
        let mut reaping = self.reaping.lock();
        let previous = reaping.take();
        *reaping = Some(WorkerPool::global().submit(move || {
            if let Some(p) = previous {
                let _ = p.wait();
            }
            // A failure leaves an orphan directory that the next open removes.
            for dir in &free {
                let _ = reclaim::remove_dir_gradually(fs.as_ref(), dir);
            }
            let _ = fs.sync_dir(&parent);
            Ok(())
        }));
    }

    /// Waits for the deletion of retired stores.
    fn await_reaping(&self) {
        let job = self.reaping.lock().take();
        if let Some(j) = job {
            let _ = j.wait();
        }
    }

    /// True while a deletion of retired stores runs.
    fn reaping(&self) -> bool {
        self.reaping
            .lock()
            .as_ref()
            .is_some_and(|j| !j.is_finished())
    }
}

/// The largest `p < len` with `2^p <= left`.
fn largest_step(left: u64, len: usize) -> Option<usize> {
    if len == 0 || left == 0 {
        return None;
    }
    Some((63 - left.leading_zeros() as usize).min(len - 1))
}

#[cfg(test)]
mod accessor_tests {
    use super::*;

    fn block(level: i32, pred: Hash) -> Block {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&level.to_be_bytes());
        hash[31] = 1;
        Block {
            hash,
            level,
            predecessor: pred,
            contents: vec![level as u8; 10],
            metadata: Some(vec![7; 5]),
        }
    }

    #[test]
    fn floating_iters_and_cemented_chunks_read_every_block() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("/tmp"), e))?;
        let store = BlockStore::open(dir.path(), BlockStoreOptions::default())?;
        let mut pred = [0u8; 32];
        let mut chain = Vec::new();
        for level in 0..10 {
            let b = block(level, pred);
            store.store(&b.as_ref())?;
            pred = b.hash;
            chain.push(b);
        }
        store.merge(&chain[9].hash, &[4])?;
        store.await_merge()?;
        assert_eq!(store.cemented_chunks().len(), 1);
        assert_eq!(store.cemented_metadata_chunks(), store.cemented_chunks());
        let cemented: Vec<Block> = store
            .iter_cemented_chunk(store.cemented_chunks()[0], true)?
            .collect::<Result<_>>()?;
        assert_eq!(cemented, chain[..5].to_vec());
        let mut floating = Vec::new();
        for it in store.floating_iters(true) {
            for e in it {
                floating.push(e?.block);
            }
        }
        // The new cemented top stays floating too, with its metadata,
        // before its descendants.
        assert_eq!(floating, chain[4..].to_vec());
        Ok(())
    }
}
