//! Writing a new data file: the old data merged with the frozen log table.
//!
//! The merge streams: the frozen logs come sorted by hash
//! ([`FrozenLogs`], one packed `u64` per key); the old data file is
//! read in order through its mapping; the three sections of the new file
//! (fan-out, hashes, entries) are written through small buffers. Nothing
//! on the heap grows with the number of keys in the index. A first pass
//! over the same join counts the entries, which fixes the section offsets.
//!
//! Nothing damaged is copied: each frozen entry's checksum is checked as it
//! is written, and the old data's hash and entry sections are checksummed
//! as they stream by (replaced entries included) and compared with the
//! checksums the old file was verified against at open. A mismatch aborts
//! the merge with `Corrupted` before the new file is renamed into place, so
//! the index keeps its state from before the merge.
//!
//! The file is built under a temporary name, fsynced, renamed onto `data`
//! and the directory fsynced, so a crash leaves either the old data or the
//! new one (a leftover temporary is removed at the next read-write open).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::data::{self, DataFile, Header};
use super::frozen::FrozenLogs;
use super::hash::key_hash;
use crate::error::{Error, Result};
use crate::io::anon;
use crate::io::{FileHandle, FileSystem, OpenMode, atomic};

/// Bytes buffered before each write of the entries section (the other
/// sections use smaller buffers, in proportion to their size).
const CHUNK: usize = 1 << 20;

/// How many frozen entries ahead the join starts loading.
const PREFETCH: usize = 16;

