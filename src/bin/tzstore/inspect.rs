//! `tzstore info DIR` (a block store) and `tzstore check PATH [--repair]`
//! (any store).

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
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

fn open(dir: &Path, read_only: bool) -> Result<BlockStore> {
    if !dir.is_dir() {
        return Err(Error::NotFound(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let open = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    BlockStore::open(
        dir,
        BlockStoreOptions {
            open,
            ..BlockStoreOptions::default()
        },
    )
    .map_err(|e| match e {
        Error::Locked(m) => Error::Locked(format!(
            "{m}; close the node using it, or run without --repair"
        )),
        other => other,
    })
}

/// Prints levels, counts, sizes and chunks.
pub fn info(dir: &Path) -> Result<()> {
    let store = open(dir, true)?;
    let st = store.stats()?;
    let (mode, offset) = store.history();
    println!("block store   {}", dir.display());
    println!("history mode  {mode:?} (offset {offset})");
    match (st.cemented_lowest, st.cemented_highest) {
        (Some(lo), Some(hi)) => println!(
            "cemented      levels {lo}..={hi}, {} blocks",
            st.cemented_blocks
        ),
        _ => println!("cemented      none"),
    }
    println!("floating      {} blocks", st.floating_blocks);
    println!("on disk       {}", human_bytes(st.bytes_on_disk));
    println!(
        "merges        {} (last took {} ms)",
        st.merges_done, st.last_merge_ms
    );
    let chunks = store.cemented_chunks();
    if !chunks.is_empty() {
        let shown: Vec<String> = chunks
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|c| format!("{}..={}", c.start, c.end))
            .collect();
        println!(
            "chunks        {} (last: {})",
            chunks.len(),
            shown.join(", ")
        );
    }
    Ok(())
}

/// Checks the store at `path`, whatever its kind (told from its files),
/// with a spinner while it runs, and prints the report: what was checked,
/// each problem (file and offset), and with `--repair` what was kept,
/// rewritten and moved into the store's quarantine folder. A path that
/// holds no store is refused, never turned into a new one.
pub fn check(path: &Path, repair: bool) -> Result<()> {
    let kind = detect(path)?;
    println!("{kind} at {}", path.display());
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(format!(
        "{} {}",
        if repair {
            "checking and repairing"
        } else {
            "checking"
        },
        path.display()
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let report = run_check(kind, path, repair);
    spinner.finish_and_clear();
    let report = report.map_err(|e| match e {
        Error::Locked(m) => Error::Locked(format!(
            "{m}; close the node using it, or run without --repair"
        )),
        other => other,
    })?;
    print!("{}", report.to_text());
    if report.is_ok() {
        println!("ok: no problem found");
        Ok(())
    } else {
        Err(Error::Corrupted(format!(
            "{} problem(s) found{}",
            report.problems.len(),
            if repair {
                ""
            } else {
                "; run with --repair to salvage what is intact"
            }
        )))
    }
}

fn run_check(kind: StoreKind, path: &Path, repair: bool) -> Result<CheckReport> {
    let opts = OpenOptions::read_write();
    match kind {
        StoreKind::BlockStore => BlockStore::check_dir(
            path,
            &BlockStoreOptions {
                open: opts,
                ..BlockStoreOptions::default()
            },
            repair,
        ),
        StoreKind::Cemented => Cemented::check(path, &opts, repair),
        StoreKind::Floating => Floating::check(path, &opts, repair),
        StoreKind::Index => Index::check(path, &opts, repair),
        StoreKind::IndexedFile => IndexedFile::check(path, &opts, repair),
        StoreKind::Kv => Kv::check(path, &opts, repair),
        StoreKind::Singleton => Singleton::check(path, &opts, repair),
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
