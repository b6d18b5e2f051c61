//! The key/value store (Mirage_kv RO/RW as mirage-kv-unix implements it,
//! with Mirage_kv 6's edge semantics and real atomic batches). See docs/design.md.
//!
//! A value is a regular file below the root directory, a dictionary a
//! directory; keys are validated ([`key`]) and resolved beneath the root's
//! directory fd without following links (the private `tree` module), so no key reaches outside
//! the root. Names starting with `.tzs` are the store's own: `.tzs-lock`
//! (commit lock), `.tzs-journal` (batch redo log), `.tzs-generation`
//! (write counter, and the journal's end as applied), `.tzs-tmp/` (staged
//! values and removed dictionaries).
//!
//! ```
//! use tzstore::OpenOptions;
//! use tzstore::kv::{Kind, Kv};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let kv = Kv::open(dir.path(), &OpenOptions::read_write())?;
//! kv.set("/config/network", b"mainnet")?; // durable; creates /config
//! assert_eq!(kv.get("/config/network")?, b"mainnet");
//! assert_eq!(kv.exists("/config")?, Some(Kind::Dictionary));
//! assert_eq!(kv.list("/config")?, vec![("network".to_string(), Kind::Value)]);
//! // A batch: an optimistic transaction, rerun on a conflict.
//! kv.batch(13, |b| {
//!     let old = b.get("/config/network")?;
//!     b.set("/config/previous", &old)?;
//!     b.set("/config/network", b"ghostnet")
//! })?;
//! assert_eq!(kv.get("/config/previous")?, b"mainnet");
//! assert!(kv.get("/missing").is_err()); // NotFound
//! # Ok(())
//! # }
//! ```
//!
//! **Durability.** `set`, `set_partial`, `allocate`, `remove` and `rename`
//! are durable on return: a value is written to a staged file, fsynced,
//! renamed over its key, and the directory is fsynced (`TZS_NO_FSYNC`
//! skips the syncs).
//!
//! **Concurrency.** Any number of handles, in any threads and processes, may
//! open the same root read-write. Every write (and every batch commit) holds
//! the store lock: a per-handle mutex plus an exclusive `flock` on
//! `.tzs-lock`, taken only for the duration of that write, and bumps the
//! counter in `.tzs-generation` before changing anything. Reads take no
//! file lock; within one handle they never observe a batch half-applied
//! (they share a read/write lock with commits), while readers in other
//! handles or processes may see a commit in progress, never a torn value.
//!
//! **Batches** ([`Batch`]) are optimistic transactions; see `batch.rs` for
//! the exact definition of a conflict. A commit stages every value (no
//! sync), appends its record (every op and value) to the journal and
//! fdatasyncs it (the commit point, one sync for the whole batch), then
//! renames the values into place without syncing the tree: the journal
//! holds them durably. The tree is made durable by a *checkpoint* (`syncfs`
//! of the root's file system, then the journal is emptied): when the
//! journal outgrows 8 MiB, before any write that is not a batch, and at
//! open. So a stream of batches pays one fdatasync each plus one `syncfs`
//! per 8 MiB, never one fsync per file (see `journal.rs`). A crash after
//! the commit point is rolled forward by the next writer or the next
//! read-write open, whichever comes first; before that point the batch never
//! happened. (A read-only handle never writes, so until then it may see such
//! a batch half-applied.) A batch's values are held in memory until commit
//! and the journal record is limited to [`journal::MAX_RECORD`] (1 GiB).
//!
//! **Depth.** A key has at most [`key::MAX_DEPTH`] segments (256); a longer
//! one is `InvalidArgument` in every call. Walks of the tree (`digest`,
//! removal, `check`) are iterative and keep one descriptor per level, so a
//! deeper tree made by other means (a `rename` of a dictionary, files put
//! there by hand) costs no stack: `digest` refuses it with
//! `InvalidArgument`, removal flattens it first.
//!
//! **Damage.** Values are plain files without checksums, so the store cannot
//! tell a damaged value from a written one; what it can verify is its own
//! files. A read-write open verifies the whole journal before replaying it
//! and cuts only a torn tail (see `journal.rs`); any other damage to the
//! journal or to `.tzs-generation`, or something other than a regular file
//! (a directory, a FIFO) in place of `.tzs-lock`, `.tzs-journal` or
//! `.tzs-generation`, or other than a directory in place of `.tzs-tmp`, is
//! `Corrupted` naming the file (and the offset), with nothing changed. One
//! exception: a `.tzs-generation` that does not decode beside a journal
//! whose every record reads back whole is rewritten by the read-write open
//! (a power cut can tear its unsynced in-place rewrite, and with a whole
//! journal nothing depends on what it held). A
//! FIFO, socket, device or link where a value would be is never opened
//! (`InvalidArgument` for its key, omitted by `list`). [`Kv::check`]
//! reports all of this without opening the store and, with repair, moves
//! the damaged files aside into `.tzs-quarantine/`, which the store never
//! lists.

