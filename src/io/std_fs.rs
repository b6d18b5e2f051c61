//! The real file system, over `std::fs` and `libc`.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DirEntry, FileHandle, FileSystem, LockFile, MapPromise, Mapped, OpenMode, foreground};
use crate::error::{Error, Result};

/// The operating system's file system.
#[derive(Debug, Clone)]
pub struct StdFs {
    fsync: bool,
}

impl StdFs {
    /// `fsync = false` makes every sync a no-op (`TZS_NO_FSYNC`: tests and
    /// benchmarks only, never for data that must survive a power cut).
    pub fn new(fsync: bool) -> StdFs {
        StdFs { fsync }
    }
}

#[derive(Debug)]
struct StdFile {
    file: File,
    path: PathBuf,
    fsync: bool,
    /// Bytes written by background threads and not yet sent to the disk
    /// (by `write_behind` or `sync`): what the next burst must carry.
    unsent: AtomicU64,
    /// End of the range already handed to write-back by `write_behind`.
    sent_to: AtomicU64,
}

/// `sync_file_range` flags that start the write-back of a range and wait
/// for it (and for earlier write-back of the same range).
const WRITE_AND_WAIT: libc::c_uint = libc::SYNC_FILE_RANGE_WAIT_BEFORE
    | libc::SYNC_FILE_RANGE_WRITE
    | libc::SYNC_FILE_RANGE_WAIT_AFTER;

impl StdFile {
    /// `sync_file_range(from, len, flags)`. Errors are ignored on purpose:
    /// write-back is a scheduling matter (some file systems do not support
    /// it), and the `sync` that follows reports any write error.
    fn sync_range(&self, from: u64, len: u64, flags: libc::c_uint) {
        let (Ok(off), Ok(n)) = (libc::off64_t::try_from(from), libc::off64_t::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is this handle's open file, valid for the call; sync_file_range only reads its integer arguments.
        unsafe { libc::sync_file_range(self.file.as_raw_fd(), off, n, flags) };
    }

    /// Before a background fsync: sends what is still only in the page
    /// cache (everything after the last write-back) to the disk one burst
    /// at a time, so that the fsync itself has little left to write.
    fn send_in_bursts(&self) -> Result<()> {
        if self.unsent.swap(0, Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let end = self.len()?;
        let mut from = self.sent_to.load(Ordering::Relaxed).min(end);
        while from < end {
            let n = (end - from).min(foreground::BURST);
            foreground::pace_background(n);
            let _burst = foreground::BackgroundBurst::begin();
            self.sync_range(from, n, WRITE_AND_WAIT);
            from += n;
        }
        self.sent_to.fetch_max(end, Ordering::Relaxed);
        Ok(())
    }
}

impl FileHandle for StdFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupted(
                    &self.path,
                    format!("short read of {} bytes at offset {offset}", buf.len()),
                )
            } else {
                Error::io("read", &self.path, e)
            }
        })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &self.path, e)),
            }
        }
        Ok(done)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        foreground::yield_if_background();
        if foreground::is_background() {
            self.unsent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", &self.path, e))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        foreground::yield_if_background();
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate", &self.path, e))
    }

    fn sync(&self) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        if foreground::is_background() {
            self.send_in_bursts()?;
        }
        foreground::yield_if_background();
        let _burst = foreground::BackgroundBurst::begin();
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }

    fn map(&self, _promise: MapPromise) -> Result<Mapped> {
        if self.len()? == 0 {
            // mmap of an empty file fails with EINVAL; an empty view is right.
            return Ok(Mapped::from_bytes(Vec::new()));
        }
        // SAFETY: the caller passed a `MapPromise`: while the map lives this process neither truncates the file below the mapped length nor rewrites a mapped byte a reader may look at (the file is immutable once renamed in, or append-only past its published end; see `MapPromise`). Another program modifying the file is outside the library's contract.
        let map = unsafe { memmap2::Mmap::map(&self.file) }
            .map_err(|e| Error::io("mmap", &self.path, e))?;
        Ok(Mapped::new(Box::new(map)))
    }

    fn write_behind(&self, offset: u64, len: u64) {
        if !self.fsync || len == 0 {
            return;
        }
        if !foreground::is_background() {
            // A foreground writer does not wait for its own data before it
            // must (at its fsync).
            self.sync_range(offset, len, libc::SYNC_FILE_RANGE_WRITE);
            return;
        }
        // Outside a burst the pages stay dirty in the page cache; the next
        // admitted call sends everything since the last one.
        if !foreground::try_pace_background(self.unsent.load(Ordering::Relaxed)) {
            return;
        }
        self.unsent.store(0, Ordering::Relaxed);
        let end = offset.saturating_add(len);
        let from = self.sent_to.fetch_max(end, Ordering::Relaxed).min(offset);
        if foreground::foreground_busy() {
            // A burst is written out before the thread goes on, with
            // foreground fsyncs holding back meanwhile (one of them waits for
            // the burst instead of each paying for part of it).
            let _burst = foreground::BackgroundBurst::begin();
            self.sync_range(from, end - from, WRITE_AND_WAIT);
            return;
        }
        self.sync_range(from, end - from, libc::SYNC_FILE_RANGE_WRITE);
        // With the foreground idle, background writers still wait for their
        // earlier steps, which bounds what they queue.
        if from > 0 {
            self.sync_range(0, from, libc::SYNC_FILE_RANGE_WAIT_BEFORE);
        }
    }
}

