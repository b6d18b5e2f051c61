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
