//! Which records of one read-only map have had their checksum checked
//! (issue 20: verify each record at most once per mapping).
//!
//! A block read used to spend half its time on the CRC of a 10 KiB record
//! it had already checked a moment before. A record in a map of an
//! append-only file cannot change while the map lives, so one check per
//! record per map is enough:
//!
//! * the floating and cemented files are append-only for as long as a map
//!   of them lives ([`crate::io::MapPromise`]): tzstore never rewrites a
//!   byte of a published record, and cuts a file only at open (before the
//!   map), at close (after it) or where no record was ever published (a
//!   failed append, whose offset no index entry names);
//! * a slot is set only after the whole record at that exact offset passed
//!   its checksum in this map; a new map (a remap, another open) starts with
//!   none set, so damage present on disk when a map is made is always found
//!   before the record's bytes are first returned;
//! * a record this process appended through the same store object, at
//!   or past the offset where that object started appending, counts as
//!   checked without a check (`written_from`): its bytes in the page cache
//!   are the ones the append wrote, its CRC computed from them; reading
//!   them back through a map is the same trust as carrying a check over to
//!   a new map. A read-only handle, which writes nothing, has none;
//! * what this does not cover, and says so in `docs/design.md`: bytes that
//!   change under a live map without tzstore writing them (another program
//!   writing the file, or a device returning different bytes for a page
//!   that was evicted and read again without reporting an error). Those are
//!   found by the next open's reads, or by `tzstore check`.
//!
//! One slot per 64-byte granule of the map: a block record plus its
//! smallest trailer is longer than 64 bytes (checked below), so two block
//! records never start in the same granule. The slot keeps the offset's
//! low six bits, so a slot names one exact offset: a lookup at another
//! offset inside the granule (a damaged index entry, or a second short
//! record, as an indexed file's records of a few bytes can be) is never
//! taken for a checked record. Short records sharing a granule only cost
//! checks again, never one skipped.
//!
//! The indexed file's values maps use the same rule: values are appended
//! and never rewritten in a generation's file, which is cut only at open
//! (recovery, before any map) and where no record was published (a failed
//! append).

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use crate::io::Mapped;

/// Bytes of map per slot, for block files.
pub(crate) const GRANULE_SHIFT: u32 = 6;
const GRANULE: usize = 1 << GRANULE_SHIFT;
/// Set in a slot that names a checked record.
const CHECKED: u16 = 0x8000;

// Two block records never start in one granule: the smallest floating
// entry (record and empty predecessor trailer) and the smallest cemented
// record are longer than a granule.
const _: () = assert!(crate::block::record::FIXED > GRANULE);

/// The checked records of one map of `len` bytes, by offset (the floating
/// file and an indexed file's values, whose records are found by offset).
pub(crate) struct VerifiedOnce {
    slots: Box<[AtomicU16]>,
    /// log2 of the bytes of map per slot (at most 15: the slot keeps the
    /// offset's bits below it).
    shift: u32,
}

impl VerifiedOnce {
    /// No record checked yet, for a map of `len` bytes, one slot per
    /// `1 << shift` bytes (`shift` at most 15): a larger granule holds less
    /// memory (two bytes per granule) and suits records longer than it.
    pub(crate) fn with_granule(len: usize, shift: u32) -> VerifiedOnce {
        let shift = shift.min(15);
        let n = len.div_ceil(1 << shift);
        VerifiedOnce {
            slots: std::iter::repeat_with(|| AtomicU16::new(0))
                .take(n)
                .collect(),
            shift,
        }
    }

    /// This map's checks carried over to a new map of the same file, of
    /// `len` bytes: the file is append-only while mapped (see above), so a
    /// record checked in the old map holds the same bytes in the new one.
    pub(crate) fn carried_to(&self, len: usize) -> VerifiedOnce {
        let n = len.div_ceil(1 << self.shift).max(self.slots.len());
        VerifiedOnce {
            slots: (0..n)
                .map(|i| {
                    let old = self.slots.get(i).map_or(0, |s| s.load(Ordering::Acquire));
                    AtomicU16::new(old)
                })
                .collect(),
            shift: self.shift,
        }
    }