mod batch;
mod check;
mod digest;
pub mod generation;
pub mod journal;
pub mod key;
mod tree;
mod write;

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};

pub use batch::Batch;
pub use digest::days_ps;
pub use journal::Op;
pub use key::Key;

use crate::error::{Error, Result};
use crate::io::beneath;
use crate::options::OpenOptions;
use generation::{GENERATION, State};
use journal::{JOURNAL, Journal};
use tree::{DirCache, Tree};
use write::{Durability, TMP_DIR};

/// Retries of [`Kv::batch`] by default (as Mirage_kv 2..5).
pub const DEFAULT_RETRIES: u32 = 13;

pub(crate) const LOCK: &str = ".tzs-lock";

/// What a key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A value (a file).
    Value = 1,
    /// A dictionary (a directory).
    Dictionary = 2,
}

/// A dictionary entry: its name (one segment) and kind.
pub type Entry = (String, Kind);

#[derive(Debug)]
struct Writer {
    lock: beneath::FileAt,
    journal: Journal,
}

#[derive(Debug)]
pub(crate) struct Inner {
    tree: Tree,
    read_only: bool,
    writer: Option<Mutex<Writer>>,
    /// `.tzs-generation`: a counter every writer bumps (under the lock)
    /// before changing the tree, so a batch can tell whether anything was
    /// written since it began (read-write handles only).
    generation: Option<beneath::FileAt>,
    /// Reads share it; a commit's apply phase takes it exclusively.
    apply: RwLock<()>,
}

/// Held while writing: the handle's writer mutex and the file lock.
pub(crate) struct WriteGuard<'a> {
    w: MutexGuard<'a, Writer>,
    /// The journal's end: where the next record goes.
    pub(crate) end: u64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Closing the handle or process releases it too.
        let _ = self.w.lock.unlock();
    }
}

impl Inner {
    fn check_writable(&self, op: &str) -> Result<&Mutex<Writer>> {
        self.writer.as_ref().ok_or_else(|| {
            Error::ReadOnly(format!(
                "{op}: kv store {} was opened read-only",
                self.tree.path.display()
            ))
        })
    }

