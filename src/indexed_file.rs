//! The indexed file store (Octez L2 `INDEXED_FILE` and, with
//! `header_in_value`, `SIMPLE_INDEXED_FILE`): an append-only file of
//! variable-size values plus an index from key to `offset u64 | header`.
//!
//! Layout of `dir`:
//! * `current`: the live generation `n` (`n u64 | crc32 u32`, big-endian,
//!   replaced atomically);
//! * `gen.<n>/values`: records `len u32 | bytes | crc32(len | bytes) u32`
//!   (big-endian, [`crate::io::frame`]);
//! * `gen.<n>/index/`: the index engine, key -> `offset u64 BE | header`;
//! * `lock`: held by the read-write instance.
//!
//! Order of writes: a value is written to `values` before its index entry
//! is added, and `flush` fsyncs `values` before it flushes the index, so a
//! flushed entry never points to missing bytes. At a read-write open the
//! values file is scanned and a torn tail cut. Reads check the record's
//! CRC: a damaged value is `Corrupted`, never wrong bytes.
//!
//! Compaction ([`IndexedFile::gc`]) decides which keys stay on the calling
//! thread, then copies them into generation `n + 1` on the worker pool while
//! appends continue; the values appended meanwhile are copied at the end,
//! under the writer lock, then `current` is switched atomically and the old
//! generation deleted. A crash at any point leaves `current` naming a
//! complete generation; other `gen.*` directories are removed at open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::{FileHandle, FileSystem, LockFile, OpenMode, atomic, frame};
use crate::options::OpenOptions;
use crate::worker::{JobHandle, WorkerPool};

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

/// Bytes of the value-file offset at the start of each index value.
const OFFSET: usize = 8;
/// Bytes read at once when scanning the values file at open.
const SCAN_CHUNK: usize = 1 << 20;

/// One generation: a values file and its index.
struct Gen {
    n: u64,
    values: Arc<dyn FileHandle>,
    /// End of the values file (next append offset); RW only.
    end: Mutex<u64>,
    index: Index,
}

/// A running compaction.
struct Gc {
    job: JobHandle,
    /// Keys appended since the compaction took its snapshot.
    tail: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct Inner {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    cfg: IndexedFileConfig,
    generation: RwLock<Arc<Gen>>,
    /// Serialises appends, flushes and the switch of generations.
    writer: Mutex<()>,
    gc: Mutex<Option<Gc>>,
    _lock: Option<LockFile>,
}

/// Variable-size values with fixed-size headers, indexed by fixed-size keys.
/// `Send + Sync`.
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

fn read_current(fs: &dyn FileSystem, path: &Path) -> Result<Option<u64>> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut b = [0u8; 12];
    if file.len()? != 12 {
        return Err(Error::corrupted(
            path,
            "generation file has the wrong length",
        ));
    }
    file.read_exact_at(&mut b, 0)?;
    if frame::crc(&[&b[..8]]).to_be_bytes() != b[8..12] {
        return Err(Error::corrupted(path, "generation file fails its checksum"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&b[..8]);
    Ok(Some(u64::from_be_bytes(n)))
}

fn write_current(fs: &dyn FileSystem, path: &Path, n: u64) -> Result<()> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&frame::crc(&[&n.to_be_bytes()]).to_be_bytes());
    atomic::replace(fs, path, &b)
}

/// Length of the valid prefix of a values file (whole records with good
/// CRCs); anything after is a torn tail.
fn valid_len(file: &dyn FileHandle) -> Result<u64> {
    let len = file.len()?;
    let mut pos = 0u64;
    // `buf` holds the file's bytes from `buf_at`; `buf_at <= pos`.
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = 0u64;
    while pos < len {
        let rel = (pos - buf_at) as usize;
        match frame::decode(buf.get(rel..).unwrap_or(&[])) {
            frame::Decoded::Record(_, n) => {
                pos += n as u64;
                continue;
            }
            frame::Decoded::BadChecksum => return Ok(pos),
            frame::Decoded::Incomplete => {
                if buf_at + buf.len() as u64 >= len && buf_at == pos {
                    return Ok(pos); // the file ends inside this record
                }
            }
        }
        // Refill from `pos`, large enough for the record's declared length.
        let mut need = SCAN_CHUNK;
        let mut head = [0u8; 4];
        if file.read_at(&mut head, pos)? == 4 {
            need = need.max(u32::from_be_bytes(head) as usize + frame::OVERHEAD);
        }
        let want = need.min((len - pos) as usize);
        buf.resize(want, 0);
        let got = file.read_at(&mut buf, pos)?;
        buf.truncate(got);
        buf_at = pos;
    }
    Ok(pos)
}

