//! The sorted data file `data`, read through a memory map.
//!
//! Layout (little-endian): a 64-byte header `magic[8] | key_size u32 |
//! value_size u32 | flags u32 | fan_bits u32 | generation u64 | count u64 |
//! fan_crc u32 | entries_crc u32 | reserved[12] | crc32(bytes 0..60) u32`,
//! then the fan-out table, `2^fan_bits + 1` u64 entry indices (`fan[b]` is
//! the first entry whose hash has top bits `b`; the last is `count`), then
//! `count` entries `key | value`, sorted by `(xxh3_64(key), key)`.
//!
//! Integrity: the header, the fan-out table and the entries each carry a
//! CRC-32, all verified when the file is opened (crc32fast runs at several
//! GB/s, so 1 M entries cost a few milliseconds). The file is immutable once
//! renamed into place, so after that check a lookup reads at most a fan-out
//! page and an entry page and verifies nothing: no per-lookup checksum, no
//! allocation. A damaged file is refused at open (`Corrupted`) and can never
//! produce a wrong value or a wrong absence.

use std::path::Path;

use super::hash::key_hash;
use crate::error::{Error, Result};
use crate::io::{FileSystem, Mapped, OpenMode};

const MAGIC: &[u8; 8] = b"TZSIDXD1";
pub(crate) const HEADER: usize = 64;
/// Average entries per fan-out bucket (a bucket of 32-byte keys and 8-byte
/// values spans about 1.3 KB, within one or two pages).
const PER_BUCKET: u64 = 32;
const MAX_FAN_BITS: u32 = 26;

/// Flag bit: values carry the removable tag byte.
pub(crate) const FLAG_REMOVABLE: u32 = 1;

fn rd32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

#[inline]
fn rd64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The fan-out bits for at most `n` entries.
pub(crate) fn fan_bits_for(n: u64) -> u32 {
    let buckets = n.div_ceil(PER_BUCKET).max(1);
    (64 - (buckets - 1).leading_zeros()).min(MAX_FAN_BITS)
}

#[inline]
pub(crate) fn bucket(h: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (h >> (64 - bits)) as usize
    }
}

/// Decoded header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub ksize: u32,
    pub vsize: u32,
    pub flags: u32,
    pub fan_bits: u32,
    pub generation: u64,
    pub count: u64,
    pub fan_crc: u32,
    pub entries_crc: u32,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.ksize.to_le_bytes());
        h[12..16].copy_from_slice(&self.vsize.to_le_bytes());
        h[16..20].copy_from_slice(&self.flags.to_le_bytes());
        h[20..24].copy_from_slice(&self.fan_bits.to_le_bytes());
        h[24..32].copy_from_slice(&self.generation.to_le_bytes());
        h[32..40].copy_from_slice(&self.count.to_le_bytes());
        h[40..44].copy_from_slice(&self.fan_crc.to_le_bytes());
        h[44..48].copy_from_slice(&self.entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(path: &Path, h: &[u8]) -> Result<Header> {
        if h.len() < HEADER {
            return Err(Error::corrupted(path, "data file shorter than its header"));
        }
        if &h[..8] != MAGIC {
            return Err(Error::corrupted(path, "not an index data file (bad magic)"));
        }
        if crc32fast::hash(&h[..60]) != rd32(h, 60) {
            return Err(Error::corrupted(path, "data file header checksum mismatch"));
        }
        Ok(Header {
            ksize: rd32(h, 8),
            vsize: rd32(h, 12),
            flags: rd32(h, 16),
            fan_bits: rd32(h, 20),
            generation: rd64(h, 24),
            count: rd64(h, 32),
            fan_crc: rd32(h, 40),
            entries_crc: rd32(h, 44),
        })
    }
}

/// Reads only the generation of `path` (0 if the file does not exist).
pub(crate) fn read_generation(fs: &dyn FileSystem, path: &Path) -> Result<u64> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut h = [0u8; HEADER];
    file.read_exact_at(&mut h, 0)?;
    Ok(Header::decode(path, &h)?.generation)
}

/// An open, verified data file (or the empty one of a new index).
#[derive(Debug)]
pub(crate) struct DataFile {
    map: Mapped,
    pub(crate) header: Header,
    ksize: usize,
    vsize: usize,
    entries_off: usize,
}

impl DataFile {
    /// The data of an index with no merge yet (generation 0).
    pub(crate) fn empty(ksize: usize, vsize: usize) -> DataFile {
        DataFile {
            map: Mapped::from_bytes(Vec::new()),
            header: Header {
                ksize: ksize as u32,
                vsize: vsize as u32,
                flags: 0,
                fan_bits: 0,
                generation: 0,
                count: 0,
                fan_crc: 0,
                entries_crc: 0,
            },
            ksize,
            vsize,
            entries_off: 0,
        }
    }

