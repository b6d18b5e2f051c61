//! File operations relative to a directory file descriptor, for stores whose
//! keys name paths (kv). Every name is a single path segment resolved with
//! `*at` calls and `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so a symbolic link is
//! never followed and no path string is ever concatenated: walking down from a
//! directory fd one segment at a time cannot leave the tree below it.
//!
//! The [`FileSystem`](super::FileSystem) trait is path-based and cannot offer
//! this, which is why the kv store uses this module directly. Errors are plain
//! `std::io::Error`s so that the caller, who knows the key, can map them.
//!
//! Faults: a [`Dir`] may carry a test's fault plan ([`Faults`], the one
//! `FaultFs` uses), inherited by the directories and files opened from it and
//! consulted before every create, write, allocation, sync, rename, mkdir and
//! removal, so that ENOSPC and EIO reach the kv store exactly where the OS
//! would report them.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use super::fault::{FaultOp, Faults};

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

/// An open directory, the anchor for `*at` calls.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    faults: Option<Arc<Faults>>,
}

/// A file opened for writing through a [`Dir`]: its writes and syncs pass
/// the directory's fault plan.
#[derive(Debug)]
pub struct FileAt {
    file: File,
    faults: Option<Arc<Faults>>,
}

fn before(faults: &Option<Arc<Faults>>, op: FaultOp) -> io::Result<()> {
    match faults {
        Some(f) => f.before(op),
        None => Ok(()),
    }
}

impl FileAt {
    /// The underlying file, for reads and locks.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes all of `buf` at the current position.
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        before(&self.faults, FaultOp::Write(buf.len() as u64))?;
        io::Write::write_all(&mut self.file, buf)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        before(&self.faults, FaultOp::Write(buf.len() as u64))?;
        std::os::unix::fs::FileExt::write_all_at(&self.file, buf, offset)
    }

    /// Truncates or extends the file to `len` bytes.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        before(&self.faults, FaultOp::Truncate)?;
        self.file.set_len(len)
    }

    /// fdatasync.
    pub fn sync_data(&self) -> io::Result<()> {
        before(&self.faults, FaultOp::Sync)?;
        self.file.sync_data()
    }

    /// Reserves `len` bytes for the file so that running out of space is
    /// reported now (ENOSPC) rather than at a later write; falls back to
    /// extending the file when the file system cannot preallocate.
    pub fn allocate(&self, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        before(&self.faults, FaultOp::Allocate(len))?;
        let off_len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size too large"))?;
        // SAFETY: posix_fallocate on a live descriptor; it returns the error number instead of setting errno.
        let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), 0, off_len) };
        match rc {
            0 => Ok(()),
            libc::EOPNOTSUPP | libc::EINVAL => self.file.set_len(len),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
}

fn cname(name: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(name.as_ref())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Retries a call interrupted by a signal.
fn retry(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match check(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn kind_of_mode(mode: libc::mode_t) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    }
}

fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        kind: kind_of_mode(st.st_mode),
        size: st.st_size.max(0) as u64,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec,
        ino: st.st_ino,
    }
}

impl Dir {
    /// Opens the directory at `path` (the store's root). The path itself is
    /// trusted: it is the caller's choice of root, so it may contain links.
    pub fn open(path: &Path) -> io::Result<Dir> {
        Dir::open_with_faults(path, None)
    }

