//! Index filter, clear, try_merge/is_merging and GC (sync, async, wait,
//! cancel), with readers running meanwhile, a panicking filter and a filter
//! that calls back into its index.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tzstore::index::{Index, IndexConfig};
use tzstore::{Error, OpenOptions};

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

fn val(k: u64) -> [u8; 8] {
    (k * 3 + 1).to_le_bytes()
}

fn num(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().unwrap())
}

fn cfg(removable: bool, log_size: u64) -> IndexConfig {
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable,
        log_size,
        open: OpenOptions::default().no_fsync(),
    }
}

/// Keys `0..n`, spread over the data file, frozen logs and the log table
/// (`log_size` 100 merges every 100 adds).
fn filled(dir: &std::path::Path, n: u64, removable: bool) -> Index {
    let idx = Index::open(dir, cfg(removable, 100)).unwrap();
    for k in 0..n {
        idx.add(&key(k), &val(k), false).unwrap();
    }
    idx.flush().unwrap();
    idx
}

fn keys_of(idx: &Index) -> Vec<u64> {
    let mut ks: Vec<u64> = idx.iter().unwrap().map(|r| num(&r.unwrap().0)).collect();
    ks.sort_unstable();
    ks
}

#[test]
fn filter_keeps_what_the_filter_keeps_durably() {
    for removable in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let idx = filled(dir.path(), 1050, removable);
        if removable {
            for k in (0..1050).step_by(10) {
                idx.remove(&key(k), false).unwrap();
            }
        }
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        idx.filter(move |k, v| {
            s.fetch_add(1, Ordering::Relaxed);
            // The filter sees the value without the removable tag.
            assert_eq!(v, val(num(k)));
            num(k) % 3 == 0
        })
        .unwrap();
        let want: Vec<u64> = (0..1050)
            .filter(|k| k % 3 == 0 && !(removable && k % 10 == 0))
            .collect();
        // Called once per live binding.
        assert_eq!(
            seen.load(Ordering::Relaxed),
            if removable { 945 } else { 1050 }
        );
        assert_eq!(keys_of(&idx), want);
        assert_eq!(idx.len(), want.len() as u64);
        assert_eq!(idx.find(&key(1)).unwrap(), None);
        assert_eq!(idx.find(&key(3)).unwrap(), Some(val(3).to_vec()));
        // Writes after the filter go on normally, and all of it reopens.
        idx.add(&key(1), &val(1), true).unwrap();
        idx.close().unwrap();
        let idx = Index::open(dir.path(), cfg(removable, 100)).unwrap();
        let mut want = want;
        want.push(1);
        want.sort_unstable();
        assert_eq!(keys_of(&idx), want);
        assert_eq!(idx.len(), want.len() as u64);
    }
}

#[test]
fn clear_empties_durably_and_the_index_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let idx = filled(dir.path(), 450, true);
    let ro = Index::open(dir.path(), {
        let mut c = cfg(true, 100);
        c.open = OpenOptions::read_only();
        c
    })
    .unwrap();
    assert_eq!(ro.len(), 450);
    idx.clear().unwrap();
    assert_eq!(idx.len(), 0);
    assert!(keys_of(&idx).is_empty());
    assert_eq!(idx.find(&key(5)).unwrap(), None);
    ro.sync().unwrap();
    assert_eq!(ro.len(), 0);
    assert_eq!(ro.find(&key(5)).unwrap(), None);
    idx.add(&key(7), &val(7), true).unwrap();
    idx.close().unwrap();
    let idx = Index::open(dir.path(), cfg(true, 100)).unwrap();
    assert_eq!(keys_of(&idx), vec![7]);
    // A read-only handle refuses it.
    assert!(matches!(ro.clear(), Err(Error::ReadOnly(_))));
}

#[test]
fn try_merge_starts_a_merge_of_whatever_the_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path(), cfg(false, 1_000_000)).unwrap();
    assert!(!idx.try_merge().unwrap(), "empty log: nothing to merge");
    for k in 0..20_000 {
        idx.add(&key(k), &val(k), false).unwrap();
    }
    assert!(!idx.is_merging());
    assert!(idx.try_merge().unwrap());
    // Started, and at once: a second call finds it running (or done and
    // the new log empty).
    assert!(!idx.try_merge().unwrap());
    idx.await_merge().unwrap();
    assert!(!idx.is_merging());
    assert_eq!(idx.len(), 20_000);
    idx.close().unwrap();
    // Merged into the data file: the logs are gone after the reopen.
    let idx = Index::open(dir.path(), cfg(false, 1_000_000)).unwrap();
    assert_eq!(idx.len(), 20_000);
    assert_eq!(idx.find(&key(19_999)).unwrap(), Some(val(19_999).to_vec()));
}

