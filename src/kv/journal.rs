//! The commit journal, `.tzs-journal` in the root: the redo log that makes
//! a batch all-or-nothing and durable without syncing the tree per batch.
//!
//! The file is a sequence of records appended one per committed batch:
//!
//! ```text
//! u32 len | payload | crc32(len | payload)        (io::frame, big-endian)
//! payload = "TZSKVJ01" | u32 op count | op*
//! op      = 1 | u32 key len | key | u64 value len | value     (set)
//!         | 2 | u32 key len | key                             (remove)
//! ```
//!
//! A commit appends its record and fdatasyncs it before touching the tree:
//! from then on the batch is committed, its values durable in the journal.
//! The tree is then changed without any sync. The journal is emptied (a
//! *checkpoint*: `syncfs` of the tree, then truncation, fdatasynced) when it
//! outgrows [`CHECKPOINT_BYTES`], before any write that is not a batch (such
//! a write is not in the journal, so no older record may be replayed over
//! it), and at open. Replay applies the records again in order with
//! "forced" semantics (a set replaces whatever is at its key or in the
//! way): keys no record touches are as the last checkpoint left them, so
//! replay over any partly durable tree reaches the state the records
//! describe. Which records still need applying by a live writer (one whose
//! predecessor died mid-commit) is told by the offset of the journal's end
//! as last applied, kept beside the write generation (not synced: at open
//! every record is replayed). A torn record (a crash while appending) ends
//! the journal and is cut off before the next append. Keys are stored in
//! their string form and re-validated when read back.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::io::beneath::FileAt;
use crate::io::frame;
use crate::kv::key::Key;

/// File name of the journal in the root.
pub(crate) const JOURNAL: &str = ".tzs-journal";
/// Journal size beyond which a commit checkpoints: bounds the replay at
/// open (and the dirty data one `syncfs` flushes), while letting a stream
/// of batches share one tree sync.
pub(crate) const CHECKPOINT_BYTES: u64 = 8 << 20;
const MAGIC: &[u8; 8] = b"TZSKVJ01";
const SET: u8 = 1;
const REMOVE: u8 = 2;

/// One buffered write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Bind `key` to a value.
    Set(Key, Vec<u8>),
    /// Remove `key` (a value or a dictionary).
    Remove(Key),
}

impl Op {
    /// The key written.
    pub fn key(&self) -> &Key {
        match self {
            Op::Set(k, _) | Op::Remove(k) => k,
        }
    }
}

/// The open journal file.
#[derive(Debug)]
pub(crate) struct Journal {
    file: FileAt,
    path: PathBuf,
    fsync: bool,
}

/// The framed record of `ops`, built in one buffer sized up front.
fn encode(ops: &[Op]) -> Result<Vec<u8>> {
    let size = ops.iter().fold(8 + 4, |n, op| {
        n + 1
            + 4
            + op.key().path().len()
            + match op {
                Op::Set(_, v) => 8 + v.len(),
                Op::Remove(_) => 0,
            }
    });
    let too_big = || {
        Error::invalid(format!(
            "batch journal record of {size} bytes exceeds 4 GiB"
        ))
    };
    let len = u32::try_from(size).map_err(|_| too_big())?;
    let mut rec = Vec::with_capacity(size + frame::OVERHEAD);
    rec.extend_from_slice(&len.to_be_bytes());
    rec.extend_from_slice(MAGIC);
    rec.extend_from_slice(
        &u32::try_from(ops.len())
            .map_err(|_| too_big())?
            .to_be_bytes(),
    );
    for op in ops {
        let k = op.key().path();
        rec.push(match op {
            Op::Set(..) => SET,
            Op::Remove(_) => REMOVE,
        });
        rec.extend_from_slice(&(k.len() as u32).to_be_bytes());
        rec.extend_from_slice(k.as_bytes());
        if let Op::Set(_, v) = op {
            rec.extend_from_slice(&(v.len() as u64).to_be_bytes());
            rec.extend_from_slice(v);
        }
    }
    let crc = frame::crc(&[&rec]);
    rec.extend_from_slice(&crc.to_be_bytes());
    Ok(rec)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<usize> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> Option<usize> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_be_bytes(a)).ok()
    }
}

