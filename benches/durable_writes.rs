//! What durability costs on the write paths the power-loss work touched
//! (issue 16): durable block stores (one fsync each), index adds flushed
//! one by one and every 10,000, and creating a new store (the directory
//! fsyncs a new store now pays once).
//!
//! Run: `cargo bench --bench durable_writes` (about a minute; `TZS_BENCH_DIR`
//! where files go, `TZS_BENCH_ROUNDS` repetitions, default 3). The same file
//! builds against older commits (it uses only APIs they had), so before and
//! after can be measured alternately in one session: BENCHMARKS.md.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use tzstore::OpenOptions;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::index::{Index, IndexConfig};

fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn index_cfg() -> IndexConfig {
    IndexConfig {
        key_size: 32,
        value_size: 8,
        removable: false,
        log_size: 0,
        open: OpenOptions::default(),
    }
}

fn key(i: u64) -> [u8; 32] {
    common::hash_of(i)
}

/// Durable stores, one block at a time, as a node stores its head.
fn block_stores(dir: &Path, n: i32) {
    let opts = BlockStoreOptions {
        history_mode: HistoryMode::Archive,
        ..BlockStoreOptions::default()
    };
    let store = BlockStore::open(dir, opts).expect("open block store");
    let mut prev = [0u8; 32];
    let mut lat = Vec::with_capacity(n as usize);
    let started = Instant::now();
    for l in 0..n {
        let b = common::block(l as u64, l, prev);
        let t = Instant::now();
        store.store(&b.as_ref()).expect("store");
        lat.push(t.elapsed());
        prev = b.hash;
    }
    let total = started.elapsed();
    println!(
        "block store, {n} durable stores: {:.0} blocks/s, p50 {:.0?} p99 {:.0?}",
        f64::from(n) / total.as_secs_f64(),
        quantile(&lat, 0.5),
        quantile(&lat, 0.99)
    );
}

/// Index adds with a flush (fsync) after every `every` adds.
fn index_adds(dir: &Path, n: u64, every: u64) {
    let ix = Index::open(dir, index_cfg()).expect("open index");
    let started = Instant::now();
    for i in 0..n {
        ix.add(&key(i), &i.to_le_bytes(), false).expect("add");
        if i % every == every - 1 {
            ix.flush().expect("flush");
        }
    }
    ix.flush().expect("flush");
    let total = started.elapsed();
    println!(
        "index, {n} adds, flush every {every}: {:.0} adds/s, {:.0} flushes/s",
        n as f64 / total.as_secs_f64(),
        (n / every) as f64 / total.as_secs_f64()
    );
}

/// Opening (creating) new stores: what the directory fsyncs at creation cost.
fn creations(dir: &Path, n: u32) {
    let t = Instant::now();
    for i in 0..n {
        let ix = Index::open(dir.join(format!("ix-{i}")), index_cfg()).expect("new index");
        drop(ix);
    }
    let index = t.elapsed() / n;
    let t = Instant::now();
    for i in 0..n {
        let s = BlockStore::open(dir.join(format!("bs-{i}")), BlockStoreOptions::default())
            .expect("new block store");
        drop(s);
    }
    let block = t.elapsed() / n;
    println!("creating a new store: index {index:.2?}, block store {block:.2?}");
}

fn main() {
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let rounds: u32 = std::env::var("TZS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for round in 1..=rounds {
        println!("round {round}");
        let dir = tempfile::tempdir_in(&base).expect("bench dir");
        block_stores(&dir.path().join("blocks"), 3000);
        index_adds(&dir.path().join("ix-each"), 3000, 1);
        index_adds(&dir.path().join("ix-10k"), 1_000_000, 10_000);
        creations(dir.path(), 20);
    }
}
