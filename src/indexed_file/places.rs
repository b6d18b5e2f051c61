//! Where a read-write handle's keys have their latest records: a table
//! from a key's hash to the offset of a record in the values file, so that
//! a borrowed read finds a record in one lookup of the table instead of a
//! probe of the index (a slot, then the entry: two dependent cache misses
//! before the record's).
//!
//! The table is direct-mapped and lossy: slot `h & mask` holds one key's
//! place, as `tag (24 top bits of h) | offset (40 bits)`; a key whose
//! slot holds another key's place is read through the index.
//!
//! Why a place is the key's latest record: a read that finds `tag |
//! offset` in the key's slot reads the record at that offset (checked as
//! any record a map returns) and takes it only if the record carries the
//! key. The slot then holds the key's latest record, because every append
//! writes its record's offset into the slot of its key ([`ValuePlaces::set`],
//! after its entry is visible to reads), whichever key held the slot: a
//! newer record of the key would have replaced this place. Reads fill only
//! empty slots ([`ValuePlaces::fill`], a compare-exchange from the zero
//! they saw before their index lookup): an append between that load and
//! the exchange leaves the slot nonzero, so the exchange fails, and no
//! slot ever becomes zero again, so an exchange can never succeed on a
//! slot that changed meanwhile. Were fills allowed into a taken slot, a
//! slot could go from key A's place to B's and back to A's between a
//! reader's load and its exchange, and the reader would write back a
//! place its index lookup found before an append.
//!
//! Only a read-write handle keeps the table: it alone changes its store's
//! bindings (its lock shuts out other writers), so its appends keep every
//! slot true. A read-only handle learns of other processes' appends only
//! at a sync, and reads through its index. A GC starts a new generation,
//! and with it an empty table.

use std::sync::atomic::Ordering;

use crate::io::anon::AnonAtomics;

/// Bits of a slot that hold the offset: records up to 1 TiB into a values
/// file are placed, later ones are read through the index.
const OFFSET_BITS: u32 = 40;
/// The offset field of a slot that names no record (an append past the
/// placeable offsets took the slot).
const NO_OFFSET: u64 = (1 << OFFSET_BITS) - 1;
/// Slots per key the store holds at open, so that most keys have a slot
/// to themselves (with 4, about nine in ten).
const SLOTS_PER_KEY: u64 = 4;
/// The table's bounds: 256 KiB to 16 MiB of address space, resident only
/// where slots were written.
const MIN_SLOTS: u64 = 1 << 15;
const MAX_SLOTS: u64 = 1 << 21;

/// The table (see the module documentation).
#[derive(Debug)]
pub(crate) struct ValuePlaces {
    slots: AnonAtomics,
    mask: u64,
}

/// What a read saw in a key's slot before its index lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen(u64);

/// The hash a key's slot is chosen by.
#[inline]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

fn tag(h: u64) -> u64 {
    h >> OFFSET_BITS << OFFSET_BITS
}

impl ValuePlaces {
    /// A table for a store holding about `keys` keys.
    pub(crate) fn for_keys(keys: u64) -> ValuePlaces {
        let slots = keys
            .saturating_mul(SLOTS_PER_KEY)
            .clamp(MIN_SLOTS, MAX_SLOTS)
            .next_power_of_two();
        ValuePlaces {
            slots: AnonAtomics::zeroed(slots as usize),
            mask: slots - 1,
        }
    }

    fn slot(&self, h: u64) -> Option<&std::sync::atomic::AtomicU64> {
        self.slots.get((h & self.mask) as usize)
    }

    /// The offset this table places the key of hash `h` at, if its slot
    /// holds a place with its tag (the record there must still carry the
    /// key), and what the slot held, for [`ValuePlaces::fill`].
    #[inline]
    pub(crate) fn get(&self, h: u64) -> (Seen, Option<u64>) {
        let v = self.slot(h).map_or(u64::MAX, |s| s.load(Ordering::Acquire));
        let offset = v & NO_OFFSET;
        let placed = (v != 0 && v & !NO_OFFSET == tag(h) && offset != NO_OFFSET).then_some(offset);
        (Seen(v), placed)
    }

    /// An append of the key of hash `h` wrote its record at `offset`:
    /// called after its entry is visible to reads, before the append
    /// returns.
    pub(crate) fn set(&self, h: u64, offset: u64) {
        if let Some(s) = self.slot(h) {
            s.store(tag(h) | offset.min(NO_OFFSET), Ordering::Release);
        }
    }

    /// A read found the key of hash `h` at `offset` through the index,
    /// having seen `seen` in its slot before: places it there if the slot
    /// was empty then and still is.
    pub(crate) fn fill(&self, seen: Seen, h: u64, offset: u64) {
        if seen.0 != 0 || offset >= NO_OFFSET {
            return;
        }
        if let Some(s) = self.slot(h) {
            let _ = s.compare_exchange(0, tag(h) | offset, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    #[test]
    fn a_place_is_found_under_its_own_tag_only() {
        let p = ValuePlaces::for_keys(10);
        let (seen, none) = p.get(h(1));
        assert_eq!(none, None);
        p.fill(seen, h(1), 100);
        assert_eq!(p.get(h(1)).1, Some(100));
        // Another hash of the same slot, another tag: not placed.
        let other = h(1) ^ (1 << 63);
        assert_eq!(p.get(other).1, None);
    }

    #[test]
    fn a_fill_never_replaces_what_an_append_wrote() {
        let p = ValuePlaces::for_keys(10);
        // A read saw the slot empty, then an append of the key came.
        let (seen, _) = p.get(h(2));
        p.set(h(2), 500);
        p.fill(seen, h(2), 200);
        assert_eq!(p.get(h(2)).1, Some(500));
        // A taken slot is never filled, even by its own key.
        let (seen, _) = p.get(h(2));
        p.fill(seen, h(2), 900);
        assert_eq!(p.get(h(2)).1, Some(500));
    }

    #[test]
    fn an_append_past_the_placeable_offsets_clears_the_keys_place() {
        let p = ValuePlaces::for_keys(10);
        p.set(h(3), 64);
        assert_eq!(p.get(h(3)).1, Some(64));
        p.set(h(3), 1 << OFFSET_BITS);
        assert_eq!(p.get(h(3)).1, None);
        let (seen, _) = p.get(h(3));
        p.fill(seen, h(3), 64);
        assert_eq!(p.get(h(3)).1, None);
    }

    #[test]
    fn the_table_is_sized_by_keys_within_bounds() {
        assert_eq!(ValuePlaces::for_keys(0).mask + 1, MIN_SLOTS);
        assert_eq!(ValuePlaces::for_keys(50_000).mask + 1, 1 << 18);
        assert_eq!(ValuePlaces::for_keys(u64::MAX).mask + 1, MAX_SLOTS);
    }
}
