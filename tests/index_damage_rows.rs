//! Issue #15, the index's rows: damage is `Corrupted` naming the file and
//! the offset, nothing is truncated or deleted, a merge never completes
//! over damage, and `Index::check` with repair keeps every intact entry.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tzstore::index::{Index, IndexConfig};
use tzstore::{Error, OpenOptions};

/// Key and value size of these tests; a log entry is `8 + 8 + 4` bytes.
const K: usize = 8;
const ENTRY: u64 = 20;
const LOG_HEADER: u64 = 64;

fn cfg(read_only: bool, log_size: u64) -> IndexConfig {
    let mut open = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    open.fs = tzstore::io::default_fs(true);
    IndexConfig {
        key_size: K,
        value_size: 8,
        removable: false,
        log_size,
        open,
    }
}

fn key(i: u64) -> [u8; 8] {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()
}

fn value(i: u64) -> [u8; 8] {
    (i ^ 0xA5A5).to_le_bytes()
}

/// 1,000 keys: 903 merged into `data` (generation 1), 97 in `log.1`.
fn store_903_97(dir: &Path) {
    let ix = Index::open(dir, cfg(false, 902)).unwrap();
    for i in 0..903 {
        ix.add(&key(i), &value(i), false).unwrap();
    }
    ix.await_merge().unwrap();
    for i in 903..1000 {
        ix.add(&key(i), &value(i), false).unwrap();
    }
    ix.close().unwrap();
    let log = std::fs::metadata(dir.join("log.1")).unwrap().len();
    assert_eq!(log, LOG_HEADER + 97 * ENTRY);
    assert!(dir.join("data").is_file());
}

/// Every file of the store and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::damage::store_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

/// Opens read-write and read-only: both must be `Corrupted` mentioning
/// every part of `mentions`, and no file may change.
fn assert_refused(dir: &Path, mentions: &[&str]) {
    let before = snapshot(dir);
    for read_only in [false, true] {
        match Index::open(dir, cfg(read_only, 902)) {
            Err(Error::Corrupted(m)) => {
                for part in mentions {
                    assert!(m.contains(part), "{m:?} does not mention {part:?}");
                }
            }
            Ok(ix) => panic!(
                "read_only {read_only}: opened a damaged index with {} keys",
                ix.len()
            ),
            Err(e) => panic!("read_only {read_only}: {e}"),
        }
        assert_eq!(snapshot(dir), before, "a refused open changed the store");
    }
}

fn all_found(ix: &Index, keys: impl Iterator<Item = u64>) -> usize {
    keys.filter(|&i| ix.find(&key(i)).unwrap() == Some(value(i).to_vec()))
        .count()
}

#[test]
fn fifo_in_place_of_data_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("data")).unwrap();
    common::damage::mkfifo(&d.path().join("data")).unwrap();
    assert_refused(d.path(), &["data", "not a regular file"]);
}

#[test]
fn directory_in_place_of_a_log_is_refused() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("log.1")).unwrap();
    std::fs::create_dir(d.path().join("log.1")).unwrap();
    assert_refused(d.path(), &["log.1", "not a regular file"]);
}

#[test]
fn flipped_byte_in_entry_10_of_a_97_entry_log_is_corrupted_and_nothing_cut() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let at = LOG_HEADER + 10 * ENTRY;
    flip(&d.path().join("log.1"), at + 3);
    assert_refused(d.path(), &["log.1", &format!("offset {at}")]);
}

#[test]
fn flipped_crc_of_the_last_whole_entry_is_corrupted_not_a_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let at = LOG_HEADER + 96 * ENTRY;
    flip(&d.path().join("log.1"), at + 17);
    assert_refused(d.path(), &["log.1", &format!("offset {at}")]);
}

