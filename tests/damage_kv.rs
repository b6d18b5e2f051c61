//! Damage fuzzing of the key/value store (see `tests/common/damage.rs`).
//!
//! The template holds a few dozen keys, some nested, written plainly, then
//! batches whose records stay in the journal (no checkpoint after them).
//! Values are plain files without checksums, so a value file the damage hit
//! may read back as anything; every other key must read back exactly, or
//! fail with an error status, through a read-only and a read-write handle.
//! `check` must report what makes the read-write open fail; after `check`
//! with repair the store opens, checks clean, every key the damage did not
//! hit reads back exactly (or is not found only if its file went to the
//! quarantine), and it takes writes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::damage::{self, Case, Damage};
use tzstore::kv::Kv;
use tzstore::{Error, OpenOptions};

fn opts(read_only: bool) -> OpenOptions {
    let mut o = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    o.fs = tzstore::io::default_fs(true);
    o
}

fn value(i: usize, round: usize) -> Vec<u8> {
    let len = match i % 5 {
        0 => 0,
        1 => 1,
        2 => 37,
        3 => 300,
        _ => 2000,
    };
    (0..len).map(|j| (i * 31 + j * 7 + round) as u8).collect()
}

fn key(i: usize) -> String {
    match i % 4 {
        0 => format!("k{i}"),
        1 => format!("d{}/k{i}", i % 3),
        2 => format!("d{}/e/k{i}", i % 2),
        _ => format!("d2/e/f/g/k{i}"),
    }
}

/// What the template holds once built.
fn expected() -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..36 {
        m.insert(key(i), value(i, 0));
    }
    for round in 1..=4 {
        for i in (round..36).step_by(5) {
            m.insert(key(i), value(i, round));
        }
        m.insert(format!("b{round}/new"), value(round, round));
    }
    m.remove(&key(6));
    m
}

fn build(dir: &Path) {
    let kv = Kv::open(dir, &opts(false)).unwrap();
    for i in 0..36 {
        kv.set(&key(i), &value(i, 0)).unwrap();
    }
    for round in 1..=4 {
        kv.batch(0, |b| {
            for i in (round..36).step_by(5) {
                b.set(&key(i), &value(i, round))?;
            }
            b.set(&format!("b{round}/new"), &value(round, round))?;
            if round == 4 {
                b.remove(&key(6))?;
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(std::fs::metadata(dir.join(".tzs-journal")).unwrap().len() > 0);
}

/// True if a damage hit the file of `key` (its bytes may be anything).
fn hit(case: &Case, key: &str) -> bool {
    let p = case.dir.join(key);
    case.damage.iter().any(|d| d.files().contains(&p.as_path()))
}

/// Every key reads back exactly, unless its file was hit (then any value or
/// an error) or `lost` allows not-found; errors are statuses, never panics.
fn read_all(kv: &Kv, case: &Case, want: &BTreeMap<String, Vec<u8>>, lost: &dyn Fn(&str) -> bool) {
    let what = case.describe();
    for (k, v) in want {
        match kv.get(k) {
            Ok(got) => assert!(hit(case, k) || got == *v, "{what}: {k} read back wrong"),
            Err(Error::NotFound(_)) => assert!(hit(case, k) || lost(k), "{what}: {k} lost"),
            Err(e) => assert!(hit(case, k), "{what}: {k}: {e}"),
        }
        let _ = kv.size(k);
        let _ = kv.get_partial(k, 1, 10);
    }
    for d in ["", "d0", "d1/e", "d2/e/f/g", "b1"] {
        let _ = kv.list(d);
    }
    let _ = kv.digest("");
}

#[test]
fn damaged_kv_keeps_every_key_the_damage_did_not_hit() {
    let want = expected();
    damage::run(
        "damaged_kv_keeps_every_key_the_damage_did_not_hit",
        // About 4,000 system calls a case (three opens, three checks, every
        // key read three times): 200 cases took 30 s in a debug build on a
        // loaded 2-core machine.
        200,
        build,
        |case| {
            let what = case.describe();
            let dir = case.dir.clone();
            let deleted = |k: &str| {
                case.damage
                    .iter()
                    .any(|d| matches!(d, Damage::Delete { file } if *file == dir.join(k)))
            };
            // Read-only: the journal is not read, the tree is served as is.
            let ro = Kv::open(&dir, &opts(true)).unwrap();
            read_all(&ro, case, &want, &|k| deleted(k));
            drop(ro);
            let opened = match Kv::open(&dir, &opts(false)) {
                Ok(kv) => {
                    read_all(&kv, case, &want, &|_| false);
                    true
                }
                Err(Error::Corrupted(m)) => {
                    assert!(m.contains(&dir.display().to_string()), "{what}: {m}");
                    false
                }
                Err(e) => panic!("{what}: read-write open: {e}"),
            };
            let before = Kv::check(&dir, &opts(false), false).unwrap();
            if !opened {
                assert!(!before.is_ok(), "{what}: open failed but check passed");
            }
            let repaired = Kv::check(&dir, &opts(false), true).unwrap();
            assert!(repaired.is_ok(), "{what}: {}", repaired.to_text());
            let after = Kv::check(&dir, &opts(false), false).unwrap();
            assert!(after.is_ok(), "{what}: {}", after.to_text());
            let moved = repaired.quarantined.clone();
            let kv = Kv::open(&dir, &opts(false))
                .unwrap_or_else(|e| panic!("{what}: open after repair: {e}"));
            read_all(&kv, case, &want, &|k| {
                deleted(k) || moved.iter().any(|m| k.starts_with(m.as_str()))
            });
            kv.set("after/repair", b"x").unwrap();
            kv.batch(0, |b| b.set("after/batch", b"y")).unwrap();
            drop(kv);
            let kv = Kv::open(&dir, &opts(false)).unwrap();
            assert_eq!(kv.get("after/repair").unwrap(), b"x", "{what}");
            assert_eq!(kv.get("after/batch").unwrap(), b"y", "{what}");
            assert!(
                Kv::check(&dir, &opts(false), false).unwrap().is_ok(),
                "{what}"
            );
        },
    );
}
