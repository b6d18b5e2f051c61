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
//! after a crash: whole entries missing from the index are re-indexed, and a
//! torn tail (an incomplete or invalid last entry that no index entry
//! points to, followed by nothing intact, or the zeros written ahead of the
//! appends) is cut off.
//!
//! Everything else is damage, never cut: an index entry pointing to an
//! invalid entry (the index holds only appends that returned), or an invalid
//! entry followed by intact ones, makes the open, the read or the iteration
//! return `Corrupted` naming the file and the offset. [`Floating::check`]
//! finds all of it without a handle and, with repair, rewrites the file
//! without the damaged bytes (the original goes to the quarantine) and
//! rebuilds the index from it.
//!
//! Index values carry a checksum over the key and the value, so a damaged
//! index entry never yields another block's offset or predecessor list.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::entry::{self, Entry, Probe};
use super::places::Places;
use super::prealloc::Prealloc;
use super::reader::BlockReader;
use super::{Block, BlockRef, HASH_SIZE, Hash, MAX_PREDECESSORS, hex};
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::quarantine::Quarantine;
use crate::io::{FileHandle, FileSystem, MapPromise, Mapped, OpenMode, foreground, frame};
use crate::options::OpenOptions;
use crate::published::Published;
use crate::store_dir;
use crate::unsynced::{MAX_UNSYNCED, Unsynced};
use crate::verified_once::{self, PublishedMap};
use crate::worker::WorkerPool;

/// Index value: `offset u64 | level i32 | predecessor[32] | n u8 | 12 x
/// hash | context[32] | contents_len u32 | metadata_len u32 | crc u32`,
/// the CRC-32 of the key and the value before it (`metadata_len`
/// `u32::MAX` when the block has none). Level, predecessor, list and
/// resulting context hash answer [`Floating::level_and_predecessor`] and
/// [`Floating::find_info`] without reading the file, checked; the lengths
/// let a borrowed read of a record already checked in its map point into
/// it without parsing it.
const VALUE_SIZE: usize =
    8 + 4 + HASH_SIZE + 1 + MAX_PREDECESSORS * HASH_SIZE + HASH_SIZE + 4 + 4 + 4;
/// Where the predecessor count sits in an index value.
const COUNT_AT: usize = 8 + 4 + HASH_SIZE;
/// Where the context hash sits in an index value.
const CONTEXT_AT: usize = COUNT_AT + 1 + MAX_PREDECESSORS * HASH_SIZE;
/// Where the contents and metadata lengths sit in an index value.
const LENGTHS_AT: usize = CONTEXT_AT + HASH_SIZE;
/// `metadata_len` of a block without metadata.
const NO_METADATA: u32 = u32::MAX;
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
///
/// A node uses floating stores through [`BlockStore`](super::store::BlockStore);
/// alone, a floating store is an append-only file of blocks with an index
/// from hash to offset, level, predecessor and predecessor list.
///
/// ```
/// use tzstore::OpenOptions;
/// use tzstore::block::BlockRef;
/// use tzstore::block::floating::{Floating, FloatingKind};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let f = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_write())?;
/// let (genesis, b1) = ([1u8; 32], [2u8; 32]);
/// let block = |hash, level, predecessor, contents| BlockRef {
///     hash, level, predecessor, contents, metadata: None,
/// };
/// f.append(&block(&genesis, 0, &genesis, b"genesis"), &[], true)?;
/// // The predecessor list: the 2^i-th ancestors (here only the parent).
/// f.append(&block(&b1, 1, &genesis, b"block 1"), &[genesis], true)?;
/// let b = f.read_block(&b1)?.expect("appended above");
/// assert_eq!((b.level, b.predecessor, &b.contents[..]), (1, genesis, &b"block 1"[..]));
/// assert_eq!(f.find_predecessors(&b1)?, Some(vec![genesis]));
/// assert!(f.read_block(&[9u8; 32])?.is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Floating {
    dir: PathBuf,
    kind: FloatingKind,
    read_only: bool,
    fs: Arc<dyn FileSystem>,
    file: Arc<dyn FileHandle>,
    index: Arc<Index>,
    /// Appended blocks not yet fsynced: they reach `index` only after the
    /// file's fsync (see `unsynced`).
    unsynced: Unsynced<Hash, [u8; VALUE_SIZE]>,
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
    map: Arc<Published<ReadMap>>,
    /// Read-write stores: the zero-filled space ahead of durable appends.
    prealloc: Option<Arc<Prealloc>>,
    /// Where borrowed reads found blocks, so that the next read of one
    /// skips the index (module `places`).
    places: Arc<Places>,
}

/// What a borrowed read of a placed block needs of a floating store: its
/// map and its table of places, without the store. A block store's reader
/// keeps these between reads (module `reader`); they hold memory and a
/// mapping, never the store's lock, files or directory.
#[derive(Clone)]
pub(crate) struct ReadHandles {
    pub map: Arc<Published<ReadMap>>,
    pub places: Arc<Places>,
}

/// Unflushed appended bytes after which their writeback is started.
const WRITE_BEHIND_BYTES: u64 = 256 << 10;

