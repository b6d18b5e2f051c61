//! Crash repair at open, and `check`.

use std::path::Path;

use super::manifest::Manifest;
use super::{Inner, floating_dir};
pub use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::{FileSystem, OpenMode};

/// Rolls back a merge that was running at the crash and removes floating
/// stores the manifest no longer refers to.
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
    for orphan in orphans(fs, dir, manifest)? {
        fs.remove_dir_all(&dir.join("floating").join(&orphan))?;
    }
    fs.sync_dir(&dir.join("floating"))
}

/// Entries of `dir/floating` that are not live stores.
fn orphans(fs: &dyn FileSystem, dir: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let live: Vec<String> = manifest.live_ids().iter().map(u64::to_string).collect();
    let entries = match fs.read_dir(&dir.join("floating")) {
        Ok(e) => e,
        Err(Error::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| !live.contains(n))
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

pub(super) fn check(inner: &Inner, repair: bool) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    // Hold the manifest so no store or role switch runs meanwhile.
    let manifest = inner.manifest.lock();
    let parts = inner.parts.read().clone();
    // Stores a merge retired are deleted once no reader holds them.
    let retired: Vec<std::path::PathBuf> = inner
        .retired
        .lock()
        .iter()
        .map(|f| f.dir().to_path_buf())
        .collect();
    for orphan in orphans(inner.fs.as_ref(), &inner.dir, &manifest)? {
        let path = inner.dir.join("floating").join(&orphan);
        if manifest.merging.is_some() || retired.contains(&path) {
            continue; // a running merge's stores, or retired ones, are not orphans
        }
        if repair && !inner.opts.open.read_only {
            inner.fs.remove_dir_all(&path)?;
            report
                .repaired
                .push(format!("removed orphan floating store {}", path.display()));
        } else {
            report
                .problems
                .push(format!("orphan floating store {}", path.display()));
        }
    }
    for store in parts.all() {
        let mut in_file = 0u64;
        for entry in store.iter(true) {
            match entry {
                Ok(e) => {
                    in_file += 1;
                    match store.read_block(&e.block.hash) {
                        Ok(Some(b)) if b == e.block => report.records_checked += 1,
                        Ok(Some(_)) => report.problems.push(format!(
                            "{}: block {} reads back different from the file",
                            store.dir().display(),
                            super::hex(&e.block.hash)
                        )),
                        Ok(None) => report.problems.push(format!(
                            "{}: block {} is in the file but not indexed",
                            store.dir().display(),
                            super::hex(&e.block.hash)
                        )),
                        Err(err) => report
                            .problems
                            .push(format!("{}: {err}", store.dir().display())),
                    }
                }
                Err(err) => report
                    .problems
                    .push(format!("{}: {err}", store.dir().display())),
            }
        }
        if in_file != store.len() {
            report.problems.push(format!(
                "{}: {} blocks indexed but {in_file} in the file",
                store.dir().display(),
                store.len()
            ));
        }
    }
    if let Err(e) = inner.cemented.check_consistency(None) {
        report.problems.push(format!("cemented store: {e}"));
    } else {
        report.records_checked += inner
            .cemented
            .chunks()
            .iter()
            .map(|c| c.len() as u64)
            .sum::<u64>();
    }
    Ok(report)
}
