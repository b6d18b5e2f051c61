//! Exclusive lock files: one read-write instance per store.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Extra attempts (10 ms apart) before a busy lock is reported.
const LOCK_RETRIES: u32 = 20;

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
        // A lock that was just released can still be held for a moment by
        // a child process forked (by any thread of this program) before it
        // execs and closes its inherited descriptors, so a busy lock is
        // retried briefly before it is reported.
        for attempt in 0..=LOCK_RETRIES {
            // SAFETY: flock on a valid, owned file descriptor; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::io("lock", path, err));
            }
            if attempt == LOCK_RETRIES {
                return Err(Error::Locked(format!(
                    "{} is locked by another read-write instance",
                    path.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
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
