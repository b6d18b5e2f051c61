//! Options shared by every store's `open`.

use std::sync::Arc;

use crate::io::{self, FileSystem};

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Open read-only: never write, never take the lock; see new data with `sync`.
    pub read_only: bool,
    /// The file system to use (the real one by default; tests inject faults).
    pub fs: Arc<dyn FileSystem>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            read_only: false,
            fs: io::default_fs(false),
        }
    }
}

impl OpenOptions {
    /// Read-write, durable.
    pub fn read_write() -> Self {
        Self::default()
    }

    /// Read-only.
    pub fn read_only() -> Self {
        OpenOptions {
            read_only: true,
            ..Self::default()
        }
    }

    /// Disables fsync (tests and benchmarks only: acknowledged writes may be
    /// lost at a power cut, though never torn after a process crash).
    pub fn no_fsync(mut self) -> Self {
        self.fs = io::default_fs(true);
        self
    }

    /// Uses `fs` for all file I/O.
    pub fn with_fs(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }
}