/// Unmapped published bytes at the end of the file that trigger a new map
/// (an `mmap`, the old map's checks carried over): a node reads its newest
/// blocks most, so they should not wait long for a map.
const REMAP_BYTES: u64 = 1 << 20;

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
        // No lock of its own: its index takes one, and the block store
        // holding it takes the store's.
        store_dir::prepare(
            fs.as_ref(),
            &dir,
            &dir,
            opts.read_only,
            "floating store directory",
        )?;
        let index = Index::open(dir.join(kind.index_name()), index_config(opts, log_size))?;
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
            index: Arc::new(index),
            unsynced: Unsynced::default(),
            places: Arc::default(),
            writer: Mutex::new(0),
            map: Arc::new(Published::new(Arc::new(ReadMap::new(
                Mapped::from_bytes(Vec::new()),
                0,
                &path,
                u64::MAX,
            )))),
            prealloc: None,
        };
        // Where this object's own appends begin (the end after recovery):
        // its maps take the records from there on as checked (module
        // `verified_once`); none for a read-only store.
        let mut written_from = u64::MAX;
        if !store.read_only {
            store.recover()?;
            written_from = store.end.load(Ordering::SeqCst);
            // Without fsync there is no journal commit to save.
            if store.fs.fsync_enabled() {
                store.prealloc = Some(Arc::new(Prealloc::new(store.end.load(Ordering::SeqCst))));
            }
        }
        // Append-only: recovery above cut any torn tail before this map,
        // and a close cuts only the zeros above `end`: a map that a
        // `BlockReader` still holds keeps every record it can point to.
        store.map.replace(Arc::new(ReadMap::new(
            store.file.map(MapPromise::APPEND_ONLY)?,
            store.end.load(Ordering::SeqCst),
            store.file.path(),
            written_from,
        )));
        Ok(store)
    }

    /// Restores the two-way invariant after a crash, or finds damage and
    /// changes nothing (see the module docs).
    fn recover(&self) -> Result<()> {
        let file_len = self.file.len()?;
        // The highest indexed entry: every index entry is an append that
        // returned, so it must be whole and hold its block.
        let mut top: Option<(u64, Hash)> = None;
        for item in self.index.iter()? {
            let (key, value) = item?;
            let hash = to_hash(&key);
            let offset = self.decode_value(&hash, &value)?.offset;
            if top.is_none_or(|(o, _)| offset > o) {
                top = Some((offset, hash));
            }
        }
        let verified_end = match top {
            None => 0,
            Some((offset, hash)) => match entry::probe(self.file.as_ref(), offset, file_len)? {
                Probe::Valid(e) if e.block.hash == hash => offset + e.len as u64,
                Probe::Valid(_) => {
                    return Err(Error::corrupted(
                        self.file.path(),
                        format!(
                            "the index places block {} at offset {offset}, which holds another block",
                            hex(&hash)
                        ),
                    ));
                }
                Probe::Torn => {
                    return Err(Error::corrupted(
                        self.file.path(),
                        format!(
                            "entry at offset {offset} (block {}, indexed) is missing or incomplete: the file ends at {file_len}",
                            hex(&hash)
                        ),
                    ));
                }
                Probe::Damaged(d) => {
                    return Err(Error::corrupted(
                        self.file.path(),
                        format!(
                            "entry at offset {offset} (block {}, indexed): {d}",
                            hex(&hash)
                        ),
                    ));
                }
            },
        };
        // Entries written after the last indexed one: found first, indexed
        // once the whole tail is known to be a torn tail, not damage.
        let mut at = verified_end;
        let mut unindexed = Vec::new();
        while at < file_len {
            match entry::probe(self.file.as_ref(), at, file_len)? {
                Probe::Valid(e) => {
                    if !self.index.mem(&e.block.hash)? {
                        unindexed.push(at);
                    }
                    at += e.len as u64;
                }
                Probe::Torn | Probe::Damaged(_) => {
                    if let Some(next) = entry::next_intact(self.file.as_ref(), at + 1, file_len)? {
                        return Err(Error::corrupted(
                            self.file.path(),
                            format!(
                                "entry at offset {at} is damaged: an intact entry follows at offset {next}"
                            ),
                        ));
                    }
                    break;
                }
            }
        }
        if at < file_len {
            self.file.set_len(at)?;
        }
        if at < file_len || !unindexed.is_empty() {
            // The bytes survived a crash, not necessarily a power cut: they
            // are fsynced before the index may hold entries for them.
            self.file.sync()?;
            for &offset in &unindexed {
                let e = entry::read_at(self.file.as_ref(), offset, at, false)?;
                self.index.add(
                    &e.block.hash,
                    &index_value(&e.block.as_ref(), offset, &e.preds, &e.context, e.len),
                    false,
                )?;
            }
            self.index.flush()?;
        }
        self.end.store(at, Ordering::SeqCst);
        Ok(())
    }

    /// Offset and predecessor list of an index value, after checking its
    /// checksum (which binds it to `hash`).
    fn decode_value(&self, hash: &Hash, value: &[u8]) -> Result<IndexValue> {
        decode_value(hash, value)
            .map_err(|e| Error::corrupted(&self.dir.join(self.kind.index_name()), e))
    }

    /// Appends `block` with its predecessor list `preds` (at most 12 hashes,
    /// entry i = the 2^i-th ancestor). A block already stored is left as is.
    /// With `flush`, the block is durable on return: the file is fsynced,
    /// the index is not (one fsync per block instead of two), since an
    /// entry the index lost in a crash is re-indexed from the file at open.
    pub fn append(&self, block: &BlockRef<'_>, preds: &[Hash], flush: bool) -> Result<()> {
        self.append_with_context(block, &super::record::NO_CONTEXT, preds, flush)
    }

    /// [`Floating::append`], with the block's resulting `context` hash
    /// (Octez's `append_block ... resulting_context_hash`).
    pub fn append_with_context(
        &self,
        block: &BlockRef<'_>,
        context: &Hash,
        preds: &[Hash],
        flush: bool,
    ) -> Result<()> {
        self.check_writable()?;
        let mut buf = Vec::with_capacity(block.encoded_len(true) + entry::trailer_len(preds.len()));
        entry::encode_into(&mut buf, block, context, preds)?;
        let mut behind = self.writer.lock();
        if self.mem(block.hash)? {
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
        // `end` first: a reader that finds the index entry may read up to it.
        self.end.store(end, Ordering::SeqCst);
        self.unsynced.insert(
            *block.hash,
            index_value(block, offset, preds, context, buf.len()),
        );
        if flush || self.unsynced.len() >= MAX_UNSYNCED {
            {
                let _fg = foreground::ForegroundSync::begin();
                self.file.sync()?;
            }
            self.publish_unsynced()?;
        }
        if flush {
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
        self.publish_unsynced()?;
        self.index.flush()
    }

    /// Hands the blocks whose bytes the file's last fsync made durable to
    /// the index. Called with the writer lock, right after that fsync.
    fn publish_unsynced(&self) -> Result<()> {
        self.unsynced
            .publish(|hash, value| self.index.add(hash, value, false))
    }

    /// The index value of `hash`: unsynced appends first, then the index.
    fn find_value(&self, hash: &Hash, out: &mut [u8; VALUE_SIZE]) -> Result<bool> {
        if let Some(v) = self.unsynced.get(hash) {
            *out = v;
            return Ok(true);
        }
        self.index.find_into(hash, out)
    }

    /// Read-only handles: loads blocks appended since open or the last sync.
    pub fn sync(&self) -> Result<()> {
        self.index.sync()?;
        self.end.store(self.file.len()?, Ordering::SeqCst);
        Ok(())
    }

    /// True if the block is stored.
    pub fn mem(&self, hash: &Hash) -> Result<bool> {
        Ok(self.unsynced.contains(hash) || self.index.mem(hash)?)
    }

    /// The block's predecessor list, or `None` if it is not stored.
    pub fn find_predecessors(&self, hash: &Hash) -> Result<Option<Vec<Hash>>> {
        Ok(self.lookup(hash)?.map(|(_, preds)| preds))
    }

    /// The block (with its metadata, if any), or `None` if not stored.
    pub fn read_block(&self, hash: &Hash) -> Result<Option<Block>> {
        let map = self.map.load();
        // A block placed before needs no index probe (module `places`).
        if let Some(at) = self.places.load().locate_in(&map, hash) {
            return super::reader::checked_record(&map, hash, &at).map(|b| Some(b.to_owned()));
        }
        let Some(Located { offset, .. }) = self.locate_record(hash)? else {
            return Ok(None);
        };
        // From the map: the record alone, its checksum checked once per
        // map, copied once (its predecessor trailer is not needed here);
        // then placed, as a borrowed read places it.
        if let Some(block) = self.block_in_map(&map, offset, hash) {
            let block = block?;
            self.places
                .insert_checked(hash, &located_in_record(offset, &block));
            return Ok(Some(block.to_owned()));
        }
        let block = self.entry_at(offset, true)?.block;
        if block.hash != *hash {
            return Err(self.another_block(offset));
        }
        Ok(Some(block))
    }

    /// Block `hash` from its record at `offset` of `map`, its checksum
    /// checked once per map; `None` if the map does not hold all of it.
    fn block_in_map<'m>(
        &self,
        map: &'m ReadMap,
        offset: u64,
        hash: &Hash,
    ) -> Option<Result<BlockRef<'m>>> {
        Some(match map.record(offset)? {
            Ok(b) if b.hash == hash => Ok(b),
            Ok(_) => Err(self.another_block(offset)),
            Err(e) => Err(Error::corrupted(
                self.file.path(),
                format!("entry at offset {offset}: {e}"),
            )),
        })
    }

    /// The error of an index entry that names a record of another block.
    fn another_block(&self, offset: u64) -> Error {
        Error::corrupted(
            self.file.path(),
            format!("index entry at offset {offset} holds another block"),
        )
    }

    /// [`Floating::read_block`] without a copy: the block, borrowed from
    /// what `reader` holds after this call (see [`BlockReader`]).
    pub fn read_view<'r>(
        &self,
        hash: &Hash,
        reader: &'r mut BlockReader,
    ) -> Result<Option<BlockRef<'r>>> {
        reader.start(true);
        if !self.hold_block(hash, reader)? {
            return Ok(None);
        }
        reader.block()
    }

    /// This store's map and table of places, for a reader to keep.
    pub(crate) fn read_handles(&self) -> ReadHandles {
        ReadHandles {
            map: self.map.clone(),
            places: self.places.clone(),
        }
    }

    /// Has `reader` hold block `hash` (see [`Floating::hold`]); false if
    /// it is not stored. A block whose record a borrowed read found checked
    /// before is placed without the index, the lock on the map or a
    /// reference count touched (modules `places` and `published`).
    pub(crate) fn hold_block(&self, hash: &Hash, reader: &mut BlockReader) -> Result<bool> {
        if reader.hold_placed(&self.map, &self.places, hash) {
            return Ok(true);
        }
        self.hold_indexed(hash, reader)
    }

    /// [`Floating::hold_block`] for a read that already looked for `hash`
    /// in this store's table of places: through the index, placing the
    /// block for the next read.
    pub(crate) fn hold_indexed(&self, hash: &Hash, reader: &mut BlockReader) -> Result<bool> {
        let Some(at) = self.locate_record(hash)? else {
            return Ok(false);
        };
        if let Some(checked) = self.hold(&at, hash, reader)? {
            self.places.insert_checked(hash, &checked);
        }
        Ok(true)
    }

    /// Where block `hash`'s record is and what it holds, from its checked
    /// index value (no predecessor list built), or `None` if not stored.
    ///
    /// Only the value's first and last lines are read, and its CRC is not
    /// computed: every value was verified once where it is read from (the
    /// index checks its data files whole at open and each log entry's CRC
    /// at replay; unsynced values are this process's own), and a view
    /// placed by it compares the record's size and hash with it, so a
    /// wrong value can never show another block's bytes.
    pub(crate) fn locate_record(&self, hash: &Hash) -> Result<Option<Located>> {
        if let Some(v) = self.unsynced.get(hash) {
            return Ok(Some(located(&v)));
        }
        let found = self
            .index
            .find_with(hash, |v| (v.len() == VALUE_SIZE).then(|| located(v)))?;
        match found {
            Some(Some(at)) => Ok(Some(at)),
            Some(None) => Err(self.value_error(hash)),
            None => Ok(None),
        }
    }

    /// Has `reader` hold block `hash`, whose record
    /// [`Floating::locate_record`] placed at `at`: this store's map when it
    /// covers the record (placed without a parse if the map checked it
    /// before, else checked now), else a copy. Returns where the record is
    /// when it passed its checksum in a map, for the table of places.
    pub(crate) fn hold(
        &self,
        at: &Located,
        hash: &Hash,
        reader: &mut BlockReader,
    ) -> Result<Option<Located>> {
        let offset = at.offset;
        let map = self.map.load();
        if map.covers_checked(offset, at.record_len()) {
            // Checked in this map before: the index value says where the
            // contents and metadata are, the record need not be parsed.
            reader.hold_checked(map, *hash, *at);
            return Ok(Some(*at));
        }
        if record_in_map(&map, offset).is_some() {
            return self.hold_checking(map, offset, hash, reader).map(Some);
        }
        if let Some(fresh) = self.renewed_map(&map)? {
            if record_in_map(&fresh, offset).is_some() {
                return self.hold_checking(fresh, offset, hash, reader).map(Some);
            }
        }
        let block = self.entry_at(offset, true)?.block;
        if block.hash != *hash {
            return Err(self.another_block(offset));
        }
        reader.hold_owned(block);
        Ok(None)
    }

    /// Checks the record at `offset` of `map` (its checksum, once per map;
    /// and that it holds block `hash`), then has `reader` hold it; returns
    /// where its parts are, as the record says.
    fn hold_checking(
        &self,
        map: Arc<ReadMap>,
        offset: u64,
        hash: &Hash,
        reader: &mut BlockReader,
    ) -> Result<Located> {
        let at = match self.block_in_map(&map, offset, hash) {
            Some(block) => located_in_record(offset, &block?),
            None => {
                return Err(Error::corrupted(
                    self.file.path(),
                    format!("the record at offset {offset} is no longer in its map"),
                ));
            }
        };
        reader.hold_checked(map, *hash, at);
        Ok(at)
    }

    /// The block and its predecessor list, or `None` if not stored.
    pub fn read_block_and_predecessors(&self, hash: &Hash) -> Result<Option<(Block, Vec<Hash>)>> {
        let Some((offset, preds)) = self.lookup(hash)? else {
            return Ok(None);
        };
        let e = self.entry_at(offset, true)?;
        if e.block.hash != *hash {
            return Err(self.another_block(offset));
        }
        Ok(Some((e.block, preds)))
    }

    /// The predecessor list and resulting context hash of a stored block,
    /// from the index alone (Octez's `find_info`); `None` if not stored.
    pub fn find_info(&self, hash: &Hash) -> Result<Option<(Vec<Hash>, Hash)>> {
        let mut value = [0u8; VALUE_SIZE];
        if !self.find_value(hash, &mut value)? {
            return Ok(None);
        }
        let v = self.decode_value(hash, &value)?;
        Ok(Some((v.preds, v.context)))
    }

    /// Level and predecessor of a stored block, from the index alone.
    pub fn level_and_predecessor(&self, hash: &Hash) -> Result<Option<(i32, Hash)>> {
        let mut value = [0u8; VALUE_SIZE];
        if !self.find_value(hash, &mut value)? {
            return Ok(None);
        }
        let v = self.decode_value(hash, &value)?;
        Ok(Some((v.level, v.predecessor)))
    }

    /// The entry at `offset`: from the map when it covers it, else by
    /// `pread` (renewing the map when the unmapped tail has grown large).
    fn entry_at(&self, offset: u64, with_metadata: bool) -> Result<Entry> {
        let map = self.map.load();
        if let Some(r) = from_map(&map, offset, with_metadata) {
            return r.map_err(|e| {
                Error::corrupted(self.file.path(), format!("entry at offset {offset}: {e}"))
            });
        }
        if let Some(fresh) = self.renewed_map(&map)? {
            if let Some(r) = from_map(&fresh, offset, with_metadata) {
                return r.map_err(|e| {
                    Error::corrupted(self.file.path(), format!("entry at offset {offset}: {e}"))
                });
            }
        }
        entry::read_at(
            self.file.as_ref(),
            offset,
            self.end.load(Ordering::SeqCst),
            with_metadata,
        )
    }

    /// A fresh map of the file when the tail `map` does not cover has
    /// grown past [`REMAP_BYTES`] (published for the next reads), else
    /// `None`: remapping on every miss would cost more than the `pread`.
    /// The fresh map keeps `map`'s checks.
    fn renewed_map(&self, map: &ReadMap) -> Result<Option<Arc<ReadMap>>> {
        let end = self.end.load(Ordering::SeqCst);
        if end.saturating_sub(map.len() as u64) < REMAP_BYTES {
            return Ok(None);
        }
        // Append-only, as at open: a handle that reads never cuts.
        let fresh = Arc::new(map.renewed(self.file.map(MapPromise::APPEND_ONLY)?, end));
        self.map.replace(fresh.clone());
        Ok(Some(fresh))
    }

    fn lookup(&self, hash: &Hash) -> Result<Option<(u64, Vec<Hash>)>> {
        let mut value = [0u8; VALUE_SIZE];
        if !self.find_value(hash, &mut value)? {
            return Ok(None);
        }
        let v = self.decode_value(hash, &value)?;
        Ok(Some((v.offset, v.preds)))
    }

    fn value_error(&self, hash: &Hash) -> Error {
        Error::corrupted(
            &self.dir.join(self.kind.index_name()),
            format!("index entry of block {}: checksum mismatch", hex(hash)),
        )
    }

    /// Iterates the blocks in file (arrival) order, as of now.
    pub fn iter(&self, with_metadata: bool) -> FloatingIter {
        FloatingIter {
            file: self.file.clone(),
            at: 0,
            end: self.end.load(Ordering::SeqCst),
            with_metadata,
            verified: !self.read_only,
            index: self.index.clone(),
            unsynced: self.unsynced.clone(),
        }
    }

    /// Reads the whole entry of a stored block (with metadata) and its
    /// predecessor list by file offset, as yielded by [`Floating::headers`].
    pub fn entry_at_offset(&self, offset: u64) -> Result<Entry> {
        self.entry_at(offset, true)
    }

    /// Offsets, hashes, levels and predecessors of the entries in file
    /// order: the merge uses it to pick the blocks it keeps. Every entry is
    /// verified (checksums), so a merge never routes by a damaged header:
    /// damage is `Corrupted` naming the offset.
    pub fn headers(&self) -> Result<Vec<(u64, Hash, i32, Hash)>> {
        let end = self.end.load(Ordering::SeqCst);
        let mut out = Vec::new();
        let mut at = 0u64;
        while at < end {
            let e = self.entry_at(at, false)?;
            out.push((at, e.block.hash, e.block.level, e.block.predecessor));
            at += e.len as u64;
        }
        Ok(out)
    }

    /// Number of blocks stored.
    pub fn len(&self) -> u64 {
        self.index.len() + self.unsynced.len() as u64
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
        // Best effort: blocks appended without a flush are indexed now if
        // their bytes can be made durable; otherwise the next read-write
        // open re-indexes them from the file.
        if self.unsynced.len() > 0 && self.file.sync().is_ok() {
            let _ = self.publish_unsynced();
        }
        if let Some(p) = &self.prealloc {
            let end = self.end.load(Ordering::SeqCst);
            if p.stop() > end && self.file.set_len(end).is_ok() {
                let _ = self.file.sync();
            }
        }
    }
}

