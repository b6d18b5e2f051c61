//! A fault-injecting file system for tests: wraps the real one and fails
//! writes with `ENOSPC` once a byte budget is spent, or fails fsync with
//! `EIO`, so tests can check that stores report errors and never lose or
//! corrupt acknowledged data.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{DirEntry, FileHandle, FileSystem, LockFile, Mapped, OpenMode, StdFs};
use crate::error::{Error, Result};

/// Shared switches of a [`FaultFs`]; clone the `Arc` to flip them mid-test.
#[derive(Debug, Default)]
pub struct Faults {
    /// Bytes that may still be written before writes fail with ENOSPC.
    /// `u64::MAX` means unlimited.
    pub write_budget: AtomicU64,
    /// When set, every fsync fails with EIO.
    pub fail_sync: AtomicBool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Arc<Faults> {
        Arc::new(Faults {
            write_budget: AtomicU64::new(u64::MAX),
            fail_sync: AtomicBool::new(false),
        })
    }

    fn take_budget(&self, n: u64) -> bool {
        self.write_budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                if b == u64::MAX {
                    Some(b)
                } else {
                    b.checked_sub(n)
                }
            })
            .is_ok()
    }
}

/// The real file system with injected faults.
#[derive(Debug)]
pub struct FaultFs {
    inner: StdFs,
    faults: Arc<Faults>,
}

impl FaultFs {
    /// A fault-injecting file system driven by `faults`.
    pub fn new(faults: Arc<Faults>) -> FaultFs {
        FaultFs {
            inner: StdFs::new(true),
            faults,
        }
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Arc<dyn FileHandle>,
    faults: Arc<Faults>,
}

fn os_error(what: &str, path: &Path, code: i32) -> Error {
    Error::io(what, path, std::io::Error::from_raw_os_error(code))
}

impl FileHandle for FaultFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if !self.faults.take_budget(buf.len() as u64) {
            return Err(os_error("write", self.path(), libc::ENOSPC));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(os_error("fsync", self.path(), libc::EIO));
        }
        self.inner.sync()
    }
    fn map(&self) -> Result<Mapped> {
        self.inner.map()
    }
    fn write_behind(&self, offset: u64, len: u64) {
        self.inner.write_behind(offset, len)
    }
}

impl FileSystem for FaultFs {
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(FaultFile {
            inner: self.inner.open(path, mode)?,
            faults: self.faults.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(os_error("fsync directory", path, libc::EIO));
        }
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.inner.is_dir(path)
    }
    fn lock(&self, path: &Path) -> Result<LockFile> {
        self.inner.lock(path)
    }
    fn fsync_enabled(&self) -> bool {
        true
    }
}
