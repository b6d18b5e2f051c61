//! Which checksum is fastest on this machine for tzstore's records (issue
//! 20, point 2): CRC-32 (`crc32fast`, the one the formats use; PCLMULQDQ
//! folding), CRC-32C (`crc32c`, the SSE 4.2 instruction) and xxh3-64
//! (`xxhash-rust`), over a 44-byte index log entry, a 2 KiB value and a
//! 10 KiB block record, from buffers spread over 64 MiB so that most are
//! not in the CPU cache (as a record read from the page cache is not).
//!
//! Run: `cargo bench --bench checksum`. The three run interleaved, round
//! after round, and each line gives the median of the rounds, so a noisy
//! neighbour slows all three alike.

use std::time::Instant;

type Checksum<'a> = &'a dyn Fn(&[u8]) -> u64;

fn main() {
    const SPAN: usize = 64 << 20;
    let arena: Vec<u8> = (0..SPAN)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7])
        .collect();
    let rounds = 9;
    for size in [44usize, 2048, 10240] {
        let slots = SPAN / size;
        let n = (256 << 20) / size;
        let mut rates: [Vec<f64>; 3] = Default::default();
        let mut acc = 0u64;
        for _ in 0..rounds {
            let mut pos = 0usize;
            let mut next = || {
                pos = (pos + 7919) % slots;
                &arena[pos * size..pos * size + size]
            };
            let algos: [Checksum; 3] = [
                &|b| u64::from(crc32fast::hash(b)),
                &|b| u64::from(crc32c::crc32c(b)),
                &|b| xxhash_rust::xxh3::xxh3_64(b),
            ];
            for (a, rate) in algos.iter().zip(rates.iter_mut()) {
                let t = Instant::now();
                for _ in 0..n {
                    acc ^= a(next());
                }
                rate.push((n * size) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let [a, b, c] = &mut rates;
        println!(
            "{size:>6} B: CRC-32 (crc32fast) {:.1} GB/s, CRC-32C (crc32c) {:.1} GB/s, xxh3-64 {:.1} GB/s (median of {rounds} interleaved rounds; {acc:x})",
            median(a),
            median(b),
            median(c)
        );
    }
}
