//! Crash repair at open, and `check`.

use std::path::Path;

use super::manifest::Manifest;
use super::{Inner, floating_dir, salvage};
pub use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::quarantine::Quarantine;
use crate::io::{FileSystem, OpenMode};

/// Rolls back a merge that was running at the crash and removes the
/// floating stores that a manifest generation proves abandoned (see
/// [`orphans`]); other directories are left alone.
pub(super) fn recover_at_open(
    fs: &dyn FileSystem,
    dir: &Path,
    manifest: &mut Manifest,
) -> Result<()> {
    if let Some(id) = manifest.merging {
        // The stores the merge read from are still read-only stores in the
        // manifest, so dropping its output loses nothing.
        fs.remove_dir_all(&floating_dir(dir, id))?;
        fs.sync_dir(&dir.join("floating"))?;
        manifest.merging = None;
        manifest.store(fs, dir)?;
    }
    let mut removed = false;
    for (name, abandoned) in orphans(fs, dir, manifest)? {
        if abandoned {
            fs.remove_dir_all(&dir.join("floating").join(&name))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(&dir.join("floating"))?;
    }
    Ok(())
}

/// Entries of `dir/floating` that are not live stores, each with whether a
/// manifest generation proves it abandoned: ids below `next_id` were handed
/// out by a manifest (a merge's stores, retired or rolled back) and are no
/// longer named. Anything else (a larger id, another name) is not the
/// store's to delete.
pub(super) fn orphans(
    fs: &dyn FileSystem,
    dir: &Path,
    manifest: &Manifest,
) -> Result<Vec<(String, bool)>> {
    let live = manifest.live_ids();
    let entries = match fs.read_dir(&dir.join("floating")) {
        Ok(e) => e,
        Err(Error::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let id = e
                .name
                .parse::<u64>()
                .ok()
                .filter(|id| id.to_string() == e.name);
            if id.is_some_and(|id| live.contains(&id)) {
                return None;
            }
            let abandoned = e.is_dir && id.is_some_and(|id| id < manifest.next_id);
            Some((e.name, abandoned))
        })
        .collect())
}

/// Total size of the files under `path`.
pub(super) fn dir_size(fs: &dyn FileSystem, path: &Path) -> Result<u64> {
    let mut total = 0;
    let entries = match fs.read_dir(path) {
        Ok(e) => e,
        Err(Error::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    for e in entries {
        let p = path.join(&e.name);
        if e.is_dir {
            total += dir_size(fs, &p)?;
        } else {
            match fs.open(&p, OpenMode::Read) {
                Ok(f) => total += f.len()?,
                // Files may vanish while we walk (merges, index generations).
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

/// A floating store no manifest names: moved into the quarantine with
/// `repair`, else reported.
pub(super) fn orphan(
    report: &mut CheckReport,
    quarantine: &mut Quarantine<'_>,
    path: &Path,
    repair: bool,
) -> Result<()> {
    if repair {
        quarantine.move_in(path)?;
        report.repaired.push(format!(
            "{}: not a store of the manifest, moved to the quarantine",
            path.display()
        ));
    } else {
        report.problem(format!(
            "{}: not a store of the manifest (an orphan)",
            path.display()
        ));
    }
    Ok(())
}

pub(super) fn check(inner: &Inner, repair: bool) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    // Hold the manifest so no store or role switch runs meanwhile.
    let manifest = inner.manifest.lock();
    let parts = inner.parts.read().clone();
    let fs = inner.fs.as_ref();
    let mut quarantine = Quarantine::new(fs, &inner.dir);
    for (name, abandoned) in orphans(fs, &inner.dir, &manifest)? {
        // A running merge's store, or stores a merge retired (deleted in the
        // background), are the store's own.
        if abandoned || manifest.merging.is_some() {
            continue;
        }
        let path = inner.dir.join("floating").join(&name);
        orphan(
            &mut report,
            &mut quarantine,
            &path,
            repair && !inner.opts.open.read_only,
        )?;
    }
    for store in parts.all() {
        let found =
            salvage::check_floating(fs, store.dir(), Some(store), Some(store.size_bytes()))?;
        report.records_checked += found.entries;
        report.problems.extend(found.problems);
    }
    if let Err(e) = inner.cemented.check_consistency(None) {
        report.problems.push(format!("cemented store: {e}"));
        // It stops at the first damage: no cemented block counts as checked.
        report.stopped_early = true;
    } else {
        report.records_checked += inner
            .cemented
            .chunks()
            .iter()
            .map(|c| c.len() as u64)
            .sum::<u64>();
    }
    if !report.problems.is_empty() && repair {
        report.problem(
            "damaged stores are repaired only without a handle: close the store and \
             run BlockStore::check_dir with repair",
        );
    }
    let (qdir, moved) = quarantine.into_parts();
    report.quarantine_dir = qdir;
    report.quarantined = moved;
    Ok(report)
}
