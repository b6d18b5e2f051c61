//! What the C call adds to an index lookup (issue 20: at most 20 ns over
//! the same operation called from Rust): `tzs_index_find` against
//! `Index::find_into`, the same present keys in the same order, on two
//! read-only handles of one merged index. Each round times both, in turns
//! (the first of the pair alternates). With 1 M keys a find is bound by
//! cache misses in the two handles' own maps; 10,000 keys (in cache) show
//! the call's own cost.
//!
//! Run: `cargo bench --bench ffi_call` (`TZS_BENCH_DIR` where files go,
//! `TZS_BENCH_ROUNDS` rounds, default 7; `TZS_BENCH_KEYS` keys, default
//! 1,000,000; `TZS_BENCH_DEPENDENT=1` picks each key from the previous
//! value, so lookups cannot overlap in the CPU).

mod common;

use std::ffi::CString;
use std::hint::black_box;
use std::time::Instant;

use tzstore::OpenOptions;
use tzstore::ffi::error::tzs_error;
use tzstore::ffi::index::{tzs_index, tzs_index_close, tzs_index_find, tzs_index_open};
use tzstore::ffi::types::{TZS_OK, TZS_READONLY};
use tzstore::index::{Index, IndexConfig};

const FINDS: usize = 4_000_000;

fn config(keys: usize, open: OpenOptions) -> IndexConfig {
    IndexConfig {
        key_size: 32,
        value_size: 8,
        removable: false,
        log_size: keys as u64 - 1,
        open,
    }
}

/// `TZS_BENCH_DEPENDENT=1`: each key chosen from the previous value.
fn dependent() -> bool {
    static D: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *D.get_or_init(|| std::env::var_os("TZS_BENCH_DEPENDENT").is_some())
}

/// Nanoseconds per lookup of `FINDS` present keys through `find`.
fn ns_per_find(keys: &[[u8; 32]], mut find: impl FnMut(&[u8; 32], &mut [u8; 8]) -> bool) -> f64 {
    let mut out = [0u8; 8];
    let mut i = 0usize;
    let started = Instant::now();
    for _ in 0..FINDS {
        // With `dependent`, the next key depends on this value: one lookup
        // at a time, as a caller that uses each answer sees them.
        let step = if dependent() {
            usize::from(out[0] & 1)
        } else {
            0
        };
        i = (i + 7_919 + step) % keys.len();
        assert!(find(black_box(&keys[i]), &mut out), "key {i} is present");
    }
    started.elapsed().as_nanos() as f64 / FINDS as f64
}

fn main() {
    let base = std::env::var("TZS_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let rounds: usize = std::env::var("TZS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let n: usize = std::env::var("TZS_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        .max(2);
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let present = common::keys(n, 1);
    {
        let ix = Index::open(dir.path(), config(n, OpenOptions::default())).expect("open");
        for (i, k) in present.iter().enumerate() {
            ix.add(k, &(i as u64).to_le_bytes(), false).expect("add");
        }
        ix.await_merge().expect("merge");
        ix.flush().expect("flush");
    }

    let rust = Index::open(dir.path(), config(n, OpenOptions::read_only())).expect("open ro");
    let path = CString::new(dir.path().to_str().expect("utf-8 path")).expect("no NUL");
    let mut c: *mut tzs_index = std::ptr::null_mut();
    let mut err: *mut tzs_error = std::ptr::null_mut();
    // SAFETY: `path` is a NUL-terminated string that outlives the call; `c`
    // and `err` are valid places for the handle and the error.
    let st = unsafe {
        tzs_index_open(
            path.as_ptr(),
            32,
            8,
            TZS_READONLY,
            n as u64 - 1,
            &mut c,
            &mut err,
        )
    };
    assert_eq!(st, TZS_OK, "tzs_index_open");

    let mut diffs = Vec::new();
    for r in 1..=rounds {
        let from_rust = ns_per_find(&present, |k, out| rust.find_into(k, out).expect("find"));
        let through_c = ns_per_find(&present, |k, out| {
            let mut e: *mut tzs_error = std::ptr::null_mut();
            // SAFETY: `c` is the live handle opened above; `k` and `out`
            // are 32 readable and 8 writable bytes; `e` is a valid place.
            let st = unsafe { tzs_index_find(c, k.as_ptr(), 32, out.as_mut_ptr(), 8, &mut e) };
            st == TZS_OK
        });
        diffs.push(through_c - from_rust);
        println!(
            "round {r}: Index::find_into {from_rust:.1} ns, tzs_index_find {through_c:.1} ns, the C call adds {:.1} ns",
            through_c - from_rust
        );
    }
    diffs.sort_by(f64::total_cmp);
    println!(
        "{n} keys: the C call adds {:.1} to {:.1} ns per find (median {:.1}, {rounds} rounds of {FINDS} finds)",
        diffs[0],
        diffs[diffs.len() - 1],
        diffs[diffs.len() / 2]
    );
    // SAFETY: `c` is the live handle opened above, closed once.
    unsafe { tzs_index_close(c) };
}