/// A filter that blocks at its first call until `open` is called.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<(bool, bool)>, Condvar)>);

impl Gate {
    fn pass(&self) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        g.0 = true;
        cv.notify_all();
        while !g.1 {
            g = cv.wait(g).unwrap();
        }
    }
    fn wait_reached(&self) {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        while !g.0 {
            g = cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        let (m, cv) = &*self.0;
        m.lock().unwrap().1 = true;
        cv.notify_all();
    }
}

#[test]
fn async_gc_runs_in_the_background_and_reports_once() {
    let dir = tempfile::tempdir().unwrap();
    let idx = filled(dir.path(), 500, false);
    assert!(idx.is_gc_finished());
    let gate = Gate::default();
    let g = gate.clone();
    assert!(
        idx.gc(
            move |k, _| {
                g.pass();
                num(k) < 100
            },
            false
        )
        .unwrap()
    );
    gate.wait_reached();
    assert!(!idx.is_gc_finished());
    assert!(idx.is_merging());
    // A second request while one runs is ignored, as in Octez.
    assert!(!idx.gc(|_, _| false, false).unwrap());
    // Writes go on meanwhile, and are kept.
    idx.add(&key(900), &val(900), true).unwrap();
    assert_eq!(idx.find(&key(400)).unwrap(), Some(val(400).to_vec()));
    gate.open();
    idx.await_gc().unwrap();
    assert!(idx.is_gc_finished());
    let mut want: Vec<u64> = (0..100).collect();
    want.push(900);
    assert_eq!(keys_of(&idx), want);
    assert_eq!(idx.len(), 101);
    // A synchronous GC returns once done.
    assert!(idx.gc(|k, _| num(k) % 2 == 0, true).unwrap());
    assert_eq!(idx.len(), 51);
}

#[test]
fn a_cancelled_gc_leaves_the_index_as_it_was_and_a_later_gc_works() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(filled(dir.path(), 10_000, true));
    let before = keys_of(&idx);
    let gate = Gate::default();
    let g = gate.clone();
    assert!(
        idx.gc(
            move |_, _| {
                g.pass();
                false
            },
            false
        )
        .unwrap()
    );
    gate.wait_reached();
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            gate.open();
        })
    };
    assert!(idx.cancel_gc().unwrap(), "the GC was running");
    opener.join().unwrap();
    assert!(idx.is_gc_finished());
    idx.await_gc().unwrap();
    assert_eq!(keys_of(&idx), before);
    assert_eq!(idx.len(), 10_000);
    assert!(!idx.cancel_gc().unwrap(), "nothing runs");
    // What the GC froze is merged later, as in any merge.
    idx.add(&key(20_000), &val(20_000), true).unwrap();
    idx.await_merge().unwrap();
    assert!(idx.gc(|k, _| num(k) > 9_990, true).unwrap());
    assert_eq!(
        keys_of(&idx),
        vec![
            9_991, 9_992, 9_993, 9_994, 9_995, 9_996, 9_997, 9_998, 9_999, 20_000
        ]
    );
    let idx = Arc::try_unwrap(idx).unwrap();
    idx.close().unwrap();
    let idx = Index::open(dir.path(), cfg(true, 100)).unwrap();
    assert_eq!(idx.len(), 10);
}

#[test]
fn a_panicking_filter_fails_the_gc_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let idx = filled(dir.path(), 300, false);
    assert!(
        idx.gc(
            |k, _| if num(k) == 150 {
                panic!("filter bug")
            } else {
                true
            },
            false
        )
        .unwrap()
    );
    let e = idx.await_gc().unwrap_err();
    assert!(
        matches!(e, Error::Panic(ref m) if m.contains("filter bug")),
        "{e}"
    );
    // Reported once.
    idx.await_gc().unwrap();
    assert_eq!(idx.len(), 300);
    assert_eq!(keys_of(&idx), (0..300).collect::<Vec<_>>());
    let e = idx.filter(|_, _| panic!("again")).unwrap_err();
    assert!(matches!(e, Error::Panic(_)));
    idx.filter(|k, _| num(k) < 10).unwrap();
    assert_eq!(idx.len(), 10);
    idx.close().unwrap();
}