    /// Takes the store lock and rolls forward the batches a crashed writer
    /// committed but did not apply.
    pub(crate) fn lock(&self, op: &str) -> Result<WriteGuard<'_>> {
        self.lock_replaying(op, false)
    }

    /// Takes the store lock for a write that is not a batch: such a write
    /// is not journaled, so the journal is checkpointed first (otherwise a
    /// replay after a crash could put older values back over it).
    pub(crate) fn lock_plain(&self, op: &str) -> Result<WriteGuard<'_>> {
        let mut guard = self.lock(op)?;
        if guard.end > 0 {
            self.checkpoint(&mut guard)?;
        }
        Ok(guard)
    }

    /// [`Inner::lock`]; with `all` (at open, when the tree may have lost
    /// unsynced changes) every record is replayed, not only those past
    /// the end last applied.
    fn lock_replaying(&self, op: &str, all: bool) -> Result<WriteGuard<'_>> {
        let w = self.check_writable(op)?.lock();
        w.lock
            .lock_exclusive()
            .map_err(|e| Error::io("lock", &self.tree.path.join(LOCK), e))?;
        let mut guard = WriteGuard { w, end: 0 };
        // `None` before the first write ever (then the journal must be
        // empty: see `generation.rs`).
        let applied = match self.state_opt() {
            Ok(s) => s.map(|s| s.journal_end),
            Err(Error::Corrupted(why)) if all => Some(self.recover_generation(&guard, why)?),
            Err(e) => return Err(e),
        };
        let from = if all { 0 } else { applied.unwrap_or(0) };
        // Every record is verified before the first is applied (and before
        // the generation is bumped): on damage nothing is changed.
        let scan = guard.w.journal.verify(from, applied)?;
        self.bump_generation()?;
        let end = scan.end;
        if scan.records > 0 {
            let _a = self.apply.write();
            let mut cache = DirCache::default();
            guard
                .w
                .journal
                .replay(from, end, |ops| self.apply_ops(&ops, None, &mut cache))?;
        }
        if scan.len != end {
            // A torn tail: the append of a commit that never returned.
            guard.w.journal.truncate(end)?;
        }
        if end != from || all {
            self.set_journal_end(end)?;
        }
        guard.end = end;
        Ok(guard)
    }

    /// At open, `.tzs-generation` does not decode (`why`): a power cut can
    /// tear its unsynced in-place rewrite (found by `tests/power_cut_kv.rs`,
    /// a cut before sync 5 of the short run with the last write torn).
    /// What it holds matters only for judging a bad journal record (torn
    /// tail or damage) and to live writers, of which there are none after a
    /// crash. So when every journal record reads back whole, the file is
    /// rewritten with a fresh counter and the journal's end (the open then
    /// replays every record, as always); otherwise it stays `Corrupted`.
    /// Returns the end recorded.
    fn recover_generation(&self, guard: &WriteGuard<'_>, why: String) -> Result<u64> {
        let damaged = Error::Corrupted(why);
        let scan = match guard.w.journal.verify(0, Some(0)) {
            Ok(scan) if scan.end == scan.len => scan,
            _ => return Err(damaged),
        };
        // Fresh, so that a batch begun at the lost value (only possible if
        // the file was damaged under a live handle) never matches it.
        let generation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        self.set_state(State {
            generation,
            journal_end: scan.end,
        })?;
        Ok(scan.end)
    }

    /// Makes the tree durable and empties the journal.
    pub(crate) fn checkpoint(&self, guard: &mut WriteGuard<'_>) -> Result<()> {
        if self.tree.fsync {
            self.tree
                .root
                .syncfs()
                .map_err(|e| Error::io("syncfs", &self.tree.path, e))?;
        }
        // Recorded (durably) first: a crash between the two then only
        // replays records again, never skips any, and the recorded end
        // never claims records the emptied journal no longer holds.
        self.set_journal_end(0)?;
        self.sync_generation()?;
        guard.end = 0;
        guard.w.journal.reset()
    }

    /// fdatasyncs `.tzs-generation` (read-write handles).
    fn sync_generation(&self) -> Result<()> {
        if let (Some(f), true) = (&self.generation, self.tree.fsync) {
            f.sync_data()
                .map_err(|e| Error::io("fsync", &self.tree.path.join(GENERATION), e))?;
        }
        Ok(())
    }

    /// Applies `ops` in order with forced semantics (journal apply/replay),
    /// using `staged[i]` as the file of the i-th op when given, and `cache`
    /// for parent directories (which this clears whenever a dictionary may
    /// go).
    pub(crate) fn apply_ops(
        &self,
        ops: &[Op],
        staged: Option<&[Option<String>]>,
        cache: &mut DirCache,
    ) -> Result<()> {
        cache.forget_missing();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Set(k, v) => {
                    let fresh;
                    let name = match staged.and_then(|s| s.get(i)).and_then(Option::as_deref) {
                        Some(n) => n,
                        None => {
                            fresh = self.tree.stage(k, v, Durability::Deferred)?;
                            &fresh
                        }
                    };
                    self.tree.install_forced(name, k, cache)?;
                }
                Op::Remove(k) => {
                    cache.clear();
                    self.tree.remove(k, Durability::Deferred)?;
                }
            }
        }
        Ok(())
    }

    /// The store's write generation (0 before the first write).
    pub(crate) fn generation(&self) -> Result<u64> {
        Ok(self.state()?.generation)
    }

    /// What `.tzs-generation` holds (all 0 without one: read-only, or
    /// never written).
    fn state(&self) -> Result<State> {
        Ok(self.state_opt()?.unwrap_or_default())
    }

    /// What `.tzs-generation` holds; `None` when it is empty or absent.
    fn state_opt(&self) -> Result<Option<State>> {
        match &self.generation {
            Some(f) => generation::read(f, &self.tree.path.join(GENERATION)),
            None => Ok(None),
        }
    }

    /// Rewrites `.tzs-generation`, if the store has one (under the lock).
    fn set_state(&self, s: State) -> Result<()> {
        if let Some(f) = &self.generation {
            f.write_all_at(&generation::encode(s), 0)
                .map_err(|e| Error::io("write", &self.tree.path.join(GENERATION), e))?;
        }
        Ok(())
    }

    /// Announces a write; called with the lock held, before any change.
    /// Not synced: it only orders writers and batches that are alive.
    fn bump_generation(&self) -> Result<()> {
        if self.generation.is_some() {
            let mut s = self.state()?;
            s.generation = s.generation.wrapping_add(1);
            self.set_state(s)?;
        }
        Ok(())
    }

    pub(crate) fn journal<'g>(&self, guard: &'g WriteGuard<'_>) -> &'g Journal {
        &guard.w.journal
    }

    /// Records the journal's end once its records are applied. Not synced:
    /// at open every record is replayed anyway.
    pub(crate) fn set_journal_end(&self, end: u64) -> Result<()> {
        if self.generation.is_some() {
            let mut s = self.state()?;
            s.journal_end = end;
            self.set_state(s)?;
        }
        Ok(())
    }
}