/// A read-only map of the block file and which of its records were
/// checked (see `verified_once` for why one check per map is enough).
pub(crate) struct ReadMap {
    map: PublishedMap,
    /// The mapped file, for errors.
    path: PathBuf,
}

impl ReadMap {
    /// A map of `bytes` whose first `published` bytes hold published
    /// records, none checked yet; records at or past `written_from` are
    /// the store's own appends.
    fn new(bytes: Mapped, published: u64, path: &Path, written_from: u64) -> ReadMap {
        ReadMap {
            map: PublishedMap::new(bytes, published, verified_once::GRANULE_SHIFT, written_from),
            path: path.to_path_buf(),
        }
    }

    /// A map of the same file grown to `bytes`, keeping this one's checks.
    fn renewed(&self, bytes: Mapped, published: u64) -> ReadMap {
        ReadMap {
            map: self.map.renewed(bytes, published),
            path: self.path.clone(),
        }
    }

    /// The mapped file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the `len`-byte record at `offset` is in the records this
    /// map serves and passed its checksum in it.
    pub(crate) fn covers_checked(&self, offset: u64, len: usize) -> bool {
        usize::try_from(offset).is_ok_and(|at| {
            at.checked_add(len).is_some_and(|end| end <= self.len()) && self.map.is_checked(at)
        })
    }