#[test]
fn a_filter_may_read_its_index_but_not_write_or_wait_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(filled(dir.path(), 200, true));
    let inner = Arc::downgrade(&idx);
    let refused = Arc::new(AtomicU64::new(0));
    let r = refused.clone();
    idx.filter(move |k, v| {
        let idx = inner.upgrade().unwrap();
        // Reads are fine.
        assert_eq!(idx.find(k).unwrap().as_deref(), Some(v));
        assert!(idx.mem(k).unwrap());
        // Writes and waits are refused, not deadlocked.
        for e in [
            idx.add(k, v, false).unwrap_err(),
            idx.remove(k, false).unwrap_err(),
            idx.flush().unwrap_err(),
            idx.filter(|_, _| true).unwrap_err(),
            idx.gc(|_, _| true, false).unwrap_err(),
            idx.await_gc().unwrap_err(),
            idx.cancel_gc().unwrap_err(),
            idx.clear().unwrap_err(),
            idx.try_merge().unwrap_err(),
            idx.await_merge().unwrap_err(),
        ] {
            assert!(
                matches!(e, Error::InvalidArgument(ref m) if m.contains("own GC filter")),
                "{e}"
            );
            r.fetch_add(1, Ordering::Relaxed);
        }
        num(k) % 2 == 0
    })
    .unwrap();
    assert_eq!(refused.load(Ordering::Relaxed), 200 * 10);
    assert_eq!(idx.len(), 100);
}

#[test]
fn readers_see_the_old_or_the_new_bindings_never_a_mix() {
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let idx = Arc::new(filled(dir.path(), N, false));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (idx, stop) = (idx.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut filtered = false;
                let mut k = r;
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k = (k * 7919 + 13) % N;
                    let got = idx.find(&key(k)).unwrap();
                    reads += 1;
                    if k % 2 == 0 {
                        assert_eq!(got, Some(val(k).to_vec()), "kept key {k}");
                    } else if got.is_none() {
                        filtered = true;
                    } else {
                        assert!(!filtered, "odd key {k} back after the filter was seen");
                        assert_eq!(got, Some(val(k).to_vec()));
                    }
                    // A snapshot is the whole old set or the whole new one.
                    if reads % 2_000 == 0 {
                        let n = idx.iter().unwrap().count() as u64;
                        let len = idx.len();
                        assert!(n == N || n == N / 2, "snapshot of {n} bindings");
                        assert!(len == N || len == N / 2, "len {len}");
                    }
                }
                reads
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    idx.filter(|k, _| num(k) % 2 == 0).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(idx.len(), N / 2);
}

#[test]
fn a_read_only_handle_syncing_during_a_filter_sees_the_old_or_the_new_bindings() {
    const N: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let idx = filled(dir.path(), N, true);
    let ro = Index::open(dir.path(), {
        let mut c = cfg(true, 100);
        c.open = OpenOptions::read_only();
        c
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen_filtered = false;
            let mut syncs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ro.sync().unwrap();
                syncs += 1;
                let ks: Vec<u64> = ro.iter().unwrap().map(|r| num(&r.unwrap().0)).collect();
                let n = ks.len() as u64;
                assert!(n == N || n == N / 2, "a read-only snapshot of {n} bindings");
                assert_eq!(ro.len(), n);
                if n == N / 2 {
                    assert!(ks.iter().all(|k| k % 2 == 0));
                    seen_filtered = true;
                } else {
                    assert!(!seen_filtered, "the old bindings came back");
                }
            }
            ro.sync().unwrap();
            assert_eq!(ro.len(), N / 2);
            syncs
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    idx.filter(|k, _| num(k) % 2 == 0).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stop.store(true, Ordering::Relaxed);
    assert!(follower.join().unwrap() > 0);
}

#[test]
fn a_filter_may_run_another_index_gc_whose_filter_still_cannot_wait_on_the_first() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Arc::new(filled(da.path(), 20, false));
    let b = Arc::new(filled(db.path(), 20, false));
    let (wa, bb) = (Arc::downgrade(&a), b.clone());
    let answers = Arc::new(AtomicU64::new(0));
    let r = answers.clone();
    a.filter(move |k, _| {
        if num(k) == 0 {
            let (wa, r) = (wa.clone(), r.clone());
            bb.filter(move |kb, vb| {
                let a = wa.upgrade().unwrap();
                // b's filter runs on this thread, still inside a's GC
                // (writing to a is then refused, not deadlocked), or on
                // another worker (where the write goes through).
                match a.add(kb, vb, false) {
                    Err(Error::InvalidArgument(m)) => assert!(m.contains("own GC filter"), "{m}"),
                    other => other.unwrap(),
                }
                r.fetch_add(1, Ordering::Relaxed);
                num(kb) < 5
            })
            .unwrap();
        }
        num(k) < 10
    })
    .unwrap();
    assert_eq!(answers.load(Ordering::Relaxed), 20);
    assert_eq!(b.len(), 5);
    assert!(a.len() >= 10);
    // Out of both GCs, writes work again on this thread.
    a.add(&key(100), &val(100), true).unwrap();
}
