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

/// Appends the entry for `block`, with its resulting `context` hash and
/// its predecessor list `preds`, to `out`.
pub fn encode_into(
    out: &mut Vec<u8>,
    block: &BlockRef<'_>,
    context: &Hash,
    preds: &[Hash],
) -> Result<()> {
    if preds.len() > MAX_PREDECESSORS {
        return Err(Error::invalid(format!(
            "a predecessor list holds at most {MAX_PREDECESSORS} hashes, got {}",
            preds.len()
        )));
    }
    record::encode_into_with_context(out, block, context, true)?;
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
    /// Its resulting context hash.
    pub context: Hash,
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

/// A checked entry, borrowed from the bytes it was parsed from (a mapped
/// file, or a buffer read from one).
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    /// The block.
    pub block: BlockRef<'a>,
    /// Its resulting context hash.
    pub context: Hash,
    /// Bytes the entry occupies in the file.
    pub len: usize,
    /// The predecessor list, copied out of the trailer (at most
    /// `MAX_PREDECESSORS` hashes, no allocation).
    preds: [Hash; MAX_PREDECESSORS],
    n_preds: usize,
}

impl EntryRef<'_> {
    /// Its predecessor list.
    pub fn preds(&self) -> &[Hash] {
        &self.preds[..self.n_preds]
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Entry {
        Entry {
            block: self.block.to_owned(),
            preds: self.preds().to_vec(),
            context: self.context,
            len: self.len,
        }
    }
}

/// Parses and checks a whole entry from `buf` (which may extend past it),
/// without copying: one checksum pass over the record, one over the
/// trailer.
pub fn parse_ref(buf: &[u8], with_metadata: bool) -> std::result::Result<EntryRef<'_>, String> {
    if buf.len() < 4 {
        return Err("entry is incomplete".into());
    }
    let rec_len = record::record_len([buf[0], buf[1], buf[2], buf[3]]);
    let rec = buf.get(..rec_len).ok_or("entry is incomplete")?;
    let (block, context) = record::parse_with_context(rec, with_metadata)?;
    let (n, trailer) = trailer_at(buf, rec_len)?;
    let mut preds = [[0u8; HASH_SIZE]; MAX_PREDECESSORS];
    for (p, c) in preds
        .iter_mut()
        .zip(trailer[1..1 + n * HASH_SIZE].chunks_exact(HASH_SIZE))
    {
        p.copy_from_slice(c);
    }
    Ok(EntryRef {
        block,
        context,
        len: rec_len + trailer.len(),
        preds,
        n_preds: n,
    })
}

