//! Write primitives on the tree. Callers hold the store's write lock, which
//! is what makes the temporary names below unique and the checks-then-act
//! sequences race-free against other writers of this library.
//!
//! A value is always written to a fresh file in `.tzs-tmp/` ("staged"), then
//! renamed over its key, so a reader or a crash sees the old value or the new
//! one, never a mix. Parent dictionaries that a plain `set` must create are
//! built in `.tzs-tmp/` around the value and moved into place by the same
//! single rename, so a failed `set` (ENOSPC, EIO) leaves nothing behind. A dictionary is removed by first renaming it into
//! `.tzs-tmp/` (one atomic step), then deleting it there; leftovers of a crash
//! are deleted at the next open.

use std::collections::hash_map::Entry;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::io::beneath::{self, Dir, FileAt};
use crate::kv::Kind;
use crate::kv::key::Key;
use crate::kv::tree::{At, DirCache, Tree, kind_of};

/// When a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Durable when the call returns (plain writes).
    Each,
    /// The caller syncs once at the end (batch commit, journal replay).
    Deferred,
}

/// Name of the staging directory below the root.
pub(crate) const TMP_DIR: &str = ".tzs-tmp";

impl Tree {
    fn tmp_dir(&self) -> Result<&Dir> {
        self.tmp
            .as_ref()
            .ok_or_else(|| Error::ReadOnly(format!("{} was opened read-only", self.path.display())))
    }

    fn tmp_name(&self) -> String {
        // One counter for the process: two handles on one root must not
        // pick the same name.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.pid)
    }

    fn sync_dir(&self, dir: &Dir, key: &Key) -> Result<()> {
        if self.fsync {
            dir.sync()
                .map_err(|e| self.err("fsync directory of", key, e))?;
        }
        Ok(())
    }

    /// Writes `data` to a new staged file; fsynced when `durability` is
    /// `Each`. Returns its name in `.tzs-tmp/`.
    pub(crate) fn stage(&self, key: &Key, data: &[u8], durability: Durability) -> Result<String> {
        self.stage_with(key, durability, |f| f.write_all(data))
    }

    /// Stages the value of every `Set` op (no sync), in order; `None` for
    /// the other ops. On failure nothing staged is left behind.
    pub(crate) fn stage_all(&self, ops: &[super::Op]) -> Result<Vec<Option<String>>> {
        let mut staged: Vec<Option<String>> = Vec::with_capacity(ops.len());
        for op in ops {
            let name = match op {
                super::Op::Set(k, v) => match self.stage(k, v, Durability::Deferred) {
                    Ok(name) => Some(name),
                    Err(e) => {
                        self.discard_all(&staged);
                        return Err(e);
                    }
                },
                super::Op::Remove(_) => None,
            };
            staged.push(name);
        }
        Ok(staged)
    }

    /// Discards every staged file of `staged` (best effort).
    pub(crate) fn discard_all(&self, staged: &[Option<String>]) {
        for s in staged.iter().flatten() {
            self.discard(s);
        }
    }

    /// Stages a zero-filled value of `size` bytes, its space reserved now.
    pub(crate) fn stage_zeroed(&self, key: &Key, size: u64) -> Result<String> {
        self.stage_with(key, Durability::Each, |f| f.allocate(size))
    }

    fn stage_with(
        &self,
        key: &Key,
        durability: Durability,
        fill: impl FnOnce(&mut FileAt) -> io::Result<()>,
    ) -> Result<String> {
        let tmp = self.tmp_dir()?;
        // A leftover of a dead process whose pid was reused may hold a name:
        // take the next one.
        let mut attempt = 0;
        let (name, mut file) = loop {
            let name = self.tmp_name();
            match tmp.create_new(&name) {
                Ok(f) => break (name, f),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt < 16 => attempt += 1,
                Err(e) => return Err(self.err("stage value for", key, e)),
            }
        };
        let mut done = fill(&mut file);
        if done.is_ok() && durability == Durability::Each && self.fsync {
            done = file.sync_data();
        }
        if let Err(e) = done {
            drop(file);
            self.discard(&name);
            return Err(self.err("write value of", key, e));
        }
        Ok(name)
    }

