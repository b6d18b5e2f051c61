//! Opening a detected store read-only with the sizes it was created with,
//! so that `info`, `get`, `dump` and `copy` need no flags beyond the path.

use std::path::Path;

use tzstore::block::cemented::{Cemented, DEFAULT_LOG_SIZE};
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::index::Index;
use tzstore::indexed_file::IndexedFile;
use tzstore::kv::Kv;
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions, Result};

/// Read-only options on the default file system.
pub fn ro() -> OpenOptions {
    OpenOptions::read_only()
}

pub fn block_store(dir: &Path) -> Result<BlockStore> {
    BlockStore::open(
        dir,
        BlockStoreOptions {
            open: ro(),
            ..BlockStoreOptions::default()
        },
    )
}

pub fn cemented(dir: &Path) -> Result<Cemented> {
    Cemented::open(dir, &ro(), DEFAULT_LOG_SIZE)
}

/// The floating stores found in `dir` (a kind counts when its blocks file
/// is there), each opened read-only.
pub fn floating(dir: &Path) -> Result<Vec<Floating>> {
    let fs = ro().fs;
    let mut out = Vec::new();
    for kind in FloatingKind::ALL {
        if fs.exists(&dir.join(kind.file_name()))? {
            out.push(Floating::open(dir, kind, &ro())?);
        }
    }
    if out.is_empty() {
        return Err(Error::NotFound(format!(
            "{} holds no floating blocks file",
            dir.display()
        )));
    }
    Ok(out)
}

pub fn index(dir: &Path) -> Result<Index> {
    Index::open(dir, Index::config_of(dir, &ro())?)
}

pub fn indexed_file(dir: &Path) -> Result<IndexedFile> {
    IndexedFile::open(dir, IndexedFile::config_of(dir, &ro())?)
}

pub fn kv(dir: &Path) -> Result<Kv> {
    Kv::open(dir, &ro())
}

pub fn singleton(path: &Path) -> Result<Singleton> {
    Singleton::open(path, &ro())
}

/// Adds the way out to a `Locked` error of a command that needs the store
/// to itself.
pub fn explain_locked(e: Error) -> Error {
    match e {
        Error::Locked(m) => Error::Locked(format!(
            "{m}; close the node using it, or run without --repair"
        )),
        other => other,
    }
}
