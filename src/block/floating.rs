//! The floating block store (Octez `Floating_block_store`): an append-only
//! file of blocks in arrival order (any fork) plus an index
//! hash -> `offset u64 | n u8 | 12 x hash` (offset and predecessor list).
//!
//! Files in `dir`: `<KIND>_floating_block_store` and
//! `<KIND>_floating_block_index/`; the five kinds can be open on one
//! directory at once. Each file entry also carries the block's predecessor
//! list (see [`super::entry`]), so the index can always be rebuilt.
//!
//! Invariant, both ways: every whole entry in the file is indexed, and every
//! index entry points to a whole, valid entry. A read-write open restores it
//! after a crash: index entries pointing past the valid data are removed,
//! whole entries missing from the index are re-indexed, and a torn tail is
//! cut off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::entry::{self, Entry, Probe};
use super::prealloc::Prealloc;
use super::{Block, BlockRef, HASH_SIZE, Hash, MAX_PREDECESSORS};
use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::{FileHandle, FileSystem, Mapped, OpenMode, foreground};
use crate::options::OpenOptions;
use crate::worker::WorkerPool;

/// Index value: offset, count, 12 predecessor slots.
const VALUE_SIZE: usize = 8 + 1 + MAX_PREDECESSORS * HASH_SIZE;
/// Default index log size (Octez uses 10,000 for floating indexes).
pub const DEFAULT_LOG_SIZE: u64 = 10_000;

/// Which of the five floating stores of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatingKind {
    /// Read-only store of blocks kept by the last merge.
    Ro,
    /// Read-write store receiving new blocks.
    Rw,
    /// Being filled by a running merge; becomes `Ro`.
    RoTmp,
    /// Receives new blocks during a merge; becomes `Rw`.
    RwTmp,
    /// Used while repairing.
    Restore,
}

impl FloatingKind {
    /// All kinds.
    pub const ALL: [FloatingKind; 5] = [
        FloatingKind::Ro,
        FloatingKind::Rw,
        FloatingKind::RoTmp,
        FloatingKind::RwTmp,
        FloatingKind::Restore,
    ];

    /// The kind's name as used in file names.
    pub fn name(self) -> &'static str {
        match self {
            FloatingKind::Ro => "RO",
            FloatingKind::Rw => "RW",
            FloatingKind::RoTmp => "RO_TMP",
            FloatingKind::RwTmp => "RW_TMP",
            FloatingKind::Restore => "RESTORE",
        }
    }

    /// Name of the blocks file.
    pub fn file_name(self) -> String {
        format!("{}_floating_block_store", self.name())
    }

    /// Name of the index directory.
    pub fn index_name(self) -> String {
        format!("{}_floating_block_index", self.name())
    }
}

/// One floating block store.
#[derive(Debug)]
pub struct Floating {
    dir: PathBuf,
    kind: FloatingKind,
    read_only: bool,
    fs: Arc<dyn FileSystem>,
    file: Arc<dyn FileHandle>,
    index: Index,
    /// End of the whole entries; appends go here, iterators stop here.
    end: AtomicU64,
    /// Held by appends and flushes; the offset up to which writeback of
    /// appended bytes was started (see [`FileHandle::write_behind`]).
    writer: Mutex<u64>,
    /// A read-only map of the file's beginning: lookups of blocks it covers
    /// cost no system call. Bytes below `end` never change once written, so
    /// the map stays valid; it is renewed when the unmapped tail grows large.
    /// It may cover zeros ahead of `end` (see `prealloc`), which appends
    /// overwrite; nothing reads those bytes through the map before they are
    /// written and published below `end`.
    map: RwLock<Arc<Mapped>>,
    /// Read-write stores: the zero-filled space ahead of durable appends.
    prealloc: Option<Arc<Prealloc>>,
}

/// Unflushed appended bytes after which their writeback is started.
const WRITE_BEHIND_BYTES: u64 = 256 << 10;

/// Unmapped bytes at the end of the file that trigger a new map.
const REMAP_BYTES: u64 = 32 << 20;

impl Floating {
    /// Opens (read-write: creates) the store of `kind` in `dir`.
    pub fn open(dir: impl AsRef<Path>, kind: FloatingKind, opts: &OpenOptions) -> Result<Floating> {
        Self::open_with_log_size(dir, kind, opts, DEFAULT_LOG_SIZE)
    }