    /// Deletes a staged file that will not be installed (best effort: a
    /// leftover is removed at the next open).
    pub(crate) fn discard(&self, staged: &str) {
        if let Some(tmp) = &self.tmp {
            let _ = tmp.unlink(staged);
        }
    }

    /// Opens the parent dictionary of `key`, creating missing ones. With
    /// `forced` (journal replay), a value in the way is replaced by a
    /// dictionary; otherwise it is `DictionaryExpected`.
    fn make_parents(&self, key: &Key, forced: bool, durability: Durability) -> Result<At<'_>> {
        let mut cur = At::Root(&self.root);
        let n = key.depth().saturating_sub(1);
        for seg in &key.segments()[..n] {
            let opened = match cur.open_dir(seg) {
                Ok(d) => d,
                Err(e) => {
                    let missing = e.raw_os_error() == Some(libc::ENOENT);
                    let replace = forced
                        && matches!(cur.stat_at(seg), Ok(st) if st.kind == beneath::Kind::File);
                    if !missing && !replace {
                        // Let `walk` explain (value in the way, symlink, I/O).
                        return match self.walk(key, n, "set") {
                            Err(err) => Err(err),
                            Ok(_) => Err(self.err("set", key, e)),
                        };
                    }
                    if replace {
                        cur.unlink(seg).map_err(|e| self.err("set", key, e))?;
                    }
                    match cur.mkdir(seg) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(self.err("create dictionary for", key, e)),
                    }
                    if durability == Durability::Each {
                        self.sync_dir(&cur, key)?;
                    }
                    cur.open_dir(seg).map_err(|e| self.err("set", key, e))?
                }
            };
            cur = At::Sub(opened);
        }
        Ok(cur)
    }

    /// The parent dictionary of `key` for a forced install, through `cache`:
    /// created (replacing values in the way) when missing.
    fn forced_parent<'a>(&'a self, cache: &'a mut DirCache, key: &Key) -> Result<&'a Dir> {
        let p = key.parent_path();
        if p.is_empty() {
            return Ok(&self.root);
        }
        cache.make_room(p);
        let slot = match cache.dirs.entry(p.to_string()) {
            Entry::Occupied(o) => {
                let slot = o.into_mut();
                if slot.is_err() {
                    *slot = Ok(self
                        .make_parents(key, true, Durability::Deferred)?
                        .into_dir()?);
                }
                slot
            }
            Entry::Vacant(v) => v.insert(Ok(self
                .make_parents(key, true, Durability::Deferred)?
                .into_dir()?)),
        };
        match slot {
            Ok(d) => Ok(d),
            Err(e) => Err(e.clone()),
        }
    }

    /// Installs the staged file at `key` with forced semantics (journal
    /// apply): whatever is at `key` or in the way of its parents is
    /// replaced. Parents come from `cache`, and the common case costs one
    /// `renameat` (a dictionary in the way makes it fail with `EISDIR`, and
    /// only then is it looked at). The staged file is discarded on failure.
    pub(crate) fn install_forced(
        &self,
        staged: &str,
        key: &Key,
        cache: &mut DirCache,
    ) -> Result<()> {
        let r = self.install_forced_inner(staged, key, cache);
        if r.is_err() {
            self.discard(staged);
        }
        r
    }

    fn install_forced_inner(&self, staged: &str, key: &Key, cache: &mut DirCache) -> Result<()> {
        if key.is_root() {
            return Err(Error::ValueExpected(
                "set /: the root is a dictionary".into(),
            ));
        }
        let tmp = self.tmp_dir()?;
        let name = key.basename();
        let dir = self.forced_parent(cache, key)?;
        match tmp.rename(staged, dir, name) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::ENOTEMPTY)) => {}
            Err(e) => return Err(self.err("set", key, e)),
        }
        match dir.stat_at(name) {
            Ok(st) if st.kind == beneath::Kind::Dir => self.remove_dir(dir, name, key)?,
            Ok(_) => {}
            Err(e) => return Err(self.err("set", key, e)),
        }
        tmp.rename(staged, dir, name)
            .map_err(|e| self.err("set", key, e))?;
        // Descriptors below the removed dictionary are now stale.
        cache.clear();
        Ok(())
    }

    /// Renames the staged file over `key` and makes that durable (plain
    /// writes). A dictionary at `key` is `ValueExpected`, a value among its
    /// parents `DictionaryExpected`, a foreign entry `InvalidArgument`. The
    /// staged file is discarded on failure.
    pub(crate) fn install(&self, staged: &str, key: &Key) -> Result<()> {
        let r = self.install_inner(staged, key);
        if r.is_err() {
            self.discard(staged);
        }
        r
    }

    fn install_inner(&self, staged: &str, key: &Key) -> Result<()> {
        if key.is_root() {
            return Err(Error::ValueExpected(
                "set /: the root is a dictionary".into(),
            ));
        }
        let (dir, missing) = self.existing_parents(key)?;
        if missing < key.depth() - 1 {
            return self.install_with_new_parents(staged, key, &dir, missing);
        }
        let name = key.basename();
        match dir.stat_at(name) {
            Ok(st) => match st.kind {
                beneath::Kind::File => {}
                beneath::Kind::Dir => {
                    return Err(Error::ValueExpected(format!(
                        "set {key}: a dictionary, not a value"
                    )));
                }
                beneath::Kind::Other => {
                    kind_of(&st, key)?;
                }
            },
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(self.err("set", key, e)),
        }
        self.tmp_dir()?
            .rename(staged, &dir, name)
            .map_err(|e| self.err("set", key, e))?;
        self.sync_dir(&dir, key)
    }

    /// Opens the parents of `key` that exist: the deepest one and the index
    /// of the first missing segment (`depth - 1` if none is missing). A
    /// value or a foreign entry in the way is reported as by `walk`.
    fn existing_parents(&self, key: &Key) -> Result<(At<'_>, usize)> {
        let n = key.depth().saturating_sub(1);
        let mut cur = At::Root(&self.root);
        for (i, seg) in key.segments()[..n].iter().enumerate() {
            match cur.open_dir(seg) {
                Ok(d) => cur = At::Sub(d),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((cur, i)),
                Err(e) => {
                    return Err(match self.walk(key, n, "set") {
                        Err(err) => err,
                        Ok(_) => self.err("set", key, e),
                    });
                }
            }
        }
        Ok((cur, n))
    }

    /// Installs `staged` at `key` whose parents from segment `missing` on do
    /// not exist: the missing dictionaries are built in `.tzs-tmp` around
    /// the value, synced, and moved into `parent` by one rename (the commit
    /// point), so a failure or a crash never leaves half of them behind.
    fn install_with_new_parents(
        &self,
        staged: &str,
        key: &Key,
        parent: &Dir,
        missing: usize,
    ) -> Result<()> {
        let tmp = self.tmp_dir()?;
        let segs = key.segments();
        let build = self.tmp_name();
        let mkdir = |at: &Dir, name: &str| -> Result<Dir> {
            at.mkdir(name)
                .and_then(|()| at.open_dir(name))
                .map_err(|e| self.err("create dictionary for", key, e))
        };
        let built = (|| -> Result<()> {
            let mut dirs = vec![mkdir(tmp, &build)?];
            for seg in &segs[missing + 1..segs.len() - 1] {
                let sub = mkdir(&dirs[dirs.len() - 1], seg)?;
                dirs.push(sub);
            }
            tmp.rename(staged, &dirs[dirs.len() - 1], key.basename())
                .map_err(|e| self.err("set", key, e))?;
            for d in dirs.iter().rev() {
                self.sync_dir(d, key)?;
            }
            tmp.rename(&build, parent, &segs[missing])
                .map_err(|e| self.err("set", key, e))
        })();
        if let Err(e) = built {
            // Best effort: leftovers are deleted at the next open.
            let _ = self.delete_tree(tmp, &build);
            return Err(e);
        }
        self.sync_dir(parent, key)
    }

    /// Removes `key` (a value, or a dictionary whole). Absent is `Ok`. The
    /// root is emptied, not removed.
    pub(crate) fn remove(&self, key: &Key, durability: Durability) -> Result<()> {
        if key.is_root() {
            for (name, kind) in self.entries(&self.root, key, "remove")? {
                let child = key.child(&name)?;
                match kind {
                    Kind::Value => self
                        .root
                        .unlink(&name)
                        .map_err(|e| self.err("remove", &child, e))?,
                    Kind::Dictionary => self.remove_dir(&self.root, &name, &child)?,
                }
            }
            if durability == Durability::Each {
                self.sync_dir(&self.root, key)?;
            }
            return Ok(());
        }
        let dir = match self.parent(key, "remove") {
            Ok(d) => d,
            Err(Error::NotFound(_)) | Err(Error::DictionaryExpected(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let name = key.basename();
        let st = match dir.stat_at(name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(self.err("remove", key, e)),
        };
        match kind_of(&st, key)? {
            Kind::Value => dir.unlink(name).map_err(|e| self.err("remove", key, e))?,
            Kind::Dictionary => self.remove_dir(&dir, name, key)?,
        }
        if durability == Durability::Each {
            self.sync_dir(&dir, key)?;
        }
        Ok(())
    }

    /// Moves the dictionary `name` of `dir` out of the tree in one rename,
    /// then deletes it.
    fn remove_dir(&self, dir: &Dir, name: &str, key: &Key) -> Result<()> {
        let tmp = self.tmp_dir()?;
        let trash = self.tmp_name();
        dir.rename(name, tmp, &trash)
            .map_err(|e| self.err("remove", key, e))?;
        // Already gone from the tree; a failure here only leaves garbage in
        // `.tzs-tmp`, deleted at the next open.
        let _ = self.delete_tree(tmp, &trash);
        Ok(())
    }

    /// Deletes everything in `.tzs-tmp` (at open, under the lock: staged
    /// files and trash left by a crash).
    pub(crate) fn clear_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir()?;
        let entries = tmp
            .entries()
            .map_err(|e| self.err("clean", &Key::root(), e))?;
        for (name, kind) in entries {
            let r = if kind == beneath::Kind::Dir {
                self.delete_tree(tmp, &name)
            } else {
                tmp.unlink(&name)
            };
            r.map_err(|e| self.err("clean", &Key::root(), e))?;
        }
        Ok(())
    }

    /// Renames `from` to `to` with Mirage_kv's rules: onto an existing
    /// dictionary it moves inside it, a value replaces a value, a dictionary
    /// onto a value is `ValueExpected`, onto an existing dictionary entry of
    /// the same name `KeyExists`, a source that is a segment-wise prefix of
    /// the destination (or the root) `InvalidArgument`. Durable on return.
    pub(crate) fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let prefix = |d: &Key| {
            Error::invalid(format!(
                "rename {from} to {d}: the source is a prefix of the destination"
            ))
        };
        if from.is_prefix_of(to) {
            return Err(prefix(to));
        }
        let (src_dir, st) = self.stat(from, "rename")?;
        let src_kind = kind_of(&st, from)?;
        let dest = match self.kind(to)? {
            Some(Kind::Dictionary) => to.child(from.basename())?,
            _ => to.clone(),
        };
        if from.is_prefix_of(&dest) {
            return Err(prefix(&dest));
        }
        match (self.kind(&dest)?, src_kind) {
            (None, _) | (Some(Kind::Value), Kind::Value) => {}
            (Some(Kind::Value), Kind::Dictionary) => {
                return Err(Error::ValueExpected(format!(
                    "rename {from} to {dest}: a dictionary cannot replace a value"
                )));
            }
            (Some(Kind::Dictionary), _) => {
                return Err(Error::KeyExists(format!(
                    "rename {from} to {dest}: the destination is a dictionary"
                )));
            }
        }
        let (_, existed) = self.existing_parents(&dest)?;
        let moved = self
            .make_parents(&dest, false, Durability::Each)
            .and_then(|dest_dir| {
                src_dir
                    .rename(from.basename(), &dest_dir, dest.basename())
                    .map_err(|e| self.err("rename", from, e))?;
                Ok(dest_dir)
            });
        let dest_dir = match moved {
            Ok(d) => d,
            Err(e) => {
                self.remove_new_parents(&dest, existed);
                return Err(e);
            }
        };
        self.sync_dir(&dest_dir, &dest)?;
        if from.parent() != dest.parent() {
            self.sync_dir(&src_dir, from)?;
        }
        Ok(())
    }
}

