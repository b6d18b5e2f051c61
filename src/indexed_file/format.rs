//! The on-disk formats of an indexed file (format version 2): the `current`
//! file, the header of a `values` file and its records, and a buffered
//! reader that finds records in a values file without trusting any length
//! it reads.
//!
//! * `current`: `magic "TZSIFC02" | n u64 | key_size u32 | header_size u32 |
//!   flags u32 | crc32 u32` (32 bytes, big-endian): the live generation and
//!   the store's sizes, so `check` can read a store it is given no
//!   configuration for.
//! * `values` header: `magic "TZSIFV02" | key_size u32 | header_size u32 |
//!   flags u32 | crc32 u32` (24 bytes), a second copy of the sizes.
//! * a record: `magic 0xD7 "IFR" | len u32 | key | header | value[len] |
//!   crc32 u32`, the CRC over everything before it. The record carries its
//!   key (and the header, unless the header is the value's start) so a read
//!   can prove it got the record of the key it asked for, and a repair can
//!   rebuild the index from the values alone. The magic lets a repair find
//!   the next record after a damaged one.

use crate::error::{Error, Result};
use crate::io::{FileHandle, frame};

/// Magic of the `current` file.
const CURRENT_MAGIC: &[u8; 8] = b"TZSIFC02";
/// Size of the `current` file.
pub(crate) const CURRENT_LEN: usize = 32;
/// Magic of a values file.
const VALUES_MAGIC: &[u8; 8] = b"TZSIFV02";
/// Size of a values file's header; the first record starts here.
pub(crate) const VALUES_HEADER: u64 = 24;
/// Magic at the start of every record.
pub(crate) const RECORD_MAGIC: [u8; 4] = [0xD7, b'I', b'F', b'R'];
/// Largest value the store accepts (256 MiB); a longer length read from
/// disk is damage, never an allocation.
pub const MAX_VALUE: usize = 1 << 28;
/// Largest key, and largest header plus the 8-byte offset, the index takes.
const MAX_SIZE: usize = crate::index::MAX_SIZE;
/// Bit of `flags`: the header is the start of the value.
const FLAG_HEADER_IN_VALUE: u32 = 1;
/// Bytes read at once when scanning a values file.
const CHUNK: usize = 1 << 20;

/// The sizes a store was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub key_size: usize,
    pub header_size: usize,
    pub header_in_value: bool,
}

impl Layout {
    /// Header bytes stored in each record (none when the header is the
    /// value's start).
    pub fn stored_header(&self) -> usize {
        if self.header_in_value {
            0
        } else {
            self.header_size
        }
    }

    /// Bytes of a record before its value.
    pub fn prefix(&self) -> usize {
        8 + self.key_size + self.stored_header()
    }

    /// `InvalidArgument` unless the index can hold these sizes.
    pub fn validate(&self) -> Result<()> {
        if self.key_size == 0 || self.key_size > MAX_SIZE || self.header_size > MAX_SIZE - 8 {
            return Err(Error::invalid(format!(
                "key size must be 1..={MAX_SIZE} and header size 0..={}, got {} and {}",
                MAX_SIZE - 8,
                self.key_size,
                self.header_size
            )));
        }
        Ok(())
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.key_size as u32).to_be_bytes());
        out.extend_from_slice(&(self.header_size as u32).to_be_bytes());
        let flags = if self.header_in_value {
            FLAG_HEADER_IN_VALUE
        } else {
            0
        };
        out.extend_from_slice(&flags.to_be_bytes());
    }

    /// Decodes the 12 bytes of sizes and flags; `None` if out of range.
    fn decode(b: &[u8]) -> Option<Layout> {
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let flags = word(8);
        if flags & !FLAG_HEADER_IN_VALUE != 0 {
            return None;
        }
        let l = Layout {
            key_size: word(0) as usize,
            header_size: word(4) as usize,
            header_in_value: flags & FLAG_HEADER_IN_VALUE != 0,
        };
        l.validate().ok().map(|()| l)
    }
}

