//! Exclusive lock files: one read-write instance per store.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive, non-blocking `flock` on a file, released on drop (and by the
/// kernel if the process dies, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Creates `path` if needed and locks it; `Error::Locked` (naming the path)
    /// if another open file description holds the lock, in this process or
    /// another.
    pub fn acquire(path: &Path) -> Result<LockFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))?;
        // SAFETY: flock on a valid, owned file descriptor; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Locked(format!(
                    "{} is locked by another read-write instance",
                    path.display()
                )));
            }
            return Err(Error::io("lock", path, err));
        }
        Ok(LockFile {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_until_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let first = LockFile::acquire(&p).unwrap();
        let err = LockFile::acquire(&p).unwrap_err();
        assert!(
            matches!(err, Error::Locked(ref m) if m.contains("lock")),
            "{err}"
        );
        drop(first);
        LockFile::acquire(&p).unwrap();
    }
}