    /// Like [`Floating::open`] with an explicit index log size.
    pub fn open_with_log_size(
        dir: impl AsRef<Path>,
        kind: FloatingKind,
        opts: &OpenOptions,
        log_size: u64,
    ) -> Result<Floating> {
        let dir = dir.as_ref().to_path_buf();
        let fs = opts.fs.clone();
        if !opts.read_only {
            crate::io::atomic::create_dir_durably(fs.as_ref(), &dir)?;
        } else if !fs.is_dir(&dir)? {
            return Err(Error::NotFound(format!(
                "floating store directory {} does not exist",
                dir.display()
            )));
        }
        let index = Index::open(
            dir.join(kind.index_name()),
            IndexConfig {
                key_size: HASH_SIZE,
                value_size: VALUE_SIZE,
                removable: true,
                log_size,
                open: opts.clone(),
            },
        )?;
        let path = dir.join(kind.file_name());
        let mode = if opts.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        // A new block file's entry must be durable before any append to it
        // is acknowledged: fsyncing the file alone does not make it so.
        let created = !opts.read_only && !fs.exists(&path)?;
        let file = match fs.open(&path, mode) {
            Ok(f) if created => {
                fs.sync_dir(&dir)?;
                f
            }
            Ok(f) => f,
            Err(Error::NotFound(_)) if opts.read_only => {
                return Err(Error::NotFound(format!(
                    "floating store {} does not exist",
                    path.display()
                )));
            }
            Err(e) => return Err(e),
        };
        let mut store = Floating {
            end: AtomicU64::new(file.len()?),
            dir,
            kind,
            read_only: opts.read_only,
            fs,
            file,
            index,
            writer: Mutex::new(0),
            map: RwLock::new(Arc::new(Mapped::from_bytes(Vec::new()))),
            prealloc: None,
        };
        if !store.read_only {
            store.recover()?;
            // Without fsync there is no journal commit to save.
            if store.fs.fsync_enabled() {
                store.prealloc = Some(Arc::new(Prealloc::new(store.end.load(Ordering::SeqCst))));
            }
        }
        *store.map.write() = Arc::new(store.file.map()?);
        Ok(store)
    }

    /// Restores the two-way invariant after a crash (see the module docs).
    fn recover(&self) -> Result<()> {
        let file_len = self.file.len()?;
        // The indexed entries, highest offset first.
        let mut indexed: Vec<(u64, Hash)> = Vec::new();
        for item in self.index.iter()? {
            let (key, value) = item?;
            let mut h = [0u8; HASH_SIZE];
            h.copy_from_slice(&key);
            indexed.push((offset_of(&value), h));
        }
        indexed.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        // The highest index entry that points to a valid entry with the same
        // hash marks where verified data ends; entries above it dangle.
        let mut verified_end = 0u64;
        let mut dangling = Vec::new();
        for (offset, hash) in &indexed {
            match entry::probe(self.file.as_ref(), *offset, file_len)? {
                Probe::Valid(e) => {
                    if e.block.hash == *hash {
                        verified_end = offset + e.len as u64;
                        break;
                    }
                    dangling.push(*hash);
                }
                Probe::Torn | Probe::Damaged(_) => dangling.push(*hash),
            }
        }
        for h in &dangling {
            self.index.remove(h, false)?;
        }
        // Entries written after the last indexed one: index them, up to the
        // first torn or damaged entry, where the file is cut.
        let mut at = verified_end;
        let mut reindexed = 0usize;
        while at < file_len {
            match entry::probe(self.file.as_ref(), at, file_len)? {
                Probe::Valid(e) => {
                    if !self.index.mem(&e.block.hash)? {
                        self.index
                            .add(&e.block.hash, &index_value(at, &e.preds), false)?;
                        reindexed += 1;
                    }
                    at += e.len as u64;
                }
                Probe::Torn | Probe::Damaged(_) => break,
            }
        }
        if at < file_len {
            self.file.set_len(at)?;
        }
        if at < file_len || reindexed > 0 || !dangling.is_empty() {
            self.file.sync()?;
            self.index.flush()?;
        }
        self.end.store(at, Ordering::SeqCst);
        Ok(())
    }