    /// The block record at `offset`, with metadata, its checksum checked the
    /// first time this map returns it; `None` if the map does not hold all
    /// of it.
    pub(crate) fn record(&self, offset: u64) -> Option<std::result::Result<BlockRef<'_>, String>> {
        let rec = record_in_map(self, offset)?;
        // In the map, so the offset fits in usize.
        let at = usize::try_from(offset).ok()?;
        if self.map.is_checked(at) {
            return Some(super::record::parse_checked_before(rec, true));
        }
        let parsed = super::record::parse(rec, true);
        if parsed.is_ok() {
            self.map.mark_checked(at);
        }
        Some(parsed)
    }
}

impl std::fmt::Debug for ReadMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReadMap({} of {} bytes)",
            self.len(),
            self.map.mapped_len()
        )
    }
}

impl std::ops::Deref for ReadMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.bytes()
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

/// The index value of `block`, whose entry (record and predecessor
/// trailer) is `entry_len` bytes at `offset`. The metadata length comes
/// from the entry's size, so a block read without its metadata is indexed
/// as it is stored.
fn index_value(
    block: &BlockRef<'_>,
    offset: u64,
    preds: &[Hash],
    context: &Hash,
    entry_len: usize,
) -> [u8; VALUE_SIZE] {
    let mut v = [0u8; VALUE_SIZE];
    v[..8].copy_from_slice(&offset.to_be_bytes());
    v[8..12].copy_from_slice(&block.level.to_be_bytes());
    v[12..COUNT_AT].copy_from_slice(block.predecessor);
    v[COUNT_AT] = preds.len() as u8;
    for (i, p) in preds.iter().enumerate() {
        let at = COUNT_AT + 1 + i * HASH_SIZE;
        v[at..at + HASH_SIZE].copy_from_slice(p);
    }
    v[CONTEXT_AT..CONTEXT_AT + HASH_SIZE].copy_from_slice(context);
    // Record lengths are below 4 GiB (`record::MAX_RECORD`), checked when
    // the record was encoded.
    let clen = block.contents.len() as u32;
    let record_len = entry_len - entry::trailer_len(preds.len());
    let mlen = metadata_len_of(record_len, block.contents.len()).unwrap_or(NO_METADATA);
    v[LENGTHS_AT..LENGTHS_AT + 4].copy_from_slice(&clen.to_be_bytes());
    v[LENGTHS_AT + 4..LENGTHS_AT + 8].copy_from_slice(&mlen.to_be_bytes());
    let crc = value_crc(block.hash, &v);
    v[VALUE_SIZE - 4..].copy_from_slice(&crc.to_be_bytes());
    v
}

