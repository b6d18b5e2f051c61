//! Damage fuzzing of the singleton store (see `tests/common/damage.rs`):
//! every open returns the acknowledged value or an error, never another
//! value; `check` reports the damage; after `check` with repair the store
//! opens and checks clean, and the damaged file sits in the quarantine.

mod common;

use common::damage::{self, Damage};
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions};

const VALUE: &[u8] = b"the acknowledged value of the singleton store, 64 bytes long....";

fn opts(read_only: bool) -> OpenOptions {
    let mut o = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    o.fs = tzstore::io::default_fs(true);
    o
}

#[test]
fn damaged_singleton_never_returns_another_value() {
    damage::run(
        "damaged_singleton_never_returns_another_value",
        2_000,
        |dir| {
            let s = Singleton::open(dir.join("value"), &opts(false)).unwrap();
            s.write(VALUE).unwrap();
        },
        |case| {
            let path = case.dir.join("value");
            let what = case.describe();
            let deleted = case
                .damage
                .iter()
                .any(|d| matches!(d, Damage::Delete { .. }));
            for read_only in [false, true] {
                match Singleton::open(&path, &opts(read_only)) {
                    Ok(s) => match s.read() {
                        Some(v) => assert_eq!(&v[..], VALUE, "{what}"),
                        // The one case the format cannot tell from "never
                        // written": the file is gone.
                        None => assert!(deleted, "{what}: value lost without an error"),
                    },
                    Err(Error::Corrupted(_) | Error::InvalidArgument(_)) => {}
                    Err(e) => panic!("{what}: unexpected {e}"),
                }
            }
            let before = Singleton::check(&path, &opts(false), false).unwrap();
            let opens = Singleton::open(&path, &opts(false)).is_ok();
            assert_eq!(
                before.is_ok(),
                opens,
                "{what}: check and open disagree: {before:?}"
            );
            let repaired = Singleton::check(&path, &opts(false), true).unwrap();
            assert!(repaired.is_ok(), "{what}: {repaired:?}");
            if !before.is_ok() {
                let q = repaired
                    .quarantine_dir
                    .clone()
                    .expect("a quarantine folder");
                assert!(q.join("value").exists(), "{what}: damaged file not kept");
            }
            let after = Singleton::check(&path, &opts(false), false).unwrap();
            assert!(after.is_ok(), "{what}: {after:?}");
            let s = Singleton::open(&path, &opts(false)).unwrap();
            if let Some(v) = s.read() {
                assert_eq!(&v[..], VALUE, "{what}");
            }
            s.write(b"new").unwrap();
        },
    );
}

#[test]
fn fifo_in_place_of_the_file_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("value");
    damage::mkfifo(&path).unwrap();
    for read_only in [false, true] {
        match Singleton::open(&path, &opts(read_only)) {
            Err(Error::Corrupted(m)) => assert!(m.contains("not a regular file"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
