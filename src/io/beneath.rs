//! Directory handles, for stores whose keys name paths (kv). Every name is a
//! single path segment resolved below an open directory without following a
//! symbolic link, and no path string is ever concatenated: walking down from
//! a directory handle one segment at a time cannot leave the tree below it.
//!
//! [`Dir`] and [`FileAt`] are thin handles over a backend chosen by the
//! [`FileSystem`](super::FileSystem) that opened the root
//! ([`FileSystem::open_root_dir`](super::FileSystem::open_root_dir)):
//!
//! * the real one (`beneath_fd`): directory descriptors and `*at` calls with
//!   `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, and `openat2(RESOLVE_BENEATH)` for
//!   multi-segment paths; with a test's fault plan ([`Faults`], the one
//!   `FaultFs` uses) when `FaultFs` opened it, consulted before every create,
//!   write, allocation, sync, rename, mkdir and removal, so that ENOSPC and
//!   EIO reach the store exactly where the OS would report them;
//! * the crash model (`crash::beneath`, tests only): a handle is an inode,
//!   so it follows its directory through renames exactly like a descriptor.
//!
//! Errors are plain `std::io::Error`s with the OS's errno values (ENOENT,
//! ENOTDIR, EISDIR, ELOOP, EEXIST, ENOTEMPTY, ENOSPC, ...) so that the
//! caller, who knows the key, can map them.

use std::any::Any;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::fault::Faults;

/// What a directory entry is. Symbolic links, FIFOs, sockets and devices are
/// all `Other`: the kv store never follows or opens them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symlink, FIFO, socket, device).
    Other,
}

/// The part of `stat` the kv store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// File type.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Nanoseconds within the second.
    pub mtime_nsec: i64,
    /// Inode number.
    pub ino: u64,
}

/// The operations of an open directory; see [`Dir`] for each.
pub(crate) trait DirBackend: Send + Sync + fmt::Debug {
    fn open_dir(&self, name: &[u8]) -> io::Result<Dir>;
    fn reopen(&self) -> io::Result<Dir>;
    fn open_dir_beneath(&self, rel: &str) -> io::Result<Dir>;
    fn open_read_beneath(&self, rel: &str) -> io::Result<FileAt>;
    fn stat_at(&self, name: &[u8]) -> io::Result<Stat>;
    fn stat(&self) -> io::Result<Stat>;
    fn open_read(&self, name: &[u8]) -> io::Result<FileAt>;
    fn create_new(&self, name: &[u8]) -> io::Result<FileAt>;
    fn open_rw(&self, name: &[u8]) -> io::Result<FileAt>;
    fn mkdir(&self, name: &[u8]) -> io::Result<()>;
    fn unlink(&self, name: &[u8]) -> io::Result<()>;
    fn rmdir(&self, name: &[u8]) -> io::Result<()>;
    /// `to` is a handle of the same backend (else `EXDEV`, as between two
    /// file systems).
    fn rename(&self, name: &[u8], to: &Dir, to_name: &[u8]) -> io::Result<()>;
    fn entries(&self) -> io::Result<Vec<(Vec<u8>, Kind)>>;
    fn sync(&self) -> io::Result<()>;
    fn syncfs(&self) -> io::Result<()>;
    fn as_any(&self) -> &dyn Any;
}

/// The operations of an open file; see [`FileAt`] for each.
pub(crate) trait FileBackend: Send + Sync + fmt::Debug {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    fn allocate(&self, len: u64) -> io::Result<()>;
    fn stat(&self) -> io::Result<Stat>;
    fn lock_exclusive(&self) -> io::Result<()>;
    fn unlock(&self) -> io::Result<()>;
}

/// An open directory, the anchor for operations on the names in it.
#[derive(Debug)]
pub struct Dir(Box<dyn DirBackend>);

/// An open file (read-only from [`Dir::open_read`], read-write from
/// [`Dir::create_new`] and [`Dir::open_rw`]).
#[derive(Debug)]
pub struct FileAt(Box<dyn FileBackend>);

impl Dir {
    pub(crate) fn new(backend: Box<dyn DirBackend>) -> Dir {
        Dir(backend)
    }

    pub(crate) fn backend(&self) -> &dyn DirBackend {
        self.0.as_ref()
    }

    /// Opens the real directory at `path` (the store's root). The path
    /// itself is trusted: it is the caller's choice of root, so it may
    /// contain links. Stores open their root through
    /// [`FileSystem::open_root_dir`](super::FileSystem::open_root_dir).
    pub fn open(path: &Path) -> io::Result<Dir> {
        super::beneath_fd::open_root(path, None)
    }

    /// [`Dir::open`], with a fault plan that this directory and everything
    /// opened from it consult before each mutating operation (tests).
    pub fn open_with_faults(path: &Path, faults: Option<Arc<Faults>>) -> io::Result<Dir> {
        super::beneath_fd::open_root(path, faults)
    }

    /// Opens the subdirectory `name`. A symlink fails with `ELOOP`, a file
    /// with `ENOTDIR`.
    pub fn open_dir(&self, name: impl AsRef<[u8]>) -> io::Result<Dir> {
        self.0.open_dir(name.as_ref())
    }

    /// A second handle on the same directory (its own read position).
    pub fn reopen(&self) -> io::Result<Dir> {
        self.0.reopen()
    }

