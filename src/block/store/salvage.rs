//! `check` without a handle, and the explicit salvage of a damaged block
//! store ([`super::BlockStore::check_dir`]).
//!
//! Repair keeps every intact block: a damaged floating store's intact
//! entries (those behind the damage included, found by resynchronising on
//! the entries' checksums) are copied into a new floating store, the
//! manifest switches to it, and the damaged store is moved into the
//! quarantine. A missing or damaged manifest is rebuilt from the floating
//! stores found, all as read-only stores (a store's role only decides
//! where new blocks go; reads look in all of them).

use std::path::Path;
use std::sync::Arc;

use super::manifest::{self, Manifest};
use super::walk::{self, Ended};
use super::{BlockStoreOptions, floating_dir, open_floating};
use crate::block::cemented::{Cemented, CementedConfig};
use crate::block::floating::{Floating, FloatingKind};
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::io::quarantine::Quarantine;
use crate::options::OpenOptions;

/// True when `dir` holds block data: a non-empty floating blocks file or
/// anything in `cemented/`. Both are only ever written after the manifest,
/// so without a manifest they are damage, never a store being created (a
/// crash during creation leaves at most an empty floating store).
fn holds_block_data(fs: &dyn FileSystem, dir: &Path) -> Result<bool> {
    if !list(fs, &dir.join("cemented"))?.is_empty() {
        return Ok(true);
    }
    for name in list(fs, &dir.join("floating"))? {
        let path = walk::file_of(&dir.join("floating").join(&name));
        match fs.open(&path, crate::io::OpenMode::Read) {
            Ok(f) if f.len()? == 0 => {}
            Err(Error::NotFound(_)) => {}
            // Data, or something odd in its place: either way not new.
            _ => return Ok(true),
        }
    }
    Ok(false)
}