#[test]
fn torn_last_entry_is_still_cut_at_the_read_write_open() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let log = d.path().join("log.1");
    let len = std::fs::metadata(&log).unwrap().len();
    // The log as a crash leaves it: its last entry written after the last
    // fsync, cut short (its synced-end slot says "open", not "closed").
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    drop(ix);
    let mut b = std::fs::read(&log).unwrap();
    let mut slots = b[32..64].to_vec();
    for s in slots.chunks_mut(16) {
        let word = u32::from_le_bytes(s[8..12].try_into().unwrap()) & !(1 << 31);
        s[8..12].copy_from_slice(&word.to_le_bytes());
        let crc = crc32fast::hash(&s[..12]);
        s[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    b[32..64].copy_from_slice(&slots);
    b.extend_from_slice(&[0x77; 7]);
    std::fs::write(&log, &b).unwrap();
    let ro = Index::open(d.path(), cfg(true, 902)).unwrap();
    assert_eq!(ro.len(), 1000);
    drop(ro);
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(ix.len(), 1000);
    assert_eq!(all_found(&ix, 0..1000), 1000);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
}

#[test]
fn zeroed_log_header_is_corrupted() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let log = d.path().join("log.1");
    let mut b = std::fs::read(&log).unwrap();
    b[..LOG_HEADER as usize].fill(0);
    std::fs::write(&log, b).unwrap();
    assert_refused(d.path(), &["log.1", "offset 0", "header"]);
}

/// Logs are created whole (under a temporary name, then renamed), so a log
/// cut inside its header, or a header alone that is garbled, cannot be a
/// crash at its creation: it is damage, and its entries are not dropped.
#[test]
fn log_cut_inside_its_header_or_a_garbled_header_alone_is_corrupted() {
    for keep in [0usize, 17, LOG_HEADER as usize] {
        let d = tempfile::tempdir().unwrap();
        store_903_97(d.path());
        let log = d.path().join("log.1");
        let mut b = std::fs::read(&log).unwrap();
        b.truncate(keep);
        if keep == LOG_HEADER as usize {
            b[3] ^= 0xFF;
        }
        std::fs::write(&log, b).unwrap();
        assert_refused(d.path(), &["log.1", "offset 0"]);
    }
}

/// A read-only open of an index whose meta file is gone while its logs
/// remain reports damage, not an absent index (the cemented store's damage
/// fuzz, seeds 1,300 and 51,637, met NOT_FOUND for its hash index).
#[test]
fn read_only_open_without_meta_beside_logs_is_corrupted() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("meta")).unwrap();
    match Index::open(d.path(), cfg(true, 200)) {
        Err(Error::Corrupted(m)) => assert!(m.contains("meta"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Index::open(empty.path(), cfg(true, 200)),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn deleted_data_while_meta_records_it_is_corrupted() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("data")).unwrap();
    assert_refused(d.path(), &["data", "missing"]);
}

#[test]
fn merge_over_damaged_data_aborts_and_keeps_the_state_before() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    // A log of 1,000 entries against a base of 903: the merge writes a new
    // base (a smaller one would rewrite only a delta and leave the base
    // unread).
    let ix = Index::open(d.path(), cfg(false, 1000)).unwrap();
    // Damage the data file under the open index (its pages are shared):
    // the last byte, a value in the entries section.
    let data = d.path().join("data");
    let len = std::fs::metadata(&data).unwrap().len();
    flip(&data, len - 1);
    let damaged = std::fs::read(&data).unwrap();
    let outcome = (1000..2100)
        .map(|i| ix.add(&key(i), &value(i), false))
        .find(Result::is_err)
        .unwrap_or_else(|| ix.await_merge());
    match outcome {
        Err(Error::Corrupted(m)) => assert!(m.contains("data"), "{m}"),
        other => panic!("merge over damaged data: {other:?}"),
    }
    // Nothing was published over the damage: the data file is the damaged
    // one, and the logs still hold every entry since.
    assert_eq!(std::fs::read(&data).unwrap(), damaged);
    assert!(d.path().join("log.1").is_file());
    assert!(d.path().join("log.2").is_file());
    drop(ix);
    assert_refused(d.path(), &["data"]);
}

#[test]
fn merge_over_a_damaged_frozen_log_aborts_and_keeps_the_state_before() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let ix = Index::open(d.path(), cfg(false, 200)).unwrap();
    let log = d.path().join("log.1");
    flip(&log, LOG_HEADER + 5 * ENTRY + 9);
    let damaged = std::fs::read(&log).unwrap();
    let data_before = std::fs::read(d.path().join("data")).unwrap();
    // The failed merge is reported by the next call.
    let outcome = (1000..1200)
        .map(|i| ix.add(&key(i), &value(i), false))
        .find(Result::is_err)
        .unwrap_or_else(|| ix.await_merge());
    match outcome {
        Err(Error::Corrupted(m)) => assert!(m.contains("log.1"), "{m}"),
        other => panic!("merge over a damaged log: {other:?}"),
    }
    // Entries added before the freeze went on into log.1: nothing of it
    // was cut, and the data file was not replaced.
    let now = std::fs::read(&log).unwrap();
    assert_eq!(&now[..damaged.len()], &damaged[..]);
    assert_eq!(std::fs::read(d.path().join("data")).unwrap(), data_before);
}

