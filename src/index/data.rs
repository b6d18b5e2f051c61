//! The sorted data file `data`, read through a memory map.
//!
//! An index has up to two such files (module `levels`): the base `data`
//! and the smaller `delta` merged on top of it.
//!
//! Layout (little-endian), format 3: an 80-byte header `magic[8] |
//! key_size u32 | value_size u32 | flags u32 | fan_bits u32 | generation
//! u64 | count u64 | fan_crc u32 | hashes_crc u32 | entries_crc u32 | live
//! u64 | base_generation u64 | reserved[8] | crc32(bytes 0..76) u32`, then
//! three sections:
//! * the fan-out table, `2^fan_bits + 1` u64 entry indices (`fan[b]` is the
//!   first entry whose hash has top bits `b`; the last is `count`);
//! * `count` u64 hashes (`xxh3_64(key)`), ascending;
//! * `count` entries `key | value`, in the same order, sorted by
//!   `(hash, key)`.
//!
//! The hashes sit apart from the entries so that a lookup scans 8-byte
//! hashes (eight per cache line) and reads an entry only when the hash
//! matches: an absent key costs a fan-out read and usually one line of
//! hashes, a present key one more line for its entry.
//!
//! Integrity: the header and each section carry a CRC-32, all verified when
//! the file is opened (crc32fast runs at several GB/s, so 1 M entries cost
//! a few milliseconds), and the hashes are checked to be sorted and to lie
//! in the buckets the fan-out table gives them. The file is immutable once
//! renamed into place, so after that check a lookup verifies nothing: no
//! per-lookup checksum, no allocation. A damaged file is refused at open
//! (`Corrupted`) and can never produce a wrong value or a wrong absence.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::anon;
use crate::io::{FileSystem, MapPromise, Mapped, OpenMode};