/// Parses a whole entry from `buf` (which may extend past it) into an
/// owned copy.
pub fn parse(buf: &[u8], with_metadata: bool) -> std::result::Result<Entry, String> {
    parse_ref(buf, with_metadata).map(|e| e.to_owned())
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

/// Reads and parses the entry at `offset` of `file`; the entry must end by
/// `limit` (the end of the data), which bounds what a damaged size field
/// can make this allocate.
pub fn read_at(
    file: &dyn FileHandle,
    offset: u64,
    limit: u64,
    with_metadata: bool,
) -> Result<Entry> {
    let past_end = |what: String| {
        Error::corrupted(
            file.path(),
            format!("entry at offset {offset}: {what} runs past the end of the data at {limit}"),
        )
    };
    if limit.saturating_sub(offset) < 4 {
        return Err(past_end("its size field".into()));
    }
    let mut prefix = [0u8; 4];
    file.read_exact_at(&mut prefix, offset)?;
    let rec_len = record::record_len(prefix) as u64;
    if rec_len + trailer_len(0) as u64 > limit - offset {
        return Err(past_end(format!("its record of {rec_len} bytes")));
    }
    // Read the record and the largest possible trailer in one call when the
    // data allows; the exact trailer length is known after the count byte.
    let want = (rec_len + trailer_len(MAX_PREDECESSORS) as u64).min(limit - offset);
    let mut buf = vec![0u8; want as usize];
    let got = file.read_at(&mut buf, offset)?;
    buf.truncate(got);
    parse(&buf, with_metadata)
        .map_err(|e| Error::corrupted(file.path(), format!("entry at offset {offset}: {e}")))
}

/// Bytes of a record before its contents (size, hash, level, predecessor,
/// context, contents length): enough to tell where its tag byte must be.
const BEFORE_CONTENTS: usize = 4 + HASH_SIZE + 4 + HASH_SIZE + HASH_SIZE + 4;
/// Bytes searched per read by [`next_intact`].
const SCAN_CHUNK: usize = 1 << 20;

/// The first offset in `from..to` where a whole, valid entry starts and ends
/// by `to`, if any. Tells damage (intact entries follow it) from a torn tail
/// or the zeros written ahead of the appends (nothing intact follows). Reads
/// `from..to` once: zero runs are skipped at memory speed, and a checksum is
/// computed only where the size, contents length and metadata tag agree, as
/// they do at a record's start and hardly ever elsewhere.
pub fn next_intact(file: &dyn FileHandle, from: u64, to: u64) -> Result<Option<u64>> {
    let mut buf = vec![0u8; SCAN_CHUNK + BEFORE_CONTENTS];
    let mut base = from;
    while to.saturating_sub(base) >= record::FIXED as u64 {
        let want = (to - base).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..want], base)?;
        let got = &buf[..want];
        // Candidates are the offsets whose fixed fields lie in `got`.
        let last = want.saturating_sub(BEFORE_CONTENTS).min(SCAN_CHUNK - 1);
        let mut p = 0usize;
        while p <= last {
            if got[p..p + 4] == [0; 4] {
                // No record is that short: jump to the first offset whose
                // size field ends on the next non-zero byte.
                match got[p + 4..].iter().position(|&b| b != 0) {
                    Some(q) => {
                        p = p + 4 + q - 3;
                        continue;
                    }
                    None => break,
                }
            }
            let at = base + p as u64;
            if shape_fits(file, &got[p..], at, to)?
                && matches!(probe(file, at, to)?, Probe::Valid(_))
            {
                return Ok(Some(at));
            }
            p += 1;
        }
        base += last as u64 + 1;
    }
    Ok(None)
}

/// True if the fixed fields at the start of `head` (at `at` in the file)
/// describe a record that ends by `to` and whose contents length and
/// metadata tag agree with its size.
fn shape_fits(file: &dyn FileHandle, head: &[u8], at: u64, to: u64) -> Result<bool> {
    let be = |i: usize| {
        u64::from(u32::from_be_bytes([
            head[i],
            head[i + 1],
            head[i + 2],
            head[i + 3],
        ]))
    };
    let rec_len = 4 + be(0);
    let fixed = record::FIXED as u64;
    if rec_len < fixed || at + rec_len + trailer_len(0) as u64 > to {
        return Ok(false);
    }
    let clen = be(BEFORE_CONTENTS - 4);
    if clen + fixed > rec_len {
        return Ok(false);
    }
    let with_meta = clen + fixed != rec_len;
    if with_meta && clen + fixed + 4 > rec_len {
        return Ok(false);
    }
    // The tag and the metadata length follow the contents.
    let tag_at = BEFORE_CONTENTS as u64 + clen;
    let mut tail = [0u8; 5];
    let n = if with_meta { 5 } else { 1 };
    match head.get(tag_at as usize..tag_at as usize + n) {
        Some(b) => tail[..n].copy_from_slice(b),
        None => file.read_exact_at(&mut tail[..n], at + tag_at)?,
    }
    if !with_meta {
        return Ok(tail[0] == 0);
    }
    let mlen = u64::from(u32::from_be_bytes([tail[1], tail[2], tail[3], tail[4]]));
    Ok(tail[0] == 1 && clen + fixed + 4 + mlen == rec_len)
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
