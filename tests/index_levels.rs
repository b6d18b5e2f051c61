//! The two merged levels of an index (`data`, the base, and `delta` above
//! it; src/index/levels.rs): bindings, removals and replacements stay
//! exact through delta merges and base merges, across reopens, in read-only
//! instances that sync while the writer merges, through a filter; a delta
//! whose base is gone is refused, and check with repair keeps its entries.

use std::collections::HashMap;
use std::path::Path;

use tzstore::index::{Index, IndexConfig};
use tzstore::{Error, OpenOptions};

const LOG_SIZE: u64 = 40;

fn cfg(read_only: bool) -> IndexConfig {
    let mut open = OpenOptions::read_write().no_fsync();
    open.read_only = read_only;
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable: true,
        log_size: LOG_SIZE,
        open,
    }
}

fn key(k: u64) -> [u8; 8] {
    k.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()
}

/// The `(generation, base generation)` of the delta file, if any (80-byte
/// header: generation at 24, base generation at 60).
fn delta_header(dir: &Path) -> Option<(u64, u64)> {
    let b = std::fs::read(dir.join("delta")).ok()?;
    let at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    Some((at(24), at(60)))
}

fn data_generation(dir: &Path) -> u64 {
    let b = std::fs::read(dir.join("data")).unwrap();
    u64::from_le_bytes(b[24..32].try_into().unwrap())
}

/// Every key of `0..keys` reads as the model says, iteration gives the
/// model exactly, and `len` agrees.
fn assert_model(ix: &Index, model: &HashMap<u64, u64>, keys: u64, what: &str) {
    for k in 0..keys {
        let want = model.get(&k).map(|v| v.to_le_bytes().to_vec());
        assert_eq!(ix.find(&key(k)).unwrap(), want, "{what}: key {k}");
    }
    let by_key: HashMap<[u8; 8], u64> = (0..keys).map(|k| (key(k), k)).collect();
    let mut seen = HashMap::new();
    for item in ix.iter().unwrap() {
        let (k, v) = item.unwrap();
        let k = by_key[&<[u8; 8]>::try_from(&k[..]).unwrap()];
        assert!(
            seen.insert(k, u64::from_le_bytes(v.try_into().unwrap()))
                .is_none(),
            "{what}: {k} twice"
        );
    }
    assert_eq!(&seen, model, "{what}: iteration");
    assert_eq!(ix.len(), model.len() as u64, "{what}: len");
}

/// Adds, rebinds and removes through many merges; records what the
/// files went through: deltas written on a base, and base merges that
/// folded a delta in.
#[test]
fn bindings_stay_exact_through_delta_and_base_merges() {
    let dir = tempfile::tempdir().unwrap();
    let keys = 3_000;
    let mut model = HashMap::new();
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    let ro = Index::open(dir.path(), cfg(true)).unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut deltas, mut folded) = (0, 0);
    let mut last_delta = None;
    for round in 0..60u64 {
        for i in 0..100u64 {
            let k = next() % keys;
            if next() % 5 == 0 {
                ix.remove(&key(k), false).unwrap();
                model.remove(&k);
            } else {
                let v = round * 1000 + i;
                ix.add(&key(k), &v.to_le_bytes(), false).unwrap();
                model.insert(k, v);
            }
        }
        ix.flush().unwrap();
        ix.await_merge().unwrap();
        let delta = delta_header(dir.path());
        if let Some((g, on)) = delta {
            // A delta is always written on the base that is there.
            assert_eq!(on, data_generation(dir.path()), "round {round}");
            assert!(g > on);
            deltas += u32::from(last_delta != delta);
        } else if last_delta.is_some() {
            folded += 1;
        }
        last_delta = delta;
        if round % 10 == 9 {
            assert_model(&ix, &model, keys, &format!("round {round}"));
            ro.sync().unwrap();
            assert_model(&ro, &model, keys, &format!("read-only, round {round}"));
        }
    }
    assert!(
        deltas >= 5 && folded >= 2,
        "deltas {deltas}, base merges folding one {folded}"
    );
    ix.close().unwrap();
    assert_model(
        &Index::open(dir.path(), cfg(true)).unwrap(),
        &model,
        keys,
        "read-only reopen",
    );
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    assert_model(&ix, &model, keys, "reopen");
    // A filter folds the delta into one base.
    ix.add(&key(1), &7u64.to_le_bytes(), false).unwrap();
    model.insert(1, 7);
    ix.filter(|_, v| u64::from_le_bytes(v.try_into().unwrap()) % 2 == 1)
        .unwrap();
    model.retain(|_, v| *v % 2 == 1);
    assert_model(&ix, &model, keys, "after a filter");
    assert!(
        delta_header(dir.path()).is_none(),
        "a filter leaves no delta"
    );
    ix.close().unwrap();
    assert_model(
        &Index::open(dir.path(), cfg(false)).unwrap(),
        &model,
        keys,
        "reopen after a filter",
    );
}

