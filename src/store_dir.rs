//! The start every directory store shares: a read-only open needs the
//! folder to exist (so a typo is `NotFound`, not an empty store), a
//! read-write open creates it durably (its entry survives a power cut
//! before the first fsync of anything in it) and takes its lock file (so
//! two writers never share a store). Each store names itself for the
//! `NotFound` message; the rest of its open stays its own.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{FileSystem, LockFile, atomic};

/// The name of the lock file a read-write open takes in the store folder.
pub(crate) const LOCK: &str = "lock";

/// A store folder opened by [`StoreDir::open`]: holds the lock of a
/// read-write open until the store is dropped.
#[derive(Debug)]
pub(crate) struct StoreDir {
    _lock: Option<LockFile>,
}

impl StoreDir {
    /// Read-only: `dir` must be a folder (`NotFound` "`{what}` DIR does not
    /// exist" otherwise). Read-write: creates `dir` durably and takes
    /// `dir/lock` (`Locked` when another read-write instance holds it).
    pub(crate) fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        read_only: bool,
        what: &str,
    ) -> Result<StoreDir> {
        StoreDir::open_creating(fs, dir, dir, read_only, what)
    }

    /// As [`StoreDir::open`], but a read-write open creates `create` (`dir`
    /// or a folder below it, made with its parents) before taking the lock.
    pub(crate) fn open_creating(
        fs: &dyn FileSystem,
        dir: &Path,
        create: &Path,
        read_only: bool,
        what: &str,
    ) -> Result<StoreDir> {
        prepare(fs, dir, create, read_only, what)?;
        let lock = if read_only {
            None
        } else {
            Some(fs.lock(&dir.join(LOCK))?)
        };
        Ok(StoreDir { _lock: lock })
    }

    /// A store folder whose read-only open checks nothing here (the store
    /// reports absence itself, later); read-write as [`StoreDir::open`].
    pub(crate) fn open_unchecked(
        fs: &dyn FileSystem,
        dir: &Path,
        read_only: bool,
        what: &str,
    ) -> Result<StoreDir> {
        if read_only {
            return Ok(StoreDir { _lock: None });
        }
        StoreDir::open(fs, dir, false, what)
    }
}

/// The lock-free part of [`StoreDir::open_creating`], for a store whose lock
/// is taken by its parent or its parts (a floating store).
pub(crate) fn prepare(
    fs: &dyn FileSystem,
    dir: &Path,
    create: &Path,
    read_only: bool,
    what: &str,
) -> Result<()> {
    if read_only {
        require(fs, dir, what)
    } else {
        atomic::create_dir_durably(fs, create)
    }
}

/// `NotFound` "`{what}` DIR does not exist" unless `dir` is a folder.
pub(crate) fn require(fs: &dyn FileSystem, dir: &Path, what: &str) -> Result<()> {
    if fs.is_dir(dir)? {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "{what} {} does not exist",
        dir.display()
    )))
}
