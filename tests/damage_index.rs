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
const LOG_HEADER: u64 = 64;

fn cfg(read_only: bool, removable: bool) -> IndexConfig {
    let mut open = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    open.fs = tzstore::io::default_fs(true);
    IndexConfig {
        key_size: 8,
        value_size: 8,
        removable,
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

/// Keys removed again in the removable template.
fn removed(removable: bool, i: u64) -> bool {
    removable && i % 7 == 3
}

/// Where the template keeps an entry: in a log (file name, byte range) or
/// merged into a data file (`data`, the base, or `delta` above it).
#[derive(Debug, Clone)]
enum Home {
    Merged(&'static str),
    Log(String, std::ops::Range<u64>),
}

/// The `(key, stored value)` entries of the data file at `path` (format 3:
/// 80-byte header with the fan-out bits at 20 and the count at 32, the
/// fan-out table, the hashes, then the entries).
fn data_entries(path: &Path, esize: usize) -> Vec<Vec<u8>> {
    let Ok(b) = std::fs::read(path) else {
        return Vec::new();
    };
    let fan_bits = u32::from_le_bytes(b[20..24].try_into().unwrap());
    let count = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let start = 80 + ((1usize << fan_bits) + 1) * 8 + count * 8;
    b[start..].chunks_exact(esize).map(<[u8]>::to_vec).collect()
}

/// Per key: where its binding is, and where its tombstone is (removed keys).
struct Homes {
    put: Vec<Home>,
    tomb: Vec<Option<Home>>,
}

static HOMES: OnceLock<Homes> = OnceLock::new();

fn homes() -> &'static Homes {
    HOMES.get().expect("template built")
}

fn build(dir: &Path, removable: bool) {
    // Each removed key goes 10 adds after its binding. The first keys are
    // merged (and some tombstones with them: those keys leave the data);
    // the last 100 are written with a log too large to merge, so the log
    // holds bindings and tombstones whatever the timing of the merges.
    for (range, log_size) in [(0..KEYS - 100, LOG_SIZE), (KEYS - 100..KEYS + 10, 10_000)] {
        let mut c = cfg(false, removable);
        c.log_size = log_size;
        let ix = Index::open(dir, c).unwrap();
        for i in range {
            if i < KEYS {
                ix.add(&key(i), &value(i), false).unwrap();
            }
            if i >= 10 && removed(removable, i - 10) {
                ix.remove(&key(i - 10), false).unwrap();
            }
            // Never two merges at once: the same files whatever the
            // timing.
            if i % 50 == 0 {
                ix.await_merge().unwrap();
            }
        }
        ix.close().unwrap();
    }
    let by_key: HashMap<[u8; 8], u64> = (0..KEYS).map(|i| (key(i), i)).collect();
    let mut homes = Homes {
        put: vec![Home::Merged("data"); KEYS as usize],
        tomb: (0..KEYS)
            .map(|i| removed(removable, i).then_some(Home::Merged("data")))
            .collect(),
    };
    // The delta holds newer bindings than the base, and tombstones.
    for e in data_entries(&dir.join("delta"), 8 + 8 + usize::from(removable)) {
        let i = by_key[&<[u8; 8]>::try_from(&e[..8]).unwrap()] as usize;
        if removable && e[8] == 0 {
            homes.tomb[i] = Some(Home::Merged("delta"));
        } else {
            homes.put[i] = Home::Merged("delta");
        }
    }
    let entry = 8 + 8 + u64::from(removable) + 4;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("log.") {
            continue;
        }
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        for (n, e) in bytes[LOG_HEADER as usize..]
            .chunks_exact(entry as usize)
            .enumerate()
        {
            let i = by_key[&<[u8; 8]>::try_from(&e[..8]).unwrap()] as usize;
            let at = LOG_HEADER + n as u64 * entry;
            let home = Home::Log(name.clone(), at..at + entry);
            if removable && e[8] == 0 {
                homes.tomb[i] = Some(home);
            } else {
                homes.put[i] = home;
            }
        }
    }
    assert!(dir.join("data").is_file());
    // Both levels hold bindings, so damage reaches each.
    assert!(homes.put.iter().any(|h| matches!(h, Home::Merged("delta"))));
    assert!(homes.put.iter().any(|h| matches!(h, Home::Merged("data"))));
    let in_logs = homes
        .put
        .iter()
        .filter(|h| matches!(h, Home::Log(..)))
        .count();
    assert!(in_logs > 0 && in_logs < KEYS as usize, "{in_logs}");
    if removable {
        assert!(homes.tomb.iter().any(|t| matches!(t, Some(Home::Log(..)))));
        assert!(
            homes
                .tomb
                .iter()
                .any(|t| matches!(t, Some(Home::Merged(_))))
        );
    }
    assert!(HOMES.set(homes).is_ok());
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

/// True if the damage may have hit `home`.
fn hit(case: &Case, home: &Home) -> bool {
    match home {
        Home::Merged(name) => case.touches(&case.dir.join(name), 0..u64::MAX),
        Home::Log(name, range) => case.touches(&case.dir.join(name), range.clone()),
    }
}

/// What a read of key `i` may give besides its acknowledged state.
struct Allowed<'a> {
    case: &'a Case,
    removable: bool,
    /// The data files repair moved to the quarantine with their entries.
    moved: Vec<&'static str>,
}

impl Allowed<'_> {
    fn lost(&self, home: &Home) -> bool {
        hit(self.case, home) || matches!(home, Home::Merged(f) if self.moved.contains(f))
    }

    /// A bound key may read as absent: its entry was hit, or its data file
    /// quarantined.
    fn missing(&self, i: u64) -> bool {
        self.lost(&homes().put[i as usize])
    }

    /// A removed key may read as its old value: its tombstone (in a log or
    /// the delta; a removal merged into the base is an absence) was hit.
    fn resurrected(&self, i: u64) -> bool {
        homes().tomb[i as usize]
            .as_ref()
            .is_some_and(|t| !matches!(t, Home::Merged("data")) && self.lost(t))
    }

    fn check(&self, what: &str, i: u64, got: Option<&[u8]>) {
        match got {
            Some(v) => {
                assert_eq!(v, value(i), "{what}: key {i} has another value");
                assert!(
                    !removed(self.removable, i) || self.resurrected(i),
                    "{what}: removed key {i} is back"
                );
            }
            None => assert!(
                removed(self.removable, i) || self.missing(i),
                "{what}: key {i} lost without an error"
            ),
        }
    }
}