    /// The slot's value naming `offset` as checked.
    fn tag(&self, offset: usize) -> u16 {
        CHECKED | (offset & ((1 << self.shift) - 1)) as u16
    }

    /// Whether the record starting at `offset` was checked in this map.
    pub(crate) fn is_checked(&self, offset: usize) -> bool {
        self.slots
            .get(offset >> self.shift)
            .is_some_and(|s| s.load(Ordering::Acquire) == self.tag(offset))
    }

    /// Records that the record starting at `offset` passed its checksum.
    pub(crate) fn mark_checked(&self, offset: usize) {
        if let Some(s) = self.slots.get(offset >> self.shift) {
            s.store(self.tag(offset), Ordering::Release);
        }
    }

    /// Heap bytes held (two per granule).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

/// A read-only map of an append-only file, of which reads use only the
/// records published when it was made (later ones are read by `pread`, so
/// no read depends on a map showing writes made after it: a shared mapping
/// does, the crash model's copy does not), and which of those passed
/// their checksum in it. Floating block files and indexed-file values
/// files use it.
pub(crate) struct PublishedMap {
    bytes: Mapped,
    published: usize,
    checked: VerifiedOnce,
    /// Records at or past this offset were appended by the store object
    /// that made this map (see the module documentation); `usize::MAX`
    /// for a handle that writes nothing.
    written_from: usize,
}

impl PublishedMap {
    /// A map of `bytes` whose first `published` bytes hold published
    /// records, one check slot per `1 << granule_shift` bytes, none
    /// checked yet. Records at or past `written_from` are the store
    /// object's own appends (`u64::MAX`: none).
    pub(crate) fn new(
        bytes: Mapped,
        published: u64,
        granule_shift: u32,
        written_from: u64,
    ) -> PublishedMap {
        let published = published_len(&bytes, published);
        PublishedMap {
            checked: VerifiedOnce::with_granule(published, granule_shift),
            bytes,
            published,
            written_from: usize::try_from(written_from).unwrap_or(usize::MAX),
        }
    }

    /// A map of the same file grown to `bytes` (its first `published`
    /// bytes published), keeping this map's checks (append-only: the
    /// records it checked have not changed) and where its store object's
    /// own appends begin.
    pub(crate) fn renewed(&self, bytes: Mapped, published: u64) -> PublishedMap {
        let published = published_len(&bytes, published);
        PublishedMap {
            checked: self.checked.carried_to(published),
            bytes,
            published,
            written_from: self.written_from,
        }
    }

    /// The published bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.published]
    }

    /// Bytes mapped, published or not.
    pub(crate) fn mapped_len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the record starting at `offset` passed its checksum here,
    /// or is one this store object appended.
    pub(crate) fn is_checked(&self, offset: usize) -> bool {
        offset >= self.written_from || self.checked.is_checked(offset)
    }

    /// Records that the record starting at `offset` passed its checksum.
    pub(crate) fn mark_checked(&self, offset: usize) {
        self.checked.mark_checked(offset)
    }
}

/// The published bytes of a map: `published`, or fewer if not mapped.
fn published_len(bytes: &Mapped, published: u64) -> usize {
    usize::try_from(published)
        .unwrap_or(usize::MAX)
        .min(bytes.len())
}

/// The checked records of one map, by their number (a cemented chunk's
/// records are found by level): one bit each.
pub(crate) struct CheckedSlots {
    bits: Box<[AtomicU64]>,
}

impl CheckedSlots {
    /// No record checked yet, among `n`.
    pub(crate) fn new(n: usize) -> CheckedSlots {
        CheckedSlots {
            bits: std::iter::repeat_with(|| AtomicU64::new(0))
                .take(n.div_ceil(64))
                .collect(),
        }
    }

