//! A crash-model file system for tests (issue: power loss, simulated).
//!
//! SIGKILL keeps the page cache, so kill tests cannot see a missing fsync; a
//! power cut can. [`CrashFs`] keeps every file and directory in memory twice,
//! as POSIX promises them:
//!
//! * a file's contents and size become durable at `sync` of that file (the
//!   trait's `sync` is fdatasync, which commits the size too when reading the
//!   data needs it, as it does for appends);
//! * a directory entry created, renamed or removed becomes durable only at
//!   `sync_dir` of that directory. A file whose data was fsynced but whose
//!   directory was not may vanish. A rename is one atomic step (as in every
//!   journaling file system): after a cut the node has its old name or its
//!   new one, and the fsync of either directory makes it durable.
//!
//! Everything not yet durable is kept, in order, in a log of pending
//! operations. [`CrashFs::power_cut`] builds the state a reboot could find:
//! the durable state plus a subset of the pending operations chosen by a
//! [`CutMode`] (none, all, a prefix, a random subset applied out of order
//! within files, or all with the last write torn), the model of LazyFS and
//! of ALICE's crash states. Nothing here assumes ext4's ordering.
//!
//! The kv store's directory handles ([`FileSystem::open_root_dir`]) work on
//! the same inodes (see `crash/beneath.rs`): their creates, renames and
//! removals become durable at the fsync of the directory, file data at
//! `sync_data`, and `syncfs` makes everything durable.
//!
//! Cuts at every sync boundary: [`CrashFs::cut_before_sync`] records the
//! state just before the k-th sync (file, directory or `syncfs`) starts,
//! while the workload runs on; the test then cuts power on that record.

mod beneath;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{DirEntry, FileHandle, FileSystem, LockFile, MapPromise, Mapped, OpenMode};
use crate::error::{Error, Result};

type Ino = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(Ino),
    Dir(Ino),
}

/// One operation not yet durable.
#[derive(Debug, Clone)]
enum Pending {
    Write {
        ino: Ino,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        ino: Ino,
        len: u64,
    },
    Link {
        dir: Ino,
        name: String,
        node: Node,
    },
    Unlink {
        dir: Ino,
        name: String,
    },
    /// One atomic step, as file systems make `rename`: after a cut the
    /// node is under the old name or the new one, never neither or both.
    Rename {
        from_dir: Ino,
        from: String,
        to_dir: Ino,
        to: String,
        node: Node,
    },
}

