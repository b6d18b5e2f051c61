//! The indexed file store (Octez L2 `INDEXED_FILE` and, with
//! `header_in_value`, `SIMPLE_INDEXED_FILE`): an append-only file of
//! variable-size values plus an index from key to `offset u64 | header`.
//!
//! Layout of `dir` (format version 2, see [`format`]):
//! * `current`: the live generation `n` and the store's sizes, replaced
//!   atomically;
//! * `gen.<n>/values`: a header, then records `magic | len | key | header |
//!   value | crc32`; each record carries its key, so a read proves it got
//!   the record of the key it asked for;
//! * `gen.<n>/index/`: the index engine, key -> `offset u64 BE | header`;
//! * `lock`: held by the read-write instance.
//!
//! Order of writes: a value is written to `values` before its index entry
//! is added, and `flush` fsyncs `values` before it flushes the index, so a
//! flushed entry never points to missing bytes.
//!
//! Damage: at a read-write open the values file is scanned. The first
//! record that is not intact ends the scan; it is a torn tail, cut, only
//! when no index entry points at or after it and no intact record follows
//! it (the append that wrote it was never acknowledged). Anything else is
//! damage: the open returns `Corrupted` naming the file and offset and
//! changes nothing. Reads check every length against the file and
//! [`MAX_VALUE`] before allocating, then the record's CRC, key and header:
//! a damaged value is `Corrupted`, never wrong bytes or another key's value.
//! [`IndexedFile::check`] reports damage and, with repair, rebuilds the
//! store from its intact records, moving the damaged generation into the
//! quarantine.
//!
//! Compaction ([`IndexedFile::gc`]) decides which keys stay on the calling
//! thread, then copies them into generation `n + 1` on the worker pool while
//! appends continue; the values appended meanwhile are copied at the end,
//! under the writer lock, then `current` is switched atomically and the old
//! generation deleted. Every copied record is verified: on damage the
//! compaction stops with `Corrupted` and the old generation stays current.
//! A crash at any point leaves `current` naming a complete generation;
//! other `gen.*` directories are removed at open. Octez's GC
//! ([`IndexedFile::gc_filter`], module `gc`) is the same compaction with a
//! filter of key and header run on the worker, and can be cancelled.

mod check;
mod format;
mod gc;
mod places;
pub mod value_reader;
mod values_map;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::{FileHandle, FileSystem, OpenMode, atomic};
use crate::options::OpenOptions;
use crate::store_dir::StoreDir;
use crate::unsynced::{MAX_UNSYNCED, Unsynced};
use crate::worker::{JobHandle, WorkerPool};
use format::{Decoded, Layout, Reader, VALUES_HEADER};
use places::ValuePlaces;
use value_reader::ValueReader;
use values_map::ValuesMaps;

pub use format::MAX_VALUE;

/// How to open an indexed file.
#[derive(Debug, Clone)]
pub struct IndexedFileConfig {
    /// Size of every key in bytes.
    pub key_size: usize,
    /// Size of the fixed header kept in the index.
    pub header_size: usize,
    /// The header is the first `header_size` bytes of each value
    /// (`SIMPLE_INDEXED_FILE`); `append` then takes no header.
    pub header_in_value: bool,
    /// Log size of the index (0 = the index default).
    pub log_size: u64,
    /// Read-only flag and file system.
    pub open: OpenOptions,
}

impl IndexedFileConfig {
    fn layout(&self) -> Layout {
        Layout {
            key_size: self.key_size,
            header_size: self.header_size,
            header_in_value: self.header_in_value,
        }
    }
}

/// Bytes of the value-file offset at the start of each index value.
const OFFSET: usize = 8;
/// Name of the generation file.
const CURRENT: &str = "current";
/// Name of the values file in a generation.
const VALUES: &str = "values";
/// Name of the index directory in a generation.
const INDEX: &str = "index";

/// One generation: a values file and its index.
struct Gen {
    n: u64,
    layout: Layout,
    values: Arc<dyn FileHandle>,
    /// Maps of `values` that reads use for the records they cover.
    maps: ValuesMaps,
    /// End of the values file (next append offset); RW only. Held by
    /// appends.
    end: Mutex<u64>,
    /// `end` as of the last append, for reads (which then take no lock):
    /// stored before the record's entry is handed out, so a reader that
    /// finds the entry sees an end past its record.
    published_end: AtomicU64,
    read_only: bool,
    index: Index,
    /// Appended records whose bytes are not fsynced yet: their index
    /// entries reach `index` only after the values file's fsync, so no
    /// index entry on disk ever points to bytes a power cut can lose (the
    /// index logs and merges, and fsyncs, at any moment). RW only.
    unsynced: Unsynced<Vec<u8>, Vec<u8>>,
    /// Where keys have their latest records, for borrowed reads; RW only
    /// (module `places`).
    places: Option<ValuePlaces>,
}

