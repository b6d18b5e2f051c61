//! Regression tests of issue #15 for the indexed file: damage is reported
//! as `Corrupted` (file and offset), never cut away at open and never read
//! as another key's value; lengths read from disk are bounded before any
//! allocation; compaction stops on damage; `check` with repair salvages.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::{Error, OpenOptions};

const KEY: usize = 8;
const HEADER: usize = 4;

fn cfg(read_only: bool) -> IndexedFileConfig {
    let mut open = OpenOptions::default().no_fsync();
    open.read_only = read_only;
    IndexedFileConfig {
        key_size: KEY,
        header_size: HEADER,
        header_in_value: false,
        log_size: 16,
        open,
    }
}

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

/// Every value has the same length and a text no other value contains.
fn value(i: u64) -> Vec<u8> {
    format!("<value {i:05} of the damage test, value {i:05}>").into_bytes()
}

fn header(i: u64) -> [u8; 4] {
    [i as u8; 4]
}

fn build(dir: &Path, n: u64) {
    let f = IndexedFile::open(dir, cfg(false)).unwrap();
    for i in 0..n {
        f.append(&key(i), Some(&header(i)), &value(i), false)
            .unwrap();
    }
    f.flush().unwrap();
}

fn values_path(dir: &Path) -> PathBuf {
    dir.join("gen.0").join("values")
}

/// Offset of the payload of value `i` in the values file.
fn payload_at(bytes: &[u8], i: u64) -> usize {
    let v = value(i);
    bytes
        .windows(v.len())
        .position(|w| w == v.as_slice())
        .expect("value in the file")
}

/// Bytes of a record before its payload: format 2 (the file starts with
/// its magic) stores magic, length, key and header there; format 1 only
/// the length.
fn record_prefix(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"TZSIFV02") {
        8 + KEY + HEADER
    } else {
        4
    }
}

/// The byte range of the whole record of value `i`.
fn record_span(bytes: &[u8], i: u64) -> std::ops::Range<usize> {
    let p = payload_at(bytes, i);
    p - record_prefix(bytes)..p + value(i).len() + 4
}

fn assert_corrupted_at<T: std::fmt::Debug>(r: tzstore::Result<T>, file: &str) -> String {
    match r {
        Err(Error::Corrupted(m)) => {
            assert!(m.contains(file) && m.contains("offset"), "{m}");
            m
        }
        other => panic!("expected Corrupted naming {file} and an offset, got {other:?}"),
    }
}

/// No key reads another key's value: each read is its own value, absent,
/// or an error.
fn assert_no_foreign_value(f: &IndexedFile, keys: impl Iterator<Item = u64>) {
    for i in keys {
        if let Ok(Some((v, _))) = f.read(&key(i)) {
            assert_eq!(v, value(i), "key {i} read another key's value");
        }
    }
}

#[test]
fn flipped_payload_byte_of_value_20_of_100_is_corrupted_and_nothing_is_cut() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let record = record_span(&bytes, 20).start;
    let at = payload_at(&bytes, 20) + 10;
    bytes[at] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    let m = assert_corrupted_at(IndexedFile::open(d.path(), cfg(false)), "values");
    let at = record;
    assert!(m.contains(&format!("offset {at}")), "{m}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "the open changed the file");
    // Read-only: the intact values read back, the damaged one is an error.
    let ro = IndexedFile::open(d.path(), cfg(true)).unwrap();
    for i in 0..100 {
        match ro.read(&key(i)) {
            Ok(Some((v, h))) => assert_eq!((v, h), (value(i), header(i).to_vec()), "{i}"),
            other if i == 20 => {
                assert_corrupted_at(other, "values");
            }
            other => panic!("key {i}: {other:?}"),
        }
    }
}

#[test]
fn flipped_value_then_50_appends_never_read_another_keys_value() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = payload_at(&bytes, 20) + 10;
    bytes[at] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    // Today's code opened this store; whatever an open does, no read may
    // return another key's value after new appends.
    if let Ok(f) = IndexedFile::open(d.path(), cfg(false)) {
        for i in 100..150 {
            f.append(&key(i), Some(&header(i)), &value(i), false)
                .unwrap();
        }
        assert_no_foreign_value(&f, 0..150);
        panic!("the read-write open accepted a damaged record followed by intact ones");
    }
}

