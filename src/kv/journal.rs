//! The commit journal, `.tzs-journal` in the root: the redo log that makes
//! a batch all-or-nothing and durable without syncing the tree per batch.
//!
//! The file is a sequence of records appended one per committed batch:
//!
//! ```text
//! u32 len | payload | crc32(len | payload)        (io::frame, big-endian)
//!                                                   (12 <= len <= MAX_RECORD)
//! payload = "TZSKVJ01" | u32 op count | op*
//! op      = 1 | u32 key len | key | u64 value len | value     (set)
//!         | 2 | u32 key len | key                             (remove)
//! ```
//!
//! A commit appends its record and fdatasyncs it before touching the tree:
//! from then on the batch is committed, its values durable in the journal.
//! The tree is then changed without any sync. The journal is emptied (a
//! *checkpoint*: `syncfs` of the tree, then truncation, fdatasynced) when it
//! outgrows `CHECKPOINT_BYTES`, before any write that is not a batch (such
//! a write is not in the journal, so no older record may be replayed over
//! it), and at open. Replay applies the records again in order with
//! "forced" semantics (a set replaces whatever is at its key or in the
//! way): keys no record touches are as the last checkpoint left them, so
//! replay over any partly durable tree reaches the state the records
//! describe. Which records still need applying by a live writer (one whose
//! predecessor died mid-commit) is told by the offset of the journal's end
//! as last applied, kept beside the write generation (not synced: at open
//! every record is replayed). Keys are stored in their string form and
//! re-validated when read back.
//!
//! **Torn tail or damage.** Only the last record of an append that was never
//! acknowledged may be cut (at the next open, or by the next writer). A
//! record that does not read back whole is such a *torn tail* when all of
//! these hold: it starts at or past the end recorded as applied in
//! `.tzs-generation` (every acknowledged record lies before that end), and
//! it is what a crash while appending leaves: a header cut short, a length
//! reaching past the end of the file with no whole record after it, a whole
//! last record whose checksum fails, or zeros to the end of the file (an
//! extension whose data never reached the disk). Anything else (a checksum
//! failure followed by more data, a length of 0 or above
//! [`MAX_RECORD`] that is not followed by zeros only, a record with a valid
//! checksum that does not parse, a journal shorter than the recorded end,
//! a non-empty journal beside a missing or empty `.tzs-generation`)
//! is damage: `Corrupted`, naming the file and the offset, and nothing is
//! applied, truncated or deleted.
//!
//! **Bounds.** A record's payload is at most [`MAX_RECORD`] bytes (a larger
//! batch is refused at commit). Every length read back is checked against
//! it and against the file's size before anything is allocated; a record's
//! checksum is verified in bounded steps before its payload is held in
//! memory, so a damaged length or a sparse multi-GiB journal costs neither
//! a large allocation nor a read of the whole file. Replay verifies every
//! record from where it starts before applying the first one.

use std::path::{Path, PathBuf};

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
/// Largest payload of one journal record, so of one batch's keys and values
/// together (1 GiB). A commit of a larger batch is `InvalidArgument`; a
/// larger length read back is damage.
pub const MAX_RECORD: u64 = 1 << 30;
/// Smallest payload: the magic and the op count.
const MIN_RECORD: u64 = 8 + 4;
const MAGIC: &[u8; 8] = b"TZSKVJ01";
const SET: u8 = 1;
const REMOVE: u8 = 2;
/// Bytes read per step when a record is verified or the tail examined.
const STEP: usize = 64 << 10;

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
    let size = ops.iter().fold(8 + 4, |n: u64, op| {
        n + 1
            + 4
            + op.key().path().len() as u64
            + match op {
                Op::Set(_, v) => 8 + v.len() as u64,
                Op::Remove(_) => 0,
            }
    });
    if size > MAX_RECORD {
        return Err(Error::invalid(format!(
            "batch journal record of {size} bytes exceeds the maximum of {MAX_RECORD}"
        )));
    }
    let count = u32::try_from(ops.len())
        .map_err(|_| Error::invalid(format!("batch of {} ops", ops.len())))?;
    let mut rec = Vec::new();
    rec.try_reserve_exact(size as usize + frame::OVERHEAD)
        .map_err(|_| Error::NoSpace(format!("no memory for a journal record of {size} bytes")))?;
    rec.extend_from_slice(&(size as u32).to_be_bytes());
    rec.extend_from_slice(MAGIC);
    rec.extend_from_slice(&count.to_be_bytes());
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

