//! The index engine: a persistent hash index of fixed-size keys to
//! fixed-size values (mirage `index`, Octez L2 `INDEXABLE_STORE` and
//! `INDEXABLE_REMOVABLE_STORE`).
//!
//! Files in the index directory:
//! * `meta`: key/value sizes and flags, and the generation of the last
//!   data file published (module `meta`).
//! * `data` and `delta`: every merged binding, sorted by xxh3-64 of the
//!   key, with a fan-out table, read through a memory map (module `data`):
//!   the base, and a smaller delta merged on top of it so that a merge
//!   rewrites the delta, not the whole index (module `levels`). Each
//!   header holds a *generation* `G`: the file contains every log of
//!   generation `< G`.
//! * `log.<g>`: append-only logs of CRC'd entries (module `log`). The highest one
//!   receives writes (mirage's `log`); while a merge runs, writes go to a new
//!   log of the next generation (mirage's `log_async`).
//! * `lock`: held by the one read-write instance.
//!
//! Writes go to the current log (buffered until `flush`) and to an in-memory
//! table (module `hash`). When that table holds more than `log_size` entries it
//! is frozen and merged with the delta (or, when the delta has grown to
//! the square root of twice the log size times the base, with delta and
//! base) on the worker pool into a new file of the next generation,
//! renamed over `delta` (or `data`); reads (log table, then frozen
//! bindings, then delta, then base) and writes continue meanwhile. The merge
//! first sorts the frozen logs into a view over their files (module
//! `frozen`, 8 bytes of memory per key) and drops the frozen table. When
//! the new log table is full too, a write waits for the running merge
//! (mirage's `Block_writes` throttle), so memory holds at most one log
//! table and the frozen view, whatever the size of the data. Read-only
//! instances (other processes) replay the same files and pick up new data
//! with [`Index::sync`].
//!
//! Crash safety: log entries carry a CRC and a torn tail (an incomplete last
//! entry) is cut at the next read-write open; the data file is replaced only
//! by rename after fsync; a leftover temporary data file is removed at open;
//! logs already contained in `data` (generation below it) are deleted at
//! open.
//!
//! Filtering and GC (mirage `filter`, `clear`, `try_merge`, `is_merging`;
//! Octez `gc ?async`): a merge through a filter on the worker pool, module
//! `gc`.
//!
//! Damage (issue #15) is told from a torn tail: a whole log entry failing
//! its CRC, a garbled log header in front of entries, a `data` file failing
//! any check, `data` missing or older than `meta` records: the open returns
//! `Corrupted` naming the file and the offset and changes nothing. A merge
//! verifies every entry it copies and aborts with `Corrupted` on damage,
//! keeping the state from before it. [`Index::check`] (module `check`)
//! reports damage and, with repair, salvages every intact entry.

mod check;
mod data;
#[cfg(test)]
mod decode_props;
mod frozen;
mod gc;
mod hash;
mod iter;
mod levels;
mod log;
mod merge;
mod meta;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, atomic};
use crate::options::OpenOptions;
use crate::store_dir::StoreDir;
use crate::worker::{JobHandle, WorkerPool};
use data::DataFile;
use frozen::FrozenLogs;
use hash::{Table, key_hash};
use levels::{DATA, DELTA, Levels};
use log::LogWriter;

pub use iter::IndexIter;

/// `log_size` used when the configuration says 0: entries held in the log
/// table before a merge (about 25 MB of memory for 32-byte keys and 8-byte
/// values).
pub const DEFAULT_LOG_SIZE: u64 = 500_000;

/// Largest key or value size accepted.
pub const MAX_SIZE: usize = 1 << 16;

/// How to open an index.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Size of every key in bytes (1..=65536).
    pub key_size: usize,
    /// Size of every value in bytes (0..=65536).
    pub value_size: usize,
    /// Whether `remove` is allowed (values then carry a one-byte tag).
    pub removable: bool,
    /// Entries in the log before a merge; 0 means [`DEFAULT_LOG_SIZE`].
    pub log_size: u64,
    /// Read-only flag and file system.
    pub open: OpenOptions,
}

impl IndexConfig {
    /// A read-write, non-removable index with the default log size.
    pub fn new(key_size: usize, value_size: usize) -> IndexConfig {
        IndexConfig {
            key_size,
            value_size,
            removable: false,
            log_size: 0,
            open: OpenOptions::default(),
        }
    }
}

/// A persistent hash index. `Send + Sync`: share it between threads (e.g.
/// in an `Arc`); readers never wait for each other nor for a merge.
///
/// ```
/// use tzstore::index::{Index, IndexConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// // 32-byte keys (block hashes) to 8-byte values; `remove` allowed.
/// let cfg = IndexConfig { removable: true, ..IndexConfig::new(32, 8) };
/// let idx = Index::open(dir.path().join("index"), cfg)?;
/// idx.add(&[7u8; 32], &42u64.to_be_bytes(), true)?; // durable on return
/// let mut v = [0u8; 8];
/// assert!(idx.find_into(&[7u8; 32], &mut v)?); // no allocation
/// assert_eq!(u64::from_be_bytes(v), 42);
/// assert_eq!(idx.find(&[9u8; 32])?, None);
/// assert!(idx.add(&[1u8; 4], &v, true).is_err()); // wrong key size
/// idx.remove(&[7u8; 32], true)?;
/// assert!(!idx.mem(&[7u8; 32])?);
/// idx.close()?;
/// # Ok(())
/// # }
/// ```
pub struct Index {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({})", self.inner.dir.display())
    }
}

