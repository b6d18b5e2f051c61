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

use crate::block::entry::{self, Entry};
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
pub(super) enum At {
    /// A whole entry that passed both checksums, of `Entry::len` bytes.
    Entry(Box<Entry>),
    /// The file ends inside an entry, or a zero size field starts here
    /// (space written ahead of appends): the end of the entries, if no
    /// valid entry follows (see [`walk`]).
    End,
    /// Damage: the bytes here are no valid entry.
    Damaged(String),
}

/// Reads and verifies the entry at `at`, never reading past `end`.
pub(super) fn entry_at(file: &dyn FileHandle, at: u64, end: u64) -> Result<At> {
    let left = end.saturating_sub(at);
    if left < 4 {
        return Ok(At::End);
    }
    let mut prefix = [0u8; 4];
    file.read_exact_at(&mut prefix, at)?;
    if prefix == [0; 4] {
        return Ok(At::End);
    }
    let rec_len = record::record_len(prefix) as u64;
    if rec_len < MIN_RECORD {
        return Ok(At::Damaged(format!(
            "record size {rec_len} below {MIN_RECORD}"
        )));
    }
    if rec_len + 1 > left {
        return Ok(At::End);
    }
    // The record, its count byte and the largest trailer, bounded by the
    // file: a damaged size field cannot ask for more than the file holds.
    let want = (rec_len + MAX_TRAILER).min(left) as usize;
    let mut buf = vec![0u8; want];
    file.read_exact_at(&mut buf, at)?;
    match entry::parse(&buf, true) {
        Ok(e) => Ok(At::Entry(Box::new(e))),
        Err(e) if e.contains("incomplete") => Ok(At::End),
        Err(e) => Ok(At::Damaged(e)),
    }
}

/// The first offset in `from..end` where a whole, valid entry starts, if
/// any. Used only after damage, so its cost (a read per plausible offset)
/// is paid only then.
pub(super) fn resync(file: &dyn FileHandle, from: u64, end: u64) -> Result<Option<u64>> {
    let mut window = vec![0u8; SCAN_WINDOW];
    let mut base = from;
    while base < end {
        let n = ((end - base) as usize).min(SCAN_WINDOW);
        file.read_exact_at(&mut window[..n], base)?;
        for i in 0..n {
            let at = base + i as u64;
            let Some(p) = window.get(i..i + 4) else {
                break; // the next window starts here
            };
            let rec_len = record::record_len([p[0], p[1], p[2], p[3]]) as u64;
            if rec_len < MIN_RECORD || at + rec_len + entry::trailer_len(0) as u64 > end {
                continue;
            }
            if let At::Entry(_) = entry_at(file, at, end)? {
                return Ok(Some(at));
            }
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
pub(super) fn walk(
    file: &dyn FileHandle,
    end: u64,
    resync_after_damage: bool,
    mut f: impl FnMut(u64, Entry) -> Result<()>,
) -> Result<Ended> {
    let mut at = 0u64;
    let mut first_damage: Option<(u64, String)> = None;
    while at < end {
        let (why, next) = match entry_at(file, at, end)? {
            At::Entry(e) => {
                let len = e.len as u64;
                f(at, *e)?;
                at += len;
                continue;
            }
            At::End => match resync(file, at + 1, end)? {
                None if first_damage.is_none() => return Ok(Ended::TornAt(at)),
                None => break,
                // Valid entries follow: not a torn tail.
                Some(next) => ("entry runs past a valid entry".to_string(), Some(next)),
            },
            At::Damaged(w) if resync_after_damage => {
                let next = resync(file, at + 1, end)?;
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