impl IndexedFile {
    /// Opens (read-write: creating if needed) the indexed file in `dir`.
    ///
    /// Errors: `InvalidArgument` (sizes, or sizes different from the
    /// creation's), `Locked`, `NotFound` (read-only open of a missing store),
    /// `Corrupted`, `Io`.
    pub fn open(dir: impl AsRef<Path>, cfg: IndexedFileConfig) -> Result<IndexedFile> {
        let dir = dir.as_ref().to_path_buf();
        let fs = cfg.open.fs.clone();
        let ro = cfg.open.read_only;
        let current = dir.join("current");
        let lock = if ro {
            None
        } else {
            fs.create_dir_all(&dir)?;
            Some(fs.lock(&dir.join("lock"))?)
        };
        let n = match read_current(fs.as_ref(), &current)? {
            Some(n) => n,
            None if ro => {
                return Err(Error::NotFound(format!(
                    "indexed file {} does not exist",
                    dir.display()
                )));
            }
            None => {
                fs.create_dir_all(&gen_dir(&dir, 0))?;
                write_current(fs.as_ref(), &current, 0)?;
                0
            }
        };
        if !ro {
            // Half-written compactions and generations left by a crash.
            let keep = format!("gen.{n}");
            for e in fs.read_dir(&dir)? {
                if e.is_dir && e.name.starts_with("gen.") && e.name != keep {
                    fs.remove_dir_all(&dir.join(&e.name))?;
                }
            }
        }
        let generation = if ro {
            open_current_ro(fs.as_ref(), &dir, n, &cfg)?
        } else {
            open_gen(fs.as_ref(), &dir, n, &cfg)?
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
        self.current().index.mem(key)
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
        if !self.current().index.find_into(key, e)? {
            return Ok(false);
        }
        out.copy_from_slice(&e[OFFSET..]);
        Ok(true)
    }

    /// The value and header of `key`, or `None`.
    pub fn read(&self, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.check_key(key)?;
        read_from(&self.current(), key, self.inner.cfg.header_size)
    }

    /// Appends `value` for `key` (replacing an earlier one, whose bytes stay
    /// as garbage until a [`gc`](Self::gc)). `header` must be `Some` of
    /// `header_size` bytes unless the store keeps the header in the value
    /// (then `None`, and the value must be at least `header_size` bytes).
    /// With `flush` the value and its index entry are durable on return.
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
            let n = read_current(fs, &self.inner.dir.join("current"))?.unwrap_or(0);
            let cur = self.current();
            if n == cur.n {
                return cur.index.sync();
            }
            match open_current_ro(fs, &self.inner.dir, n, &self.inner.cfg) {
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
        self.current().index.len()
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
    /// already running.
    pub fn gc(&self, keep: impl Fn(&[u8]) -> bool) -> Result<()> {
        if self.inner.cfg.open.read_only {
            return Err(Error::ReadOnly(format!(
                "gc of read-only indexed file {}",
                self.inner.dir.display()
            )));
        }
        // The snapshot and the start of tail tracking happen under the
        // writer lock, so every append lands in exactly one of them. Lock
        // order everywhere: writer, then gc slot, then tail.
        let _w = self.inner.writer.lock();
        let mut slot = self.inner.gc.lock();
        if let Some(gc) = slot.as_ref() {
            if !gc.job.is_finished() {
                return Err(Error::invalid("a compaction is already running"));
            }
            let previous = gc.job.wait();
            *slot = None;
            previous?;
        }
        let generation = self.current();
        let mut kept = Vec::new();
        for r in generation.index.iter()? {
            let (k, _) = r?;
            if keep(&k) {
                kept.push(k);
            }
        }
        let tail = Arc::new(Mutex::new(Vec::new()));
        let inner = self.inner.clone();
        let t = tail.clone();
        let job = WorkerPool::global().submit(move || inner.compact(&generation, &kept, &t));
        *slot = Some(Gc { job, tail });
        Ok(())
    }

    /// Waits for a running compaction; returns its error (once).
    pub fn await_gc(&self) -> Result<()> {
        let job = self.inner.gc.lock().as_ref().map(|g| g.job.clone());
        match job {
            Some(j) => {
                let r = j.wait();
                *self.inner.gc.lock() = None;
                r
            }
            None => Ok(()),
        }
    }
}

impl Drop for IndexedFile {
    fn drop(&mut self) {
        let _ = self.await_gc();
        let _ = self.flush();
    }
}

impl Inner {
    /// The compaction job: copy `kept` from `old` into generation `old.n+1`,
    /// then (under the writer lock) the tail, then switch.
    fn compact(&self, old: &Arc<Gen>, kept: &[Vec<u8>], tail: &Mutex<Vec<Vec<u8>>>) -> Result<()> {
        let fs = self.fs.as_ref();
        let n = old.n + 1;
        let dir = gen_dir(&self.dir, n);
        fs.remove_dir_all(&dir)?;
        fs.create_dir_all(&dir)?;
        let result = (|| {
            let new = open_gen(fs, &self.dir, n, &self.cfg)?;
            let hs = self.cfg.header_size;
            let copy = |key: &[u8]| -> Result<()> {
                if let Some((v, h)) = read_from(old, key, hs)? {
                    append_to(&new, key, &h, &v)?;
                }
                Ok(())
            };
            for k in kept {
                copy(k)?;
            }
            flush_gen(&new)?;
            let _w = self.writer.lock();
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
            write_current(fs, &self.dir.join("current"), n)?;
            *self.generation.write() = Arc::new(new);
            Ok(())
        })();
        match result {
            Ok(()) => {
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
) -> Result<Gen> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match open_gen(fs, dir, n, cfg) {
            Ok(g) => return Ok(g),
            Err(e) => {
                let now = read_current(fs, &dir.join("current"))?.unwrap_or(n);
                if now == n || attempts >= 10 {
                    return Err(e);
                }
                n = now;
            }
        }
    }
}

fn open_gen(fs: &dyn FileSystem, dir: &Path, n: u64, cfg: &IndexedFileConfig) -> Result<Gen> {
    let gdir = gen_dir(dir, n);
    let ro = cfg.open.read_only;
    let index = Index::open(
        gdir.join("index"),
        IndexConfig {
            key_size: cfg.key_size,
            value_size: OFFSET + cfg.header_size,
            removable: false,
            log_size: cfg.log_size,
            open: cfg.open.clone(),
        },
    )?;
    let path = gdir.join("values");
    let values = fs.open(
        &path,
        if ro {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        },
    )?;
    let end = if ro {
        values.len()?
    } else {
        let valid = valid_len(values.as_ref())?;
        if valid != values.len()? {
            values.set_len(valid)?;
            values.sync()?;
        }
        valid
    };
    Ok(Gen {
        n,
        values,
        end: Mutex::new(end),
        index,
    })
}

fn append_to(generation: &Gen, key: &[u8], header: &[u8], value: &[u8]) -> Result<()> {
    let rec = frame::encode(value)?;
    let mut end = generation.end.lock();
    let offset = *end;
    if let Err(e) = generation.values.write_all_at(&rec, offset) {
        let _ = generation.values.set_len(offset);
        return Err(e);
    }
    *end += rec.len() as u64;
    let mut entry = Vec::with_capacity(OFFSET + header.len());
    entry.extend_from_slice(&offset.to_be_bytes());
    entry.extend_from_slice(header);
    generation.index.add(key, &entry, false)
}

fn flush_gen(generation: &Gen) -> Result<()> {
    generation.values.sync()?;
    generation.index.flush()
}

fn read_from(generation: &Gen, key: &[u8], hs: usize) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let Some(entry) = generation.index.find(key)? else {
        return Ok(None);
    };
    let mut off = [0u8; OFFSET];
    off.copy_from_slice(&entry[..OFFSET]);
    let offset = u64::from_be_bytes(off);
    let mut len = [0u8; 4];
    generation.values.read_exact_at(&mut len, offset)?;
    let n = u32::from_be_bytes(len) as usize;
    let mut rec = vec![0u8; n + frame::OVERHEAD];
    generation.values.read_exact_at(&mut rec, offset)?;
    match frame::decode(&rec) {
        frame::Decoded::Record(v, _) => {
            let header = entry[OFFSET..OFFSET + hs].to_vec();
            Ok(Some((v.to_vec(), header)))
        }
        _ => Err(Error::corrupted(
            generation.values.path(),
            format!("value record at offset {offset} fails its checksum"),
        )),
    }
}
