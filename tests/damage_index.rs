//! Damage fuzzing of the index (see `tests/common/damage.rs`): every open,
//! read-write or read-only, returns an error or an index whose reads give
//! the exact acknowledged value of each key, never another's; a key is
//! missing only if the damage hit its entry (or its whole file); a refused
//! open changes nothing; `check` agrees with the open and changes nothing;
//! `check` with repair leaves an index that opens and checks clean, keeps
//! every entry the damage did not touch (except those of a data file it had
//! to quarantine), and accepts new writes.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::damage::{self, Case};
use tzstore::index::{Index, IndexConfig};
use tzstore::{Error, OpenOptions};

const KEYS: u64 = 320;
const LOG_SIZE: u64 = 64;
const ENTRY: u64 = 8 + 8 + 4;
const LOG_HEADER: u64 = 32;

fn cfg(read_only: bool) -> IndexConfig {
    let mut open = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    open.fs = tzstore::io::default_fs(true);
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable: false,
        log_size: LOG_SIZE,
        open,
    }
}

fn key(i: u64) -> [u8; 8] {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()
}

fn value(i: u64) -> [u8; 8] {
    (i ^ 0x5A5A_0000).to_le_bytes()
}

/// Where the template keeps each key: a log entry (file name, byte range)
/// or the data file.
#[derive(Debug, Clone)]
enum Home {
    Data,
    Log(String, std::ops::Range<u64>),
}

static HOMES: OnceLock<Vec<Home>> = OnceLock::new();

fn build(dir: &Path) {
    let ix = Index::open(dir, cfg(false)).unwrap();
    for i in 0..KEYS {
        ix.add(&key(i), &value(i), false).unwrap();
        if i % 100 == 0 {
            ix.await_merge().unwrap();
        }
    }
    ix.close().unwrap();
    let by_key: HashMap<[u8; 8], u64> = (0..KEYS).map(|i| (key(i), i)).collect();
    let mut homes = vec![Home::Data; KEYS as usize];
    let mut logs = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("log.") {
            continue;
        }
        logs += 1;
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        for (n, e) in bytes[LOG_HEADER as usize..]
            .chunks_exact(ENTRY as usize)
            .enumerate()
        {
            let k: [u8; 8] = e[..8].try_into().unwrap();
            let at = LOG_HEADER + n as u64 * ENTRY;
            homes[by_key[&k] as usize] = Home::Log(name.clone(), at..at + ENTRY);
        }
    }
    assert!(logs >= 1 && dir.join("data").is_file());
    let in_logs = homes.iter().filter(|h| matches!(h, Home::Log(..))).count();
    assert!(in_logs > 0 && in_logs < KEYS as usize, "{in_logs}");
    HOMES.set(homes).unwrap();
}

/// The files of `a` and `b` that differ (added, removed or changed).
fn changed(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = a
        .iter()
        .filter(|(p, bytes)| b.get(*p) != Some(bytes))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(b.keys().filter(|p| !a.contains_key(*p)).cloned());
    out
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    damage::store_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap_or_default();
            (p, b)
        })
        .collect()
}

/// True if the damage may have cost key `i` its entry.
fn hit(case: &Case, i: u64) -> bool {
    match &HOMES.get().unwrap()[i as usize] {
        Home::Data => case.touches(&case.dir.join("data"), 0..u64::MAX),
        Home::Log(name, range) => case.touches(&case.dir.join(name), range.clone()),
    }
}