#[test]
fn check_reports_without_changing_then_repair_keeps_every_intact_entry() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let at = LOG_HEADER + 10 * ENTRY;
    flip(&d.path().join("log.1"), at + 3);
    let opts = cfg(false, 902).open;
    let before = snapshot(d.path());
    let report = Index::check(d.path(), &opts, false).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems.iter().any(|p| p.contains("log.1")),
        "{report:?}"
    );
    assert_eq!(
        snapshot(d.path()),
        before,
        "check without repair changed files"
    );

    let repaired = Index::check(d.path(), &opts, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let text = repaired.to_text();
    assert!(text.contains("96 of 97"), "{text}");
    let q = repaired.quarantine_dir.clone().expect("quarantine folder");
    assert_eq!(
        std::fs::read(q.join("log.1")).unwrap(),
        before[&d.path().join("log.1")],
        "the original log is kept in quarantine"
    );
    assert!(Index::check(d.path(), &opts, false).unwrap().is_ok());
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(ix.len(), 999);
    assert_eq!(ix.find(&key(913)).unwrap(), None);
    assert_eq!(all_found(&ix, (0..1000).filter(|&i| i != 913)), 999);
    ix.add(&key(5000), &value(5000), true).unwrap();
}

#[test]
fn repair_of_a_damaged_data_file_quarantines_it_and_keeps_the_log() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let data = d.path().join("data");
    let len = std::fs::metadata(&data).unwrap().len();
    flip(&data, len / 2);
    let opts = cfg(false, 902).open;
    assert!(!Index::check(d.path(), &opts, false).unwrap().is_ok());
    let repaired = Index::check(d.path(), &opts, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    assert!(
        repaired.quarantined.iter().any(|q| q == "data"),
        "{repaired:?}"
    );
    assert!(Index::check(d.path(), &opts, false).unwrap().is_ok());
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(ix.len(), 97);
    assert_eq!(all_found(&ix, 903..1000), 97);
}

#[test]
fn repair_after_data_deleted_keeps_the_log() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("data")).unwrap();
    let opts = cfg(false, 902).open;
    let report = Index::check(d.path(), &opts, false).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("missing")),
        "{report:?}"
    );
    assert!(Index::check(d.path(), &opts, true).unwrap().is_ok());
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(all_found(&ix, 903..1000), 97);
}

/// Found by the damage fuzz (seed 719): the read-write open wrote a fresh
/// `meta` before it refused a damaged log.
#[test]
fn refused_open_of_an_index_without_meta_writes_no_meta() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    std::fs::remove_file(d.path().join("meta")).unwrap();
    flip(&d.path().join("log.1"), LOG_HEADER + 40 * ENTRY + 1);
    let before = snapshot(d.path());
    assert!(matches!(
        Index::open(d.path(), cfg(false, 902)),
        Err(Error::Corrupted(_))
    ));
    assert_eq!(snapshot(d.path()), before);
    assert!(!d.path().join("meta").exists());
}

#[test]
fn repair_of_bytes_appended_to_data_keeps_every_entry() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let data = d.path().join("data");
    let len = std::fs::metadata(&data).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .unwrap();
    std::io::Write::write_all(&mut f, b"garbage after the end").unwrap();
    drop(f);
    assert_refused(d.path(), &["data", "bytes"]);
    let opts = cfg(false, 902).open;
    let repaired = Index::check(d.path(), &opts, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    assert_eq!(
        repaired.quarantined,
        [format!("data from byte {len}")],
        "{repaired:?}"
    );
    assert_eq!(std::fs::metadata(&data).unwrap().len(), len);
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(all_found(&ix, 0..1000), 1000);
}

