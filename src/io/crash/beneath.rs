//! The crash model's backend of [`Dir`] and [`FileAt`] (the kv store's
//! directory handles). A directory handle is an inode, so it follows its
//! directory through renames exactly like a descriptor, and fails with
//! `ENOENT` once the directory is removed. Names are single segments: `/`,
//! `.`, `..`, the empty name and NUL are refused as the real calls would
//! fail on them; the model has no links, so nothing is ever followed.
//!
//! Durability is POSIX's: a new entry (create, mkdir), an unlink, rmdir or
//! rename becomes durable at the fsync of the directory ([`Dir::sync`]),
//! file data at [`FileAt::sync_data`], and [`Dir::syncfs`] makes everything
//! durable. Each of the three counts as a sync for
//! [`CrashFs::cut_before_sync`].

use std::any::Any;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CrashFs, Ino, Node, Pending, State, write_into};
use crate::io::beneath::{Dir, DirBackend, FileAt, FileBackend, Kind, Stat, not_regular};

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// One path segment, refused as the real `*at` calls would refuse it (or,
/// for `/`, `.` and `..`, as kv's keys never produce them).
fn segment(name: &[u8]) -> io::Result<String> {
    if name.is_empty() {
        return Err(errno(libc::ENOENT));
    }
    if name.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"));
    }
    if name == b"." || name == b".." || name.contains(&b'/') {
        return Err(errno(libc::EINVAL));
    }
    String::from_utf8(name.to_vec()).map_err(|_| errno(libc::EINVAL))
}

fn kind(node: Node) -> Kind {
    match node {
        Node::File(_) => Kind::File,
        Node::Dir(_) => Kind::Dir,
    }
}

fn ino(node: Node) -> Ino {
    match node {
        Node::File(i) | Node::Dir(i) => i,
    }
}

impl State {
    /// The live entries of directory `d` (`ENOENT` once it is removed).
    fn entries_of(&self, d: Ino) -> io::Result<&BTreeMap<String, Node>> {
        self.dirs.get(&d).ok_or_else(|| errno(libc::ENOENT))
    }

    fn entry(&self, d: Ino, name: &str) -> io::Result<Option<Node>> {
        Ok(self.entries_of(d)?.get(name).copied())
    }

    fn stat_of(&self, node: Node) -> Stat {
        let size = match node {
            Node::File(i) => self.files.get(&i).map_or(0, |f| f.len() as u64),
            Node::Dir(d) => self.dirs.get(&d).map_or(0, |e| e.len() as u64),
        };
        Stat {
            kind: kind(node),
            size,
            mtime_sec: 0,
            mtime_nsec: 0,
            ino: ino(node),
        }
    }

    /// True if `d` is `top` or lies below it.
    fn is_within(&self, d: Ino, top: Ino) -> bool {
        let mut stack = vec![top];
        while let Some(x) = stack.pop() {
            if x == d {
                return true;
            }
            for n in self.dirs.get(&x).into_iter().flat_map(|e| e.values()) {
                if let Node::Dir(c) = n {
                    stack.push(*c);
                }
            }
        }
        false
    }

    /// Walks the relative path `rel` below `d` as `openat2` with
    /// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` would: an absolute path or a
    /// `..` is refused (`EXDEV`, conservatively even when it would stay
    /// below), empty and `.` segments are skipped.
    fn walk_beneath(&self, d: Ino, rel: &str) -> io::Result<Node> {
        if rel.starts_with('/') {
            return Err(errno(libc::EXDEV));
        }
        let mut node = Node::Dir(d);
        for seg in rel.split('/') {
            if seg.is_empty() || seg == "." {
                continue;
            }
            if seg == ".." {
                return Err(errno(libc::EXDEV));
            }
            let Node::Dir(cur) = node else {
                return Err(errno(libc::ENOTDIR));
            };
            node = self.entry(cur, seg)?.ok_or_else(|| errno(libc::ENOENT))?;
        }
        Ok(node)
    }