/// The bytes of a `current` file naming generation `n`.
pub(crate) fn encode_current(n: u64, layout: &Layout) -> Vec<u8> {
    let mut b = Vec::with_capacity(CURRENT_LEN);
    b.extend_from_slice(CURRENT_MAGIC);
    b.extend_from_slice(&n.to_be_bytes());
    layout.encode_into(&mut b);
    let crc = frame::crc(&[&b]);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes a `current` file: the generation and the sizes, or why not.
pub(crate) fn decode_current(b: &[u8]) -> std::result::Result<(u64, Layout), String> {
    if b.len() != CURRENT_LEN {
        return Err(format!(
            "generation file of {} bytes, expected {CURRENT_LEN}",
            b.len()
        ));
    }
    if &b[..8] != CURRENT_MAGIC {
        return Err("not an indexed-file generation file (bad magic at offset 0)".into());
    }
    if frame::crc(&[&b[..28]]).to_be_bytes() != b[28..32] {
        return Err("generation file fails its checksum (offset 28)".into());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&b[8..16]);
    let layout = Layout::decode(&b[16..28])
        .ok_or_else(|| "generation file holds sizes out of range (offset 16)".to_string())?;
    Ok((u64::from_be_bytes(n), layout))
}

/// The header of a values file.
pub(crate) fn encode_values_header(layout: &Layout) -> Vec<u8> {
    let mut b = Vec::with_capacity(VALUES_HEADER as usize);
    b.extend_from_slice(VALUES_MAGIC);
    layout.encode_into(&mut b);
    let crc = frame::crc(&[&b]);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes a values file's header: the sizes, or why not.
pub(crate) fn decode_values_header(b: &[u8]) -> std::result::Result<Layout, String> {
    if b.len() < VALUES_HEADER as usize {
        return Err(format!(
            "values file of {} bytes is shorter than its {VALUES_HEADER}-byte header",
            b.len()
        ));
    }
    if &b[..8] != VALUES_MAGIC {
        return Err("not an indexed-file values file (bad magic at offset 0)".into());
    }
    if frame::crc(&[&b[..20]]).to_be_bytes() != b[20..24] {
        return Err("values header fails its checksum (offset 20)".into());
    }
    Layout::decode(&b[8..20])
        .ok_or_else(|| "values header holds sizes out of range (offset 8)".to_string())
}

/// Reads and checks the header of `file` against `layout`.
pub(crate) fn check_values_header(file: &dyn FileHandle, layout: &Layout) -> Result<()> {
    let len = file.len()?;
    let mut b = [0u8; VALUES_HEADER as usize];
    let n = (len.min(VALUES_HEADER)) as usize;
    file.read_exact_at(&mut b[..n], 0)?;
    match decode_values_header(&b[..n]) {
        Ok(l) if l == *layout => Ok(()),
        Ok(l) => Err(Error::corrupted(
            file.path(),
            format!("values header says {l:?}, the generation file {layout:?}"),
        )),
        Err(why) => Err(Error::corrupted(file.path(), why)),
    }
}

/// Encodes one record.
pub(crate) fn encode_record(
    layout: &Layout,
    key: &[u8],
    header: &[u8],
    value: &[u8],
) -> Result<Vec<u8>> {
    if value.len() > MAX_VALUE {
        return Err(Error::invalid(format!(
            "value of {} bytes exceeds the maximum of {MAX_VALUE}",
            value.len()
        )));
    }
    let header = if layout.header_in_value {
        &[][..]
    } else {
        header
    };
    let mut b = Vec::with_capacity(layout.prefix() + value.len() + 4);
    b.extend_from_slice(&RECORD_MAGIC);
    b.extend_from_slice(&(value.len() as u32).to_be_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(header);
    b.extend_from_slice(value);
    let crc = frame::crc(&[&b]);
    b.extend_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// A whole, intact record, borrowed from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub key: &'a [u8],
    /// The stored header (empty when the header is the value's start).
    pub header: &'a [u8],
    pub value: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's header, wherever it is stored; `None` when the value is
    /// shorter than a header it should start with.
    pub fn header_of(&self, layout: &Layout) -> Option<&'a [u8]> {
        if layout.header_in_value {
            self.value.get(..layout.header_size)
        } else {
            Some(self.header)
        }
    }
}

/// What starts a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// An intact record and its size.
    Record(Record<'a>, usize),
    /// The buffer ends inside the record, whose declared size it gives when
    /// known (the prefix was read and its length is in bounds).
    Incomplete(Option<usize>),
    /// Not a record: why.
    Bad(String),
}

/// The total size of the record whose prefix starts `head`, or why the
/// prefix is not one. `head` must hold at least `layout.prefix()` bytes.
fn record_size(head: &[u8], layout: &Layout) -> std::result::Result<usize, String> {
    if head[..4] != RECORD_MAGIC {
        return Err("no record magic".into());
    }
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > MAX_VALUE {
        return Err(format!(
            "record length {len} exceeds the maximum value size {MAX_VALUE}"
        ));
    }
    Ok(layout.prefix() + len + 4)
}

/// Decodes the record at the start of `buf`.
pub(crate) fn decode_record<'a>(buf: &'a [u8], layout: &Layout) -> Decoded<'a> {
    decode_record_with(buf, layout, true)
}