/// Names in `path`; none when it does not exist.
fn list(fs: &dyn FileSystem, path: &Path) -> Result<Vec<String>> {
    match fs.read_dir(path) {
        Ok(e) => Ok(e.into_iter().map(|e| e.name).collect()),
        Err(Error::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The error of an open that finds block data but no manifest: a fresh
/// manifest would orphan (and an open then delete) every block.
pub(super) fn refuse_without_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    if holds_block_data(fs, dir)? {
        return Err(Error::corrupted(
            &dir.join(manifest::FILE),
            "block store manifest is missing but the directory holds blocks \
             (nothing was changed; check with repair rebuilds it)",
        ));
    }
    Ok(())
}

/// Floating store ids of the numeric directories in `dir/floating`.
fn floating_ids(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let mut ids: Vec<u64> = list(fs, &dir.join("floating"))?
        .iter()
        .filter_map(|n| n.parse::<u64>().ok().filter(|id| id.to_string() == *n))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// A manifest naming every floating store found, all read-only, and a
/// fresh id for the RW store.
fn rebuilt_manifest(ids: &[u64], opts: &BlockStoreOptions) -> Manifest {
    let mut m = Manifest::new(opts.history_mode, opts.history_offset);
    let top = ids.last().map_or(0, |&i| i + 1);
    m.ros = ids.iter().rev().copied().collect();
    m.rw = top;
    m.next_id = top + 1;
    m
}

/// What checking one floating store found.
pub(super) struct Findings {
    /// Valid entries in the file.
    pub entries: u64,
    /// Problems; empty when the store is sound.
    pub problems: Vec<String>,
}

/// Walks the floating store in `store_dir` (every entry verified) and,
/// when `index` is given, compares each entry with what the index returns.
/// `end` bounds the walk of an open, recovered store (its end of entries):
/// every entry must then be indexed. `None` walks the whole file of a
/// closed store, where what a crash leaves and a read-write open repairs is
/// no problem: a torn tail (an incomplete or invalid last entry, followed
/// by nothing intact, as the open cuts it: an append killed midway leaves
/// a whole-looking entry over the zeros written ahead), and entries after
/// the last indexed one (their index entries were not written yet). An
/// indexed entry among them is still a problem: the index then holds more
/// blocks than the file's valid entries.
pub(super) fn check_floating(
    fs: &dyn FileSystem,
    store_dir: &Path,
    index: Option<&Floating>,
    end: Option<u64>,
) -> Result<Findings> {
    let path = walk::file_of(store_dir);
    let mut problems = Vec::new();
    let file = match walk::open(fs, store_dir) {
        Ok(f) => f,
        Err(e @ (Error::Corrupted(_) | Error::NotFound(_))) => {
            problems.push(format!("{}: {e}", path.display()));
            return Ok(Findings {
                entries: 0,
                problems,
            });
        }
        Err(e) => return Err(e),
    };
    let closed = end.is_none();
    let end = match end {
        Some(e) => e,
        None => file.len()?,
    };
    let mut entries = 0u64;
    let mut indexed = 0u64;
    // Unindexed entries since the last indexed one: a crash leftover if
    // nothing indexed follows them.
    let mut unindexed: Vec<String> = Vec::new();
    let mut last_entry: Option<u64> = None;
    let ended = walk::walk(file.as_ref(), end, true, |offset, e| {
        entries += 1;
        last_entry = Some(offset);
        let Some(index) = index else {
            return Ok(());
        };
        let hash = super::hex(e.block.hash);
        match index.read_block(e.block.hash) {
            Ok(Some(b)) if b.as_ref() == e.block => {
                indexed += 1;
                problems.append(&mut unindexed);
            }
            Ok(Some(_)) => problems.push(format!(
                "{}: block {hash} at offset {offset} reads back different from the file",
                path.display()
            )),
            Ok(None) => unindexed.push(format!(
                "{}: block {hash} at offset {offset} is not indexed",
                path.display()
            )),
            Err(err) => problems.push(format!("{}: block {hash}: {err}", path.display())),
        }
        Ok(())
    })?;
    if !closed {
        problems.append(&mut unindexed);
    }
    match ended {
        Ended::Clean => {}
        Ended::TornAt(_) if closed => {}
        // The first invalid entry is the last thing in the file.
        Ended::DamagedAt(o, _) if closed && last_entry.is_none_or(|l| l < o) => {}
        Ended::TornAt(o) => problems.push(format!(
            "{}: entry at offset {o} is cut short",
            path.display()
        )),
        Ended::DamagedAt(o, why) => {
            problems.push(walk::damage_error(&path, o, &why).to_string());
        }
    }
    if let Some(index) = index
        && index.len() != indexed
    {
        problems.push(format!(
            "{}: {} blocks indexed but {indexed} of the {entries} valid entries in the file",
            path.display(),
            index.len()
        ));
    }
    Ok(Findings { entries, problems })
}

/// Copies every intact entry of the floating store in `from` into a new
/// store `to`; returns how many blocks it holds.
fn copy_intact(fs: &dyn FileSystem, from: &Path, to: &Floating) -> Result<u64> {
    let file = match walk::open(fs, from) {
        Ok(f) => f,
        // Missing, or something else in its place: nothing to keep.
        Err(Error::NotFound(_) | Error::Corrupted(_)) => {
            to.flush()?;
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    let end = file.len()?;
    walk::walk(file.as_ref(), end, true, |_, e| {
        to.append_with_context(&e.block, &e.context, e.preds(), false)
    })?;
    to.flush()?;
    Ok(to.len())
}

/// See [`super::BlockStore::check_dir`].
pub(super) fn check_dir(dir: &Path, opts: &BlockStoreOptions, repair: bool) -> Result<CheckReport> {
    let fs_arc = opts.open.fs.clone();
    let fs = fs_arc.as_ref();
    let not_a_store = || {
        Error::invalid(format!(
            "{} holds no block store (no manifest, floating or cemented data)",
            dir.display()
        ))
    };
    let manifest_path = dir.join(manifest::FILE);
    let is_store = fs.is_dir(dir)?
        && (fs.exists(&manifest_path)?
            || fs.exists(&dir.join("floating"))?
            || fs.exists(&dir.join("cemented"))?);
    if !is_store {
        return Err(not_a_store());
    }
    let _lock = if repair {
        Some(fs.lock(&dir.join("lock"))?)
    } else {
        None
    };
    let mut report = CheckReport::default();
    let mut quarantine = Quarantine::new(fs, dir);
    let ids = floating_ids(fs, dir)?;
    // The manifest, or one rebuilt from the stores found; `dirty` when it
    // must be written.
    let (mut m, mut dirty) = match Manifest::load(fs, dir) {
        Ok(Some(m)) => (m, false),
        Ok(None) => {
            if !holds_block_data(fs, dir)? {
                // A store whose creation was cut short: open completes it.
                return Ok(report);
            }
            let what = format!(
                "{}: missing, but the directory holds blocks",
                manifest_path.display()
            );
            note(&mut report, repair, what);
            (rebuilt_manifest(&ids, opts), true)
        }
        Err(Error::Corrupted(why)) => {
            note(&mut report, repair, why);
            if repair {
                quarantine.move_in(&manifest_path)?;
            }
            (rebuilt_manifest(&ids, opts), true)
        }
        Err(e) => return Err(e),
    };
    if dirty && repair {
        report.repaired.push(format!(
            "{}: rebuilt with the {} floating store(s) found as read-only stores and \
             history mode {:?} (offset {}) from the options",
            manifest_path.display(),
            m.ros.len(),
            m.history_mode,
            m.history_offset
        ));
        // The RW store must exist before a manifest names it.
        drop(open_floating(dir, opts, m.rw)?);
    }

    if repair {
        // What a read-write open does anyway: roll back a merge cut short
        // and delete the stores a manifest generation proves abandoned.
        if dirty {
            m.store(fs, dir)?;
            dirty = false;
        }
        super::repair::recover_at_open(fs, dir, &mut m)?;
    }

    // Orphans that no manifest generation accounts for.
    for (name, abandoned) in super::repair::orphans(fs, dir, &m)? {
        if abandoned || m.merging.is_some_and(|id| id.to_string() == name) {
            continue; // removed by the next read-write open
        }
        let path = dir.join("floating").join(&name);
        super::repair::orphan(&mut report, &mut quarantine, &path, repair)?;
    }

    // Every live floating store.
    let ro = OpenOptions {
        read_only: true,
        fs: fs_arc.clone(),
    };
    let mut live = vec![m.rw];
    if dirty && !repair {
        live.clear(); // the rebuilt manifest's RW store does not exist yet
    }
    live.extend(&m.ros);
    let mut damaged = Vec::new();
    for id in live {
        let store_dir = floating_dir(dir, id);
        if !fs.is_dir(&store_dir)? {
            let what = format!(
                "{}: floating store listed in the manifest is missing",
                store_dir.display()
            );
            if repair {
                replace_store(fs, dir, opts, &mut m, id, None)?;
                dirty = true;
                report
                    .repaired
                    .push(format!("{what}; the manifest names an empty store instead"));
            } else {
                report.problem(what);
            }
            continue;
        }
        let index = Floating::open(&store_dir, FloatingKind::Rw, &ro);
        let mut found = check_floating(fs, &store_dir, index.as_ref().ok(), None)?;
        if let Err(e) = &index {
            found.problems.push(format!("{}: {e}", store_dir.display()));
        }
        drop(index);
        report.records_checked += found.entries;
        if found.problems.is_empty() {
            continue;
        }
        if !repair {
            report.problems.extend(found.problems);
            continue;
        }
        let kept = replace_store(fs, dir, opts, &mut m, id, Some(&store_dir))?;
        dirty = true;
        damaged.push(store_dir.clone());
        report.repaired.push(format!(
            "{}: {} ({}); kept {kept} intact block(s) in a new store, the damaged \
             store moved to the quarantine",
            store_dir.display(),
            found.problems.len(),
            found.problems.join("; ")
        ));
    }
    if dirty && repair {
        m.store(fs, dir)?;
    }
    // Only once no manifest generation names them any more.
    for store_dir in damaged {
        quarantine.move_in(&store_dir)?;
    }

    check_cemented(dir, opts, &ro, &mut report)?;
    let (qdir, moved) = quarantine.into_parts();
    report.quarantine_dir = qdir;
    report.quarantined = moved;
    Ok(report)
}

/// A problem that repair fixes: listed as a problem without repair, and
/// left for the repair line otherwise.
fn note(report: &mut CheckReport, repair: bool, what: String) {
    if !repair {
        report.problem(what);
    }
}

/// Replaces floating store `id` in `m` by a new store holding the intact
/// entries of `from` (none when it is missing); returns the blocks kept.
/// The new store is complete and durable before the manifest names it.
fn replace_store(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &BlockStoreOptions,
    m: &mut Manifest,
    id: u64,
    from: Option<&Path>,
) -> Result<u64> {
    let new_id = loop {
        let n = m.take_id();
        if !fs.exists(&floating_dir(dir, n))? {
            break n;
        }
    };
    let store: Arc<Floating> = open_floating(dir, opts, new_id)?;
    let kept = match from {
        Some(from) => copy_intact(fs, from, &store)?,
        None => 0,
    };
    drop(store);
    if m.rw == id {
        m.rw = new_id;
    }
    for r in &mut m.ros {
        if *r == id {
            *r = new_id;
        }
    }
    Ok(kept)
}

/// Checks the cemented store (damage there is reported, not repaired here).
fn check_cemented(
    dir: &Path,
    opts: &BlockStoreOptions,
    ro: &OpenOptions,
    report: &mut CheckReport,
) -> Result<()> {
    let path = dir.join("cemented");
    if !opts.open.fs.is_dir(&path)? {
        return Ok(());
    }
    let cfg = CementedConfig {
        log_size: opts.index_log_size,
        zstd_level: opts.zstd_level,
    };
    match Cemented::open_with(&path, ro, cfg).and_then(|c| {
        c.check_consistency(None)?;
        Ok(c.chunks().iter().map(|c| c.len() as u64).sum::<u64>())
    }) {
        Ok(n) => report.records_checked += n,
        // The configuration is the block store's own, so an index that
        // disagrees with it (`InvalidArgument`) is damage too.
        Err(
            e @ (Error::Corrupted(_)
            | Error::Inconsistent(_)
            | Error::NotFound(_)
            | Error::InvalidArgument(_)),
        ) => {
            // The consistency check stops at the first damage: none of
            // the cemented blocks is counted as checked.
            report.problem(format!("cemented store: {e}"));
            report.stopped_early = true;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