/// Decodes the payload of a record whose checksum matched. `Err` carries
/// what is wrong (the caller names the file and offset): a payload that
/// passes its checksum yet does not parse is damage, never a torn tail.
/// Every length is checked against the bytes left before anything is
/// taken, and the op count only bounds a loop that each op must pay for
/// with at least 5 bytes.
pub fn decode_payload(payload: &[u8]) -> std::result::Result<Vec<Op>, String> {
    let mut r = Reader { buf: payload };
    if r.take(8) != Some(&MAGIC[..]) {
        return Err("not a journal record (bad magic)".into());
    }
    let bad = |what: &str| format!("malformed record: {what}");
    let n = r.u32().ok_or_else(|| bad("op count missing"))?;
    let mut ops = Vec::with_capacity(n.min(payload.len() / 5));
    for i in 0..n {
        let tag = r.take(1).ok_or_else(|| bad("ops missing"))?[0];
        let klen = r.u32().ok_or_else(|| bad("key length missing"))?;
        let k = r
            .take(klen)
            .ok_or_else(|| bad("key length past the record"))?;
        let k = std::str::from_utf8(k).map_err(|_| bad("key not UTF-8"))?;
        let key = Key::parse(k).map_err(|e| bad(&format!("op {i}: {}", e.message())))?;
        if key.is_root() {
            return Err(bad(&format!("op {i} names the root")));
        }
        match tag {
            SET => {
                let vlen = r.u64().ok_or_else(|| bad("value length missing"))?;
                let v = r
                    .take(vlen)
                    .ok_or_else(|| bad("value length past the record"))?;
                ops.push(Op::Set(key, v.to_vec()));
            }
            REMOVE => ops.push(Op::Remove(key)),
            t => return Err(bad(&format!("op {i} has unknown tag {t}"))),
        }
    }
    if !r.buf.is_empty() {
        return Err(bad("bytes after the last op"));
    }
    Ok(ops)
}

/// Why the record at an offset does not read back whole.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bad {
    /// Fewer than 4 bytes left: a header cut short.
    ShortHeader,
    /// A length below the minimum or above [`MAX_RECORD`].
    Garbled(u64),
    /// A plausible length that reaches past the end of the file.
    Incomplete(u64),
    /// Whole, but the checksum does not match.
    Checksum(u64),
    /// The checksum matches but the payload does not parse.
    Malformed(String),
}

/// What lies at an offset of the journal.
enum Step {
    /// A whole record: its ops and its size in bytes (framing included).
    Record(Vec<Op>, u64),
    /// Not a whole record.
    Bad(Bad),
}

/// What the records from an offset on amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Whole records read.
    pub records: u64,
    /// The offset after the last whole record.
    pub end: u64,
    /// The file's length (greater than `end` when a torn tail follows).
    pub len: u64,
}

fn read_exact(file: &FileAt, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
    file.read_exact_at(buf, at)
        .map_err(|e| Error::io("read journal", path, e))
}

/// The journal file `file` (at `path`, `len` bytes), read from offset to
/// offset. Works on any open descriptor, so that `check` can read a
/// journal without opening the store.
pub(crate) struct Records<'a> {
    file: &'a FileAt,
    path: &'a Path,
    len: u64,
}

