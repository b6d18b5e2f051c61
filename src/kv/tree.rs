//! The directory tree under the root: key resolution beneath the root's
//! directory fd and the read operations. No locking here (see `mod.rs`).
//!
//! Resolution opens one segment at a time with `openat(O_NOFOLLOW |
//! O_DIRECTORY)` from the root fd. An entry that is neither a regular file
//! nor a directory (a symbolic link, FIFO, socket or device) is *foreign*: it
//! is never followed or opened, `list` omits it, and a key that names it or
//! passes through it is `InvalidArgument`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::beneath::{self, Dir, FileAt, Stat};
use crate::kv::Kind;
use crate::kv::key::{Key, is_reserved};

/// A directory fd that is either the root (borrowed) or a subdirectory.
pub(crate) enum At<'a> {
    Root(&'a Dir),
    Sub(Dir),
}

impl At<'_> {
    /// An owned descriptor (a second one for the root).
    pub(crate) fn into_dir(self) -> Result<Dir> {
        match self {
            At::Sub(d) => Ok(d),
            At::Root(r) => r
                .reopen()
                .map_err(|e| Error::Io(format!("reopen kv root: {e}"))),
        }
    }
}

impl std::ops::Deref for At<'_> {
    type Target = Dir;
    fn deref(&self) -> &Dir {
        match self {
            At::Root(d) => d,
            At::Sub(d) => d,
        }
    }
}

/// Parent directories resolved during one commit (under the store lock), by
/// path below the root, so that 1,000 keys in one dictionary cost one walk,
/// not 1,000. (A batch also keeps one for the probes it makes before its
/// commit, which re-runs them all with a fresh cache; see `batch.rs`.) A parent found missing (or under a value) is remembered too,
/// but only while nothing is written ([`DirCache::forget_missing`] before
/// applying). The owner must [`DirCache::clear`] it whenever a dictionary
/// is removed or replaced, since its descriptors would then point into the
/// detached tree.
#[derive(Debug, Default)]
pub(crate) struct DirCache {
    pub(super) dirs: HashMap<String, Result<Dir>>,
}

impl DirCache {
    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.dirs.clear();
    }

    /// Drops the remembered failures (before the tree changes).
    pub(crate) fn forget_missing(&mut self) {
        self.dirs.retain(|_, d| d.is_ok());
    }

    /// Before resolving `path`: keeps the number of open descriptors
    /// bounded (a batch over many dictionaries must not hit the fd limit).
    pub(super) fn make_room(&mut self, path: &str) {
        if self.dirs.len() >= DirCache::MAX && !self.dirs.contains_key(path) {
            self.dirs.clear();
        }
    }

    const MAX: usize = 64;
}

/// The tree below a root directory.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) root: Dir,
    pub(crate) path: PathBuf,
    /// `.tzs-tmp`, where values are staged and removed dictionaries are
    /// moved before deletion (read-write handles only).
    pub(crate) tmp: Option<Dir>,
    /// Whether syncs reach the disk (off with `TZS_NO_FSYNC`).
    pub(crate) fsync: bool,
    /// This process's id, the prefix of staged file names.
    pub(crate) pid: u32,
}

/// The kind of a stat result, `InvalidArgument` for foreign entries.
pub(crate) fn kind_of(st: &Stat, key: &Key) -> Result<Kind> {
    match st.kind {
        beneath::Kind::File => Ok(Kind::Value),
        beneath::Kind::Dir => Ok(Kind::Dictionary),
        beneath::Kind::Other => Err(foreign(key)),
    }
}

fn foreign(key: &Key) -> Error {
    Error::invalid(format!(
        "key {key} names a symbolic link or special file, which the store never follows"
    ))
}

impl Tree {
    pub(crate) fn new(root: Dir, path: &Path, tmp: Option<Dir>, fsync: bool) -> Tree {
        Tree {
            root,
            path: path.to_path_buf(),
            tmp,
            fsync,
            pid: std::process::id(),
        }
    }

