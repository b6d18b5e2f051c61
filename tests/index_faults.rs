//! Index under injected I/O faults (ENOSPC on writes, EIO on fsync): errors
//! are reported (merge failures by the next call), never a lost or wrong
//! binding once the fault clears.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tzstore::index::{Index, IndexConfig};
use tzstore::io::fault::{FaultFs, Faults};
use tzstore::{Error, OpenOptions};

fn cfg(faults: Option<Arc<Faults>>) -> IndexConfig {
    let open = match faults {
        Some(f) => OpenOptions::default().with_fs(Arc::new(FaultFs::new(f))),
        None => OpenOptions::default().no_fsync(),
    };
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable: false,
        log_size: 20,
        open,
    }
}

#[test]
fn no_space_on_flush_is_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::none();
    let ix = Index::open(dir.path(), cfg(Some(faults.clone()))).unwrap();
    ix.add(&1u64.to_le_bytes(), &[1; 8], true).unwrap();
    faults.write_budget.store(0, Ordering::SeqCst);
    assert!(matches!(
        ix.add(&2u64.to_le_bytes(), &[2; 8], true),
        Err(Error::NoSpace(_))
    ));
    assert!(matches!(ix.flush(), Err(Error::NoSpace(_))));
    faults.write_budget.store(u64::MAX, Ordering::SeqCst);
    ix.flush().unwrap();
    drop(ix);
    let ix = Index::open(dir.path(), cfg(None)).unwrap();
    assert_eq!(ix.find(&1u64.to_le_bytes()).unwrap(), Some(vec![1; 8]));
    assert_eq!(ix.find(&2u64.to_le_bytes()).unwrap(), Some(vec![2; 8]));
}

#[test]
fn failed_merges_are_reported_then_retried() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::none();
    let ix = Index::open(dir.path(), cfg(Some(faults.clone()))).unwrap();
    let mut model = HashMap::new();
    let mut errors = 0;
    faults.fail_sync.store(true, Ordering::SeqCst);
    for i in 0..200u64 {
        match ix.add(&(i % 70).to_le_bytes(), &i.to_le_bytes(), false) {
            Ok(()) => {
                model.insert(i % 70, i);
            }
            Err(Error::Io(m)) => {
                assert!(m.contains("fsync"), "{m}");
                errors += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(errors > 0, "the failing fsync was never reported");
    // Drain every pending failure (a start failure, then the running merge).
    let mut drained = 0;
    while ix.await_merge().is_err() {
        drained += 1;
        assert!(drained < 10);
    }
    faults.fail_sync.store(false, Ordering::SeqCst);
    for i in 200..260u64 {
        ix.add(&(i % 70).to_le_bytes(), &i.to_le_bytes(), false)
            .unwrap();
        model.insert(i % 70, i);
    }
    ix.await_merge().unwrap();
    ix.close().unwrap();
    let ix = Index::open(dir.path(), cfg(None)).unwrap();
    assert_eq!(ix.len(), model.len() as u64);
    for (k, v) in model {
        assert_eq!(
            ix.find(&k.to_le_bytes()).unwrap(),
            Some(v.to_le_bytes().to_vec())
        );
    }
}

/// Merges that fail leave several unmerged logs; after a reopen (no
/// faults) they are replayed, frozen together at the next merge and every
/// binding survives, read during the merge and after.
#[test]
fn logs_left_by_failed_merges_are_merged_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::none();
    let ix = Index::open(dir.path(), cfg(Some(faults.clone()))).unwrap();
    let mut model = HashMap::new();
    faults.fail_sync.store(true, Ordering::SeqCst);
    for i in 0..300u64 {
        if ix
            .add(&(i % 90).to_le_bytes(), &i.to_le_bytes(), false)
            .is_ok()
        {
            model.insert(i % 90, i);
        }
    }
    while ix.await_merge().is_err() {}
    ix.write_out().unwrap();
    drop(ix);
    let logs = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("log.")
            })
            .count()
    };
    assert!(logs() >= 2, "the failed merges left {} logs", logs());

    let ix = Index::open(dir.path(), cfg(None)).unwrap();
    let check = |ix: &Index, model: &HashMap<u64, u64>| {
        assert_eq!(ix.len(), model.len() as u64);
        for (k, v) in model {
            assert_eq!(
                ix.find(&k.to_le_bytes()).unwrap(),
                Some(v.to_le_bytes().to_vec()),
                "key {k}"
            );
        }
    };
    check(&ix, &model);
    for i in 300..400u64 {
        ix.add(&(i % 120).to_le_bytes(), &i.to_le_bytes(), false)
            .unwrap();
        model.insert(i % 120, i);
        check(&ix, &model);
    }
    ix.await_merge().unwrap();
    check(&ix, &model);
    ix.close().unwrap();
    let ix = Index::open(dir.path(), cfg(None)).unwrap();
    check(&ix, &model);
    drop(ix);
    assert_eq!(logs(), 1);
}
