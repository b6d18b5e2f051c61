//! Batches: optimistic, serialisable transactions over the store.
//!
//! A batch buffers its writes (`set`, `remove`) in order; its reads see those
//! writes over the store. Whenever a read has to look at the store, the batch
//! records an *observation*: which probe it ran on which key and a 128-bit
//! hash (xxh3) of the outcome:
//!
//! * `Kind`: what the key is (absent / value / dictionary) — `exists`, and
//!   the checks that a written key's parents are not values;
//! * `Get`: the value's bytes, or which error (`get`);
//! * `List`: the sorted entries, or which error (`list`);
//! * `Stat`: kind, size, mtime and inode of a key the batch writes, so that
//!   a key changed by someone else after the batch touched it conflicts even
//!   if the batch never read it.
//!
//! **State as of begin.** Every writer of the store (any handle, thread or
//! process using this library) bumps the counter in `.tzs-generation` under
//! the store lock *before* changing anything. A batch notes the counter at
//! begin; after each explicit read (`exists`, `get`, `list`) that looked at
//! the store it reads the counter again. If it moved, that read may show a
//! change made after begin, and the batch is marked stale: it can never
//! commit. So the reads of a committed batch are exactly the state as of its
//! begin. (This is coarse: an unrelated write between begin and a later read
//! also makes the batch retry. Begin close to the reads.)
//!
//! **Conflict.** At commit, under the store lock, a stale batch is
//! `Conflict`; otherwise each observation is run again and if any outcome
//! differs, the commit is `Conflict` and writes nothing. Together: no key
//! the batch read changed between its begin and its commit, and no key it
//! wrote changed between the moment it buffered the write and the commit,
//! so the batch behaves as if it ran alone at its commit point
//! (serialisable). Outcomes are compared by content, so the re-check also
//! catches changes by other programs (which do not bump the counter); a
//! change undone before the commit (A→B→A) is, correctly, not a conflict for
//! the reads. The `Stat` probe of a blind write is a best-effort "changed
//! since" check (inode numbers may be reused) and is not needed for
//! serialisability.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::io::beneath::Stat;
use crate::kv::journal::{CHECKPOINT_BYTES, Op};
use crate::kv::key::Key;
use crate::kv::tree::{DirCache, kind_of};
use crate::kv::{Entry, Inner, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    Kind,
    Get,
    List,
    Stat,
}

/// An open batch. Dropping it (or [`Batch::abort`]) discards its writes.
#[derive(Debug)]
pub struct Batch {
    inner: Arc<Inner>,
    ops: Vec<Op>,
    /// Index of the last op on each exact key.
    last_op: HashMap<String, usize>,
    /// Index of the last set strictly below each key.
    last_set_below: HashMap<String, usize>,
    /// Outcome hashes by key, indexed by `Probe`.
    seen: HashMap<Key, [Option<u128>; 4]>,
    stale: bool,
    /// The store's write generation at begin.
    begin: u64,
    /// Store probes made so far (to know whether a read looked at the store).
    probes: u64,
    /// Lookup shortcuts (boxed: the C layer keeps batches inline).
    local: Box<Shortcuts>,
}

#[derive(Debug, Default)]
struct Shortcuts {
    /// Parent directories of the keys probed by `store_kind`. A descriptor
    /// may outlive a rename of its directory by another writer; that is
    /// harmless because every observation is run again, resolved afresh,
    /// at commit, and explicit reads are also checked against the
    /// generation.
    dirs: DirCache,
    /// The parent path whose ancestors `set` last found to be no values,
    /// and the number of ops buffered then.
    parents_checked: Option<(String, usize)>,
}

/// The hash of a probe's outcome. Errors that describe the key (absent,
/// wrong kind) are outcomes; I/O errors are returned.
fn outcome<T>(r: &Result<T>, ok: impl FnOnce(&T) -> u128) -> Result<u128> {
    let tag: u128 = match r {
        Ok(v) => return Ok(ok(v)),
        Err(Error::NotFound(_)) => 1,
        Err(Error::ValueExpected(_)) => 2,
        Err(Error::DictionaryExpected(_)) => 3,
        Err(e) => return Err(e.clone()),
    };
    Ok(tag)
}

