//! Block store benchmarks (issue 10's targets):
//! * a merge of one 8,192-block cycle (2 KiB contents, 8 KiB metadata)
//!   against writing the same bytes sequentially with fsync, in one run;
//! * `store` latency p99 during a merge against its p99 without one.
//!
//! The first merge runs alone (its time is the merge's own); the second
//! runs while a thread stores blocks back to back, durably, and measures
//! their latency until the merge and the deletion of the stores it replaced
//! are over.
//!
//! * the cost of a read-only handle's `sync` with nothing new, and with one
//!   new block.
//!
//! Merges keep the new cemented top and `max_op_ttl` of its ancestors in the
//! floating store, as a node's do (`TZS_BENCH_MAX_OP_TTL`, default 120).
//!
//! Run: `cargo bench --bench block_store` (`TZS_BENCH_DIR` where files go,
//! `TZS_BENCH_ZSTD_LEVEL` the metadata's zstd level, default the store's;
//! `TZS_BENCH_MERGE_ONLY=<n>` runs only the lone merge, of `n` cycles in
//! turn, for profiling).

mod common;

use std::time::{Duration, Instant};

use tzstore::block::Hash;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};

const CYCLE: i32 = 8192;

fn p99(v: Vec<Duration>) -> Duration {
    quantile(v, 0.99)
}

fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// p50 / p90 / p99 / p99.9 / max, for the shape of a latency tail.
fn spread(v: &[Duration]) -> String {
    [0.5, 0.9, 0.99, 0.999, 1.0]
        .iter()
        .map(|&q| format!("{:.2?}", quantile(v.to_vec(), q)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Stores levels `from..=to` durably, one block at a time as a node does;
/// returns the latencies and the last hash.
fn store_range(store: &BlockStore, from: i32, to: i32, mut prev: Hash) -> (Vec<Duration>, Hash) {
    let mut lat = Vec::new();
    for l in from..=to {
        let b = common::block(l as u64, l, prev);
        let t = Instant::now();
        store.store(&b.as_ref()).expect("store");
        lat.push(t.elapsed());
        prev = b.hash;
    }
    (lat, prev)
}

fn main() {
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let mut opts = BlockStoreOptions {
        history_mode: HistoryMode::Archive,
        ..BlockStoreOptions::default()
    };
    if let Some(level) = std::env::var("TZS_BENCH_ZSTD_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.zstd_level = level;
    }
    let store = BlockStore::open(dir.path(), opts.clone()).expect("open");
    let ttl: u32 = std::env::var("TZS_BENCH_MAX_OP_TTL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);

    // 1. One cycle plus 1,000 blocks, then the cycle's merge, alone.
    let (_, mut prev) = store_range(&store, 0, CYCLE + 1000, [0; 32]);
    let started = Instant::now();
    store
        .merge_preserving(&prev, &[CYCLE - 1], ttl)
        .expect("merge");
    store.await_merge().expect("merge result");
    let merge = started.elapsed();
    while store.busy() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let merge_only: i32 = std::env::var("TZS_BENCH_MERGE_ONLY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if merge_only > 0 {
        println!("merge 1 of one {CYCLE}-block cycle: {merge:.2?}");
        for c in 2..=merge_only {
            let from = (c - 1) * CYCLE + 1001;
            (_, prev) = store_range(&store, from, c * CYCLE + 1000, prev);
            let started = Instant::now();
            store
                .merge_preserving(&prev, &[c * CYCLE - 1], ttl)
                .expect("merge");
            store.await_merge().expect("merge result");
            println!(
                "merge {c} of one {CYCLE}-block cycle: {:.2?}",
                started.elapsed()
            );
            while store.busy() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        return;
    }
    let cycle_bytes: u64 = (0..CYCLE)
        .map(|l| {
            let b = common::block(l as u64, l, [0; 32]);
            tzstore::block::record::encode(&b.as_ref(), true)
                .expect("encode")
                .len() as u64
        })
        .sum();
    let baseline = common::sequential_write(dir.path(), cycle_bytes, 10 * 1024, cycle_bytes);
    println!(
        "merge of one {CYCLE}-block cycle ({:.0} MB, max_op_ttl {ttl}): {:.2?}; sequential write+fsync of the same bytes: {:.2?}; ratio {:.2}",
        cycle_bytes as f64 / 1e6,
        merge,
        baseline,
        merge.as_secs_f64() / baseline.as_secs_f64()
    );

    // 2. The next cycle; the last 1,000 stores are the quiet reference.
    let next_end = 2 * CYCLE + 1000;
    let (lat, mut prev) = store_range(&store, CYCLE + 1001, next_end, prev);
    let quiet = lat[lat.len() - 1000..].to_vec();
    let started = Instant::now();
    store
        .merge_preserving(&prev, &[2 * CYCLE - 1], ttl)
        .expect("merge");
    let mut during = Vec::new();
    let mut l = next_end + 1;
    while store.busy() {
        let (lat, last) = store_range(&store, l, l, prev);
        during.extend(lat);
        prev = last;
        l += 1;
    }
    store.await_merge().expect("merge result");
    let with_stores = started.elapsed();
    println!(
        "store p99 without a merge: {:.2?} ({} stores); during the merge: {:.2?} ({} stores, merge and cleanup {:.2?}); ratio {:.2}",
        p99(quiet.clone()),
        quiet.len(),
        p99(during.clone()),
        during.len(),
        with_stores,
        p99(during.clone()).as_secs_f64() / p99(quiet.clone()).as_secs_f64()
    );
    let over =
        |v: &[Duration], ms: u64| v.iter().filter(|d| **d > Duration::from_millis(ms)).count();
    println!(
        "stores over 1 ms / 5 ms: {} / {} of {} without, {} / {} of {} during",
        over(&quiet, 1),
        over(&quiet, 5),
        quiet.len(),
        over(&during, 1),
        over(&during, 5),
        during.len()
    );
    println!(
        "p50 / p90 / p99 / p99.9 / max without: {}; during: {}",
        spread(&quiet),
        spread(&during)
    );

    // 3. A read-only handle's sync: with nothing new, and after one store.
    let mut ro_opts = opts;
    ro_opts.open.read_only = true;
    let reader = BlockStore::open(dir.path(), ro_opts).expect("open read-only");
    reader.sync().expect("sync");
    // File stamps are trusted once a second has passed since the last
    // change (see `FileStamp::settled`): a node's reader between blocks.
    std::thread::sleep(Duration::from_millis(1100));
    reader.sync().expect("sync");
    const SYNCS: u32 = 100_000;
    let started = Instant::now();
    for _ in 0..SYNCS {
        reader.sync().expect("sync");
    }
    let idle = started.elapsed() / SYNCS;
    let mut after_store = Vec::new();
    for _ in 0..200 {
        let (_, last) = store_range(&store, l, l, prev);
        prev = last;
        l += 1;
        let t = Instant::now();
        reader.sync().expect("sync");
        after_store.push(t.elapsed());
    }
    println!(
        "read-only sync with nothing new: {:.2?} per call ({SYNCS} calls); after one store: p50 {:.2?}, p99 {:.2?}",
        idle,
        quantile(after_store.clone(), 0.5),
        p99(after_store)
    );
}
