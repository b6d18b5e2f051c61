//! Power cuts during an indexed file's GC (`gc_filter`, filtering on the
//! header), before every sync and under every cut mode: the store opens
//! with every value from before the GC or exactly the kept ones, never
//! some of the dropped values without the others, and a GC after the
//! recovery works.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const KEYS: u64 = 40;

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

fn header(k: u64) -> [u8; 4] {
    (k as u32).to_be_bytes()
}

fn value(k: u64) -> Vec<u8> {
    vec![k as u8 ^ 0x5A; 20 + (k * 13 % 200) as usize]
}

fn cfg(fs: &CrashFs) -> IndexedFileConfig {
    let mut open = OpenOptions::read_write();
    open.fs = Arc::new(fs.clone());
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value: false,
        log_size: 16,
        open,
    }
}

/// Syncs done when the appends were flushed and when the GC returned.
fn workload(fs: &CrashFs) -> (u64, u64) {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let f = IndexedFile::open("/node/values", cfg(fs)).unwrap();
    for k in 0..KEYS {
        f.append(&key(k), Some(&header(k)), &value(k), false)
            .unwrap();
    }
    f.flush().unwrap();
    let flushed = fs.syncs();
    // Keep the values whose header (a level, say) is at least 25.
    f.gc_filter(|_, h| u32::from_be_bytes(h.try_into().unwrap()) >= 25, true)
        .unwrap();
    let done = fs.syncs();
    assert!(
        done >= flushed + 3,
        "the GC publishes through several syncs"
    );
    drop(f);
    (flushed, done)
}

#[test]
fn a_power_cut_during_a_gc_leaves_the_old_or_the_new_values() {
    let states =
        power_common::at_every_sync(1, 150, 2, workload, |after, &(flushed, done), k, mode| {
            let what = format!("cut before sync {k} ({mode:?})");
            let f = power_common::open_or_repair(
                mode,
                &what,
                || IndexedFile::open("/node/values", cfg(after)),
                |repair| IndexedFile::check("/node/values", &cfg(after).open, repair),
            );
            let present: Vec<u64> = (0..KEYS)
                .filter(
                    |&kk| match f.read(&key(kk)).unwrap_or_else(|e| panic!("{what}: {e}")) {
                        Some((v, h)) => {
                            assert_eq!(
                                (v, h),
                                (value(kk), header(kk).to_vec()),
                                "{what}: key {kk}"
                            );
                            true
                        }
                        None => false,
                    },
                )
                .collect();
            let all: Vec<u64> = (0..KEYS).collect();
            let kept: Vec<u64> = (25..KEYS).collect();
            if k > flushed {
                let allowed: Vec<&Vec<u64>> = if k > done {
                    vec![&kept]
                } else {
                    vec![&all, &kept]
                };
                assert!(allowed.contains(&&present), "{what}: {present:?}");
            }
            // The recovered store keeps working: a GC, an append, a reopen.
            assert!(f.gc_filter(|_, _| true, true).unwrap());
            f.append(&key(500), Some(&header(500)), b"after", true)
                .unwrap();
            drop(f);
            let f = IndexedFile::open("/node/values", cfg(after)).unwrap();
            assert_eq!(f.len(), present.len() as u64 + 1, "{what}");
        });
    assert!(states >= 200, "only {states} crash states");
}
