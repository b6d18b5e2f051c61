//! Regression tests for the kv rows of issue 15 ("damaged files never cost
//! intact data"): journal lengths are bounded before anything is allocated,
//! a torn tail is told from damage, only regular files are opened, and a
//! key cannot make a tree walk overflow the stack.

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tzstore::io::beneath::Dir;
use tzstore::io::frame;
use tzstore::kv::{Kind, Kv};
use tzstore::{Error, OpenOptions};

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

/// A store whose journal holds three committed batches (`b0`, `b1`, `b2`
/// set to their index), with the offsets where each record starts.
fn store_with_journal(root: &Path) -> Vec<u64> {
    let kv = Kv::open(root, &opts()).unwrap();
    kv.set("plain/x", b"x").unwrap();
    let journal = root.join(".tzs-journal");
    let mut starts = Vec::new();
    for i in 0..3u8 {
        starts.push(std::fs::metadata(&journal).unwrap().len());
        kv.batch(0, |b| b.set(&format!("b{i}"), &[i; 40])).unwrap();
    }
    starts
}

/// Runs `f` in a thread and fails the test if it does not return within
/// 10 s (an open blocked on a FIFO).
fn at_once<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: blocked for 10 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: failed"),
    }
}

fn assert_corrupted_at(r: tzstore::Result<Kv>, file: &str, offset: Option<u64>) {
    match r {
        Err(Error::Corrupted(m)) => {
            assert!(m.contains(file), "{m}");
            if let Some(at) = offset {
                assert!(m.contains(&format!("offset {at}")), "{m}");
            }
        }
        other => panic!("expected CORRUPTED naming {file}: {other:?}"),
    }
}

// Row "kv journal: a length field set to ~4 GiB": the read-write open
// returned OK and cut the journal there, dropping the committed records
// after it.
#[test]
fn kv_journal_length_field_near_4_gib_is_corrupted_and_nothing_is_cut() {
    let d = tempfile::tempdir().unwrap();
    let starts = store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = starts[1] as usize;
    bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    std::fs::write(&journal, &bytes).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(starts[1]));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "journal changed");
    // A plausible length reaching past the end, with records after it.
    bytes[at..at + 4].copy_from_slice(&0x0010_0000u32.to_be_bytes());
    std::fs::write(&journal, &bytes).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(starts[1]));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "journal changed");
}

const SPARSE_CHILD: &str = "kv_sparse_6_gib_journal_is_corrupted_under_an_address_space_limit";

// Row "kv journal: a sparse 6 GiB journal": the open read the whole file
// into memory, so under an address-space limit the process aborted.
#[test]
fn kv_sparse_6_gib_journal_is_corrupted_under_an_address_space_limit() {
    if !common::is_child(SPARSE_CHILD) {
        let mut child = common::spawn_child(SPARSE_CHILD, &[]);
        let status = child.wait().unwrap();
        assert!(status.success(), "child failed: {status:?}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: setrlimit with a valid struct; it only lowers this process's limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(len));
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 6 << 30);
}

// Row "torn tail vs damage": a record failing its checksum followed by
// intact records was taken for a torn tail: OK, and the journal was cut
// there.
#[test]
fn kv_journal_checksum_failure_followed_by_records_is_corrupted_and_nothing_is_cut() {
    let d = tempfile::tempdir().unwrap();
    let starts = store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[starts[1] as usize + 20] ^= 0x10;
    std::fs::write(&journal, &bytes).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(starts[1]));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "journal changed");
    // Reads through a read-only handle are unaffected.
    let ro = Kv::open(d.path(), &OpenOptions::read_only()).unwrap();
    assert_eq!(ro.get("b2").unwrap(), [2; 40]);
}

// Row "torn tail vs damage": a garbled header (zeroed length) followed by
// records was a torn tail too.
#[test]
fn kv_journal_garbled_header_is_corrupted_and_nothing_is_cut() {
    let d = tempfile::tempdir().unwrap();
    let starts = store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = starts[2] as usize;
    bytes[at..at + 12].fill(0);
    std::fs::write(&journal, &bytes).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(starts[2]));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "journal changed");
}

// Row "torn tail vs damage": the last record, acknowledged (the store
// recorded it as applied), damaged: not a torn tail either.
#[test]
fn kv_journal_acknowledged_last_record_damaged_is_corrupted() {
    let d = tempfile::tempdir().unwrap();
    let starts = store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&journal, &bytes).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", Some(starts[2]));
    assert_eq!(std::fs::read(&journal).unwrap(), bytes);
    // Cut inside that record, or at a record boundary, or deleted: the
    // journal no longer holds what the store recorded as applied.
    for keep in [bytes.len() - 5, starts[2] as usize, 0] {
        std::fs::write(&journal, &bytes[..keep]).unwrap();
        assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", None);
        assert_eq!(std::fs::read(&journal).unwrap().len(), keep);
    }
    std::fs::remove_file(&journal).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", None);
}

