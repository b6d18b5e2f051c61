//! `tzstore check PATH [--repair]`: verifies a store of any kind (told from
//! its files) and prints the report: what was checked, each problem (file
//! and offset), whether the check stopped early and where, and with
//! `--repair` exactly what it kept, rewrote and moved into the store's
//! quarantine folder. A path that holds no store is refused, never turned
//! into a new one.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tzstore::block::cemented::Cemented;
use tzstore::block::floating::Floating;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::check::CheckReport;
use tzstore::index::Index;
use tzstore::indexed_file::IndexedFile;
use tzstore::kv::Kv;
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions, Result};

use crate::detect::{StoreKind, detect};
use crate::fmt::{disk_usage, human_bytes, thousands};
use crate::open;
use crate::progress::{CountingFs, Unit, bar};

pub fn run(path: &Path, repair: bool, json: bool) -> Result<()> {
    // Detection refuses a missing path or one that holds no store before
    // anything is opened, so `--repair` never creates a store.
    let kind = detect(path)?;
    if !json {
        println!("{kind} at {}", path.display());
    }
    let total_bytes = disk_usage(path)?.bytes;
    // Counted before the check, when the store still opens: the total a
    // check that stops early is measured against.
    let expected = expected_records(kind, path);
    let base = if repair {
        OpenOptions::read_write()
    } else {
        OpenOptions::read_only()
    };
    let (fs, read) = CountingFs::new(base.fs.clone());
    let opts = base.with_fs(fs);
    let pb = bar(
        total_bytes,
        Unit::Bytes,
        if repair {
            "checking and repairing"
        } else {
            "checking"
        },
    );
    let report = std::thread::scope(|s| {
        let worker = s.spawn(|| run_check(kind, path, &opts, repair));
        while !worker.is_finished() {
            pb.set_position(read.load(Ordering::Relaxed).min(total_bytes));
            std::thread::sleep(Duration::from_millis(100));
        }
        worker
            .join()
            .unwrap_or_else(|_| Err(Error::Panic("the check panicked".into())))
    });
    pb.finish_and_clear();
    let report = report.map_err(open::explain_locked)?;
    if json {
        print_json(kind, path, &report, expected, repair);
    } else {
        print_report(
            &report,
            expected,
            read.load(Ordering::Relaxed),
            total_bytes,
            repair,
        );
    }
    if report.is_ok() {
        if !json {
            println!("ok: no problem found");
        }
        Ok(())
    } else {
        Err(Error::Corrupted(format!(
            "{} problem(s) found{}",
            report.problems.len(),
            if repair {
                "; they remain after the repair"
            } else {
                "; run with --repair to salvage what is intact"
            }
        )))
    }
}

/// Prints the report; the repair lines list every change, and a check
/// that stopped early says where it stopped and of how much.
fn print_report(r: &CheckReport, expected: Option<u64>, read: u64, total: u64, repair: bool) {
    // "of N" only where the check counts what the store counts (blocks).
    let of = expected
        .filter(|&n| n != r.records_checked)
        .map(|n| format!(" of {}", thousands(n)))
        .unwrap_or_default();
    println!("checked {} records{of}", thousands(r.records_checked));
    if r.stopped_early {
        // Where it stopped: the record count when the store's total is
        // known, else how far into the files (mapped files count whole, so
        // bytes are only the fallback).
        let at = match expected {
            Some(n) => format!(
                "record {} of {}",
                thousands(r.records_checked),
                thousands(n)
            ),
            None => format!(
                "record {} (after reading {} of {})",
                thousands(r.records_checked),
                human_bytes(read.min(total)),
                human_bytes(total)
            ),
        };
        println!("stopped early at {at}: the rest was not checked");
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    if repair {
        if r.repaired.is_empty() && r.quarantined.is_empty() {
            println!("repair: nothing changed");
        }
        for x in &r.repaired {
            println!("repaired: {x}");
        }
        if let Some(dir) = &r.quarantine_dir {
            println!("quarantine folder: {}", dir.display());
        }
        for q in &r.quarantined {
            println!("quarantined: {q}");
        }
    }
}

/// The report as one JSON object (the same lists as the text).
fn print_json(kind: StoreKind, path: &Path, r: &CheckReport, expected: Option<u64>, repair: bool) {
    let v = serde_json::json!({
        "kind": kind.to_string(),
        "path": path.display().to_string(),
        "ok": r.is_ok(),
        "records_checked": r.records_checked,
        "records_expected": expected,
        "stopped_early": r.stopped_early,
        "problems": r.problems,
        "repair": repair,
        "repaired": r.repaired,
        "quarantine_dir": r.quarantine_dir.as_ref().map(|d| d.display().to_string()),
        "quarantined": r.quarantined,
    });
    println!("{v}");
}

/// Blocks the store holds as a read-only open counts them, for the stores
/// whose check counts blocks too; `None` when it does not open (damage) or
/// the check counts other records (index log entries, metadata entries).
fn expected_records(kind: StoreKind, path: &Path) -> Option<u64> {
    match kind {
        StoreKind::BlockStore => {
            let st = open::block_store(path).ok()?.stats().ok()?;
            Some(st.cemented_blocks + st.floating_blocks)
        }
        StoreKind::Floating => Some(open::floating(path).ok()?.iter().map(|f| f.len()).sum()),
        _ => None,
    }
}

fn run_check(
    kind: StoreKind,
    path: &Path,
    opts: &OpenOptions,
    repair: bool,
) -> Result<CheckReport> {
    match kind {
        StoreKind::BlockStore => BlockStore::check_dir(
            path,
            &BlockStoreOptions {
                open: opts.clone(),
                ..BlockStoreOptions::default()
            },
            repair,
        ),
        StoreKind::Cemented => Cemented::check(path, opts, repair),
        StoreKind::Floating => Floating::check(path, opts, repair),
        StoreKind::Index => Index::check(path, opts, repair),
        StoreKind::IndexedFile => IndexedFile::check(path, opts, repair),
        StoreKind::Kv => Kv::check(path, opts, repair),
        StoreKind::Singleton => Singleton::check(path, opts, repair),
    }
}