/// [`decode_record`] of a record that passed its checksum in this same
/// read-only map before (see `verified_once`): every length is still
/// checked, the checksum is not computed again.
pub(crate) fn decode_record_checked_before<'a>(buf: &'a [u8], layout: &Layout) -> Decoded<'a> {
    decode_record_with(buf, layout, false)
}

fn decode_record_with<'a>(buf: &'a [u8], layout: &Layout, check_crc: bool) -> Decoded<'a> {
    let pre = layout.prefix();
    if buf.len() < pre {
        if buf.len() >= 4 && buf[..4] != RECORD_MAGIC {
            return Decoded::Bad("no record magic".into());
        }
        return Decoded::Incomplete(None);
    }
    let total = match record_size(buf, layout) {
        Ok(t) => t,
        Err(why) => return Decoded::Bad(why),
    };
    if buf.len() < total {
        return Decoded::Incomplete(Some(total));
    }
    let body = &buf[..total - 4];
    if check_crc {
        let stored = u32::from_be_bytes([
            buf[total - 4],
            buf[total - 3],
            buf[total - 2],
            buf[total - 1],
        ]);
        if frame::crc(&[body]) != stored {
            return Decoded::Bad("record fails its checksum".into());
        }
    }
    let ks = layout.key_size;
    let hs = layout.stored_header();
    Decoded::Record(
        Record {
            key: &body[8..8 + ks],
            header: &body[8 + ks..8 + ks + hs],
            value: &body[8 + ks + hs..],
        },
        total,
    )
}

/// Reads records out of a values file through one buffer, never reading or
/// allocating past the file's length.
pub(crate) struct Reader<'f> {
    file: &'f dyn FileHandle,
    len: u64,
    layout: Layout,
    buf: Vec<u8>,
    at: u64,
    /// Bytes read at least per refill.
    chunk: usize,
}

