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

/// What a merge reads: the file it replaces, and what is newer than it.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    /// The data file the result replaces: the base (a base merge) or the
    /// delta (a delta merge).
    pub old: &'a DataFile,
    /// A base merge: the delta, newer than `old` and older than the logs.
    pub delta: Option<&'a DataFile>,
    /// The frozen logs, newest of all.
    pub frozen: &'a FrozenLogs,
}

/// Where a binding newer than the old file's comes from.
#[derive(Clone, Copy)]
enum Newer {
    /// Frozen entry `idx` (in the frozen view's hash order).
    Log(usize),
    /// Delta entry `i`.
    Delta(u64),
}

impl Sources<'_> {
    /// The binding `n` names, as stored (unchecked: what the counting pass
    /// reads).
    fn newer(&self, n: Newer) -> (&[u8], &[u8]) {
        match (n, self.delta) {
            (Newer::Log(idx), _) => self.frozen.entry(idx).unwrap_or((&[], &[])),
            (Newer::Delta(i), Some(d)) => d.entry(i),
            (Newer::Delta(_), None) => (&[], &[]),
        }
    }

    /// The binding `n` names, a log entry's checksum verified (a delta's
    /// sections are checksummed as the write pass streams them).
    fn checked(&self, n: Newer) -> Result<(&[u8], &[u8])> {
        match n {
            Newer::Log(idx) => self.frozen.checked_entry(idx),
            Newer::Delta(_) => Ok(self.newer(n)),
        }
    }
}

/// A piece of the merged sequence: old entries `from..to` (copied as they
/// are), or one newer entry.
#[derive(Clone, Copy)]
enum Src {
    Old {
        from: u64,
        to: u64,
    },
    /// Old entry `i`, replaced by a newer one (not copied, but part of the
    /// old sections' checksums).
    Replaced {
        i: u64,
    },
    /// Delta entry `i`, replaced by a log entry (not copied, but part of
    /// the delta's checksums).
    Shadowed {
        i: u64,
    },
    New {
        hash: u64,
        from: Newer,
    },
}

/// The old file's side of a join: entries before `i` are emitted.
struct OldCursor<'a> {
    old: &'a DataFile,
    i: u64,
}

impl OldCursor<'_> {
    /// Emits the old entries ordered before `(hash, key)` as one run, the
    /// old entry it replaces if any, then the newer entry itself.
    #[inline]
    fn place(
        &mut self,
        hash: u64,
        key: &[u8],
        from: Newer,
        emit: &mut impl FnMut(Src) -> Result<()>,
    ) -> Result<()> {
        let (old, count) = (self.old, self.old.count());
        let mut end = self.i;
        while end < count && old.hash(end) < hash {
            end += 1;
        }
        while end < count && old.hash(end) == hash && old.entry(end).0 < key {
            end += 1;
        }
        if end > self.i {
            emit(Src::Old {
                from: self.i,
                to: end,
            })?;
            self.i = end;
        }
        if self.i < count && old.hash(self.i) == hash && old.entry(self.i).0 == key {
            emit(Src::Replaced { i: self.i })?;
            self.i += 1;
        }
        emit(Src::New { hash, from })
    }
}

