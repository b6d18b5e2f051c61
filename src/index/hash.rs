//! The in-memory table of the unmerged log: an open-addressing hash table
//! over one flat byte arena, so an entry costs `key + value + 12` bytes and
//! no allocation of its own (a `HashMap<Vec<u8>, Vec<u8>>` would cost two
//! allocations and ~80 bytes of overhead per entry; mirage issue #354).

use xxhash_rust::xxh3::xxh3_64;

/// The 64-bit hash ordering the data file and addressing this table.
#[inline]
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Key -> value, fixed sizes; values are replaced in place.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    ksize: usize,
    vsize: usize,
    entries: Vec<u8>,
    hashes: Vec<u64>,
    /// 0 = empty, otherwise entry index + 1.
    slots: Vec<u32>,
}

impl Table {
    pub(crate) fn new(ksize: usize, vsize: usize) -> Table {
        Table {
            ksize,
            vsize,
            entries: Vec::new(),
            hashes: Vec::new(),
            slots: vec![0; 16],
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    fn esize(&self) -> usize {
        self.ksize + self.vsize
    }

    fn key_at(&self, i: usize) -> &[u8] {
        let e = i * self.esize();
        &self.entries[e..e + self.ksize]
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn probe(&self, h: u64, key: &[u8]) -> (usize, Option<usize>) {
        let mask = self.slots.len() - 1;
        let mut s = (h as usize) & mask;
        loop {
            let v = self.slots[s];
            if v == 0 {
                return (s, None);
            }
            let i = (v - 1) as usize;
            if self.hashes[i] == h && self.key_at(i) == key {
                return (s, Some(i));
            }
            s = (s + 1) & mask;
        }
    }

    /// The value stored for `key` (whose hash is `h`).
    #[inline]
    pub(crate) fn get(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        if self.hashes.is_empty() {
            return None;
        }
        let (_, found) = self.probe(h, key);
        found.map(|i| {
            let v = i * self.esize() + self.ksize;
            &self.entries[v..v + self.vsize]
        })
    }

    /// Inserts or replaces; returns the previous value's first byte when the
    /// key was present (callers use it as the removable tag), `None` if new.
    pub(crate) fn insert(&mut self, h: u64, key: &[u8], value: &[u8]) -> Option<Option<u8>> {
        if (self.hashes.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (slot, found) = self.probe(h, key);
        let es = self.esize();
        match found {
            Some(i) => {
                let v = i * es + self.ksize;
                let old = self.entries.get(v).copied();
                self.entries[v..v + self.vsize].copy_from_slice(value);
                Some(old)
            }
            None => {
                self.entries.extend_from_slice(key);
                self.entries.extend_from_slice(value);
                self.hashes.push(h);
                self.slots[slot] = self.hashes.len() as u32;
                None
            }
        }
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let mut slots = vec![0u32; n];
        let mask = n - 1;
        for (i, &h) in self.hashes.iter().enumerate() {
            let mut s = (h as usize) & mask;
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = i as u32 + 1;
        }
        self.slots = slots;
    }

    /// The `i`-th entry in insertion order.
    pub(crate) fn entry(&self, i: usize) -> Option<(u64, &[u8], &[u8])> {
        let es = self.esize();
        let h = *self.hashes.get(i)?;
        let e = self.entries.get(i * es..(i + 1) * es)?;
        Some((h, &e[..self.ksize], &e[self.ksize..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_get() {
        let mut t = Table::new(4, 2);
        for i in 0u32..1000 {
            let k = i.to_be_bytes();
            assert_eq!(t.insert(key_hash(&k), &k, &[1, i as u8]), None);
        }
        let k = 7u32.to_be_bytes();
        assert_eq!(t.insert(key_hash(&k), &k, &[2, 2]), Some(Some(1)));
        assert_eq!(t.get(key_hash(&k), &k), Some(&[2u8, 2][..]));
        assert_eq!(t.len(), 1000);
        let missing = 5000u32.to_be_bytes();
        assert_eq!(t.get(key_hash(&missing), &missing), None);
        assert!(t.entry(999).is_some() && t.entry(1000).is_none());
    }
}
