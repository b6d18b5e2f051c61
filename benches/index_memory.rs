//! Resident memory of an index at 10,000,000 keys (issue 4's memory goal):
//! the in-memory table must hold at most the unmerged log, so RSS stays
//! under about twice the log table plus the page cache of what was read;
//! and how the cost of a key grows with the index (issue 20, point 4): add
//! rate overall and over the last tenth of the keys, find rate, and the
//! bytes written per byte of key and value added (write amplification,
//! from /proc/self/io), for each size asked.
//!
//! Run: `cargo bench --bench index_memory` (`TZS_BENCH_KEYS`: one size or a
//! comma-separated list, default 10,000,000; `TZS_BENCH_DIR` where the
//! files go). The sizes: `TZS_BENCH_KEYS=1000000,10000000,100000000`
//! (the last needs about 5 GB of disk and tens of minutes).

use std::time::Instant;

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

/// Anonymous resident memory of this process in bytes (RssAnon of
/// /proc/self/status): heap and tables, not the mapped data file, whose
/// pages are page cache shared with the kernel.
fn rss() -> u64 {
    status_kb("RssAnon:") * 1024
}

/// Resident pages of mapped files, in bytes (RssFile).
fn rss_file() -> u64 {
    status_kb("RssFile:") * 1024
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn key(i: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (j, c) in k.chunks_mut(8).enumerate() {
        c.copy_from_slice(
            &xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_be_bytes(), j as u64).to_be_bytes(),
        );
    }
    k
}

/// Bytes this process caused to be written to storage (`write_bytes`) and
/// passed to write calls (`wchar`), from /proc/self/io.
fn io_written() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0u64)
    };
    (field("write_bytes:"), field("wchar:"))
}

fn main() {
    let sizes: Vec<u64> = std::env::var("TZS_BENCH_KEYS")
        .unwrap_or_else(|_| "10000000".into())
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .expect("TZS_BENCH_KEYS: a number or a comma-separated list")
        })
        .collect();
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    for n in sizes {
        run(n, &base);
    }
}

fn run(n: u64, base: &str) {
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let log_size = tzstore::index::DEFAULT_LOG_SIZE;
    let idx = Index::open(
        dir.path(),
        IndexConfig {
            log_size,
            open: OpenOptions::read_write(),
            ..IndexConfig::new(32, 8)
        },
    )
    .expect("open");
    let before = rss();
    let (written_before, wchar_before) = io_written();
    let started = Instant::now();
    let last_tenth_from = n - n / 10;
    let mut last_tenth_started = started;
    let mut peak = 0u64;
    for i in 0..n {
        if i == last_tenth_from {
            last_tenth_started = Instant::now();
        }
        idx.add(&key(i), &i.to_be_bytes(), false).expect("add");
        if i % 100_000 == 99_999 {
            peak = peak.max(rss());
        }
    }
    idx.flush().expect("flush");
    idx.await_merge().expect("merge");
    let added = started.elapsed();
    let last_tenth = last_tenth_started.elapsed();
    let (written, wchar) = io_written();
    let (written, wchar) = (written - written_before, wchar - wchar_before);
    peak = peak.max(rss());
    let after_merges = rss();
    let mut out = [0u8; 8];
    let started = Instant::now();
    for i in (0..n).step_by(97) {
        assert!(idx.find_into(&key(i), &mut out).expect("find"));
    }
    let found = started.elapsed();
    let after_reads = rss();
    // Records of key + value, plus the slot array: u32 slots, a power of
    // two at most half full.
    let slots = (2 * (log_size + 1)).next_power_of_two();
    let log_table = log_size * (32 + 8) + slots * 4;
    let payload = n * (32 + 8);
    println!(
        "{n} keys added in {added:.2?} ({:.2} M/s; the last tenth, merges included, {:.2} M/s); anonymous RSS before {} MB, peak while adding {} MB (sampled every 100,000 adds), after the last merge {} MB, after {} sampled finds {} MB; mapped-file RSS {} MB",
        n as f64 / added.as_secs_f64() / 1e6,
        (n - last_tenth_from) as f64 / last_tenth.as_secs_f64() / 1e6,
        before >> 20,
        peak >> 20,
        after_merges >> 20,
        n / 97,
        after_reads >> 20,
        rss_file() >> 20
    );
    println!(
        "log table: {log_size} entries x 40 B + {slots} slots x 4 B = {} MB (x2 during a merge = {} MB); data file {} MB (mapped, counted in RSS only for the pages read); finds {:.0} ns each",
        log_table >> 20,
        (2 * log_table) >> 20,
        (n * 48) >> 20,
        found.as_nanos() as f64 / (n / 97) as f64
    );
    println!(
        "written: {} MB to storage, {} MB through write calls, for {} MB of keys and values: write amplification {:.1} (storage), {:.1} (write calls)",
        written >> 20,
        wchar >> 20,
        payload >> 20,
        written as f64 / payload as f64,
        wchar as f64 / payload as f64
    );
}