    /// Appends `block` with its predecessor list `preds` (at most 12 hashes,
    /// entry i = the 2^i-th ancestor). A block already stored is left as is.
    /// With `flush`, the block is durable on return: the file is fsynced,
    /// the index is not (one fsync per block instead of two), since an
    /// entry the index lost in a crash is re-indexed from the file at open.
    pub fn append(&self, block: &BlockRef<'_>, preds: &[Hash], flush: bool) -> Result<()> {
        self.check_writable()?;
        let mut buf = Vec::with_capacity(block.encoded_len(true) + entry::trailer_len(preds.len()));
        entry::encode_into(&mut buf, block, preds)?;
        let mut behind = self.writer.lock();
        if self.index.mem(block.hash)? {
            return Ok(());
        }
        let offset = self.end.load(Ordering::SeqCst);
        let end = offset + buf.len() as u64;
        if let Some(p) = &self.prealloc {
            p.reserve(end);
        }
        if let Err(e) = self.file.write_all_at(&buf, offset) {
            // Cut whatever part was written (and the zeros ahead) so the
            // next append starts clean.
            if let Some(p) = &self.prealloc {
                p.stop();
            }
            let _ = self.file.set_len(offset);
            if let Some(p) = &self.prealloc {
                p.cut(offset);
            }
            return Err(e);
        }
        self.index
            .add(block.hash, &index_value(offset, preds), false)?;
        self.end.store(end, Ordering::SeqCst);
        if flush {
            {
                let _fg = foreground::ForegroundSync::begin();
                self.file.sync()?;
            }
            // Visible to read-only handles (after their `sync`) at once.
            self.index.write_out()?;
            if let Some(p) = &self.prealloc {
                p.after_durable_append(&self.file, end);
            }
        } else if end.saturating_sub(*behind) >= WRITE_BEHIND_BYTES {
            // Unflushed appends reach the disk in steps, so the next flush
            // (or another writer's fsync) does not wait for one long burst.
            let from = (*behind).min(offset);
            self.file.write_behind(from, end - from);
            *behind = end;
        }
        Ok(())
    }

    /// Writes zeros ahead of the appends, on the worker pool, so that the
    /// first durable appends to a new store are as cheap as later ones (see
    /// `prealloc`). A no-op on read-only stores or with fsync off.
    pub fn prepare_for_durable_appends(&self) {
        if let Some(p) = &self.prealloc {
            let (p, file) = (p.clone(), self.file.clone());
            // Only an optimisation: a failure (no space) disables the zeros
            // and shows again, if it lasts, in the next append.
            drop(WorkerPool::global().submit(move || p.fill_now(file.as_ref())));
        }
    }