    /// Maps an OS error met while doing `op` on `key` to the store's error.
    pub(crate) fn err(&self, op: &str, key: &Key, e: io::Error) -> Error {
        let msg = format!("{op} {key} (in {}): {e}", self.path.display());
        match e.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound(msg),
            Some(libc::ENOTDIR) => Error::DictionaryExpected(msg),
            Some(libc::EISDIR) => Error::ValueExpected(msg),
            Some(libc::ELOOP) | Some(libc::ENAMETOOLONG) => Error::InvalidArgument(msg),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace(msg),
            _ => Error::Io(msg),
        }
    }

    /// Opens the directory named by the first `n` segments of `key`.
    pub(crate) fn walk(&self, key: &Key, n: usize, op: &str) -> Result<At<'_>> {
        if n >= 2 {
            // Fast path: one kernel-checked call; on any failure the walk
            // below runs and reports precisely what is in the way.
            if let Ok(d) = self.root.open_dir_beneath(&key.segments()[..n].join("/")) {
                return Ok(At::Sub(d));
            }
        }
        let mut cur = At::Root(&self.root);
        for (i, seg) in key.segments()[..n].iter().enumerate() {
            match cur.open_dir(seg) {
                Ok(d) => cur = At::Sub(d),
                Err(e) => return Err(self.walk_error(&cur, key, i, op, e)),
            }
        }
        Ok(cur)
    }

    /// Explains why segment `i` of `key` could not be opened as a directory.
    fn walk_error(&self, dir: &Dir, key: &Key, i: usize, op: &str, e: io::Error) -> Error {
        let prefix = Key::parse(&key.segments()[..=i].join("/")).unwrap_or_default();
        match e.raw_os_error() {
            Some(libc::ENOTDIR) | Some(libc::ELOOP) => match dir.stat_at(&key.segments()[i]) {
                Ok(st) if st.kind == beneath::Kind::File => Error::DictionaryExpected(format!(
                    "{op} {key}: {prefix} is a value, not a dictionary"
                )),
                Ok(_) => foreign(&prefix),
                Err(e) => self.err(op, key, e),
            },
            _ => self.err(op, key, e),
        }
    }

    /// The parent directory of a non-root key.
    pub(crate) fn parent(&self, key: &Key, op: &str) -> Result<At<'_>> {
        self.walk(key, key.depth().saturating_sub(1), op)
    }

    /// The parent directory of a non-root key, resolved once per `cache`.
    /// Errors are those of [`Tree::parent`].
    pub(crate) fn parent_cached<'a>(
        &'a self,
        cache: &'a mut DirCache,
        key: &Key,
        op: &str,
    ) -> Result<&'a Dir> {
        let p = key.parent_path();
        if p.is_empty() {
            return Ok(&self.root);
        }
        cache.make_room(p);
        let slot = match cache.dirs.entry(p.to_string()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => match self.parent(key, op) {
                Ok(at) => v.insert(Ok(at.into_dir()?)),
                // The outcomes a probe compares; anything else (I/O, a
                // foreign entry) is reported for this key, not remembered.
                Err(e @ (Error::NotFound(_) | Error::DictionaryExpected(_))) => v.insert(Err(e)),
                Err(e) => return Err(e),
            },
        };
        match slot {
            Ok(d) => Ok(d),
            Err(e) => Err(e.clone()),
        }
    }

    /// [`Tree::stat`] through `cache`.
    pub(crate) fn stat_cached(&self, cache: &mut DirCache, key: &Key, op: &str) -> Result<Stat> {
        let dir = self.parent_cached(cache, key, op)?;
        dir.stat_at(key.basename())
            .map_err(|e| self.err(op, key, e))
    }

    /// [`Tree::kind`] through `cache`.
    pub(crate) fn kind_cached(&self, cache: &mut DirCache, key: &Key) -> Result<Option<Kind>> {
        if key.is_root() {
            return Ok(Some(Kind::Dictionary));
        }
        match self.stat_cached(cache, key, "exists") {
            Ok(st) => kind_of(&st, key).map(Some),
            Err(Error::NotFound(_)) | Err(Error::DictionaryExpected(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `lstat` of a non-root key's entry; `NotFound` when absent.
    pub(crate) fn stat(&self, key: &Key, op: &str) -> Result<(At<'_>, Stat)> {
        let dir = self.parent(key, op)?;
        let st = dir
            .stat_at(key.basename())
            .map_err(|e| self.err(op, key, e))?;
        Ok((dir, st))
    }

    /// What `key` is, or `None` if it is absent (including when a parent is
    /// missing or is a value).
    pub(crate) fn kind(&self, key: &Key) -> Result<Option<Kind>> {
        if key.is_root() {
            return Ok(Some(Kind::Dictionary));
        }
        match self.stat(key, "exists") {
            Ok((_, st)) => kind_of(&st, key).map(Some),
            Err(Error::NotFound(_)) | Err(Error::DictionaryExpected(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the value at `key` for reading, with its size.
    fn open_value(&self, key: &Key, op: &str) -> Result<(FileAt, u64)> {
        if key.is_root() {
            return Err(Error::ValueExpected(format!(
                "{op} /: the root is a dictionary"
            )));
        }
        let file = match self.root.open_read_beneath(key.path()) {
            Ok(f) => f,
            // Slow path, for the precise error.
            Err(_) => {
                let dir = self.parent(key, op)?;
                dir.open_read(key.basename())
                    .map_err(|e| self.err(op, key, e))?
            }
        };
        let st = file.stat().map_err(|e| self.err(op, key, e))?;
        match kind_of(&st, key)? {
            Kind::Value => Ok((file, st.size)),
            Kind::Dictionary => Err(Error::ValueExpected(format!(
                "{op} {key}: a dictionary, not a value"
            ))),
        }
    }

    /// The whole value at `key`.
    pub(crate) fn get(&self, key: &Key) -> Result<Vec<u8>> {
        let (file, size) = self.open_value(key, "get")?;
        let size = usize::try_from(size)
            .map_err(|_| Error::invalid(format!("get {key}: value too large")))?;
        // Values are replaced by rename, never grown in place, so `size`
        // bytes is the whole value: no extra read to find the end. A value
        // too large for memory (a sparse file) is an error, not an abort.
        let mut out = Vec::new();
        out.try_reserve_exact(size).map_err(|_| {
            Error::NoSpace(format!("get {key}: no memory for a value of {size} bytes"))
        })?;
        out.resize(size, 0);
        let mut done = 0;
        while done < size {
            match file.read_at(&mut out[done..], done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err("get", key, e)),
            }
        }
        out.truncate(done);
        Ok(out)
    }

    /// Up to `length` bytes of the value at `key` from `offset`: short or
    /// empty past the end, and never allocated beyond what the file holds.
    pub(crate) fn get_partial(&self, key: &Key, offset: u64, length: u64) -> Result<Vec<u8>> {
        let (file, size) = self.open_value(key, "get_partial")?;
        let want = length.min(size.saturating_sub(offset));
        let mut out = Vec::new();
        out.try_reserve_exact(usize::try_from(want).unwrap_or(usize::MAX))
            .map_err(|_| {
                Error::NoSpace(format!("get_partial {key}: no memory for {want} bytes"))
            })?;
        // Bounded by `want` (what the file held at open), then read until
        // the end, like a read of `want` bytes from `offset`.
        out.resize(want as usize, 0);
        let mut done = 0;
        while done < out.len() {
            match file.read_at(&mut out[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err("get_partial", key, e)),
            }
        }
        out.truncate(done);
        Ok(out)
    }

    /// Size of the value at `key`.
    pub(crate) fn size(&self, key: &Key) -> Result<u64> {
        if key.is_root() {
            return Err(Error::ValueExpected(
                "size /: the root is a dictionary".into(),
            ));
        }
        let (_, st) = self.stat(key, "size")?;
        match kind_of(&st, key)? {
            Kind::Value => Ok(st.size),
            Kind::Dictionary => Err(Error::ValueExpected(format!(
                "size {key}: a dictionary, not a value"
            ))),
        }
    }

    /// The dictionary at `key`, opened.
    pub(crate) fn open_dict(&self, key: &Key, op: &str) -> Result<At<'_>> {
        self.walk(key, key.depth(), op)
    }

    /// The visible entries of an open dictionary (no reserved, foreign or
    /// non-UTF-8 names), sorted by name bytes.
    pub(crate) fn entries(&self, dir: &Dir, key: &Key, op: &str) -> Result<Vec<(String, Kind)>> {
        let raw = dir.entries().map_err(|e| self.err(op, key, e))?;
        let mut out = Vec::with_capacity(raw.len());
        for (name, kind) in raw {
            let Ok(name) = String::from_utf8(name) else {
                continue; // cannot be named by a key
            };
            if is_reserved(&name) {
                continue;
            }
            match kind {
                beneath::Kind::File => out.push((name, Kind::Value)),
                beneath::Kind::Dir => out.push((name, Kind::Dictionary)),
                beneath::Kind::Other => {}
            }
        }
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(out)
    }

    /// The entries of the dictionary at `key`, sorted by name bytes.
    pub(crate) fn list(&self, key: &Key) -> Result<Vec<(String, Kind)>> {
        let dir = self.open_dict(key, "list")?;
        self.entries(&dir, key, "list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_kv_errors() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::new(Dir::open(dir.path()).unwrap(), dir.path(), None, false);
        let key = Key::parse("a/b").unwrap();
        let e = |n| tree.err("set", &key, io::Error::from_raw_os_error(n));
        assert!(matches!(e(libc::ENOSPC), Error::NoSpace(ref m) if m.contains("/a/b")));
        assert!(matches!(e(libc::EDQUOT), Error::NoSpace(_)));
        assert!(matches!(e(libc::ENOTDIR), Error::DictionaryExpected(_)));
        assert!(matches!(e(libc::EISDIR), Error::ValueExpected(_)));
        assert!(matches!(e(libc::ENOENT), Error::NotFound(_)));
        assert!(matches!(e(libc::ELOOP), Error::InvalidArgument(_)));
        assert!(matches!(e(libc::EIO), Error::Io(ref m) if m.contains("/a/b")));
    }
}
