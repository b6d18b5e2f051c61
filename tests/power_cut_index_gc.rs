//! Power cuts during an index's filter (a GC) and clear, on the crash-model
//! file system, before every sync of the workload and under every cut
//! mode: the index opens holding the bindings from before the filter, or
//! the filtered ones, or (after the clear began) none; never some of the
//! dropped bindings without the others.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const KEYS: u64 = 60;

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

fn cfg(fs: &CrashFs) -> IndexConfig {
    let mut c = IndexConfig::new(8, 8);
    c.removable = true;
    c.log_size = 16;
    c.open = OpenOptions::read_write();
    c.open.fs = Arc::new(fs.clone());
    c
}

/// Syncs done when the phases were acknowledged: all added and flushed,
/// filtered, cleared.
struct Acks {
    flushed: u64,
    filtered: u64,
    cleared: u64,
}

fn workload(fs: &CrashFs) -> Acks {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let idx = Index::open("/node/index", cfg(fs)).unwrap();
    for k in 0..KEYS {
        idx.add(&key(k), &k.to_le_bytes(), k % 7 == 0).unwrap();
    }
    idx.flush().unwrap();
    let flushed = fs.syncs();
    idx.filter(|k, _| u64::from_be_bytes(k.try_into().unwrap()) % 3 == 0)
        .unwrap();
    let filtered = fs.syncs();
    idx.clear().unwrap();
    let cleared = fs.syncs();
    // Cuts fall inside both: each publishes through several syncs.
    assert!(filtered >= flushed + 3 && cleared >= filtered + 3);
    idx.close().unwrap();
    Acks {
        flushed,
        filtered,
        cleared,
    }
}

#[test]
fn a_power_cut_during_filter_or_clear_leaves_the_old_or_the_new_bindings() {
    let states = power_common::at_every_sync(1, 150, 2, workload, |after, acks, k, mode| {
        let what = format!("cut before sync {k} ({mode:?})");
        let idx = power_common::open_or_repair(
            mode,
            &what,
            || Index::open("/node/index", cfg(after)),
            |repair| Index::check("/node/index", &cfg(after).open, repair),
        );
        let present: Vec<u64> = (0..KEYS)
            .filter(|&kk| {
                let v = idx
                    .find(&key(kk))
                    .unwrap_or_else(|e| panic!("{what}: find: {e}"));
                if let Some(v) = &v {
                    assert_eq!(v, &kk.to_le_bytes(), "{what}: key {kk}");
                }
                v.is_some()
            })
            .collect();
        let all: Vec<u64> = (0..KEYS).collect();
        let kept: Vec<u64> = (0..KEYS).filter(|kk| kk % 3 == 0).collect();
        if k <= acks.flushed {
            // Before the filter began: adds not all durable yet.
            assert!(present.iter().all(|p| all.contains(p)), "{what}");
            return;
        }
        let mut allowed = vec![all.clone(), kept.clone(), Vec::new()];
        if k > acks.filtered {
            allowed.remove(0);
        }
        if k > acks.cleared {
            allowed = vec![Vec::new()];
        }
        if k <= acks.filtered {
            // The clear had not started.
            allowed.pop();
        }
        assert!(
            allowed.contains(&present),
            "{what}: {} bindings {present:?}, allowed {allowed:?}",
            present.len()
        );
        assert_eq!(idx.len(), present.len() as u64, "{what}: len");
        // The recovered index keeps working: a GC, a write, a reopen.
        idx.filter(|_, _| true).unwrap();
        idx.add(&key(KEYS + 1), &7u64.to_le_bytes(), true).unwrap();
        idx.close().unwrap();
        let idx = Index::open("/node/index", cfg(after)).unwrap();
        assert_eq!(idx.len(), present.len() as u64 + 1, "{what}: after reopen");
    });
    assert!(states >= 200, "only {states} crash states");
}
