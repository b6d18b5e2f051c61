//! `Cemented::check`: verifies a store's directory without an open handle
//! (so it works on a store that refuses to open) and, with repair, salvages
//! it: damaged chunk files go to the quarantine (their intact records stay,
//! see [`super::salvage`]), damaged zips are rewritten with their intact
//! entries (the original to the quarantine), and both indexes are rebuilt
//! from the intact chunks when they disagree with them (the old ones to
//! the quarantine). Nothing is deleted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::chunk::{Chunk, ChunkRange};
use super::metadata::{self, MetaChunk};
use super::salvage::{mark_dropped, move_chunk, salvage_chunk, salvage_zip};
use super::{DEFAULT_LOG_SIZE, HASH_TO_LEVEL, LEVEL_TO_HASH};
use crate::block::HASH_SIZE;
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::index::{Index, IndexConfig};
use crate::io::FileSystem;
use crate::io::quarantine::Quarantine;
use crate::options::OpenOptions;

/// Index mismatches spelled out in a report; more are counted.
const MAX_INDEX_DETAILS: usize = 5;

/// What the listing of the store's directory found.
#[derive(Default)]
struct Listing {
    chunks: Vec<ChunkRange>,
    zips: Vec<ChunkRange>,
    /// Markers of zips dropped by GC.
    dropped: Vec<ChunkRange>,
    /// Directories (or other non-files) bearing a chunk's or zip's name.
    not_files: Vec<String>,
}

fn list(fs: &dyn FileSystem, dir: &Path, meta_dir: &Path) -> Result<Listing> {
    let mut l = Listing::default();
    for e in fs.read_dir(dir)? {
        if ChunkRange::parse(&e.name).is_some() {
            match e.is_dir {
                true => l.not_files.push(e.name),
                false => l.chunks.extend(ChunkRange::parse(&e.name)),
            }
        }
    }
    if fs.is_dir(meta_dir)? {
        for e in fs.read_dir(meta_dir)? {
            if let Some(r) = metadata::parse_dropped(&e.name) {
                l.dropped.push(r);
            } else if let Some(r) = metadata::parse_name(&e.name) {
                match e.is_dir {
                    true => l.not_files.push(format!("{}/{}", metadata::DIR, e.name)),
                    false => l.zips.push(r),
                }
            }
        }
    }
    l.chunks.sort();
    l.zips.sort();
    l.dropped.sort();
    Ok(l)
}

/// Both indexes, opened read-only, or why they could not be.
struct Indexes {
    l2h: Index,
    h2l: Index,
}

fn open_indexes(fs: &Arc<dyn FileSystem>, dir: &Path, read_only: bool) -> Result<Indexes> {
    let open = |name: &str, k: usize, v: usize| {
        Index::open(
            dir.join(name),
            IndexConfig {
                key_size: k,
                value_size: v,
                removable: true,
                log_size: DEFAULT_LOG_SIZE,
                open: OpenOptions {
                    read_only,
                    fs: fs.clone(),
                },
            },
        )
    };
    Ok(Indexes {
        l2h: open(LEVEL_TO_HASH, 4, HASH_SIZE)?,
        h2l: open(HASH_TO_LEVEL, HASH_SIZE, 4)?,
    })
}

/// Checks `r`'s bindings in both indexes against the chunk's hashes;
/// returns the first mismatches (up to `room`) and their count.
fn compare(
    ix: &Indexes,
    c: &Chunk,
    hashes: &[[u8; HASH_SIZE]],
    room: usize,
) -> Result<(Vec<String>, u64)> {
    let r = c.range();
    let mut details = Vec::new();
    let mut count = 0;
    for (level, hash) in (r.start..=r.end).zip(hashes) {
        let lv = level.to_be_bytes();
        let mut h = [0u8; HASH_SIZE];
        let mut l = [0u8; 4];
        let l2h_ok = ix.l2h.find_into(&lv, &mut h)? && &h == hash;
        let h2l_ok = ix.h2l.find_into(hash, &mut l)? && l == lv;
        if !(l2h_ok && h2l_ok) {
            count += 1;
            if details.len() < room {
                details.push(format!(
                    "level {level} of {} is not bound to its block in {}",
                    c.path().display(),
                    if l2h_ok { HASH_TO_LEVEL } else { LEVEL_TO_HASH }
                ));
            }
        }
    }
    Ok((details, count))
}