    /// Makes every appended block durable: the file first, then the index, so
    /// a durable index entry never points to data that is not.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let _w = self.writer.lock();
        self.flush_locked()
    }

    fn flush_locked(&self) -> Result<()> {
        self.file.sync()?;
        self.index.flush()
    }

    /// Read-only handles: loads blocks appended since open or the last sync.
    pub fn sync(&self) -> Result<()> {
        self.index.sync()?;
        self.end.store(self.file.len()?, Ordering::SeqCst);
        Ok(())
    }

    /// True if the block is stored.
    pub fn mem(&self, hash: &Hash) -> Result<bool> {
        self.index.mem(hash)
    }

    /// The block's predecessor list, or `None` if it is not stored.
    pub fn find_predecessors(&self, hash: &Hash) -> Result<Option<Vec<Hash>>> {
        Ok(self.lookup(hash)?.map(|(_, preds)| preds))
    }

    /// The block (with its metadata, if any), or `None` if not stored.
    pub fn read_block(&self, hash: &Hash) -> Result<Option<Block>> {
        // The hot read path: offset only, no predecessor list built.
        let mut value = [0u8; VALUE_SIZE];
        if !self.index.find_into(hash, &mut value)? {
            return Ok(None);
        }
        let offset = offset_of(&value);
        // From the map: the record alone, checked and copied once (its
        // predecessor trailer is not needed here).
        let map = self.map.read().clone();
        let block = match record_in_map(&map, offset) {
            Some(rec) => super::record::parse(rec, true)
                .map_err(|e| {
                    Error::corrupted(self.file.path(), format!("entry at offset {offset}: {e}"))
                })?
                .to_owned(),
            None => self.entry_at(offset, true)?.block,
        };
        if block.hash != *hash {
            return Err(Error::corrupted(
                self.file.path(),
                format!("index entry at offset {offset} holds another block"),
            ));
        }
        Ok(Some(block))
    }

    /// The block and its predecessor list, or `None` if not stored.
    pub fn read_block_and_predecessors(&self, hash: &Hash) -> Result<Option<(Block, Vec<Hash>)>> {
        let Some((offset, preds)) = self.lookup(hash)? else {
            return Ok(None);
        };
        let e = self.entry_at(offset, true)?;
        if e.block.hash != *hash {
            return Err(Error::corrupted(
                self.file.path(),
                format!("index entry at offset {offset} holds another block"),
            ));
        }
        Ok(Some((e.block, preds)))
    }

    /// Level and predecessor of a stored block, from its record header only.
    pub fn level_and_predecessor(&self, hash: &Hash) -> Result<Option<(i32, Hash)>> {
        let Some((offset, _)) = self.lookup(hash)? else {
            return Ok(None);
        };
        let (_, h, level, pred) = entry::read_header(self.file.as_ref(), offset)?;
        if h != *hash {
            return Err(Error::corrupted(
                self.file.path(),
                format!("index entry at offset {offset} holds another block"),
            ));
        }
        Ok(Some((level, pred)))
    }

    /// The entry at `offset`: from the map when it covers it, else by
    /// `pread` (renewing the map when the unmapped tail has grown large).
    fn entry_at(&self, offset: u64, with_metadata: bool) -> Result<Entry> {
        let map = self.map.read().clone();
        if let Some(r) = from_map(&map, offset, with_metadata) {
            return r.map_err(|e| {
                Error::corrupted(self.file.path(), format!("entry at offset {offset}: {e}"))
            });
        }
        let unmapped = self
            .end
            .load(Ordering::SeqCst)
            .saturating_sub(map.len() as u64);
        if unmapped >= REMAP_BYTES {
            let fresh = Arc::new(self.file.map()?);
            *self.map.write() = fresh.clone();
            if let Some(r) = from_map(&fresh, offset, with_metadata) {
                return r.map_err(|e| {
                    Error::corrupted(self.file.path(), format!("entry at offset {offset}: {e}"))
                });
            }
        }
        entry::read_at(self.file.as_ref(), offset, with_metadata)
    }

    fn lookup(&self, hash: &Hash) -> Result<Option<(u64, Vec<Hash>)>> {
        let mut value = [0u8; VALUE_SIZE];
        if !self.index.find_into(hash, &mut value)? {
            return Ok(None);
        }
        let n = value[8] as usize;
        if n > MAX_PREDECESSORS {
            return Err(Error::corrupted(
                self.file.path(),
                format!("index entry holds {n} predecessors"),
            ));
        }
        let preds = value[9..9 + n * HASH_SIZE]
            .chunks_exact(HASH_SIZE)
            .map(to_hash)
            .collect();
        Ok(Some((offset_of(&value), preds)))
    }

    /// Iterates the blocks in file (arrival) order, as of now.
    pub fn iter(&self, with_metadata: bool) -> FloatingIter {
        FloatingIter {
            file: self.file.clone(),
            at: 0,
            end: self.end.load(Ordering::SeqCst),
            with_metadata,
        }
    }

    /// Reads the whole entry of a stored block (with metadata) and its
    /// predecessor list by file offset, as yielded by [`Floating::headers`].
    pub fn entry_at_offset(&self, offset: u64) -> Result<Entry> {
        self.entry_at(offset, true)
    }

    /// Offsets, hashes, levels and predecessors of the entries in file
    /// order, read from record headers only: the merge uses it to pick the
    /// blocks it keeps without decoding the others.
    pub fn headers(&self) -> Result<Vec<(u64, Hash, i32, Hash)>> {
        let end = self.end.load(Ordering::SeqCst);
        let mut out = Vec::new();
        let mut at = 0u64;
        while at < end {
            let (rec_len, hash, level, pred) = entry::read_header(self.file.as_ref(), at)?;
            let rec_len = rec_len as u64;
            let mut n = [0u8; 1];
            self.file.read_exact_at(&mut n, at + rec_len)?;
            out.push((at, hash, level, pred));
            at += rec_len + entry::trailer_len((n[0] as usize).min(MAX_PREDECESSORS)) as u64;
        }
        Ok(out)
    }

    /// Number of blocks stored.
    pub fn len(&self) -> u64 {
        self.index.len()
    }

    /// True when no block is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of block data in the file.
    pub fn size_bytes(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// The store's kind.
    pub fn kind(&self) -> FloatingKind {
        self.kind
    }

    /// The directory holding the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file system this store uses.
    pub fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// True for a read-only handle.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(format!(
                "floating store {} in {} was opened read-only",
                self.kind.name(),
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Removes the files of the store of `kind` in `dir` (it must not be open).
    pub fn remove_files(fs: &dyn FileSystem, dir: &Path, kind: FloatingKind) -> Result<()> {
        fs.remove_file(&dir.join(kind.file_name()))?;
        fs.remove_dir_all(&dir.join(kind.index_name()))?;
        fs.sync_dir(dir)
    }

    /// True if files of the store of `kind` exist in `dir`.
    pub fn exists(fs: &dyn FileSystem, dir: &Path, kind: FloatingKind) -> Result<bool> {
        Ok(fs.exists(&dir.join(kind.file_name()))? || fs.exists(&dir.join(kind.index_name()))?)
    }
}