/// CRC-32 of the key and the value before its checksum field.
fn value_crc(hash: &Hash, value: &[u8]) -> u32 {
    frame::crc(&[hash, &value[..VALUE_SIZE - 4]])
}

fn stored_crc(value: &[u8]) -> u32 {
    let mut c = [0u8; 4];
    c.copy_from_slice(&value[VALUE_SIZE - 4..VALUE_SIZE]);
    u32::from_be_bytes(c)
}

/// Where a block's record is and what it holds, as its index value says:
/// enough to point into a record already checked in a map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    /// Offset of the entry (its record first) in the file.
    pub offset: u64,
    pub level: i32,
    pub predecessor: Hash,
    pub contents_len: u32,
    pub metadata_len: Option<u32>,
}

/// Where the parts of `block`, the record at `offset`, are.
fn located_in_record(offset: u64, block: &BlockRef<'_>) -> Located {
    Located {
        offset,
        level: block.level,
        predecessor: *block.predecessor,
        // A record's parts are shorter than its u32 size field.
        contents_len: block.contents.len() as u32,
        metadata_len: block.metadata.map(|m| m.len() as u32),
    }
}

impl Located {
    /// Bytes of the record.
    pub(crate) fn record_len(&self) -> usize {
        let meta = self
            .metadata_len
            .map_or(0, |m| super::record::META_LEN + m as usize);
        super::record::FIXED + self.contents_len as usize + meta
    }
}

/// A decoded index value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexValue {
    /// Offset of the block's entry in the file.
    pub offset: u64,
    /// The block's level.
    pub level: i32,
    /// Its direct predecessor.
    pub predecessor: Hash,
    /// Its predecessor list.
    pub preds: Vec<Hash>,
    /// Its resulting context hash.
    pub context: Hash,
    /// The length of its contents.
    pub contents_len: u32,
    /// The length of its metadata, if it has any.
    pub metadata_len: Option<u32>,
}

/// Decodes an index value of block `hash`. Any byte string is accepted as
/// input; a wrong size, checksum or count is an error message.
pub fn decode_value(hash: &Hash, value: &[u8]) -> std::result::Result<IndexValue, String> {
    if value.len() != VALUE_SIZE {
        return Err(format!(
            "index entry of block {} holds {} bytes, not {VALUE_SIZE}",
            hex(hash),
            value.len()
        ));
    }
    if value_crc(hash, value) != stored_crc(value) {
        return Err(format!(
            "index entry of block {}: checksum mismatch",
            hex(hash)
        ));
    }
    let n = value[COUNT_AT] as usize;
    if n > MAX_PREDECESSORS {
        return Err(format!(
            "index entry of block {} holds {n} predecessors",
            hex(hash)
        ));
    }
    let preds = value[COUNT_AT + 1..COUNT_AT + 1 + n * HASH_SIZE]
        .chunks_exact(HASH_SIZE)
        .map(to_hash)
        .collect();
    let at = located(value);
    Ok(IndexValue {
        offset: at.offset,
        level: at.level,
        predecessor: at.predecessor,
        preds,
        context: to_hash(&value[CONTEXT_AT..CONTEXT_AT + HASH_SIZE]),
        contents_len: at.contents_len,
        metadata_len: at.metadata_len,
    })
}

/// The fixed fields of an index value (`VALUE_SIZE` bytes, its checksum
/// checked by the caller).
fn located(value: &[u8]) -> Located {
    Located {
        offset: offset_of(value),
        level: i32::from_be_bytes([value[8], value[9], value[10], value[11]]),
        predecessor: to_hash(&value[12..COUNT_AT]),
        contents_len: u32_at(value, LENGTHS_AT),
        metadata_len: Some(u32_at(value, LENGTHS_AT + 4)).filter(|&m| m != NO_METADATA),
    }
}

/// The metadata length of a record of `record_len` bytes whose contents
/// are `contents_len` bytes: `None` when its tag says it has none.
fn metadata_len_of(record_len: usize, contents_len: usize) -> Option<u32> {
    let extra = record_len.checked_sub(super::record::FIXED + contents_len)?;
    // A record with metadata holds its 4-byte length and the bytes.
    (extra >= 4).then(|| (extra - 4) as u32)
}