impl Tree {
    /// After a failed rename: removes the parent dictionaries of `key` from
    /// segment `existed` on, which the rename created (best effort: they
    /// are empty, and one that is not is left alone).
    fn remove_new_parents(&self, key: &Key, existed: usize) {
        for j in (existed..key.depth().saturating_sub(1)).rev() {
            let Ok(dir) = self.walk(key, j, "rename") else {
                continue;
            };
            match dir.rmdir(&key.segments()[j]) {
                Ok(()) => {}
                // Not created yet when the rename failed.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(_) => return,
            }
        }
    }
}

/// Levels a deletion descends with open descriptors; a dictionary deeper
/// than that is first moved to the top of `.tzs-tmp` (see
/// [`Tree::delete_tree`]).
const DELETE_LEVELS: usize = 64;

impl Tree {
    /// Deletes the directory `name` of `tmp` (the staging directory) and
    /// everything below it, never following links (a link is unlinked like
    /// a file). Iterative: a tree of any depth costs no call stack, and at
    /// most [`DELETE_LEVELS`] descriptors, because a dictionary met that
    /// deep is renamed to the top of `tmp` and deleted from there.
    fn delete_tree(&self, tmp: &Dir, name: impl AsRef<[u8]>) -> io::Result<()> {
        enum Next {
            Descend(Vec<u8>),
            Flatten(Vec<u8>),
            Unlink(Vec<u8>),
            Finish,
        }
        let mut tops = vec![name.as_ref().to_vec()];
        while let Some(top) = tops.pop() {
            let dir = tmp.open_dir(&top)?;
            let entries = dir.entries()?.into_iter();
            let mut stack = vec![(dir, entries, top)];
            loop {
                let depth = stack.len();
                let Some((dir, entries, _)) = stack.last_mut() else {
                    break;
                };
                let next = match entries.next() {
                    Some((child, beneath::Kind::Dir)) if depth < DELETE_LEVELS => {
                        Next::Descend(child)
                    }
                    Some((child, beneath::Kind::Dir)) => Next::Flatten(child),
                    Some((child, _)) => Next::Unlink(child),
                    None => Next::Finish,
                };
                match next {
                    Next::Descend(child) => {
                        let sub = dir.open_dir(&child)?;
                        let entries = sub.entries()?.into_iter();
                        stack.push((sub, entries, child));
                    }
                    Next::Flatten(child) => {
                        let flat = self.tmp_name();
                        dir.rename(&child, tmp, &flat)?;
                        tops.push(flat.into_bytes());
                    }
                    Next::Unlink(child) => dir.unlink(&child)?,
                    Next::Finish => {
                        let Some((done, _, done_name)) = stack.pop() else {
                            break;
                        };
                        drop(done);
                        match stack.last() {
                            Some((parent, _, _)) => parent.rmdir(&done_name)?,
                            None => tmp.rmdir(&done_name)?,
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
