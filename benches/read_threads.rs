//! Reads on one thread against reads on two (issue 20, point 3): index
//! `find` of present keys in a merged 1 M-key index, and floating-store
//! `read_block` by hash of 10 KiB blocks, and the same through a
//! `BlockReader` (no copy), all in the page cache.
//!
//! Each round measures one thread, then two threads sharing the same handle
//! (each reading its own half of a shuffled key list), and prints the two
//! rates and their ratio; rounds alternate so both see the same machine.
//!
//! Run: `cargo bench --bench read_threads` (`TZS_BENCH_DIR` where files go,
//! `TZS_BENCH_ROUNDS` rounds, default 5, `TZS_BENCH_ONLY` a part of the
//! name of the only workloads to run).

mod common;

use std::time::Instant;

use tzstore::OpenOptions;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::reader::BlockReader;
use tzstore::index::{Index, IndexConfig};

const KEYS: usize = 1_000_000;
const BLOCKS: u64 = 20_000;
const FINDS_PER_THREAD: usize = 2_000_000;
const READS_PER_THREAD: usize = 400_000;

/// Runs `work(thread, ops)` on `threads` threads at once, `ops` operations
/// each, and returns the total operations per second.
fn rate(threads: usize, ops: usize, work: &(dyn Fn(usize, usize) + Sync)) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || work(t, ops));
        }
    });
    (threads * ops) as f64 / started.elapsed().as_secs_f64()
}

fn compare(name: &str, rounds: usize, ops: usize, work: &(dyn Fn(usize, usize) + Sync)) {
    // `TZS_BENCH_ONLY=view` runs only the workloads whose name holds it
    // (to profile one of them).
    if let Ok(only) = std::env::var("TZS_BENCH_ONLY") {
        if !name.contains(&only) {
            return;
        }
    }
    // Warm up caches and the page cache.
    rate(2, ops / 4, work);
    let mut ratios = Vec::new();
    for r in 1..=rounds {
        let one = rate(1, ops, work);
        let two = rate(2, ops, work);
        ratios.push(two / one);
        println!(
            "{name} round {r}: 1 thread {:.2} M/s, 2 threads {:.2} M/s, ratio {:.2}",
            one / 1e6,
            two / 1e6,
            two / one
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "{name}: 2 threads / 1 thread: {:.2}-{:.2} (median {:.2}, {rounds} rounds)",
        ratios[0],
        ratios[ratios.len() - 1],
        ratios[ratios.len() / 2]
    );
}

fn main() {
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let rounds: usize = std::env::var("TZS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);

    // Index: 1 M keys, one merge (log size N - 1: the N-th add freezes all).
    let dir = tempfile::tempdir_in(&base).expect("bench dir");
    let present = common::keys(KEYS, 1);
    let ix = Index::open(
        dir.path(),
        IndexConfig {
            key_size: 32,
            value_size: 8,
            removable: false,
            log_size: KEYS as u64 - 1,
            open: OpenOptions::default(),
        },
    )
    .expect("open index");
    for (i, k) in present.iter().enumerate() {
        ix.add(k, &(i as u64).to_le_bytes(), false).expect("add");
    }
    ix.await_merge().expect("merge");
    ix.flush().expect("flush");
    let find = |t: usize, ops: usize| {
        let mut out = [0u8; 8];
        // Each thread walks the keys from its own start, with a stride
        // coprime to their count: random order, no shared cache lines.
        let mut i = t * KEYS / 2;
        for _ in 0..ops {
            i = (i + 7_919) % KEYS;
            let found = ix.find_into(&present[i], &mut out).expect("find");
            assert!(found, "key {i} is present");
        }
    };
    compare(
        "index find (1 M keys, merged)",
        rounds,
        FINDS_PER_THREAD,
        &find,
    );
    drop(ix);

    // Floating store: 20,000 blocks of 2 KiB contents + 8 KiB metadata.
    let fdir = tempfile::tempdir_in(&base).expect("bench dir");
    let store =
        Floating::open(fdir.path(), FloatingKind::Rw, &OpenOptions::read_write()).expect("open");
    let mut prev = [0u8; 32];
    for i in 0..BLOCKS {
        let b = common::block(i, i as i32, prev);
        let preds: Vec<[u8; 32]> = if i == 0 { Vec::new() } else { vec![prev] };
        store
            .append(&b.as_ref(), &preds, i % 1000 == 999)
            .expect("append");
        prev = b.hash;
    }
    store.flush().expect("flush");
    let read = |t: usize, ops: usize| {
        let mut i = t as u64 * BLOCKS / 2;
        for _ in 0..ops {
            i = (i + 7_919) % BLOCKS;
            let b = store.read_block(&common::hash_of(i)).expect("read");
            assert!(b.is_some(), "block {i} is stored");
        }
    };
    compare(
        "floating read_block (20,000 x 10 KiB)",
        rounds,
        READS_PER_THREAD,
        &read,
    );
    // The index lookup alone, the part of a read that finds the record.
    let locate = |t: usize, ops: usize| {
        let mut i = t as u64 * BLOCKS / 2;
        for _ in 0..ops {
            i = (i + 7_919) % BLOCKS;
            assert!(
                store.mem(&common::hash_of(i)).expect("mem"),
                "block {i} is stored"
            );
        }
    };
    compare(
        "floating mem (index only, 20,000 blocks)",
        rounds,
        READS_PER_THREAD,
        &locate,
    );
    // The same reads without a copy: one reader per thread.
    let view = |t: usize, ops: usize| {
        let mut reader = BlockReader::new();
        let mut i = t as u64 * BLOCKS / 2;
        let mut sum = 0u64;
        for _ in 0..ops {
            i = (i + 7_919) % BLOCKS;
            let b = store
                .read_view(&common::hash_of(i), &mut reader)
                .expect("read")
                .expect("stored");
            // Touch the block as a caller would: its first and last bytes.
            sum += u64::from(b.contents[0]) + u64::from(b.metadata.map_or(0, |m| m[m.len() - 1]));
        }
        std::hint::black_box(sum);
    };
    compare(
        "floating read_view (20,000 x 10 KiB)",
        rounds,
        READS_PER_THREAD,
        &view,
    );
}
