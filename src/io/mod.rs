//! The file layer. Every store does all of its file I/O through the
//! [`FileSystem`] trait so that tests can substitute implementations that
//! inject faults ([`fault`]) or model power cuts (`crash`, feature
//! `testing`), and so that `TZS_NO_FSYNC` is honoured in one place.
//! Path-based stores use [`FileSystem::open`] and its siblings; the kv store,
//! whose keys name paths, uses directory handles ([`beneath::Dir`], opened by
//! [`FileSystem::open_root_dir`]) that never follow a link below the root.
//!
//! Outside `src/io/`, no code calls `std::fs` or a raw `libc` file function
//! (errno and flag constants are fine); only test modules and the
//! command-line tool (`src/bin/`, no store) do. `tests/io_layering.rs`
//! checks this.

pub(crate) mod anon;
pub mod atomic;
pub mod beneath;
mod beneath_fd;
#[cfg(any(test, feature = "testing"))]
pub mod crash;
pub mod exit;
pub mod fault;
pub mod foreground;
pub mod frame;
mod lock;
pub mod priority;
pub mod quarantine;
pub mod reclaim;
mod std_fs;

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lock::LockFile;
pub use std_fs::StdFs;

use crate::error::Result;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; created if missing, never truncated.
    ReadWrite,
    /// Read and write; created, and truncated if it exists.
    Truncate,
}

/// What a directory listing reports for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// File name (not the full path).
    pub name: String,
    /// True for a directory.
    pub is_dir: bool,
}

/// A read-only view of a whole file, normally a memory map.
pub struct Mapped(Box<dyn Deref<Target = [u8]> + Send + Sync>);

impl Mapped {
    /// Wraps any byte container as a mapping (fault-injecting file systems
    /// and empty files use this).
    pub fn from_bytes(bytes: Vec<u8>) -> Mapped {
        Mapped(Box::new(bytes))
    }

    pub(crate) fn new(inner: Box<dyn Deref<Target = [u8]> + Send + Sync>) -> Mapped {
        Mapped(inner)
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapped({} bytes)", self.0.len())
    }
}

/// The promise [`FileHandle::map`] asks of its caller, as a value it must
/// pass: while the mapping (or any clone of the bytes it hands out) lives,
/// this process never truncates the file below the mapped length nor
/// rewrites a mapped byte that a reader may look at. Memory-mapping is
/// sound only under this promise (a truncated mapping raises `SIGBUS`, a
/// rewritten one changes bytes a `&[u8]` borrows), and the file layer
/// cannot check it: it rests on how each store writes its files. So a
/// promise is made only inside the library, by naming the rule of the
/// store's file that keeps it (`MapPromise::IMMUTABLE` or
/// `MapPromise::APPEND_ONLY`), and each call site says why that rule
/// holds there. Another program modifying the file is outside the
/// library's contract.
#[derive(Debug, Clone, Copy)]
pub struct MapPromise(());

impl MapPromise {
    /// The file never changes once it has its final name: it was written in
    /// full under a temporary name, made durable and renamed in, and is
    /// only ever removed or replaced by a rename, which leaves a mapping of
    /// the old file valid (index data files, frozen index logs, cemented
    /// chunks and metadata archives).
    pub(crate) const IMMUTABLE: MapPromise = MapPromise(());
    /// The file changes only past the end of its published data (appends,
    /// possibly over zeros written ahead of them, which no reader looks at
    /// before the append is published) and is cut only before it is
    /// mapped or once no reader is left (floating block files).
    pub(crate) const APPEND_ONLY: MapPromise = MapPromise(());
}

/// An open file. All methods take `&self` and use positional I/O, so one
/// handle may be shared by reader threads and a writer.
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// The path the file was opened at, for error messages.
    fn path(&self) -> &Path;
    /// Fills `buf` from `offset`; a short file is an error (`Corrupted`).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()>;
    /// Current length in bytes.
    fn len(&self) -> Result<u64>;
    /// True when the file is empty.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> Result<()>;
    /// Makes written data durable (fdatasync), unless fsync is disabled.
    fn sync(&self) -> Result<()>;
    /// Maps the whole file read-only. `promise` is the caller's word that
    /// the mapped bytes stay as they are while mapped (see [`MapPromise`]).
    fn map(&self, promise: MapPromise) -> Result<Mapped>;
    /// Hints that `offset..offset + len` is complete: starts its writeback
    /// now and, on a background thread, waits for the writeback of what was
    /// hinted before, so a large write reaches the disk in small steps
    /// instead of one long burst at `sync` that other writers' fsyncs would
    /// queue behind. Durability still
    /// comes only from `sync` (which reports any error), so this returns
    /// nothing and does nothing when fsync is disabled.
    fn write_behind(&self, _offset: u64, _len: u64) {}
}

/// See [`FileSystem::stamp`]: what identifies a file as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Device, inode, length and change time (or what stands for them).
    pub id: [u64; 4],
    /// The file has not changed for a while (a second on a real file
    /// system): a later equal stamp proves it unchanged. A file changed
    /// within the clock's granularity can change again without its time
    /// moving, so a fresh stamp proves nothing (Git's "racily clean").
    pub settled: bool,
}

impl FileStamp {
    /// True if `later`, taken after `self`, proves the file unchanged.
    pub fn unchanged_at(&self, later: &FileStamp) -> bool {
        self.settled && self.id == later.id
    }
}

/// A file system: the operations on paths that the stores need.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens (or creates, by `mode`) a file.
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>>;
    /// Renames atomically (POSIX `rename`).
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file; a missing file is not an error.
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Removes a directory and everything in it; missing is not an error.
    fn remove_dir_all(&self, path: &Path) -> Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Lists a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;
    /// fsyncs a directory so that renames and creations in it are durable.
    fn sync_dir(&self, path: &Path) -> Result<()>;
    /// True if something exists at `path`.
    fn exists(&self, path: &Path) -> Result<bool>;
    /// True if `path` is a directory.
    fn is_dir(&self, path: &Path) -> Result<bool>;
    /// Takes the exclusive lock file at `path` (non-blocking).
    fn lock(&self, path: &Path) -> Result<LockFile>;
    /// Whether `sync`/`sync_dir` really reach the disk.
    fn fsync_enabled(&self) -> bool;
    /// What identifies the file (or directory) at `path` as it is now (on
    /// a real file system: device, inode, length and change time, one
    /// `stat`); `None` if nothing is there. Replacing the file, changing its
    /// length or contents, or (for a directory) adding a name changes it,
    /// so a read-only handle notices a writer's changes without reading;
    /// see [`FileStamp::unchanged_at`].
    fn stamp(&self, path: &Path) -> Result<Option<FileStamp>>;
    /// Opens the directory at `path` (a store's root, trusted: it may
    /// contain links) as a handle for operations on the names below it,
    /// never following a link there (see [`beneath`]). Errors keep the OS's
    /// errno (ENOENT, ENOTDIR, ...) for the caller to map.
    fn open_root_dir(&self, path: &Path) -> std::io::Result<beneath::Dir>;
}

/// The file system used by default: the real one, fsyncing unless `no_fsync`.
pub fn default_fs(no_fsync: bool) -> Arc<dyn FileSystem> {
    Arc::new(StdFs::new(!no_fsync))
}

/// `dir/name` as a `PathBuf`.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