struct Inner {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    ksize: usize,
    vsize: usize,
    /// Value size on disk (plus the tag byte when removable).
    dsize: usize,
    removable: bool,
    read_only: bool,
    log_size: u64,
    state: RwLock<State>,
    /// The running or last finished merge, until its outcome is reported.
    merge: Mutex<Option<JobHandle>>,
    /// A failure to start a merge, reported by the next call.
    start_error: Mutex<Option<Error>>,
    /// The running or last GC, until its outcome is taken (module `gc`).
    gc: Mutex<Option<gc::GcRun>>,
    /// Read-only instances: the stamps of the data file and the directory
    /// when the last sync read them (see `sync_ro`).
    ro_seen: Mutex<RoSeen>,
    _lock: StoreDir,
}

/// What a read-only instance's last sync saw, to skip work when nothing
/// changed.
#[derive(Default)]
struct RoSeen {
    data: Option<crate::io::FileStamp>,
    delta: Option<crate::io::FileStamp>,
    dir: Option<crate::io::FileStamp>,
}

/// True if `now` proves the file `before` stamped unchanged.
fn unchanged(before: Option<crate::io::FileStamp>, now: Option<crate::io::FileStamp>) -> bool {
    matches!((before, now), (Some(b), Some(n)) if b.unchanged_at(&n))
}

/// The frozen bindings while they are merged: first the log table itself,
/// then (once the merge has sorted them) a view over the log files, so that
/// the table's memory is free while the next one fills.
#[derive(Clone)]
pub(crate) enum FrozenView {
    Table(Arc<Table>),
    Logs(Arc<FrozenLogs>),
}

impl FrozenView {
    #[inline]
    pub(crate) fn get(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        match self {
            FrozenView::Table(t) => t.get(h, key),
            FrozenView::Logs(l) => l.get(h, key),
        }
    }

    /// The `i`-th binding (in an order of the view's own).
    pub(crate) fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            FrozenView::Table(t) => t.entry(i),
            FrozenView::Logs(l) => l.entry(i),
        }
    }
}

/// The log table being merged, and the logs it came from (oldest first).
struct Frozen {
    view: FrozenView,
    logs: Vec<Arc<dyn FileHandle>>,
    generation: u64,
    /// Live bindings of the index when it was frozen: what a delta written
    /// from it records.
    live: u64,
}

struct State {
    levels: Levels,
    frozen: Option<Frozen>,
    active: Table,
    writer: Option<LogWriter>,
    /// Logs older than the writer's whose entries are in `active` (left by
    /// a crash before their merge finished): frozen with it.
    sealed: Vec<Arc<dyn FileHandle>>,
    len: u64,
    /// Read-only instances: logs replayed so far, `(generation, file, end)`.
    ro_logs: Vec<(u64, Arc<dyn FileHandle>, u64)>,
    removable: bool,
}

impl State {
    fn new(levels: Levels, ksize: usize, dsize: usize, removable: bool) -> State {
        State {
            len: levels.len(),
            levels,
            frozen: None,
            active: Table::new(ksize, dsize),
            writer: None,
            sealed: Vec::new(),
            ro_logs: Vec::new(),
            removable,
        }
    }

    /// The stored (on-disk form) value of `key`, newest first.
    #[inline]
    fn lookup(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        self.active
            .get(h, key)
            .or_else(|| self.lookup_merged(h, key))
    }

    /// The stored value of `key` below the log table: frozen, then delta,
    /// then base.
    #[inline]
    fn lookup_merged(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        self.frozen
            .as_ref()
            .and_then(|f| f.view.get(h, key))
            .or_else(|| self.levels.find(h, key))
    }

    fn live(&self, v: &[u8]) -> bool {
        !self.removable || v.first() == Some(&1)
    }

    /// Records `key -> v` (on-disk form) in the log table, keeping `len`.
    fn apply(&mut self, h: u64, key: &[u8], v: &[u8]) {
        let is = self.live(v);
        // One probe of the log table both replaces and tells what was there.
        let was = match self.active.insert(h, key, v) {
            Some(tag) => !self.removable || tag == Some(1),
            None => self.lookup_merged(h, key).is_some_and(|old| self.live(old)),
        };
        match (was, is) {
            (false, true) => self.len += 1,
            (true, false) => self.len -= 1,
            _ => {}
        }
    }
}

const META: &str = "meta";
const LOCK: &str = "lock";