/// Decodes a payload whose checksum matched; `None` if it is not a journal.
fn decode(payload: &[u8]) -> Option<Result<Vec<Op>>> {
    let mut r = Reader { buf: payload };
    if r.take(8)? != MAGIC {
        return None;
    }
    let bad = || Error::Corrupted(format!("{JOURNAL}: malformed record with a valid checksum"));
    let parse = |r: &mut Reader<'_>| -> Result<Vec<Op>> {
        let n = r.u32().ok_or_else(bad)?;
        let mut ops = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let tag = r.take(1).ok_or_else(bad)?[0];
            let klen = r.u32().ok_or_else(bad)?;
            let k = r.take(klen).ok_or_else(bad)?;
            let k = std::str::from_utf8(k).map_err(|_| bad())?;
            let key = Key::parse(k)?;
            match tag {
                SET => {
                    let vlen = r.u64().ok_or_else(bad)?;
                    ops.push(Op::Set(key, r.take(vlen).ok_or_else(bad)?.to_vec()));
                }
                REMOVE => ops.push(Op::Remove(key)),
                _ => return Err(bad()),
            }
        }
        Ok(ops)
    };
    Some(parse(&mut r))
}

impl Journal {
    pub(crate) fn new(file: FileAt, path: PathBuf, fsync: bool) -> Journal {
        Journal { file, path, fsync }
    }

    fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(what, &self.path, e)
    }

    fn sync(&self) -> Result<()> {
        if self.fsync {
            self.file
                .sync_data()
                .map_err(|e| self.io("fsync journal", e))?;
        }
        Ok(())
    }

    /// Appends the record of `ops` at `at` (the journal's end) and makes it
    /// durable: the commit point of a batch. Returns the new end. On
    /// failure the record is cut off again (best effort: if even that
    /// fails, e.g. on a dead disk, the batch may still be rolled forward by
    /// the next writer, so an `Io` error here means "applied wholly or not
    /// at all", never "partly").
    pub(crate) fn append(&self, at: u64, ops: &[Op]) -> Result<u64> {
        let rec = encode(ops)?;
        let r = self
            .file
            .write_all_at(&rec, at)
            .map_err(|e| self.io("write journal", e))
            .and_then(|()| self.sync());
        match r {
            Ok(()) => Ok(at + rec.len() as u64),
            Err(e) => {
                let _ = self.truncate(at);
                Err(e)
            }
        }
    }

    /// Cuts the journal at `len` (a torn tail, a withdrawn record); not
    /// synced.
    pub(crate) fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| self.io("truncate journal", e))
    }

    /// Empties the journal durably (the tree must be synced first).
    pub(crate) fn reset(&self) -> Result<()> {
        self.truncate(0)?;
        self.sync()
    }

    /// The whole records from offset `from` on, and the offset after the
    /// last of them; the third value is the file's length (greater than
    /// the end when a torn record follows).
    pub(crate) fn scan(&self, from: u64) -> Result<(Vec<Vec<Op>>, u64, u64)> {
        let mut buf = vec![0u8; 4096];
        let mut have = 0;
        loop {
            if have == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = read_at(self.file.file(), &mut buf[have..], from + have as u64)
                .map_err(|e| self.io("read journal", e))?;
            if n == 0 {
                break;
            }
            have += n;
        }
        let mut records = Vec::new();
        let mut at = 0;
        while at < have {
            match frame::decode(&buf[at..have]) {
                frame::Decoded::Record(payload, used) => match decode(payload) {
                    Some(ops) => {
                        records.push(ops?);
                        at += used;
                    }
                    None => break,
                },
                // Torn while being appended: that commit never happened.
                frame::Decoded::Incomplete | frame::Decoded::BadChecksum => break,
            }
        }
        Ok((records, from + at as u64, from + have as u64))
    }
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_scan_torn_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let root = crate::io::beneath::Dir::open(dir.path()).unwrap();
        let j = Journal::new(root.open_rw(JOURNAL).unwrap(), path.clone(), false);
        assert_eq!(j.scan(0).unwrap(), (vec![], 0, 0));
        let a = vec![
            Op::Set(Key::parse("a/b").unwrap(), b"xyz".to_vec()),
            Op::Remove(Key::parse("c").unwrap()),
        ];
        let b = vec![Op::Set(Key::parse("d").unwrap(), vec![9u8; 5000])];
        let end_a = j.append(0, &a).unwrap();
        let end_b = j.append(end_a, &b).unwrap();
        assert_eq!(
            j.scan(0).unwrap(),
            (vec![a.clone(), b.clone()], end_b, end_b)
        );
        assert_eq!(j.scan(end_a).unwrap(), (vec![b.clone()], end_b, end_b));
        assert_eq!(j.scan(end_b).unwrap(), (vec![], end_b, end_b));
        // A torn last record ends the journal.
        let rec = encode(&b).unwrap();
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(&rec[..rec.len() - 3]);
        std::fs::write(&path, &torn).unwrap();
        let len = torn.len() as u64;
        assert_eq!(j.scan(0).unwrap(), (vec![a, b], end_b, len));
        j.reset().unwrap();
        assert_eq!(j.scan(0).unwrap(), (vec![], 0, 0));
    }
}
