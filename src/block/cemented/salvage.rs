//! What a repair keeps of damaged files (see [`super::repair`]): the
//! intact runs of records of a damaged chunk become chunk files of their
//! own, a damaged zip is rewritten with its intact entries, and a zip that
//! cannot be kept is marked dropped. New files are complete and durable
//! before the originals move to the quarantine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chunk::{Chunk, ChunkRange, HAS_METADATA, OFFSET_SIZE};
use super::file_writer::FileWriter;
use super::metadata::{self, MetaChunk};
use super::zip_format::{self, RawEntry, ZipOut};
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::quarantine::Quarantine;
use crate::io::{FileSystem, OpenMode, atomic};

/// Leaves the marker saying that chunk `r` no longer has its zip (as GC
/// does), durably; returns its path.
pub(super) fn mark_dropped(fs: &dyn FileSystem, meta_dir: &Path, r: ChunkRange) -> Result<PathBuf> {
    let marker = meta_dir.join(metadata::dropped_name(r));
    fs.create_dir_all(meta_dir)?;
    fs.open(&marker, OpenMode::Truncate)?.sync()?;
    fs.sync_dir(meta_dir)?;
    Ok(marker)
}

/// Moves chunk `r` and its zip, if any, into the quarantine.
pub(super) fn move_chunk(
    fs: &dyn FileSystem,
    dir: &Path,
    r: ChunkRange,
    q: &mut Quarantine<'_>,
) -> Result<()> {
    q.move_in(&dir.join(r.file_name()))?;
    let zip = dir.join(metadata::DIR).join(metadata::file_name(r));
    if fs.exists(&zip)? {
        q.move_in(&zip)?;
    }
    Ok(())
}

/// Keeps the intact records of damaged chunk `r`: each run of consecutive
/// intact levels (not overlapping `others`) becomes a chunk file of its
/// own, with the intact zip entries of its levels; then the original and
/// its zip go to the quarantine. Until then the original stays in place,
/// so a crash loses nothing (the next repair sees overlapping chunks and
/// moves the damaged one out). Returns the new chunks.
pub(super) fn salvage_chunk(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    r: ChunkRange,
    others: &[ChunkRange],
    report: &mut CheckReport,
    q: &mut Quarantine<'_>,
) -> Result<Vec<Arc<Chunk>>> {
    let c = Chunk::new(fs.clone(), dir, r);
    let meta_dir = dir.join(metadata::DIR);
    let zip = MetaChunk::new(fs.clone(), &meta_dir, r);
    let entries = if fs.exists(zip.path())? {
        zip.salvage().0
    } else {
        Vec::new()
    };
    let mut runs: Vec<(i32, Vec<&[u8]>)> = Vec::new();
    if c.table_fits() {
        for level in r.start..=r.end {
            let Some(rec) = c.intact_record(level) else {
                continue;
            };
            match runs.last_mut() {
                Some((start, recs))
                    if i64::from(*start) + recs.len() as i64 == i64::from(level) =>
                {
                    recs.push(rec)
                }
                _ => runs.push((level, vec![rec])),
            }
        }
    }
    let mut made = Vec::new();
    let mut kept_levels = Vec::new();
    for (start, recs) in &runs {
        let nr = ChunkRange {
            start: *start,
            end: start + (recs.len() as i32 - 1),
        };
        if others
            .iter()
            .any(|o| o.start <= nr.end && nr.start <= o.end)
        {
            continue;
        }
        let path = dir.join(nr.file_name());
        let target = if nr == r {
            // Same name as the original: written beside it, swapped in
            // once the original is in the quarantine.
            atomic::tmp_path(&path)?
        } else {
            path.clone()
        };
        let run_entries: Vec<(i32, Vec<u8>)> = entries
            .iter()
            .filter(|(l, _)| nr.contains(*l))
            .cloned()
            .collect();
        let zip_path = meta_dir.join(metadata::file_name(nr));
        let zip_target = if nr == r {
            atomic::tmp_path(&zip_path)?
        } else {
            zip_path.clone()
        };
        if !run_entries.is_empty() {
            write_zip(fs.as_ref(), &zip_target, &run_entries)?;
        }
        write_chunk(fs.as_ref(), &target, nr, recs, !run_entries.is_empty())?;
        made.push((
            nr,
            target,
            path,
            (!run_entries.is_empty()).then_some((zip_target, zip_path)),
        ));
        kept_levels.push(format!("{nr}"));
    }
    move_chunk(fs.as_ref(), dir, r, q)?;
    let mut out = Vec::new();
    for (nr, target, path, zip) in made {
        if target != path {
            if let Some((zt, zp)) = &zip {
                fs.rename(zt, zp)?;
                fs.sync_dir(&meta_dir)?;
            }
            fs.rename(&target, &path)?;
            fs.sync_dir(dir)?;
        }
        out.push(Arc::new(Chunk::new(fs.clone(), dir, nr)));
    }
    let kept: usize = out.iter().map(|c| c.range().len()).sum();
    report.repaired.push(format!(
        "{}: kept {kept} intact records of {} as {}",
        c.path().display(),
        if c.table_fits() { r.len() } else { 0 },
        if kept_levels.is_empty() {
            "nothing".to_string()
        } else {
            kept_levels.join(", ")
        }
    ));
    Ok(out)
}

