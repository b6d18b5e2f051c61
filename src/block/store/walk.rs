//! A verified walk over a floating store's file, for the merge, `check` and
//! repair: every entry is read whole and checked (record CRC, predecessor
//! trailer CRC) before it is used, and every length is checked against the
//! file's end before anything is allocated. The floating store's own
//! `headers` skips from header to header without checksums, so a damaged
//! size field there silently misroutes the rest of the file; the block
//! store never trusts it.
//!
//! After damage the walk can look for the next intact entry byte by byte
//! ([`resync`]): the two CRCs make a false match negligible, so the intact
//! entries behind a damaged one are still found (and a damaged size field in
//! the middle of the file is told from a torn tail at its end).

use std::path::{Path, PathBuf};

use crate::block::entry::{self, EntryRef};
use crate::block::floating::FloatingKind;
use crate::block::record;
use crate::block::{HASH_SIZE, MAX_PREDECESSORS};
use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, OpenMode};

/// Fixed bytes of a block record (header, contents length, tag, CRC): no
/// valid record is shorter.
const MIN_RECORD: u64 = entry::HEADER_LEN as u64 + 4 + 1 + 4;
/// The largest predecessor trailer.
const MAX_TRAILER: u64 = (1 + MAX_PREDECESSORS * HASH_SIZE + 4) as u64;
/// Bytes scanned per read while resynchronising.
const SCAN_WINDOW: usize = 1 << 20;

/// The blocks file of the floating store in `store_dir`.
pub(super) fn file_of(store_dir: &Path) -> PathBuf {
    store_dir.join(FloatingKind::Rw.file_name())
}

/// Opens the blocks file of the floating store in `store_dir` for reading.
pub(super) fn open(
    fs: &dyn FileSystem,
    store_dir: &Path,
) -> Result<std::sync::Arc<dyn FileHandle>> {
    fs.open(&file_of(store_dir), OpenMode::Read)
}

/// What is at one offset of the file.
pub(super) enum At<T> {
    /// A whole entry that passed both checksums (`EntryRef::len` bytes),
    /// or what the caller made of it.
    Entry(T),
    /// The file ends inside an entry, or a zero size field starts here
    /// (space written ahead of appends): the end of the entries, if no
    /// valid entry follows (see [`walk`]).
    End,
    /// Damage: the bytes here are no valid entry.
    Damaged(String),
}

/// What the size field at an offset says to do, `left` bytes before the
/// end of the entries.
enum Plan {
    End,
    Damaged(String),
    /// Read this many bytes (the record, its count byte and the largest
    /// trailer, bounded by the end: a damaged size field cannot ask for
    /// more than the file holds).
    Read(usize),
}

fn plan(prefix: [u8; 4], left: u64) -> Plan {
    if prefix == [0; 4] {
        return Plan::End;
    }
    let rec_len = record::record_len(prefix) as u64;
    if rec_len < MIN_RECORD {
        return Plan::Damaged(format!("record size {rec_len} below {MIN_RECORD}"));
    }
    if rec_len + 1 > left {
        return Plan::End;
    }
    Plan::Read((rec_len + MAX_TRAILER).min(left) as usize)
}

/// Checks the bytes a [`Plan::Read`] asked for.
fn classify(buf: &[u8]) -> At<EntryRef<'_>> {
    match entry::parse_ref(buf, true) {
        Ok(e) => At::Entry(e),
        Err(e) if e.contains("incomplete") => At::End,
        Err(e) => At::Damaged(e),
    }
}