/// What a non-regular file is, for error messages.
fn file_kind(ft: &fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>> {
        let mut opts = OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true).create(true),
            OpenMode::Truncate => opts.read(true).write(true).create(true).truncate(true),
        };
        // O_NONBLOCK: a FIFO put where a store file belongs must not block
        // the open; it is refused below. It changes nothing for regular files.
        opts.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
        let file = opts.open(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound(format!("open {}: {e}", path.display())),
            // A directory (EISDIR) or a FIFO without a reader (ENXIO) where a
            // store file belongs.
            Some(libc::EISDIR) | Some(libc::ENXIO) => {
                Error::corrupted(path, format!("not a regular file ({e})"))
            }
            _ => Error::io("open", path, e),
        })?;
        let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        if !meta.is_file() {
            return Err(Error::corrupted(
                path,
                format!("not a regular file (a {})", file_kind(&meta.file_type())),
            ));
        }
        Ok(Arc::new(StdFile {
            file,
            path: path.to_path_buf(),
            fsync: self.fsync,
            unsent: AtomicU64::new(0),
            sent_to: AtomicU64::new(0),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| {
            Error::io(
                "rename",
                from,
                std::io::Error::new(e.kind(), format!("to {}: {e}", to.display())),
            )
        })
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", path, e)),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        match fs::remove_dir_all(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove directory", path, e)),
        }
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let rd = fs::read_dir(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("list {}: {e}", path.display()))
            } else {
                Error::io("list", path, e)
            }
        })?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("list", path, e))?;
            let ft = entry
                .file_type()
                .map_err(|e| Error::io("stat", &entry.path(), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: never one of ours
            };
            out.push(DirEntry {
                name,
                is_dir: ft.is_dir(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        foreground::yield_if_background();
        let dir = File::open(path).map_err(|e| Error::io("open directory", path, e))?;
        dir.sync_all()
            .map_err(|e| Error::io("fsync directory", path, e))
    }

    fn stamp(&self, path: &Path) -> Result<Option<super::FileStamp>> {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(path) {
            Ok(m) => {
                // ctime moves on every change of data or name, like mtime,
                // and cannot be set back by a user.
                let ctime = (m.ctime() as u64)
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(m.ctime_nsec() as u64);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                Ok(Some(super::FileStamp {
                    id: [m.dev(), m.ino(), m.len(), ctime],
                    settled: now.saturating_sub(ctime) > 1_000_000_000,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn is_dir(&self, path: &Path) -> Result<bool> {
        match fs::metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn lock(&self, path: &Path) -> Result<LockFile> {
        LockFile::acquire(path)
    }

    fn fsync_enabled(&self) -> bool {
        self.fsync
    }

    fn open_root_dir(&self, path: &Path) -> std::io::Result<super::beneath::Dir> {
        super::beneath::Dir::open(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for mode in [OpenMode::Read, OpenMode::ReadWrite, OpenMode::Truncate] {
            for p in [&fifo, &sub] {
                match fs.open(p, mode) {
                    Err(Error::Corrupted(m)) => {
                        assert!(m.contains("not a regular file"), "{m}")
                    }
                    other => panic!("{mode:?} {}: {other:?}", p.display()),
                }
            }
        }
        let file = dir.path().join("f");
        fs.open(&file, OpenMode::ReadWrite)
            .unwrap()
            .write_all_at(b"x", 0)
            .unwrap();
        let mut b = [0u8; 1];
        fs.open(&file, OpenMode::Read)
            .unwrap()
            .read_exact_at(&mut b, 0)
            .unwrap();
        assert_eq!(&b, b"x");
    }
}