impl Index {
    /// Opens (read-write: creating if needed) the index in directory `dir`.
    ///
    /// Errors: `InvalidArgument` (sizes out of range, or different from the
    /// ones the index was created with), `Locked` (another read-write
    /// instance), `NotFound` (read-only open of a missing index),
    /// `Corrupted` (a damaged `meta`, `data` or log, naming the file and
    /// the offset; nothing is changed then: use [`Index::check`] with
    /// repair to salvage), `Io`.
    pub fn open(dir: impl AsRef<Path>, cfg: IndexConfig) -> Result<Index> {
        let dir = dir.as_ref().to_path_buf();
        if cfg.key_size == 0 || cfg.key_size > MAX_SIZE || cfg.value_size > MAX_SIZE {
            return Err(Error::invalid(format!(
                "index {}: key size must be 1..={MAX_SIZE} and value size 0..={MAX_SIZE}, got {} and {}",
                dir.display(),
                cfg.key_size,
                cfg.value_size
            )));
        }
        let fs = cfg.open.fs.clone();
        let read_only = cfg.open.read_only;
        let lock = StoreDir::open(fs.as_ref(), &dir, read_only, "index")?;
        let flags = if cfg.removable {
            data::FLAG_REMOVABLE
        } else {
            0
        };
        let want = meta::Meta {
            key_size: cfg.key_size as u32,
            value_size: cfg.value_size as u32,
            flags,
            data_generation: 0,
        };
        let meta_path = dir.join(META);
        let recorded = match meta::read(fs.as_ref(), &meta_path)? {
            Some(m) if m.same_shape(&want) => Some(m.data_generation),
            Some(m) => {
                return Err(Error::invalid(format!(
                    "index {} was created with key size {}, value size {}, removable {}; opened with {}, {}, {}",
                    dir.display(),
                    m.key_size,
                    m.value_size,
                    m.flags & data::FLAG_REMOVABLE != 0,
                    cfg.key_size,
                    cfg.value_size,
                    cfg.removable
                )));
            }
            None if read_only => {
                // Logs or a data file without meta: the meta file is lost
                // (the read-write open writes it before anything else is
                // written), which is damage, not an absent index.
                let held = fs
                    .read_dir(&dir)?
                    .iter()
                    .any(|e| e.name == DATA || log::parse_name(&e.name).is_some());
                if held {
                    return Err(Error::corrupted(
                        &dir.join(META),
                        "missing (offset 0) while the index holds logs or a data file",
                    ));
                }
                return Err(Error::NotFound(format!(
                    "index {} does not exist (no meta file)",
                    dir.display()
                )));
            }
            // Written by the read-write load once everything else is read
            // back whole: a refused open changes nothing.
            None => None,
        };
        let dsize = cfg.value_size + usize::from(cfg.removable);
        let inner = Inner {
            dir,
            fs,
            ksize: cfg.key_size,
            vsize: cfg.value_size,
            dsize,
            removable: cfg.removable,
            read_only,
            log_size: if cfg.log_size == 0 {
                DEFAULT_LOG_SIZE
            } else {
                cfg.log_size
            },
            state: RwLock::new(State::new(
                Levels::empty(cfg.key_size, dsize),
                cfg.key_size,
                dsize,
                cfg.removable,
            )),
            merge: Mutex::new(None),
            start_error: Mutex::new(None),
            gc: Mutex::new(None),
            ro_seen: Mutex::new(RoSeen::default()),
            _lock: lock,
        };
        let state = if read_only {
            inner.load_ro(recorded.unwrap_or(0))?
        } else {
            inner.load_rw(recorded)?
        };
        *inner.state.write() = state;
        Ok(Index {
            inner: Arc::new(inner),
        })
    }

