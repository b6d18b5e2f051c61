//! Borrowed block reads: a [`BlockReader`] holds what the last block read
//! through it points into (a floating store's map, a cemented chunk's map,
//! or, for what no map covers yet, its own copy), so the caller gets the
//! block's bytes without a copy.
//!
//! What keeps a view valid: the reader owns a reference to the map
//! (`Arc`), not to the store. A merge that retires a floating store, a GC
//! that unlinks a chunk, or closing the store drops the store's own
//! references; the mapping lives on until the reader lets go of it (the
//! next read through the reader, [`BlockReader::release`], or its drop).
//! Mapped files are never truncated or rewritten below their published
//! end while mapped (`MapPromise`), so the bytes a view shows do not
//! change under it. Each record's checksum is checked the first time a
//! map returns it (see `verified_once`), before any view of it is given.
//!
//! The reader also keeps the map and the table of places of the last
//! floating store it read from, so that the next read there takes no lock
//! and touches no reference count (module `published`). It lets go of them
//! when it reads from another floating store, when a read finds its block
//! in a cemented chunk, and on [`BlockReader::release`] or drop: a retired
//! floating store's file stays mapped no longer than that.
//!
//! Read through a block store, the reader keeps the same for each of the
//! store's floating stores, in the store's order (`PartCopies`): two
//! reader threads then share no line they write, where taking the list of
//! floating stores per read (a lock and a reference count) bounced lines
//! between them. It lets go of all of them when the store's list changes
//! (a merge, a read-only sync), seen at its next read, and on
//! [`BlockReader::release`] or drop.
//!
//! The reader never holds a store itself, only maps and tables of places
//! (`ReadHandles`): a closed store's lock and a retired store's directory
//! go as soon as the store lets go of them, and nothing the reader drops
//! writes to a file.

use std::sync::Arc;

use super::cemented::chunk::Chunk;
use super::cemented::metadata::MetaBytes;
use super::floating::{Located, ReadHandles, ReadMap};
use super::places::{PlaceTable, Places};
use super::record::{CONTENTS_AT, METADATA_AFTER_CONTENTS};
use super::{Block, BlockRef, Hash};
use crate::error::{Error, Result};
use crate::published::{self, Published};

/// Holds the bytes the last block read through it points into. One reader
/// per thread: a read needs `&mut`, which ends every view of the previous
/// read, so Rust's borrow rules enforce the validity rule the C API
/// documents.
///
/// ```
/// # use tzstore::block::store::{BlockStore, BlockStoreOptions};
/// # use tzstore::block::{BlockRef, reader::BlockReader};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = BlockStore::open(dir.path(), BlockStoreOptions::default())?;
/// let (genesis, b1) = ([0u8; 32], [1u8; 32]);
/// let block = BlockRef { hash: &b1, level: 1, predecessor: &genesis, contents: b"header", metadata: None };
/// # store.store(&BlockRef { hash: &genesis, level: 0, predecessor: &genesis, contents: b"g", metadata: None })?;
/// store.store(&block)?;
/// let mut reader = BlockReader::new();
/// let view = store.read_view(&b1, 0, true, &mut reader)?.expect("stored above");
/// assert_eq!(view.contents, b"header");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct BlockReader {
    held: Held,
    /// The caller asked for the block without its metadata.
    without_metadata: bool,
    /// The map of the last floating store read from.
    floating_map: Option<published::Held<ReadMap>>,
    /// That store's table of places.
    places: Option<published::Held<PlaceTable>>,
    /// The floating stores of the block store last read through.
    parts: PartCopies,
}

/// A reader's copies of a block store's floating stores' read handles,
/// and of each one's current map and table of places, in the store's
/// order (see the module documentation).
#[derive(Default)]
struct PartCopies {
    handles: Option<published::Held<Vec<ReadHandles>>>,
    /// `handles`' list, to tell when a read took a new one.
    list: usize,
    copies: Vec<PartCopy>,
}

#[derive(Default)]
struct PartCopy {
    map: Option<published::Held<ReadMap>>,
    places: Option<published::Held<PlaceTable>>,
}

