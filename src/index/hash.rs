//! The in-memory table of the unmerged log: an open-addressing hash table
//! whose records `key | value` sit in fixed-size chunks, so an entry costs
//! `key + value` bytes plus 8 to 16 bytes of slots (u32 slots, between a
//! quarter and half full), and no
//! allocation of its own (a `HashMap<Vec<u8>, Vec<u8>>` would cost two
//! allocations and ~80 bytes of overhead per entry; mirage issue #354).
//!
//! Chunks and slots are anonymous mappings ([`AnonVec`]): growing never
//! copies the records (no `Vec` doubling holding twice the table for a
//! moment), untouched capacity is not resident, and a dropped table (a
//! merged log) returns its memory to the kernel at once instead of staying
//! in the allocator's arenas. Hashes are not stored: recomputing xxh3 of a
//! key when the slots grow or a merge sorts costs a few nanoseconds, while
//! storing it would cost 8 bytes per entry.

use xxhash_rust::xxh3::xxh3_64;

use crate::io::anon::AnonVec;

/// The 64-bit hash ordering the data file and addressing this table.
#[inline]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Target size of one chunk of records.
const CHUNK_BYTES: usize = 1 << 20;

/// Key -> value, fixed sizes; values are replaced in place.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    ksize: usize,
    /// Record size: ksize + vsize.
    rsize: usize,
    /// Records per chunk, `1 << shift`.
    shift: u32,
    chunks: Vec<AnonVec<u8>>,
    len: usize,
    /// At most half full. 0 = empty, otherwise `tag << idx_bits | index +
    /// 1`, where the tag is the top bits of the key's hash: a probe reads
    /// the record (a likely cache miss) only when the tag matches.
    slots: AnonVec<u32>,
    /// log2 of the slot count: wide enough for `index + 1`, since the table
    /// holds at most half as many entries as slots.
    idx_bits: u32,
}

/// `tag << idx_bits | index + 1` for the hash `h`.
#[inline]
fn slot_value(h: u64, idx_bits: u32, index: usize) -> u32 {
    let tag_bits = u32::BITS - idx_bits;
    let tag = if tag_bits == 0 {
        0
    } else {
        (h >> (u64::BITS - tag_bits)) as u32
    };
    tag.checked_shl(idx_bits).unwrap_or(0) | (index as u32 + 1)
}

impl Table {
    pub(crate) fn new(ksize: usize, vsize: usize) -> Table {
        let rsize = ksize + vsize;
        let per_chunk = (CHUNK_BYTES / rsize).max(1);
        Table {
            ksize,
            rsize,
            shift: usize::BITS - 1 - per_chunk.leading_zeros(),
            chunks: Vec::new(),
            len: 0,
            slots: AnonVec::zeroed(16),
            idx_bits: 4,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn record(&self, i: usize) -> &[u8] {
        let mask = (1usize << self.shift) - 1;
        let off = (i & mask) * self.rsize;
        match self.chunks.get(i >> self.shift) {
            Some(c) => &c[off..off + self.rsize],
            None => &[],
        }
    }

    #[inline]
    fn record_mut(&mut self, i: usize) -> &mut [u8] {
        let mask = (1usize << self.shift) - 1;
        let off = (i & mask) * self.rsize;
        let rsize = self.rsize;
        match self.chunks.get_mut(i >> self.shift) {
            Some(c) => &mut c[off..off + rsize],
            None => &mut [],
        }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn probe(&self, h: u64, key: &[u8]) -> (usize, Option<usize>) {
        let slots = &self.slots;
        let mask = slots.len() - 1;
        let index_mask = u32::MAX >> (u32::BITS - self.idx_bits);
        // The value the slot would hold for index 0, minus that index.
        let want_tag = slot_value(h, self.idx_bits, 0) & !index_mask;
        let mut s = (h as usize) & mask;
        loop {
            let v = slots[s];
            if v == 0 {
                return (s, None);
            }
            if v & !index_mask == want_tag {
                let i = ((v & index_mask) - 1) as usize;
                if &self.record(i)[..self.ksize] == key {
                    return (s, Some(i));
                }
            }
            s = (s + 1) & mask;
        }
    }

    /// The value stored for `key` (whose hash is `h`).
    #[inline]
    pub(crate) fn get(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        if self.len == 0 {
            return None;
        }
        let (_, found) = self.probe(h, key);
        found.map(|i| &self.record(i)[self.ksize..])
    }

    /// Inserts or replaces; returns the previous value's first byte when the
    /// key was present (callers use it as the removable tag), `None` if new.
    pub(crate) fn insert(&mut self, h: u64, key: &[u8], value: &[u8]) -> Option<Option<u8>> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (slot, found) = self.probe(h, key);
        let ksize = self.ksize;
        if let Some(i) = found {
            let v = &mut self.record_mut(i)[ksize..];
            let old = v.first().copied();
            v.copy_from_slice(value);
            return Some(old);
        }
        let i = self.len;
        if i >> self.shift >= self.chunks.len() {
            self.chunks
                .push(AnonVec::zeroed((1usize << self.shift) * self.rsize));
        }
        let r = self.record_mut(i);
        r[..ksize].copy_from_slice(key);
        r[ksize..].copy_from_slice(value);
        self.len += 1;
        self.slots[slot] = slot_value(h, self.idx_bits, i);
        None
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        // The old slots are unmapped before the new ones are touched: only
        // one slot array is ever resident.
        drop(std::mem::replace(&mut self.slots, AnonVec::zeroed(0)));
        let mut slots = AnonVec::<u32>::zeroed(n);
        let idx_bits = n.trailing_zeros();
        let mask = n - 1;
        for i in 0..self.len {
            let h = key_hash(&self.record(i)[..self.ksize]);
            let mut s = (h as usize) & mask;
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = slot_value(h, idx_bits, i);
        }
        self.slots = slots;
        self.idx_bits = idx_bits;
    }

    /// The `i`-th entry in insertion order, as `(key, value)`.
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        if i >= self.len {
            return None;
        }
        Some(self.record(i).split_at(self.ksize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_get() {
        let mut t = Table::new(4, 2);
        let missing = 5000u32.to_be_bytes();
        assert_eq!(t.get(key_hash(&missing), &missing), None);
        // Enough entries to span several chunks and slot growths.
        let n = 200_000u32;
        for i in 0..n {
            let k = i.to_be_bytes();
            assert_eq!(t.insert(key_hash(&k), &k, &[1, i as u8]), None);
        }
        let k = 7u32.to_be_bytes();
        assert_eq!(t.insert(key_hash(&k), &k, &[2, 2]), Some(Some(1)));
        assert_eq!(t.get(key_hash(&k), &k), Some(&[2u8, 2][..]));
        assert_eq!(t.len(), n as usize);
        let far = (n - 1).to_be_bytes();
        assert_eq!(t.get(key_hash(&far), &far), Some(&[1u8, (n - 1) as u8][..]));
        let missing = n.to_be_bytes();
        assert_eq!(t.get(key_hash(&missing), &missing), None);
        let (k, v) = t.entry(n as usize - 1).unwrap();
        assert_eq!((k, v), (&far[..], &[1u8, (n - 1) as u8][..]));
        assert!(t.entry(n as usize).is_none());
        assert_eq!(
            t.clone().get(key_hash(k), k),
            Some(&[1u8, (n - 1) as u8][..])
        );
    }
}