fn u32_at(value: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]])
}

/// The first 8 bytes of a hash in hex, to name a block in messages.
fn index_config(opts: &OpenOptions, log_size: u64) -> IndexConfig {
    IndexConfig {
        key_size: HASH_SIZE,
        value_size: VALUE_SIZE,
        removable: true,
        log_size,
        open: opts.clone(),
    }
}

/// Iterator over a floating store's entries in file order. Stops at the end
/// seen when it was created; a damaged entry yields `Corrupted` naming its
/// offset and ends the iteration (the following offsets cannot be trusted).
#[derive(Debug)]
pub struct FloatingIter {
    file: Arc<dyn FileHandle>,
    at: u64,
    end: u64,
    with_metadata: bool,
    /// The end was verified (a read-write handle): every invalid entry
    /// before it is damage. A read-only view's end is the file's length,
    /// which may hold the zeros ahead of the appends or an entry being
    /// appended.
    verified: bool,
    /// Tells an acknowledged entry (indexed) from one being appended.
    index: Arc<Index>,
    /// Appends of this handle whose bytes are not fsynced yet.
    unsynced: Unsynced<Hash, [u8; VALUE_SIZE]>,
}

impl FloatingIter {
    /// True if the index places the block named by the (unchecked) header
    /// at `at` exactly there: the entry is an append that returned, so its
    /// damage is not the end of the data.
    fn indexed_at(&self, at: u64) -> Result<bool> {
        if self.end.saturating_sub(at) < entry::HEADER_LEN as u64 {
            return Ok(false);
        }
        let (_, hash, _, _) = entry::read_header(self.file.as_ref(), at)?;
        let mut value = [0u8; VALUE_SIZE];
        if let Some(v) = self.unsynced.get(&hash) {
            value = v;
        } else if !self.index.find_into(&hash, &mut value)? {
            return Ok(false);
        }
        Ok(decode_value(&hash, &value).is_ok_and(|v| v.offset == at))
    }
}

impl Iterator for FloatingIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.at >= self.end {
            return None;
        }
        let at = self.at;
        match entry::read_at(self.file.as_ref(), at, self.end, self.with_metadata) {
            Ok(e) => {
                self.at += e.len as u64;
                Some(Ok(e))
            }
            Err(err) => {
                self.at = self.end;
                if self.verified {
                    return Some(Err(err));
                }
                // Nothing intact after it: the end of what the writer has
                // appended. Intact entries after it: damage, unless the
                // writer completed this entry meanwhile.
                match entry::next_intact(self.file.as_ref(), at + 1, self.end) {
                    Ok(None) => match self.indexed_at(at) {
                        Ok(false) => None,
                        Ok(true) => Some(Err(Error::corrupted(
                            self.file.path(),
                            format!("entry at offset {at} (an indexed block) is damaged"),
                        ))),
                        Err(e) => Some(Err(e)),
                    },
                    Ok(Some(next)) => {
                        match entry::read_at(self.file.as_ref(), at, self.end, self.with_metadata) {
                            Ok(e) => {
                                self.at = at + e.len as u64;
                                Some(Ok(e))
                            }
                            Err(_) => Some(Err(Error::corrupted(
                                self.file.path(),
                                format!(
                                    "entry at offset {at} is damaged: an intact entry follows at offset {next}"
                                ),
                            ))),
                        }
                    }
                    Err(e) => Some(Err(e)),
                }
            }
        }
    }
}

/// Name of the index's lock file (see `crate::index`): a repair holds it so
/// that no read-write handle of the store is open meanwhile.
const INDEX_LOCK: &str = "lock";
/// Suffix of the file a repair writes before it takes the store file's place.
const REPAIR_SUFFIX: &str = ".tzs-repair";

/// What [`inspect`] found in one floating store.
#[derive(Debug, Default)]
struct Inspection {
    /// The file's intact entries in file order: offset and length (a block
    /// stored twice counts once, at its first offset).
    intact: Vec<(u64, u64)>,
    /// Damage in the file itself: the file must be rewritten.
    file_damage: Vec<String>,
    /// Damage in the index, or index entries the file does not back.
    index_damage: Vec<String>,
    /// Where a tail without intact entries starts (torn, or zeros ahead).
    tail: Option<u64>,
    /// The store file is not a regular file (a directory, a FIFO).
    unusable: bool,
}

impl Inspection {
    fn is_ok(&self) -> bool {
        self.file_damage.is_empty() && self.index_damage.is_empty()
    }
}

impl Floating {
    /// Checks every floating store in `dir` (each kind with files there)
    /// without opening a handle, so it works on a store that refuses to
    /// open: each entry of the file must be intact, each index entry must
    /// point to an intact entry of its block with its predecessor list, and
    /// each entry below the last indexed one must be indexed. A torn tail
    /// that no index entry points to is not a problem (a read-write open
    /// cuts it). Without `repair` nothing changes.
    ///
    /// With `repair` (takes each damaged store's index lock, so no
    /// read-write handle may be open: `Locked` otherwise), a store with
    /// problems is salvaged: a file with damage is rewritten with its intact
    /// entries only (each block once), the original moved into
    /// `dir/.tzs-quarantine/<time>/`; a torn tail is saved there and cut;
    /// the index is moved there and rebuilt from the file. The report lists
    /// what was kept and moved; afterwards the store opens and checks clean.
    pub fn check(dir: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        let dir = dir.as_ref();
        let fs = opts.fs.clone();
        let mut report = CheckReport::default();
        let mut quarantine = Quarantine::new(fs.as_ref(), dir);
        for kind in FloatingKind::ALL {
            let path = dir.join(kind.file_name());
            let index_dir = dir.join(kind.index_name());
            if !fs.exists(&path)? && !fs.exists(&index_dir)? {
                continue;
            }
            let lock = if repair {
                fs.create_dir_all(&index_dir)?;
                Some(fs.lock(&index_dir.join(INDEX_LOCK))?)
            } else {
                None
            };
            let found = inspect(&fs, dir, kind)?;
            if found.is_ok() || !repair {
                report.records_checked += found.intact.len() as u64;
                report.problems.extend(found.file_damage);
                report.problems.extend(found.index_damage);
                continue;
            }
            salvage(dir, kind, opts, &found, &mut quarantine, &mut report)?;
            drop(lock);
            let after = inspect(&fs, dir, kind)?;
            report.records_checked += after.intact.len() as u64;
            report.problems.extend(after.file_damage);
            report.problems.extend(after.index_damage);
        }
        let (qdir, moved) = quarantine.into_parts();
        report.quarantine_dir = qdir;
        report.quarantined = moved;
        Ok(report)
    }
}