impl<'a> Records<'a> {
    pub(crate) fn new(file: &'a FileAt, path: &'a Path) -> Result<Records<'a>> {
        let len = file
            .stat()
            .map_err(|e| Error::io("stat journal", path, e))?
            .size;
        Ok(Records { file, path, len })
    }

    /// The record at `at` (`at < len`), verified.
    fn step(&self, at: u64) -> Result<Step> {
        let rem = self.len - at;
        if rem < 4 {
            return Ok(Step::Bad(Bad::ShortHeader));
        }
        let mut head = [0u8; 4];
        read_exact(self.file, self.path, &mut head, at)?;
        let n = u64::from(u32::from_be_bytes(head));
        if !(MIN_RECORD..=MAX_RECORD).contains(&n) {
            return Ok(Step::Bad(Bad::Garbled(n)));
        }
        let total = n + frame::OVERHEAD as u64;
        if total > rem {
            return Ok(Step::Bad(Bad::Incomplete(n)));
        }
        // The checksum first, in bounded steps: only a record that passes
        // it is worth holding in memory.
        if total as usize > STEP {
            let mut h = crc32fast::Hasher::new();
            h.update(&head);
            let mut buf = vec![0u8; STEP];
            let mut off = at + 4;
            let stop = at + 4 + n;
            while off < stop {
                let k = (stop - off).min(STEP as u64) as usize;
                read_exact(self.file, self.path, &mut buf[..k], off)?;
                h.update(&buf[..k]);
                off += k as u64;
            }
            let mut c = [0u8; 4];
            read_exact(self.file, self.path, &mut c, stop)?;
            if h.finalize() != u32::from_be_bytes(c) {
                return Ok(Step::Bad(Bad::Checksum(n)));
            }
        }
        let mut rec = Vec::new();
        rec.try_reserve_exact(total as usize).map_err(|_| {
            Error::NoSpace(format!(
                "{}: no memory for the record of {n} bytes at offset {at}",
                self.path.display()
            ))
        })?;
        rec.resize(total as usize, 0);
        read_exact(self.file, self.path, &mut rec, at)?;
        match frame::decode(&rec) {
            frame::Decoded::Record(payload, _) => match decode_payload(payload) {
                Ok(ops) => Ok(Step::Record(ops, total)),
                Err(why) => Ok(Step::Bad(Bad::Malformed(why))),
            },
            _ => Ok(Step::Bad(Bad::Checksum(n))),
        }
    }

    /// True if every byte from `at` to the end is zero.
    fn zeros_to_end(&self, at: u64) -> Result<bool> {
        let mut buf = vec![0u8; STEP];
        let mut off = at;
        while off < self.len {
            let k = (self.len - off).min(STEP as u64) as usize;
            read_exact(self.file, self.path, &mut buf[..k], off)?;
            if buf[..k].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            off += k as u64;
        }
        Ok(true)
    }

    /// The offset of a whole record starting after `at`, if any (a
    /// damaged length makes the records after it look like one torn
    /// tail; they start with the magic after their length).
    fn record_after(&self, at: u64) -> Result<Option<u64>> {
        let mut buf = vec![0u8; STEP + MAGIC.len()];
        let mut off = at + 1;
        while off + 4 + MAGIC.len() as u64 <= self.len {
            let k = (self.len - off).min(buf.len() as u64) as usize;
            read_exact(self.file, self.path, &mut buf[..k], off)?;
            for i in 0..k.saturating_sub(4 + MAGIC.len() - 1) {
                if buf[i + 4..i + 4 + MAGIC.len()] == MAGIC[..]
                    && matches!(self.step(off + i as u64)?, Step::Record(..))
                {
                    return Ok(Some(off + i as u64));
                }
            }
            // Overlap the next window so that no candidate is missed.
            off += (k as u64).saturating_sub(4 + MAGIC.len() as u64 - 1).max(1);
        }
        Ok(None)
    }

    /// Whether the bad record at `at` is a torn tail (see the module doc);
    /// otherwise the damage, described with the file and offset. `applied`
    /// is `None` when the store never recorded it (nothing is known to be
    /// acknowledged, so nothing can be judged torn).
    fn judge(
        &self,
        at: u64,
        bad: &Bad,
        applied: Option<u64>,
    ) -> Result<std::result::Result<(), Error>> {
        let damage = |what: String| {
            Ok(Err(Error::corrupted(
                self.path,
                format!("record at offset {at}: {what}"),
            )))
        };
        let what = match bad {
            Bad::ShortHeader => "header cut short".to_string(),
            Bad::Garbled(n) => format!("length {n} out of range"),
            Bad::Incomplete(n) => format!("length {n} reaches past the end of the file"),
            Bad::Checksum(_) => "checksum mismatch".to_string(),
            Bad::Malformed(why) => return damage(why.clone()),
        };
        let Some(applied) = applied else {
            return damage(format!("{what}, and the store recorded no applied end"));
        };
        if at < applied {
            return damage(format!(
                "{what}, in a record acknowledged as committed (applied up to offset {applied})"
            ));
        }
        let torn = match bad {
            Bad::ShortHeader => true,
            Bad::Garbled(_) => {
                self.len - at <= MAX_RECORD + frame::OVERHEAD as u64 && self.zeros_to_end(at)?
            }
            Bad::Incomplete(_) => match self.record_after(at)? {
                None => true,
                Some(next) => {
                    return damage(format!("{what}, yet a whole record starts at {next}"));
                }
            },
            Bad::Checksum(n) => at + n + frame::OVERHEAD as u64 == self.len,
            Bad::Malformed(_) => false,
        };
        if torn {
            Ok(Ok(()))
        } else {
            damage(format!("{what}, followed by more data"))
        }
    }

    /// The records a repair keeps, as (offset, size): the whole records
    /// after the last damaged stretch (a torn tail is not damage). Never
    /// those before it: replaying them without the damaged record could
    /// put back values that it, or a lost record, had replaced, whereas
    /// records after the damage only say again what the tree holds (or
    /// roll forward what it lacks). `applied` as in [`Records::scan`].
    pub(crate) fn salvage(&self, applied: Option<u64>) -> Result<Vec<(u64, u64)>> {
        let mut kept = Vec::new();
        if applied.is_some_and(|a| a > self.len) {
            // Records the store applied are gone from the end.
            return Ok(kept);
        }
        let mut at = 0;
        while at < self.len {
            match self.step(at)? {
                Step::Record(_, size) => {
                    kept.push((at, size));
                    at += size;
                }
                Step::Bad(bad) => {
                    if self.judge(at, &bad, applied)?.is_ok() {
                        break;
                    }
                    kept.clear();
                    match self.record_after(at)? {
                        Some(next) => at = next,
                        None => break,
                    }
                }
            }
        }
        Ok(kept)
    }

    /// Verifies the records from `from` on, passing each to `visit`;
    /// `applied` is the end recorded as applied. `Corrupted` on damage.
    pub(crate) fn scan(
        &self,
        from: u64,
        applied: Option<u64>,
        mut visit: impl FnMut(Vec<Op>, u64) -> Result<()>,
    ) -> Result<Scan> {
        if applied.is_none() && self.len > 0 {
            return Err(Error::corrupted(
                self.path,
                format!(
                    "the journal holds {} bytes but .tzs-generation, written before any commit, is missing or empty",
                    self.len
                ),
            ));
        }
        let applied_end = applied.unwrap_or(0);
        if applied_end > self.len {
            return Err(Error::corrupted(
                self.path,
                format!(
                    "the journal is {} bytes but records were applied up to offset {applied_end}",
                    self.len
                ),
            ));
        }
        let mut at = from.min(self.len);
        let mut records = 0;
        while at < self.len {
            match self.step(at)? {
                Step::Record(ops, size) => {
                    visit(ops, at)?;
                    records += 1;
                    at += size;
                }
                Step::Bad(bad) => {
                    self.judge(at, &bad, applied)??;
                    break;
                }
            }
        }
        Ok(Scan {
            records,
            end: at,
            len: self.len,
        })
    }
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

    /// Verifies the records from offset `from` on (see [`Records::scan`]);
    /// `Corrupted` on damage, with nothing changed.
    pub(crate) fn verify(&self, from: u64, applied: Option<u64>) -> Result<Scan> {
        Records::new(&self.file, &self.path)?.scan(from, applied, |_, _| Ok(()))
    }

    /// Passes the records from `from` up to `end` (a verified end) to
    /// `apply`, one at a time.
    pub(crate) fn replay(
        &self,
        from: u64,
        end: u64,
        mut apply: impl FnMut(Vec<Op>) -> Result<()>,
    ) -> Result<()> {
        let records = Records::new(&self.file, &self.path)?;
        let mut at = from;
        while at < end {
            match records.step(at)? {
                Step::Record(ops, size) => {
                    apply(ops)?;
                    at += size;
                }
                Step::Bad(_) => {
                    return Err(Error::corrupted(
                        &self.path,
                        format!("record at offset {at} changed while replayed"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(j: &Journal, from: u64, applied: u64) -> Result<(Vec<Vec<Op>>, u64, u64)> {
        let mut out = Vec::new();
        let s = Records::new(&j.file, &j.path)?.scan(from, Some(applied), |ops, _| {
            out.push(ops);
            Ok(())
        })?;
        Ok((out, s.end, s.len))
    }

    #[test]
    fn append_scan_torn_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let root = crate::io::beneath::Dir::open(dir.path()).unwrap();
        let j = Journal::new(root.open_rw(JOURNAL).unwrap(), path.clone(), false);
        assert_eq!(scan(&j, 0, 0).unwrap(), (vec![], 0, 0));
        let a = vec![
            Op::Set(Key::parse("a/b").unwrap(), b"xyz".to_vec()),
            Op::Remove(Key::parse("c").unwrap()),
        ];
        let b = vec![Op::Set(Key::parse("d").unwrap(), vec![9u8; 100_000])];
        let end_a = j.append(0, &a).unwrap();
        let end_b = j.append(end_a, &b).unwrap();
        assert_eq!(
            scan(&j, 0, end_b).unwrap(),
            (vec![a.clone(), b.clone()], end_b, end_b)
        );
        assert_eq!(
            scan(&j, end_a, end_a).unwrap(),
            (vec![b.clone()], end_b, end_b)
        );
        assert_eq!(scan(&j, end_b, end_b).unwrap(), (vec![], end_b, end_b));
        // A torn last record past the applied end ends the journal...
        let rec = encode(&b).unwrap();
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(&rec[..rec.len() - 3]);
        std::fs::write(&path, &torn).unwrap();
        let len = torn.len() as u64;
        assert_eq!(
            scan(&j, 0, end_b).unwrap(),
            (vec![a.clone(), b.clone()], end_b, len)
        );
        // ...but one that was acknowledged (before the applied end) is damage.
        let e = scan(&j, 0, len).unwrap_err();
        assert!(
            matches!(&e, Error::Corrupted(m) if m.contains(&format!("offset {end_b}"))),
            "{e}"
        );
        j.reset().unwrap();
        assert_eq!(scan(&j, 0, 0).unwrap(), (vec![], 0, 0));
    }

    #[test]
    fn damage_before_the_last_record_is_never_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL);
        let root = crate::io::beneath::Dir::open(dir.path()).unwrap();
        let j = Journal::new(root.open_rw(JOURNAL).unwrap(), path.clone(), false);
        let ops = |k: &str| vec![Op::Set(Key::parse(k).unwrap(), b"v".to_vec())];
        let e1 = j.append(0, &ops("a")).unwrap();
        let e2 = j.append(e1, &ops("b")).unwrap();
        let e3 = j.append(e2, &ops("c")).unwrap();
        let whole = std::fs::read(&path).unwrap();
        let corrupted_at = |bytes: &[u8], at: u64| {
            std::fs::write(&path, bytes).unwrap();
            // Even with nothing recorded as applied.
            match scan(&j, 0, 0) {
                Err(Error::Corrupted(m)) => {
                    assert!(m.contains(&format!("offset {at}")), "{m}");
                    assert!(m.contains(JOURNAL), "{m}");
                }
                other => panic!("{other:?}"),
            }
        };
        // A payload byte of the middle record.
        let mut b = whole.clone();
        b[e1 as usize + 10] ^= 1;
        corrupted_at(&b, e1);
        // Its length made huge: past the end of the file, yet records follow.
        let mut b = whole.clone();
        b[e1 as usize..e1 as usize + 4].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        corrupted_at(&b, e1);
        // Its length garbled.
        let mut b = whole.clone();
        b[e1 as usize..e1 as usize + 4].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        corrupted_at(&b, e1);
        // A whole record with a valid checksum but no magic.
        let mut b = whole[..e2 as usize].to_vec();
        b.extend_from_slice(&frame::encode(b"NOTMAGIC\0\0\0\0").unwrap());
        corrupted_at(&b, e2);
        // Zeros to the end (an extension that never reached the disk) are a
        // torn tail.
        let mut b = whole.clone();
        b.extend_from_slice(&[0u8; 100]);
        std::fs::write(&path, &b).unwrap();
        assert_eq!(scan(&j, 0, e3).unwrap().0.len(), 3);
    }
}
