//! Where a floating store's blocks were found: a small in-memory table
//! from a block hash to its record's offset and lengths, filled by the
//! borrowed reads that found them through the index.
//!
//! Why: a borrowed read of a block already checked in its map needs only
//! where the record is; through the index that costs a probe of the log
//! table and of the data files (a fan-out slot, a line of hashes, the
//! value's lines), several dependent cache misses, where this table costs
//! one. A floating store holds the blocks of a few cycles (tens of
//! thousands), so the table is small; it stops growing at [`MAX_PLACES`].
//!
//! Trust: a place is written only for a record that passed its checksum in
//! a map of this store's file (the read that placed it found the record
//! checked), and a floating file is append-only while the store lives, so
//! the record keeps those bytes in every later map: a read placed here
//! needs no check of its own. It is still a hint: the record it names must
//! lie in the reader's map, and its size and hash (its first bytes) must
//! match the block asked for, or the read goes through the index as before.
//!
//! Readers take no lock: a slot is written once (offset and lengths, then
//! its key with release ordering), never changed, so a reader that sees
//! the key (acquire) sees the rest. A larger table is built beside the
//! old one and published (module `published`); a reader still on the old
//! one finds fewer places, never wrong ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::Hash;
use super::floating::{Located, ReadMap};
use crate::published::{Held, Published};

/// Most blocks the table remembers (24 bytes each, at most half full:
/// 12 MiB at the limit).
pub(crate) const MAX_PLACES: usize = 1 << 18;

/// Where one record is: its offset and its parts' lengths.
#[derive(Default)]
struct Slot {
    /// The hash's first 8 bytes, nonzero (0 is an empty slot); written
    /// last, with release ordering.
    key: AtomicU64,
    offset: AtomicU64,
    /// The contents' length in the low half, the metadata's in the high
    /// half (`u32::MAX` for a block without metadata).
    lens: AtomicU64,
}

/// One table of places, open addressing with linear probing, at most half
/// full (so a probe always ends at an empty slot).
pub(crate) struct PlaceTable {
    slots: Box<[Slot]>,
}

/// The table (see the module documentation).
pub(crate) struct Places {
    table: Published<PlaceTable>,
    /// Places written, held by writers.
    len: Mutex<usize>,
}

impl Default for Places {
    fn default() -> Places {
        Places {
            table: Published::new(Arc::new(PlaceTable::with_slots(0))),
            len: Mutex::new(0),
        }
    }
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Places({} blocks)", *self.len.lock())
    }
}

fn key_of(hash: &Hash) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&hash[..8]);
    // Block hashes are uniform: their first bytes spread the slots.
    u64::from_le_bytes(k) | 1
}

impl PlaceTable {
    fn with_slots(n: usize) -> PlaceTable {
        PlaceTable {
            slots: std::iter::repeat_with(Slot::default).take(n).collect(),
        }
    }

    /// The slot holding `key`, or the empty one where it would go.
    fn find(&self, key: u64) -> Option<&Slot> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        loop {
            let s = self.slots.get(i)?;
            let k = s.key.load(Ordering::Acquire);
            if k == key || k == 0 {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    /// Writes a place into the empty slot of `key`, if it has one.
    fn put(&self, key: u64, offset: u64, lens: u64) -> bool {
        match self.find(key) {
            Some(s) if s.key.load(Ordering::Relaxed) == 0 => {
                s.offset.store(offset, Ordering::Relaxed);
                s.lens.store(lens, Ordering::Relaxed);
                s.key.store(key, Ordering::Release);
                true
            }
            _ => false,
        }
    }

    /// Block `hash` as a record of `map`, if this table places it there
    /// and the record's size and hash agree; its level and predecessor
    /// come from the record.
    pub(crate) fn locate_in(&self, map: &ReadMap, hash: &Hash) -> Option<Located> {
        let key = key_of(hash);
        let slot = self.find(key)?;
        if slot.key.load(Ordering::Acquire) != key {
            return None;
        }
        let lens = slot.lens.load(Ordering::Relaxed);
        let metadata_len = (lens >> 32) as u32;
        let mut at = Located {
            offset: slot.offset.load(Ordering::Relaxed),
            level: 0,
            predecessor: [0; 32],
            contents_len: lens as u32,
            metadata_len: (metadata_len != u32::MAX).then_some(metadata_len),
        };
        let len = at.record_len();
        let start = usize::try_from(at.offset).ok()?;
        let rec = map.get(start..start.checked_add(len)?)?;
        let size = u32::from_be_bytes(rec.get(..4)?.try_into().ok()?) as usize;
        if size + 4 != len || rec.get(4..36)? != &hash[..] {
            return None;
        }
        at.level = i32::from_be_bytes(rec.get(36..40)?.try_into().ok()?);
        at.predecessor.copy_from_slice(rec.get(40..72)?);
        Some(at)
    }
}

impl Places {
    /// The current table, for a read that keeps no copy of it.
    pub(crate) fn load(&self) -> Arc<PlaceTable> {
        self.table.load()
    }

    /// The current table, from `held` if it holds it.
    pub(crate) fn current<'h>(
        &self,
        held: &'h mut Option<Held<PlaceTable>>,
    ) -> &'h Arc<PlaceTable> {
        self.table.current(held)
    }