impl Pending {
    fn file(&self) -> Option<Ino> {
        match self {
            Pending::Write { ino, .. } | Pending::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// The node a directory operation links or moves.
    fn node(&self) -> Option<Node> {
        match self {
            Pending::Link { node, .. } | Pending::Rename { node, .. } => Some(*node),
            _ => None,
        }
    }

    /// True if the operation changes directory `d`.
    fn changes_dir(&self, d: Ino) -> bool {
        match self {
            Pending::Link { dir, .. } | Pending::Unlink { dir, .. } => *dir == d,
            Pending::Rename {
                from_dir, to_dir, ..
            } => *from_dir == d || *to_dir == d,
            _ => false,
        }
    }

    /// Applies a directory operation to `dirs`.
    fn apply_to_dirs(&self, dirs: &mut HashMap<Ino, BTreeMap<String, Node>>) {
        match self {
            Pending::Link { dir, name, node } => {
                dirs.entry(*dir).or_default().insert(name.clone(), *node);
            }
            Pending::Unlink { dir, name } => {
                if let Some(e) = dirs.get_mut(dir) {
                    e.remove(name);
                }
            }
            Pending::Rename {
                from_dir,
                from,
                to_dir,
                to,
                node,
            } => {
                // The node leaves its source directory whatever name it has
                // there durably: an earlier rename within that directory
                // may not be durable yet, and a node never has two names.
                if let Some(e) = dirs.get_mut(from_dir) {
                    if e.get(from) == Some(node) {
                        e.remove(from);
                    } else {
                        e.retain(|_, n| n != node);
                    }
                }
                dirs.entry(*to_dir).or_default().insert(to.clone(), *node);
            }
            Pending::Write { .. } | Pending::SetLen { .. } => {}
        }
    }
}

/// Which of the pending (unsynced) operations a power cut keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Only what was made durable.
    Nothing,
    /// Everything, as after SIGKILL.
    Everything,
    /// The first pending operations, in order, up to a random point.
    Prefix,
    /// Each pending write kept or lost at random (data reaches the disk out
    /// of order, within a file and across files); directory operations,
    /// which file systems journal in order, kept up to a random point.
    Subset,
    /// Everything, but the last pending write only in part (a torn page).
    TornLastWrite,
}

impl CutMode {
    /// Every mode, for tests that try each.
    pub const ALL: [CutMode; 5] = [
        CutMode::Nothing,
        CutMode::Everything,
        CutMode::Prefix,
        CutMode::Subset,
        CutMode::TornLastWrite,
    ];
}

/// The whole state: volatile (what the running program sees) and durable
/// (what survives a power cut for sure), plus the log in between.
#[derive(Debug, Clone, Default)]
struct State {
    dirs: HashMap<Ino, BTreeMap<String, Node>>,
    files: HashMap<Ino, Vec<u8>>,
    durable_dirs: HashMap<Ino, BTreeMap<String, Node>>,
    durable_files: HashMap<Ino, Vec<u8>>,
    pending: Vec<Pending>,
    next_ino: Ino,
    syncs: u64,
}

const ROOT: Ino = 0;

impl State {
    fn new() -> State {
        let mut s = State {
            next_ino: 1,
            ..State::default()
        };
        s.dirs.insert(ROOT, BTreeMap::new());
        s.durable_dirs.insert(ROOT, BTreeMap::new());
        s
    }

