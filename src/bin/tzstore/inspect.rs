//! `tzstore info DIR` and `tzstore check DIR [--repair]`.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::{Error, OpenOptions, Result};

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

/// Runs the consistency check with a spinner and prints the report.
pub fn check(dir: &Path, repair: bool) -> Result<()> {
    let store = open(dir, !repair)?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(format!("checking {}", dir.display()));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let report = store.check(repair);
    spinner.finish_and_clear();
    let report = report?;
    for r in &report.repaired {
        println!("repaired: {r}");
    }
    println!("{} blocks checked", report.records_checked);
    if report.is_ok() {
        println!("ok: no problem found");
        Ok(())
    } else {
        for p in &report.problems {
            println!("problem: {p}");
        }
        Err(Error::Corrupted(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
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
