//! A fault-injecting file system for tests: wraps the real one and fails
//! writes with `ENOSPC` once a byte budget is spent, fails fsync with `EIO`,
//! or fails the n-th mutating operation with a chosen error, so tests can
//! check that stores report errors and never lose or corrupt acknowledged
//! data.
//!
//! The same [`Faults`] plan drives every store: the path-based stores see it
//! through [`FaultFs`]'s files, and the kv store through the directory
//! handles of [`FileSystem::open_root_dir`] (`io::beneath`), which consult
//! it before each create, write, allocation, fsync, rename, mkdir and
//! removal. A plan belongs to the handles opened with it: no global state.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{DirEntry, FileHandle, FileSystem, LockFile, MapPromise, Mapped, OpenMode, StdFs};
use crate::error::{Error, Result};

/// A mutating operation, as seen by the fault plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Creating a file.
    Create,
    /// Writing this many bytes (spends the write budget).
    Write(u64),
    /// Reserving this many bytes for a file (spends the write budget).
    Allocate(u64),
    /// fsync/fdatasync of a file or directory, or syncfs.
    Sync,
    /// Renaming.
    Rename,
    /// Creating a directory.
    Mkdir,
    /// Removing a file or directory.
    Remove,
    /// Truncating a file.
    Truncate,
}

impl FaultOp {
    /// A short name for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            FaultOp::Create => "create",
            FaultOp::Write(_) => "write",
            FaultOp::Allocate(_) => "allocate",
            FaultOp::Sync => "fsync",
            FaultOp::Rename => "rename",
            FaultOp::Mkdir => "mkdir",
            FaultOp::Remove => "remove",
            FaultOp::Truncate => "truncate",
        }
    }
}

/// Shared switches of a [`FaultFs`]; clone the `Arc` to flip them mid-test.
#[derive(Debug)]
pub struct Faults {
    /// Bytes that may still be written before writes fail with ENOSPC.
    /// `u64::MAX` means unlimited.
    pub write_budget: AtomicU64,
    /// When set, every fsync fails with EIO.
    pub fail_sync: AtomicBool,
    /// Mutating operations that still succeed before one fails with
    /// `fail_errno` (`u64::MAX`: none fails). Set with [`Faults::fail_op`].
    fail_in: AtomicU64,
    fail_errno: AtomicI32,
    /// Whether every operation after the failing one fails too.
    sticky: AtomicBool,
    tripped: AtomicBool,
    /// Operations seen, when recording (see [`Faults::record`]).
    log: Mutex<Option<Vec<FaultOp>>>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            write_budget: AtomicU64::new(u64::MAX),
            fail_sync: AtomicBool::new(false),
            fail_in: AtomicU64::new(u64::MAX),
            fail_errno: AtomicI32::new(libc::EIO),
            sticky: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            log: Mutex::new(None),
        }
    }
}

impl Faults {
    /// No faults.
    pub fn none() -> Arc<Faults> {
        Arc::new(Faults::default())
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

    /// Makes the mutating operation after the next `n` fail with `errno`
    /// (`n = 0`: the very next one). With `sticky`, every later operation
    /// fails too (a full disk stays full) until [`Faults::heal`]; without,
    /// only that one fails (a transient error).
    pub fn fail_op(&self, n: u64, errno: i32, sticky: bool) {
        self.fail_errno.store(errno, Ordering::SeqCst);
        self.sticky.store(sticky, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
        self.fail_in.store(n, Ordering::SeqCst);
    }

    /// Lifts every fault: unlimited budget, syncs and operations succeed.
    pub fn heal(&self) {
        self.fail_in.store(u64::MAX, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
        self.write_budget.store(u64::MAX, Ordering::SeqCst);
        self.fail_sync.store(false, Ordering::SeqCst);
    }

    /// True once the operation armed by [`Faults::fail_op`] has failed.
    pub fn has_failed(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// Starts recording the operations seen (replacing any earlier log).
    pub fn record(&self) {
        *self.log.lock() = Some(Vec::new());
    }

    /// Stops recording and returns the operations seen since [`Faults::record`].
    pub fn take_log(&self) -> Vec<FaultOp> {
        self.log.lock().take().unwrap_or_default()
    }

    /// Called by the file layers before `op`: the error it must fail with,
    /// if the plan says so.
    pub fn before(&self, op: FaultOp) -> std::io::Result<()> {
        if let Some(log) = self.log.lock().as_mut() {
            log.push(op);
        }
        let fail = |code| Err(std::io::Error::from_raw_os_error(code));
        if self.tripped.load(Ordering::SeqCst) && self.sticky.load(Ordering::SeqCst) {
            return fail(self.fail_errno.load(Ordering::SeqCst));
        }
        let due = self
            .fail_in
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                u64::MAX => None,
                0 => Some(u64::MAX),
                n => Some(n - 1),
            });
        if due == Ok(0) {
            self.tripped.store(true, Ordering::SeqCst);
            return fail(self.fail_errno.load(Ordering::SeqCst));
        }
        match op {
            FaultOp::Write(n) | FaultOp::Allocate(n) if !self.take_budget(n) => fail(libc::ENOSPC),
            FaultOp::Sync if self.fail_sync.load(Ordering::SeqCst) => fail(libc::EIO),
            _ => Ok(()),
        }
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

impl FaultFile {
    fn before(&self, op: FaultOp) -> Result<()> {
        self.faults
            .before(op)
            .map_err(|e| Error::io(op.name(), self.path(), e))
    }
}

impl FaultFs {
    fn before(&self, op: FaultOp, what: &str, path: &Path) -> Result<()> {
        self.faults.before(op).map_err(|e| Error::io(what, path, e))
    }
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
        self.before(FaultOp::Write(buf.len() as u64))?;
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.before(FaultOp::Truncate)?;
        self.inner.set_len(len)
    }
    fn sync(&self) -> Result<()> {
        self.before(FaultOp::Sync)?;
        self.inner.sync()
    }
    fn map(&self, promise: MapPromise) -> Result<Mapped> {
        self.inner.map(promise)
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
        self.before(FaultOp::Rename, "rename", from)?;
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.before(FaultOp::Remove, "remove", path)?;
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.before(FaultOp::Remove, "remove", path)?;
        self.inner.remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.before(FaultOp::Mkdir, "create directory", path)?;
        self.inner.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.before(FaultOp::Sync, "fsync directory", path)?;
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn stamp(&self, path: &Path) -> Result<Option<super::FileStamp>> {
        self.inner.stamp(path)
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
    fn open_root_dir(&self, path: &Path) -> std::io::Result<super::beneath::Dir> {
        super::beneath::Dir::open_with_faults(path, Some(self.faults.clone()))
    }
}
