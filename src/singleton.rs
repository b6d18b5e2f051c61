//! The singleton store (Octez L2 `SINGLETON_STORE`): one updatable value in a
//! file, cached in memory.
//!
//! File format: `magic[8] | len u32 | crc32(len | value) u32 | value`, all
//! big-endian. A write replaces the whole file atomically (temp, fsync,
//! rename, fsync dir), so after a crash the file holds the old value or the
//! new one. The checksum is verified at open and at `sync`: a damaged file is
//! reported as `Corrupted`, never returned as a value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::quarantine::Quarantine;
use crate::io::{FileSystem, LockFile, OpenMode, atomic, frame};
use crate::options::OpenOptions;
use crate::store_dir;

const MAGIC: &[u8; 8] = b"TZSSGL01";
const HEADER: usize = 16;

/// A value that may be absent.
pub type Value = Option<Arc<[u8]>>;

/// One value in one file.
///
/// ```
/// use tzstore::OpenOptions;
/// use tzstore::singleton::Singleton;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("head");
/// let s = Singleton::open(&path, &OpenOptions::read_write())?;
/// assert_eq!(s.read(), None); // no value yet
/// s.write(b"block 42")?; // durable on return
/// assert_eq!(s.read().as_deref(), Some(&b"block 42"[..]));
/// drop(s);
/// // Read-only instances (in any process) see the value; `sync` picks up
/// // later writes.
/// let ro = Singleton::open(&path, &OpenOptions::read_only())?;
/// assert_eq!(ro.read().as_deref(), Some(&b"block 42"[..]));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Singleton {
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    read_only: bool,
    cache: RwLock<Value>,
    /// Serialises writers so the cache follows the file's order of updates.
    writer: Mutex<()>,
    _lock: Option<LockFile>,
}

impl Singleton {
    /// Opens the singleton stored at `path` (the file need not exist yet).
    /// A read-write open takes `<path>.lock`; a second one gets `Locked`.
    pub fn open(path: impl AsRef<Path>, opts: &OpenOptions) -> Result<Singleton> {
        let path = path.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        let dir = atomic::parent_dir(&path);
        // Never created: the singleton lives in a folder its caller owns.
        store_dir::require(fs.as_ref(), dir, "directory")?;
        if fs.is_dir(&path)? {
            return Err(Error::invalid(format!(
                "{} is a directory, not a singleton file",
                path.display()
            )));
        }
        let lock = if opts.read_only {
            None
        } else {
            let lock = fs.lock(&lock_path(&path))?;
            // A crash during a write may leave the temporary file behind.
            fs.remove_file(&atomic::tmp_path(&path)?)?;
            Some(lock)
        };
        let value = load(fs.as_ref(), &path)?;
        Ok(Singleton {
            path,
            fs,
            read_only: opts.read_only,
            cache: RwLock::new(value),
            writer: Mutex::new(()),
            _lock: lock,
        })
    }

    /// Checks the singleton file at `path` without opening a handle: it
    /// must be absent or hold a value that passes its checksum. With
    /// `repair` (takes `<path>.lock`, so no read-write handle may be open),
    /// a damaged file is moved into `DIR/.tzs-quarantine/<time>/` (DIR the
    /// file's directory), leaving the value unset; nothing is deleted.
    pub fn check(path: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        let path = path.as_ref();
        let fs = opts.fs.as_ref();
        let dir = atomic::parent_dir(path);
        let _lock = if repair {
            Some(fs.lock(&lock_path(path))?)
        } else {
            None
        };
        let mut report = CheckReport::default();
        match load(fs, path) {
            Ok(v) => report.records_checked = u64::from(v.is_some()),
            Err(Error::Corrupted(m)) => {
                report.problem(m);
                if repair {
                    let mut q = Quarantine::new(fs, dir);
                    q.move_in(path)?;
                    report.repaired.push(format!(
                        "{}: the damaged value was moved out; the singleton is unset",
                        path.display()
                    ));
                    let (qdir, moved) = q.into_parts();
                    report.quarantine_dir = qdir;
                    report.quarantined = moved;
                    report.problems.clear();
                }
            }
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// The current value, or `None` when unset. Served from memory.
    pub fn read(&self) -> Value {
        self.cache.read().clone()
    }

    /// Replaces the value; durable on return.
    pub fn write(&self, value: &[u8]) -> Result<()> {
        self.check_writable()?;
        let encoded = encode(value)?;
        let _w = self.writer.lock();
        atomic::replace(self.fs.as_ref(), &self.path, &encoded)?;
        *self.cache.write() = Some(Arc::from(value));
        Ok(())
    }

    /// Removes the value; durable on return. Deleting an unset value is a no-op.
    pub fn delete(&self) -> Result<()> {
        self.check_writable()?;
        let _w = self.writer.lock();
        atomic::remove(self.fs.as_ref(), &self.path)?;
        *self.cache.write() = None;
        Ok(())
    }

    /// Reloads the value from disk (for read-only handles, to see writes made
    /// by the read-write instance).
    pub fn sync(&self) -> Result<()> {
        let _w = self.writer.lock();
        let value = load(self.fs.as_ref(), &self.path)?;
        *self.cache.write() = value;
        Ok(())
    }

    /// True for a read-only handle.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(format!(
                "singleton {} was opened read-only",
                self.path.display()
            )));
        }
        Ok(())
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn encode(value: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(value.len())
        .map_err(|_| Error::invalid(format!("value of {} bytes exceeds 4 GiB", value.len())))?;
    let len_be = len.to_be_bytes();
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len_be);
    out.extend_from_slice(&frame::crc(&[&len_be, value]).to_be_bytes());
    out.extend_from_slice(value);
    Ok(out)
}

fn load(fs: &dyn FileSystem, path: &Path) -> Result<Value> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let total = file.len()?;
    if total < HEADER as u64 {
        return Err(Error::corrupted(
            path,
            format!("singleton file of {total} bytes is shorter than its header"),
        ));
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, 0)?;
    if &header[..8] != MAGIC {
        return Err(Error::corrupted(
            path,
            "not a tzstore singleton file (bad magic)",
        ));
    }
    let len_be = [header[8], header[9], header[10], header[11]];
    let len = u32::from_be_bytes(len_be) as u64;
    let crc = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if total != HEADER as u64 + len {
        return Err(Error::corrupted(
            path,
            format!(
                "header says {len} value bytes, file holds {}",
                total - HEADER as u64
            ),
        ));
    }
    let len = usize::try_from(len).map_err(|_| Error::corrupted(path, "value too large"))?;
    let mut value = vec![0u8; len];
    file.read_exact_at(&mut value, HEADER as u64)?;
    if frame::crc(&[&len_be, &value]) != crc {
        return Err(Error::corrupted(path, "checksum mismatch"));
    }
    Ok(Some(Arc::from(value)))
}
