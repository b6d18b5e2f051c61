//! Deleting large files without stalling other writers.
//!
//! Unlinking a 100 MB file on ext4 frees (and, on `discard` mounts, trims)
//! all of its extents in one journal transaction: about 65 ms on the test
//! VM, during which every other fsync on the file system waits. Cutting the
//! file down in steps, each committed on its own, bounds that stall to one
//! step (RocksDB's delete scheduler does the same for SST files).

use std::path::{Path, PathBuf};

use super::{FileSystem, OpenMode, foreground, join};
use crate::error::{Error, Result};

/// Suffix of a file renamed out of a store's view before it is deleted
/// gradually: a name the store's recovery never loads and removes at the
/// next read-write open, so a crash in the middle of the deletion leaves
/// no half-truncated file under a live name.
pub const TRASH_SUFFIX: &str = ".tzs-trash";

/// The trash name of `path`.
pub fn trash_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} has no file name", path.display())))?;
    Ok(path.with_file_name(format!("{}{TRASH_SUFFIX}", name.to_string_lossy())))
}

/// Bytes freed per step: a few milliseconds of journal work each.
const STEP: u64 = 8 << 20;

/// Removes the file at `path`, shrinking it step by step first when fsync
/// is enabled (without fsync, nothing waits on the journal anyway).
pub fn remove_file_gradually(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    if fs.fsync_enabled() {
        let f = fs.open(path, OpenMode::ReadWrite)?;
        let mut len = f.len()?;
        while len > STEP {
            len -= STEP;
            // Freeing extents is disk work a foreground fsync would wait
            // for, like writing them.
            foreground::pace_background(STEP);
            let _burst = foreground::BackgroundBurst::begin();
            f.set_len(len)?;
            f.sync()?;
        }
    }
    fs.remove_file(path)
}

/// Removes the directory `dir` and everything in it, shrinking large files
/// step by step (see [`remove_file_gradually`]).
pub fn remove_dir_gradually(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    for e in fs.read_dir(dir)? {
        let path = join(dir, &e.name);
        if e.is_dir {
            remove_dir_gradually(fs, &path)?;
        } else {
            remove_file_gradually(fs, &path)?;
        }
    }
    fs.remove_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    #[test]
    fn removes_nested_files_of_every_size() {
        for fsync in [true, false] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("store");
            std::fs::create_dir_all(dir.join("index")).expect("mkdir");
            std::fs::write(dir.join("blocks"), vec![7u8; (5 << 20) + 123]).expect("write");
            std::fs::write(dir.join("index/data"), b"small").expect("write");
            std::fs::write(dir.join("empty"), b"").expect("write");
            std::fs::write(tmp.path().join("sibling"), b"kept").expect("write");
            remove_dir_gradually(&StdFs::new(fsync), &dir).expect("remove");
            assert!(!dir.exists());
            assert!(tmp.path().join("sibling").exists());
        }
    }
}