    /// Maps and fully verifies `path`; a missing file is the empty data.
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        ksize: usize,
        vsize: usize,
        flags: u32,
    ) -> Result<DataFile> {
        let file = match fs.open(path, OpenMode::Read) {
            Ok(f) => f,
            Err(Error::NotFound(_)) => return Ok(DataFile::empty(ksize, vsize)),
            Err(e) => return Err(e),
        };
        let map = file.map()?;
        let h = Header::decode(path, &map)?;
        if h.ksize as usize != ksize || h.vsize as usize != vsize || h.flags != flags {
            return Err(Error::corrupted(
                path,
                format!(
                    "data file is for key/value sizes {}/{} flags {}, the index for {ksize}/{vsize} flags {flags}",
                    h.ksize, h.vsize, h.flags
                ),
            ));
        }
        if h.fan_bits > MAX_FAN_BITS {
            return Err(Error::corrupted(path, "fan-out table too large"));
        }
        let fans = (1usize << h.fan_bits) + 1;
        let entries_off = HEADER + fans * 8;
        let esize = (ksize + vsize) as u64;
        let expected = (entries_off as u64).checked_add(h.count.saturating_mul(esize));
        if expected != Some(map.len() as u64) {
            return Err(Error::corrupted(
                path,
                format!(
                    "data file is {} bytes, its header says {expected:?}",
                    map.len()
                ),
            ));
        }
        let fan = &map[HEADER..entries_off];
        if crc32fast::hash(fan) != h.fan_crc {
            return Err(Error::corrupted(path, "fan-out table checksum mismatch"));
        }
        if crc32fast::hash(&map[entries_off..]) != h.entries_crc {
            return Err(Error::corrupted(path, "data entries checksum mismatch"));
        }
        let mut prev = 0;
        for b in 0..fans {
            let f = rd64(fan, b * 8);
            if f < prev || f > h.count {
                return Err(Error::corrupted(path, "fan-out table is not monotonic"));
            }
            prev = f;
        }
        if prev != h.count {
            return Err(Error::corrupted(
                path,
                "fan-out table does not end at the entry count",
            ));
        }
        Ok(DataFile {
            map,
            header: h,
            ksize,
            vsize,
            entries_off,
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.header.generation
    }

    pub(crate) fn count(&self) -> u64 {
        self.header.count
    }

    /// Entry `i` as `(key, value)`.
    #[inline]
    pub(crate) fn entry(&self, i: u64) -> (&[u8], &[u8]) {
        let es = self.ksize + self.vsize;
        let off = self.entries_off + i as usize * es;
        match self.map.get(off..off + es) {
            Some(e) => e.split_at(self.ksize),
            None => (&[], &[]),
        }
    }

    /// The value of `key` (hash `h`). Hashes are uniform, so the entry's
    /// position inside its bucket is guessed by interpolation and reached by
    /// a short linear scan over adjacent entries: usually one or two cache
    /// lines after the fan-out read, where a binary search would touch ~5.
    #[inline]
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        use std::cmp::Ordering::*;
        if self.header.count == 0 {
            return None;
        }
        // One dereference of the mapping (a trait object) per lookup.
        let map: &[u8] = &self.map;
        let bits = self.header.fan_bits;
        let b = bucket(h, bits);
        let lo = rd64(map, HEADER + b * 8);
        let hi = rd64(map, HEADER + (b + 1) * 8);
        if lo >= hi {
            return None;
        }
        // Offset of `h` inside its bucket's hash range, as a fraction.
        let within = if bits == 0 { h } else { h << bits };
        let guess = lo + ((u128::from(within) * u128::from(hi - lo)) >> 64) as u64;
        let mut i = guess.min(hi - 1);
        let (ks, es) = (self.ksize, self.ksize + self.vsize);
        let cmp = |i: u64| {
            let off = self.entries_off + i as usize * es;
            let (k, v) = match map.get(off..off + es) {
                Some(e) => e.split_at(ks),
                None => (&[][..], &[][..]),
            };
            (key_hash(k).cmp(&h).then_with(|| k.cmp(key)), v)
        };
        match cmp(i) {
            (Equal, v) => Some(v),
            (Less, _) => loop {
                i += 1;
                if i >= hi {
                    return None;
                }
                match cmp(i) {
                    (Less, _) => {}
                    (Equal, v) => return Some(v),
                    (Greater, _) => return None,
                }
            },
            (Greater, _) => loop {
                if i <= lo {
                    return None;
                }
                i -= 1;
                match cmp(i) {
                    (Greater, _) => {}
                    (Equal, v) => return Some(v),
                    (Less, _) => return None,
                }
            },
        }
    }
}