    /// The directory at the multi-segment relative path `rel`, resolved
    /// below this one without any `..` escape, absolute path or link on the
    /// way (including the last component). Any error (including `ENOSYS` on
    /// kernels before 5.6) lets the caller fall back to the
    /// segment-by-segment walk, which also explains the failure.
    pub fn open_dir_beneath(&self, rel: &str) -> io::Result<Dir> {
        self.0.open_dir_beneath(rel)
    }

    /// The entry at the relative path `rel`, opened for reading,
    /// non-blocking (see [`Dir::open_dir_beneath`]).
    pub fn open_read_beneath(&self, rel: &str) -> io::Result<FileAt> {
        self.0.open_read_beneath(rel)
    }

    /// `lstat` of `name`: links are reported as [`Kind::Other`], never followed.
    pub fn stat_at(&self, name: impl AsRef<[u8]>) -> io::Result<Stat> {
        self.0.stat_at(name.as_ref())
    }

    /// `fstat` of the directory itself.
    pub fn stat(&self) -> io::Result<Stat> {
        self.0.stat()
    }

    /// Opens the existing entry `name` for reading. Non-blocking, so that a
    /// FIFO cannot hang the caller; check the kind with [`FileAt::stat`].
    pub fn open_read(&self, name: impl AsRef<[u8]>) -> io::Result<FileAt> {
        self.0.open_read(name.as_ref())
    }

    /// Creates `name`, which must not exist, for writing (mode 0644).
    pub fn create_new(&self, name: impl AsRef<[u8]>) -> io::Result<FileAt> {
        self.0.create_new(name.as_ref())
    }

    /// Opens `name` read-write, creating it if missing (store metadata
    /// files). Only a regular file is accepted: anything else put in its
    /// place (a directory, a FIFO, a device) fails at once with an error
    /// that [`is_not_regular`] recognises, and the open itself never waits
    /// on a FIFO.
    pub fn open_rw(&self, name: impl AsRef<[u8]>) -> io::Result<FileAt> {
        self.0.open_rw(name.as_ref())
    }

    /// Creates the subdirectory `name` (mode 0755).
    pub fn mkdir(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        self.0.mkdir(name.as_ref())
    }

    /// Removes the non-directory entry `name` (a link itself, never its target).
    pub fn unlink(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        self.0.unlink(name.as_ref())
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        self.0.rmdir(name.as_ref())
    }

    /// Atomically renames `name` in this directory to `to_name` in `to`,
    /// replacing a file there (POSIX `renameat`).
    pub fn rename(
        &self,
        name: impl AsRef<[u8]>,
        to: &Dir,
        to_name: impl AsRef<[u8]>,
    ) -> io::Result<()> {
        self.0.rename(name.as_ref(), to, to_name.as_ref())
    }

    /// The entries of this directory other than `.` and `..`, in directory
    /// order, with their kinds (links are `Other`). Names are raw bytes.
    pub fn entries(&self) -> io::Result<Vec<(Vec<u8>, Kind)>> {
        self.0.entries()
    }

    /// fsyncs the directory, making entries created, renamed or removed in
    /// it durable.
    pub fn sync(&self) -> io::Result<()> {
        self.0.sync()
    }

    /// Flushes the whole file system holding this directory (`syncfs`): one
    /// call that makes every earlier write, rename and removal durable.
    pub fn syncfs(&self) -> io::Result<()> {
        self.0.syncfs()
    }
}

impl FileAt {
    pub(crate) fn new(backend: Box<dyn FileBackend>) -> FileAt {
        FileAt(backend)
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end of the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    /// Fills `buf` from `offset`; `UnexpectedEof` if the file ends first.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.0.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at the current position (sequential writes of a
    /// new file).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    /// Truncates or extends the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    /// fdatasync.
    pub fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    /// Reserves `len` bytes for the file so that running out of space is
    /// reported now (ENOSPC) rather than at a later write; falls back to
    /// extending the file when the file system cannot preallocate.
    pub fn allocate(&self, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.0.allocate(len)
    }

    /// `fstat` of the open file.
    pub fn stat(&self) -> io::Result<Stat> {
        self.0.stat()
    }

    /// Blocks until this handle holds the exclusive `flock` on the file (the
    /// lock belongs to the open file description, so two handles of one
    /// process exclude each other too).
    pub fn lock_exclusive(&self) -> io::Result<()> {
        self.0.lock_exclusive()
    }

    /// Releases the lock taken by [`FileAt::lock_exclusive`].
    pub fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }
}

/// What [`Dir::open_rw`] found in place of a regular file.
#[derive(Debug)]
pub struct NotRegular(Kind);

impl fmt::Display for NotRegular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0 {
            Kind::Dir => "a directory",
            _ => "a FIFO, socket, device or link",
        };
        write!(f, "not a regular file ({what})")
    }
}

impl std::error::Error for NotRegular {}

/// The error of [`Dir::open_rw`] on an entry of `kind`.
pub(crate) fn not_regular(kind: Kind) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, NotRegular(kind))
}

/// True for the error of [`Dir::open_rw`] on something other than a
/// regular file (the caller reports it as damage, naming the file).
pub fn is_not_regular(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<NotRegular>())
}