/// A buffered writer of one section, keeping the section's CRC.
struct Out<'a> {
    file: &'a dyn FileHandle,
    pos: u64,
    cap: usize,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl<'a> Out<'a> {
    fn new(file: &'a dyn FileHandle, pos: u64, cap: usize) -> Out<'a> {
        Out {
            file,
            pos,
            cap,
            buf: Vec::with_capacity(cap + 64),
            crc: crc32fast::Hasher::new(),
        }
    }

    #[inline]
    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() >= self.cap {
            // A long run of old entries: written straight from the mapping,
            // in pieces, never gathered on the heap.
            self.write()?;
            for piece in bytes.chunks(self.cap) {
                self.buf.extend_from_slice(piece);
                self.write()?;
            }
            return Ok(());
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= self.cap {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        self.crc.update(&self.buf);
        self.file.write_all_at(&self.buf, self.pos)?;
        self.pos += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<u32> {
        self.write()?;
        Ok(self.crc.finalize())
    }
}

/// A piece of the merged sequence: old data entries `from..to` (copied as
/// they are), or one frozen entry (its hash and position in the frozen
/// order).
#[derive(Clone, Copy)]
enum Src {
    Old {
        from: u64,
        to: u64,
    },
    /// Old entry `i`, replaced by a frozen one (not copied, but part of
    /// the old sections' checksums).
    Replaced {
        i: u64,
    },
    New {
        hash: u64,
        idx: usize,
    },
}

/// Calls `emit` for the pieces of `old ∪ frozen` in `(hash, key)` order;
/// on equal keys only the frozen entry (newer) is given. Old entries come
/// in runs between two frozen entries, so they are copied in bulk.
fn join(
    old: &DataFile,
    frozen: &FrozenLogs,
    mut emit: impl FnMut(Src) -> Result<()>,
) -> Result<()> {
    let mut i = 0u64;
    let count = old.count();
    for idx in 0..frozen.len() {
        // The frozen entries are read in hash order, i.e. at random places
        // of the logs: start loading one a few steps ahead so the misses
        // overlap instead of following each other.
        if let Some((k, _)) = frozen.entry(idx + PREFETCH) {
            anon::prefetch(k);
        }
        let nk = frozen.entry(idx).map_or(&[][..], |(k, _)| k);
        let nh = key_hash(nk);
        let mut end = i;
        while end < count && old.hash(end) < nh {
            end += 1;
        }
        while end < count && old.hash(end) == nh && old.entry(end).0 < nk {
            end += 1;
        }
        if end > i {
            emit(Src::Old { from: i, to: end })?;
            i = end;
        }
        if i < count && old.hash(i) == nh && old.entry(i).0 == nk {
            emit(Src::Replaced { i })?;
            i += 1;
        }
        emit(Src::New { hash: nh, idx })?;
    }
    if i < count {
        emit(Src::Old { from: i, to: count })?;
    }
    Ok(())
}

/// How often (in bindings) a filtered merge's write pass looks at its
/// cancel flag.
const CANCEL_EVERY: u64 = 4096;

/// A filter's verdict on each live binding of `old ∪ frozen`, one bit per
/// binding in the merge's order: decided once, before anything is written,
/// so the filter is called exactly once per binding although the merge
/// walks the bindings twice (to count, then to write).
pub(crate) struct Decisions {
    bits: Vec<u64>,
    len: u64,
}

impl Decisions {
    fn push(&mut self, keep: bool) {
        let (word, bit) = ((self.len / 64) as usize, self.len % 64);
        if word == self.bits.len() {
            self.bits.push(0);
        }
        if keep {
            self.bits[word] |= 1 << bit;
        }
        self.len += 1;
    }

    fn get(&self, i: u64) -> bool {
        self.bits
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// What a filtered merge keeps: the verdicts, and the flag that stops it.
#[derive(Clone, Copy)]
pub(crate) struct Selection<'a> {
    pub decisions: &'a Decisions,
    pub cancel: &'a AtomicBool,
}

/// Calls `keep(key, value)` once for every live binding of `old ∪ frozen`
/// (the value without the removable tag), in the merge's order, and
/// records the verdicts. `Ok(None)` when `cancel` was raised meanwhile.
/// Frozen entries are verified before the filter sees them.
pub(crate) fn decide(
    old: &DataFile,
    frozen: &FrozenLogs,
    flags: u32,
    keep: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    cancel: &AtomicBool,
) -> Result<Option<Decisions>> {
    let removable = flags & data::FLAG_REMOVABLE != 0;
    fn user(removable: bool, v: &[u8]) -> Option<&[u8]> {
        if !removable {
            return Some(v);
        }
        match v.split_first() {
            Some((1, rest)) => Some(rest),
            _ => None,
        }
    }
    let mut d = Decisions {
        bits: Vec::new(),
        len: 0,
    };
    let mut cancelled = false;
    // Checked at every binding: a filter call costs far more than the
    // load, and a slow filter (a C callback doing I/O) still stops soon.
    let tick = || cancel.load(Ordering::Relaxed);
    join(old, frozen, |src| {
        if cancelled {
            return Ok(());
        }
        match src {
            Src::Old { from, to } => {
                for i in from..to {
                    let (k, v) = old.entry(i);
                    d.push(user(removable, v).is_some_and(|v| keep(k, v)));
                    if tick() {
                        cancelled = true;
                        return Ok(());
                    }
                }
            }
            Src::Replaced { .. } => {}
            Src::New { idx, .. } => {
                let (k, v) = frozen.checked_entry(idx)?;
                if let Some(v) = user(removable, v) {
                    d.push(keep(k, v));
                }
                if tick() {
                    cancelled = true;
                }
            }
        }
        Ok(())
    })?;
    Ok((!cancelled && !cancel.load(Ordering::Relaxed)).then_some(d))
}

/// The error a merge stopped by its cancel flag returns (the caller, who
/// raised the flag, tells it from a failure by the flag).
fn cancelled(path: &Path) -> Error {
    Error::Inconsistent(format!("merge into {} cancelled", path.display()))
}

/// Writes `old ∪ frozen` (frozen wins; removable tombstones dropped; with
/// a `selection`, only the bindings it keeps) as data file `generation`
/// at `path`, atomically and durably. A raised cancel flag stops it before
/// the rename, removing the temporary file.
#[allow(clippy::too_many_arguments)] // the parts of one data file's identity
pub(crate) fn write(
    fs: &dyn FileSystem,
    path: &Path,
    old: &DataFile,
    frozen: &FrozenLogs,
    generation: u64,
    ksize: usize,
    vsize: usize,
    flags: u32,
    selection: Option<Selection>,
) -> Result<()> {
    let removable = flags & data::FLAG_REMOVABLE != 0;
    // The old data holds no tombstones: merges drop them.
    let new_live = |idx: usize| {
        !removable
            || frozen
                .entry(idx)
                .is_some_and(|(_, v)| v.first() == Some(&1))
    };
    let mut count = 0u64;
    let mut verdict = 0u64;
    join(old, frozen, |src| {
        count += match (src, selection) {
            (Src::Replaced { .. }, _) => 0,
            (Src::Old { from, to }, None) => to - from,
            (Src::New { idx, .. }, None) => u64::from(new_live(idx)),
            (Src::Old { from, to }, Some(s)) => {
                let kept = (verdict..verdict + to - from)
                    .filter(|&i| s.decisions.get(i))
                    .count();
                verdict += to - from;
                kept as u64
            }
            (Src::New { idx, .. }, Some(s)) if new_live(idx) => {
                verdict += 1;
                u64::from(s.decisions.get(verdict - 1))
            }
            (Src::New { .. }, Some(_)) => 0,
        };
        Ok(())
    })?;
    if let Some(s) = selection {
        if verdict != s.decisions.len {
            return Err(Error::Inconsistent(format!(
                "merge into {}: {} filter verdicts for {verdict} bindings",
                path.display(),
                s.decisions.len
            )));
        }
    }

    let fan_bits = data::fan_bits_for(count);
    let fans = (1usize << fan_bits) + 1;
    let hashes_off = (data::HEADER + fans * 8) as u64;
    let entries_off = hashes_off + count * 8;

    let tmp = atomic::tmp_path(path)?;
    let file = fs.open(&tmp, OpenMode::Truncate)?;
    let result = (|| -> Result<()> {
        let f = file.as_ref();
        let mut fan = Out::new(f, data::HEADER as u64, CHUNK / 16);
        let mut hashes = Out::new(f, hashes_off, CHUNK / 4);
        let mut entries = Out::new(f, entries_off, CHUNK);
        let mut written = 0u64;
        // The next fan-out slot to write: slots up to an entry's bucket
        // point at the first entry of a bucket at or after theirs.
        let mut next_bucket = 0usize;
        let mut old_hashes = crc32fast::Hasher::new();
        let mut old_entries = crc32fast::Hasher::new();
        let mut verdict = 0u64;
        join(old, frozen, |src| {
            match src {
                Src::Old { from, to } if selection.is_some() => {
                    old_hashes.update(old.hashes_bytes(from, to));
                    old_entries.update(old.entries_bytes(from, to));
                    for i in from..to {
                        let kept = selection.is_some_and(|s| s.decisions.get(verdict));
                        verdict += 1;
                        if verdict % CANCEL_EVERY == 0
                            && selection.is_some_and(|s| s.cancel.load(Ordering::Relaxed))
                        {
                            return Err(cancelled(path));
                        }
                        if !kept {
                            continue;
                        }
                        let h = old.hash(i);
                        let b = data::bucket(h, fan_bits);
                        while next_bucket <= b {
                            fan.push(&written.to_le_bytes())?;
                            next_bucket += 1;
                        }
                        hashes.push(&h.to_le_bytes())?;
                        entries.push(old.entries_bytes(i, i + 1))?;
                        written += 1;
                    }
                }
                Src::Replaced { i } => {
                    old_hashes.update(old.hashes_bytes(i, i + 1));
                    old_entries.update(old.entries_bytes(i, i + 1));
                }
                Src::Old { from, to } => {
                    old_hashes.update(old.hashes_bytes(from, to));
                    old_entries.update(old.entries_bytes(from, to));
                    for i in from..to {
                        let b = data::bucket(old.hash(i), fan_bits);
                        while next_bucket <= b {
                            fan.push(&(written + i - from).to_le_bytes())?;
                            next_bucket += 1;
                        }
                    }
                    hashes.push(old.hashes_bytes(from, to))?;
                    entries.push(old.entries_bytes(from, to))?;
                    written += to - from;
                }
                Src::New { hash, idx } => {
                    let (k, v) = frozen.checked_entry(idx)?;
                    if !new_live(idx) {
                        return Ok(());
                    }
                    if let Some(s) = selection {
                        verdict += 1;
                        if verdict % CANCEL_EVERY == 0 && s.cancel.load(Ordering::Relaxed) {
                            return Err(cancelled(path));
                        }
                        if !s.decisions.get(verdict - 1) {
                            return Ok(());
                        }
                    }
                    let b = data::bucket(hash, fan_bits);
                    while next_bucket <= b {
                        fan.push(&written.to_le_bytes())?;
                        next_bucket += 1;
                    }
                    hashes.push(&hash.to_le_bytes())?;
                    entries.push(k)?;
                    entries.push(v)?;
                    written += 1;
                }
            }
            Ok(())
        })?;
        if (old_hashes.finalize(), old_entries.finalize())
            != (old.header.hashes_crc, old.header.entries_crc)
        {
            return Err(Error::corrupted(
                path,
                format!(
                    "the hashes (offset {}) or entries (offset {}) of data generation {} fail their checksums while merged: merge aborted",
                    old.hashes_offset(),
                    old.entries_offset(),
                    old.generation()
                ),
            ));
        }
        if written != count {
            return Err(Error::corrupted(
                path,
                format!("merge wrote {written} entries, counted {count}"),
            ));
        }
        while next_bucket < fans {
            fan.push(&count.to_le_bytes())?;
            next_bucket += 1;
        }
        let header = Header {
            ksize: ksize as u32,
            vsize: vsize as u32,
            flags,
            fan_bits,
            generation,
            count,
            fan_crc: fan.finish()?,
            hashes_crc: hashes.finish()?,
            entries_crc: entries.finish()?,
        };
        file.write_all_at(&header.encode(), 0)?;
        file.sync()
    })();
    drop(file);
    if let Err(e) = result {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, path)?;
    fs.sync_dir(atomic::parent_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::io::StdFs;

    fn key(i: u32) -> [u8; 8] {
        u64::from(i)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_le_bytes()
    }

    /// The frozen view of one log holding `entries`, written in `dir`
    /// under a fresh generation.
    fn frozen(dir: &Path, entries: Vec<(Vec<u8>, Vec<u8>)>) -> FrozenLogs {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(100);
        let g = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = super::super::frozen::log_of(&StdFs::new(false), dir, g, &entries);
        let (k, v) = entries.first().map_or((8, 2), |(k, v)| (k.len(), v.len()));
        FrozenLogs::build(&[log], k, v).expect("frozen view")
    }

    fn table(dir: &Path, range: std::ops::Range<u32>, tag: u8) -> FrozenLogs {
        frozen(
            dir,
            range
                .map(|i| (key(i).to_vec(), vec![tag, i as u8]))
                .collect(),
        )
    }

    #[test]
    fn merge_find_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let path = dir.path().join("data");
        let empty = DataFile::empty(8, 2);
        write(
            &fs,
            &path,
            &empty,
            &table(dir.path(), 0..3000, 1),
            1,
            8,
            2,
            0,
            None,
        )
        .unwrap();
        let first = DataFile::open(&fs, &path, 8, 2, 0).unwrap();
        // Keys 2000..5000 replace or extend the first generation.
        write(
            &fs,
            &path,
            &first,
            &table(dir.path(), 2000..5000, 2),
            2,
            8,
            2,
            0,
            None,
        )
        .unwrap();
        let d = DataFile::open(&fs, &path, 8, 2, 0).unwrap();
        assert_eq!((d.count(), d.generation()), (5000, 2));
        for i in 0..6000u32 {
            let k = key(i);
            let want = match i {
                0..2000 => Some([1, i as u8]),
                2000..5000 => Some([2, i as u8]),
                _ => None,
            };
            assert_eq!(d.find(key_hash(&k), &k), want.as_ref().map(|w| &w[..]));
        }
        drop((d, first));

        let good = std::fs::read(&path).unwrap();
        let fan_bits = data::fan_bits_for(5000);
        let hashes_off = data::HEADER + ((1 << fan_bits) + 1) * 8;
        let entries_off = hashes_off + 5000 * 8;
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            matches!(
                DataFile::open(&fs, &path, 8, 2, 0),
                Err(Error::Corrupted(_))
            )
        };
        // A flipped bit in any section is refused.
        for off in [3, data::HEADER + 8, hashes_off + 80, entries_off + 5] {
            let mut bad = good.clone();
            bad[off] ^= 0x04;
            assert!(refused(&bad), "flip at {off} accepted");
        }
        // So are hashes out of order, even with matching checksums.
        let mut bad = good.clone();
        let (a, b) = (hashes_off + 8 * 100, hashes_off + 8 * 101);
        let ha: [u8; 8] = bad[a..a + 8].try_into().unwrap();
        bad.copy_within(b..b + 8, a);
        bad[b..b + 8].copy_from_slice(&ha);
        let crc = crc32fast::hash(&bad[hashes_off..entries_off]);
        bad[44..48].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32fast::hash(&bad[..60]);
        bad[60..64].copy_from_slice(&crc.to_le_bytes());
        assert!(refused(&bad));
        std::fs::write(&path, &good).unwrap();
        assert!(DataFile::open(&fs, &path, 8, 2, 0).is_ok());
    }

    #[test]
    fn long_runs_of_old_entries_are_copied_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let path = dir.path().join("data");
        let value = |tag: u8, i: u32| {
            let mut v = [tag; 56];
            v[..4].copy_from_slice(&i.to_le_bytes());
            v
        };
        let t = frozen(
            dir.path(),
            (0..80_000u32)
                .map(|i| (key(i).to_vec(), value(1, i).to_vec()))
                .collect(),
        );
        write(&fs, &path, &DataFile::empty(8, 56), &t, 1, 8, 56, 0, None).unwrap();
        let first = DataFile::open(&fs, &path, 8, 56, 0).unwrap();
        // One frozen entry splits the old data into two runs, the longer of
        // at least 40,000 entries: over the hashes' and entries' buffers.
        let one = frozen(dir.path(), vec![(key(7).to_vec(), value(2, 7).to_vec())]);
        write(&fs, &path, &first, &one, 2, 8, 56, 0, None).unwrap();
        let d = DataFile::open(&fs, &path, 8, 56, 0).unwrap();
        assert_eq!(d.count(), 80_000);
        for i in 0..80_000u32 {
            let k = key(i);
            let tag = if i == 7 { 2 } else { 1 };
            assert_eq!(d.find(key_hash(&k), &k), Some(&value(tag, i)[..]));
        }
    }

    #[test]
    fn tombstones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let path = dir.path().join("data");
        let flags = data::FLAG_REMOVABLE;
        let empty = DataFile::empty(8, 2);
        write(
            &fs,
            &path,
            &empty,
            &table(dir.path(), 0..100, 1),
            1,
            8,
            2,
            flags,
            None,
        )
        .unwrap();
        let first = DataFile::open(&fs, &path, 8, 2, flags).unwrap();
        // Tag 0 is a tombstone: keys 50..150 removed (100..150 never existed).
        write(
            &fs,
            &path,
            &first,
            &table(dir.path(), 50..150, 0),
            2,
            8,
            2,
            flags,
            None,
        )
        .unwrap();
        let d = DataFile::open(&fs, &path, 8, 2, flags).unwrap();
        assert_eq!(d.count(), 50);
        let k = key(60);
        assert_eq!(d.find(key_hash(&k), &k), None);
    }
}
