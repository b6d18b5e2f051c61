//! Block store benchmarks (issue 10's targets):
//! * a merge of one 8,192-block cycle (2 KiB contents, 8 KiB metadata)
//!   against writing the same bytes sequentially with fsync, in one run;
//! * `store` latency p99 during a merge against its p99 without one.
//!
//! Run: `cargo bench --bench block_store` (`TZS_BENCH_DIR` where files go).

mod common;

use std::time::{Duration, Instant};

use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};

const CYCLE: i32 = 8192;

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn main() {
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let opts = BlockStoreOptions {
        history_mode: HistoryMode::Archive,
        ..BlockStoreOptions::default()
    };
    let store = BlockStore::open(dir.path(), opts).expect("open");
    // One cycle plus 1,000 blocks, each stored durably as a node does.
    let mut prev = [0u8; 32];
    let mut quiet = Vec::new();
    for l in 0..=CYCLE + 1000 {
        let b = common::block(l as u64, l, prev);
        let t = Instant::now();
        store.store(&b.as_ref()).expect("store");
        if l >= CYCLE {
            quiet.push(t.elapsed());
        }
        prev = b.hash;
    }
    let started = Instant::now();
    store.merge(&prev, &[CYCLE - 1]).expect("merge");
    // Stores go on while the merge runs and while the stores it replaced
    // are deleted; the merge's own time is taken by a waiting thread.
    let mut during = Vec::new();
    let merge = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            store.await_merge().expect("merge result");
            started.elapsed()
        });
        let mut l = CYCLE + 1001;
        while store.busy() || !waiter.is_finished() {
            let b = common::block(l as u64, l, prev);
            let t = Instant::now();
            store.store(&b.as_ref()).expect("store");
            during.push(t.elapsed());
            prev = b.hash;
            l += 1;
        }
        waiter.join().expect("waiter")
    });
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
        "merge of one {CYCLE}-block cycle ({:.0} MB): {:.2?}; sequential write+fsync of the same bytes: {:.2?}; ratio {:.2}",
        cycle_bytes as f64 / 1e6,
        merge,
        baseline,
        merge.as_secs_f64() / baseline.as_secs_f64()
    );
    if !during.is_empty() {
        println!(
            "store p99 without a merge: {:.2?} ({} stores); during the merge: {:.2?} ({} stores); ratio {:.2}",
            p99(quiet.clone()),
            quiet.len(),
            p99(during.clone()),
            during.len(),
            p99(during).as_secs_f64() / p99(quiet).as_secs_f64()
        );
    }
}