    fn names(path: &Path) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(
                    n.to_str()
                        .ok_or_else(|| Error::invalid(format!("{} is not UTF-8", path.display())))?
                        .to_string(),
                ),
                _ => {
                    return Err(Error::invalid(format!(
                        "crash model: {} is not a plain absolute path",
                        path.display()
                    )));
                }
            }
        }
        Ok(out)
    }

    fn lookup(&self, path: &Path) -> Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for name in Self::names(path)? {
            let Node::Dir(d) = node else { return Ok(None) };
            match self.dirs.get(&d).and_then(|e| e.get(&name)) {
                Some(n) => node = *n,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory holding `path` and the last name.
    fn parent(&self, path: &Path) -> Result<(Ino, String)> {
        let mut names = Self::names(path)?;
        let name = names
            .pop()
            .ok_or_else(|| Error::invalid(format!("{} has no file name", path.display())))?;
        let parent: PathBuf = names.iter().collect();
        match self.lookup(&Path::new("/").join(parent))? {
            Some(Node::Dir(d)) => Ok((d, name)),
            _ => Err(Error::NotFound(format!(
                "{}: parent directory missing",
                path.display()
            ))),
        }
    }

    fn link(&mut self, dir: Ino, name: String, node: Node) {
        self.dirs.entry(dir).or_default().insert(name.clone(), node);
        self.pending.push(Pending::Link { dir, name, node });
    }

    fn unlink(&mut self, dir: Ino, name: &str) -> Option<Node> {
        let old = self.dirs.get_mut(&dir).and_then(|e| e.remove(name));
        if old.is_some() {
            self.pending.push(Pending::Unlink {
                dir,
                name: name.to_string(),
            });
        }
        old
    }

    fn new_ino(&mut self) -> Ino {
        let i = self.next_ino;
        self.next_ino += 1;
        i
    }

    fn sync_file(&mut self, ino: Ino) {
        let data = self.files.get(&ino).cloned().unwrap_or_default();
        self.durable_files.insert(ino, data);
        self.pending.retain(|p| p.file() != Some(ino));
    }

    /// fsync of a directory: its entries become durable, and so does every
    /// rename into or out of it, on both sides (a rename is one journal
    /// transaction), in the order they were made.
    ///
    /// An operation made durable takes the earlier pending operations on
    /// the same node with it (its creation, earlier renames): a file system
    /// commits its journal in order, so a node never ends up durable under
    /// its new name and, from a lost earlier step, under an old one too.
    fn sync_dir(&mut self, dir: Ino) {
        let pending = std::mem::take(&mut self.pending);
        let mut take = vec![false; pending.len()];
        let mut nodes: Vec<Node> = Vec::new();
        for (i, p) in pending.iter().enumerate().rev() {
            if p.changes_dir(dir) || p.node().is_some_and(|n| nodes.contains(&n)) {
                take[i] = true;
                if let Some(n) = p.node() {
                    nodes.push(n);
                }
            }
        }
        let (done, rest): (Vec<_>, Vec<_>) = pending.into_iter().zip(take).partition(|(_, t)| *t);
        let done: Vec<Pending> = done.into_iter().map(|(p, _)| p).collect();
        self.pending = rest.into_iter().map(|(p, _)| p).collect();
        for p in &done {
            p.apply_to_dirs(&mut self.durable_dirs);
        }
        let entries = self.dirs.get(&dir).cloned().unwrap_or_default();
        self.durable_dirs.insert(dir, entries);
    }

    /// The state after a power cut keeping `keep` of the pending operations
    /// (and, for a torn write, only `torn` bytes of the last one).
    fn after_cut(&self, keep: &[bool], torn: Option<usize>) -> State {
        let mut dirs = self.durable_dirs.clone();
        let mut files = self.durable_files.clone();
        let last_write = self
            .pending
            .iter()
            .rposition(|p| matches!(p, Pending::Write { .. }));
        for (i, op) in self.pending.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            match op {
                Pending::Write { ino, offset, data } => {
                    let data = match torn {
                        Some(n) if Some(i) == last_write => &data[..n.min(data.len())],
                        _ => &data[..],
                    };
                    write_into(files.entry(*ino).or_default(), *offset, data);
                }
                Pending::SetLen { ino, len } => {
                    files.entry(*ino).or_default().resize(*len as usize, 0);
                }
                dir_op => dir_op.apply_to_dirs(&mut dirs),
            }
        }
        // A directory whose entry survived but whose own entries never
        // became durable is there, empty.
        let subdirs: Vec<Ino> = dirs
            .values()
            .flat_map(|e| e.values())
            .filter_map(|n| match n {
                Node::Dir(d) => Some(*d),
                Node::File(_) => None,
            })
            .collect();
        for d in subdirs {
            dirs.entry(d).or_default();
        }
        State {
            durable_dirs: dirs.clone(),
            durable_files: files.clone(),
            dirs,
            files,
            pending: Vec::new(),
            next_ino: self.next_ino,
            syncs: 0,
        }
    }
}

fn write_into(file: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if file.len() < end {
        file.resize(end, 0);
    }
    file[offset as usize..end].copy_from_slice(data);
}

/// A state recorded for a later power cut.
#[derive(Clone)]
pub struct Snapshot {
    state: State,
    /// How many syncs had completed when it was taken.
    pub syncs_before: u64,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Snapshot(after {} syncs, {} pending operations)",
            self.syncs_before,
            self.state.pending.len()
        )
    }
}

impl Snapshot {
    /// Pending (unsynced) operations at the time of the snapshot.
    pub fn pending(&self) -> usize {
        self.state.pending.len()
    }
}

/// The crash-model file system. Paths must be absolute; the tree starts
/// empty (create the store's directory first).
#[derive(Debug, Clone)]
pub struct CrashFs {
    state: Arc<Mutex<State>>,
    cut: Arc<Mutex<Cut>>,
    /// Real directory holding the lock files (flock needs real files).
    locks: Arc<tempfile::TempDir>,
    /// The `flock`s of directory handles' files: inode to the open file
    /// that holds it, and the waiters' wake-up.
    flocks: Arc<(Mutex<HashMap<Ino, u64>>, Condvar)>,
}