// Row "torn tail vs damage": what may still be cut, the torn append of a
// commit that never returned (past the end recorded as applied).
#[test]
fn kv_journal_torn_last_record_of_an_unacknowledged_commit_is_cut() {
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    let journal = d.path().join(".tzs-journal");
    let whole = std::fs::read(&journal).unwrap();
    let mut payload = b"TZSKVJ01".to_vec();
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.push(1);
    payload.extend_from_slice(&2u32.to_be_bytes());
    payload.extend_from_slice(b"zz");
    payload.extend_from_slice(&3u64.to_be_bytes());
    payload.extend_from_slice(b"new");
    let rec = frame::encode(&payload).unwrap();
    for cut in [2, 9, rec.len() - 1] {
        let mut torn = whole.clone();
        torn.extend_from_slice(&rec[..cut]);
        std::fs::write(&journal, &torn).unwrap();
        let kv = Kv::open(d.path(), &opts()).unwrap();
        assert!(matches!(kv.get("zz"), Err(Error::NotFound(_))));
        assert_eq!(kv.get("b2").unwrap(), [2; 40]);
        drop(kv);
        store_with_journal(d.path());
        std::fs::write(&journal, &whole).unwrap();
    }
}

// Row "only regular files are opened": a FIFO in place of the journal or
// the generation file blocked the read-write open forever; a directory in
// their place, or a file in place of `.tzs-tmp`, was an I/O or argument
// error rather than damage.
#[test]
fn kv_fifo_or_directory_in_place_of_a_store_file_is_corrupted_at_once() {
    for name in [".tzs-journal", ".tzs-generation", ".tzs-lock"] {
        for fifo in [true, false] {
            let d = tempfile::tempdir().unwrap();
            store_with_journal(d.path());
            let p = d.path().join(name);
            std::fs::remove_file(&p).unwrap();
            if fifo {
                common::damage::mkfifo(&p).unwrap();
            } else {
                std::fs::create_dir(&p).unwrap();
            }
            let root = d.path().to_path_buf();
            let r = at_once(name, move || Kv::open(&root, &opts()));
            match r {
                Err(Error::Corrupted(m)) => {
                    assert!(m.contains(name) && m.contains("not a regular file"), "{m}")
                }
                other => panic!("{name} (fifo {fifo}): {other:?}"),
            }
            // The read-only open does not use them.
            let ro = Kv::open(d.path(), &OpenOptions::read_only()).unwrap();
            assert_eq!(ro.get("b1").unwrap(), [1; 40]);
        }
    }
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    std::fs::remove_dir_all(d.path().join(".tzs-tmp")).unwrap();
    common::damage::mkfifo(&d.path().join(".tzs-tmp")).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-tmp", None);
}

// Row "only regular files are opened", for values: a FIFO, a socket-like
// special file or a directory where a value was is an error at once.
#[test]
fn kv_fifo_or_directory_in_place_of_a_value_is_an_error_at_once() {
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    std::fs::remove_file(d.path().join("plain/x")).unwrap();
    common::damage::mkfifo(&d.path().join("plain/x")).unwrap();
    std::fs::remove_file(d.path().join("b0")).unwrap();
    std::fs::create_dir(d.path().join("b0")).unwrap();
    let root = d.path().to_path_buf();
    at_once("reads", move || {
        for ro in [true, false] {
            let o = if ro { OpenOptions::read_only() } else { opts() };
            let kv = Kv::open(&root, &o).unwrap();
            assert!(matches!(kv.get("plain/x"), Err(Error::InvalidArgument(_))));
            assert!(matches!(
                kv.get_partial("plain/x", 0, 1),
                Err(Error::InvalidArgument(_))
            ));
            assert!(matches!(
                kv.digest("plain/x"),
                Err(Error::InvalidArgument(_))
            ));
            match kv.get("b0") {
                // The read-write open rolled the journal forward over it.
                Ok(v) => assert!(!ro && v == [0; 40], "{v:?}"),
                Err(e) => assert!(ro && matches!(e, Error::ValueExpected(_)), "{e}"),
            }
            assert_eq!(kv.list("plain").unwrap(), vec![]);
            kv.digest("").unwrap();
        }
    });
}

