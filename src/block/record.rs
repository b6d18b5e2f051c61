//! The block record and its on-disk encoding:
//!
//! `size u32 | hash[32] | level i32 | predecessor[32] | context[32] |
//! contents_len u32 | contents | tag u8 | [metadata_len u32 | metadata] |
//! crc u32`
//!
//! `context` is the block's resulting context hash (Octez's
//! `store_block block resulting_context_hash`; zeros when none is given).
//!
//! Integers are big-endian, as Octez's data-encoding. `size` counts every
//! byte after itself (so a record occupies `4 + size` bytes); `tag` is 1 when
//! metadata follows, 0 otherwise; `crc` is CRC-32 of everything before it,
//! `size` included, so a torn or damaged record is always detected.

use super::{HASH_SIZE, Hash};
use crate::error::{Error, Result};
use crate::io::frame;

/// Fixed bytes of a record besides contents and metadata.
pub(crate) const FIXED: usize = 4 + HASH_SIZE + 4 + HASH_SIZE + HASH_SIZE + 4 + 1 + 4;
/// Where the contents start in a record.
pub(crate) const CONTENTS_AT: usize = 4 + HASH_SIZE + 4 + HASH_SIZE + HASH_SIZE + 4;
/// Where the metadata start in a record with metadata, after the contents.
pub(crate) const METADATA_AFTER_CONTENTS: usize = 1 + META_LEN;

/// The context hash of a block stored without one.
pub const NO_CONTEXT: Hash = [0; HASH_SIZE];
/// Bytes of the metadata length field, present when the tag is 1.
pub(crate) const META_LEN: usize = 4;
/// Largest record accepted (size field), to reject absurd lengths early.
pub const MAX_RECORD: usize = u32::MAX as usize - 4;

/// A block given to the library: borrowed buffers, copied on write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef<'a> {
    /// The block's hash.
    pub hash: &'a Hash,
    /// Its level (height).
    pub level: i32,
    /// Its direct predecessor's hash.
    pub predecessor: &'a Hash,
    /// Header and operations, opaque to the library.
    pub contents: &'a [u8],
    /// Metadata, opaque, if the block has any.
    pub metadata: Option<&'a [u8]>,
}

/// A block returned by the library: owned buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block's hash.
    pub hash: Hash,
    /// Its level.
    pub level: i32,
    /// Its direct predecessor's hash.
    pub predecessor: Hash,
    /// Header and operations.
    pub contents: Vec<u8>,
    /// Metadata, if the block has any (and it was asked for).
    pub metadata: Option<Vec<u8>>,
}

impl Block {
    /// A borrowed view of this block.
    pub fn as_ref(&self) -> BlockRef<'_> {
        BlockRef {
            hash: &self.hash,
            level: self.level,
            predecessor: &self.predecessor,
            contents: &self.contents,
            metadata: self.metadata.as_deref(),
        }
    }
}

impl BlockRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Block {
        Block {
            hash: *self.hash,
            level: self.level,
            predecessor: *self.predecessor,
            contents: self.contents.to_vec(),
            metadata: self.metadata.map(<[u8]>::to_vec),
        }
    }

    /// The encoded length of this block's record.
    pub fn encoded_len(&self, with_metadata: bool) -> usize {
        let meta = match (with_metadata, self.metadata) {
            (true, Some(m)) => META_LEN + m.len(),
            _ => 0,
        };
        FIXED + self.contents.len() + meta
    }
}

/// Appends the record of `block` to `out` with no context hash; see
/// [`encode_into_with_context`].
pub fn encode_into(out: &mut Vec<u8>, block: &BlockRef<'_>, with_metadata: bool) -> Result<()> {
    encode_into_with_context(out, block, &NO_CONTEXT, with_metadata)
}

