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