fn entries_hash(entries: &[Entry]) -> u128 {
    let mut buf = Vec::new();
    for (name, kind) in entries {
        buf.extend_from_slice(&(name.len() as u32).to_be_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.push(*kind as u8);
    }
    xxh3_128(&buf) | 1 << 127
}

fn kind_hash(k: Option<Kind>) -> u128 {
    k.map_or(0, |k| k as u128 + 16)
}

fn stat_hash(st: &Stat) -> u128 {
    let mut b = Vec::with_capacity(40);
    b.push(st.kind as u8);
    b.extend_from_slice(&st.size.to_be_bytes());
    b.extend_from_slice(&st.mtime_sec.to_be_bytes());
    b.extend_from_slice(&st.mtime_nsec.to_be_bytes());
    b.extend_from_slice(&st.ino.to_be_bytes());
    xxh3_128(&b) | 1 << 127
}

impl Inner {
    /// Runs `probe` on the store; returns its outcome's hash.
    fn probe(&self, key: &Key, probe: Probe) -> Result<u128> {
        self.probe_cached(key, probe, &mut DirCache::default())
    }

    /// [`Inner::probe`], resolving parents through `cache` (at commit, under
    /// the lock, where nothing else of this library changes the tree).
    fn probe_cached(&self, key: &Key, probe: Probe, cache: &mut DirCache) -> Result<u128> {
        let tree = &self.tree;
        match probe {
            Probe::Kind => Ok(kind_hash(tree.kind_cached(cache, key)?)),
            Probe::Get => outcome(&tree.get(key), |v| xxh3_128(v) | 1 << 127),
            Probe::List => outcome(&tree.list(key), |e| entries_hash(e)),
            Probe::Stat => {
                if key.is_root() {
                    return Ok(0);
                }
                let r = tree.stat_cached(cache, key, "batch");
                outcome(&r, stat_hash)
            }
        }
    }
}

impl Batch {
    pub(crate) fn new(inner: Arc<Inner>) -> Result<Batch> {
        let begin = inner.generation()?;
        Ok(Batch {
            inner,
            ops: Vec::new(),
            last_op: HashMap::new(),
            last_set_below: HashMap::new(),
            seen: HashMap::new(),
            stale: false,
            begin,
            probes: 0,
            local: Box::default(),
        })
    }

    /// After an explicit read that looked at the store: if anyone wrote
    /// since begin, what it returned may not be the state as of begin, so
    /// the batch must not commit.
    fn check_read_since(&mut self, probes_before: u64) {
        if self.probes != probes_before {
            match self.inner.generation() {
                Ok(g) if g == self.begin => {}
                _ => self.stale = true,
            }
        }
    }

    fn record(&mut self, key: &Key, probe: Probe, h: u128) {
        self.probes += 1;
        let slot = match self.seen.get_mut(key) {
            Some(probes) => &mut probes[probe as usize],
            None => &mut self.seen.entry(key.clone()).or_default()[probe as usize],
        };
        match slot {
            Some(old) if *old != h => self.stale = true,
            Some(_) => {}
            None => *slot = Some(h),
        }
    }

    fn observe(&mut self, key: &Key, probe: Probe) -> Result<u128> {
        let h = {
            let _r = self.inner.apply.read();
            self.inner.probe(key, probe)?
        };
        self.record(key, probe, h);
        Ok(h)
    }

    /// The index of the last buffered op whose key is `key` or an ancestor.
    fn covering(&self, key: &Key) -> Option<usize> {
        self.covering_path(key.path())
    }

    /// [`Batch::covering`] of the key whose path is `path`.
    fn covering_path(&self, path: &str) -> Option<usize> {
        let mut best = self.last_op.get(path).copied();
        let ancestors = path.match_indices('/').rev().map(|(i, _)| &path[..i]);
        for p in ancestors.chain((!path.is_empty()).then_some("")) {
            if let Some(&i) = self.last_op.get(p) {
                best = best.max(Some(i));
            }
        }
        best
    }

    /// True if an op from `from` on sets a key strictly below `key`.
    fn sets_below(&self, key: &Key, from: usize) -> bool {
        self.last_set_below
            .get(key.path())
            .is_some_and(|&i| i >= from)
    }

    fn push(&mut self, op: Op) {
        let i = self.ops.len();
        let key = op.key();
        if let Op::Set(..) = op {
            for p in key.ancestor_paths() {
                match self.last_set_below.get_mut(p) {
                    Some(at) => *at = i,
                    None => {
                        self.last_set_below.insert(p.to_string(), i);
                    }
                }
            }
        }
        self.last_op.insert(key.path().to_string(), i);
        self.ops.push(op);
    }

    /// The kind of `key` in the store, probed once per batch; with
    /// `with_stat` (keys the batch writes) the same `lstat` also records the
    /// `Stat` observation. (Not for parents: a dictionary's mtime changes
    /// whenever anyone adds an entry, which would be a false conflict.)
    fn store_kind(&mut self, key: &Key, with_stat: bool) -> Result<Option<Kind>> {
        let seen = self.seen.get(key);
        let have_stat = seen.is_some_and(|s| s[Probe::Stat as usize].is_some());
        if let Some(h) = seen.and_then(|s| s[Probe::Kind as usize])
            && (have_stat || !with_stat)
        {
            // Counts as a look at the store: the cached outcome may come from
            // an implicit probe that was not checked against the generation.
            self.probes += 1;
            return Ok(match h {
                17 => Some(Kind::Value),
                18 => Some(Kind::Dictionary),
                _ => None,
            });
        }
        if key.is_root() {
            return Ok(Some(Kind::Dictionary));
        }
        let r = {
            let _r = self.inner.apply.read();
            self.inner
                .tree
                .stat_cached(&mut self.local.dirs, key, "batch")
        };
        let kind = match &r {
            Ok(st) => Some(kind_of(st, key)?),
            Err(Error::NotFound(_)) | Err(Error::DictionaryExpected(_)) => None,
            Err(e) => return Err(e.clone()),
        };
        self.record(key, Probe::Kind, kind_hash(kind));
        if with_stat {
            self.record(key, Probe::Stat, outcome(&r, stat_hash)?);
        }
        Ok(kind)
    }

    fn view_kind(&mut self, key: &Key) -> Result<Option<Kind>> {
        if key.is_root() {
            return Ok(Some(Kind::Dictionary));
        }
        let (from, base) = match self.covering(key) {
            Some(i) => match &self.ops[i] {
                Op::Set(k, _) => return Ok((k == key).then_some(Kind::Value)),
                Op::Remove(_) => (i + 1, None),
            },
            None => (0, self.store_kind(key, false)?),
        };
        if base.is_none() && self.sets_below(key, from) {
            return Ok(Some(Kind::Dictionary));
        }
        Ok(base)
    }

    /// The error for reaching the absent `key`: `DictionaryExpected` if an
    /// ancestor is a value in this batch's view (as the store's ENOTDIR),
    /// else `NotFound`.
    fn absent(&mut self, key: &Key, op: &str) -> Result<Error> {
        let mut ancestors = Vec::new();
        let mut p = key.parent();
        while !p.is_root() {
            let up = p.parent();
            ancestors.push(p);
            p = up;
        }
        for p in ancestors.into_iter().rev() {
            match self.view_kind(&p)? {
                Some(Kind::Value) => {
                    return Ok(Error::DictionaryExpected(format!(
                        "{op} {key}: {p} is a value, not a dictionary"
                    )));
                }
                Some(Kind::Dictionary) => {}
                None => break,
            }
        }
        Ok(Error::NotFound(format!("{op} {key}: not found")))
    }

    /// What `key` is in this batch's view.
    pub fn exists(&mut self, key: &str) -> Result<Option<Kind>> {
        let key = Key::parse(key)?;
        let before = self.probes;
        let r = self.view_kind(&key);
        self.check_read_since(before);
        r
    }

    /// The value at `key` in this batch's view.
    pub fn get(&mut self, key: &str) -> Result<Vec<u8>> {
        let key = Key::parse(key)?;
        let before = self.probes;
        let r = self.get_key(&key);
        self.check_read_since(before);
        r
    }

    fn get_key(&mut self, key: &Key) -> Result<Vec<u8>> {
        let key = key.clone();
        if key.is_root() {
            return Err(Error::ValueExpected(
                "get /: the root is a dictionary".into(),
            ));
        }
        let dict = || Error::ValueExpected(format!("get {key}: a dictionary, not a value"));
        match self.covering(&key) {
            Some(i) => match &self.ops[i] {
                Op::Set(k, v) if *k == key => Ok(v.clone()),
                Op::Set(k, _) => Err(Error::DictionaryExpected(format!(
                    "get {key}: {k} is a value, not a dictionary"
                ))),
                Op::Remove(_) if self.sets_below(&key, i + 1) => Err(dict()),
                Op::Remove(_) => Err(self.absent(&key, "get")?),
            },
            None if self.sets_below(&key, 0) => Err(dict()),
            None => {
                let r = {
                    let _r = self.inner.apply.read();
                    self.inner.tree.get(&key)
                };
                let h = outcome(&r, |v| xxh3_128(v) | 1 << 127)?;
                self.record(&key, Probe::Get, h);
                r
            }
        }
    }

    /// The entries of the dictionary at `key` in this batch's view, sorted.
    pub fn list(&mut self, key: &str) -> Result<Vec<Entry>> {
        let key = Key::parse(key)?;
        let before = self.probes;
        let r = self.list_key(&key);
        self.check_read_since(before);
        r
    }

    fn list_key(&mut self, key: &Key) -> Result<Vec<Entry>> {
        let key = key.clone();
        let (from, mut map): (usize, Option<BTreeMap<String, Kind>>) = match self.covering(&key) {
            Some(i) => match &self.ops[i] {
                Op::Set(k, _) => {
                    return Err(Error::DictionaryExpected(format!(
                        "list {key}: {k} is a value, not a dictionary"
                    )));
                }
                Op::Remove(_) => (i + 1, None),
            },
            None => {
                let r = {
                    let _r = self.inner.apply.read();
                    self.inner.tree.list(&key)
                };
                let h = outcome(&r, |e| entries_hash(e))?;
                self.record(&key, Probe::List, h);
                match r {
                    Ok(entries) => (0, Some(entries.into_iter().collect())),
                    Err(Error::NotFound(_)) => (0, None),
                    Err(e) => return Err(e),
                }
            }
        };
        let d = key.depth();
        for op in &self.ops[from..] {
            let k = op.key();
            if k.depth() <= d || !key.is_prefix_of(k) {
                continue;
            }
            let name = k.segments()[d].clone();
            match op {
                Op::Set(..) => {
                    let kind = if k.depth() == d + 1 {
                        Kind::Value
                    } else {
                        Kind::Dictionary
                    };
                    map.get_or_insert_with(BTreeMap::new).insert(name, kind);
                }
                Op::Remove(_) if k.depth() == d + 1 => {
                    if let Some(m) = map.as_mut() {
                        m.remove(&name);
                    }
                }
                Op::Remove(_) => {}
            }
        }
        match map {
            Some(m) => Ok(m.into_iter().collect()),
            None => Err(self.absent(&key, "list")?),
        }
    }

    /// Records that the batch writes `key`, observing its current state.
    fn touch(&mut self, key: &Key) -> Result<()> {
        if self.covering(key).is_none() {
            self.store_kind(key, true)?;
        }
        Ok(())
    }

    /// Buffers `key := value`. Checked against the batch's view:
    /// `ValueExpected` if `key` is a dictionary (or the root),
    /// `DictionaryExpected` if a parent is a value.
    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let key = Key::parse(key)?;
        if key.is_root() {
            return Err(Error::ValueExpected(
                "set /: the root is a dictionary".into(),
            ));
        }
        // Consecutive sets in one dictionary check its parents once: their
        // kinds can only change through an op on one of them.
        let pp = key.parent_path();
        let checked = match &self.local.parents_checked {
            Some((path, at)) => path == pp && self.covering_path(pp).is_none_or(|i| i < *at),
            None => false,
        };
        if !checked {
            self.check_parents(&key)?;
            self.local.parents_checked = Some((pp.to_string(), self.ops.len()));
        }
        self.touch(&key)?;
        if self.view_kind(&key)? == Some(Kind::Dictionary) {
            return Err(Error::ValueExpected(format!(
                "set {key}: a dictionary, not a value"
            )));
        }
        self.push(Op::Set(key, value.to_vec()));
        Ok(())
    }

    /// `DictionaryExpected` if a parent of `key` is a value in this batch's
    /// view.
    fn check_parents(&mut self, key: &Key) -> Result<()> {
        let mut parents = Vec::with_capacity(key.depth());
        let mut p = key.parent();
        while !p.is_root() {
            let up = p.parent();
            parents.push(p);
            p = up;
        }
        for p in parents.into_iter().rev() {
            match self.view_kind(&p)? {
                Some(Kind::Value) => {
                    return Err(Error::DictionaryExpected(format!(
                        "set {key}: {p} is a value, not a dictionary"
                    )));
                }
                Some(Kind::Dictionary) => {}
                // Missing: this and every deeper parent will be created.
                None => break,
            }
        }
        Ok(())
    }

    /// Buffers the removal of `key` (a value or a whole dictionary; absent
    /// is fine). Removing the root removes every entry.
    pub fn remove(&mut self, key: &str) -> Result<()> {
        let key = Key::parse(key)?;
        if key.is_root() {
            // Everything now present goes: observe the listing.
            let names = self.list_key(&key)?;
            for (name, _) in names {
                let child = key.child(&name)?;
                self.touch(&child)?;
                self.push(Op::Remove(child));
            }
            return Ok(());
        }
        if self.view_kind(&key)? == Some(Kind::Dictionary) && self.covering(&key).is_none() {
            self.observe(&key, Probe::List)?;
        }
        self.touch(&key)?;
        self.push(Op::Remove(key));
        Ok(())
    }

    /// The buffered writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Discards the batch.
    pub fn abort(self) {}

    /// Applies every buffered write atomically and durably, or none:
    /// `Conflict` if an observation no longer holds (see the module doc);
    /// `NoSpace`/`Io` before the commit point leave the store unchanged.
    pub fn commit(self) -> Result<()> {
        let inner = self.inner.clone();
        let mut guard = inner.lock("commit")?;
        if self.stale {
            return Err(Error::Conflict(format!(
                "batch on {}: the store changed between its reads",
                inner.tree.path.display()
            )));
        }
        // Parents resolved here are reused by the staging and apply phases.
        let mut cache = DirCache::default();
        // In key order, so that keys of one dictionary share its descriptor.
        let mut seen: Vec<(&Key, Probe, u128)> = Vec::with_capacity(self.seen.len());
        for (key, probes) in &self.seen {
            for probe in [Probe::Kind, Probe::Get, Probe::List, Probe::Stat] {
                if let Some(h) = probes[probe as usize] {
                    seen.push((key, probe, h));
                }
            }
        }
        seen.sort_unstable_by(|a, b| a.0.path().cmp(b.0.path()).then(a.1.cmp(&b.1)));
        for (key, probe, h) in seen {
            if inner.probe_cached(key, probe, &mut cache)? != h {
                return Err(Error::Conflict(format!(
                    "batch on {}: {key} changed since the batch read it",
                    inner.tree.path.display()
                )));
            }
        }
        if self.ops.is_empty() {
            return Ok(());
        }
        // Stage the values first: running out of space is reported here,
        // before the commit point, with nothing changed.
        let staged = inner.tree.stage_all(&self.ops)?;
        let end = match inner.journal(&guard).append(guard.end, &self.ops) {
            Ok(end) => end,
            Err(e) => {
                inner.tree.discard_all(&staged);
                return Err(e);
            }
        };
        // Committed. A failure from here on leaves the record for the next
        // writer or open to roll forward.
        {
            let _a = inner.apply.write();
            inner.apply_ops(&self.ops, Some(&staged), &mut cache)?;
        }
        inner.set_journal_end(end)?;
        guard.end = end;
        if end > CHECKPOINT_BYTES {
            inner.checkpoint(&mut guard)?;
        }
        Ok(())
    }
}
