//! Where a floating store's blocks were found: a small in-memory table
//! from a block hash to its record's offset, filled by the reads that
//! found them through the index.
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
//! needs no check of its own, and its lengths, read from its first bytes,
//! are the ones its check found. It is still a hint: the record it names
//! must lie in the reader's map, and its size and hash (its first bytes)
//! must match the block asked for, or the read goes through the index as
//! before. A slot keeps 26 bits of the hash: a tag two hashes share makes
//! a read look at the other block's record first, never return it.
//!
//! Readers take no lock: a slot is one word, written once (release), never
//! changed. A larger table is built beside the old one and published
//! (module `published`); a reader still on the old one finds fewer places,
//! never wrong ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::floating::{Located, ReadMap};
use super::record::{CONTENTS_AT, FIXED, META_LEN};
use super::{HASH_SIZE, Hash};
use crate::published::{Held, Published};

/// Most blocks the table remembers (8 bytes of table each, at most three
/// quarters full: 4 MiB at the limit).
pub(crate) const MAX_PLACES: usize = 3 << 17;
/// Slots of the largest table.
const MAX_SLOTS: usize = MAX_PLACES / 3 * 4;
/// Bits of a slot that hold the record's offset: records up to 256 GiB
/// into a floating file are placed, later ones are read through the index.
const OFFSET_BITS: u32 = 38;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// Bits of a slot that hold the hash's tag, the rest.
const TAG_BITS: u32 = 64 - OFFSET_BITS;

