//! A read-only index's sync skips work when the files' stamps prove nothing
//! changed; after the writer has been idle for over a second (when stamps
//! become trustworthy), every kind of change must still be seen: entries
//! appended to the current log, a new log, a merge's new data file.

use std::time::Duration;

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

fn cfg(read_only: bool) -> IndexConfig {
    let mut open = OpenOptions::read_write().no_fsync();
    open.read_only = read_only;
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable: false,
        log_size: 40,
        open,
    }
}

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

/// Lets every stamp settle (they are trusted after a second of quiet).
fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn assert_all(ro: &Index, n: u64, what: &str) {
    for k in 0..n {
        assert_eq!(
            ro.find(&key(k)).unwrap(),
            Some(key(k * 3).to_vec()),
            "{what}: key {k}"
        );
    }
}

#[test]
fn settled_stamps_never_hide_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let w = Index::open(dir.path(), cfg(false)).unwrap();
    let add = |from: u64, to: u64| {
        for k in from..to {
            w.add(&key(k), &key(k * 3), true).unwrap();
        }
    };
    add(0, 10);
    let ro = Index::open(dir.path(), cfg(true)).unwrap();
    assert_all(&ro, 10, "at open");
    settle();
    ro.sync().unwrap(); // records settled stamps
    ro.sync().unwrap(); // the fast path
    // Appends to the current log (the directory does not change).
    add(10, 15);
    ro.sync().unwrap();
    assert_all(&ro, 15, "appended to the log");
    settle();
    ro.sync().unwrap();
    // Enough for the log to be frozen and merged: new logs, a new data file.
    add(15, 200);
    w.await_merge().unwrap();
    ro.sync().unwrap();
    assert_all(&ro, 200, "after merges");
    settle();
    ro.sync().unwrap();
    add(200, 205);
    ro.sync().unwrap();
    assert_all(&ro, 205, "after a quiet second");
    assert_eq!(ro.len(), 205);
}