/// Calls `emit` for the pieces of `old ∪ delta ∪ frozen` in `(hash, key)`
/// order; on equal keys only the newest entry is given (frozen over delta
/// over old). Old entries come in runs between two newer entries, so they
/// are copied in bulk.
fn join(s: &Sources, mut emit: impl FnMut(Src) -> Result<()>) -> Result<()> {
    let mut old = OldCursor { old: s.old, i: 0 };
    let delta_count = s.delta.map_or(0, |d| d.count());
    let mut d = 0u64;
    for idx in 0..s.frozen.len() {
        // The frozen entries are read in hash order, i.e. at random places
        // of the logs: start loading one a few steps ahead so the misses
        // overlap instead of following each other.
        if let Some((k, _)) = s.frozen.entry(idx + PREFETCH) {
            anon::prefetch(k);
        }
        let nk = s.frozen.entry(idx).map_or(&[][..], |(k, _)| k);
        let nh = key_hash(nk);
        if let Some(delta) = s.delta {
            while d < delta_count {
                let (dh, dk) = (delta.hash(d), delta.entry(d).0);
                match (dh, dk).cmp(&(nh, nk)) {
                    std::cmp::Ordering::Less => old.place(dh, dk, Newer::Delta(d), &mut emit)?,
                    std::cmp::Ordering::Equal => emit(Src::Shadowed { i: d })?,
                    std::cmp::Ordering::Greater => break,
                }
                d += 1;
            }
        }
        old.place(nh, nk, Newer::Log(idx), &mut emit)?;
    }
    if let Some(delta) = s.delta {
        for d in d..delta_count {
            old.place(delta.hash(d), delta.entry(d).0, Newer::Delta(d), &mut emit)?;
        }
    }
    let count = s.old.count();
    if old.i < count {
        emit(Src::Old {
            from: old.i,
            to: count,
        })?;
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

/// Calls `keep(key, value)` once for every live binding of the merged
/// sources (the value without the removable tag), in the merge's order,
/// and records the verdicts. `Ok(None)` when `cancel` was raised
/// meanwhile. Log entries are verified before the filter sees them.
pub(crate) fn decide(
    s: &Sources,
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
    join(s, |src| {
        if cancelled {
            return Ok(());
        }
        match src {
            Src::Old { from, to } => {
                for i in from..to {
                    let (k, v) = s.old.entry(i);
                    d.push(user(removable, v).is_some_and(|v| keep(k, v)));
                    if tick() {
                        cancelled = true;
                        return Ok(());
                    }
                }
            }
            Src::Replaced { .. } | Src::Shadowed { .. } => {}
            Src::New { from, .. } => {
                let (k, v) = s.checked(from)?;
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

/// What a merge writes: the file, and how.
#[derive(Clone, Copy)]
pub(crate) struct Output<'a> {
    pub path: &'a Path,
    pub generation: u64,
    pub ksize: usize,
    /// Value size on disk (with the removable tag byte).
    pub vsize: usize,
    pub flags: u32,
    /// A delta keeps the tombstones of removed keys (they hide the base's
    /// bindings); a base drops them.
    pub tombstones: bool,
    /// The live bindings the header records (`None`: the count).
    pub live: Option<u64>,
    /// A delta: the generation of the base it is written on.
    pub base_generation: u64,
}

/// A section's checksum, recomputed from the bytes a merge reads, for
/// comparison with the one the file was verified against at open.
#[derive(Default)]
struct Recheck {
    hashes: crc32fast::Hasher,
    entries: crc32fast::Hasher,
}

impl Recheck {
    fn update(&mut self, d: &DataFile, from: u64, to: u64) {
        self.hashes.update(d.hashes_bytes(from, to));
        self.entries.update(d.entries_bytes(from, to));
    }

    fn verify(self, d: &DataFile, path: &Path) -> Result<()> {
        if (self.hashes.finalize(), self.entries.finalize())
            == (d.header.hashes_crc, d.header.entries_crc)
        {
            return Ok(());
        }
        Err(Error::corrupted(
            path,
            format!(
                "the hashes (offset {}) or entries (offset {}) of data generation {} fail their checksums while merged: merge aborted",
                d.hashes_offset(),
                d.entries_offset(),
                d.generation()
            ),
        ))
    }
}

/// Writes the merged sources (newest wins; tombstones kept or dropped as
/// `out` says; with a `selection`, only the live bindings it keeps) as a
/// data file of `out.generation` at `out.path`, atomically and durably. A
/// raised cancel flag stops it before the rename, removing the temporary
/// file.
pub(crate) fn write(
    fs: &dyn FileSystem,
    s: &Sources,
    out: &Output,
    selection: Option<Selection>,
) -> Result<()> {
    let path = out.path;
    if selection.is_some() && out.tombstones {
        return Err(Error::Inconsistent(format!(
            "merge into {}: a filtered merge writes a base, without tombstones",
            path.display()
        )));
    }
    let removable = out.flags & data::FLAG_REMOVABLE != 0;
    let live = |from: Newer| !removable || s.newer(from).1.first() == Some(&1);
    let mut count = 0u64;
    let mut verdict = 0u64;
    join(s, |src| {
        count += match (src, selection) {
            (Src::Replaced { .. } | Src::Shadowed { .. }, _) => 0,
            (Src::Old { from, to }, None) => to - from,
            (Src::New { from, .. }, None) => u64::from(out.tombstones || live(from)),
            (Src::Old { from, to }, Some(sel)) => {
                let kept = (verdict..verdict + to - from)
                    .filter(|&i| sel.decisions.get(i))
                    .count();
                verdict += to - from;
                kept as u64
            }
            (Src::New { from, .. }, Some(sel)) if live(from) => {
                verdict += 1;
                u64::from(sel.decisions.get(verdict - 1))
            }
            (Src::New { .. }, Some(_)) => 0,
        };
        Ok(())
    })?;
    if let Some(sel) = selection {
        if verdict != sel.decisions.len {
            return Err(Error::Inconsistent(format!(
                "merge into {}: {} filter verdicts for {verdict} bindings",
                path.display(),
                sel.decisions.len
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
        let mut old_check = Recheck::default();
        let mut delta_check = Recheck::default();
        let mut verdict = 0u64;
        let cancel_at = |verdict: u64| {
            verdict % CANCEL_EVERY == 0
                && selection.is_some_and(|sel| sel.cancel.load(Ordering::Relaxed))
        };
        join(s, |src| {
            match src {
                Src::Old { from, to } if selection.is_some() => {
                    old_check.update(s.old, from, to);
                    for i in from..to {
                        let kept = selection.is_some_and(|sel| sel.decisions.get(verdict));
                        verdict += 1;
                        if cancel_at(verdict) {
                            return Err(cancelled(path));
                        }
                        if !kept {
                            continue;
                        }
                        let h = s.old.hash(i);
                        let b = data::bucket(h, fan_bits);
                        while next_bucket <= b {
                            fan.push(&written.to_le_bytes())?;
                            next_bucket += 1;
                        }
                        hashes.push(&h.to_le_bytes())?;
                        entries.push(s.old.entries_bytes(i, i + 1))?;
                        written += 1;
                    }
                }
                Src::Replaced { i } => old_check.update(s.old, i, i + 1),
                Src::Shadowed { i } => {
                    if let Some(d) = s.delta {
                        delta_check.update(d, i, i + 1);
                    }
                }
                Src::Old { from, to } => {
                    old_check.update(s.old, from, to);
                    for i in from..to {
                        let b = data::bucket(s.old.hash(i), fan_bits);
                        while next_bucket <= b {
                            fan.push(&(written + i - from).to_le_bytes())?;
                            next_bucket += 1;
                        }
                    }
                    hashes.push(s.old.hashes_bytes(from, to))?;
                    entries.push(s.old.entries_bytes(from, to))?;
                    written += to - from;
                }
                Src::New { hash, from } => {
                    if let (Newer::Delta(i), Some(d)) = (from, s.delta) {
                        delta_check.update(d, i, i + 1);
                    }
                    let (k, v) = s.checked(from)?;
                    let is_live = live(from);
                    if !is_live && !out.tombstones {
                        return Ok(());
                    }
                    if let (Some(sel), true) = (selection, is_live) {
                        verdict += 1;
                        if cancel_at(verdict) {
                            return Err(cancelled(path));
                        }
                        if !sel.decisions.get(verdict - 1) {
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
        old_check.verify(s.old, path)?;
        if let Some(d) = s.delta {
            delta_check.verify(d, path)?;
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
            ksize: out.ksize as u32,
            vsize: out.vsize as u32,
            flags: out.flags,
            fan_bits,
            generation: out.generation,
            count,
            fan_crc: fan.finish()?,
            hashes_crc: hashes.finish()?,
            entries_crc: entries.finish()?,
            live: out.live.unwrap_or(count),
            base_generation: out.base_generation,
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

    /// A base merge of `old` and `frozen` (no delta), as before the delta
    /// level: what most tests here exercise.
    #[allow(clippy::too_many_arguments)]
    fn write(
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
        let out = Output {
            path,
            generation,
            ksize,
            vsize,
            flags,
            tombstones: false,
            live: None,
            base_generation: 0,
        };
        let s = Sources {
            old,
            delta: None,
            frozen,
        };
        super::write(fs, &s, &out, selection)
    }

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
        let crc = crc32fast::hash(&bad[..data::HEADER - 4]);
        bad[data::HEADER - 4..data::HEADER].copy_from_slice(&crc.to_le_bytes());
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

    /// The two-level path: a delta merge keeps tombstones and records the
    /// live count it is given; a base merge of base, delta and logs gives
    /// each key its newest binding, drops tombstones, and refuses a delta
    /// whose entries changed since it was opened.
    #[test]
    fn delta_merges_keep_tombstones_and_base_merges_take_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let flags = data::FLAG_REMOVABLE;
        let base_path = dir.path().join("data");
        let delta_path = dir.path().join("delta");
        let empty = DataFile::empty(8, 2);
        // Base: keys 0..1000 with tag 1, value byte 1.
        write(
            &fs,
            &base_path,
            &empty,
            &table(dir.path(), 0..1000, 1),
            1,
            8,
            2,
            flags,
            None,
        )
        .unwrap();
        let base = DataFile::open(&fs, &base_path, 8, 2, flags).unwrap();
        // Delta: 500..600 removed (tombstones), 900..1100 bound (tag 1).
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = (500..600u32)
            .map(|i| (key(i).to_vec(), vec![0, 0]))
            .collect();
        entries.extend((900..1100u32).map(|i| (key(i).to_vec(), vec![1, 2])));
        let into_delta = Output {
            path: &delta_path,
            generation: 2,
            ksize: 8,
            vsize: 2,
            flags,
            tombstones: true,
            live: Some(1000),
            base_generation: 1,
        };
        let f = frozen(dir.path(), entries);
        let s = Sources {
            old: &empty,
            delta: None,
            frozen: &f,
        };
        super::write(&fs, &s, &into_delta, None).unwrap();
        let delta = DataFile::open(&fs, &delta_path, 8, 2, flags).unwrap();
        assert_eq!((delta.count(), delta.live()), (300, 1000));
        let k = key(550);
        assert_eq!(delta.find(key_hash(&k), &k), Some(&[0u8, 0][..]));
        // Base merge: logs rebind 550 and 950, remove 100.
        let mut entries = vec![
            (key(550).to_vec(), vec![1, 3]),
            (key(950).to_vec(), vec![1, 3]),
        ];
        entries.push((key(100).to_vec(), vec![0, 0]));
        let f = frozen(dir.path(), entries);
        let s = Sources {
            old: &base,
            delta: Some(&delta),
            frozen: &f,
        };
        let into_base = Output {
            path: &base_path,
            generation: 3,
            tombstones: false,
            live: None,
            base_generation: 0,
            ..into_delta
        };
        // A delta byte changed in place under its map since the open (the
        // page cache the map shares): the merge's recheck refuses it and
        // publishes nothing.
        let poke = |byte: u8| {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&delta_path)
                .unwrap();
            let last = f.metadata().unwrap().len() - 1;
            f.write_all_at(&[byte], last).unwrap();
        };
        let last_byte = *std::fs::read(&delta_path).unwrap().last().unwrap();
        poke(last_byte ^ 0x10);
        let refused = super::write(&fs, &s, &into_base, None);
        assert!(matches!(refused, Err(Error::Corrupted(_))), "{refused:?}");
        assert_eq!(
            DataFile::open(&fs, &base_path, 8, 2, flags)
                .unwrap()
                .generation(),
            1
        );
        poke(last_byte);
        super::write(&fs, &s, &into_base, None).unwrap();
        let merged = DataFile::open(&fs, &base_path, 8, 2, flags).unwrap();
        // 0..1100 minus 500..600 except 550, minus 100.
        assert_eq!(merged.count(), 1100 - 100 + 1 - 1);
        assert_eq!(merged.live(), merged.count());
        for i in 0..1200u32 {
            let k = key(i);
            // Newest first: the logs, the delta, the base.
            let want: Option<[u8; 2]> = if i == 100 {
                None
            } else if i == 550 || i == 950 {
                Some([1, 3])
            } else if (500..600).contains(&i) {
                None
            } else if (900..1100).contains(&i) {
                Some([1, 2])
            } else if i < 1000 {
                Some([1, i as u8])
            } else {
                None
            };
            assert_eq!(
                merged.find(key_hash(&k), &k),
                want.as_ref().map(|w| &w[..]),
                "key {i}"
            );
        }
    }
}
