//! Which store a path holds, told from the files each store creates, so
//! that `check` works on every kind without being told.

use std::fmt;
use std::io::Read;
use std::path::Path;

use tzstore::{Error, Result};

/// The kinds of store `check` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A block store (`manifest`, `floating/`, `cemented/`).
    BlockStore,
    /// A cemented block store (`level_to_hash`, `hash_to_level`, chunks).
    Cemented,
    /// A floating block store (`<kind>_floating_block_store`).
    Floating,
    /// An index (`meta`, `data`, `log.N`).
    Index,
    /// An indexed file (`current`, `gen.N/`).
    IndexedFile,
    /// A key/value store (`.tzs-generation`, `.tzs-journal`).
    Kv,
    /// A singleton (one file starting with its magic).
    Singleton,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::BlockStore => "block store",
            StoreKind::Cemented => "cemented block store",
            StoreKind::Floating => "floating block store",
            StoreKind::Index => "index",
            StoreKind::IndexedFile => "indexed file",
            StoreKind::Kv => "key/value store",
            StoreKind::Singleton => "singleton",
        })
    }
}

/// The singleton file's first bytes (`src/singleton.rs`).
const SINGLETON_MAGIC: &[u8; 8] = b"TZSSGL01";

/// Tells which store `path` holds. A path that holds none is an
/// `InvalidArgument`, and so is a missing path (both are usage errors: a
/// mistyped path must never become a new store under `check --repair`).
pub fn detect(path: &Path) -> Result<StoreKind> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(format!("{} does not exist", path.display()))
        } else {
            Error::io("stat", path, e)
        }
    })?;
    if meta.is_file() {
        let mut magic = [0u8; 8];
        let mut f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        if f.read_exact(&mut magic).is_ok() && &magic == SINGLETON_MAGIC {
            return Ok(StoreKind::Singleton);
        }
        return Err(no_store(path));
    }
    if !meta.is_dir() {
        return Err(no_store(path));
    }
    let has = |name: &str| path.join(name).exists();
    // The kv store first: its own files are `.tzs-` names no key can take,
    // while its keys may be any name another store uses (`manifest`,
    // `current`, `data`).
    let kind = if has(".tzs-generation") || has(".tzs-journal") {
        StoreKind::Kv
    } else if has("manifest") || (has("floating") && has("cemented")) {
        StoreKind::BlockStore
    } else if has("current") {
        StoreKind::IndexedFile
    } else if has("level_to_hash") || has("hash_to_level") {
        StoreKind::Cemented
    } else if has("meta") || has("data") || any_name(path, |n| n.starts_with("log."))? {
        StoreKind::Index
    } else if any_name(path, |n| n.ends_with("_floating_block_store"))? {
        StoreKind::Floating
    } else {
        return Err(no_store(path));
    };
    Ok(kind)
}

fn any_name(dir: &Path, pred: impl Fn(&str) -> bool) -> Result<bool> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io("list", dir, e))?;
        if e.file_name().to_str().is_some_and(&pred) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn no_store(path: &Path) -> Error {
    Error::invalid(format!(
        "{} holds no tzstore store (no block store, cemented or floating store, \
         index, indexed file, key/value store or singleton found there)",
        path.display()
    ))
}