impl<'f> Reader<'f> {
    /// A reader of the first `len` bytes of `file`.
    pub fn new(file: &'f dyn FileHandle, len: u64, layout: Layout) -> Reader<'f> {
        Reader {
            file,
            len,
            layout,
            buf: Vec::new(),
            at: 0,
            chunk: CHUNK,
        }
    }

    /// A reader for one record: it reads only the bytes it needs.
    pub fn exact(file: &'f dyn FileHandle, len: u64, layout: Layout) -> Reader<'f> {
        Reader {
            chunk: 0,
            ..Reader::new(file, len, layout)
        }
    }

    /// The bytes `pos..pos + n`; the caller keeps `pos + n <= len`.
    fn get(&mut self, pos: u64, n: usize) -> Result<&[u8]> {
        let end = pos + n as u64;
        if pos < self.at || end > self.at + self.buf.len() as u64 {
            let want = (n.max(self.chunk) as u64).min(self.len - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.at = pos;
        }
        let rel = (pos - self.at) as usize;
        Ok(&self.buf[rel..rel + n])
    }

    /// The record at `pos` (`pos <= len`).
    pub fn record_at(&mut self, pos: u64) -> Result<Decoded<'_>> {
        let rem = self.len.saturating_sub(pos);
        let pre = self.layout.prefix();
        let layout = self.layout;
        if rem < pre as u64 {
            let head = self.get(pos, rem as usize)?;
            return Ok(decode_record(head, &layout));
        }
        let head = self.get(pos, pre)?;
        let total = match record_size(head, &layout) {
            Ok(t) => t,
            Err(why) => return Ok(Decoded::Bad(why)),
        };
        if total as u64 > rem {
            return Ok(Decoded::Incomplete(Some(total)));
        }
        let buf = self.get(pos, total)?;
        Ok(decode_record(buf, &layout))
    }

    /// The offset of the first intact record at or after `from`, if any:
    /// where reading resumes after a damaged record.
    pub fn next_record(&mut self, from: u64) -> Result<Option<u64>> {
        let mut p = from;
        while p + 4 <= self.len {
            let n = (CHUNK as u64).min(self.len - p) as usize;
            let chunk = self.get(p, n)?;
            let hits: Vec<u64> = chunk
                .windows(4)
                .enumerate()
                .filter(|(_, w)| *w == RECORD_MAGIC)
                .map(|(i, _)| p + i as u64)
                .collect();
            for q in hits {
                if let Decoded::Record(..) = self.record_at(q)? {
                    return Ok(Some(q));
                }
            }
            if p + n as u64 >= self.len {
                break;
            }
            // Overlap by 3 bytes so a magic across two chunks is seen.
            p += n as u64 - 3;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: Layout = Layout {
        key_size: 4,
        header_size: 2,
        header_in_value: false,
    };

    #[test]
    fn round_trip_and_damage() {
        let rec = encode_record(&L, b"kkkk", b"hh", b"value").unwrap();
        match decode_record(&rec, &L) {
            Decoded::Record(r, n) => {
                assert_eq!(
                    (r.key, r.header, r.value, n),
                    (&b"kkkk"[..], &b"hh"[..], &b"value"[..], rec.len())
                );
            }
            other => panic!("{other:?}"),
        }
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(
                !matches!(decode_record(&bad, &L), Decoded::Record(..)),
                "byte {i}"
            );
        }
        assert_eq!(
            decode_record(&rec[..rec.len() - 1], &L),
            Decoded::Incomplete(Some(rec.len()))
        );
        let l = Layout::decode(&encode_values_header(&L)[8..20]).unwrap();
        assert_eq!(l, L);
        assert_eq!(decode_current(&encode_current(7, &L)), Ok((7, L)));
    }

    proptest! {
        /// Arbitrary bytes never panic the decoders, and a decoded record
        /// lies inside the buffer it was decoded from.
        #[test]
        fn decoders_take_any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..300),
                                   ks in 1usize..40, hs in 0usize..20, hiv in any::<bool>()) {
            let layout = Layout { key_size: ks, header_size: hs, header_in_value: hiv };
            match decode_record(&buf, &layout) {
                Decoded::Record(r, n) => {
                    prop_assert!(n <= buf.len());
                    prop_assert_eq!(r.key.len(), ks);
                }
                Decoded::Incomplete(Some(n)) => prop_assert!(n > buf.len() && n <= layout.prefix() + MAX_VALUE + 4),
                _ => {}
            }
            let _ = decode_current(&buf);
            let _ = decode_values_header(&buf);
        }

        /// A scan of a file of arbitrary bytes (with records planted in
        /// it) ends, never reads past the file, and finds every planted
        /// record that no garbage overlaps.
        #[test]
        fn scans_of_any_file_end(garbage in proptest::collection::vec(any::<u8>(), 0..400),
                                 at in 0usize..400) {
            use crate::io::{FileSystem, OpenMode, StdFs};
            let d = tempfile::tempdir().unwrap();
            let path = d.path().join("values");
            let rec = encode_record(&L, b"kkkk", b"hh", b"planted").unwrap();
            let at = at.min(garbage.len());
            let mut bytes = garbage[..at].to_vec();
            bytes.extend_from_slice(&rec);
            bytes.extend_from_slice(&garbage[at..]);
            let fs = StdFs::new(false);
            let f = fs.open(&path, OpenMode::Truncate).unwrap();
            f.write_all_at(&bytes, 0).unwrap();
            let len = bytes.len() as u64;
            let mut r = Reader::new(f.as_ref(), len, L);
            let mut pos = 0u64;
            let mut found = Vec::new();
            while pos < len {
                match r.record_at(pos).unwrap() {
                    Decoded::Record(_, n) => {
                        found.push(pos..pos + n as u64);
                        pos += n as u64;
                    }
                    _ => match r.next_record(pos + 1).unwrap() {
                        Some(q) => { prop_assert!(q > pos); pos = q; }
                        None => break,
                    },
                }
            }
            // Unless a record made of garbage straddles it, the scan finds
            // the planted record.
            let at = at as u64;
            if !found.iter().any(|f| f.start < at && f.end > at) {
                prop_assert!(found.iter().any(|f| f.start == at), "{found:?}");
            }
        }

        /// A record with a huge length field is refused before anything is
        /// allocated for it.
        #[test]
        fn huge_lengths_are_bounded(len in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = RECORD_MAGIC.to_vec();
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&tail);
            match decode_record(&buf, &L) {
                Decoded::Incomplete(Some(n)) => prop_assert!(n <= L.prefix() + MAX_VALUE + 4),
                Decoded::Bad(_) | Decoded::Incomplete(None) | Decoded::Record(..) => {}
            }
        }
    }
}