/// Reads the store of `kind` in `dir` whole (file, then index) and lists
/// its damage.
fn inspect(fs: &Arc<dyn FileSystem>, dir: &Path, kind: FloatingKind) -> Result<Inspection> {
    let path = dir.join(kind.file_name());
    let mut found = Inspection::default();
    // Intact entries by offset: block hash and predecessor list.
    let mut by_offset: HashMap<u64, (Hash, IndexValue)> = Default::default();
    match fs.open(&path, OpenMode::Read) {
        Ok(file) => {
            let len = file.len()?;
            let mut first_at: HashMap<Hash, u64> = Default::default();
            let mut at = 0u64;
            while at < len {
                match entry::probe(file.as_ref(), at, len)? {
                    Probe::Valid(e) => {
                        let hash = e.block.hash;
                        match first_at.get(&hash) {
                            Some(first) => found.file_damage.push(format!(
                                "{}: entry at offset {at} repeats block {} stored at offset {first}",
                                path.display(),
                                hex(&hash)
                            )),
                            None => {
                                first_at.insert(hash, at);
                                found.intact.push((at, e.len as u64));
                                let record_len = e.len - entry::trailer_len(e.preds.len());
                                let contents_len = e.block.contents.len();
                                let value = IndexValue {
                                    offset: at,
                                    level: e.block.level,
                                    predecessor: e.block.predecessor,
                                    preds: e.preds,
                                    context: e.context,
                                    contents_len: contents_len as u32,
                                    metadata_len: metadata_len_of(record_len, contents_len),
                                };
                                by_offset.insert(at, (hash, value));
                            }
                        }
                        at += e.len as u64;
                    }
                    Probe::Torn | Probe::Damaged(_) => {
                        match entry::next_intact(file.as_ref(), at + 1, len)? {
                            Some(next) => {
                                found.file_damage.push(format!(
                                    "{}: bytes {at}..{next} are damaged (intact entries follow)",
                                    path.display()
                                ));
                                at = next;
                            }
                            None => {
                                found.tail = Some(at);
                                break;
                            }
                        }
                    }
                }
            }
        }
        Err(Error::NotFound(_)) => {}
        Err(Error::Corrupted(m)) => {
            found.unusable = true;
            found.file_damage.push(m);
        }
        Err(e) => return Err(e),
    }
    inspect_index(fs, dir, kind, &by_offset, &mut found)?;
    Ok(found)
}

/// Checks the index of `kind` against the intact entries of the file.
fn inspect_index(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    kind: FloatingKind,
    by_offset: &HashMap<u64, (Hash, IndexValue)>,
    found: &mut Inspection,
) -> Result<()> {
    let index_dir = dir.join(kind.index_name());
    if fs.is_dir(&index_dir)? {
        // An index holds files only: a directory in place of one of them is
        // damage, even where a read-only open of the index does not look.
        for e in fs.read_dir(&index_dir)? {
            if e.is_dir {
                found.index_damage.push(format!(
                    "{}: {} is a directory, not an index file",
                    index_dir.display(),
                    e.name
                ));
            }
        }
    }
    let opts = OpenOptions::read_only().with_fs(fs.clone());
    let index = match Index::open(&index_dir, index_config(&opts, DEFAULT_LOG_SIZE)) {
        Ok(i) => i,
        // No index: a read-write open rebuilds it from the file.
        Err(Error::NotFound(_)) if by_offset.is_empty() => return Ok(()),
        Err(e) => {
            found
                .index_damage
                .push(format!("{}: {e}", index_dir.display()));
            return Ok(());
        }
    };
    let path = dir.join(kind.file_name());
    let mut indexed_top = None::<u64>;
    let mut indexed = HashSet::new();
    let items = match index.iter() {
        Ok(it) => it,
        Err(e) => {
            found
                .index_damage
                .push(format!("{}: {e}", index_dir.display()));
            return Ok(());
        }
    };
    for item in items {
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(e) => {
                found
                    .index_damage
                    .push(format!("{}: {e}", index_dir.display()));
                return Ok(());
            }
        };
        let hash = to_hash(&key);
        let v = match decode_value(&hash, &value) {
            Ok(v) => v,
            Err(e) => {
                found
                    .index_damage
                    .push(format!("{}: {e}", index_dir.display()));
                continue;
            }
        };
        let offset = v.offset;
        match by_offset.get(&offset) {
            Some((h, intact)) if *h == hash && *intact == v => {
                indexed.insert(offset);
                indexed_top = indexed_top.max(Some(offset));
            }
            _ => found.index_damage.push(format!(
                "{}: the index places block {} at offset {offset}, where no intact entry of it (with its level and predecessors) starts",
                path.display(),
                hex(&hash)
            )),
        }
    }
    if let Some(top) = indexed_top {
        let mut missing: Vec<u64> = by_offset
            .keys()
            .copied()
            .filter(|o| *o < top && !indexed.contains(o))
            .collect();
        missing.sort_unstable();
        if let Some(first) = missing.first() {
            found.index_damage.push(format!(
                "{}: {} entries below the last indexed one are missing from the index (the first at offset {first})",
                index_dir.display(),
                missing.len()
            ));
        }
    }
    Ok(())
}

/// Repairs the store of `kind` in `dir` as [`Floating::check`] describes.
fn salvage(
    dir: &Path,
    kind: FloatingKind,
    opts: &OpenOptions,
    found: &Inspection,
    quarantine: &mut Quarantine<'_>,
    report: &mut CheckReport,
) -> Result<()> {
    let fs = opts.fs.as_ref();
    let path = dir.join(kind.file_name());
    let index_dir = dir.join(kind.index_name());
    let rel = kind.file_name();
    if found.unusable {
        quarantine.move_in(&path)?;
        report.repaired.push(format!(
            "{rel}: not a regular file; moved out, the store restarts empty"
        ));
    } else if !found.file_damage.is_empty() {
        let tmp = dir.join(format!("{rel}{REPAIR_SUFFIX}"));
        let kept = copy_entries(fs, &path, &tmp, &found.intact)?;
        quarantine.move_in(&path)?;
        fs.rename(&tmp, &path)?;
        fs.sync_dir(dir)?;
        report.repaired.push(format!(
            "{rel}: rewritten with its {} intact entries ({kept} bytes); the damaged original is in the quarantine",
            found.intact.len()
        ));
    } else if let Some(tail) = found.tail {
        quarantine.cut_tail(&path, tail)?;
        report
            .repaired
            .push(format!("{rel}: the torn tail from byte {tail} was cut"));
    }
    if fs.exists(&index_dir)? {
        quarantine.move_in(&index_dir)?;
    }
    let rw = OpenOptions {
        read_only: false,
        ..opts.clone()
    };
    let rebuilt = Floating::open(dir, kind, &rw)?;
    report.repaired.push(format!(
        "{}: rebuilt from the file ({} blocks)",
        kind.index_name(),
        rebuilt.len()
    ));
    Ok(())
}