/// An index whose merges have left a delta on the base.
fn with_delta(dir: &Path) -> HashMap<u64, u64> {
    let ix = Index::open(dir, cfg(false)).unwrap();
    let mut model = HashMap::new();
    for k in 0..400u64 {
        ix.add(&key(k), &k.to_le_bytes(), false).unwrap();
        model.insert(k, k);
        if k % 50 == 49 {
            ix.await_merge().unwrap();
        }
        if delta_header(dir).is_some() && k % 50 == 49 && k > 300 {
            break;
        }
    }
    ix.close().unwrap();
    assert!(delta_header(dir).is_some());
    model
}

#[test]
fn a_delta_whose_base_is_gone_is_refused_and_repair_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let model = with_delta(dir.path());
    let (_, on) = delta_header(dir.path()).unwrap();
    // The base the delta sits on is replaced by nothing.
    std::fs::remove_file(dir.path().join("data")).unwrap();
    for read_only in [false, true] {
        match Index::open(dir.path(), cfg(read_only)) {
            Err(Error::Corrupted(m)) => {
                assert!(
                    m.contains("data") && m.contains(&format!("data generation {on}")),
                    "{m}"
                )
            }
            other => panic!("read_only {read_only}: {other:?}"),
        }
    }
    let opts = cfg(false).open;
    let report = Index::check(dir.path(), &opts, false).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("delta")),
        "{report:?}"
    );
    let repaired = Index::check(dir.path(), &opts, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    assert!(
        repaired
            .repaired
            .iter()
            .any(|r| r.starts_with("delta: ") && r.contains("entries kept in log.")),
        "{repaired:?}"
    );
    assert!(Index::check(dir.path(), &opts, false).unwrap().is_ok());
    // What the delta held is back; what only the lost base held is gone.
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    let kept = (0..400u64)
        .filter(|k| ix.find(&key(*k)).unwrap().is_some())
        .count();
    assert!(kept > 0 && kept < model.len(), "{kept}");
    for k in 0..400u64 {
        if let Some(v) = ix.find(&key(k)).unwrap() {
            assert_eq!(v, model[&k].to_le_bytes().to_vec());
        }
    }
    assert_eq!(ix.len(), kept as u64);
}

#[test]
fn a_stale_delta_left_by_a_crash_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let model = with_delta(dir.path());
    let stale = std::fs::read(dir.path().join("delta")).unwrap();
    // A base merge folds the delta in; a crash before its unlink leaves it.
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    ix.filter(|_, _| true).unwrap();
    ix.close().unwrap();
    assert!(delta_header(dir.path()).is_none());
    std::fs::write(dir.path().join("delta"), &stale).unwrap();
    let ro = Index::open(dir.path(), cfg(true)).unwrap();
    assert_model(&ro, &model, 400, "read-only with a stale delta");
    drop(ro);
    assert!(
        Index::check(dir.path(), &cfg(false).open, false)
            .unwrap()
            .is_ok()
    );
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    assert_model(&ix, &model, 400, "read-write with a stale delta");
    assert!(
        delta_header(dir.path()).is_none(),
        "the read-write open removes it"
    );
}

/// A read-only handle that syncs in a loop while the writer adds, flushes
/// and merges without pause (delta and base merges publishing between any
/// two of the reader's file opens) never reports an error, and after each
/// sync finds every key flushed before it began, with its value.
#[test]
fn a_read_only_handle_syncing_through_merges_never_fails_nor_loses_keys() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const KEYS: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let ix = Index::open(dir.path(), cfg(false)).unwrap();
    ix.add(&key(0), &0u64.to_le_bytes(), false).unwrap();
    ix.flush().unwrap();
    let ro = Index::open(dir.path(), cfg(true)).unwrap();
    // Keys `0..flushed` are flushed with value k + 1 (key 0: value 0).
    let flushed = AtomicU64::new(1);
    let done = AtomicBool::new(false);
    let syncs = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut syncs = 0u64;
            let mut next = 0u64;
            while !done.load(Ordering::Acquire) {
                let before = flushed.load(Ordering::Acquire);
                ro.sync().unwrap();
                syncs += 1;
                // The newest keys (those of the last logs, which a merge
                // may be deleting) and a walk over the rest.
                for k in (before.saturating_sub(150)..before).chain([next % before]) {
                    let want = if k == 0 { 0 } else { k + 1 };
                    assert_eq!(
                        ro.find(&key(k)).unwrap(),
                        Some(want.to_le_bytes().to_vec()),
                        "key {k} of {before} after sync {syncs}"
                    );
                }
                next += 7;
            }
            syncs
        });
        for k in 1..KEYS {
            ix.add(&key(k), &(k + 1).to_le_bytes(), false).unwrap();
            if k % 25 == 0 {
                ix.flush().unwrap();
                flushed.store(k + 1, Ordering::Release);
            }
        }
        ix.flush().unwrap();
        ix.await_merge().unwrap();
        done.store(true, Ordering::Release);
        reader.join().unwrap()
    });
    assert!(syncs > 10, "only {syncs} syncs ran beside the merges");
    ro.sync().unwrap();
    for k in 1..KEYS {
        assert_eq!(
            ro.find(&key(k)).unwrap(),
            Some((k + 1).to_le_bytes().to_vec())
        );
    }
}