#[derive(Debug, Default)]
struct Cut {
    at_sync: Option<u64>,
    taken: Option<Snapshot>,
}

impl CrashFs {
    /// An empty file system.
    pub fn new() -> Result<CrashFs> {
        Self::from_state(State::new())
    }

    fn from_state(state: State) -> Result<CrashFs> {
        let locks = tempfile::tempdir()
            .map_err(|e| Error::io("create lock directory", Path::new("/tmp"), e))?;
        Ok(CrashFs {
            state: Arc::new(Mutex::new(state)),
            cut: Arc::new(Mutex::new(Cut::default())),
            locks: Arc::new(locks),
            flocks: Arc::default(),
        })
    }

    /// Records the state just before the `k`-th sync (0-based: file,
    /// directory or `syncfs`) starts; see [`CrashFs::taken`].
    pub fn cut_before_sync(&self, k: u64) {
        let mut c = self.cut.lock();
        c.at_sync = Some(k);
        c.taken = None;
    }

    /// The state recorded by [`CrashFs::cut_before_sync`], if the workload
    /// reached that sync.
    pub fn taken(&self) -> Option<Snapshot> {
        self.cut.lock().taken.clone()
    }

    /// Syncs done so far (file and directory).
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// The state now, for a power cut later.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.state.lock();
        Snapshot {
            syncs_before: s.syncs,
            state: s.clone(),
        }
    }

    /// The file system a reboot after a power cut at `snap` finds, keeping
    /// the pending operations `mode` chooses (random choices from `seed`).
    pub fn power_cut(snap: &Snapshot, mode: CutMode, seed: u64) -> Result<CrashFs> {
        let n = snap.state.pending.len();
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut torn = None;
        let keep: Vec<bool> = match mode {
            CutMode::Nothing => vec![false; n],
            CutMode::Everything => vec![true; n],
            CutMode::Prefix => {
                let k = if n == 0 {
                    0
                } else {
                    (next() % (n as u64 + 1)) as usize
                };
                (0..n).map(|i| i < k).collect()
            }
            CutMode::Subset => {
                // Data reaches the disk page by page in any order; the
                // directory operations, journaled, in order up to a point.
                let dir_ops = snap
                    .state
                    .pending
                    .iter()
                    .filter(|p| p.file().is_none())
                    .count();
                let keep_dir_ops = (next() % (dir_ops as u64 + 1)) as usize;
                let mut seen_dir_ops = 0;
                snap.state
                    .pending
                    .iter()
                    .map(|p| {
                        if p.file().is_some() {
                            next() % 2 == 0
                        } else {
                            seen_dir_ops += 1;
                            seen_dir_ops <= keep_dir_ops
                        }
                    })
                    .collect()
            }
            CutMode::TornLastWrite => {
                let last = snap.state.pending.iter().rev().find_map(|p| match p {
                    Pending::Write { data, .. } => Some(data.len()),
                    _ => None,
                });
                if let Some(len) = last {
                    // Cut inside the last page of the write.
                    let page_start = len.saturating_sub(1) / 4096 * 4096;
                    let in_page = len - page_start;
                    torn = Some(page_start + (next() % in_page.max(1) as u64) as usize);
                }
                vec![true; n]
            }
        };
        Self::from_state(snap.state.after_cut(&keep, torn))
    }

    /// Every path with its size (files) or `/` (directories), for the
    /// messages of failing tests.
    pub fn tree(&self) -> String {
        let s = self.state.lock();
        let mut out = String::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((d, prefix)) = stack.pop() {
            for (name, node) in s.dirs.get(&d).into_iter().flatten() {
                let path = format!("{prefix}/{name}");
                match node {
                    Node::Dir(c) => {
                        out.push_str(&format!("{path}/\n"));
                        stack.push((*c, path));
                    }
                    Node::File(i) => {
                        let len = s.files.get(i).map_or(0, Vec::len);
                        out.push_str(&format!("{path} {len}\n"));
                    }
                }
            }
        }
        out
    }

    fn count_sync(&self) {
        let mut c = self.cut.lock();
        let mut s = self.state.lock();
        if c.at_sync == Some(s.syncs) && c.taken.is_none() {
            c.taken = Some(Snapshot {
                syncs_before: s.syncs,
                state: s.clone(),
            });
        }
        s.syncs += 1;
    }
}