/// Copies the entries at `intact` (offset, length) of `from` into a new
/// file `to`, back to back, each verified again; fsynced. Returns the bytes
/// written.
fn copy_entries(fs: &dyn FileSystem, from: &Path, to: &Path, intact: &[(u64, u64)]) -> Result<u64> {
    let src = fs.open(from, OpenMode::Read)?;
    let dst = fs.open(to, OpenMode::Truncate)?;
    let mut buf = Vec::new();
    let mut written = 0u64;
    for &(offset, len) in intact {
        let n = usize::try_from(len).map_err(|_| {
            Error::corrupted(from, format!("entry at offset {offset} is too large"))
        })?;
        buf.resize(n, 0);
        src.read_exact_at(&mut buf, offset)?;
        entry::parse(&buf, false).map_err(|e| {
            Error::corrupted(
                from,
                format!("entry at offset {offset} changed during repair: {e}"),
            )
        })?;
        dst.write_all_at(&buf, written)?;
        written += len;
    }
    dst.sync()?;
    Ok(written)
}

#[cfg(test)]
mod places_tests {
    use super::*;
    use crate::block::reader::BlockReader;

    fn block(i: u8) -> (Hash, Vec<u8>, Vec<u8>) {
        ([i; 32], vec![i; 300 + usize::from(i)], vec![i ^ 0xff; 50])
    }

    /// A store in `dir` holding blocks 1 and 2, closed.
    fn two_blocks(dir: &Path, opts: &OpenOptions) -> Result<()> {
        let f = Floating::open(dir, FloatingKind::Rw, opts)?;
        let genesis = [0u8; 32];
        for i in 1..=2u8 {
            let (h, c, m) = block(i);
            let b = BlockRef {
                hash: &h,
                level: i32::from(i),
                predecessor: &genesis,
                contents: &c,
                metadata: Some(&m),
            };
            f.append(&b, &[genesis], true)?;
        }
        Ok(())
    }

    fn tempdir() -> Result<tempfile::TempDir> {
        tempfile::tempdir().map_err(|e| Error::io("tempdir", Path::new("/tmp"), e))
    }

    /// A place that names another block's record (as a hash-prefix
    /// collision would) is never trusted: the read goes through the index
    /// and returns the block asked for, every time.
    #[test]
    fn a_wrong_place_falls_back_to_the_index() -> Result<()> {
        let dir = tempdir()?;
        let opts = crate::OpenOptions::read_write().no_fsync();
        two_blocks(dir.path(), &opts)?;
        // Reopened: the map covers both records.
        let f = Floating::open(dir.path(), FloatingKind::Rw, &opts)?;
        let mut reader = BlockReader::new();
        let (h1, c1, _) = block(1);
        let (h2, c2, _) = block(2);
        for _ in 0..2 {
            // Read twice: checked in the map, then placed.
            f.read_view(&h2, &mut reader)?;
        }
        let Some(at2) = f.locate_record(&h2)? else {
            return Err(Error::Inconsistent("block 2 not found".into()));
        };
        f.places.insert_checked(&h1, &at2);
        for _ in 0..3 {
            let b = f.read_view(&h1, &mut reader)?.map(|b| b.to_owned());
            assert_eq!(b.map(|b| (b.hash, b.contents)), Some((h1, c1.clone())));
            // Copying reads look the place up too.
            let b = f.read_block(&h1)?;
            assert_eq!(b.map(|b| (b.hash, b.contents)), Some((h1, c1.clone())));
        }
        let b = f.read_view(&h2, &mut reader)?.map(|b| b.to_owned());
        assert_eq!(b.map(|b| (b.hash, b.contents)), Some((h2, c2.clone())));
        let b = f.read_block(&h2)?;
        assert_eq!(b.map(|b| (b.hash, b.contents)), Some((h2, c2)));
        Ok(())
    }

    /// A copying read places the block it found checked in the map, and
    /// the next read of it, copying or borrowed, is served from the place.
    #[test]
    fn a_copying_read_places_its_block() -> Result<()> {
        let dir = tempdir()?;
        let opts = crate::OpenOptions::read_write().no_fsync();
        two_blocks(dir.path(), &opts)?;
        let f = Floating::open(dir.path(), FloatingKind::Rw, &opts)?;
        let (h1, c1, m1) = block(1);
        let (h2, _, _) = block(2);
        assert!(f.places.load().locate_in(&f.map.load(), &h1).is_none());
        let b = f.read_block(&h1)?;
        assert_eq!(
            b.map(|b| (b.contents, b.metadata)),
            Some((c1.clone(), Some(m1)))
        );
        let placed = f.places.load().locate_in(&f.map.load(), &h1);
        assert_eq!(placed.map(|at| (at.level, at.contents_len)), Some((1, 301)));
        // Only the block read is placed.
        assert!(f.places.load().locate_in(&f.map.load(), &h2).is_none());
        let mut reader = BlockReader::new();
        let b = f.read_view(&h1, &mut reader)?.map(|b| b.to_owned());
        assert_eq!(b.map(|b| b.contents), Some(c1));
        Ok(())
    }

    /// A record whose checksum fails is never placed: every read of it
    /// fails, the second and third (which a place would serve without a
    /// check) too. Placing a record before its check passed makes the
    /// second read return the damaged bytes.
    #[test]
    fn a_damaged_record_is_never_placed() -> Result<()> {
        let dir = tempdir()?;
        let opts = crate::OpenOptions::read_write().no_fsync();
        two_blocks(dir.path(), &opts)?;
        let path = dir.path().join(FloatingKind::Rw.file_name());
        let mut bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let (h1, c1, _) = block(1);
        // A byte of block 1's contents (the first record).
        let at = crate::block::record::CONTENTS_AT + c1.len() / 2;
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).map_err(|e| Error::io("write", &path, e))?;
        let f = Floating::open(
            dir.path(),
            FloatingKind::Rw,
            &crate::OpenOptions::read_only(),
        )?;
        let mut reader = BlockReader::new();
        for n in 0..3 {
            let got = f.read_view(&h1, &mut reader);
            assert!(matches!(got, Err(Error::Corrupted(_))), "read {n}: {got:?}");
            let got = f.read_block(&h1);
            assert!(matches!(got, Err(Error::Corrupted(_))), "copy {n}: {got:?}");
        }
        Ok(())
    }
}