/// Appends the record of `block` with its resulting `context` hash to
/// `out`; metadata is written only when `with_metadata` is true (cemented
/// chunks store blocks without it).
pub fn encode_into_with_context(
    out: &mut Vec<u8>,
    block: &BlockRef<'_>,
    context: &Hash,
    with_metadata: bool,
) -> Result<()> {
    let total = block.encoded_len(with_metadata);
    if total > MAX_RECORD {
        return Err(Error::invalid(format!(
            "block record of {total} bytes exceeds the 4 GiB limit"
        )));
    }
    let start = out.len();
    out.reserve(total);
    out.extend_from_slice(&((total - 4) as u32).to_be_bytes());
    out.extend_from_slice(block.hash);
    out.extend_from_slice(&block.level.to_be_bytes());
    out.extend_from_slice(block.predecessor);
    out.extend_from_slice(context);
    out.extend_from_slice(&(block.contents.len() as u32).to_be_bytes());
    out.extend_from_slice(block.contents);
    match (with_metadata, block.metadata) {
        (true, Some(m)) => {
            out.push(1);
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(m);
        }
        _ => out.push(0),
    }
    let crc = frame::crc(&[&out[start..]]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The encoded record of `block`.
pub fn encode(block: &BlockRef<'_>, with_metadata: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&mut out, block, with_metadata)?;
    Ok(out)
}

/// The total length (`4 + size`) announced by a record's first four bytes.
pub fn record_len(prefix: [u8; 4]) -> usize {
    4 + u32::from_be_bytes(prefix) as usize
}

/// What a buffer holds at its start.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A whole, valid record of this many bytes.
    Record(usize),
    /// The buffer ends inside the record (a torn tail if at end of file).
    Incomplete,
    /// The record is whole but damaged (bad checksum or structure).
    Damaged(String),
}

/// Checks the record at the start of `buf` without decoding it.
pub fn scan(buf: &[u8]) -> Scan {
    if buf.len() < 4 {
        return Scan::Incomplete;
    }
    let len = record_len([buf[0], buf[1], buf[2], buf[3]]);
    if len < FIXED {
        return Scan::Damaged(format!("record size {len} is below the minimum {FIXED}"));
    }
    if buf.len() < len {
        return Scan::Incomplete;
    }
    match parse(&buf[..len], true) {
        Ok(_) => Scan::Record(len),
        Err(e) => Scan::Damaged(e),
    }
}

/// Decodes a whole record (exactly `buf`), checking its CRC. Metadata is
/// returned only when `with_metadata` is true.
pub fn decode(buf: &[u8], with_metadata: bool) -> std::result::Result<Block, String> {
    let view = parse(buf, with_metadata)?;
    Ok(view.to_owned())
}

/// Parses a record into a borrowed view after checking its checksum.
pub fn parse(buf: &[u8], with_metadata: bool) -> std::result::Result<BlockRef<'_>, String> {
    parse_with_context(buf, with_metadata).map(|(b, _)| b)
}

/// [`parse`], with the record's context hash.
pub fn parse_with_context(
    buf: &[u8],
    with_metadata: bool,
) -> std::result::Result<(BlockRef<'_>, Hash), String> {
    parse_fields(buf, with_metadata, true)
}

/// [`parse`] of a record whose checksum already passed in the same
/// unchanged bytes (see `verified_once`): every length is still checked, so
/// wrong bytes can yield an error or wrong fields, never a read out of
/// bounds.
pub(crate) fn parse_checked_before(
    buf: &[u8],
    with_metadata: bool,
) -> std::result::Result<BlockRef<'_>, String> {
    parse_fields(buf, with_metadata, false).map(|(b, _)| b)
}

/// [`parse_checked_before`], with the record's context hash.
pub(crate) fn parse_checked_before_with_context(
    buf: &[u8],
    with_metadata: bool,
) -> std::result::Result<(BlockRef<'_>, Hash), String> {
    parse_fields(buf, with_metadata, false)
}