impl Gen {
    /// The index entry of `key` (`OFFSET + header_size` bytes) into
    /// `out`: unsynced appends first, then the index; false if absent.
    fn find_into(&self, key: &[u8], out: &mut [u8]) -> Result<bool> {
        match self.unsynced.get(key) {
            Some(e) => {
                out.copy_from_slice(&e);
                Ok(true)
            }
            None => self.index.find_into(key, out),
        }
    }

    fn mem(&self, key: &[u8]) -> Result<bool> {
        Ok(self.unsynced.contains(key) || self.index.mem(key)?)
    }

    /// Keys stored: the index's, and appended keys it does not hold yet.
    fn len(&self) -> Result<u64> {
        let mut n = self.index.len();
        for k in self.unsynced.keys() {
            if !self.index.mem(&k)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Hands the entries whose records the last fsync made durable to the
    /// index. Called under the writer lock, right after that fsync.
    fn publish(&self) -> Result<()> {
        self.unsynced.publish(|k, e| self.index.add(k, e, false))
    }

    /// Bytes of the values file that hold records.
    fn bound(&self) -> Result<u64> {
        if self.read_only {
            self.values.len()
        } else {
            Ok(self.published_end.load(Ordering::Acquire))
        }
    }
}

impl Drop for Gen {
    /// A clean close keeps appends made without a flush, as before they
    /// were held back from the index: they are made durable and indexed.
    /// Best effort: after a failure they are unindexed bytes, as a crash
    /// leaves them.
    fn drop(&mut self) {
        if !self.read_only && self.unsynced.len() > 0 {
            let _ = flush_gen(self);
        }
    }
}

/// A running compaction.
struct Gc {
    job: JobHandle,
    /// Keys appended since the compaction took its snapshot.
    tail: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Raised by `cancel_gc` (and `close`): the compaction stops before it
    /// switches generations.
    cancel: Arc<AtomicBool>,
    /// The generation it compacts: still current after a stopped one.
    from: u64,
}

struct Inner {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    cfg: IndexedFileConfig,
    generation: RwLock<Arc<Gen>>,
    /// Serialises appends, flushes and the switch of generations.
    writer: Mutex<()>,
    gc: Mutex<Option<Gc>>,
    _lock: StoreDir,
}

/// Variable-size values with fixed-size headers, indexed by fixed-size keys.
/// `Send + Sync`.
///
/// ```
/// use tzstore::OpenOptions;
/// use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let cfg = IndexedFileConfig {
///     key_size: 32,
///     header_size: 4, // kept in the index: read without touching the values file
///     header_in_value: false,
///     log_size: 0,
///     open: OpenOptions::read_write(),
/// };
/// let f = IndexedFile::open(dir.path().join("operations"), cfg)?;
/// f.append(&[1u8; 32], Some(&[0, 0, 0, 5]), b"a value of any size", true)?;
/// let mut header = [0u8; 4];
/// assert!(f.header(&[1u8; 32], &mut header)?);
/// assert_eq!(header, [0, 0, 0, 5]);
/// let (value, header) = f.read(&[1u8; 32])?.expect("appended above");
/// assert_eq!((&value[..], &header[..]), (&b"a value of any size"[..], &[0, 0, 0, 5][..]));
/// // Compaction: keep the keys the predicate accepts.
/// f.gc(|key| key[0] != 1)?;
/// f.await_gc()?;
/// assert_eq!(f.read(&[1u8; 32])?, None);
/// # Ok(())
/// # }
/// ```
pub struct IndexedFile {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IndexedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexedFile({})", self.inner.dir.display())
    }
}

fn gen_dir(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("gen.{n}"))
}