    /// The configuration an existing index in `dir` was created with (key
    /// and value sizes, removable), read from its `meta` file, with `open`
    /// and the default log size: what a tool that was not told the sizes
    /// opens it with.
    ///
    /// Errors: `NotFound` (no `meta` file), `Corrupted` (a damaged `meta`),
    /// `Io`.
    pub fn config_of(dir: impl AsRef<Path>, open: &OpenOptions) -> Result<IndexConfig> {
        let dir = dir.as_ref();
        let m = meta::read(open.fs.as_ref(), &dir.join(META))?
            .ok_or_else(|| Error::NotFound(format!("index {} has no meta file", dir.display())))?;
        Ok(IndexConfig {
            key_size: m.key_size as usize,
            value_size: m.value_size as usize,
            removable: m.flags & data::FLAG_REMOVABLE != 0,
            log_size: 0,
            open: open.clone(),
        })
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.inner.ksize
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> usize {
        self.inner.vsize
    }

    /// Number of keys bound.
    pub fn len(&self) -> u64 {
        self.inner.state.read().len
    }

    /// True when no key is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the value of `key` into `out` (exactly `value_size` bytes)
    /// without allocating; `Ok(false)` when the key is absent.
    pub fn find_into(&self, key: &[u8], out: &mut [u8]) -> Result<bool> {
        self.inner.check_key(key)?;
        if out.len() != self.inner.vsize {
            return Err(Error::invalid(format!(
                "value buffer must be {} bytes, got {}",
                self.inner.vsize,
                out.len()
            )));
        }
        let h = key_hash(key);
        let st = self.inner.state.read();
        match st.lookup(h, key) {
            Some(v) if self.inner.removable => {
                if v.first() == Some(&1) {
                    out.copy_from_slice(&v[1..]);
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
            Some(v) => {
                out.copy_from_slice(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Calls `f` on the value of `key` where it is stored (a log table,
    /// a frozen log, a data file's map), without copying it: for a caller
    /// that needs a few bytes of a large value. `f` runs under the index's
    /// read lock and must not call the index. `Ok(None)` when absent.
    pub(crate) fn find_with<R>(&self, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        self.inner.check_key(key)?;
        let h = key_hash(key);
        let st = self.inner.state.read();
        Ok(match st.lookup(h, key) {
            Some(v) if self.inner.removable => match v.split_first() {
                Some((1, rest)) => Some(f(rest)),
                _ => None,
            },
            Some(v) => Some(f(v)),
            None => None,
        })
    }

    /// The value of `key`, or `None`.
    pub fn find(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut out = vec![0u8; self.inner.vsize];
        Ok(self.find_into(key, &mut out)?.then_some(out))
    }

    /// Whether `key` is bound.
    pub fn mem(&self, key: &[u8]) -> Result<bool> {
        self.inner.check_key(key)?;
        let h = key_hash(key);
        let st = self.inner.state.read();
        Ok(st.lookup(h, key).is_some_and(|v| st.live(v)))
    }

    /// Binds `key` to `value` (inserting or replacing). With `flush` the
    /// binding (and everything added before) is durable on return. Waits
    /// for the running merge only when the log table is full again (see
    /// the module documentation).
    pub fn add(&self, key: &[u8], value: &[u8], flush: bool) -> Result<()> {
        self.inner.check_write("add")?;
        self.inner.refuse_in_gc("add")?;
        self.inner.check_key(key)?;
        if value.len() != self.inner.vsize {
            return Err(Error::invalid(format!(
                "value must be {} bytes, got {}",
                self.inner.vsize,
                value.len()
            )));
        }
        self.report_merge_error()?;
        if !self.inner.removable {
            return self.write(key, value, flush);
        }
        // The tagged copy lives on the stack for the usual small values.
        let mut small = [0u8; 65];
        let mut big = Vec::new();
        let tagged: &mut [u8] = if value.len() < small.len() {
            &mut small[..value.len() + 1]
        } else {
            big.resize(value.len() + 1, 0);
            &mut big
        };
        tagged[0] = 1;
        tagged[1..].copy_from_slice(value);
        self.write(key, tagged, flush)
    }

    /// Unbinds `key` (a tombstone in the log; merges drop the key). Removing
    /// an absent key writes nothing. `InvalidArgument` unless the index was
    /// opened removable.
    pub fn remove(&self, key: &[u8], flush: bool) -> Result<()> {
        self.inner.check_write("remove")?;
        self.inner.refuse_in_gc("remove")?;
        if !self.inner.removable {
            return Err(Error::invalid(format!(
                "index {} is not removable",
                self.inner.dir.display()
            )));
        }
        self.inner.check_key(key)?;
        self.report_merge_error()?;
        if !self.mem(key)? {
            return if flush { self.flush() } else { Ok(()) };
        }
        let tomb = vec![0u8; self.inner.dsize];
        self.write(key, &tomb, flush)
    }

    fn write(&self, key: &[u8], stored: &[u8], flush: bool) -> Result<()> {
        let h = key_hash(key);
        let mut st = self.inner.state.write();
        if st.frozen.is_some() && st.active.len() as u64 > self.inner.log_size {
            // The log table is full again while the previous one is still
            // being merged: wait for that merge (mirage's `Block_writes`
            // throttle), so memory holds at most one log table and the
            // frozen view (or, briefly, the frozen table). (From a
            // pool job this cannot deadlock: `wait` runs a merge no worker
            // has started on the waiting thread.)
            drop(st);
            let running = self.inner.merge.lock().clone();
            if let Some(job) = running {
                // Its error, if any, is reported by the next call.
                let _ = job.wait();
            }
            st = self.inner.state.write();
        }
        let Some(w) = st.writer.as_mut() else {
            return Err(Error::ReadOnly(format!(
                "index {} is read-only",
                self.inner.dir.display()
            )));
        };
        w.append(key, stored)?;
        st.apply(h, key, stored);
        if flush {
            Inner::flush_state(&mut st)?;
        }
        // The binding is stored: a failure to start a merge is not this
        // call's failure; it is reported by the next call.
        if let Err(e) = self.maybe_merge(&mut st, false) {
            *self.inner.start_error.lock() = Some(e);
        }
        Ok(())
    }

    /// Makes everything added so far durable (write out and fsync the logs).
    /// Also reports the error of a failed background merge.
    pub fn flush(&self) -> Result<()> {
        self.inner.refuse_in_gc("flush")?;
        self.report_merge_error()?;
        if self.inner.read_only {
            return Ok(());
        }
        Inner::flush_state(&mut self.inner.state.write())
    }

    /// Writes what was added out to the log file without fsync: read-only
    /// instances see it after their `sync`, but a crash may lose it (`flush`
    /// makes it durable).
    pub fn write_out(&self) -> Result<()> {
        self.report_merge_error()?;
        match self.inner.state.write().writer.as_mut() {
            Some(w) => w.write_out(),
            None => Ok(()),
        }
    }

    /// Read-only instances: loads what the read-write instance has written
    /// (written out by its flushes) since the last open or sync. A no-op on a
    /// read-write instance.
    pub fn sync(&self) -> Result<()> {
        if !self.inner.read_only {
            return Ok(());
        }
        self.inner.sync_ro()
    }

    /// Waits for the running merge, if any; returns its error once.
    pub fn await_merge(&self) -> Result<()> {
        self.inner.refuse_in_gc("await_merge")?;
        if let Some(e) = self.inner.start_error.lock().take() {
            return Err(e);
        }
        let h = self.inner.merge.lock().clone();
        if let Some(h) = h {
            if let Err(e) = h.wait() {
                *self.inner.merge.lock() = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// A snapshot iterator over all bindings (order unspecified); later
    /// writes do not affect it.
    pub fn iter(&self) -> Result<IndexIter> {
        let st = self.inner.state.read();
        Ok(IndexIter::new(
            st.levels.clone(),
            st.frozen.as_ref().map(|f| f.view.clone()),
            st.active.clone(),
            self.inner.removable,
        ))
    }

    /// Closes the index: waits for a running merge or GC (stop a GC first
    /// with [`cancel_gc`](Self::cancel_gc) to close at once) and makes the
    /// logs durable, reporting errors (dropping does the same, ignoring
    /// them).
    pub fn close(self) -> Result<()> {
        let merged = self.await_merge();
        let flushed = if self.inner.read_only {
            Ok(())
        } else {
            Inner::seal_state(&mut self.inner.state.write())
        };
        merged.and(flushed)
    }

    fn report_merge_error(&self) -> Result<()> {
        if let Some(e) = self.inner.start_error.lock().take() {
            return Err(e);
        }
        let mut m = self.inner.merge.lock();
        if let Some(h) = m.as_ref() {
            if h.is_finished() {
                let r = h.wait();
                *m = None;
                return r;
            }
        }
        Ok(())
    }

    /// Starts a merge when the log table is over `log_size` (with `force`:
    /// when it holds anything), or retries one that failed, unless one is
    /// running. Returns whether it started one.
    fn maybe_merge(&self, st: &mut State, force: bool) -> Result<bool> {
        let mut m = self.inner.merge.lock();
        if let Some(h) = m.as_ref() {
            // Running, or failed and not reported yet.
            if !h.is_finished() || h.wait().is_err() {
                return Ok(false);
            }
            *m = None;
        }
        if st.frozen.is_none() {
            let due = if force {
                st.active.len() > 0 || !st.sealed.is_empty()
            } else {
                (st.active.len() as u64) > self.inner.log_size
            };
            if !due {
                return Ok(false);
            }
            self.inner.freeze(st)?;
        }
        let Some(f) = st.frozen.as_ref() else {
            return Ok(false);
        };
        let inner = self.inner.clone();
        let (logs, generation, live, old) =
            (f.logs.clone(), f.generation, f.live, st.levels.clone());
        *m = Some(
            WorkerPool::global().submit(move || inner.run_merge(&logs, generation, live, &old)),
        );
        Ok(true)
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        // From inside this index's own GC filter (a C caller closing the
        // handle there), waiting would wait for itself: the GC holds its
        // own reference and finishes alone.
        if !self.inner.in_own_gc() {
            let h = self.inner.merge.lock().clone();
            if let Some(h) = h {
                let _ = h.wait();
            }
        }
        if !self.inner.read_only {
            let _ = Inner::seal_state(&mut self.inner.state.write());
        }
    }
}

impl Inner {
    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() != self.ksize {
            return Err(Error::invalid(format!(
                "key must be {} bytes, got {}",
                self.ksize,
                key.len()
            )));
        }
        Ok(())
    }

    fn check_write(&self, what: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(format!(
                "{what} on read-only index {}",
                self.dir.display()
            )));
        }
        Ok(())
    }

    fn data_path(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    fn delta_path(&self) -> PathBuf {
        self.dir.join(DELTA)
    }

    fn flags(&self) -> u32 {
        if self.removable {
            data::FLAG_REMOVABLE
        } else {
            0
        }
    }

    /// At a clean close: everything durable, and every log's slots naming
    /// its whole length, so that any later damage to a log is detected.
    fn seal_state(st: &mut State) -> Result<()> {
        if let Some(f) = &st.frozen {
            for log in &f.logs {
                log::seal_file(log.as_ref())?;
            }
        }
        for log in &st.sealed {
            log::seal_file(log.as_ref())?;
        }
        match st.writer.as_mut() {
            Some(w) => w.seal(),
            None => Ok(()),
        }
    }

    fn flush_state(st: &mut State) -> Result<()> {
        if let Some(f) = &st.frozen {
            for log in &f.logs {
                log.sync()?;
            }
        }
        match st.writer.as_mut() {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    /// Base and delta, and whether a stale delta file is there.
    fn open_levels(&self) -> Result<(Levels, bool)> {
        Levels::open(
            self.fs.as_ref(),
            &self.dir,
            self.ksize,
            self.dsize,
            self.flags(),
        )
    }

    /// The generation of the newest data file on disk, from the headers
    /// only (a stale delta's is below the base's, so the larger is right).
    fn disk_generation(&self) -> Result<u64> {
        let fs = self.fs.as_ref();
        Ok(data::read_generation(fs, &self.data_path())?
            .max(data::read_generation(fs, &self.delta_path())?))
    }

    /// The data files, refused when `meta` recorded a later generation
    /// than the one on disk (`recorded`): a missing or older `data` or
    /// `delta` would otherwise read as an index without the merged
    /// entries.
    fn open_data_recorded(&self, recorded: u64) -> Result<(Levels, bool)> {
        let (data, stale) = self.open_levels()?;
        let g = data.generation();
        if g == 0 && recorded > 0 {
            return Err(Error::corrupted(
                &self.data_path(),
                format!(
                    "missing, but {META} records data generation {recorded} (offset 20 of {META})"
                ),
            ));
        }
        if g < recorded {
            return Err(Error::corrupted(
                &self.data_path(),
                format!(
                    "data file of generation {g} (offset 24; with {DELTA}) is older than generation {recorded} recorded in {META}"
                ),
            ));
        }
        Ok((data, stale))
    }

    /// Records `generation` as the last published data generation.
    fn write_meta(&self, generation: u64) -> Result<()> {
        meta::write(
            self.fs.as_ref(),
            &self.dir.join(META),
            &meta::Meta {
                key_size: self.ksize as u32,
                value_size: self.vsize as u32,
                flags: self.flags(),
                data_generation: generation,
            },
        )
    }

    /// Read-write open: replay the logs (refusing damage before anything
    /// changes), then clean up after a crash: cut torn tails, delete what
    /// the data generation proves merged, continue the newest log.
    fn load_rw(&self, meta: Option<u64>) -> Result<State> {
        let fs = self.fs.as_ref();
        let recorded = meta.unwrap_or(0);
        let (data, stale_delta) = self.open_data_recorded(recorded)?;
        let g = data.generation();
        let mut st = State::new(data, self.ksize, self.dsize, self.removable);
        let all = log::list(fs, &self.dir)?;
        let mut replayed = Vec::new();
        for &lg in all.iter().filter(|&&lg| lg >= g) {
            let file = log::open(fs, &self.dir, lg, true)?;
            let r = log::replay(
                file.as_ref(),
                lg,
                self.ksize,
                self.dsize,
                self.flags(),
                0,
                |k, v| st.apply(key_hash(k), k, v),
            )?;
            replayed.push((lg, file, r));
        }
        // Everything read back whole: from here on, only what a crash
        // left behind is changed.
        fs.remove_file(&atomic::tmp_path(&self.data_path())?)?;
        fs.remove_file(&atomic::tmp_path(&self.delta_path())?)?;
        if stale_delta {
            // Folded into the base by a merge a crash stopped before it
            // unlinked it.
            fs.remove_file(&self.delta_path())?;
        }
        // A log whose creation a crash interrupted, before its rename.
        for e in fs.read_dir(&self.dir)? {
            if e.name.starts_with("log.") && e.name.ends_with(atomic::TMP_SUFFIX) {
                fs.remove_file(&self.dir.join(&e.name))?;
            }
        }
        if meta.is_none() || g > recorded {
            self.write_meta(g)?;
        }
        for &lg in all.iter().filter(|&&lg| lg < g) {
            fs.remove_file(&log::path(&self.dir, lg))?;
        }
        let mut writer = None;
        let n = replayed.len();
        for (i, (lg, file, r)) in replayed.into_iter().enumerate() {
            if i + 1 == n {
                writer = Some(if r.end == 0 {
                    drop(file);
                    LogWriter::create(fs, &self.dir, lg, self.ksize, self.dsize, self.flags())?
                } else {
                    LogWriter::resume(file, lg, r.end, r.seq)?
                });
            } else if r.end == 0 {
                fs.remove_file(&log::path(&self.dir, lg))?;
            } else {
                if r.torn {
                    file.set_len(r.end)?;
                    file.sync()?;
                }
                st.sealed.push(file);
            }
        }
        st.writer = Some(match writer {
            Some(w) => w,
            None => LogWriter::create(fs, &self.dir, g, self.ksize, self.dsize, self.flags())?,
        });
        fs.sync_dir(&self.dir)?;
        Ok(st)
    }

    /// Read-only load: data plus every log not yet merged into it, retried
    /// if a merge published a new data file meanwhile (its logs may be gone).
    fn load_ro(&self, recorded: u64) -> Result<State> {
        let fs = self.fs.as_ref();
        let mut attempts = 0;
        'retry: loop {
            attempts += 1;
            let data = match self.open_data_recorded(recorded) {
                Ok((data, _)) => data,
                // `data` and `delta` are opened one after the other: a
                // merge that published between the two leaves a pair that
                // disagrees, while the files on disk are whole. Damage
                // stays: its files are older than `meta` says, every time.
                Err(Error::Corrupted(_))
                    if attempts < 100 && self.disk_generation()? >= recorded =>
                {
                    continue 'retry;
                }
                Err(e) => return Err(e),
            };
            let g = data.generation();
            let mut st = State::new(data, self.ksize, self.dsize, self.removable);
            let mut ro_logs = Vec::new();
            for lg in log::list(fs, &self.dir)? {
                if lg < g {
                    continue;
                }
                let file = match log::open(fs, &self.dir, lg, false) {
                    Ok(f) => f,
                    Err(Error::NotFound(_)) if attempts < 100 => continue 'retry,
                    Err(e) => return Err(e),
                };
                let r = log::replay(
                    file.as_ref(),
                    lg,
                    self.ksize,
                    self.dsize,
                    self.flags(),
                    0,
                    |k, v| st.apply(key_hash(k), k, v),
                )?;
                ro_logs.push((lg, file, r.end));
            }
            if self.disk_generation()? != g && attempts < 100 {
                continue;
            }
            st.ro_logs = ro_logs;
            return Ok(st);
        }
    }

    /// Read-only sync. When nothing changed it costs a `stat` of the data
    /// file and of the directory and an `fstat` per log: the generation is
    /// read only if the data file's stamp moved, a log is replayed only if
    /// it grew past what was replayed (a writer names entries in a slot
    /// only after writing them), and the directory is listed for new logs
    /// only if its stamp moved. Stamps are taken before what they vouch
    /// for is read, so a change after them is seen by the next sync.
    fn sync_ro(&self) -> Result<()> {
        let fs = self.fs.as_ref();
        let mut seen = self.ro_seen.lock();
        let data_stamp = fs.stamp(&self.data_path())?;
        let delta_stamp = fs.stamp(&self.delta_path())?;
        let dir_stamp = fs.stamp(&self.dir)?;
        let current = self.state.read().levels.generation();
        // No delta before nor now is no change: a delta that appears has a
        // stamp, and one that goes goes with a new base.
        let no_delta = seen.data.is_some() && seen.delta.is_none() && delta_stamp.is_none();
        let on_disk = if unchanged(seen.data, data_stamp)
            && (no_delta || unchanged(seen.delta, delta_stamp))
        {
            current
        } else {
            self.disk_generation()?
        };
        let stamps = RoSeen {
            data: data_stamp,
            delta: delta_stamp,
            dir: dir_stamp,
        };
        if on_disk != current {
            let fresh = self.load_ro(current)?;
            *self.state.write() = fresh;
            *seen = stamps;
            return Ok(());
        }
        let mut st = self.state.write();
        let mut logs = std::mem::take(&mut st.ro_logs);
        let mut result = Ok(());
        for (lg, file, end) in logs.iter_mut() {
            match file.len() {
                Ok(len) if len == *end => continue,
                Ok(_) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            match log::replay(
                file.as_ref(),
                *lg,
                self.ksize,
                self.dsize,
                self.flags(),
                *end,
                |k, v| st.apply(key_hash(k), k, v),
            ) {
                Ok(r) => *end = r.end,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let list_dir = !unchanged(seen.dir, dir_stamp);
        // A merge that publishes while the logs are listed deletes the
        // logs it merged, perhaps before the listing saw them: their
        // bindings would be missing from this sync, so it reloads.
        let mut merged_meanwhile = false;
        if result.is_ok() && list_dir {
            let known = logs.last().map(|l| l.0);
            let newer: Vec<u64> = log::list(fs, &self.dir)?
                .into_iter()
                .filter(|&lg| lg >= on_disk && known.is_none_or(|k| lg > k))
                .collect();
            for lg in newer {
                let file = match log::open(fs, &self.dir, lg, false) {
                    Ok(f) => f,
                    Err(Error::NotFound(_)) => {
                        merged_meanwhile = true;
                        break;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                match log::replay(
                    file.as_ref(),
                    lg,
                    self.ksize,
                    self.dsize,
                    self.flags(),
                    0,
                    |k, v| st.apply(key_hash(k), k, v),
                ) {
                    Ok(r) => logs.push((lg, file, r.end)),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        st.ro_logs = logs;
        if result.is_ok() && list_dir && (merged_meanwhile || self.disk_generation()? != on_disk) {
            *st = self.load_ro(current)?;
            *seen = stamps;
            return Ok(());
        }
        if result.is_ok() {
            seen.data = data_stamp;
            seen.delta = delta_stamp;
            if list_dir {
                seen.dir = dir_stamp;
            }
        }
        result
    }

    /// The merge job: writes data generation `generation` from `old` and
    /// the frozen logs (`live` bindings in all), publishes it, and deletes
    /// the logs it contains.
    fn run_merge(
        &self,
        logs: &[Arc<dyn FileHandle>],
        generation: u64,
        live: u64,
        old: &Levels,
    ) -> Result<()> {
        self.merge_logs(logs, generation, live, old, None)
            .map(|_| ())
    }

    /// [`run_merge`](Self::run_merge), keeping only the bindings `filter`
    /// keeps when given (into a new base, delta folded in), and stopping
    /// when its cancel flag is raised: `Ok(false)` then, with nothing
    /// published and the logs still frozen.
    fn merge_logs(
        &self,
        logs: &[Arc<dyn FileHandle>],
        generation: u64,
        live: u64,
        old: &Levels,
        filter: Option<(&mut gc::Keep, &std::sync::atomic::AtomicBool)>,
    ) -> Result<bool> {
        let fs = self.fs.as_ref();
        for log in logs {
            log.sync()?;
        }
        // From here on, reads of frozen bindings go to the log files and the
        // frozen table's memory is free for the table filling meanwhile.
        let sorted = Arc::new(FrozenLogs::build(logs, self.ksize, self.dsize)?);
        // Verified whole: named so by their slots, so that damage to a
        // frozen log is told from a tail from now on.
        for log in logs {
            log::seal_file(log.as_ref())?;
        }
        if let Some(f) = self.state.write().frozen.as_mut() {
            if f.generation == generation {
                f.view = FrozenView::Logs(sorted.clone());
            }
        }
        let into_base = filter.is_some() || old.base_merge_due(sorted.len() as u64, self.log_size);
        let sources = if into_base {
            merge::Sources {
                old: &old.base,
                delta: (old.delta.count() > 0).then_some(&*old.delta),
                frozen: &sorted,
            }
        } else {
            merge::Sources {
                old: &old.delta,
                delta: None,
                frozen: &sorted,
            }
        };
        let (decisions, cancel) = match filter {
            Some((keep, cancel)) => {
                match merge::decide(&sources, self.flags(), keep.as_mut(), cancel)? {
                    Some(d) => (Some(d), Some(cancel)),
                    None => return Ok(false),
                }
            }
            None => (None, None),
        };
        let selection = decisions
            .as_ref()
            .zip(cancel)
            .map(|(decisions, cancel)| merge::Selection { decisions, cancel });
        let path = if into_base {
            self.data_path()
        } else {
            self.delta_path()
        };
        let out = merge::Output {
            path: &path,
            generation,
            ksize: self.ksize,
            vsize: self.dsize,
            flags: self.flags(),
            tombstones: !into_base,
            live: (!into_base).then_some(live),
            base_generation: if into_base { 0 } else { old.base.generation() },
        };
        match merge::write(fs, &sources, &out, selection) {
            Ok(()) => {}
            Err(_) if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        // Only the file written is opened (and verified) again: after a
        // delta merge the base, which may be gigabytes, is the same.
        let written = Arc::new(DataFile::open(
            fs,
            &path,
            self.ksize,
            self.dsize,
            self.flags(),
        )?);
        let new = if into_base {
            Levels {
                base: written,
                delta: Arc::new(DataFile::empty(self.ksize, self.dsize)),
            }
        } else {
            Levels {
                base: old.base.clone(),
                delta: written,
            }
        };
        {
            let mut st = self.state.write();
            st.levels = new;
            st.frozen = None;
            if selection.is_some() {
                st.len = Inner::recount(&st);
            }
        }
        // Before the logs go: from now on a missing `data` is damage.
        self.write_meta(generation)?;
        if into_base {
            // Folded into the new base (stale from here on).
            fs.remove_file(&self.delta_path())?;
        }
        for lg in log::list(fs, &self.dir)? {
            if lg < generation {
                fs.remove_file(&log::path(&self.dir, lg))?;
            }
        }
        fs.sync_dir(&self.dir)?;
        Ok(true)
    }
}

#[cfg(test)]
mod config_of_tests {
    use super::*;

    #[test]
    fn config_of_reads_the_sizes_an_index_was_created_with() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("/tmp"), e))?;
        let idx = Index::open(
            dir.path(),
            IndexConfig {
                removable: true,
                ..IndexConfig::new(5, 3)
            },
        )?;
        idx.add(b"abcde", b"xyz", true)?;
        drop(idx);
        let cfg = Index::config_of(dir.path(), &OpenOptions::read_only())?;
        assert_eq!((cfg.key_size, cfg.value_size, cfg.removable), (5, 3, true));
        assert!(cfg.open.read_only);
        let ro = Index::open(dir.path(), cfg)?;
        assert_eq!(ro.find(b"abcde")?, Some(b"xyz".to_vec()));
        assert!(matches!(
            Index::config_of(dir.path().join("none"), &OpenOptions::read_only()),
            Err(Error::NotFound(_))
        ));
        Ok(())
    }
}