/// Reads every key and iterates: exact values; a key may be missing only
/// when `may_miss(i)`.
fn verify(ix: &Index, what: &str, may_miss: impl Fn(u64) -> bool) {
    let by_key: HashMap<[u8; 8], u64> = (0..KEYS).map(|i| (key(i), i)).collect();
    let mut found = 0;
    for i in 0..KEYS {
        match ix.find(&key(i)) {
            Ok(Some(v)) => {
                assert_eq!(v, value(i), "{what}: key {i} has another value");
                found += 1;
            }
            Ok(None) => assert!(may_miss(i), "{what}: key {i} lost without an error"),
            Err(e) => panic!("{what}: find {i}: {e}"),
        }
    }
    let mut seen = 0;
    for item in ix.iter().unwrap() {
        let (k, v) = item.unwrap_or_else(|e| panic!("{what}: iteration: {e}"));
        let k: [u8; 8] = k.as_slice().try_into().unwrap();
        let Some(&i) = by_key.get(&k) else {
            panic!("{what}: iteration gave a key never written: {k:02x?}");
        };
        assert_eq!(v, value(i), "{what}: iteration: key {i} has another value");
        seen += 1;
    }
    assert_eq!(seen, found, "{what}: iteration and lookups disagree");
    assert_eq!(ix.len(), found, "{what}: len disagrees with lookups");
}

fn check_case(case: &mut Case) {
    let dir = case.dir.clone();
    let what = case.describe();
    let meta_hit = case.touches(&dir.join("meta"), 0..u64::MAX);
    for read_only in [false, true] {
        let before = snapshot(&dir);
        match Index::open(&dir, cfg(read_only)) {
            Ok(ix) => verify(&ix, &format!("{what} (read_only {read_only})"), |i| {
                hit(case, i)
            }),
            Err(Error::Corrupted(_)) => {
                let diff = changed(&before, &snapshot(&dir));
                assert!(diff.is_empty(), "{what}: a refused open changed {diff:?}");
            }
            Err(Error::NotFound(_)) if read_only && meta_hit => {}
            Err(e) => panic!("{what}: read_only {read_only}: unexpected {e}"),
        }
    }

    let opts = cfg(false).open;
    let before = snapshot(&dir);
    let report = Index::check(&dir, &opts, false).unwrap();
    let diff = changed(&before, &snapshot(&dir));
    assert!(
        diff.is_empty(),
        "{what}: check without repair changed {diff:?}"
    );
    let opens = Index::open(&dir, cfg(false)).map(drop);
    // A missing meta is a problem for check, while the read-write open
    // writes a new one; otherwise both see the same damage.
    if !meta_hit {
        assert_eq!(
            report.is_ok(),
            opens.is_ok(),
            "{what}: check and open disagree: {report:?} {opens:?}"
        );
    }

    let repaired = Index::check(&dir, &opts, true).unwrap();
    if repaired.stopped_early {
        // Nothing says the sizes any more (meta, data and log headers all
        // damaged): nothing can be salvaged, and the report says so.
        assert!(!repaired.is_ok(), "{what}");
        return;
    }
    assert!(repaired.is_ok(), "{what}: {repaired:?}");
    let after = Index::check(&dir, &opts, false).unwrap();
    assert!(after.is_ok(), "{what}: after repair: {after:?}");
    let data_moved = repaired.quarantined.iter().any(|q| q == "data");
    let may_miss = |i: u64| {
        hit(case, i) || (data_moved && matches!(HOMES.get().unwrap()[i as usize], Home::Data))
    };
    let ro = Index::open(&dir, cfg(true)).unwrap_or_else(|e| panic!("{what}: {e}"));
    verify(&ro, &format!("{what} (read-only after repair)"), may_miss);
    drop(ro);
    let ix = Index::open(&dir, cfg(false)).unwrap_or_else(|e| panic!("{what}: {e}"));
    verify(&ix, &format!("{what} (after repair)"), may_miss);
    ix.add(&key(KEYS), &value(KEYS), true).unwrap();
    ix.close().unwrap();
    let ix = Index::open(&dir, cfg(false)).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        ix.find(&key(KEYS)).unwrap(),
        Some(value(KEYS).to_vec()),
        "{what}"
    );
}

#[test]
fn damaged_index_never_returns_another_value() {
    damage::run(
        "damaged_index_never_returns_another_value",
        2_000,
        build,
        check_case,
    );
}
