//! The commit journal, `.tzs-journal` in the root: the intent log that makes
//! a batch all-or-nothing across crashes.
//!
//! The file is created once and rewritten in place from offset 0:
//!
//! ```text
//! u32 len | payload | crc32(len | payload)        (io::frame, big-endian)
//! payload = "TZSKVJ01" | u32 op count | op*
//! op      = 1 | u32 key len | key | u64 value len | value     (set)
//!         | 2 | u32 key len | key                             (remove)
//! ```
//!
//! A commit writes the record and fdatasyncs it before touching the tree;
//! from then on the batch is committed. Once the tree is synced, the first 8
//! bytes are zeroed (and fdatasynced), which no valid record can start
//! with, so a torn, stale or cleared file reads as "nothing pending". Keys
//! are stored in their string form and re-validated when read back.
//!
//! Replaying applies the ops again from the start with "forced" semantics
//! (a set replaces whatever is at its key or in the way), which makes replay
//! over any partially applied prefix reach the same final state.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::io::beneath::FileAt;
use crate::io::frame;
use crate::kv::key::Key;

/// File name of the journal in the root.
pub(crate) const JOURNAL: &str = ".tzs-journal";
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

    /// Writes `ops` as the pending record and makes it durable: the commit
    /// point of a batch. On failure the record is withdrawn (best effort:
    /// if even that fails, e.g. on a dead disk, the batch may still be
    /// rolled forward by the next writer, so an `Io` error here means
    /// "applied wholly or not at all", never "partly").
    pub(crate) fn write(&self, ops: &[Op]) -> Result<()> {
        let rec = encode(ops)?;
        let r = self
            .file
            .write_all_at(&rec, 0)
            .map_err(|e| self.io("write journal", e))
            .and_then(|()| self.sync());
        if r.is_err() {
            let _ = self.clear();
        }
        r
    }

    /// Marks the pending record as applied.
    pub(crate) fn clear(&self) -> Result<()> {
        self.file
            .write_all_at(&[0u8; 8], 0)
            .map_err(|e| self.io("clear journal", e))?;
        self.sync()
    }

    /// The pending record's ops, if a whole record is there.
    pub(crate) fn pending(&self) -> Result<Option<Vec<Op>>> {
        let mut head = [0u8; 4];
        let n = read_at(self.file.file(), &mut head, 0).map_err(|e| self.io("read journal", e))?;
        if n < 4 || head == [0u8; 4] {
            return Ok(None);
        }
        let len = u32::from_be_bytes(head) as usize;
        let mut buf = vec![0u8; len.saturating_add(frame::OVERHEAD)];
        let n = read_at(self.file.file(), &mut buf, 0).map_err(|e| self.io("read journal", e))?;
        match frame::decode(&buf[..n]) {
            frame::Decoded::Record(payload, _) => decode(payload).transpose(),
            // Torn while being written: the commit never happened.
            frame::Decoded::Incomplete | frame::Decoded::BadChecksum => Ok(None),
        }
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
    fn round_trip_torn_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let root = crate::io::beneath::Dir::open(dir.path()).unwrap();
        let j = Journal::new(root.open_rw(JOURNAL).unwrap(), path.clone(), false);
        assert_eq!(j.pending().unwrap(), None);
        let ops = vec![
            Op::Set(Key::parse("a/b").unwrap(), b"xyz".to_vec()),
            Op::Remove(Key::parse("c").unwrap()),
        ];
        j.write(&ops).unwrap();
        assert_eq!(j.pending().unwrap(), Some(ops.clone()));
        j.clear().unwrap();
        assert_eq!(j.pending().unwrap(), None);
        // A torn record (its tail missing) is not pending.
        let rec = encode(&ops).unwrap();
        std::fs::write(&path, &rec[..rec.len() - 3]).unwrap();
        assert_eq!(j.pending().unwrap(), None);
        // A shorter record over a longer stale one is read exactly.
        std::fs::write(&path, [encode(&ops).unwrap(), vec![7u8; 40]].concat()).unwrap();
        assert_eq!(j.pending().unwrap(), Some(ops));
    }
}