#[derive(Debug)]
struct CrashFile {
    fs: CrashFs,
    ino: Ino,
    path: PathBuf,
    writable: bool,
}

impl CrashFile {
    fn writable(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::Io(format!(
                "write {}: opened read-only (EBADF)",
                self.path.display()
            )))
        }
    }
}

impl FileHandle for CrashFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let n = self.read_at(buf, offset)?;
        if n < buf.len() {
            return Err(Error::corrupted(
                &self.path,
                format!("short read: {n} of {} bytes at {offset}", buf.len()),
            ));
        }
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let s = self.fs.state.lock();
        let data = s.files.get(&self.ino).map(Vec::as_slice).unwrap_or(&[]);
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.writable()?;
        let mut s = self.fs.state.lock();
        write_into(s.files.entry(self.ino).or_default(), offset, buf);
        s.pending.push(Pending::Write {
            ino: self.ino,
            offset,
            data: buf.to_vec(),
        });
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        let s = self.fs.state.lock();
        Ok(s.files.get(&self.ino).map_or(0, |d| d.len() as u64))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.writable()?;
        let mut s = self.fs.state.lock();
        s.files.entry(self.ino).or_default().resize(len as usize, 0);
        s.pending.push(Pending::SetLen { ino: self.ino, len });
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.fs.count_sync();
        self.fs.state.lock().sync_file(self.ino);
        Ok(())
    }

    fn map(&self, _promise: MapPromise) -> Result<Mapped> {
        let s = self.fs.state.lock();
        Ok(Mapped::from_bytes(
            s.files.get(&self.ino).cloned().unwrap_or_default(),
        ))
    }
}