    /// Whether record `i` was checked in this map.
    pub(crate) fn is_checked(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (i % 64)) != 0)
    }

    /// Records that record `i` passed its checksum.
    pub(crate) fn mark_checked(&self, i: usize) {
        if let Some(w) = self.bits.get(i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_offset_that_was_marked_counts_as_checked() {
        let v = VerifiedOnce::with_granule(1000, GRANULE_SHIFT);
        assert_eq!(v.heap_bytes(), 32);
        assert!(!v.is_checked(130));
        v.mark_checked(130);
        assert!(v.is_checked(130));
        // Same granule, other offsets: not checked.
        for o in (128..192).filter(|&o| o != 130) {
            assert!(!v.is_checked(o), "offset {o}");
        }
        // Offsets past the map are never checked, and marking them is a no-op.
        v.mark_checked(5000);
        assert!(!v.is_checked(5000));
        // Offset 0 is distinct from an empty slot.
        assert!(!v.is_checked(0));
        v.mark_checked(0);
        assert!(v.is_checked(0));
    }

    #[test]
    fn a_larger_granule_still_names_exact_offsets() {
        // Short records sharing a 1 KiB granule: marking one unmarks the
        // other (a check more), never marks it.
        let v = VerifiedOnce::with_granule(4096, 10);
        assert_eq!(v.heap_bytes(), 8);
        v.mark_checked(1030);
        assert!(v.is_checked(1030));
        v.mark_checked(1040);
        assert!(v.is_checked(1040) && !v.is_checked(1030));
        assert!((1024..2048).filter(|&o| v.is_checked(o)).eq([1040]));
    }

    /// A store object's own appends count as checked; what was in the file
    /// before it (and everything, for a handle that writes nothing) is
    /// checked on first read.
    #[test]
    fn only_the_store_objects_own_appends_count_as_checked_unread() {
        let bytes = || Mapped::from_bytes(vec![0u8; 4096]);
        let writer = PublishedMap::new(bytes(), 4096, GRANULE_SHIFT, 1000);
        assert!(!writer.is_checked(0) && !writer.is_checked(999));
        assert!(writer.is_checked(1000) && writer.is_checked(3000));
        let reader = PublishedMap::new(bytes(), 4096, GRANULE_SHIFT, u64::MAX);
        assert!((0..4096).all(|o| !reader.is_checked(o)));
        // A renewed map keeps both: its own appends and what was checked.
        writer.mark_checked(100);
        let grown = writer.renewed(Mapped::from_bytes(vec![0u8; 8192]), 8192);
        assert!(grown.is_checked(100) && !grown.is_checked(200));
        assert!(grown.is_checked(1000) && grown.is_checked(6000));
        let grown = reader.renewed(Mapped::from_bytes(vec![0u8; 8192]), 8192);
        assert!((0..8192).all(|o| !grown.is_checked(o)));
    }

    #[test]
    fn checks_carry_over_to_a_longer_map() {
        let v = VerifiedOnce::with_granule(256, GRANULE_SHIFT);
        v.mark_checked(70);
        let w = v.carried_to(1024);
        assert!(w.is_checked(70) && !w.is_checked(71));
        w.mark_checked(900);
        assert!(w.is_checked(900) && !v.is_checked(900));
    }

    #[test]
    fn slots_are_checked_one_by_one() {
        let s = CheckedSlots::new(130);
        assert!((0..130).all(|i| !s.is_checked(i)));
        for i in [0, 63, 64, 129] {
            s.mark_checked(i);
        }
        let checked: Vec<usize> = (0..200).filter(|&i| s.is_checked(i)).collect();
        assert_eq!(checked, [0, 63, 64, 129]);
        s.mark_checked(500);
        assert!(!s.is_checked(500));
    }
}