    /// Remembers where block `hash` is, a record that passed its checksum
    /// in a map of this store's file (see the module documentation),
    /// unless the table is full or already places `hash`.
    pub(crate) fn insert_checked(&self, hash: &Hash, at: &Located) {
        let key = key_of(hash);
        let lens =
            u64::from(at.contents_len) | u64::from(at.metadata_len.unwrap_or(u32::MAX)) << 32;
        let mut len = self.len.lock();
        let mut table = self.table.load();
        if (*len + 1) * 2 > table.slots.len() {
            if table.slots.len() >= 2 * MAX_PLACES {
                return;
            }
            let bigger = PlaceTable::with_slots((table.slots.len() * 2).max(1024));
            for s in table.slots.iter() {
                let k = s.key.load(Ordering::Acquire);
                if k != 0 {
                    bigger.put(
                        k,
                        s.offset.load(Ordering::Relaxed),
                        s.lens.load(Ordering::Relaxed),
                    );
                }
            }
            table = Arc::new(bigger);
            self.table.replace(table.clone());
        }
        if table.put(key, at.offset, lens) {
            *len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> Hash {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        h[8..16].copy_from_slice(&i.to_le_bytes());
        h
    }

    fn at(i: u64) -> Located {
        Located {
            offset: i * 100,
            level: 0,
            predecessor: [0; 32],
            contents_len: i as u32,
            metadata_len: (i % 2 == 0).then_some(7),
        }
    }

    /// The place of `hash` in `t`: offset, contents and metadata lengths.
    fn place(t: &PlaceTable, hash: &Hash) -> Option<(u64, u32, u32)> {
        let s = t.find(key_of(hash))?;
        (s.key.load(Ordering::Acquire) == key_of(hash)).then(|| {
            let lens = s.lens.load(Ordering::Relaxed);
            (
                s.offset.load(Ordering::Relaxed),
                lens as u32,
                (lens >> 32) as u32,
            )
        })
    }

    /// Every place inserted is found under its hash's key, through growth,
    /// and the table stops growing at its limit (inserts are then dropped,
    /// reads go through the index).
    #[test]
    fn places_are_found_until_the_limit() {
        let p = Places::default();
        let n = (MAX_PLACES + 1000) as u64;
        for i in 0..n {
            p.insert_checked(&hash(i), &at(i));
        }
        assert_eq!(*p.len.lock(), MAX_PLACES);
        let t = p.table.load();
        assert_eq!(t.slots.len(), 2 * MAX_PLACES);
        let mut found = 0;
        for i in 0..n {
            if let Some(got) = place(&t, &hash(i)) {
                let metadata = if i % 2 == 0 { 7 } else { u32::MAX };
                assert_eq!(got, (i * 100, i as u32, metadata));
                found += 1;
            }
        }
        assert_eq!(found, MAX_PLACES);
    }

    /// A place is written once: a second insert of the same hash changes
    /// nothing, and a reader holding an older table still finds what it
    /// held (growth never changes a slot a reader can see).
    #[test]
    fn a_place_is_written_once_and_old_tables_stay_right() {
        let p = Places::default();
        p.insert_checked(&hash(1), &at(1));
        let mut held = None;
        let old = p.current(&mut held).clone();
        p.insert_checked(&hash(1), &at(3));
        for i in 2..2000 {
            p.insert_checked(&hash(i), &at(i));
        }
        let new = p.current(&mut held).clone();
        assert!(!Arc::ptr_eq(&old, &new), "the table grew");
        assert_eq!(place(&old, &hash(1)), Some((100, 1, u32::MAX)));
        assert_eq!(place(&new, &hash(1)), Some((100, 1, u32::MAX)));
        assert_eq!(place(&new, &hash(1999)), Some((199_900, 1999, u32::MAX)));
    }
}