impl FileSystem for CrashFs {
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>> {
        let mut s = self.state.lock();
        let ino = match s.lookup(path)? {
            Some(Node::File(ino)) => ino,
            Some(Node::Dir(_)) => {
                return Err(Error::corrupted(path, "not a regular file (a directory)"));
            }
            None if mode == OpenMode::Read => {
                return Err(Error::NotFound(format!(
                    "open {}: no such file",
                    path.display()
                )));
            }
            None => {
                let (dir, name) = s.parent(path)?;
                let ino = s.new_ino();
                s.files.insert(ino, Vec::new());
                s.link(dir, name, Node::File(ino));
                ino
            }
        };
        if mode == OpenMode::Truncate {
            s.files.insert(ino, Vec::new());
            s.pending.push(Pending::SetLen { ino, len: 0 });
        }
        Ok(Arc::new(CrashFile {
            fs: self.clone(),
            ino,
            path: path.to_path_buf(),
            writable: mode != OpenMode::Read,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut s = self.state.lock();
        let (fd, fname) = s.parent(from)?;
        let (td, tname) = s.parent(to)?;
        let node = s
            .dirs
            .get(&fd)
            .and_then(|e| e.get(&fname))
            .copied()
            .ok_or_else(|| Error::NotFound(format!("rename {}: no such file", from.display())))?;
        if let Some(e) = s.dirs.get_mut(&fd) {
            e.remove(&fname);
        }
        s.dirs.entry(td).or_default().insert(tname.clone(), node);
        s.pending.push(Pending::Rename {
            from_dir: fd,
            from: fname,
            to_dir: td,
            to: tname,
            node,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut s = self.state.lock();
        let (d, name) = match s.parent(path) {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        s.unlink(d, &name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let mut s = self.state.lock();
        let mut dir = ROOT;
        for name in State::names(path)? {
            dir = match s.dirs.get(&dir).and_then(|e| e.get(&name)).copied() {
                Some(Node::Dir(d)) => d,
                Some(Node::File(_)) => {
                    return Err(Error::Io(format!(
                        "create directory {}: a file is in the way",
                        path.display()
                    )));
                }
                None => {
                    let d = s.new_ino();
                    s.dirs.insert(d, BTreeMap::new());
                    s.link(dir, name, Node::Dir(d));
                    d
                }
            };
        }
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let s = self.state.lock();
        match s.lookup(path)? {
            Some(Node::Dir(d)) => Ok(s
                .dirs
                .get(&d)
                .map(|e| {
                    e.iter()
                        .map(|(name, n)| DirEntry {
                            name: name.clone(),
                            is_dir: matches!(n, Node::Dir(_)),
                        })
                        .collect()
                })
                .unwrap_or_default()),
            _ => Err(Error::NotFound(format!(
                "list {}: no such directory",
                path.display()
            ))),
        }
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.count_sync();
        let mut s = self.state.lock();
        match s.lookup(path)? {
            Some(Node::Dir(d)) => {
                s.sync_dir(d);
                Ok(())
            }
            _ => Err(Error::NotFound(format!(
                "fsync directory {}: no such directory",
                path.display()
            ))),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        Ok(self.state.lock().lookup(path)?.is_some())
    }

    fn stamp(&self, path: &Path) -> Result<Option<super::FileStamp>> {
        let s = self.state.lock();
        // The model has no clock: the contents' checksum stands in for the
        // change time, and a stamp is never settled (callers re-read).
        Ok(match s.lookup(path)? {
            Some(Node::File(ino)) => s.files.get(&ino).map(|data| {
                let crc = u64::from(super::frame::crc(&[data]));
                super::FileStamp {
                    id: [0, ino, data.len() as u64, crc],
                    settled: false,
                }
            }),
            Some(Node::Dir(ino)) => Some(super::FileStamp {
                id: [1, ino, 0, 0],
                settled: false,
            }),
            None => None,
        })
    }

    fn is_dir(&self, path: &Path) -> Result<bool> {
        Ok(matches!(
            self.state.lock().lookup(path)?,
            Some(Node::Dir(_))
        ))
    }

    fn lock(&self, path: &Path) -> Result<LockFile> {
        // flock needs a real file: one per (directory inode, name), so a
        // store directory moved away (into a quarantine) takes its lock with
        // it and a new directory at the same path has a lock of its own, as
        // on a real file system.
        let (dir, name) = self.state.lock().parent(path)?;
        LockFile::acquire(&self.locks.path().join(format!("{dir}-{name}")))
    }

    fn fsync_enabled(&self) -> bool {
        true
    }

    fn open_root_dir(&self, path: &Path) -> std::io::Result<super::beneath::Dir> {
        self.dir_at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(fs: &CrashFs, p: &str) -> Option<Vec<u8>> {
        let f = fs.open(Path::new(p), OpenMode::Read).ok()?;
        let mut b = vec![0u8; f.len().ok()? as usize];
        f.read_exact_at(&mut b, 0).ok()?;
        Some(b)
    }

    #[test]
    fn only_synced_data_and_entries_survive_nothing() {
        let fs = CrashFs::new().unwrap();
        fs.create_dir_all(Path::new("/s")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let f = fs.open(Path::new("/s/a"), OpenMode::ReadWrite).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync().unwrap();
        // The file's data is durable, its directory entry is not.
        let lost = CrashFs::power_cut(&fs.snapshot(), CutMode::Nothing, 1).unwrap();
        assert_eq!(read(&lost, "/s/a"), None);
        assert!(lost.is_dir(Path::new("/s")).unwrap());
        fs.sync_dir(Path::new("/s")).unwrap();
        f.write_all_at(b"HELLO world", 0).unwrap();
        let snap = fs.snapshot();
        let cut = CrashFs::power_cut(&snap, CutMode::Nothing, 1).unwrap();
        assert_eq!(read(&cut, "/s/a").unwrap(), b"hello");
        let all = CrashFs::power_cut(&snap, CutMode::Everything, 1).unwrap();
        assert_eq!(read(&all, "/s/a").unwrap(), b"HELLO world");
        let torn = CrashFs::power_cut(&snap, CutMode::TornLastWrite, 7).unwrap();
        let t = read(&torn, "/s/a").unwrap();
        assert!(t.len() >= 5 && t.len() < 11, "{t:?}");
    }

    #[test]
    fn a_rename_is_durable_only_with_its_directory() {
        let fs = CrashFs::new().unwrap();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let f = fs.open(Path::new("/d/v"), OpenMode::Truncate).unwrap();
        f.write_all_at(b"old", 0).unwrap();
        f.sync().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let t = fs.open(Path::new("/d/v.tmp"), OpenMode::Truncate).unwrap();
        t.write_all_at(b"new", 0).unwrap();
        t.sync().unwrap();
        fs.rename(Path::new("/d/v.tmp"), Path::new("/d/v")).unwrap();
        let before = CrashFs::power_cut(&fs.snapshot(), CutMode::Nothing, 1).unwrap();
        assert_eq!(read(&before, "/d/v").unwrap(), b"old");
        fs.sync_dir(Path::new("/d")).unwrap();
        let after = CrashFs::power_cut(&fs.snapshot(), CutMode::Nothing, 1).unwrap();
        assert_eq!(read(&after, "/d/v").unwrap(), b"new");
        assert!(!after.exists(Path::new("/d/v.tmp")).unwrap());
    }

    #[test]
    fn a_rename_is_never_half_done() {
        let fs = CrashFs::new().unwrap();
        fs.create_dir_all(Path::new("/d/sub")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let f = fs.open(Path::new("/d/a.tmp"), OpenMode::Truncate).unwrap();
        f.write_all_at(b"v", 0).unwrap();
        f.sync().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        fs.rename(Path::new("/d/a.tmp"), Path::new("/d/a")).unwrap();
        fs.rename(Path::new("/d/a"), Path::new("/d/sub/b")).unwrap();
        let snap = fs.snapshot();
        for mode in CutMode::ALL {
            for seed in 1..20 {
                let c = CrashFs::power_cut(&snap, mode, seed).unwrap();
                let names = ["/d/a.tmp", "/d/a", "/d/sub/b"]
                    .iter()
                    .filter(|p| read(&c, p).is_some())
                    .count();
                assert_eq!(names, 1, "{mode:?} {seed}: {}", c.tree());
            }
        }
        // The destination's fsync makes the cross-directory rename durable.
        fs.sync_dir(Path::new("/d/sub")).unwrap();
        let c = CrashFs::power_cut(&fs.snapshot(), CutMode::Nothing, 1).unwrap();
        assert_eq!(read(&c, "/d/sub/b").unwrap(), b"v");
        assert!(read(&c, "/d/a").is_none() && read(&c, "/d/a.tmp").is_none());
    }

    #[test]
    fn cut_before_sync_records_the_state_then() {
        let fs = CrashFs::new().unwrap();
        fs.cut_before_sync(1);
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap(); // sync 0
        let f = fs.open(Path::new("/d/x"), OpenMode::ReadWrite).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync().unwrap(); // sync 1: recorded before it
        fs.sync_dir(Path::new("/d")).unwrap();
        let snap = fs.taken().unwrap();
        assert_eq!(snap.syncs_before, 1);
        let all = CrashFs::power_cut(&snap, CutMode::Everything, 1).unwrap();
        assert_eq!(read(&all, "/d/x").unwrap(), b"x");
        let none = CrashFs::power_cut(&snap, CutMode::Nothing, 1).unwrap();
        assert!(none.is_dir(Path::new("/d")).unwrap());
        assert_eq!(read(&none, "/d/x"), None);
    }
}
