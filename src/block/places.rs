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
//! Trust: nothing read from this table is shown unchecked. A place is a
//! hint: the record it names must lie in a map that checked it, and its
//! size and hash (its first bytes) must match, or the read goes through
//! the index as before. A floating file is append-only, so a place found
//! once stays right for the life of the store object.

use parking_lot::RwLock;

use super::Hash;
use super::floating::{Located, ReadMap};

/// Most blocks the table remembers (24 bytes each, at most half full:
/// 12 MiB at the limit).
pub(crate) const MAX_PLACES: usize = 1 << 18;

/// Where one record is: its offset and its parts' lengths.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// The hash's first 8 bytes, nonzero (0 is an empty slot).
    key: u64,
    offset: u64,
    contents_len: u32,
    /// `u32::MAX` for a block without metadata.
    metadata_len: u32,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
}

/// The table (see the module documentation).
#[derive(Default)]
pub(crate) struct Places {
    table: RwLock<Table>,
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Places({} blocks)", self.table.read().len)
    }
}

fn key_of(hash: &Hash) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&hash[..8]);
    // Block hashes are uniform: their first bytes spread the slots.
    u64::from_le_bytes(k) | 1
}

impl Table {
    /// The slot holding `key`, or the empty one where it would go.
    fn find(&self, key: u64) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        loop {
            let k = self.slots[i].key;
            if k == key || k == 0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        for s in old.into_iter().filter(|s| s.key != 0) {
            if let Some(i) = self.find(s.key) {
                self.slots[i] = s;
            }
        }
    }
}

impl Places {
    /// Block `hash` as a checked record of `map`, if the table places it
    /// there and the record's size and hash agree; its level and
    /// predecessor come from the record.
    pub(crate) fn locate_in(&self, map: &ReadMap, hash: &Hash) -> Option<Located> {
        let slot = {
            let t = self.table.read();
            let s = t.slots[t.find(key_of(hash))?];
            (s.key == key_of(hash)).then_some(s)?
        };
        let mut at = Located {
            offset: slot.offset,
            level: 0,
            predecessor: [0; 32],
            contents_len: slot.contents_len,
            metadata_len: (slot.metadata_len != u32::MAX).then_some(slot.metadata_len),
        };
        let len = at.record_len();
        if !map.covers_checked(at.offset, len) {
            return None;
        }
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

    /// Remembers where block `hash` is, unless the table is full.
    pub(crate) fn insert(&self, hash: &Hash, at: &Located) {
        let key = key_of(hash);
        let mut t = self.table.write();
        if (t.len + 1) * 2 > t.slots.len() {
            if t.slots.len() >= 2 * MAX_PLACES {
                return;
            }
            t.grow();
        }
        let Some(i) = t.find(key) else {
            return;
        };
        if t.slots[i].key == 0 {
            t.len += 1;
        }
        t.slots[i] = Slot {
            key,
            offset: at.offset,
            contents_len: at.contents_len,
            metadata_len: at.metadata_len.unwrap_or(u32::MAX),
        };
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

    /// Every place inserted is found under its hash's key, through growth,
    /// and the table stops growing at its limit (inserts are then dropped,
    /// reads go through the index).
    #[test]
    fn places_are_found_until_the_limit() {
        let p = Places::default();
        let n = (MAX_PLACES + 1000) as u64;
        for i in 0..n {
            p.insert(&hash(i), &at(i));
        }
        let t = p.table.read();
        assert_eq!(t.len, MAX_PLACES);
        assert_eq!(t.slots.len(), 2 * MAX_PLACES);
        let mut found = 0;
        for i in 0..n {
            let s = t.slots[t.find(key_of(&hash(i))).unwrap()];
            if s.key == key_of(&hash(i)) {
                assert_eq!((s.offset, s.contents_len), (i * 100, i as u32));
                assert_eq!(s.metadata_len, if i % 2 == 0 { 7 } else { u32::MAX });
                found += 1;
            }
        }
        assert_eq!(found, MAX_PLACES);
    }
}