/// Where a walk reads entries from: a file by `pread` (for stores that may
/// still change under a check), or a map of a file that no longer changes
/// (the merge's read-only stores), which the walk reads without copying.
pub(super) trait Entries {
    /// The entry at `at`, never reading past `end`, handed to `f`.
    fn entry<R>(&self, at: u64, end: u64, f: impl FnOnce(EntryRef<'_>) -> R) -> Result<At<R>>;
    /// The `len` bytes at `at`, handed to `f`.
    fn bytes<R>(&self, at: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R>;
}

impl Entries for dyn FileHandle {
    fn entry<R>(&self, at: u64, end: u64, f: impl FnOnce(EntryRef<'_>) -> R) -> Result<At<R>> {
        let left = end.saturating_sub(at);
        if left < 4 {
            return Ok(At::End);
        }
        let mut prefix = [0u8; 4];
        self.read_exact_at(&mut prefix, at)?;
        Ok(match plan(prefix, left) {
            Plan::End => At::End,
            Plan::Damaged(why) => At::Damaged(why),
            Plan::Read(want) => {
                let mut buf = vec![0u8; want];
                self.read_exact_at(&mut buf, at)?;
                match classify(&buf) {
                    At::Entry(e) => At::Entry(f(e)),
                    At::End => At::End,
                    At::Damaged(why) => At::Damaged(why),
                }
            }
        })
    }

    fn bytes<R>(&self, at: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, at)?;
        Ok(f(&buf))
    }
}

/// The entry at `at` of the mapped file `map`, whose entries end at `end`,
/// borrowed from the map.
pub(super) fn entry_in(map: &[u8], at: u64, end: u64) -> At<EntryRef<'_>> {
    let left = end.saturating_sub(at);
    if left < 4 {
        return At::End;
    }
    let Some(rest) = usize::try_from(at).ok().and_then(|a| map.get(a..)) else {
        return At::Damaged(format!("the file ends before offset {at}"));
    };
    let Some(&[a, b, c, d]) = rest.first_chunk::<4>() else {
        return At::Damaged(format!(
            "the file ends inside the size field at offset {at}"
        ));
    };
    match plan([a, b, c, d], left) {
        Plan::End => At::End,
        Plan::Damaged(why) => At::Damaged(why),
        Plan::Read(want) => match rest.get(..want) {
            Some(buf) => classify(buf),
            None => At::Damaged(format!(
                "the file ends inside the entry at offset {at}, before the end of the entries at {end}"
            )),
        },
    }
}

impl Entries for [u8] {
    fn entry<R>(&self, at: u64, end: u64, f: impl FnOnce(EntryRef<'_>) -> R) -> Result<At<R>> {
        Ok(match entry_in(self, at, end) {
            At::Entry(e) => At::Entry(f(e)),
            At::End => At::End,
            At::Damaged(why) => At::Damaged(why),
        })
    }

    fn bytes<R>(&self, at: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let bytes = usize::try_from(at)
            .ok()
            .and_then(|a| self.get(a..a.checked_add(len)?))
            .ok_or_else(|| {
                Error::Inconsistent(format!(
                    "{len} bytes at offset {at} are past the end of a mapped file of {} bytes",
                    self.len()
                ))
            })?;
        Ok(f(bytes))
    }
}

/// The first offset in `from..end` where a whole, valid entry starts, if
/// any. Used only after damage, so its cost (a read per plausible offset)
/// is paid only then.
pub(super) fn resync<S: Entries + ?Sized>(src: &S, from: u64, end: u64) -> Result<Option<u64>> {
    let mut base = from;
    while base < end {
        let n = ((end - base) as usize).min(SCAN_WINDOW);
        let found = src.bytes(base, n, |window| -> Result<Option<u64>> {
            for i in 0..n {
                let at = base + i as u64;
                let Some(p) = window.get(i..i + 4) else {
                    break; // the next window starts here
                };
                let rec_len = record::record_len([p[0], p[1], p[2], p[3]]) as u64;
                if rec_len < MIN_RECORD || at + rec_len + entry::trailer_len(0) as u64 > end {
                    continue;
                }
                if let At::Entry(()) = src.entry(at, end, |_| ())? {
                    return Ok(Some(at));
                }
            }
            Ok(None)
        })??;
        if found.is_some() {
            return Ok(found);
        }
        // Overlap by the prefix length so no offset is skipped.
        base += (n as u64).saturating_sub(3).max(1);
    }
    Ok(None)
}

/// How a walk ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// Every byte up to the end belonged to a valid entry.
    Clean,
    /// The last entry is incomplete (or only zeros follow) from `offset`:
    /// a torn tail, which a read-write open cuts.
    TornAt(u64),
    /// Damage at `offset`; with `resync`, the walk went on after it.
    DamagedAt(u64, String),
}

/// Walks the entries of `file` up to `end`, calling `f(offset, entry)` for
/// each valid one. Without `resync` it stops at the first damage; with it,
/// it looks for the next valid entry and goes on (reporting the first
/// damage). A tail that looks torn but is followed by a valid entry is
/// damage, not a torn tail.
pub(super) fn walk<S: Entries + ?Sized>(
    src: &S,
    end: u64,
    resync_after_damage: bool,
    mut f: impl FnMut(u64, EntryRef<'_>) -> Result<()>,
) -> Result<Ended> {
    let mut at = 0u64;
    let mut first_damage: Option<(u64, String)> = None;
    while at < end {
        let (why, next) = match src.entry(at, end, |e| f(at, e).map(|()| e.len as u64))? {
            At::Entry(len) => {
                at += len?;
                continue;
            }
            At::End => match resync(src, at + 1, end)? {
                None if first_damage.is_none() => return Ok(Ended::TornAt(at)),
                None => break,
                // Valid entries follow: not a torn tail.
                Some(next) => ("entry runs past a valid entry".to_string(), Some(next)),
            },
            At::Damaged(w) if resync_after_damage => {
                let next = resync(src, at + 1, end)?;
                (w, next)
            }
            At::Damaged(w) => (w, None),
        };
        if !resync_after_damage {
            return Ok(Ended::DamagedAt(at, why));
        }
        first_damage.get_or_insert((at, why));
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    Ok(match first_damage {
        Some((o, w)) => Ended::DamagedAt(o, w),
        None => Ended::Clean,
    })
}

/// The error a merge or check reports for damage at `offset` of `file`.
pub(super) fn damage_error(file: &Path, offset: u64, why: &str) -> Error {
    Error::corrupted(file, format!("floating entry at offset {offset}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockRef;
    use crate::io::{FileSystem, MapPromise, StdFs};

    /// A file of `n` entries, with metadata every other block.
    fn entries(n: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let contents = vec![i; 100 + i as usize];
            let metadata = [i ^ 0x5a; 50];
            let b = BlockRef {
                hash: &[i; 32],
                level: i32::from(i),
                predecessor: &[i.wrapping_sub(1); 32],
                contents: &contents,
                metadata: (i % 2 == 0).then_some(&metadata[..]),
            };
            let preds = vec![[i.wrapping_sub(1); 32]; (i % 4) as usize];
            entry::encode_into(&mut out, &b, &[i; 32], &preds).unwrap();
        }
        out
    }

    /// What a walk saw: each entry's offset, hash and predecessor count,
    /// and how it ended.
    fn trace<S: Entries + ?Sized>(
        src: &S,
        end: u64,
        resync: bool,
    ) -> (Vec<(u64, u8, usize)>, Ended) {
        let mut seen = Vec::new();
        let ended = walk(src, end, resync, |at, e| {
            seen.push((at, e.block.hash[0], e.preds().len()));
            Ok(())
        })
        .unwrap();
        (seen, ended)
    }

    /// The merge walks a map, check and repair walk the file by `pread`:
    /// both must see the same entries and the same damage, whatever byte
    /// is damaged, and whether or not the walk resynchronises.
    #[test]
    fn a_walk_over_a_map_sees_what_a_walk_over_the_file_sees() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let clean = entries(12);
        let end = clean.len() as u64;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for case in 0..200 {
            let mut bytes = clean.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if case > 0 {
                let at = (x % end) as usize;
                bytes[at] ^= 1 << (x >> 60 & 7);
            }
            // Also a file cut short of the end its entries should reach.
            let cut = case % 7 == 3;
            if cut {
                bytes.truncate(bytes.len() - 10);
            }
            let path = dir.path().join(format!("case-{case}"));
            let file = fs.open(&path, crate::io::OpenMode::Truncate).unwrap();
            file.write_all_at(&bytes, 0).unwrap();
            let map = file.map(MapPromise::IMMUTABLE).unwrap();
            let file_end = bytes.len() as u64;
            for resync in [false, true] {
                let by_file = trace(file.as_ref(), file_end, resync);
                let by_map = trace(&map[..], file_end, resync);
                assert_eq!(by_file, by_map, "case {case}, resync {resync}");
                if case == 0 {
                    assert_eq!(by_map.0.len(), 12);
                    assert_eq!(by_map.1, Ended::Clean);
                }
            }
            // A map shorter than the end of the entries is damage, never a
            // read past the map.
            if cut {
                let (_, ended) = trace(&map[..], end, false);
                assert!(
                    matches!(ended, Ended::DamagedAt(..) | Ended::TornAt(_)),
                    "case {case}: {ended:?}"
                );
            }
        }
    }
}
