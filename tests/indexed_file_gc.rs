//! Octez-style GC of an indexed file: a filter that sees key and header,
//! run in the background or waited for; is_gc_finished, await_gc,
//! cancel_gc (the store left as before, a later GC working); a panicking
//! filter; a filter calling back into its store; readers during a GC.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::{Error, OpenOptions};

fn cfg() -> IndexedFileConfig {
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value: false,
        log_size: 64,
        open: OpenOptions::default().no_fsync(),
    }
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn num(k: &[u8]) -> u64 {
    u64::from_be_bytes(k.try_into().unwrap())
}

fn header(i: u64) -> [u8; 4] {
    (i as u32 * 7).to_be_bytes()
}

fn value(i: u64) -> Vec<u8> {
    vec![i as u8; 10 + (i % 30) as usize]
}

fn filled(dir: &std::path::Path, n: u64) -> IndexedFile {
    let f = IndexedFile::open(dir, cfg()).unwrap();
    for i in 0..n {
        f.append(&key(i), Some(&header(i)), &value(i), false)
            .unwrap();
    }
    f.flush().unwrap();
    f
}

fn keys(f: &IndexedFile) -> Vec<u64> {
    let mut ks: Vec<u64> = f.keys().unwrap().iter().map(|k| num(k)).collect();
    ks.sort_unstable();
    ks
}

/// Blocks the filter at its first call until opened.
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
fn the_filter_sees_key_and_header_and_runs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let f = filled(dir.path(), 300);
    assert!(f.is_gc_finished());
    let gate = Gate::default();
    let g = gate.clone();
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    assert!(
        f.gc_filter(
            move |k, h| {
                g.pass();
                c.fetch_add(1, Ordering::Relaxed);
                assert_eq!(h, header(num(k)));
                // Keep by header, as a node keeping recent levels would.
                u32::from_be_bytes(h.try_into().unwrap()) < 7 * 100
            },
            false
        )
        .unwrap()
    );
    gate.wait_reached();
    assert!(!f.is_gc_finished());
    // Another request while one runs is ignored, as in Octez.
    assert!(!f.gc_filter(|_, _| false, false).unwrap());
    // Appends go on, and are kept.
    f.append(&key(1000), Some(&header(1000)), &value(1000), true)
        .unwrap();
    assert_eq!(f.read(&key(250)).unwrap().unwrap().0, value(250));
    gate.open();
    f.await_gc().unwrap();
    assert!(f.is_gc_finished());
    assert_eq!(calls.load(Ordering::Relaxed), 300);
    let mut want: Vec<u64> = (0..100).collect();
    want.push(1000);
    assert_eq!(keys(&f), want);
    // Waited for, it returns once the store switched.
    assert!(f.gc_filter(|k, _| num(k) % 2 == 0, true).unwrap());
    assert_eq!(f.len(), 51);
    drop(f);
    let f = IndexedFile::open(dir.path(), cfg()).unwrap();
    assert_eq!(f.len(), 51);
    assert_eq!(f.read(&key(1000)).unwrap().unwrap().0, value(1000));
    // The key-only GC (and its C function) keeps working.
    f.gc(|k| num(k) < 10).unwrap();
    f.await_gc().unwrap();
    assert_eq!(f.len(), 5);
}

#[test]
fn a_cancelled_gc_leaves_the_store_as_it_was_and_a_later_gc_works() {
    let dir = tempfile::tempdir().unwrap();
    let f = filled(dir.path(), 500);
    let gens = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("gen.")
            })
            .count()
    };
    let gate = Gate::default();
    let g = gate.clone();
    assert!(
        f.gc_filter(
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
    assert!(f.cancel_gc().unwrap());
    opener.join().unwrap();
    assert!(f.is_gc_finished());
    f.await_gc().unwrap();
    assert_eq!(keys(&f), (0..500).collect::<Vec<_>>());
    assert_eq!(gens(), 1, "the generation being filled is removed");
    assert!(!f.cancel_gc().unwrap());
    assert!(f.gc_filter(|k, _| num(k) >= 490, true).unwrap());
    assert_eq!(keys(&f), (490..500).collect::<Vec<_>>());
    assert_eq!(gens(), 1);
}

#[test]
fn a_panicking_filter_fails_the_gc_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = filled(dir.path(), 100);
    assert!(
        f.gc_filter(
            |k, _| if num(k) == 50 {
                panic!("filter bug")
            } else {
                true
            },
            false
        )
        .unwrap()
    );
    let e = f.await_gc().unwrap_err();
    assert!(
        matches!(e, Error::Panic(ref m) if m.contains("filter bug")),
        "{e}"
    );
    f.await_gc().unwrap();
    assert_eq!(f.len(), 100);
    let e = f.gc_filter(|_, _| panic!("again"), true).unwrap_err();
    assert!(matches!(e, Error::Panic(_)), "{e}");
    assert!(f.gc_filter(|k, _| num(k) < 3, true).unwrap());
    assert_eq!(keys(&f), vec![0, 1, 2]);
}

#[test]
fn a_filter_may_read_and_append_but_not_wait_for_its_gc() {
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(filled(dir.path(), 50));
    let weak = Arc::downgrade(&f);
    let refused = Arc::new(AtomicU64::new(0));
    let r = refused.clone();
    assert!(
        f.gc_filter(
            move |k, h| {
                let f = weak.upgrade().unwrap();
                assert_eq!(f.read(k).unwrap().unwrap().1, h);
                if num(k) == 0 {
                    f.append(&key(77_777), Some(&header(1)), b"from the filter", false)
                        .unwrap();
                }
                for e in [
                    f.await_gc().unwrap_err(),
                    f.cancel_gc().unwrap_err(),
                    f.gc_filter(|_, _| true, true).unwrap_err(),
                ] {
                    assert!(
                        matches!(e, Error::InvalidArgument(ref m) if m.contains("own GC filter")),
                        "{e}"
                    );
                    r.fetch_add(1, Ordering::Relaxed);
                }
                num(k) < 10
            },
            true
        )
        .unwrap()
    );
    assert_eq!(refused.load(Ordering::Relaxed), 150);
    let mut want: Vec<u64> = (0..10).collect();
    want.push(77_777);
    assert_eq!(keys(&f), want);
}

#[test]
fn readers_during_a_gc_see_the_old_or_the_new_store() {
    const N: u64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(filled(dir.path(), N));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut k, mut reads, mut gone) = (r, 0u64, false);
                while !stop.load(Ordering::Relaxed) {
                    k = (k * 7919 + 13) % N;
                    let got = f.read(&key(k)).unwrap();
                    reads += 1;
                    match got {
                        Some((v, h)) => {
                            assert_eq!((v, h), (value(k), header(k).to_vec()));
                            assert!(k % 2 == 0 || !gone, "odd key {k} back after the switch");
                        }
                        None => {
                            assert!(k % 2 == 1, "kept key {k} missing");
                            gone = true;
                        }
                    }
                }
                reads
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    assert!(f.gc_filter(|k, _| num(k) % 2 == 0, true).unwrap());
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(f.len(), N / 2);
}
