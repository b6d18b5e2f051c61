//! Singleton store behaviour: values, absence, read-only handles, locking,
//! corruption detection, concurrent readers, crash safety, injected faults.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tzstore::io::fault::{FaultFs, Faults};
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions};

fn rw() -> OpenOptions {
    OpenOptions::read_write()
}

#[test]
fn unset_then_write_read_delete_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("head");
    let s = Singleton::open(&p, &rw()).unwrap();
    assert_eq!(s.read(), None);
    s.write(b"block-42").unwrap();
    assert_eq!(s.read().as_deref(), Some(&b"block-42"[..]));
    s.write(b"").unwrap();
    assert_eq!(s.read().as_deref(), Some(&b""[..]));
    s.write(b"block-43").unwrap();
    drop(s);
    let s = Singleton::open(&p, &rw()).unwrap();
    assert_eq!(s.read().as_deref(), Some(&b"block-43"[..]));
    s.delete().unwrap();
    assert_eq!(s.read(), None);
    s.delete().unwrap();
    drop(s);
    let s = Singleton::open(&p, &rw()).unwrap();
    assert_eq!(s.read(), None);
}

#[test]
fn read_only_handles_refuse_writes_and_see_updates_after_sync() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v");
    let w = Singleton::open(&p, &rw()).unwrap();
    w.write(b"one").unwrap();
    let r = Singleton::open(&p, &OpenOptions::read_only()).unwrap();
    assert!(r.is_read_only());
    assert_eq!(r.read().as_deref(), Some(&b"one"[..]));
    assert!(matches!(r.write(b"x"), Err(Error::ReadOnly(_))));
    assert!(matches!(r.delete(), Err(Error::ReadOnly(_))));
    w.write(b"two").unwrap();
    assert_eq!(r.read().as_deref(), Some(&b"one"[..]));
    r.sync().unwrap();
    assert_eq!(r.read().as_deref(), Some(&b"two"[..]));
    w.delete().unwrap();
    r.sync().unwrap();
    assert_eq!(r.read(), None);
}

#[test]
fn second_read_write_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v");
    let first = Singleton::open(&p, &rw()).unwrap();
    match Singleton::open(&p, &rw()) {
        Err(Error::Locked(m)) => assert!(m.contains("v.lock"), "{m}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Read-only opens take no lock.
    Singleton::open(&p, &OpenOptions::read_only()).unwrap();
    drop(first);
    Singleton::open(&p, &rw()).unwrap();
}

#[test]
fn bad_paths_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Singleton::open(dir.path().join("missing/v"), &rw()),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        Singleton::open(dir.path(), &rw()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn damaged_files_are_corrupted_never_a_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v");
    Singleton::open(&p, &rw())
        .unwrap()
        .write(b"precious value")
        .unwrap();
    let good = std::fs::read(&p).unwrap();
    // Every single-bit flip anywhere in the file is detected.
    for i in 0..good.len() {
        for bit in [0u8, 3, 7] {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            std::fs::write(&p, &bad).unwrap();
            match Singleton::open(&p, &OpenOptions::read_only()) {
                Err(Error::Corrupted(m)) => assert!(m.contains(&*p.to_string_lossy())),
                other => panic!("flip at byte {i} bit {bit}: {other:?}"),
            }
        }
    }
    // Truncations and extensions too.
    for len in 0..good.len() {
        std::fs::write(&p, &good[..len]).unwrap();
        assert!(matches!(
            Singleton::open(&p, &OpenOptions::read_only()),
            Err(Error::Corrupted(_))
        ));
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&p, &longer).unwrap();
    assert!(matches!(
        Singleton::open(&p, &OpenOptions::read_only()),
        Err(Error::Corrupted(_))
    ));
    // A read-only handle keeps its value when sync finds damage.
    std::fs::write(&p, &good).unwrap();
    let r = Singleton::open(&p, &OpenOptions::read_only()).unwrap();
    std::fs::write(&p, &good[..5]).unwrap();
    assert!(matches!(r.sync(), Err(Error::Corrupted(_))));
    assert_eq!(r.read().as_deref(), Some(&b"precious value"[..]));
}

/// A value that proves it is whole: `n` repeated, length derived from `n`.
fn patterned(n: u64) -> Vec<u8> {
    let len = 16 + (n % 97) as usize * 8;
    n.to_be_bytes().iter().copied().cycle().take(len).collect()
}

fn is_patterned(v: &[u8]) -> Option<u64> {
    if v.len() < 8 {
        return None;
    }
    let n = u64::from_be_bytes(v[..8].try_into().unwrap());
    (patterned(n) == v).then_some(n)
}

#[test]
fn concurrent_reader_sees_only_whole_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Singleton::open(dir.path().join("v"), &rw().no_fsync()).unwrap());
    s.write(&patterned(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut reads, mut last) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let v = s.read().expect("value always set");
                let n = is_patterned(&v).expect("whole value");
                assert!(n >= last, "values go forward: {n} after {last}");
                last = n;
                reads += 1;
            }
            reads
        })
    };
    for n in 1..=10_000u64 {
        s.write(&patterned(n)).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(is_patterned(&s.read().unwrap()), Some(10_000));
}

#[test]
fn no_space_keeps_the_previous_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v");
    let faults = Faults::none();
    let opts = rw().with_fs(Arc::new(FaultFs::new(faults.clone())));
    let s = Singleton::open(&p, &opts).unwrap();
    s.write(b"old").unwrap();
    faults.write_budget.store(4, Ordering::SeqCst);
    assert!(matches!(
        s.write(b"a much longer new value"),
        Err(Error::NoSpace(_))
    ));
    assert_eq!(s.read().as_deref(), Some(&b"old"[..]));
    faults.write_budget.store(u64::MAX, Ordering::SeqCst);
    faults.fail_sync.store(true, Ordering::SeqCst);
    assert!(matches!(s.write(b"new"), Err(Error::Io(_))));
    assert_eq!(s.read().as_deref(), Some(&b"old"[..]));
    drop(s);
    let s = Singleton::open(&p, &rw()).unwrap();
    assert_eq!(s.read().as_deref(), Some(&b"old"[..]));
}

const CRASH_CHILD: &str = "crash_child_writer";

/// Child role: writes patterned values forever, until killed.
#[test]
fn crash_child_writer() {
    if !common::is_child(CRASH_CHILD) {
        return;
    }
    let path = std::env::var("TZS_SINGLETON_PATH").unwrap();
    let start: u64 = std::env::var("TZS_SINGLETON_START")
        .unwrap()
        .parse()
        .unwrap();
    let s = Singleton::open(&path, &rw()).unwrap();
    for n in start.. {
        s.write(&patterned(n)).unwrap();
    }
}

#[test]
fn sigkill_during_writes_leaves_a_written_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let mut rng = common::Rng::new(0x5eed);
    let mut floor = 1u64;
    for round in 0..25 {
        let mut child = common::spawn_child(
            CRASH_CHILD,
            &[
                ("TZS_SINGLETON_PATH", path.display().to_string()),
                ("TZS_SINGLETON_START", floor.to_string()),
            ],
        );
        std::thread::sleep(Duration::from_millis(20 + rng.below(60)));
        common::kill9(&mut child);
        let s = Singleton::open(&path, &rw()).expect("reopen after SIGKILL");
        if let Some(v) = s.read() {
            let n = is_patterned(&v).unwrap_or_else(|| panic!("round {round}: torn value"));
            assert!(
                n >= floor.saturating_sub(1),
                "round {round}: value went back"
            );
            floor = n + 1;
        }
    }
    assert!(floor > 1, "the child never completed a write");
}