/// Reads every key and iterates: the acknowledged state of each key, or
/// what `allowed` admits.
fn verify(ix: &Index, what: &str, allowed: &Allowed<'_>) {
    let by_key: HashMap<[u8; 8], u64> = (0..KEYS).map(|i| (key(i), i)).collect();
    let mut found = 0;
    for i in 0..KEYS {
        let got = ix
            .find(&key(i))
            .unwrap_or_else(|e| panic!("{what}: find {i}: {e}"));
        allowed.check(what, i, got.as_deref());
        found += u64::from(got.is_some());
    }
    let mut seen = 0;
    for item in ix.iter().unwrap() {
        let (k, v) = item.unwrap_or_else(|e| panic!("{what}: iteration: {e}"));
        let k: [u8; 8] = k.as_slice().try_into().unwrap();
        let Some(&i) = by_key.get(&k) else {
            panic!("{what}: iteration gave a key never written: {k:02x?}");
        };
        allowed.check(&format!("{what} (iteration)"), i, Some(&v));
        seen += 1;
    }
    assert_eq!(seen, found, "{what}: iteration and lookups disagree");
    assert_eq!(ix.len(), found, "{what}: len disagrees with lookups");
}

fn check_case(case: &mut Case, removable: bool) {
    let dir = case.dir.clone();
    let what = case.describe();
    let meta_hit = case.touches(&dir.join("meta"), 0..u64::MAX);
    let mut allowed = Allowed {
        case,
        removable,
        moved: Vec::new(),
    };
    for read_only in [false, true] {
        let before = snapshot(&dir);
        match Index::open(&dir, cfg(read_only, removable)) {
            Ok(ix) => verify(&ix, &format!("{what} (read_only {read_only})"), &allowed),
            Err(Error::Corrupted(_)) => {
                let diff = changed(&before, &snapshot(&dir));
                assert!(diff.is_empty(), "{what}: a refused open changed {diff:?}");
            }
            Err(Error::NotFound(_)) if read_only && meta_hit => {}
            Err(e) => panic!("{what}: read_only {read_only}: unexpected {e}"),
        }
    }

    let opts = cfg(false, removable).open;
    let before = snapshot(&dir);
    let report = Index::check(&dir, &opts, false).unwrap();
    let diff = changed(&before, &snapshot(&dir));
    assert!(
        diff.is_empty(),
        "{what}: check without repair changed {diff:?}"
    );
    let opens = Index::open(&dir, cfg(false, removable)).map(drop);
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
    // A data file damaged only outside its entries has them salvaged into
    // a log; otherwise its entries are gone with it.
    allowed.moved = ["data", "delta"]
        .into_iter()
        .filter(|name| {
            repaired.quarantined.iter().any(|q| q == name)
                && !repaired.repaired.iter().any(|r| {
                    r.starts_with(&format!("{name}: ")) && r.contains("entries kept in log.")
                })
        })
        .collect();
    let ro = Index::open(&dir, cfg(true, removable)).unwrap_or_else(|e| panic!("{what}: {e}"));
    verify(&ro, &format!("{what} (read-only after repair)"), &allowed);
    drop(ro);
    let ix = Index::open(&dir, cfg(false, removable)).unwrap_or_else(|e| panic!("{what}: {e}"));
    verify(&ix, &format!("{what} (after repair)"), &allowed);
    ix.add(&key(KEYS), &value(KEYS), true).unwrap();
    ix.close().unwrap();
    let ix = Index::open(&dir, cfg(false, removable)).unwrap_or_else(|e| panic!("{what}: {e}"));
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
        1_000,
        |dir| build(dir, false),
        |case| check_case(case, false),
    );
}

/// The same with tombstones: a removed key never comes back unless the
/// damage hit its tombstone (then only with its own old value).
#[test]
fn damaged_removable_index_never_returns_another_value() {
    damage::run(
        "damaged_removable_index_never_returns_another_value",
        1_000,
        |dir| build(dir, true),
        |case| check_case(case, true),
    );
}