/// An open key/value store. `Send + Sync`: share it (e.g. in an `Arc`)
/// between threads.
#[derive(Debug, Clone)]
pub struct Kv {
    inner: Arc<Inner>,
}

/// The error of opening the store's own file or directory `name`: damage
/// when something else stands in its place.
fn own_file_error(root: &Path, name: &str, e: std::io::Error) -> Error {
    if beneath::is_not_regular(&e)
        || matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP))
    {
        return Error::corrupted(&root.join(name), e);
    }
    open_error(root, e)
}

pub(crate) fn open_error(root: &Path, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::NotFound(format!("kv root {}: {e}", root.display())),
        Some(libc::ENOTDIR) => {
            Error::invalid(format!("kv root {} is not a directory", root.display()))
        }
        _ => Error::io("open kv root", root, e),
    }
}

impl Kv {
    /// Opens the store rooted at the existing directory `root`. Files and
    /// directories already there are served as values and dictionaries. A
    /// read-write open creates the store's `.tzs*` files, rolls forward a
    /// batch interrupted by a crash and deletes staged leftovers.
    ///
    /// Errors: `InvalidArgument` (empty path, not a directory), `NotFound`,
    /// `Corrupted` (read-write: a damaged journal or generation file, or
    /// something other than a regular file in place of one of the store's
    /// files, named with the offset; nothing is changed: see
    /// [`Kv::check`]), `Io`, and those of the roll-forward.
    pub fn open(root: impl AsRef<Path>, opts: &OpenOptions) -> Result<Kv> {
        let root = root.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::invalid("kv root path is empty"));
        }
        let dir = opts
            .fs
            .open_root_dir(root)
            .map_err(|e| open_error(root, e))?;
        let fsync = opts.fs.fsync_enabled();
        let mut writer = None;
        let mut tmp = None;
        let mut generation = None;
        if !opts.read_only {
            let own = |name| dir.open_rw(name).map_err(|e| own_file_error(root, name, e));
            let lock = own(LOCK)?;
            let journal = own(JOURNAL)?;
            generation = Some(own(GENERATION)?);
            match dir.mkdir(TMP_DIR) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(open_error(root, e)),
            }
            tmp = Some(
                dir.open_dir(TMP_DIR)
                    .map_err(|e| own_file_error(root, TMP_DIR, e))?,
            );
            if fsync {
                dir.sync().map_err(|e| Error::io("fsync", root, e))?;
            }
            writer = Some(Mutex::new(Writer {
                lock,
                journal: Journal::new(journal, root.join(JOURNAL), fsync),
            }));
        }
        let inner = Inner {
            tree: Tree::new(dir, root, tmp, fsync),
            read_only: opts.read_only,
            writer,
            generation,
            apply: RwLock::new(()),
        };
        if !inner.read_only {
            let mut g = inner.lock_replaying("open", true)?;
            if g.end > 0 {
                inner.checkpoint(&mut g)?;
            } else {
                // Durable before any commit can put a record in the journal:
                // a power cut must never find records beside an empty
                // generation file, which is damage (see `generation.rs`).
                inner.sync_generation()?;
            }
            inner.tree.clear_tmp()?;
        }
        Ok(Kv {
            inner: Arc::new(inner),
        })
    }

    /// True for a read-only handle.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The root directory's path.
    pub fn root(&self) -> &Path {
        &self.inner.tree.path
    }

    /// What `key` is bound to, or `None`. The root is a dictionary; a key
    /// below a value is `None`.
    pub fn exists(&self, key: &str) -> Result<Option<Kind>> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.kind(&key)
    }

    /// The value at `key`. `NotFound`, `ValueExpected` (a dictionary),
    /// `DictionaryExpected` (a parent is a value).
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.get(&key)
    }

    /// Up to `length` bytes from `offset`: short or empty past the end.
    pub fn get_partial(&self, key: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.get_partial(&key, offset, length)
    }

    /// Size in bytes of the value at `key`.
    pub fn size(&self, key: &str) -> Result<u64> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.size(&key)
    }

    /// The entries (names and kinds) of the dictionary at `key`, sorted by
    /// name bytes. `NotFound`, `DictionaryExpected` (a value).
    pub fn list(&self, key: &str) -> Result<Vec<Entry>> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.list(&key)
    }

    /// `(days, picoseconds)` since the epoch; for a dictionary the latest of
    /// its direct entries (see `digest.rs`).
    pub fn last_modified(&self, key: &str) -> Result<(i64, u64)> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.last_modified(&key)
    }

    /// SHA-256 digest of a value, or of a dictionary's sorted entries (the
    /// encoding is documented in `digest.rs`).
    pub fn digest(&self, key: &str) -> Result<[u8; 32]> {
        let key = Key::parse(key)?;
        let _r = self.inner.apply.read();
        self.inner.tree.digest(&key)
    }

    /// Binds `key` to `value`, creating missing parent dictionaries; durable
    /// on return. `ValueExpected` if `key` is a dictionary (or the root),
    /// `DictionaryExpected` if a parent is a value, `NoSpace`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let key = Key::parse(key)?;
        let _g = self.inner.lock_plain("set")?;
        self.put(&key, value)
    }

    fn put(&self, key: &Key, value: &[u8]) -> Result<()> {
        if key.is_root() {
            return Err(Error::ValueExpected(
                "set /: the root is a dictionary".into(),
            ));
        }
        let tree = &self.inner.tree;
        let staged = tree.stage(key, value, Durability::Each)?;
        tree.install(&staged, key)
    }

    /// Writes `data` at `offset` of the value at `key`, keeping the bytes
    /// around it; an offset past the end appends, a missing key is created.
    /// Atomic and durable (the whole new value replaces the old one).
    pub fn set_partial(&self, key: &str, offset: u64, data: &[u8]) -> Result<()> {
        let key = Key::parse(key)?;
        let _g = self.inner.lock_plain("set_partial")?;
        let mut value = match self.inner.tree.get(&key) {
            Ok(v) => v,
            Err(Error::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(value.len());
        let end = at.saturating_add(data.len()).min(value.len());
        value.splice(at..end, data.iter().copied());
        self.put(&key, &value)
    }

    /// Removes `key`: a value, or a dictionary whole. A missing key is `Ok`;
    /// the root is emptied and stays usable. Durable on return.
    pub fn remove(&self, key: &str) -> Result<()> {
        let key = Key::parse(key)?;
        let _g = self.inner.lock_plain("remove")?;
        self.inner.tree.remove(&key, Durability::Each)
    }

    /// Renames `from` to `to`: a value replaces a value, onto an existing
    /// dictionary the source moves inside it, a dictionary moves whole.
    /// `NotFound` (missing source), `ValueExpected` (dictionary onto value),
    /// `KeyExists` (the entry inside the destination dictionary is a
    /// dictionary), `InvalidArgument` (the source is a segment-wise prefix
    /// of the destination, or the root). Durable on return.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let from = Key::parse(from)?;
        let to = Key::parse(to)?;
        let _g = self.inner.lock_plain("rename")?;
        self.inner.tree.rename(&from, &to)
    }

    /// Binds `key` to `size` zero bytes, their space reserved now.
    /// `KeyExists` if bound, `NoSpace`. Durable on return.
    pub fn allocate(&self, key: &str, size: u64) -> Result<()> {
        let key = Key::parse(key)?;
        let _g = self.inner.lock_plain("allocate")?;
        let tree = &self.inner.tree;
        if tree.kind(&key)?.is_some() {
            return Err(Error::KeyExists(format!("allocate {key}: already bound")));
        }
        let staged = tree.stage_zeroed(&key, size)?;
        tree.install(&staged, &key)
    }

    /// Starts a batch (see [`Batch`]). `ReadOnly` on a read-only handle.
    pub fn batch_begin(&self) -> Result<Batch> {
        self.inner.check_writable("batch_begin")?;
        Batch::new(self.inner.clone())
    }

    /// Runs `f` in a batch and commits it; on `Conflict` (from the commit or
    /// returned by `f`) runs `f` again in a fresh batch, up to `retries`
    /// more times, then returns `TooManyRetries`. Other errors are returned
    /// as they are (the batch is dropped, nothing is written).
    pub fn batch<T>(&self, retries: u32, mut f: impl FnMut(&mut Batch) -> Result<T>) -> Result<T> {
        for attempt in 0..=retries {
            if attempt > 0 {
                conflict_backoff(attempt);
            }
            let mut b = self.batch_begin()?;
            let out = match f(&mut b) {
                Ok(out) => out,
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            };
            match b.commit() {
                Ok(()) => return Ok(out),
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::TooManyRetries(format!(
            "batch on {} conflicted {} times",
            self.root().display(),
            u64::from(retries) + 1
        )))
    }
}

/// Waits a little before retrying a conflicted batch: a yield for the first
/// retries, then a sleep growing with each one (up to ~3 ms) with a jitter
/// that differs per thread, so batches contending for the same keys stop
/// colliding in lockstep (seen under valgrind's round-robin scheduling,
/// where one thread lost 1,000 conflicts in a row).
fn conflict_backoff(attempt: u32) {
    if attempt < 3 {
        std::thread::yield_now();
        return;
    }
    let cap_us = 50u64 << attempt.min(6);
    // Where this thread's stack lies: a per-thread seed with no allocation.
    let here = 0u8;
    let seed = (&here as *const u8 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt);
    let jitter_us = (seed >> 32) % cap_us;
    std::thread::sleep(std::time::Duration::from_micros(1 + jitter_us));
}