impl std::fmt::Debug for PartCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PartCopies({} floating stores)", self.copies.len())
    }
}

#[derive(Debug, Default)]
enum Held {
    #[default]
    Nothing,
    /// A record of the map in `floating_map` that passed its checksum in
    /// a map of its file before, placed by the store's table of places.
    Placed { hash: Hash, at: Located },
    /// The same, in the map of the block store's floating store number
    /// `part` (`BlockReader::parts`).
    PlacedInPart {
        part: usize,
        hash: Hash,
        at: Located,
    },
    /// A record of a floating store's map that passed its checksum in
    /// that map: where its parts are comes from its index value or from
    /// the record itself, as it was checked.
    Checked {
        map: Arc<ReadMap>,
        hash: Hash,
        at: Located,
    },
    /// The record of `level` in a cemented chunk, with the metadata read
    /// for it (decompressed, so owned; or lent by the zip's map when
    /// stored uncompressed).
    Chunk {
        chunk: Arc<Chunk>,
        level: i32,
        metadata: Option<MetaBytes>,
    },
    /// A block read by `pread` from a part of a floating file that no map
    /// covers yet.
    Owned(Block),
}

impl BlockReader {
    /// A reader holding nothing.
    pub fn new() -> BlockReader {
        BlockReader::default()
    }

    /// Lets go of what the last read pointed into (a retired store's file
    /// can then be freed), ending its view.
    pub fn release(&mut self) {
        self.held = Held::Nothing;
        self.floating_map = None;
        self.places = None;
        self.parts = PartCopies::default();
    }