/// The generation numbers of the `gen.<n>` directories in `dir`.
fn gen_dirs(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = fs
        .read_dir(dir)?
        .into_iter()
        .filter(|e| e.is_dir)
        .filter_map(|e| e.name.strip_prefix("gen.")?.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The generation and sizes named by `current`, `None` if it is missing.
fn read_current(fs: &dyn FileSystem, path: &Path) -> Result<Option<(u64, Layout)>> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len()?;
    if len != format::CURRENT_LEN as u64 {
        return Err(Error::corrupted(
            path,
            format!(
                "generation file of {len} bytes, expected {}",
                format::CURRENT_LEN
            ),
        ));
    }
    let mut b = [0u8; format::CURRENT_LEN];
    file.read_exact_at(&mut b, 0)?;
    format::decode_current(&b)
        .map(Some)
        .map_err(|why| Error::corrupted(path, why))
}

fn write_current(fs: &dyn FileSystem, path: &Path, n: u64, layout: &Layout) -> Result<()> {
    atomic::replace(fs, path, &format::encode_current(n, layout))
}

/// True when generation `n` holds no record (a creation that crashed before
/// it wrote `current`).
fn gen_is_empty(fs: &dyn FileSystem, dir: &Path, n: u64) -> Result<bool> {
    match fs.open(&gen_dir(dir, n).join(VALUES), OpenMode::Read) {
        Ok(f) => Ok(f.len()? <= VALUES_HEADER),
        Err(Error::NotFound(_)) => Ok(true),
        // Not a regular file: something is there, and it is damage.
        Err(Error::Corrupted(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn index_config(cfg: &IndexedFileConfig, layout: &Layout, open: OpenOptions) -> IndexConfig {
    IndexConfig {
        key_size: layout.key_size,
        value_size: OFFSET + layout.header_size,
        removable: false,
        log_size: cfg.log_size,
        open,
    }
}

/// The offset an index entry points to.
fn entry_offset(entry: &[u8]) -> u64 {
    let mut off = [0u8; OFFSET];
    off.copy_from_slice(&entry[..OFFSET]);
    u64::from_be_bytes(off)
}

impl IndexedFile {
    /// Opens (read-write: creating if needed) the indexed file in `dir`.
    ///
    /// A damaged store (a record that fails its checksum with intact
    /// records or index entries after it, a missing or garbled file the
    /// generation file names) is `Corrupted`, naming the file and offset,
    /// and nothing is changed; only a torn tail (the incomplete last record
    /// of an append no index entry points to) is cut. Use
    /// [`check`](Self::check) with repair to salvage a damaged store.
    ///
    /// Errors: `InvalidArgument` (sizes, or sizes different from the
    /// creation's), `Locked`, `NotFound` (read-only open of a missing store),
    /// `Corrupted`, `Io`.
    pub fn open(dir: impl AsRef<Path>, cfg: IndexedFileConfig) -> Result<IndexedFile> {
        let dir = dir.as_ref().to_path_buf();
        let fs = cfg.open.fs.clone();
        let ro = cfg.open.read_only;
        let layout = cfg.layout();
        layout.validate()?;
        let current = dir.join(CURRENT);
        // Read-only: absence is reported below, once the generation file
        // and the generations left by a crashed creation are looked at.
        let lock = StoreDir::open_unchecked(fs.as_ref(), &dir, ro, "indexed file")?;
        let generation = match read_current(fs.as_ref(), &current)? {
            Some((n, created)) => {
                if created != layout {
                    return Err(Error::invalid(format!(
                        "indexed file {} was created with {created:?}, opened with {layout:?}",
                        dir.display()
                    )));
                }
                if !ro {
                    // Half-written compactions and generations left by a
                    // crash: `current` proves them abandoned.
                    for g in gen_dirs(fs.as_ref(), &dir)? {
                        if g != n {
                            fs.remove_dir_all(&gen_dir(&dir, g))?;
                        }
                    }
                }
                if ro {
                    open_current_ro(fs.as_ref(), &dir, n, &cfg, &layout)?
                } else {
                    open_gen(fs.as_ref(), &dir, n, &cfg, &layout)?
                }
            }
            None => {
                let gens = if fs.is_dir(&dir)? {
                    gen_dirs(fs.as_ref(), &dir)?
                } else {
                    Vec::new()
                };
                // Only a creation that crashed before writing `current`
                // leaves generations without it, and they hold no record.
                for &g in &gens {
                    if !gen_is_empty(fs.as_ref(), &dir, g)? {
                        return Err(Error::corrupted(
                            &current,
                            format!("the generation file is missing, but gen.{g} holds records"),
                        ));
                    }
                }
                if ro {
                    return Err(Error::NotFound(format!(
                        "indexed file {} does not exist",
                        dir.display()
                    )));
                }
                for g in gens {
                    fs.remove_dir_all(&gen_dir(&dir, g))?;
                }
                let g = create_gen(fs.as_ref(), &dir, 0, &cfg, &layout, 0)?;
                write_current(fs.as_ref(), &current, 0, &layout)?;
                g
            }
        };
        Ok(IndexedFile {
            inner: Arc::new(Inner {
                dir,
                fs,
                cfg,
                generation: RwLock::new(Arc::new(generation)),
                writer: Mutex::new(()),
                gc: Mutex::new(None),
                _lock: lock,
            }),
        })
    }

    /// The configuration the indexed file in `dir` was created with (key
    /// and header sizes, `header_in_value`), read from its `current` file,
    /// with `open` and the default log size.
    ///
    /// Errors: `NotFound` (no `current` file), `Corrupted`, `Io`.
    pub fn config_of(dir: impl AsRef<Path>, open: &OpenOptions) -> Result<IndexedFileConfig> {
        let dir = dir.as_ref();
        let (_, layout) = read_current(open.fs.as_ref(), &dir.join(CURRENT))?.ok_or_else(|| {
            Error::NotFound(format!(
                "indexed file {} has no generation file",
                dir.display()
            ))
        })?;
        Ok(IndexedFileConfig {
            key_size: layout.key_size,
            header_size: layout.header_size,
            header_in_value: layout.header_in_value,
            log_size: 0,
            open: open.clone(),
        })
    }

    /// Every stored key, as of now (order unspecified): the keys of the
    /// current generation's index and the appends not handed to it yet.
    /// Read each with [`read`](Self::read); a key replaced meanwhile reads
    /// its newer value.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let generation = self.current();
        let mut keys = Vec::new();
        for kv in generation.index.iter()? {
            keys.push(kv?.0);
        }
        for k in generation.unsynced.keys() {
            if !generation.index.mem(&k)? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() != self.inner.cfg.key_size {
            return Err(Error::invalid(format!(
                "key must be {} bytes, got {}",
                self.inner.cfg.key_size,
                key.len()
            )));
        }
        Ok(())
    }

    fn current(&self) -> Arc<Gen> {
        self.inner.generation.read().clone()
    }

    /// Whether `key` is stored.
    pub fn mem(&self, key: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        self.current().mem(key)
    }

    /// Copies the header of `key` into `out` (`header_size` bytes) from the
    /// index alone; `Ok(false)` if absent.
    pub fn header(&self, key: &[u8], out: &mut [u8]) -> Result<bool> {
        self.check_key(key)?;
        let hs = self.inner.cfg.header_size;
        if out.len() != hs {
            return Err(Error::invalid(format!(
                "header buffer must be {hs} bytes, got {}",
                out.len()
            )));
        }
        let mut entry = [0u8; 256];
        let mut big = Vec::new();
        let e: &mut [u8] = if OFFSET + hs <= entry.len() {
            &mut entry[..OFFSET + hs]
        } else {
            big.resize(OFFSET + hs, 0);
            &mut big
        };
        let generation = self.current();
        if let Some(u) = generation.unsynced.get(key) {
            e.copy_from_slice(&u);
        } else if !generation.index.find_into(key, e)? {
            return Ok(false);
        }
        out.copy_from_slice(&e[OFFSET..]);
        Ok(true)
    }

    /// The value and header of `key`, or `None`.
    pub fn read(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.check_key(key)?;
        read_from(&self.current(), key)
    }

    /// [`IndexedFile::read`] without a copy: the value and header, borrowed
    /// from what `reader` holds after this call (a map of the values file,
    /// or the reader's own copy of a record no map covers yet; see
    /// [`ValueReader`] for what keeps them valid across a GC and close).
    /// `None` if absent; the reader then holds nothing.
    pub fn read_view<'r>(
        &self,
        key: &[u8],
        reader: &'r mut ValueReader,
    ) -> Result<Option<(&'r [u8], &'r [u8])>> {
        self.check_key(key)?;
        // Under the read lock rather than a clone of the generation: two
        // atomic writes fewer to a line every reader thread shares.
        if !hold_value(&self.inner.generation.read(), key, reader)? {
            return Ok(None);
        }
        reader.view().map(Some)
    }

    /// Appends `value` for `key` (replacing an earlier one, whose bytes stay
    /// as garbage until a [`gc`](Self::gc)). `header` must be `Some` of
    /// `header_size` bytes unless the store keeps the header in the value
    /// (then `None`, and the value must be at least `header_size` bytes).
    /// With `flush` the value and its index entry are durable on return.
    /// Values longer than [`MAX_VALUE`] are `InvalidArgument`.
    pub fn append(
        &self,
        key: &[u8],
        header: Option<&[u8]>,
        value: &[u8],
        flush: bool,
    ) -> Result<()> {
        if self.inner.cfg.open.read_only {
            return Err(Error::ReadOnly(format!(
                "append to read-only indexed file {}",
                self.inner.dir.display()
            )));
        }
        self.check_key(key)?;
        let hs = self.inner.cfg.header_size;
        let header = match (self.inner.cfg.header_in_value, header) {
            (true, None) => value.get(..hs).ok_or_else(|| {
                Error::invalid(format!(
                    "value of {} bytes is shorter than the {hs}-byte header it must start with",
                    value.len()
                ))
            })?,
            (true, Some(_)) => {
                return Err(Error::invalid(
                    "this indexed file keeps the header in the value: pass no header",
                ));
            }
            (false, Some(h)) if h.len() == hs => h,
            (false, Some(h)) => {
                return Err(Error::invalid(format!(
                    "header must be {hs} bytes, got {}",
                    h.len()
                )));
            }
            // A zero-size header may be omitted (C callers pass NULL, 0).
            (false, None) if hs == 0 => &[],
            (false, None) => return Err(Error::invalid("header is required")),
        };
        let _w = self.inner.writer.lock();
        let generation = self.current();
        append_to(&generation, key, header, value)?;
        if let Some(gc) = self.inner.gc.lock().as_ref() {
            gc.tail.lock().push(key.to_vec());
        }
        if flush {
            flush_gen(&generation)?;
        }
        Ok(())
    }

    /// Makes every append so far durable (values fsynced before the index).
    pub fn flush(&self) -> Result<()> {
        if self.inner.cfg.open.read_only {
            return Ok(());
        }
        let _w = self.inner.writer.lock();
        flush_gen(&self.current())
    }

    /// Read-only instances: see what the writer flushed since open or the
    /// last sync, following a compaction if one switched generations.
    pub fn sync(&self) -> Result<()> {
        if !self.inner.cfg.open.read_only {
            return Ok(());
        }
        let fs = self.inner.fs.as_ref();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let n = read_current(fs, &self.inner.dir.join(CURRENT))?.map_or(0, |(n, _)| n);
            let cur = self.current();
            if n == cur.n {
                return cur.index.sync();
            }
            match open_current_ro(fs, &self.inner.dir, n, &self.inner.cfg, &cur.layout) {
                Ok(g) => {
                    *self.inner.generation.write() = Arc::new(g);
                    return Ok(());
                }
                // The generation was replaced again while we opened it.
                Err(_) if attempts < 10 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> u64 {
        // Counting appends not yet handed to the index reads the index:
        // an error there (damage) is not a count, so it counts them all.
        let generation = self.current();
        generation
            .len()
            .unwrap_or_else(|_| generation.index.len() + generation.unsynced.len() as u64)
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compaction: `keep(key)` is called here, on the calling thread, for
    /// every stored key; the kept values are then copied into a new
    /// generation on the worker pool while appends continue (values appended
    /// meanwhile are always kept). Returns once the copy is queued; see
    /// [`await_gc`](Self::await_gc). `InvalidArgument` if a compaction is
    /// already running. [`gc_filter`](Self::gc_filter) is Octez's form:
    /// the filter sees the header and runs in the background.
    pub fn gc(&self, keep: impl Fn(&[u8]) -> bool) -> Result<()> {
        let started = self.start_gc(|generation| {
            let mut kept = Vec::new();
            for r in generation.index.iter()? {
                let (k, _) = r?;
                if keep(&k) {
                    kept.push(k);
                }
            }
            Ok(gc::Selection::Keys(kept))
        })?;
        if started.is_none() {
            return Err(Error::invalid("a compaction is already running"));
        }
        Ok(())
    }

    /// Starts a compaction unless one runs (`None` then): `select`, under
    /// the writer lock, picks what it keeps from the current generation
    /// (flushed first, so every stored key is in its index).
    fn start_gc(
        &self,
        select: impl FnOnce(&Gen) -> Result<gc::Selection>,
    ) -> Result<Option<JobHandle>> {
        if self.inner.cfg.open.read_only {
            return Err(Error::ReadOnly(format!(
                "gc of read-only indexed file {}",
                self.inner.dir.display()
            )));
        }
        self.inner.refuse_in_gc("gc")?;
        // The snapshot and the start of tail tracking happen under the
        // writer lock, so every append lands in exactly one of them. Lock
        // order everywhere: writer, then gc slot, then tail.
        let _w = self.inner.writer.lock();
        let mut slot = self.inner.gc.lock();
        if let Some(gc) = slot.as_ref() {
            if !gc.job.is_finished() {
                return Ok(None);
            }
            let previous = gc.job.wait();
            *slot = None;
            previous?;
        }
        let generation = self.current();
        // Every stored key is offered to `keep`: appends not yet in the
        // index are made durable and handed to it first.
        flush_gen(&generation)?;
        let selection = select(&generation)?;
        let tail = Arc::new(Mutex::new(Vec::new()));
        let cancel = Arc::new(AtomicBool::new(false));
        let from = generation.n;
        let inner = self.inner.clone();
        let (t, c) = (tail.clone(), cancel.clone());
        let job =
            WorkerPool::global().submit(move || inner.compact(&generation, selection, &t, &c));
        *slot = Some(Gc {
            job: job.clone(),
            tail,
            cancel,
            from,
        });
        Ok(Some(job))
    }

    /// Waits for a running compaction; returns its error (once).
    /// `InvalidArgument` from inside its own filter.
    pub fn await_gc(&self) -> Result<()> {
        self.inner.refuse_in_gc("await_gc")?;
        let job = self.inner.gc.lock().as_ref().map(|g| g.job.clone());
        match job {
            Some(j) => {
                let r = j.wait();
                let mut slot = self.inner.gc.lock();
                if slot.as_ref().is_some_and(|g| g.job.is_finished()) {
                    *slot = None;
                }
                r
            }
            None => Ok(()),
        }
    }
}

impl Drop for IndexedFile {
    fn drop(&mut self) {
        // From inside its own GC filter (a C caller closing the handle
        // there) the compaction is not waited for, which would wait for
        // itself: it holds its own reference and finishes alone.
        if !self.inner.in_own_gc() {
            let _ = self.await_gc();
        }
        let _ = self.flush();
    }
}

impl Inner {
    /// The compaction job: decide what `selection` keeps, copy it from
    /// `old` into generation `old.n+1`, then (under the writer lock) the
    /// tail, then switch. Stopped by `cancel` before the switch, it removes
    /// the new generation and returns `Ok`.
    fn compact(
        &self,
        old: &Arc<Gen>,
        selection: gc::Selection,
        tail: &Mutex<Vec<Vec<u8>>>,
        cancel: &AtomicBool,
    ) -> Result<()> {
        let Some(kept) = self.select(selection, cancel)? else {
            return Ok(());
        };
        let fs = self.fs.as_ref();
        let n = old.n + 1;
        let dir = gen_dir(&self.dir, n);
        fs.remove_dir_all(&dir)?;
        fs.create_dir_all(&dir)?;
        let stopped = || cancel.load(Ordering::Relaxed);
        let result = (|| {
            let new = create_gen(fs, &self.dir, n, &self.cfg, &old.layout, old.index.len())?;
            // `read_from` verifies each record (CRC, key, header): damage
            // stops the compaction and the old generation stays current.
            let copy = |key: &[u8]| -> Result<()> {
                if let Some((v, h)) = read_from(old, key)? {
                    append_to(&new, key, &h, &v)?;
                }
                Ok(())
            };
            for k in &kept {
                if stopped() {
                    return Ok(false);
                }
                copy(k)?;
            }
            flush_gen(&new)?;
            let _w = self.writer.lock();
            if stopped() {
                return Ok(false);
            }
            let cur = self.generation.read().clone();
            if cur.n != old.n {
                return Err(Error::Inconsistent(
                    "generation changed during compaction".into(),
                ));
            }
            flush_gen(&cur)?;
            for k in tail.lock().iter() {
                copy(k)?;
            }
            flush_gen(&new)?;
            write_current(fs, &self.dir.join(CURRENT), n, &old.layout)?;
            *self.generation.write() = Arc::new(new);
            Ok(true)
        })();
        match result {
            Ok(false) => fs.remove_dir_all(&dir),
            Ok(true) => {
                // No append reaches the old generation any more; let a merge
                // its index started finish before deleting its files (the
                // next read-write open removes them if this fails).
                let _ = old.index.await_merge();
                fs.remove_dir_all(&gen_dir(&self.dir, old.n))
            }
            Err(e) => {
                let _ = fs.remove_dir_all(&dir);
                Err(e)
            }
        }
    }
}

/// Read-only: opens generation `n`, or the one that replaced it if a
/// compaction finished (and deleted `n`) meanwhile.
fn open_current_ro(
    fs: &dyn FileSystem,
    dir: &Path,
    mut n: u64,
    cfg: &IndexedFileConfig,
    layout: &Layout,
) -> Result<Gen> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match open_gen(fs, dir, n, cfg, layout) {
            Ok(g) => return Ok(g),
            Err(e) => {
                let now = read_current(fs, &dir.join(CURRENT))?.map_or(n, |(m, _)| m);
                if now == n || attempts >= 10 {
                    return Err(e);
                }
                n = now;
            }
        }
    }
}

/// Creates generation `n` (empty) for writing about `keys` keys.
fn create_gen(
    fs: &dyn FileSystem,
    dir: &Path,
    n: u64,
    cfg: &IndexedFileConfig,
    layout: &Layout,
    keys: u64,
) -> Result<Gen> {
    let gdir = gen_dir(dir, n);
    crate::io::atomic::create_dir_durably(fs, &gdir)?;
    let mut open = cfg.open.clone();
    open.read_only = false;
    let index = Index::open(gdir.join(INDEX), index_config(cfg, layout, open))?;
    let values = fs.open(&gdir.join(VALUES), OpenMode::Truncate)?;
    values.write_all_at(&format::encode_values_header(layout), 0)?;
    values.sync()?;
    fs.sync_dir(&gdir)?;
    // Every record of a new generation is this handle's own append.
    let maps = ValuesMaps::new(values.as_ref(), VALUES_HEADER, *layout, VALUES_HEADER)?;
    Ok(Gen {
        n,
        layout: *layout,
        values,
        maps,
        end: Mutex::new(VALUES_HEADER),
        published_end: AtomicU64::new(VALUES_HEADER),
        read_only: false,
        index,
        unsynced: Unsynced::default(),
        places: Some(ValuePlaces::for_keys(keys)),
    })
}

/// Opens generation `n`, which `current` names: every part of it must be
/// there.
fn open_gen(
    fs: &dyn FileSystem,
    dir: &Path,
    n: u64,
    cfg: &IndexedFileConfig,
    layout: &Layout,
) -> Result<Gen> {
    let gdir = gen_dir(dir, n);
    let ro = cfg.open.read_only;
    let path = gdir.join(VALUES);
    let idir = gdir.join(INDEX);
    for (p, is_dir) in [
        (&gdir, true),
        (&idir, true),
        (&idir.join("meta"), false),
        (&path, false),
    ] {
        let there = if is_dir { fs.is_dir(p)? } else { fs.exists(p)? };
        if !there {
            return Err(Error::corrupted(
                p,
                format!("missing, but the generation file names generation {n}"),
            ));
        }
    }
    let index = Index::open(&idir, index_config(cfg, layout, cfg.open.clone()))?;
    let values = fs.open(
        &path,
        if ro {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        },
    )?;
    format::check_values_header(values.as_ref(), layout)?;
    let end = if ro {
        values.len()?
    } else {
        recover_end(values.as_ref(), layout, &index)?
    };
    // After recovery: the map never sees a tail it cut.
    let written_from = if ro { u64::MAX } else { end };
    let maps = ValuesMaps::new(values.as_ref(), end, *layout, written_from)?;
    Ok(Gen {
        n,
        layout: *layout,
        values,
        maps,
        end: Mutex::new(end),
        published_end: AtomicU64::new(end),
        read_only: ro,
        places: (!ro).then(|| ValuePlaces::for_keys(index.len())),
        index,
        unsynced: Unsynced::default(),
    })
}

/// Read-write open: the end of the intact records of `values`, after
/// cutting a torn tail. The first record that is not intact is a torn tail
/// only if no index entry points at or after it (its append was never
/// acknowledged) and no intact record follows it; otherwise it is damage.
fn recover_end(values: &dyn FileHandle, layout: &Layout, index: &Index) -> Result<u64> {
    let len = values.len()?;
    let mut r = Reader::new(values, len, *layout);
    let mut pos = VALUES_HEADER;
    let why = loop {
        if pos >= len {
            return Ok(len);
        }
        match r.record_at(pos)? {
            Decoded::Record(_, total) => pos += total as u64,
            Decoded::Incomplete(_) => break "the file ends inside it".to_string(),
            Decoded::Bad(why) => break why,
        }
    };
    for e in index.iter()? {
        let (_, entry) = e?;
        let o = entry_offset(&entry);
        if o >= pos {
            return Err(Error::corrupted(
                values.path(),
                format!(
                    "record at offset {pos} is damaged ({why}), but the index points to offset {o}: it was acknowledged"
                ),
            ));
        }
    }
    if let Some(q) = r.next_record(pos + 1)? {
        return Err(Error::corrupted(
            values.path(),
            format!(
                "record at offset {pos} is damaged ({why}), and an intact record follows at offset {q}"
            ),
        ));
    }
    values.set_len(pos)?;
    values.sync()?;
    Ok(pos)
}

fn append_to(generation: &Gen, key: &[u8], header: &[u8], value: &[u8]) -> Result<()> {
    let rec = format::encode_record(&generation.layout, key, header, value)?;
    let mut end = generation.end.lock();
    let offset = *end;
    if let Err(e) = generation.values.write_all_at(&rec, offset) {
        let _ = generation.values.set_len(offset);
        return Err(e);
    }
    *end += rec.len() as u64;
    generation.published_end.store(*end, Ordering::Release);
    let mut entry = Vec::with_capacity(OFFSET + header.len());
    entry.extend_from_slice(&offset.to_be_bytes());
    entry.extend_from_slice(header);
    generation.unsynced.insert(key.to_vec(), entry);
    if let Some(places) = &generation.places {
        places.set(places::key_hash(key), offset);
    }
    if generation.unsynced.len() >= MAX_UNSYNCED {
        generation.values.sync()?;
        generation.publish()?;
    }
    Ok(())
}

/// Values fsynced first, then their entries handed to the index, then the
/// index fsynced: a durable index entry never points to bytes that are not.
fn flush_gen(generation: &Gen) -> Result<()> {
    generation.values.sync()?;
    generation.publish()?;
    generation.index.flush()
}

/// At most the first 32 bytes of `key`, in hex, for error messages.
fn hex(key: &[u8]) -> String {
    let mut s: String = key.iter().take(32).map(|b| format!("{b:02x}")).collect();
    if key.len() > 32 {
        s.push_str("...");
    }
    s
}

/// The value and header of `key` in `generation`, verified: the record the
/// index points to must lie inside the file, pass its CRC, and carry `key`
/// and the header of the index entry.
fn read_from(generation: &Gen, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut reader = ValueReader::new();
    if !hold_value(generation, key, &mut reader)? {
        return Ok(None);
    }
    let (value, header) = reader.view()?;
    Ok(Some((value.to_vec(), header.to_vec())))
}

/// Has `reader` hold the value of `key` (its map's record when a map
/// covers it, else a copy read by `pread`); false if absent.
fn hold_value(generation: &Gen, key: &[u8], reader: &mut ValueReader) -> Result<bool> {
    reader.start();
    let placed = generation.places.as_ref().map(|p| {
        let h = places::key_hash(key);
        (p, h, p.get(h))
    });
    if let Some((_, _, (_, Some(offset)))) = placed {
        if hold_placed(generation, key, offset, reader)? {
            return Ok(true);
        }
    }
    // The index entry (offset and header) on the stack when it fits.
    let hs = generation.layout.header_size;
    let mut small = [0u8; 256];
    let mut big = Vec::new();
    let entry: &mut [u8] = if OFFSET + hs <= small.len() {
        &mut small[..OFFSET + hs]
    } else {
        big.resize(OFFSET + hs, 0);
        &mut big
    };
    if !generation.find_into(key, entry)? {
        return Ok(false);
    }
    let entry = &*entry;
    let offset = entry_offset(entry);
    if let Some((places, h, (seen, _))) = placed {
        // Before the record is read: a place is a hint that a read checks
        // (the record must carry the key), whatever this read finds there.
        places.fill(seen, h, offset);
    }
    let bound = generation.bound()?;
    let path = generation.values.path();
    if offset < VALUES_HEADER || offset >= bound {
        return Err(Error::corrupted(
            path,
            format!(
                "the index entry of key {} points to offset {offset}, outside the records ({VALUES_HEADER}..{bound})",
                hex(key)
            ),
        ));
    }
    let layout = generation.layout;
    let header = &entry[OFFSET..];
    let mapped = match generation.maps.map_for(
        generation.values.as_ref(),
        offset,
        bound,
        reader.map_slot(),
    )? {
        // `None`: the record runs past the map; read it by `pread`.
        Some(map) => match map.record(offset) {
            Some(decoded) => {
                let (value, header) =
                    checked_value(decoded, key, header, &layout, path, offset, bound)?;
                Some((map.span_of(value), map.span_of(header)))
            }
            None => None,
        },
        None => None,
    };
    if let Some((value, header)) = mapped {
        reader.hold_map(value, header);
        return Ok(true);
    }
    let mut r = Reader::exact(generation.values.as_ref(), bound, layout);
    let (value, _) = checked_value(
        r.record_at(offset)?,
        key,
        header,
        &layout,
        path,
        offset,
        bound,
    )?;
    reader.hold_owned(value.to_vec(), header.to_vec());
    Ok(true)
}

/// Has `reader` hold the record the table of places names for `key` at
/// `offset`, if a map covers it, it passes its checks (a first read of it
/// in this map computes its checksum) and it carries `key`: then it is
/// `key`'s latest record (module `places`). False otherwise, for the read
/// to go through the index, which reports any damage as it would have.
fn hold_placed(
    generation: &Gen,
    key: &[u8],
    offset: u64,
    reader: &mut ValueReader,
) -> Result<bool> {
    let bound = generation.bound()?;
    if offset < VALUES_HEADER || offset >= bound {
        return Ok(false);
    }
    let Some(map) =
        generation
            .maps
            .map_for(generation.values.as_ref(), offset, bound, reader.map_slot())?
    else {
        return Ok(false);
    };
    let spans = match map.record(offset) {
        Some(Decoded::Record(rec, _)) if rec.key == key => rec
            .header_of(&generation.layout)
            .map(|header| (map.span_of(rec.value), map.span_of(header))),
        _ => None,
    };
    match spans {
        Some((value, header)) => {
            reader.hold_map(value, header);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The value and header of the record read for `key` at `offset`, after
/// checking it is `key`'s and holds the index entry's `header`.
fn checked_value<'a>(
    decoded: Decoded<'a>,
    key: &[u8],
    header: &[u8],
    layout: &Layout,
    path: &Path,
    offset: u64,
    bound: u64,
) -> Result<(&'a [u8], &'a [u8])> {
    match decoded {
        Decoded::Record(rec, _) => {
            if rec.key != key {
                return Err(Error::corrupted(
                    path,
                    format!(
                        "record at offset {offset} holds key {}, not {}",
                        hex(rec.key),
                        hex(key)
                    ),
                ));
            }
            match rec.header_of(layout) {
                Some(h) if h == header => Ok((rec.value, h)),
                _ => Err(Error::corrupted(
                    path,
                    format!(
                        "record at offset {offset} has another header than the index entry of key {}",
                        hex(key)
                    ),
                )),
            }
        }
        Decoded::Incomplete(_) => Err(Error::corrupted(
            path,
            format!("record at offset {offset} runs past the end of the values ({bound} bytes)"),
        )),
        Decoded::Bad(why) => Err(Error::corrupted(
            path,
            format!("record at offset {offset}: {why}"),
        )),
    }
}

#[cfg(test)]
mod accessor_tests {
    use super::*;

    #[test]
    fn config_of_and_keys_read_an_existing_store() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("/tmp"), e))?;
        let cfg = IndexedFileConfig {
            key_size: 4,
            header_size: 2,
            header_in_value: true,
            log_size: 0,
            open: OpenOptions::read_write(),
        };
        let f = IndexedFile::open(dir.path(), cfg)?;
        f.append(b"key1", None, b"hhvalue", true)?;
        f.append(b"key2", None, b"hhother", false)?;
        let got = IndexedFile::config_of(dir.path(), &OpenOptions::read_only())?;
        assert_eq!(
            (got.key_size, got.header_size, got.header_in_value),
            (4, 2, true)
        );
        let mut keys = f.keys()?;
        keys.sort();
        assert_eq!(keys, vec![b"key1".to_vec(), b"key2".to_vec()]);
        let missing = dir.path().join("none");
        assert!(matches!(
            IndexedFile::config_of(&missing, &OpenOptions::read_only()),
            Err(Error::NotFound(_))
        ));
        Ok(())
    }
}