/// Writes chunk file `path` of range `r` from its records (already
/// verified), durably.
fn write_chunk(
    fs: &dyn FileSystem,
    path: &Path,
    r: ChunkRange,
    recs: &[&[u8]],
    has_metadata: bool,
) -> Result<()> {
    let tmp = atomic::tmp_path(path)?;
    let target = if tmp == path { path.to_path_buf() } else { tmp };
    let mut w = FileWriter::new(fs.open(&target, OpenMode::Truncate)?);
    let mut at = (r.len() * OFFSET_SIZE) as u64;
    let mut table = Vec::with_capacity(r.len() * OFFSET_SIZE);
    for (i, rec) in recs.iter().enumerate() {
        let flag = if i == 0 && has_metadata {
            HAS_METADATA
        } else {
            0
        };
        table.extend_from_slice(&(at | flag).to_be_bytes());
        at += rec.len() as u64;
    }
    w.put(&table)?;
    for rec in recs {
        w.put(rec)?;
    }
    w.sync()?;
    drop(w);
    if target != path {
        fs.rename(&target, path)?;
        fs.sync_dir(atomic::parent_dir(path))?;
    }
    Ok(())
}

/// Writes zip `path` with `entries` (level, metadata), durably.
fn write_zip(fs: &dyn FileSystem, path: &Path, entries: &[(i32, Vec<u8>)]) -> Result<()> {
    let tmp = atomic::tmp_path(path)?;
    let mut w = FileWriter::new(fs.open(&tmp, OpenMode::Truncate)?);
    let mut zip = ZipOut::new();
    for (level, data) in entries {
        let e = RawEntry {
            name: level.to_string(),
            method: zip_format::METHOD_ZSTD,
            crc32: crc32fast::hash(data),
            uncompressed_size: data.len() as u64,
            data: zstd::bulk::compress(data, metadata::DEFAULT_ZSTD_LEVEL)
                .map_err(|e| Error::Io(format!("zstd compression of metadata: {e}")))?,
        };
        zip.add(&mut w, &e)?;
    }
    zip.finish(&mut w)?;
    w.sync()?;
    drop(w);
    fs.rename(&tmp, path)?;
    fs.sync_dir(atomic::parent_dir(path))
}

/// Rewrites a damaged zip with the entries that read back intact; the
/// original goes to the quarantine.
pub(super) fn salvage_zip(
    fs: &dyn FileSystem,
    m: &MetaChunk,
    report: &mut CheckReport,
    q: &mut Quarantine<'_>,
) -> Result<()> {
    let (entries, total) = m.salvage();
    if entries.is_empty() {
        q.move_in(m.path())?;
        mark_dropped(fs, atomic::parent_dir(m.path()), m.range())?;
        report.repaired.push(format!(
            "{}: no entry could be read back; the zip was moved out and marked as dropped",
            m.path().display()
        ));
        return Ok(());
    }
    // Written beside the original, swapped in once it is in the
    // quarantine.
    let tmp = atomic::tmp_path(m.path())?;
    write_zip(fs, &tmp, &entries)?;
    q.move_in(m.path())?;
    fs.rename(&tmp, m.path())?;
    fs.sync_dir(atomic::parent_dir(m.path()))?;
    report.repaired.push(format!(
        "{}: rewritten with the {} intact entries of {total}",
        m.path().display(),
        entries.len()
    ));
    Ok(())
}