/// Found by the damage fuzz (removable, seed 155): with `meta` and `data`
/// both damaged, repair took the sizes from a log header, which did not
/// say the index is removable; the repaired index then refused to open as
/// removable. Log headers now carry the flags (format 2).
#[test]
fn repair_of_meta_and_data_of_a_removable_index_keeps_it_removable() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(false, 10_000);
    c.removable = true;
    let ix = Index::open(d.path(), c.clone()).unwrap();
    for i in 0..50 {
        ix.add(&key(i), &value(i), false).unwrap();
    }
    ix.remove(&key(7), false).unwrap();
    ix.close().unwrap();
    std::fs::write(d.path().join("meta"), b"garbage").unwrap();
    std::fs::create_dir(d.path().join("data")).unwrap();
    let repaired = Index::check(d.path(), &c.open, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let ix = Index::open(d.path(), c).unwrap();
    assert_eq!(ix.len(), 49);
    assert_eq!(ix.find(&key(7)).unwrap(), None);
    assert_eq!(all_found(&ix, (0..50).filter(|&i| i != 7)), 49);
}

#[test]
fn repair_of_a_data_file_damaged_outside_its_entries_keeps_every_entry() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let data = d.path().join("data");
    // The fan-out table and the hashes follow the 64-byte header; the
    // entries (903 of 16 bytes) end the file.
    let entries_at = std::fs::metadata(&data).unwrap().len() - 903 * 16;
    flip(&data, entries_at - 8 * 100);
    assert_refused(d.path(), &["data", "hashes", "offset"]);
    let opts = cfg(false, 902).open;
    let repaired = Index::check(d.path(), &opts, true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    assert!(
        repaired
            .repaired
            .iter()
            .any(|r| r.contains("all 903 entries kept in log.0")),
        "{repaired:?}"
    );
    assert!(
        repaired.quarantined.iter().any(|q| q == "data"),
        "{repaired:?}"
    );
    assert!(Index::check(d.path(), &opts, false).unwrap().is_ok());
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(ix.len(), 1000);
    assert_eq!(all_found(&ix, 0..1000), 1000);
    // The salvaged entries merge again with the next ones.
    for i in 1000..2000 {
        ix.add(&key(i), &value(i), false).unwrap();
    }
    ix.await_merge().unwrap();
    drop(ix);
    let ix = Index::open(d.path(), cfg(false, 902)).unwrap();
    assert_eq!(all_found(&ix, 0..2000), 2000);
}

/// Found by the damage fuzz (removable, seed 2613): two runs of a log
/// exchanged moved whole, checksummed entries, a binding after the
/// tombstone that removed it, and the removed key came back. Entry
/// checksums now cover the log's generation and the entry's offset.
#[test]
fn reordered_log_entries_are_corrupted() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(false, 10_000);
    c.removable = true;
    let ix = Index::open(d.path(), c.clone()).unwrap();
    ix.add(&key(1), &value(1), false).unwrap();
    ix.remove(&key(1), false).unwrap();
    ix.close().unwrap();
    let log = d.path().join("log.0");
    let mut b = std::fs::read(&log).unwrap();
    let entry = (ENTRY + 1) as usize; // the removable tag byte
    let (first, second) = b[LOG_HEADER as usize..].split_at_mut(entry);
    first.swap_with_slice(&mut second[..entry]);
    std::fs::write(&log, b).unwrap();
    let before = snapshot(d.path());
    for read_only in [false, true] {
        let mut c = c.clone();
        c.open = cfg(read_only, 0).open;
        match Index::open(d.path(), c) {
            Err(Error::Corrupted(m)) => assert!(m.contains(&format!("offset {LOG_HEADER}")), "{m}"),
            Ok(ix) => panic!("removed key back: {:?}", ix.find(&key(1))),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(snapshot(d.path()), before);
}

/// Issue #15 rule 4: a log grown to a sparse 6 GiB is refused at its first
/// damaged entry, without reading (or allocating) the rest.
#[test]
fn sparse_6_gib_log_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    store_903_97(d.path());
    let log = d.path().join("log.1");
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    for read_only in [false, true] {
        let started = std::time::Instant::now();
        match Index::open(d.path(), cfg(read_only, 902)) {
            Err(Error::Corrupted(m)) => assert!(m.contains(&format!("offset {len}")), "{m}"),
            other => panic!("read_only {read_only}: {other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 6 << 30);
    }
}