const MAGIC: &[u8; 8] = b"TZSIDXD3";
/// Format 1 (no hash section), written before the hashes moved apart.
const MAGIC_V1: &[u8; 8] = b"TZSIDXD1";
/// Format 2 (no `live` count), written before the `delta` level: a
/// version that read it would not know to look for a `delta`.
const MAGIC_V2: &[u8; 8] = b"TZSIDXD2";
pub(crate) const HEADER: usize = 80;
/// Bytes of the header its checksum covers (the checksum follows them).
const HEADER_SUMMED: usize = HEADER - 4;
/// Average entries per fan-out bucket: a bucket's hashes span 256 bytes,
/// and the interpolated guess inside it is usually within a few entries, so
/// the scan stays in one or two cache lines while the fan-out table stays
/// small enough to be cached (8 bytes per 32 entries).
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
    pub hashes_crc: u32,
    pub entries_crc: u32,
    /// Live bindings of the index this file publishes: for a base file
    /// its `count`; for a `delta`, the bindings of base and delta together
    /// (a delta holds tombstones and replacements, so its count says
    /// nothing of the total).
    pub live: u64,
    /// A delta: the generation of the base it was written on (it is valid
    /// only on that base). 0 for a base.
    pub base_generation: u64,
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
        h[44..48].copy_from_slice(&self.hashes_crc.to_le_bytes());
        h[48..52].copy_from_slice(&self.entries_crc.to_le_bytes());
        h[52..60].copy_from_slice(&self.live.to_le_bytes());
        h[60..68].copy_from_slice(&self.base_generation.to_le_bytes());
        let crc = crc32fast::hash(&h[..HEADER_SUMMED]);
        h[HEADER_SUMMED..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The length of the file this header describes (`None` if its
    /// fields are out of range).
    pub(crate) fn file_len(&self) -> Option<u64> {
        if self.fan_bits > MAX_FAN_BITS {
            return None;
        }
        let fans = (1u64 << self.fan_bits) + 1;
        let esize = u64::from(self.ksize) + u64::from(self.vsize);
        (HEADER as u64 + fans * 8)
            .checked_add(self.count.checked_mul(8)?)?
            .checked_add(self.count.checked_mul(esize)?)
    }

    pub(crate) fn decode(path: &Path, h: &[u8]) -> Result<Header> {
        if h.len() < HEADER {
            return Err(Error::corrupted(
                path,
                format!("data file of {} bytes is shorter than its header", h.len()),
            ));
        }
        for (old, n) in [(MAGIC_V1, 1), (MAGIC_V2, 2)] {
            if &h[..8] == old {
                return Err(Error::corrupted(
                    path,
                    format!(
                        "index data file of format {n} (magic at offset 0), not readable by this version"
                    ),
                ));
            }
        }
        if &h[..8] != MAGIC {
            return Err(Error::corrupted(
                path,
                "not an index data file (bad magic at offset 0)",
            ));
        }
        if crc32fast::hash(&h[..HEADER_SUMMED]) != rd32(h, HEADER_SUMMED) {
            return Err(Error::corrupted(
                path,
                "data file header (offset 0) fails its checksum",
            ));
        }
        Ok(Header {
            ksize: rd32(h, 8),
            vsize: rd32(h, 12),
            flags: rd32(h, 16),
            fan_bits: rd32(h, 20),
            generation: rd64(h, 24),
            count: rd64(h, 32),
            fan_crc: rd32(h, 40),
            hashes_crc: rd32(h, 44),
            entries_crc: rd32(h, 48),
            live: rd64(h, 52),
            base_generation: rd64(h, 60),
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
    let len = file.len()?;
    let mut h = [0u8; HEADER];
    let whole = usize::try_from(len).map_or(HEADER, |l| l.min(HEADER));
    file.read_exact_at(&mut h[..whole], 0)?;
    Ok(Header::decode(path, &h[..whole])?.generation)
}

/// An open, verified data file (or the empty one of a new index).
#[derive(Debug)]
pub(crate) struct DataFile {
    map: Mapped,
    pub(crate) header: Header,
    ksize: usize,
    vsize: usize,
    hashes_off: usize,
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
                hashes_crc: 0,
                entries_crc: 0,
                live: 0,
                base_generation: 0,
            },
            ksize,
            vsize,
            hashes_off: 0,
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
        // A data file is written under a temporary name and renamed in
        // whole by a merge; the next merge replaces it by another rename.
        let map = file.map(MapPromise::IMMUTABLE)?;
        let h = Header::decode(path, &map)?;
        if h.ksize as usize != ksize || h.vsize as usize != vsize || h.flags != flags {
            return Err(Error::corrupted(
                path,
                format!(
                    "data file (header offset 8) is for key/value sizes {}/{} flags {}, the index for {ksize}/{vsize} flags {flags}",
                    h.ksize, h.vsize, h.flags
                ),
            ));
        }
        if h.fan_bits > MAX_FAN_BITS {
            return Err(Error::corrupted(
                path,
                format!(
                    "fan-out bits {} at offset 20 exceed {MAX_FAN_BITS}",
                    h.fan_bits
                ),
            ));
        }
        let fans = (1usize << h.fan_bits) + 1;
        let hashes_off = HEADER + fans * 8;
        let esize = (ksize + vsize) as u64;
        let entries_off = (hashes_off as u64).checked_add(h.count.saturating_mul(8));
        let expected = entries_off.and_then(|e| e.checked_add(h.count.saturating_mul(esize)));
        let (Some(entries_off), true) = (entries_off, expected == Some(map.len() as u64)) else {
            return Err(Error::corrupted(
                path,
                format!(
                    "data file is {} bytes, its header (count at offset 32, fan-out bits at offset 20) says {expected:?}",
                    map.len()
                ),
            ));
        };
        let entries_off = entries_off as usize;
        let fan = &map[HEADER..hashes_off];
        if crc32fast::hash(fan) != h.fan_crc {
            return Err(Error::corrupted(
                path,
                format!("fan-out table at offset {HEADER} fails its checksum"),
            ));
        }
        let hashes = &map[hashes_off..entries_off];
        if crc32fast::hash(hashes) != h.hashes_crc {
            return Err(Error::corrupted(
                path,
                format!("data hashes at offset {hashes_off} fail their checksum"),
            ));
        }
        if crc32fast::hash(&map[entries_off..]) != h.entries_crc {
            return Err(Error::corrupted(
                path,
                format!("data entries at offset {entries_off} fail their checksum"),
            ));
        }
        let mut start = 0;
        let mut prev_hash = 0;
        for b in 0..fans - 1 {
            let end = rd64(fan, (b + 1) * 8);
            if rd64(fan, b * 8) != start || end < start || end > h.count {
                return Err(Error::corrupted(
                    path,
                    format!(
                        "fan-out table is not monotonic at offset {}",
                        HEADER + b * 8
                    ),
                ));
            }
            for i in start..end {
                let hash = rd64(hashes, i as usize * 8);
                if hash < prev_hash || bucket(hash, h.fan_bits) != b {
                    return Err(Error::corrupted(
                        path,
                        format!(
                            "data hash at offset {} is not sorted into its fan-out bucket",
                            hashes_off + i as usize * 8
                        ),
                    ));
                }
                prev_hash = hash;
            }
            start = end;
        }
        if rd64(fan, 0) != 0 || start != h.count {
            return Err(Error::corrupted(
                path,
                format!("fan-out table at offset {HEADER} does not span the entries"),
            ));
        }
        Ok(DataFile {
            map,
            header: h,
            ksize,
            vsize,
            hashes_off,
            entries_off,
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.header.generation
    }

    /// File offset of the hashes section.
    pub(crate) fn hashes_offset(&self) -> usize {
        self.hashes_off
    }

    /// File offset of the entries section.
    pub(crate) fn entries_offset(&self) -> usize {
        self.entries_off
    }

    pub(crate) fn count(&self) -> u64 {
        self.header.count
    }

    /// A delta: the generation of the base below it.
    pub(crate) fn base_generation(&self) -> u64 {
        self.header.base_generation
    }

    /// Live bindings of base and delta together (see [`Header::live`]).
    pub(crate) fn live(&self) -> u64 {
        self.header.live
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

    /// The hashes of entries `from..to`, as stored.
    pub(crate) fn hashes_bytes(&self, from: u64, to: u64) -> &[u8] {
        let at = |i: u64| self.hashes_off + i as usize * 8;
        self.map.get(at(from)..at(to)).unwrap_or(&[])
    }

    /// Entries `from..to`, as stored (`key | value` each).
    pub(crate) fn entries_bytes(&self, from: u64, to: u64) -> &[u8] {
        let at = |i: u64| self.entries_off + i as usize * (self.ksize + self.vsize);
        self.map.get(at(from)..at(to)).unwrap_or(&[])
    }

    /// The hash of entry `i`.
    #[inline]
    pub(crate) fn hash(&self, i: u64) -> u64 {
        rd64(&self.map, self.hashes_off + i as usize * 8)
    }

    /// The value of `key` (hash `h`). Hashes are uniform, so the position
    /// of `h` inside its bucket is guessed by interpolation and reached by a
    /// short scan of adjacent hashes (usually inside one cache line), where
    /// a binary search would touch ~5 lines. Keys are compared only for an
    /// equal hash: an absent key reads no entry.
    #[inline]
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
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
        let hashes = self.hashes_off;
        let hash_at = |i: u64| rd64(map, hashes + i as usize * 8);
        let mut i = guess.min(hi - 1);
        let (ks, es) = (self.ksize, self.ksize + self.vsize);
        // Start loading the guessed entry now, in parallel with the hashes:
        // when the key is present it is usually that entry or a neighbour,
        // and the two memory reads then overlap instead of following each
        // other.
        if let Some(e) = map.get(self.entries_off + i as usize * es..) {
            anon::prefetch(e);
        }
        // `i` becomes the first index of the bucket whose hash is >= h.
        if hash_at(i) < h {
            i += 1;
            while i < hi && hash_at(i) < h {
                i += 1;
            }
        } else {
            while i > lo && hash_at(i - 1) >= h {
                i -= 1;
            }
        }
        while i < hi && hash_at(i) == h {
            let off = self.entries_off + i as usize * es;
            let (k, v) = map.get(off..off + es)?.split_at(ks);
            if k == key {
                return Some(v);
            }
            i += 1;
        }
        None
    }
}