    /// [`Dir::open`], with a fault plan that this directory and everything
    /// opened from it consult before each mutating operation (tests).
    pub fn open_with_faults(path: &Path, faults: Option<Arc<Faults>>) -> io::Result<Dir> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: `c` is a valid NUL-terminated string for the whole call.
        let fd = retry(|| unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        Ok(Dir {
            // SAFETY: `open` returned a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            faults,
        })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn before(&self, op: FaultOp) -> io::Result<()> {
        before(&self.faults, op)
    }

    fn sub(&self, fd: OwnedFd) -> Dir {
        Dir {
            fd,
            faults: self.faults.clone(),
        }
    }

    fn file_at(&self, fd: OwnedFd) -> FileAt {
        FileAt {
            file: File::from(fd),
            faults: self.faults.clone(),
        }
    }

    fn openat(&self, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        // SAFETY: `name` is NUL-terminated and `self.fd` is a live directory descriptor for the duration of the call.
        let fd = retry(|| unsafe {
            libc::openat(
                self.raw(),
                name.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        })?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens the subdirectory `name`. A symlink fails with `ELOOP`, a file
    /// with `ENOTDIR`.
    pub fn open_dir(&self, name: impl AsRef<[u8]>) -> io::Result<Dir> {
        let c = cname(name)?;
        let fd = self.openat(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(self.sub(fd))
    }

    /// A second descriptor for the same directory (its own read position).
    pub fn reopen(&self) -> io::Result<Dir> {
        let fd = self.openat(c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(self.sub(fd))
    }

    /// Opens the multi-segment relative path `rel` below this directory in
    /// one `openat2` call with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: the
    /// kernel refuses any `..` escape, absolute path or link on the way
    /// (including the last component). `dir` asks for a directory. Errors
    /// (including `ENOSYS` on kernels before 5.6) let the caller fall back
    /// to the segment-by-segment walk, which also explains the failure.
    fn openat2_beneath(&self, rel: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
        // Short paths are NUL-terminated on the stack (hot path: no alloc).
        let mut stack = [0u8; 256];
        let heap;
        let c: &CStr = if rel.len() < stack.len() {
            stack[..rel.len()].copy_from_slice(rel.as_bytes());
            CStr::from_bytes_until_nul(&stack)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "no NUL"))?
        } else {
            heap = cname(rel)?;
            &heap
        };
        if c.to_bytes().len() != rel.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"));
        }
        // SAFETY: an all-zero open_how is valid (mode 0, no resolve flags).
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        let fd = loop {
            // SAFETY: `c` is NUL-terminated, `how` is a valid open_how of the size passed, and the directory fd is live for the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.raw(),
                    c.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if rc >= 0 {
                break rc as RawFd;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory at the relative path `rel` (resolved by `openat2` with
    /// `RESOLVE_BENEATH`, like every `*_beneath` method).
    pub fn open_dir_beneath(&self, rel: &str) -> io::Result<Dir> {
        let fd = self.openat2_beneath(rel, libc::O_RDONLY | libc::O_DIRECTORY)?;
        Ok(self.sub(fd))
    }

    /// The entry at the relative path `rel`, opened for reading, non-blocking
    /// (resolved by `openat2` with `RESOLVE_BENEATH`).
    pub fn open_read_beneath(&self, rel: &str) -> io::Result<File> {
        let fd = self.openat2_beneath(rel, libc::O_RDONLY | libc::O_NONBLOCK)?;
        Ok(File::from(fd))
    }

    /// `lstat` of `name`: links are reported as [`Kind::Other`], never followed.
    pub fn stat_at(&self, name: impl AsRef<[u8]>) -> io::Result<Stat> {
        let c = cname(name)?;
        // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is NUL-terminated, `st` is writable, the fd is live.
        retry(|| unsafe {
            libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
        })?;
        Ok(stat_of(&st))
    }

    /// `fstat` of the directory itself.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(self.raw())
    }

    /// Opens the existing entry `name` for reading. Non-blocking, so that a
    /// FIFO cannot hang the caller; check the kind with [`file_stat`].
    pub fn open_read(&self, name: impl AsRef<[u8]>) -> io::Result<File> {
        let c = cname(name)?;
        let fd = self.openat(&c, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
        Ok(File::from(fd))
    }

    /// Creates `name`, which must not exist, for writing (mode 0644).
    pub fn create_new(&self, name: impl AsRef<[u8]>) -> io::Result<FileAt> {
        let c = cname(name)?;
        self.before(FaultOp::Create)?;
        let fd = self.openat(&c, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o644)?;
        Ok(self.file_at(fd))
    }

    /// Opens `name` read-write, creating it if missing (store metadata
    /// files). Only a regular file is accepted: anything else put in its
    /// place (a directory, a FIFO, a device) fails at once with an error
    /// that [`is_not_regular`] recognises; `O_NONBLOCK` keeps the open
    /// itself from waiting on a FIFO.
    pub fn open_rw(&self, name: impl AsRef<[u8]>) -> io::Result<FileAt> {
        let c = cname(name)?;
        self.before(FaultOp::Create)?;
        let fd = self
            .openat(&c, libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK, 0o644)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EISDIR) => not_regular(Kind::Dir),
                // A socket (or a FIFO opened without a reader).
                Some(libc::ENXIO) => not_regular(Kind::Other),
                _ => e,
            })?;
        let st = fstat(fd.as_raw_fd())?;
        if st.kind != Kind::File {
            return Err(not_regular(st.kind));
        }
        Ok(self.file_at(fd))
    }

    /// Creates the subdirectory `name` (mode 0755).
    pub fn mkdir(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        let c = cname(name)?;
        self.before(FaultOp::Mkdir)?;
        // SAFETY: `c` is NUL-terminated and the fd is live.
        retry(|| unsafe { libc::mkdirat(self.raw(), c.as_ptr(), 0o755) })?;
        Ok(())
    }

    /// Removes the non-directory entry `name` (a link itself, never its target).
    pub fn unlink(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        let c = cname(name)?;
        self.before(FaultOp::Remove)?;
        // SAFETY: `c` is NUL-terminated and the fd is live.
        retry(|| unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) })?;
        Ok(())
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: impl AsRef<[u8]>) -> io::Result<()> {
        let c = cname(name)?;
        self.before(FaultOp::Remove)?;
        // SAFETY: `c` is NUL-terminated and the fd is live.
        retry(|| unsafe { libc::unlinkat(self.raw(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    /// Atomically renames `name` in this directory to `to_name` in `to`,
    /// replacing a file there (POSIX `renameat`).
    pub fn rename(
        &self,
        name: impl AsRef<[u8]>,
        to: &Dir,
        to_name: impl AsRef<[u8]>,
    ) -> io::Result<()> {
        let a = cname(name)?;
        let b = cname(to_name)?;
        self.before(FaultOp::Rename)?;
        // SAFETY: both names are NUL-terminated and both fds are live.
        retry(|| unsafe { libc::renameat(self.raw(), a.as_ptr(), to.raw(), b.as_ptr()) })?;
        Ok(())
    }

    /// The entries of this directory other than `.` and `..`, in directory
    /// order, with their kinds (links are `Other`). Names are raw bytes.
    pub fn entries(&self) -> io::Result<Vec<(Vec<u8>, Kind)>> {
        // A fresh open file description, so that concurrent listings of the
        // same directory never share a read position.
        let own = self.reopen()?;
        let fd = own.fd.as_raw_fd();
        // SAFETY: `fd` is a valid directory descriptor; on success the DIR stream takes ownership of it (released by `closedir` below).
        let dirp = unsafe { libc::fdopendir(fd) };
        if dirp.is_null() {
            return Err(io::Error::last_os_error());
        }
        // The stream owns the descriptor now.
        std::mem::forget(own);
        let mut out = Vec::new();
        let result = loop {
            // SAFETY: errno is thread-local; clearing it distinguishes the end of the stream from an error, as readdir(3) prescribes.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `dirp` is a live stream used by this thread only.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                break if e.raw_os_error().unwrap_or(0) == 0 {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            // SAFETY: `ent` points to a dirent valid until the next readdir; `d_name` is NUL-terminated within it. We copy what we need now.
            let (name, d_type) = unsafe {
                let e = &*ent;
                (
                    CStr::from_ptr(e.d_name.as_ptr()).to_bytes().to_vec(),
                    e.d_type,
                )
            };
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match d_type {
                libc::DT_REG => Kind::File,
                libc::DT_DIR => Kind::Dir,
                libc::DT_UNKNOWN => match self.stat_at(&name) {
                    Ok(st) => st.kind,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => break Err(e),
                },
                _ => Kind::Other,
            };
            out.push((name, kind));
        };
        // SAFETY: `dirp` is live and closed exactly once.
        unsafe { libc::closedir(dirp) };
        result.map(|()| out)
    }

    /// fsyncs the directory, making entries created, renamed or removed in
    /// it durable.
    pub fn sync(&self) -> io::Result<()> {
        self.before(FaultOp::Sync)?;
        // SAFETY: fsync on a live descriptor.
        retry(|| unsafe { libc::fsync(self.raw()) })?;
        Ok(())
    }

    /// Flushes the whole file system holding this directory (`syncfs`): one
    /// call that makes every earlier write, rename and removal durable.
    pub fn syncfs(&self) -> io::Result<()> {
        self.before(FaultOp::Sync)?;
        // SAFETY: syncfs on a live descriptor.
        retry(|| unsafe { libc::syncfs(self.raw()) })?;
        Ok(())
    }
}

fn fstat(fd: RawFd) -> io::Result<Stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is live for the call and `st` is writable.
    retry(|| unsafe { libc::fstat(fd, &mut st) })?;
    Ok(stat_of(&st))
}

/// What [`Dir::open_rw`] found in place of a regular file.
#[derive(Debug)]
pub struct NotRegular(Kind);

impl std::fmt::Display for NotRegular {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.0 {
            Kind::Dir => "a directory",
            _ => "a FIFO, socket, device or link",
        };
        write!(f, "not a regular file ({what})")
    }
}

impl std::error::Error for NotRegular {}

fn not_regular(kind: Kind) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, NotRegular(kind))
}

/// True for the error of [`Dir::open_rw`] on something other than a
/// regular file (the caller reports it as damage, naming the file).
pub fn is_not_regular(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<NotRegular>())
}

/// `fstat` of an open file.
pub fn file_stat(file: &File) -> io::Result<Stat> {
    fstat(file.as_raw_fd())
}

/// Blocks until this process holds the exclusive `flock` on `file` (the
/// lock belongs to the open file description, so two handles of one
/// process exclude each other too).
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock on a live descriptor.
    retry(|| unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) })?;
    Ok(())
}

/// Releases the `flock` taken by [`lock_exclusive`].
pub fn unlock(file: &File) -> io::Result<()> {
    // SAFETY: flock on a live descriptor.
    retry(|| unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("f")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        assert_eq!(d.stat_at("link").unwrap().kind, Kind::Other);
        assert!(d.open_dir("link").is_err());
        assert!(d.open_read("f").is_err());
        let mut names = d.entries().unwrap();
        names.sort();
        assert_eq!(
            names,
            vec![
                (b"f".to_vec(), Kind::Other),
                (b"link".to_vec(), Kind::Other)
            ]
        );
        // A second listing of the same handle starts from the beginning.
        assert_eq!(d.entries().unwrap().len(), 2);
    }

    #[test]
    fn open_rw_refuses_anything_but_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        d.mkdir("sub").unwrap();
        let fifo = CString::new(dir.path().join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        for name in ["sub", "fifo"] {
            let e = d.open_rw(name).unwrap_err();
            assert!(is_not_regular(&e), "{name}: {e}");
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert!(d.open_rw("new").is_ok());
    }
}