/// A file system that runs a hook once, at the next directory listing:
/// the moment a read-only sync lists the logs, after it read the data
/// generation.
struct ListHook {
    inner: std::sync::Arc<dyn tzstore::io::FileSystem>,
    #[allow(clippy::type_complexity)]
    hook: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for ListHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ListHook({:?})", self.inner)
    }
}

mod list_hook_fs {
    use std::path::Path;
    use std::sync::Arc;

    use tzstore::Result;
    use tzstore::io::{DirEntry, FileHandle, FileStamp, FileSystem, LockFile, OpenMode, beneath};

    impl FileSystem for super::ListHook {
        fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>> {
            self.inner.open(path, mode)
        }
        fn rename(&self, from: &Path, to: &Path) -> Result<()> {
            self.inner.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> Result<()> {
            self.inner.remove_file(path)
        }
        fn remove_dir_all(&self, path: &Path) -> Result<()> {
            self.inner.remove_dir_all(path)
        }
        fn create_dir_all(&self, path: &Path) -> Result<()> {
            self.inner.create_dir_all(path)
        }
        fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
            self.inner.read_dir(path)
        }
        fn sync_dir(&self, path: &Path) -> Result<()> {
            self.inner.sync_dir(path)
        }
        fn exists(&self, path: &Path) -> Result<bool> {
            self.inner.exists(path)
        }
        fn is_dir(&self, path: &Path) -> Result<bool> {
            self.inner.is_dir(path)
        }
        fn lock(&self, path: &Path) -> Result<LockFile> {
            self.inner.lock(path)
        }
        fn fsync_enabled(&self) -> bool {
            self.inner.fsync_enabled()
        }
        fn stamp(&self, path: &Path) -> Result<Option<FileStamp>> {
            self.inner.stamp(path)
        }
        fn open_root_dir(&self, path: &Path) -> std::io::Result<beneath::Dir> {
            self.inner.open_root_dir(path)
        }
    }
}

/// The race behind the test above, made certain: a merge publishes and
/// deletes the logs it merged after a read-only sync read the data
/// generation and before it lists the logs. The sync must not return a
/// state without the merged logs' bindings (keys of a later flush visible,
/// an earlier flush's not): it reloads. Without the reload, keys 11..=80
/// are missing after the sync while 81..=85 are found.
#[test]
fn a_merge_between_a_syncs_generation_read_and_its_listing_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ix = std::sync::Arc::new(Index::open(dir.path(), cfg(false)).unwrap());
    fn value(k: u64) -> Vec<u8> {
        (k + 1).to_le_bytes().to_vec()
    }
    fn add(ix: &Index, keys: std::ops::RangeInclusive<u64>) {
        for k in keys {
            ix.add(&key(k), &value(k), false).unwrap();
        }
        ix.flush().unwrap();
    }
    // Keys 0..=10 in the current log (the first 40 keys fill one log).
    add(&ix, 0..=10);
    ix.await_merge().unwrap();
    let fs = std::sync::Arc::new(ListHook {
        inner: tzstore::io::default_fs(true),
        hook: std::sync::Mutex::new(None),
    });
    let mut open = cfg(true);
    open.open.fs = fs.clone();
    let ro = Index::open(dir.path(), open).unwrap();
    ro.sync().unwrap();
    assert_eq!(ro.find(&key(10)).unwrap(), Some(value(10)));
    // At the sync's listing: that log fills up and a second one too (both
    // frozen and merged, then deleted), and a third gets keys 81..=85.
    let writer = ix.clone();
    *fs.hook.lock().unwrap() = Some(Box::new(move || {
        add(&writer, 11..=80);
        add(&writer, 81..=85);
        writer.await_merge().unwrap();
    }));
    // Files written within the clock's granularity are never taken as
    // unchanged: this sync lists the directory.
    ro.sync().unwrap();
    assert!(fs.hook.lock().unwrap().is_none(), "the hook did not run");
    let missing: Vec<u64> = (0..=85)
        .filter(|&k| ro.find(&key(k)).unwrap() != Some(value(k)))
        .collect();
    assert!(missing.is_empty(), "missing after the sync: {missing:?}");
}
