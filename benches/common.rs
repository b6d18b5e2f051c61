//! Helpers shared by the benchmarks.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tzstore::block::{Block, Hash};

pub fn hash_of(id: u64) -> Hash {
    let mut h = [0u8; 32];
    for (i, chunk) in h.chunks_mut(8).enumerate() {
        let x = xxhash_rust::xxh3::xxh3_64_with_seed(&id.to_be_bytes(), i as u64);
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    h
}

/// A block of 2 KiB contents and 8 KiB compressible metadata, as the issues'
/// performance targets specify.
pub fn block(id: u64, level: i32, pred: Hash) -> Block {
    let mut contents = Vec::with_capacity(2048);
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while contents.len() < 2048 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        contents.extend_from_slice(&x.to_be_bytes());
    }
    let receipt = format!(
        "{{\"level\":{level},\"balance_updates\":[{{\"kind\":\"contract\",\"change\":\"{}\"}}]}};",
        id % 9973
    );
    let mut metadata = receipt.repeat(8192 / receipt.len() + 1).into_bytes();
    metadata.truncate(8192);
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents,
        metadata: Some(metadata),
    }
}

/// Writes `total` bytes in `chunk`-byte buffered writes to a fresh file,
/// fsyncing every `sync_every` bytes and at the end: this machine's
/// sequential durable write bandwidth for the same bytes a store writes.
pub fn sequential_write(dir: &Path, total: u64, chunk: usize, sync_every: u64) -> Duration {
    let path = dir.join("sequential-baseline");
    let buf = vec![0x5Au8; chunk];
    let started = Instant::now();
    let file = std::fs::File::create(&path).expect("create baseline file");
    let mut f = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut since_sync = 0u64;
    while written < total {
        f.write_all(&buf).expect("write baseline");
        written += chunk as u64;
        since_sync += chunk as u64;
        if since_sync >= sync_every {
            f.flush().expect("flush");
            f.get_ref().sync_data().expect("fsync");
            since_sync = 0;
        }
    }
    f.flush().expect("flush");
    f.get_ref().sync_data().expect("fsync");
    let d = started.elapsed();
    let _ = std::fs::remove_file(&path);
    d
}

pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Deterministic pseudo-random 32-byte keys (splitmix64), so runs are
/// comparable.
pub fn keys(n: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            for c in k.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes());
            }
            k
        })
        .collect()
}