    /// fsync of everything (`syncfs`).
    fn sync_all(&mut self) {
        self.durable_dirs = self.dirs.clone();
        self.durable_files = self.files.clone();
        self.pending.clear();
    }
}

/// A directory of the model.
#[derive(Debug)]
struct CrashDir {
    fs: CrashFs,
    ino: Ino,
}

/// An open file (or, opened for reading, a directory: `stat` says so and
/// reads fail with `EISDIR`, as on a real system).
#[derive(Debug)]
struct CrashFileAt {
    fs: CrashFs,
    node: Node,
    writable: bool,
    /// Where [`FileAt::write_all`] writes next.
    pos: u64,
    /// This open file description, the owner of a `flock`.
    id: u64,
}

impl CrashFs {
    /// The directory handle of the model's directory at `path`.
    pub(super) fn dir_at(&self, path: &std::path::Path) -> io::Result<Dir> {
        let node = self
            .state
            .lock()
            .lookup(path)
            .map_err(|_| errno(libc::EINVAL))?;
        match node {
            Some(Node::Dir(d)) => Ok(self.dir(d)),
            Some(Node::File(_)) => Err(errno(libc::ENOTDIR)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn dir(&self, ino: Ino) -> Dir {
        Dir::new(Box::new(CrashDir {
            fs: self.clone(),
            ino,
        }))
    }

    fn file(&self, node: Node, writable: bool) -> FileAt {
        static IDS: AtomicU64 = AtomicU64::new(1);
        FileAt::new(Box::new(CrashFileAt {
            fs: self.clone(),
            node,
            writable,
            pos: 0,
            id: IDS.fetch_add(1, Ordering::Relaxed),
        }))
    }
}

impl CrashDir {
    fn other<'a>(&self, to: &'a Dir) -> io::Result<&'a CrashDir> {
        to.backend()
            .as_any()
            .downcast_ref::<CrashDir>()
            .filter(|d| std::sync::Arc::ptr_eq(&d.fs.state, &self.fs.state))
            .ok_or_else(|| errno(libc::EXDEV))
    }

    fn read_node(&self, node: Node) -> FileAt {
        self.fs.file(node, false)
    }
}

impl DirBackend for CrashDir {
    fn open_dir(&self, name: &[u8]) -> io::Result<Dir> {
        let name = segment(name)?;
        match self.fs.state.lock().entry(self.ino, &name)? {
            Some(Node::Dir(d)) => Ok(self.fs.dir(d)),
            Some(Node::File(_)) => Err(errno(libc::ENOTDIR)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn reopen(&self) -> io::Result<Dir> {
        self.fs.state.lock().entries_of(self.ino)?;
        Ok(self.fs.dir(self.ino))
    }

    fn open_dir_beneath(&self, rel: &str) -> io::Result<Dir> {
        match self.fs.state.lock().walk_beneath(self.ino, rel)? {
            Node::Dir(d) => Ok(self.fs.dir(d)),
            Node::File(_) => Err(errno(libc::ENOTDIR)),
        }
    }

    fn open_read_beneath(&self, rel: &str) -> io::Result<FileAt> {
        let node = self.fs.state.lock().walk_beneath(self.ino, rel)?;
        Ok(self.read_node(node))
    }

    fn stat_at(&self, name: &[u8]) -> io::Result<Stat> {
        let name = segment(name)?;
        let s = self.fs.state.lock();
        let node = s
            .entry(self.ino, &name)?
            .ok_or_else(|| errno(libc::ENOENT))?;
        Ok(s.stat_of(node))
    }

    fn stat(&self) -> io::Result<Stat> {
        let s = self.fs.state.lock();
        s.entries_of(self.ino)?;
        Ok(s.stat_of(Node::Dir(self.ino)))
    }

    fn open_read(&self, name: &[u8]) -> io::Result<FileAt> {
        let name = segment(name)?;
        let node = self
            .fs
            .state
            .lock()
            .entry(self.ino, &name)?
            .ok_or_else(|| errno(libc::ENOENT))?;
        Ok(self.read_node(node))
    }

    fn create_new(&self, name: &[u8]) -> io::Result<FileAt> {
        let name = segment(name)?;
        let mut s = self.fs.state.lock();
        if s.entry(self.ino, &name)?.is_some() {
            return Err(errno(libc::EEXIST));
        }
        let i = s.new_ino();
        s.files.insert(i, Vec::new());
        s.link(self.ino, name, Node::File(i));
        drop(s);
        Ok(self.fs.file(Node::File(i), true))
    }

    fn open_rw(&self, name: &[u8]) -> io::Result<FileAt> {
        let name = segment(name)?;
        let mut s = self.fs.state.lock();
        let node = match s.entry(self.ino, &name)? {
            Some(n @ Node::File(_)) => n,
            Some(Node::Dir(_)) => return Err(not_regular(Kind::Dir)),
            None => {
                let i = s.new_ino();
                s.files.insert(i, Vec::new());
                s.link(self.ino, name, Node::File(i));
                Node::File(i)
            }
        };
        drop(s);
        Ok(self.fs.file(node, true))
    }

    fn mkdir(&self, name: &[u8]) -> io::Result<()> {
        let name = segment(name)?;
        let mut s = self.fs.state.lock();
        if s.entry(self.ino, &name)?.is_some() {
            return Err(errno(libc::EEXIST));
        }
        let d = s.new_ino();
        s.dirs.insert(d, BTreeMap::new());
        s.link(self.ino, name, Node::Dir(d));
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> io::Result<()> {
        let name = segment(name)?;
        let mut s = self.fs.state.lock();
        match s.entry(self.ino, &name)? {
            Some(Node::File(_)) => {
                s.unlink(self.ino, &name);
                Ok(())
            }
            Some(Node::Dir(_)) => Err(errno(libc::EISDIR)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn rmdir(&self, name: &[u8]) -> io::Result<()> {
        let name = segment(name)?;
        let mut s = self.fs.state.lock();
        match s.entry(self.ino, &name)? {
            Some(Node::Dir(d)) => {
                if s.dirs.get(&d).is_some_and(|e| !e.is_empty()) {
                    return Err(errno(libc::ENOTEMPTY));
                }
                s.unlink(self.ino, &name);
                s.dirs.remove(&d);
                Ok(())
            }
            Some(Node::File(_)) => Err(errno(libc::ENOTDIR)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn rename(&self, name: &[u8], to: &Dir, to_name: &[u8]) -> io::Result<()> {
        let from = segment(name)?;
        let to_name = segment(to_name)?;
        let to_dir = self.other(to)?.ino;
        let mut s = self.fs.state.lock();
        let node = s
            .entry(self.ino, &from)?
            .ok_or_else(|| errno(libc::ENOENT))?;
        let old = s.entry(to_dir, &to_name)?;
        if old == Some(node) {
            return Ok(());
        }
        match (node, old) {
            (Node::Dir(d), _) if s.is_within(to_dir, d) => return Err(errno(libc::EINVAL)),
            (Node::File(_), Some(Node::Dir(_))) => return Err(errno(libc::EISDIR)),
            (Node::Dir(_), Some(Node::File(_))) => return Err(errno(libc::ENOTDIR)),
            (Node::Dir(_), Some(Node::Dir(t))) => {
                if s.dirs.get(&t).is_some_and(|e| !e.is_empty()) {
                    return Err(errno(libc::ENOTEMPTY));
                }
                s.dirs.remove(&t);
            }
            _ => {}
        }
        if let Some(e) = s.dirs.get_mut(&self.ino) {
            e.remove(&from);
        }
        s.dirs
            .entry(to_dir)
            .or_default()
            .insert(to_name.clone(), node);
        s.pending.push(Pending::Rename {
            from_dir: self.ino,
            from,
            to_dir,
            to: to_name,
            node,
        });
        Ok(())
    }

    fn entries(&self) -> io::Result<Vec<(Vec<u8>, Kind)>> {
        let s = self.fs.state.lock();
        Ok(s.entries_of(self.ino)?
            .iter()
            .map(|(name, n)| (name.as_bytes().to_vec(), kind(*n)))
            .collect())
    }

    fn sync(&self) -> io::Result<()> {
        self.fs.count_sync();
        self.fs.state.lock().sync_dir(self.ino);
        Ok(())
    }

    fn syncfs(&self) -> io::Result<()> {
        self.fs.count_sync();
        self.fs.state.lock().sync_all();
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CrashFileAt {
    fn file_ino(&self) -> io::Result<Ino> {
        match self.node {
            Node::File(i) => Ok(i),
            Node::Dir(_) => Err(errno(libc::EISDIR)),
        }
    }

    fn writable_ino(&self) -> io::Result<Ino> {
        let i = self.file_ino()?;
        if self.writable {
            Ok(i)
        } else {
            Err(errno(libc::EBADF))
        }
    }

    fn write(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let i = self.writable_ino()?;
        let mut s = self.fs.state.lock();
        write_into(s.files.entry(i).or_default(), offset, buf);
        s.pending.push(Pending::Write {
            ino: i,
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn resize(&self, len: u64, shrink: bool) -> io::Result<()> {
        let i = self.writable_ino()?;
        let len_usize = usize::try_from(len).map_err(|_| errno(libc::EFBIG))?;
        let mut s = self.fs.state.lock();
        let data = s.files.entry(i).or_default();
        if !shrink && data.len() >= len_usize {
            return Ok(());
        }
        data.resize(len_usize, 0);
        s.pending.push(Pending::SetLen { ino: i, len });
        Ok(())
    }
}

impl FileBackend for CrashFileAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let i = self.file_ino()?;
        let s = self.fs.state.lock();
        let data = s.files.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.resize(len, true)
    }

    fn sync_data(&self) -> io::Result<()> {
        let i = self.file_ino()?;
        self.fs.count_sync();
        self.fs.state.lock().sync_file(i);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        // posix_fallocate from offset 0 only ever extends.
        self.resize(len, false)
    }

    fn stat(&self) -> io::Result<Stat> {
        Ok(self.fs.state.lock().stat_of(self.node))
    }

    fn lock_exclusive(&self) -> io::Result<()> {
        // Waits, as the real backend's blocking `flock(LOCK_EX)` does (kv
        // holds it only for one write); held by this open file, keyed by
        // inode, so a renamed file keeps its lock.
        let key = ino(self.node);
        let (held, freed) = &*self.fs.flocks;
        let mut held = held.lock();
        while held.get(&key).is_some_and(|&owner| owner != self.id) {
            freed.wait(&mut held);
        }
        held.insert(key, self.id);
        Ok(())
    }

    fn unlock(&self) -> io::Result<()> {
        let key = ino(self.node);
        let (held, freed) = &*self.fs.flocks;
        let mut held = held.lock();
        if held.get(&key) == Some(&self.id) {
            held.remove(&key);
            freed.notify_all();
        }
        Ok(())
    }
}

impl Drop for CrashFileAt {
    fn drop(&mut self) {
        // Closing the last descriptor of an open file description releases
        // its lock.
        let _ = self.unlock();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::io::FileSystem;
    use crate::io::beneath::is_not_regular;
    use crate::io::crash::CutMode;

    fn root(fs: &CrashFs) -> Dir {
        fs.create_dir_all(Path::new("/r")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.open_root_dir(Path::new("/r")).unwrap()
    }

    fn cut(fs: &CrashFs, mode: CutMode) -> Dir {
        let after = CrashFs::power_cut(&fs.snapshot(), mode, 3).unwrap();
        after.open_root_dir(Path::new("/r")).unwrap()
    }

    fn read(d: &Dir, name: &str) -> Option<Vec<u8>> {
        let f = d.open_read(name).ok()?;
        let mut b = vec![0u8; f.stat().ok()?.size as usize];
        f.read_exact_at(&mut b, 0).ok()?;
        Some(b)
    }

    fn errno_of(r: io::Result<impl std::fmt::Debug>) -> Option<i32> {
        r.unwrap_err().raw_os_error()
    }

    #[test]
    fn entries_are_durable_at_the_directory_fsync_and_data_at_sync_data() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        let mut f = r.create_new("a").unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        // Data durable, entry not.
        assert_eq!(read(&cut(&fs, CutMode::Nothing), "a"), None);
        r.sync().unwrap();
        assert_eq!(read(&cut(&fs, CutMode::Nothing), "a").unwrap(), b"hello");
        // Entry durable, data not: the file is there, empty.
        let g = r.create_new("b").unwrap();
        g.write_all_at(b"data", 0).unwrap();
        r.sync().unwrap();
        assert_eq!(read(&cut(&fs, CutMode::Nothing), "b").unwrap(), b"");
        assert_eq!(read(&cut(&fs, CutMode::Everything), "b").unwrap(), b"data");
        // mkdir, rename, unlink: only with the fsync.
        r.mkdir("sub").unwrap();
        let sub = r.open_dir("sub").unwrap();
        r.rename("a", &sub, "a2").unwrap();
        r.unlink("b").unwrap();
        let before = cut(&fs, CutMode::Nothing);
        assert!(before.open_dir("sub").is_err());
        assert_eq!(read(&before, "a").unwrap(), b"hello");
        assert!(read(&before, "b").is_some());
        r.sync().unwrap();
        let after = cut(&fs, CutMode::Nothing);
        assert_eq!(
            read(&after.open_dir("sub").unwrap(), "a2").unwrap(),
            b"hello"
        );
        assert_eq!(read(&after, "a"), None);
        assert_eq!(read(&after, "b"), None);
    }

    #[test]
    fn syncfs_makes_everything_durable_and_every_sync_is_counted() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        let before = fs.syncs();
        fs.cut_before_sync(before + 2);
        r.mkdir("d").unwrap();
        let d = r.open_dir("d").unwrap();
        let f = d.create_new("v").unwrap();
        f.write_all_at(b"v1", 0).unwrap();
        f.sync_data().unwrap(); // before + 0
        d.sync().unwrap(); // before + 1
        f.write_all_at(b"v2", 0).unwrap();
        r.syncfs().unwrap(); // before + 2: recorded just before it
        assert_eq!(fs.syncs(), before + 3);
        let after = cut(&fs, CutMode::Nothing);
        assert_eq!(read(&after.open_dir("d").unwrap(), "v").unwrap(), b"v2");
        let snap = fs.taken().unwrap();
        let at = CrashFs::power_cut(&snap, CutMode::Nothing, 1).unwrap();
        // The root's fsync never happened: `d` is not there.
        let at = at.open_root_dir(Path::new("/r")).unwrap();
        assert!(at.open_dir("d").is_err());
    }

    #[test]
    fn errors_are_those_of_the_real_calls() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        r.create_new("f").unwrap();
        r.mkdir("d").unwrap();
        r.open_dir("d").unwrap().create_new("x").unwrap();
        assert_eq!(errno_of(r.open_dir("missing")), Some(libc::ENOENT));
        assert_eq!(errno_of(r.open_dir("f")), Some(libc::ENOTDIR));
        assert_eq!(errno_of(r.create_new("f")), Some(libc::EEXIST));
        assert_eq!(errno_of(r.mkdir("d")), Some(libc::EEXIST));
        assert_eq!(errno_of(r.unlink("d")), Some(libc::EISDIR));
        assert_eq!(errno_of(r.rmdir("d")), Some(libc::ENOTEMPTY));
        assert_eq!(errno_of(r.rmdir("f")), Some(libc::ENOTDIR));
        assert_eq!(errno_of(r.rename("f", &r, "d")), Some(libc::EISDIR));
        assert_eq!(errno_of(r.rename("d", &r, "f")), Some(libc::ENOTDIR));
        let d = r.open_dir("d").unwrap();
        assert_eq!(errno_of(r.rename("d", &d, "inside")), Some(libc::EINVAL));
        assert!(is_not_regular(&r.open_rw("d").unwrap_err()));
        for bad in ["", ".", "..", "a/b"] {
            assert!(r.stat_at(bad).is_err(), "{bad:?}");
        }
        assert!(r.stat_at("a\0b").is_err());
        assert_eq!(errno_of(r.open_dir_beneath("../r")), Some(libc::EXDEV));
        assert_eq!(errno_of(r.open_dir_beneath("/r")), Some(libc::EXDEV));
        assert_eq!(errno_of(r.open_dir_beneath("f/x")), Some(libc::ENOTDIR));
        assert_eq!(
            r.open_dir_beneath("d").unwrap().stat().unwrap().kind,
            Kind::Dir
        );
        assert_eq!(
            r.open_read_beneath("d/x").unwrap().stat().unwrap().kind,
            Kind::File
        );
        // A directory opened for reading is one; reading it is EISDIR.
        let dir_file = r.open_read("d").unwrap();
        assert_eq!(dir_file.stat().unwrap().kind, Kind::Dir);
        assert_eq!(
            errno_of(dir_file.read_at(&mut [0u8; 1], 0)),
            Some(libc::EISDIR)
        );
        // Read-only handles do not write.
        assert_eq!(
            errno_of(r.open_read("f").unwrap().write_all_at(b"x", 0)),
            Some(libc::EBADF)
        );
    }

    #[test]
    fn a_directory_built_aside_and_renamed_in_is_durable_under_one_name_only() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        r.mkdir("tmp").unwrap();
        r.sync().unwrap();
        let tmp = r.open_dir("tmp").unwrap();
        tmp.mkdir("build").unwrap();
        let build = tmp.open_dir("build").unwrap();
        build.create_new("v").unwrap().sync_data().unwrap();
        build.sync().unwrap();
        tmp.rename("build", &r, "dict").unwrap();
        r.sync().unwrap();
        // The creation in `tmp` (never fsynced) went with the rename.
        for mode in CutMode::ALL {
            let after = cut(&fs, mode);
            assert_eq!(after.open_dir("dict").unwrap().entries().unwrap().len(), 1);
            let tmp = after.open_dir("tmp").unwrap();
            assert!(tmp.entries().unwrap().is_empty(), "{mode:?}");
        }
    }

    #[test]
    fn a_handle_follows_its_directory_and_dies_with_it() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        r.mkdir("a").unwrap();
        let a = r.open_dir("a").unwrap();
        r.rename("a", &r, "b").unwrap();
        a.create_new("v").unwrap();
        assert_eq!(r.open_dir("b").unwrap().entries().unwrap().len(), 1);
        a.unlink("v").unwrap();
        r.rmdir("b").unwrap();
        assert_eq!(errno_of(a.create_new("w")), Some(libc::ENOENT));
        assert_eq!(errno_of(a.entries()), Some(libc::ENOENT));
    }

    #[test]
    fn flock_excludes_other_handles_until_unlocked() {
        let fs = CrashFs::new().unwrap();
        let r = root(&fs);
        let one = r.open_rw("lock").unwrap();
        let two = r.open_rw("lock").unwrap();
        one.lock_exclusive().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            two.lock_exclusive().unwrap();
            tx.send(()).unwrap();
            two
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err(),
            "a second handle took a held lock"
        );
        one.unlock().unwrap();
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let two = t.join().unwrap();
        drop(two); // closing releases it
        one.lock_exclusive().unwrap();
    }
}
