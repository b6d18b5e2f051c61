//! Atomic, durable replacement of a whole file: write a temporary file, fsync
//! it, rename it over the target, fsync the directory. A crash at any point
//! leaves either the old file or the new one, never a mix.

use std::path::{Path, PathBuf};

use super::{FileSystem, OpenMode};
use crate::error::{Error, Result};

/// Suffix of temporary files; stores remove leftovers with it at open.
pub const TMP_SUFFIX: &str = ".tzs-tmp";

/// The temporary path used while replacing `path`.
pub fn tmp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("{} has no file name", path.display())))?;
    Ok(path.with_file_name(format!("{name}{TMP_SUFFIX}")))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `contents` atomically and durably. The caller must
/// hold the store's lock so that no other writer uses the same temporary name.
pub fn replace(fs: &dyn FileSystem, path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path)?;
    let file = fs.open(&tmp, OpenMode::Truncate)?;
    let written = file.write_all_at(contents, 0).and_then(|()| file.sync());
    drop(file);
    if let Err(e) = written {
        // Best effort: the temporary file is garbage either way.
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, path)?;
    fs.sync_dir(parent_dir(path))
}

/// Creates the directory `dir` and any missing parents durably: each new
/// directory's entry is fsynced in its parent, so a power cut cannot lose a
/// store's directory (and everything in it) after its files were synced.
/// An existing directory costs one `is_dir`.
pub fn create_dir_durably(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    if fs.is_dir(dir)? {
        return Ok(());
    }
    let mut missing = vec![dir];
    let mut at = dir;
    while let Some(parent) = at.parent() {
        if parent.as_os_str().is_empty() || fs.is_dir(parent)? {
            break;
        }
        missing.push(parent);
        at = parent;
    }
    fs.create_dir_all(dir)?;
    for new in missing.iter().rev() {
        fs.sync_dir(parent_dir(new))?;
    }
    Ok(())
}

/// Removes `path` durably (the removal reaches the directory on disk).
pub fn remove(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    fs.remove_file(path)?;
    fs.sync_dir(parent_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    #[test]
    fn replace_overwrites_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(true);
        let p = dir.path().join("f");
        replace(&fs, &p, b"one").unwrap();
        replace(&fs, &p, b"two!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        assert!(!tmp_path(&p).unwrap().exists());
        remove(&fs, &p).unwrap();
        assert!(!p.exists());
    }
}