/// One table of places, open addressing with linear probing, at most three
/// quarters full (so a probe always ends at an empty slot, usually in the
/// cache line it started in). A slot is one word, `tag (26 bits) | offset
/// (38 bits)`, 0 when empty; a probe starts at the slot the tag's top bits
/// name, so a larger table is filled from the words alone. Eight slots
/// share a cache line, so the table of a floating store's blocks stays a
/// few hundred KiB, and the lines a burst of random reads touches stay
/// cached between them. The record's
/// lengths are read from its first bytes, which the read loads anyway.
pub(crate) struct PlaceTable {
    slots: Box<[AtomicU64]>,
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

/// A hash's tag: 26 bits of a mix of all its bytes (block hashes are
/// uniform, but a caller's test hashes may differ in any byte), never 0,
/// in place in a slot's word.
fn tag_of(hash: &Hash) -> u64 {
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&hash[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    // splitmix64's finalizer: every input bit reaches the top bits.
    let mut key = w(0) ^ w(1).rotate_left(17) ^ w(2).rotate_left(31) ^ w(3).rotate_left(47);
    key = (key ^ (key >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    key = (key ^ (key >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let tag = (key ^ (key >> 31)) >> OFFSET_BITS;
    tag.max(1) << OFFSET_BITS
}

/// Reads a big-endian u32 at `at` of `bytes`.
fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl PlaceTable {
    fn with_slots(n: usize) -> PlaceTable {
        PlaceTable {
            slots: std::iter::repeat_with(AtomicU64::default).take(n).collect(),
        }
    }

    /// The slot where the probe of the tag in `word` starts: the tag's top
    /// bits (the table has at most 2^26 slots).
    fn start(&self, word: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (word >> OFFSET_BITS >> (TAG_BITS - bits.min(TAG_BITS))) as usize
    }

    /// The offsets this table names for `hash`: every slot of its probe
    /// holding its tag, until the empty slot that ends the probe (a tag
    /// shared by two hashes names both records; the read checks each).
    fn offsets(&self, hash: &Hash) -> impl Iterator<Item = u64> + '_ {
        let tag = tag_of(hash);
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.start(tag) & mask;
        let mut left = self.slots.len();
        std::iter::from_fn(move || {
            while left > 0 {
                left -= 1;
                let v = self.slots.get(i)?.load(Ordering::Acquire);
                i = (i + 1) & mask;
                if v == 0 {
                    left = 0;
                    return None;
                }
                if v & !OFFSET_MASK == tag {
                    return Some(v & OFFSET_MASK);
                }
            }
            None
        })
    }

    /// Writes `word` (a tag and an offset) into the first empty slot of
    /// its probe, unless a slot already holds it or the table has no room.
    fn put(&self, word: u64) -> bool {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.start(word) & mask;
        for _ in 0..self.slots.len() {
            let Some(s) = self.slots.get(i) else {
                return false;
            };
            match s.load(Ordering::Relaxed) {
                0 => {
                    s.store(word, Ordering::Release);
                    return true;
                }
                v if v == word => return false,
                _ => i = (i + 1) & mask,
            }
        }
        false
    }

    /// Block `hash` as a record of `map`, if this table places it there
    /// and the record's size and hash agree; its level, predecessor and
    /// lengths come from the record (checked when it was placed, and
    /// unchanged since: module documentation).
    pub(crate) fn locate_in(&self, map: &ReadMap, hash: &Hash) -> Option<Located> {
        self.offsets(hash)
            .find_map(|offset| record_at(map, offset, hash))
    }

    /// The places this table holds (for growth).
    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|&v| v != 0)
    }
}

/// The record of block `hash` at `offset` of `map`, if one starts there:
/// its size, hash and lengths must agree (a record that passed its
/// checksum always does; anything else sends the read to the index).
fn record_at(map: &ReadMap, offset: u64, hash: &Hash) -> Option<Located> {
    let start = usize::try_from(offset).ok()?;
    let head = map.get(start..start.checked_add(CONTENTS_AT)?)?;
    let size = be32(head, 0)? as usize;
    if head.get(4..4 + HASH_SIZE)? != &hash[..] {
        return None;
    }
    let contents_len = be32(head, CONTENTS_AT - 4)?;
    // What follows the contents: nothing but the tag and CRC, or the
    // metadata's length field and the metadata too.
    let rest = (size + 4)
        .checked_sub(FIXED)?
        .checked_sub(contents_len as usize)?;
    let metadata_len = match rest {
        0 => None,
        r if r >= META_LEN => Some(u32::try_from(r - META_LEN).ok()?),
        _ => return None,
    };
    let mut at = Located {
        offset,
        level: i32::from_be_bytes(head.get(36..40)?.try_into().ok()?),
        predecessor: [0; HASH_SIZE],
        contents_len,
        metadata_len,
    };
    at.predecessor
        .copy_from_slice(head.get(40..40 + HASH_SIZE)?);
    map.get(start..start.checked_add(at.record_len())?)?;
    Some(at)
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
    /// unless the table is full, already places `hash` there, or the
    /// record lies past the offsets a slot can hold.
    pub(crate) fn insert_checked(&self, hash: &Hash, at: &Located) {
        if at.offset > OFFSET_MASK {
            return;
        }
        let mut len = self.len.lock();
        let mut table = self.table.load();
        if (*len + 1) * 4 > table.slots.len() * 3 {
            if table.slots.len() >= MAX_SLOTS {
                return;
            }
            let bigger = PlaceTable::with_slots((table.slots.len() * 2).max(1024));
            for v in table.words() {
                bigger.put(v);
            }
            table = Arc::new(bigger);
            self.table.replace(table.clone());
        }
        if table.put(tag_of(hash) | at.offset) {
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

    /// Whether `t` names `offset` for `hash`.
    fn places(t: &PlaceTable, hash: &Hash, offset: u64) -> bool {
        t.offsets(hash).any(|o| o == offset)
    }

    /// Every place inserted is found under its hash, through growth, and
    /// the table stops growing at its limit (inserts are then dropped,
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
        assert_eq!(t.slots.len(), MAX_SLOTS);
        let found = (0..n).filter(|&i| places(&t, &hash(i), i * 100)).count();
        assert_eq!(found, MAX_PLACES);
        // Offsets past what a slot holds are not placed.
        let q = Places::default();
        let mut far = at(1);
        far.offset = OFFSET_MASK + 1;
        q.insert_checked(&hash(1), &far);
        assert_eq!(*q.len.lock(), 0);
    }

    /// A place is written once: a second insert of the same hash elsewhere
    /// comes after it in the probe, and a reader holding an older table
    /// still finds what it held (growth never changes a slot a reader can
    /// see).
    #[test]
    fn a_place_is_written_once_and_old_tables_stay_right() {
        let p = Places::default();
        p.insert_checked(&hash(1), &at(1));
        let mut held = None;
        let old = p.current(&mut held).clone();
        p.insert_checked(&hash(1), &at(1));
        assert_eq!(*p.len.lock(), 1);
        p.insert_checked(&hash(1), &at(3));
        for i in 2..2000 {
            p.insert_checked(&hash(i), &at(i));
        }
        let new = p.current(&mut held).clone();
        assert!(!Arc::ptr_eq(&old, &new), "the table grew");
        assert_eq!(old.offsets(&hash(1)).next(), Some(100));
        assert_eq!(new.offsets(&hash(1)).next(), Some(100));
        assert!(places(&new, &hash(1999), 199_900));
        assert!(!places(&old, &hash(1999), 199_900));
    }

    /// Two hashes with one tag: the probe of either names both records
    /// (the read then checks each record's hash), in the order placed.
    #[test]
    fn a_shared_tag_names_both_records() {
        let mut seen = std::collections::HashMap::new();
        let (a, b) = (0..200_000u64)
            .find_map(|i| seen.insert(tag_of(&hash(i)), i).map(|j| (j, i)))
            .expect("26-bit tags of 200,000 hashes collide");
        let p = Places::default();
        p.insert_checked(&hash(a), &at(a));
        p.insert_checked(&hash(b), &at(b));
        let t = p.load();
        let both = vec![a * 100, b * 100];
        assert_eq!(t.offsets(&hash(a)).collect::<Vec<_>>(), both);
        assert_eq!(t.offsets(&hash(b)).collect::<Vec<_>>(), both);
    }

    /// Hashes that differ only in their last bytes (as a caller's test
    /// hashes may) still spread over the table.
    #[test]
    fn hashes_differing_in_their_last_bytes_spread() {
        let t = PlaceTable::with_slots(2048);
        let starts: std::collections::HashSet<usize> = (0..1000u64)
            .map(|i| {
                let mut h = [0u8; 32];
                h[24..].copy_from_slice(&i.to_be_bytes());
                t.start(tag_of(&h))
            })
            .collect();
        assert!(starts.len() > 600, "{} distinct starts", starts.len());
    }
}
