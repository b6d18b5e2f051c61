//! Index engine: basic behaviour, merges, reopen, read-only instances, bad input.

use std::fs;

use tzstore::index::{Index, IndexConfig};
use tzstore::{Error, OpenOptions};

fn cfg(k: usize, v: usize, log_size: u64) -> IndexConfig {
    IndexConfig {
        key_size: k,
        value_size: v,
        removable: false,
        log_size,
        open: OpenOptions::default().no_fsync(),
    }
}

fn key(i: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_le_bytes());
    k[31] = 7;
    k
}

#[test]
fn add_find_replace_across_merges_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Index::open(dir.path(), cfg(32, 8, 100)).unwrap();
    assert!(ix.is_empty());
    for i in 0..1000u32 {
        ix.add(&key(i), &u64::from(i).to_le_bytes(), false).unwrap();
    }
    for i in 0..1000u32 {
        if i % 3 == 0 {
            ix.add(&key(i), &(u64::from(i) + 1_000_000).to_le_bytes(), false)
                .unwrap();
        }
    }
    ix.await_merge().unwrap();
    assert_eq!(ix.len(), 1000);
    let check = |ix: &Index| {
        for i in 0..1000u32 {
            let want = if i % 3 == 0 {
                u64::from(i) + 1_000_000
            } else {
                u64::from(i)
            };
            assert_eq!(
                ix.find(&key(i)).unwrap(),
                Some(want.to_le_bytes().to_vec()),
                "key {i}"
            );
        }
        assert_eq!(ix.find(&key(5000)).unwrap(), None);
        assert!(!ix.mem(&key(5000)).unwrap());
        let mut all: Vec<_> = ix.iter().unwrap().map(|r| r.unwrap()).collect();
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        assert_eq!(all.len(), 1000);
    };
    check(&ix);
    ix.close().unwrap();
    let ix = Index::open(dir.path(), cfg(32, 8, 100)).unwrap();
    assert_eq!(ix.len(), 1000);
    check(&ix);
    assert!(fs::read_dir(dir.path()).unwrap().count() <= 6);
}

#[test]
fn removable_tombstones_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(4, 2, 10);
    c.removable = true;
    let ix = Index::open(dir.path(), c.clone()).unwrap();
    for i in 0..100u32 {
        ix.add(&i.to_le_bytes(), &[i as u8, 1], false).unwrap();
    }
    for i in (0..100u32).step_by(2) {
        ix.remove(&i.to_le_bytes(), false).unwrap();
    }
    ix.remove(&1000u32.to_le_bytes(), true).unwrap();
    ix.await_merge().unwrap();
    assert_eq!(ix.len(), 50);
    for i in 0..100u32 {
        assert_eq!(ix.mem(&i.to_le_bytes()).unwrap(), i % 2 == 1, "{i}");
    }
    assert_eq!(ix.iter().unwrap().count(), 50);
    drop(ix);
    let ix = Index::open(dir.path(), c).unwrap();
    assert_eq!(ix.len(), 50);
    assert_eq!(ix.find(&3u32.to_le_bytes()).unwrap(), Some(vec![3, 1]));
    assert_eq!(ix.find(&4u32.to_le_bytes()).unwrap(), None);
}

#[test]
fn read_only_instance_sees_flushed_data_after_sync() {
    let dir = tempfile::tempdir().unwrap();
    let rw = Index::open(dir.path(), cfg(32, 8, 50)).unwrap();
    rw.add(&key(1), &[1; 8], true).unwrap();
    let mut ro_cfg = cfg(32, 8, 50);
    ro_cfg.open.read_only = true;
    let ro = Index::open(dir.path(), ro_cfg).unwrap();
    assert!(ro.mem(&key(1)).unwrap());
    assert!(matches!(
        ro.add(&key(2), &[0; 8], false),
        Err(Error::ReadOnly(_))
    ));
    for i in 2..500u32 {
        rw.add(&key(i), &[i as u8; 8], false).unwrap();
        if i % 37 == 0 {
            rw.flush().unwrap();
            ro.sync().unwrap();
            assert!(ro.mem(&key(i)).unwrap(), "{i}");
        }
    }
    rw.flush().unwrap();
    rw.await_merge().unwrap();
    ro.sync().unwrap();
    assert_eq!(ro.len(), 499);
    for i in 1..500u32 {
        assert!(ro.mem(&key(i)).unwrap(), "{i}");
    }
}

#[test]
fn bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Index::open(dir.path(), cfg(32, 8, 0)).unwrap();
    assert!(matches!(
        ix.add(&[0; 31], &[0; 8], false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ix.add(&[0; 32], &[0; 9], false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(ix.find(&[0; 33]), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        ix.find_into(&[0; 32], &mut [0; 7]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ix.remove(&[0; 32], false),
        Err(Error::InvalidArgument(_))
    ));
    match Index::open(dir.path(), cfg(32, 8, 0)) {
        Err(Error::Locked(m)) => assert!(m.contains("lock"), "{m}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(ix);
    assert!(matches!(
        Index::open(dir.path(), cfg(32, 9, 0)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Index::open(dir.path(), cfg(0, 9, 0)),
        Err(Error::InvalidArgument(_))
    ));
    let mut ro = cfg(32, 8, 0);
    ro.open.read_only = true;
    assert!(matches!(
        Index::open(dir.path().join("missing"), ro),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn damaged_files_are_detected_or_cut() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Index::open(dir.path(), cfg(32, 8, 100)).unwrap();
    for i in 0..150u32 {
        ix.add(&key(i), &[i as u8; 8], false).unwrap();
    }
    ix.close().unwrap();
    // A log cut after a clean close is damage, not a torn tail: its
    // synced-end slot names its whole length. Nothing is cut.
    let logs: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("log."))
        .collect();
    assert_eq!(logs.len(), 1);
    let whole = fs::read(&logs[0]).unwrap();
    fs::write(&logs[0], &whole[..whole.len() - 5]).unwrap();
    match Index::open(dir.path(), cfg(32, 8, 100)) {
        Err(Error::Corrupted(m)) => assert!(m.contains("fsynced"), "{m}"),
        other => panic!("expected Corrupted, got {other:?}"),
    }
    assert_eq!(
        fs::metadata(&logs[0]).unwrap().len(),
        whole.len() as u64 - 5
    );
    fs::write(&logs[0], &whole).unwrap();
    let ix = Index::open(dir.path(), cfg(32, 8, 100)).unwrap();
    assert_eq!(ix.len(), 150);
    drop(ix);
    // A flipped bit in the data file is reported, never a wrong value.
    let data = dir.path().join("data");
    let mut bytes = fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x10;
    fs::write(&data, &bytes).unwrap();
    assert!(matches!(
        Index::open(dir.path(), cfg(32, 8, 100)),
        Err(Error::Corrupted(_))
    ));
    // A truncated data file too.
    bytes[n - 3] ^= 0x10;
    fs::write(&data, &bytes[..n - 40]).unwrap();
    assert!(matches!(
        Index::open(dir.path(), cfg(32, 8, 100)),
        Err(Error::Corrupted(_))
    ));
    fs::write(&data, &bytes).unwrap();
    assert_eq!(Index::open(dir.path(), cfg(32, 8, 100)).unwrap().len(), 150);
}