fn parse_fields(
    buf: &[u8],
    with_metadata: bool,
    check_crc: bool,
) -> std::result::Result<(BlockRef<'_>, Hash), String> {
    if buf.len() < FIXED {
        return Err(format!("record of {} bytes is too short", buf.len()));
    }
    let len = record_len([buf[0], buf[1], buf[2], buf[3]]);
    if len != buf.len() {
        return Err(format!(
            "record size {len} does not match its {} bytes",
            buf.len()
        ));
    }
    let body = &buf[..len - 4];
    // The stored checksum is read only when checked: on a checked map it
    // sits on a cache line of its own that a borrowed read need not touch.
    if check_crc {
        let stored = u32::from_be_bytes([buf[len - 4], buf[len - 3], buf[len - 2], buf[len - 1]]);
        if frame::crc(&[body]) != stored {
            return Err("block record checksum mismatch".to_string());
        }
    }
    let mut at = 4;
    let hash: &Hash = take_array(body, &mut at)?;
    let level = i32::from_be_bytes(*take_array::<4>(body, &mut at)?);
    let predecessor: &Hash = take_array(body, &mut at)?;
    let context: Hash = *take_array::<HASH_SIZE>(body, &mut at)?;
    let clen = u32::from_be_bytes(*take_array::<4>(body, &mut at)?) as usize;
    let contents = take(body, &mut at, clen)?;
    if !check_crc && !with_metadata {
        // Parsed whole before (checksum, tag, lengths): what follows the
        // contents is not wanted, and reading its tag would cost a cache
        // line of its own (the chunk's record, read by level).
        let block = BlockRef {
            hash,
            level,
            predecessor,
            contents,
            metadata: None,
        };
        return Ok((block, context));
    }
    let tag = take(body, &mut at, 1)?[0];
    let metadata = match tag {
        0 => None,
        1 => {
            let mlen = u32::from_be_bytes(*take_array::<4>(body, &mut at)?) as usize;
            Some(take(body, &mut at, mlen)?)
        }
        t => return Err(format!("unknown metadata tag {t}")),
    };
    if at != body.len() {
        return Err(format!(
            "{} trailing bytes in block record",
            body.len() - at
        ));
    }
    Ok((
        BlockRef {
            hash,
            level,
            predecessor,
            contents,
            metadata: if with_metadata { metadata } else { None },
        },
        context,
    ))
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> std::result::Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| format!("field of {n} bytes at {at} runs past the record"))?;
    let s = &buf[*at..end];
    *at = end;
    Ok(s)
}

fn take_array<'a, const N: usize>(
    buf: &'a [u8],
    at: &mut usize,
) -> std::result::Result<&'a [u8; N], String> {
    let s = take(buf, at, N)?;
    s.try_into()
        .map_err(|_| "internal: slice length".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(meta: Option<&[u8]>) -> Block {
        Block {
            hash: [7; 32],
            level: 42,
            predecessor: [6; 32],
            contents: b"header+ops".to_vec(),
            metadata: meta.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn round_trips_with_and_without_metadata() {
        for meta in [None, Some(&b""[..]), Some(&b"receipts"[..])] {
            let b = sample(meta);
            let rec = encode(&b.as_ref(), true).unwrap();
            assert_eq!(rec.len(), b.as_ref().encoded_len(true));
            assert_eq!(scan(&rec), Scan::Record(rec.len()));
            assert_eq!(decode(&rec, true).unwrap(), b);
            let mut no_meta = b.clone();
            no_meta.metadata = None;
            assert_eq!(decode(&rec, false).unwrap(), no_meta);
            let pruned = encode(&b.as_ref(), false).unwrap();
            assert_eq!(decode(&pruned, true).unwrap(), no_meta);
        }
    }

    #[test]
    fn every_damage_is_detected() {
        let rec = encode(&sample(Some(b"m")).as_ref(), true).unwrap();
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(
                decode(&bad, true).is_err(),
                "flip at byte {i} went unnoticed"
            );
            assert_ne!(scan(&bad), Scan::Record(rec.len()), "flip at byte {i}");
        }
        for n in 0..rec.len() {
            assert_eq!(scan(&rec[..n]), Scan::Incomplete, "prefix {n}");
        }
    }
}