    /// The block of the last successful read, borrowed from what this
    /// reader holds; `None` if it holds nothing.
    pub fn block(&self) -> Result<Option<BlockRef<'_>>> {
        let mut b = match &self.held {
            Held::Nothing => return Ok(None),
            Held::Placed { hash, at } => {
                let Some(map) = &self.floating_map else {
                    return Err(Error::Inconsistent(
                        "a placed block read without its map".into(),
                    ));
                };
                checked_record(map.value(), hash, at)?
            }
            Held::PlacedInPart { part, hash, at } => {
                let copy = self.parts.copies.get(*part);
                let Some(map) = copy.and_then(|c| c.map.as_ref()) else {
                    return Err(Error::Inconsistent(
                        "a placed block read without its map".into(),
                    ));
                };
                checked_record(map.value(), hash, at)?
            }
            Held::Checked { map, hash, at } => checked_record(map, hash, at)?,
            Held::Chunk {
                chunk,
                level,
                metadata,
            } => {
                let mut b = chunk.parse(*level)?;
                b.metadata = metadata.as_ref().map(MetaBytes::as_slice);
                b
            }
            Held::Owned(b) => b.as_ref(),
        };
        if self.without_metadata {
            b.metadata = None;
        }
        Ok(Some(b))
    }

    /// Whether the last block read through this reader is borrowed from a
    /// file's map (no copy made); false for a block no map covered yet
    /// (appended since the floating store last mapped its file), read into
    /// the reader's own buffer, and when the reader holds nothing. A
    /// cemented block's contents are always borrowed; its metadata is
    /// decompressed into the reader unless the store keeps metadata
    /// uncompressed (zstd level 0): see [`BlockReader::copies_metadata`].
    pub fn borrows_map(&self) -> bool {
        matches!(
            self.held,
            Held::Placed { .. }
                | Held::PlacedInPart { .. }
                | Held::Checked { .. }
                | Held::Chunk { .. }
        )
    }

    /// Whether the last block read holds metadata decompressed into the
    /// reader (a cemented block whose metadata is zstd-compressed) rather
    /// than lent by a map.
    pub fn copies_metadata(&self) -> bool {
        matches!(
            self.held,
            Held::Chunk {
                metadata: Some(MetaBytes::Owned(_)),
                ..
            }
        )
    }

    /// Holds block `hash` if the table of `places` places it in the
    /// current `map` (see [`PlaceTable::locate_in`]), keeping both for the
    /// next read; false if it does not.
    pub(super) fn hold_placed(
        &mut self,
        map: &Published<ReadMap>,
        places: &Places,
        hash: &Hash,
    ) -> bool {
        let table = places.current(&mut self.places);
        let map = map.current(&mut self.floating_map);
        match table.locate_in(map, hash) {
            Some(at) => {
                self.held = Held::Placed { hash: *hash, at };
                true
            }
            None => false,
        }
    }

    /// Holds block `hash` if the table of places of one of a block store's
    /// floating stores (`parts`, in the store's order) places it in that
    /// store's current map, keeping every store's copies for the next read;
    /// false if none does. One load of a counter per store looked at, no
    /// lock, no reference count, while the store's list and their maps
    /// and tables are unchanged.
    pub(super) fn hold_placed_in_parts(
        &mut self,
        parts: &Published<Vec<ReadHandles>>,
        hash: &Hash,
    ) -> bool {
        let copies = &mut self.parts;
        let handles = parts.current(&mut copies.handles);
        let list = Arc::as_ptr(handles) as usize;
        if copies.list != list {
            // Another list: let go of every copy, a retired store's map
            // with them, and of the last floating store read through the
            // index.
            copies.list = list;
            copies.copies.clear();
            self.floating_map = None;
            self.places = None;
            copies.copies.resize_with(handles.len(), PartCopy::default);
        }
        for (part, (h, copy)) in handles.iter().zip(copies.copies.iter_mut()).enumerate() {
            let table = h.places.current(&mut copy.places);
            let map = h.map.current(&mut copy.map);
            if let Some(at) = table.locate_in(map, hash) {
                self.held = Held::PlacedInPart {
                    part,
                    hash: *hash,
                    at,
                };
                return true;
            }
        }
        false
    }

    /// Holds the record of block `hash` that index value `at` places in
    /// `map`, which checked it before.
    pub(super) fn hold_checked(&mut self, map: Arc<ReadMap>, hash: Hash, at: Located) {
        self.held = Held::Checked { map, hash, at };
    }

    /// Holds the cemented record of `level` in `chunk`, and its metadata.
    pub(super) fn hold_chunk(
        &mut self,
        chunk: Arc<Chunk>,
        level: i32,
        metadata: Option<MetaBytes>,
    ) {
        // Found outside the floating stores: a retired one's map goes now.
        self.floating_map = None;
        self.places = None;
        self.held = Held::Chunk {
            chunk,
            level,
            metadata,
        };
    }

    /// Holds a block copied out of its file.
    pub(super) fn hold_owned(&mut self, block: Block) {
        self.held = Held::Owned(block);
    }

    /// Begins a read: lets go of the last one (a miss leaves the reader
    /// holding nothing) and notes whether the block's metadata is wanted.
    pub(super) fn start(&mut self, read_metadata: bool) {
        self.held = Held::Nothing;
        self.without_metadata = !read_metadata;
    }
}

/// Block `hash` from its record in `map`, placed by its index value `at`
/// without parsing the record: the map checked the record's checksum
/// before, and the record's size and hash (its first bytes) must agree
/// with the index value, so a view never shows another block's bytes.
pub(super) fn checked_record<'a>(
    map: &'a ReadMap,
    hash: &'a Hash,
    at: &'a Located,
) -> Result<BlockRef<'a>> {
    let bad =
        |why: &str| Error::corrupted(map.path(), format!("record at offset {}: {why}", at.offset));
    let start = usize::try_from(at.offset).map_err(|_| bad("offset out of range"))?;
    let len = at.record_len();
    let rec = start
        .checked_add(len)
        .and_then(|end| map.get(start..end))
        .ok_or_else(|| bad("past the map"))?;
    let size = u32::from_be_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
    if size + 4 != len || rec[4..4 + hash.len()] != hash[..] {
        return Err(bad("its size or hash differs from its index entry"));
    }
    let contents_end = CONTENTS_AT + at.contents_len as usize;
    let contents = &rec[CONTENTS_AT..contents_end];
    let metadata = at.metadata_len.map(|m| {
        let from = contents_end + METADATA_AFTER_CONTENTS;
        &rec[from..from + m as usize]
    });
    Ok(BlockRef {
        hash,
        level: at.level,
        predecessor: &at.predecessor,
        contents,
        metadata,
    })
}