#[test]
fn values_cut_inside_an_acknowledged_last_record_is_damage() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let len = fs::metadata(&path).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let cut = fs::read(&path).unwrap();
    assert_corrupted_at(IndexedFile::open(d.path(), cfg(false)), "values");
    assert_eq!(fs::read(&path).unwrap(), cut, "the open changed the file");
    // And if a store with such a cut ever took new appends, key 99 must
    // never read another key's value.
    let ro = IndexedFile::open(d.path(), cfg(true)).unwrap();
    assert_corrupted_at(ro.read(&key(99)), "values");
    assert_eq!(ro.read(&key(98)).unwrap().unwrap().0, value(98));
}

#[test]
fn values_cut_at_a_record_boundary_then_appends_never_read_another_keys_value() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let bytes = fs::read(&path).unwrap();
    let at = record_span(&bytes, 90).start;
    fs::write(&path, &bytes[..at]).unwrap();
    // The cut is invisible to a scan of the values; the records carry
    // their keys, so reads through the stale index entries are errors.
    let Ok(f) = IndexedFile::open(d.path(), cfg(false)) else {
        return;
    };
    for i in 200..250 {
        f.append(&key(i), Some(&header(i)), &value(i), false)
            .unwrap();
    }
    assert_no_foreign_value(&f, (0..100).chain(200..250));
    for i in 90..100 {
        assert!(f.read(&key(i)).is_err(), "key {i}");
    }
}

#[test]
fn reordered_records_never_read_as_each_others_value() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let (a, b) = (record_span(&bytes, 20), record_span(&bytes, 21));
    let (ra, rb) = (bytes[a.clone()].to_vec(), bytes[b.clone()].to_vec());
    bytes[a.start..a.start + rb.len()].copy_from_slice(&rb);
    bytes[a.start + rb.len()..b.end].copy_from_slice(&ra);
    fs::write(&path, &bytes).unwrap();
    let ro = IndexedFile::open(d.path(), cfg(true)).unwrap();
    assert_corrupted_at(ro.read(&key(20)), "values");
    assert_corrupted_at(ro.read(&key(21)), "values");
    assert_no_foreign_value(&ro, 0..100);
}

#[test]
fn compaction_over_damage_aborts_with_corrupted_and_keeps_the_old_generation() {
    let d = tempfile::tempdir().unwrap();
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    for i in 0..100 {
        f.append(&key(i), Some(&header(i)), &value(i), false)
            .unwrap();
    }
    f.flush().unwrap();
    // Two equal-size records exchanged under the open handle: each still
    // passes a checksum that does not cover its key.
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let (a, b) = (record_span(&bytes, 20), record_span(&bytes, 21));
    let (ra, rb) = (bytes[a.clone()].to_vec(), bytes[b.clone()].to_vec());
    bytes[a.start..a.start + rb.len()].copy_from_slice(&rb);
    bytes[a.start + rb.len()..b.end].copy_from_slice(&ra);
    let w = fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&w, &bytes, 0).unwrap();
    drop(w);
    let current = fs::read(d.path().join("current")).unwrap();
    f.gc(|_| true).unwrap();
    assert_corrupted_at(f.await_gc(), "values");
    assert_eq!(fs::read(d.path().join("current")).unwrap(), current);
    assert!(!d.path().join("gen.1").exists());
    assert_eq!(f.read(&key(5)).unwrap().unwrap().0, value(5));
    assert_no_foreign_value(&f, 0..100);
}

