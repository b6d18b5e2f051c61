//! Index engine throughput: 1,000,000 random 32-byte keys -> 8-byte values.
//! Run: `cargo bench --bench index` (about a minute). Figures: BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

const N: usize = 1_000_000;

fn cfg(log_size: u64) -> IndexConfig {
    IndexConfig {
        key_size: 32,
        value_size: 8,
        removable: false,
        log_size,
        open: OpenOptions::default(),
    }
}

fn bench(c: &mut Criterion) {
    let present = common::keys(N, 1);
    let absent = common::keys(N, 2);
    let dir = tempfile::tempdir().unwrap();
    // log_size N - 1: the N-th add freezes everything into one merge.
    let ix = Index::open(dir.path(), cfg(N as u64 - 1)).unwrap();
    for (i, k) in present.iter().enumerate() {
        ix.add(k, &(i as u64).to_le_bytes(), false).unwrap();
    }
    ix.await_merge().unwrap();
    ix.flush().unwrap();

    let mut g = c.benchmark_group("index_1M");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    let mut out = [0u8; 8];
    let mut i = 0usize;
    g.bench_function("find_hit_after_merge", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            assert!(ix.find_into(black_box(&present[i]), &mut out).unwrap());
        })
    });
    g.bench_function("find_miss", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            assert!(!ix.find_into(black_box(&absent[i]), &mut out).unwrap());
        })
    });
    drop(ix);

    // Adds into a fresh index with the default log size (merges run in the
    // background); each measurement adds `iters` keys from a fresh start.
    g.bench_function("add_no_flush", |b| {
        b.iter_custom(|iters| {
            let d = tempfile::tempdir().unwrap();
            let ix = Index::open(d.path(), cfg(0)).unwrap();
            let t = Instant::now();
            for j in 0..iters as usize {
                ix.add(&absent[j % N], &(j as u64).to_le_bytes(), false)
                    .unwrap();
            }
            t.elapsed()
        })
    });
    g.bench_function("add_flush_every_10k", |b| {
        b.iter_custom(|iters| {
            let d = tempfile::tempdir().unwrap();
            let ix = Index::open(d.path(), cfg(0)).unwrap();
            let t = Instant::now();
            for j in 0..iters as usize {
                ix.add(&absent[j % N], &(j as u64).to_le_bytes(), false)
                    .unwrap();
                if j % 10_000 == 9_999 {
                    ix.flush().unwrap();
                }
            }
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
