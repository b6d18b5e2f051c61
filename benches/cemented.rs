//! Cemented store: random `read_by_level`, cementing chunks of 8,192 blocks
//! (2 KiB contents, 8 KiB compressible metadata), and the metadata size on
//! disk against a deflate-6 zip of the same entries.
//! Run: `cargo bench --bench cemented` (about a minute). Figures: BENCHMARKS.md.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tzstore::OpenOptions;
use tzstore::block::cemented::Cemented;
use tzstore::block::{BlockRef, Hash};

const CHUNK: i32 = 8192;
const CONTENTS: usize = 2048;
const METADATA: usize = 8192;

fn hash(level: i32) -> Hash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&level.to_be_bytes());
    h[4..12].copy_from_slice(
        &(level as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .to_le_bytes(),
    );
    h
}

/// Receipts-like text: repetitive structure with varying numbers, as block
/// metadata is (balance updates, gas, statuses).
fn metadata(level: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(METADATA);
    let mut i = 0u64;
    while out.len() < METADATA {
        let x = (level as u64)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(i * 7919);
        let _ = write!(
            out,
            "{{\"kind\":\"transaction\",\"status\":\"applied\",\"consumed_milligas\":\"{}\",\
             \"balance_updates\":[{{\"contract\":\"tz1{:x}\",\"change\":\"-{}\"}}]}}",
            x % 1_000_000,
            x,
            x % 10_000
        );
        i += 1;
    }
    out.truncate(METADATA);
    out
}

fn contents(level: i32) -> Vec<u8> {
    let mut x = (level as u64) | 1;
    (0..CONTENTS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Chunk {
    contents: Vec<Vec<u8>>,
    metadata: Vec<Vec<u8>>,
}

fn chunk(start: i32) -> Chunk {
    let levels = start..start + CHUNK;
    Chunk {
        contents: levels.clone().map(contents).collect(),
        metadata: levels.map(metadata).collect(),
    }
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// The same entries in a zip with deflate level 6.
fn deflate6_size(c: &Chunk, start: i32) -> u64 {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6));
    for (i, m) in c.metadata.iter().enumerate() {
        z.start_file((start + i as i32).to_string(), opts).unwrap();
        z.write_all(m).unwrap();
    }
    z.finish().unwrap().into_inner().len() as u64
}

fn bench(cr: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Cemented::open(dir.path(), &OpenOptions::default(), 0).unwrap();
    let template = chunk(0);
    let input = (CHUNK as u64) * (CONTENTS + METADATA) as u64;

    // Chunks are cemented at increasing levels; the template's hashes are
    // rewritten per chunk so the predecessor links hold.
    let mut next = 0i32;
    let mut cement_next = |store: &Cemented| {
        let hashes: Vec<Hash> = (next..next + CHUNK).map(hash).collect();
        let preds: Vec<Hash> = (next..next + CHUNK).map(|l| hash(l - 1)).collect();
        let blocks: Vec<BlockRef<'_>> = (0..CHUNK as usize)
            .map(|i| BlockRef {
                hash: &hashes[i],
                level: next + i as i32,
                predecessor: &preds[i],
                contents: &template.contents[i],
                metadata: Some(&template.metadata[i]),
            })
            .collect();
        store.cement(&blocks, true, true).unwrap();
        next += CHUNK;
    };

    // Two chunks before any measurement, so every bench (even filtered
    // alone) has blocks to read.
    cement_next(&store);
    cement_next(&store);

    let mut g = cr.benchmark_group("cemented");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(input));
    g.bench_function("cement_8192_blocks_2k_contents_8k_metadata", |b| {
        b.iter(|| cement_next(&store))
    });

    // Metadata size: zstd (default level 3) zip of one chunk vs deflate 6.
    let zstd = dir_size(&dir.path().join("metadata")) / (next / CHUNK) as u64;
    let deflate = deflate6_size(&template, 0);
    let raw = CHUNK as u64 * METADATA as u64;
    eprintln!(
        "metadata of one chunk: raw {raw} B, zstd-3 zip {zstd} B ({:.1}x), deflate-6 zip {deflate} B ({:.1}x)",
        raw as f64 / zstd as f64,
        raw as f64 / deflate as f64
    );

    let levels = next;
    g.throughput(Throughput::Elements(1));
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    g.bench_function("read_by_level_random_no_metadata", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let level = (x % levels as u64) as i32;
            black_box(store.read_by_level(level, false).unwrap())
        })
    });
    g.bench_function("read_by_level_random_with_metadata", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let level = (x % levels as u64) as i32;
            black_box(store.read_by_level(level, true).unwrap())
        })
    });
    g.bench_function("hash_of_random", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            black_box(store.hash_of((x % levels as u64) as i32).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