#[test]
fn huge_length_field_is_refused_without_a_huge_allocation() {
    const NAME: &str = "huge_length_field_is_refused_without_a_huge_allocation";
    if !common::is_child(NAME) {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([NAME, "--exact", "--test-threads=1"])
            .env(common::CHILD_ENV, NAME)
            .env("MALLOC_ARENA_MAX", "2")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let status = c.status().unwrap();
        assert!(
            status.success(),
            "child under a 1 GiB address-space limit: {status}"
        );
        return;
    }
    let lim = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: setrlimit with a valid struct only limits this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let p = payload_at(&bytes, 50);
    let len_at = p - record_prefix(&bytes) + if bytes.starts_with(b"TZSIFV02") { 4 } else { 0 };
    bytes[len_at..len_at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    fs::write(&path, &bytes).unwrap();
    let ro = IndexedFile::open(d.path(), cfg(true)).unwrap();
    assert_corrupted_at(ro.read(&key(50)), "values");
    assert_eq!(ro.read(&key(51)).unwrap().unwrap().0, value(51));
    drop(ro);
    assert_corrupted_at(IndexedFile::open(d.path(), cfg(false)), "values");
    let report = IndexedFile::check(d.path(), &opts(), false).unwrap();
    assert!(!report.is_ok());
}

#[test]
fn check_reports_damage_and_repair_salvages_every_intact_value() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 100);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = payload_at(&bytes, 20) + 10;
    bytes[at] ^= 0x04;
    fs::write(&path, &bytes).unwrap();
    let before = IndexedFile::check(d.path(), &opts(), false).unwrap();
    assert!(!before.is_ok(), "{before:?}");
    assert!(
        before
            .problems
            .iter()
            .any(|p| p.contains("values") && p.contains("offset"))
    );
    assert_eq!(before.records_checked, 99);
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "check without repair changed the file"
    );
    // Repair refuses to run under an open read-write handle.
    let repaired = IndexedFile::check(d.path(), &opts(), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let q = repaired
        .quarantine_dir
        .clone()
        .expect("a quarantine folder");
    assert_eq!(fs::read(q.join("gen.0").join("values")).unwrap(), bytes);
    assert!(
        repaired.quarantined.iter().any(|m| m == "gen.0"),
        "{repaired:?}"
    );
    assert!(
        IndexedFile::check(d.path(), &opts(), false)
            .unwrap()
            .is_ok()
    );
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    assert!(matches!(
        IndexedFile::check(d.path(), &opts(), true),
        Err(Error::Locked(_))
    ));
    for i in 0..100 {
        let got = f.read(&key(i)).unwrap();
        if i == 20 {
            assert_eq!(got, None);
        } else {
            assert_eq!(got, Some((value(i), header(i).to_vec())), "{i}");
        }
    }
    f.append(&key(20), Some(&header(20)), &value(20), true)
        .unwrap();
    drop(f);
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    assert_eq!(f.read(&key(20)).unwrap().unwrap().0, value(20));
}

#[test]
fn repair_drops_a_key_whose_acknowledged_newest_value_is_damaged() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 10);
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    f.append(&key(3), Some(&header(3)), &value(33), true)
        .unwrap();
    drop(f);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = payload_at(&bytes, 33) + 3;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let repaired = IndexedFile::check(d.path(), &opts(), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    // Not rolled back to the older value of key 3.
    assert_eq!(f.read(&key(3)).unwrap(), None);
    assert_eq!(f.read(&key(4)).unwrap().unwrap().0, value(4));
}

#[test]
fn missing_generation_file_with_records_is_damage_and_repair_restores_it() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 10);
    fs::remove_file(d.path().join("current")).unwrap();
    match IndexedFile::open(d.path(), cfg(false)) {
        Err(Error::Corrupted(m)) => assert!(m.contains("current"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!d.path().join("gen.1").exists());
    let repaired = IndexedFile::check(d.path(), &opts(), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    for i in 0..10 {
        assert_eq!(f.read(&key(i)).unwrap().unwrap().0, value(i));
    }
}

#[test]
fn torn_tail_of_an_unacknowledged_append_is_still_cut() {
    let d = tempfile::tempdir().unwrap();
    build(d.path(), 10);
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let good = bytes.len();
    // Half of a copy of the last record: what a crash mid-append leaves.
    let last = record_span(&bytes, 9);
    let half = bytes[last.start..last.start + last.len() / 2].to_vec();
    bytes.extend_from_slice(&half);
    fs::write(&path, &bytes).unwrap();
    assert!(
        IndexedFile::check(d.path(), &opts(), false)
            .unwrap()
            .is_ok()
    );
    let f = IndexedFile::open(d.path(), cfg(false)).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), good as u64);
    assert_eq!(f.read(&key(9)).unwrap().unwrap().0, value(9));
}

#[test]
fn header_in_value_store_checks_and_repairs_alike() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(false);
    c.header_in_value = true;
    let f = IndexedFile::open(d.path(), c.clone()).unwrap();
    for i in 0..30 {
        f.append(&key(i), None, &value(i), false).unwrap();
    }
    drop(f);
    assert!(
        IndexedFile::check(d.path(), &opts(), false)
            .unwrap()
            .is_ok()
    );
    let path = values_path(d.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = payload_at(&bytes, 7) + 1;
    bytes[at] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    assert_corrupted_at(IndexedFile::open(d.path(), c.clone()), "values");
    let repaired = IndexedFile::check(d.path(), &opts(), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let f = IndexedFile::open(d.path(), c).unwrap();
    for i in 0..30 {
        let got = f.read(&key(i)).unwrap();
        if i == 7 {
            assert_eq!(got, None);
        } else {
            let (v, h) = got.unwrap();
            assert_eq!(h, value(i)[..HEADER].to_vec());
            assert_eq!(v, value(i));
        }
    }
    drop(f);
    // Opening it as a store with the header outside the value is refused.
    assert!(matches!(
        IndexedFile::open(d.path(), cfg(false)),
        Err(Error::InvalidArgument(_))
    ));
}