// Row "kv: a 15,000-segment key stored, then digest of the root": stack
// overflow. Keys are limited to MAX_DEPTH segments, and a deeper tree made
// by hand is walked without recursion.
#[test]
fn kv_15000_segment_key_is_refused_and_a_deep_tree_does_not_overflow_the_stack() {
    let d = tempfile::tempdir().unwrap();
    let kv = Kv::open(d.path(), &opts()).unwrap();
    let deep = vec!["s"; 15_000].join("/");
    assert!(matches!(
        kv.set(&deep, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        kv.batch(0, |b| b.set(&deep, b"v")),
        Err(Error::InvalidArgument(_))
    ));
    kv.set("a", b"1").unwrap();
    assert!(matches!(
        kv.rename("a", &deep),
        Err(Error::InvalidArgument(_))
    ));
    let max = vec!["m"; 256].join("/"); // key::MAX_DEPTH
    kv.set(&max, b"deepest").unwrap();
    assert_eq!(kv.get(&max).unwrap(), b"deepest");
    kv.digest("").unwrap();
    // 4,000 levels put there by other means (fewer than the key's 15,000
    // to keep the test short; walked the same way).
    let mut dir = Dir::open(d.path()).unwrap();
    for _ in 0..4_000 {
        dir.mkdir("s").unwrap();
        dir = dir.open_dir("s").unwrap();
    }
    std::fs::write(d.path().join("s/s/s/v"), b"v").unwrap();
    drop(dir);
    assert!(matches!(kv.digest(""), Err(Error::InvalidArgument(_))));
    assert_eq!(kv.exists("s/s").unwrap(), Some(Kind::Dictionary));
    // Removal flattens it rather than recursing.
    kv.remove("s").unwrap();
    assert_eq!(kv.exists("s").unwrap(), None);
    kv.digest("").unwrap();
    assert!(
        std::fs::read_dir(d.path().join(".tzs-tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}

// Without `.tzs-generation` nothing says which journal records were
// acknowledged, so no bad record could be judged torn: a non-empty
// journal beside a missing generation file is damage; repair keeps the
// journal when every record is whole.
#[test]
fn kv_journal_beside_a_missing_generation_file_is_corrupted_and_repair_keeps_whole_records() {
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    std::fs::remove_file(d.path().join(".tzs-generation")).unwrap();
    assert_corrupted_at(Kv::open(d.path(), &opts()), ".tzs-journal", None);
    let before = Kv::check(d.path(), &opts(), false).unwrap();
    assert!(!before.is_ok());
    let repaired = Kv::check(d.path(), &opts(), true).unwrap();
    assert!(repaired.is_ok(), "{}", repaired.to_text());
    assert!(
        repaired.to_text().contains("3 whole record(s)"),
        "{}",
        repaired.to_text()
    );
    let kv = Kv::open(d.path(), &opts()).unwrap();
    for i in 0..3u8 {
        assert_eq!(kv.get(&format!("b{i}")).unwrap(), [i; 40]);
    }
}

// Repair of a journal damaged in its middle record keeps the records after
// it, never those before (replaying them without the damaged one could put
// back a value it replaced), and quarantines the damaged file.
#[test]
fn kv_check_repair_keeps_the_records_after_the_damage_and_quarantines_the_journal() {
    let d = tempfile::tempdir().unwrap();
    let kv = Kv::open(d.path(), &opts()).unwrap();
    let journal = d.path().join(".tzs-journal");
    let mut starts = Vec::new();
    for v in [b"1", b"2", b"3"] {
        starts.push(std::fs::metadata(&journal).unwrap().len());
        kv.batch(0, |b| b.set("k", v)).unwrap();
    }
    drop(kv);
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[starts[1] as usize + 14] ^= 4;
    std::fs::write(&journal, &bytes).unwrap();
    let r = Kv::check(d.path(), &opts(), true).unwrap();
    assert!(r.is_ok(), "{}", r.to_text());
    let q = r.quarantine_dir.clone().unwrap();
    assert_eq!(std::fs::read(q.join(".tzs-journal")).unwrap(), bytes);
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        bytes[starts[2] as usize..].to_vec()
    );
    let kv = Kv::open(d.path(), &opts()).unwrap();
    assert_eq!(kv.get("k").unwrap(), b"3");
    assert!(kv.list("").unwrap().iter().all(|(n, _)| n == "k"));
}

const SPARSE_VALUE_CHILD: &str = "kv_sparse_6_gib_value_is_an_error_under_an_address_space_limit";

// Rule 4 for values: a value file grown to a sparse 6 GiB made `get`
// allocate 6 GiB at once (an abort under an address-space limit); now the
// allocation is tried first and fails with NO_SPACE.
#[test]
fn kv_sparse_6_gib_value_is_an_error_under_an_address_space_limit() {
    if !common::is_child(SPARSE_VALUE_CHILD) {
        let mut child = common::spawn_child(SPARSE_VALUE_CHILD, &[]);
        let status = child.wait().unwrap();
        assert!(status.success(), "child failed: {status:?}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    store_with_journal(d.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(d.path().join("plain/x"))
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: setrlimit with a valid struct; it only lowers this process's limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let kv = Kv::open(d.path(), &OpenOptions::read_only()).unwrap();
    assert!(matches!(kv.get("plain/x"), Err(Error::NoSpace(_))));
    assert!(matches!(
        kv.get_partial("plain/x", 0, u64::MAX),
        Err(Error::NoSpace(_))
    ));
    assert_eq!(kv.get_partial("plain/x", 1 << 32, 3).unwrap(), [0, 0, 0]);
    assert_eq!(kv.size("plain/x").unwrap(), 6 << 30);
}