impl Drop for Floating {
    /// A clean close trims the zeros ahead of the data (a crash leaves them
    /// to the next read-write open, which cuts them like a torn tail).
    fn drop(&mut self) {
        if let Some(p) = &self.prealloc {
            let end = self.end.load(Ordering::SeqCst);
            if p.stop() > end && self.file.set_len(end).is_ok() {
                let _ = self.file.sync();
            }
        }
    }
}

/// The record at `offset` of the map, if the map covers all of it.
fn record_in_map(map: &[u8], offset: u64) -> Option<&[u8]> {
    let rest = map.get(usize::try_from(offset).ok()?..)?;
    let prefix: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    rest.get(..super::record::record_len(prefix))
}

/// The entry at `offset` of a mapped file, or `None` if the map does not
/// hold all of it.
fn from_map(
    map: &[u8],
    offset: u64,
    with_metadata: bool,
) -> Option<std::result::Result<Entry, String>> {
    let rest = map.get(usize::try_from(offset).ok()?..)?;
    let rec_len = record_in_map(rest, 0)?.len();
    let n = *rest.get(rec_len)? as usize;
    let total = rec_len + entry::trailer_len(n.min(MAX_PREDECESSORS));
    Some(entry::parse(rest.get(..total)?, with_metadata))
}

fn to_hash(c: &[u8]) -> Hash {
    let mut h = [0u8; HASH_SIZE];
    h.copy_from_slice(c);
    h
}

fn offset_of(value: &[u8]) -> u64 {
    let mut o = [0u8; 8];
    o.copy_from_slice(&value[..8]);
    u64::from_be_bytes(o)
}

fn index_value(offset: u64, preds: &[Hash]) -> [u8; VALUE_SIZE] {
    let mut v = [0u8; VALUE_SIZE];
    v[..8].copy_from_slice(&offset.to_be_bytes());
    v[8] = preds.len() as u8;
    for (i, p) in preds.iter().enumerate() {
        v[9 + i * HASH_SIZE..9 + (i + 1) * HASH_SIZE].copy_from_slice(p);
    }
    v
}

/// Iterator over a floating store's entries in file order. Stops at the end
/// seen when it was created; a damaged entry yields `Corrupted` and ends the
/// iteration (the following offsets cannot be trusted).
#[derive(Debug)]
pub struct FloatingIter {
    file: Arc<dyn FileHandle>,
    at: u64,
    end: u64,
    with_metadata: bool,
}

impl Iterator for FloatingIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.at >= self.end {
            return None;
        }
        match entry::read_at(self.file.as_ref(), self.at, self.with_metadata) {
            Ok(e) => {
                self.at += e.len as u64;
                Some(Ok(e))
            }
            Err(err) => {
                let at = self.at;
                self.at = self.end;
                // A read-only view may end inside an entry the writer is
                // still appending: that is the end, not damage.
                match entry::probe(self.file.as_ref(), at, self.end) {
                    Ok(Probe::Torn) => None,
                    _ => Some(Err(err)),
                }
            }
        }
    }
}
