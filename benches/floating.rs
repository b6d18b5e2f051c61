//! Floating block store benchmarks (issue 5's targets):
//! * append of 100,000 blocks (2 KiB contents + 8 KiB metadata) with one
//!   flush per 1,000 blocks, against a plain sequential write + fsync of the
//!   same bytes measured in the same run;
//! * `read_block` of a random stored block (page cache);
//! * `read(hash, distance)` for random distances <= 10,000: index lookups
//!   counted.
//!
//! Run: `cargo bench --bench floating` (`TZS_BENCH_BLOCKS` changes the
//! 100,000; `TZS_BENCH_DIR` where the files go).

mod common;

use std::cell::Cell;
use std::time::Instant;

use criterion::Criterion;
use tzstore::OpenOptions;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::predecessors;

fn main() {
    let n: u64 = std::env::var("TZS_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let store =
        Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_write()).expect("open");
    let blocks: Vec<_> = (0..1000).map(|i| common::block(i, 0, [0; 32])).collect();
    let record_bytes = tzstore::block::record::encode(&blocks[0].as_ref(), true)
        .expect("encode")
        .len() as u64;

    // Append: a linear chain with real predecessor lists.
    let started = Instant::now();
    let mut prev = [0u8; 32];
    for i in 0..n {
        let mut b = blocks[(i % 1000) as usize].clone();
        b.hash = common::hash_of(i);
        b.level = i as i32;
        b.predecessor = prev;
        let preds = if i == 0 {
            Vec::new()
        } else {
            predecessors::compute(&prev, |h, k| {
                Ok(store.find_predecessors(h)?.and_then(|l| l.get(k).copied()))
            })
            .expect("preds")
        };
        store
            .append(&b.as_ref(), &preds, i % 1000 == 999)
            .expect("append");
        prev = b.hash;
    }
    store.flush().expect("flush");
    let append = started.elapsed();
    let bytes = store.size_bytes();
    let baseline = common::sequential_write(
        dir.path(),
        bytes,
        record_bytes as usize,
        record_bytes * 1000,
    );
    println!(
        "floating append: {n} blocks, {:.0} MB in {:.2?} = {:.0} MB/s, {:.0} blocks/s",
        bytes as f64 / 1e6,
        append,
        common::mb_per_s(bytes, append),
        n as f64 / append.as_secs_f64()
    );
    println!(
        "sequential write+fsync of the same bytes: {:.2?} = {:.0} MB/s; append reaches {:.0}% of it",
        baseline,
        common::mb_per_s(bytes, baseline),
        100.0 * baseline.as_secs_f64() / append.as_secs_f64()
    );

    // Ancestor lookups: index lookups per read(hash, distance).
    let lookups = Cell::new(0u64);
    let mut rng = 0x1234_5678u64;
    let (mut worst, mut total) = (0u64, 0u64);
    let samples = 10_000u64;
    for _ in 0..samples {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let from = 10_000.min(n - 1) + rng % (n - 10_000.min(n - 1));
        let d = rng % (10_001.min(from + 1));
        lookups.set(0);
        let got = predecessors::ancestor(&common::hash_of(from), d, |h| {
            lookups.set(lookups.get() + 1);
            store.find_predecessors(h)
        })
        .expect("ancestor");
        assert_eq!(got, Some(common::hash_of(from - d)));
        worst = worst.max(lookups.get());
        total += lookups.get();
    }
    println!(
        "read(hash, distance <= 10,000): {:.1} index lookups on average, {worst} at most ({samples} samples)",
        total as f64 / samples as f64
    );

    let mut c = Criterion::default().configure_from_args().sample_size(20);
    let mut i = 0u64;
    c.bench_function("floating read_block random (page cache)", |b| {
        b.iter(|| {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            store
                .read_block(&common::hash_of(i % n))
                .expect("read")
                .expect("present")
        })
    });
    c.bench_function("floating find_predecessors random", |b| {
        b.iter(|| {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            store
                .find_predecessors(&common::hash_of(i % n))
                .expect("preds")
                .expect("present")
        })
    });
    c.final_summary();
}
