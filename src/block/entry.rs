//! A floating-store file entry: a block record followed by the block's
//! predecessor list, so the store's index is a pure cache that can always be
//! rebuilt from the file (Octez keeps the list only in the index, which is
//! why it needs its `Restore` machinery).
//!
//! `block record | n u8 | n x hash | crc32(n | hashes) u32`

use super::record::{self, Scan};
use super::{Block, BlockRef, HASH_SIZE, Hash, MAX_PREDECESSORS};
use crate::error::{Error, Result};
use crate::io::{FileHandle, frame};

/// Bytes of the trailer for `n` predecessors.
pub fn trailer_len(n: usize) -> usize {
    1 + n * HASH_SIZE + 4
}

/// Appends the entry for `block` with `preds` to `out`.
pub fn encode_into(out: &mut Vec<u8>, block: &BlockRef<'_>, preds: &[Hash]) -> Result<()> {
    if preds.len() > MAX_PREDECESSORS {
        return Err(Error::invalid(format!(
            "a predecessor list holds at most {MAX_PREDECESSORS} hashes, got {}",
            preds.len()
        )));
    }
    record::encode_into(out, block, true)?;
    let start = out.len();
    out.push(preds.len() as u8);
    for p in preds {
        out.extend_from_slice(p);
    }
    let crc = frame::crc(&[&out[start..]]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The block.
    pub block: Block,
    /// Its predecessor list.
    pub preds: Vec<Hash>,
    /// Bytes the entry occupies in the file.
    pub len: usize,
}

/// Result of checking the bytes at one offset of a floating file.
#[derive(Debug)]
pub enum Probe {
    /// A whole, valid entry (without its block's metadata).
    Valid(Box<Entry>),
    /// The file ends inside the entry.
    Torn,
    /// The entry is damaged.
    Damaged(String),
}

/// Parses a whole entry from `buf` (which may extend past it).
pub fn parse(buf: &[u8], with_metadata: bool) -> std::result::Result<Entry, String> {
    if buf.len() < 4 {
        return Err("entry is incomplete".into());
    }
    let rec_len = record::record_len([buf[0], buf[1], buf[2], buf[3]]);
    let rec = buf.get(..rec_len).ok_or("entry is incomplete")?;
    // One checksum pass over the record, then one copy of its buffers.
    let block = record::parse(rec, with_metadata)?.to_owned();
    let (n, trailer) = trailer_at(buf, rec_len)?;
    let preds = trailer[1..1 + n * HASH_SIZE]
        .chunks_exact(HASH_SIZE)
        .map(|c| {
            let mut h = [0u8; HASH_SIZE];
            h.copy_from_slice(c);
            h
        })
        .collect();
    Ok(Entry {
        block,
        preds,
        len: rec_len + trailer.len(),
    })
}

/// Bytes of the record header that hold hash, level and predecessor.
pub const HEADER_LEN: usize = 4 + HASH_SIZE + 4 + HASH_SIZE;

/// Record length, hash, level and predecessor of the entry at `offset`,
/// read from the record's fixed header only (not checksummed: callers use it
/// for routing, never return it as data).
pub fn read_header(file: &dyn FileHandle, offset: u64) -> Result<(usize, Hash, i32, Hash)> {
    let mut h = [0u8; HEADER_LEN];
    file.read_exact_at(&mut h, offset)?;
    let rec_len = record::record_len([h[0], h[1], h[2], h[3]]);
    let mut hash = [0u8; HASH_SIZE];
    hash.copy_from_slice(&h[4..4 + HASH_SIZE]);
    let level = i32::from_be_bytes([h[36], h[37], h[38], h[39]]);
    let mut pred = [0u8; HASH_SIZE];
    pred.copy_from_slice(&h[40..40 + HASH_SIZE]);
    Ok((rec_len, hash, level, pred))
}

fn trailer_at(buf: &[u8], rec_len: usize) -> std::result::Result<(usize, &[u8]), String> {
    let n = *buf.get(rec_len).ok_or("entry is incomplete")? as usize;
    if n > MAX_PREDECESSORS {
        return Err(format!("predecessor count {n} exceeds {MAX_PREDECESSORS}"));
    }
    let tl = trailer_len(n);
    let trailer = buf
        .get(rec_len..rec_len + tl)
        .ok_or("entry is incomplete")?;
    let stored = u32::from_be_bytes([
        trailer[tl - 4],
        trailer[tl - 3],
        trailer[tl - 2],
        trailer[tl - 1],
    ]);
    if frame::crc(&[&trailer[..tl - 4]]) != stored {
        return Err("predecessor list checksum mismatch".into());
    }
    Ok((n, trailer))
}

/// Reads and parses the entry at `offset` of `file`.
pub fn read_at(file: &dyn FileHandle, offset: u64, with_metadata: bool) -> Result<Entry> {
    let mut prefix = [0u8; 4];
    file.read_exact_at(&mut prefix, offset)?;
    let rec_len = record::record_len(prefix);
    // Read the record and the largest possible trailer in one call when the
    // file allows; the exact trailer length is known after the count byte.
    let want = rec_len + trailer_len(MAX_PREDECESSORS);
    let mut buf = vec![0u8; want];
    let got = file.read_at(&mut buf, offset)?;
    buf.truncate(got);
    parse(&buf, with_metadata)
        .map_err(|e| Error::corrupted(file.path(), format!("entry at offset {offset}: {e}")))
}

/// Checks the entry at `offset` and parses it if it is whole and valid
/// (used by recovery, which must tell a torn tail from damage).
pub fn probe(file: &dyn FileHandle, offset: u64, file_len: u64) -> Result<Probe> {
    if file_len.saturating_sub(offset) < 4 {
        return Ok(Probe::Torn);
    }
    let mut prefix = [0u8; 4];
    file.read_exact_at(&mut prefix, offset)?;
    if prefix == [0; 4] {
        // No record is shorter than its fixed fields: this is space zeroed
        // ahead of the appends (or never written), the end of the entries.
        return Ok(Probe::Torn);
    }
    let rec_len = record::record_len(prefix) as u64;
    if offset + rec_len + 1 > file_len {
        return Ok(Probe::Torn);
    }
    let want = (rec_len as usize + trailer_len(MAX_PREDECESSORS)).min((file_len - offset) as usize);
    let mut buf = vec![0u8; want];
    let got = file.read_at(&mut buf, offset)?;
    buf.truncate(got);
    // One checksum pass for a valid entry; only an incomplete one is looked
    // at again, to tell a torn tail from a damaged record.
    match parse(&buf, false) {
        Ok(e) => Ok(Probe::Valid(Box::new(e))),
        Err(e) if e.contains("incomplete") => match record::scan(&buf) {
            Scan::Damaged(d) => Ok(Probe::Damaged(d)),
            Scan::Record(_) | Scan::Incomplete => Ok(Probe::Torn),
        },
        Err(e) => Ok(Probe::Damaged(e)),
    }
}