/// See [`super::Cemented::check`].
pub(super) fn run(dir: &Path, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
    let fs = opts.fs.clone();
    if !fs.is_dir(dir)? {
        return Err(Error::NotFound(format!(
            "cemented store {} does not exist",
            dir.display()
        )));
    }
    let _lock = if repair {
        Some(fs.lock(&dir.join("lock"))?)
    } else {
        None
    };
    let mut report = CheckReport::default();
    let mut q = Quarantine::new(fs.as_ref(), dir);
    pass(&fs, dir, repair, &mut report, &mut q)?;
    if !repair {
        return Ok(report);
    }
    let (qdir, moved) = q.into_parts();
    // What remains after the repair, read afresh.
    let mut after = CheckReport::default();
    let mut q2 = Quarantine::new(fs.as_ref(), dir);
    pass(&fs, dir, false, &mut after, &mut q2)?;
    report.problems = after.problems;
    report.records_checked = after.records_checked;
    report.stopped_early = after.stopped_early;
    report.quarantine_dir = qdir;
    report.quarantined = moved;
    Ok(report)
}

fn pass(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    repair: bool,
    report: &mut CheckReport,
    q: &mut Quarantine<'_>,
) -> Result<()> {
    let meta_dir = dir.join(metadata::DIR);
    let l = list(fs.as_ref(), dir, &meta_dir)?;
    for name in &l.not_files {
        report.problem(format!(
            "{}: not a regular file (a directory)",
            dir.join(name).display()
        ));
        if repair {
            q.move_in(&dir.join(name))?;
        }
    }
    let (indexes, mut rebuild) = match open_indexes(fs, dir, true) {
        Ok(ix) => (Some(ix), false),
        // A store that never held a chunk may have no index yet.
        Err(Error::NotFound(_)) if l.chunks.is_empty() => (None, false),
        Err(e @ (Error::Corrupted(_) | Error::InvalidArgument(_) | Error::NotFound(_))) => {
            report.problem(format!("indexes of {}: {e}", dir.display()));
            (None, true)
        }
        Err(e) => return Err(e),
    };
    let mut kept: Vec<Arc<Chunk>> = Vec::new();
    // Dropped chunks; true for a damaged one whose intact runs of records
    // a repair keeps (false: overlapping, moved out whole).
    let mut dropped: BTreeMap<ChunkRange, bool> = BTreeMap::new();
    let mut mismatches = 0u64;
    let mut details = Vec::new();
    for &r in &l.chunks {
        let c = Arc::new(Chunk::new(fs.clone(), dir, r));
        let hashes = match c.verify() {
            Ok(h) => h,
            Err(Error::Corrupted(m)) => {
                report.problem(m);
                dropped.insert(r, true);
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(prev) = kept.last() {
            if r.start <= prev.range().end {
                report.problem(format!(
                    "{}: overlaps chunk {}",
                    c.path().display(),
                    prev.range()
                ));
                dropped.insert(r, false);
                continue;
            }
        }
        report.records_checked += hashes.len() as u64;
        if let Some(ix) = &indexes {
            let (d, n) = compare(
                ix,
                &c,
                &hashes,
                MAX_INDEX_DETAILS - details.len().min(MAX_INDEX_DETAILS),
            )?;
            details.extend(d);
            mismatches += n;
        }
        kept.push(c);
    }
    if let Some(ix) = &indexes {
        let levels: u64 = l.chunks.iter().map(|r| r.len() as u64).sum();
        for (name, index) in [(LEVEL_TO_HASH, &ix.l2h), (HASH_TO_LEVEL, &ix.h2l)] {
            if index.len() != levels {
                report.problem(format!(
                    "{}: binds {} levels but the chunk files hold {levels}",
                    dir.join(name).display(),
                    index.len()
                ));
                rebuild = true;
            }
        }
        if mismatches > 0 {
            for d in details {
                report.problem(d);
            }
            if mismatches > MAX_INDEX_DETAILS as u64 {
                report.problem(format!(
                    "{} more levels are not bound to their blocks",
                    mismatches - MAX_INDEX_DETAILS as u64
                ));
            }
            rebuild = true;
        }
    }
    let covered = |r: ChunkRange| -> Result<bool> {
        match &indexes {
            Some(ix) => {
                Ok(ix.l2h.mem(&r.start.to_be_bytes())? || ix.l2h.mem(&r.end.to_be_bytes())?)
            }
            None => Ok(false),
        }
    };
    let mut zips_to_fix = Vec::new();
    for &r in &l.zips {
        let m = MetaChunk::new(fs.clone(), &meta_dir, r);
        if dropped.contains_key(&r) {
            // Reported with its chunk; it goes (or is split) with it.
            continue;
        }
        if l.chunks.binary_search(&r).is_err() {
            // Without its chunk: left by an interrupted GC (the open removes
            // it) unless the index still holds its levels.
            if covered(r)? {
                report.problem(format!(
                    "{}: its chunk file {} is missing",
                    m.path().display(),
                    r.file_name()
                ));
            }
            if repair {
                q.move_in(m.path())?;
            }
            continue;
        }
        match m.verify() {
            Ok(n) => report.records_checked += n,
            Err(Error::Corrupted(e)) => {
                report.problem(e);
                zips_to_fix.push(m);
            }
            Err(e) => return Err(e),
        }
    }
    // A chunk written with a zip that is neither there nor dropped by GC.
    let mut lost_zips = Vec::new();
    for c in &kept {
        let r = c.range();
        if l.zips.binary_search(&r).is_err()
            && l.dropped.binary_search(&r).is_err()
            && c.has_metadata()?
        {
            report.problem(format!(
                "{}: written with a metadata zip, but {}/{} is missing",
                c.path().display(),
                metadata::DIR,
                metadata::file_name(r)
            ));
            lost_zips.push(r);
        }
    }
    if !repair {
        return Ok(());
    }
    for r in lost_zips {
        let marker = mark_dropped(fs.as_ref(), &meta_dir, r)?;
        report.repaired.push(format!(
            "{}: the metadata of chunk {r} is lost (its zip is missing); marked as dropped",
            marker.display()
        ));
    }
    for (&r, &salvageable) in &dropped {
        let others: Vec<ChunkRange> = l.chunks.iter().copied().filter(|o| *o != r).collect();
        if salvageable {
            kept.extend(salvage_chunk(fs, dir, r, &others, report, q)?);
        } else {
            move_chunk(fs.as_ref(), dir, r, q)?;
        }
    }
    kept.sort_by_key(|c| c.range());
    for m in zips_to_fix {
        salvage_zip(fs.as_ref(), &m, report, q)?;
    }
    if rebuild || !dropped.is_empty() {
        drop(indexes);
        rebuild_indexes(fs, dir, &kept, report, q)?;
    }
    Ok(())
}

/// Moves both indexes to the quarantine and rebuilds them from `kept`.
fn rebuild_indexes(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    kept: &[Arc<Chunk>],
    report: &mut CheckReport,
    q: &mut Quarantine<'_>,
) -> Result<()> {
    for name in [LEVEL_TO_HASH, HASH_TO_LEVEL] {
        let p = dir.join(name);
        if fs.exists(&p)? {
            q.move_in(&p)?;
        }
    }
    let ix = open_indexes(fs, dir, false)?;
    let mut levels = 0u64;
    for c in kept {
        let r = c.range();
        for level in r.start..=r.end {
            let hash = c.hash(level)?;
            let lv = level.to_be_bytes();
            ix.l2h.add(&lv, &hash, false)?;
            ix.h2l.add(&hash, &lv, false)?;
        }
        levels += r.len() as u64;
    }
    ix.l2h.close()?;
    ix.h2l.close()?;
    report.repaired.push(format!(
        "{} and {} rebuilt from the {levels} levels of {} intact chunk files",
        LEVEL_TO_HASH,
        HASH_TO_LEVEL,
        kept.len()
    ));
    Ok(())
}
