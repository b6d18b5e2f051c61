//! Read-only block stores following a writer with `sync` (Octez's
//! `Block_store.sync`): in one process across stores, merges, marks and a
//! history switch; and across processes, a writer child storing and
//! merging while this process syncs and reads throughout, never missing a
//! block the writer had stored before the sync.
//!
//! The writer role re-executes this test binary with `TZS_BS_SYNC_CHILD`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

mod chain_util;

use chain_util::{block, hash_of, options, read_only};
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::BlockStore;

const CHILD: &str = "TZS_BS_SYNC_CHILD";
const DIR: &str = "TZS_BS_SYNC_DIR";

#[test]
fn a_read_only_handle_follows_stores_merges_marks_and_switches() {
    let dir = tempfile::tempdir().unwrap();
    let w = BlockStore::create(
        dir.path(),
        options(HistoryMode::Archive, 1),
        &block(0).as_ref(),
    )
    .unwrap();
    for l in 1..=60 {
        w.store(&block(l).as_ref()).unwrap();
    }
    let r = BlockStore::open(dir.path(), read_only(options(HistoryMode::Archive, 1))).unwrap();
    assert_eq!(r.read(&hash_of(60), 0, true).unwrap(), Some(block(60)));
    // New blocks: unseen until a sync.
    for l in 61..=100 {
        w.store(&block(l).as_ref()).unwrap();
    }
    assert_eq!(r.read(&hash_of(100), 0, true).unwrap(), None);
    r.sync().unwrap();
    assert_eq!(r.read(&hash_of(100), 0, true).unwrap(), Some(block(100)));
    // Nothing new: a sync changes nothing.
    assert!(!r.sync().unwrap());
    // A merge: its chunks and its floating stores, and the marks.
    w.merge_preserving(&hash_of(100), &[40, 80], 1).unwrap();
    w.await_merge().unwrap();
    assert!(r.sync().unwrap());
    for l in 0..=100 {
        assert_eq!(
            r.read(&hash_of(l), 0, true).unwrap(),
            Some(block(l)),
            "level {l}"
        );
    }
    assert_eq!(
        r.read_by_level(40, false).unwrap().map(|b| b.level),
        Some(40)
    );
    assert_eq!(r.stats().unwrap().cemented_highest, Some(80));
    // Marks and a history switch.
    w.switch_history_mode(&hash_of(100), HistoryMode::Rolling, 1, 1)
        .unwrap();
    assert!(r.sync().unwrap());
    assert_eq!(r.history(), (HistoryMode::Rolling, 1));
    assert_eq!(r.savepoint(), w.savepoint());
    assert_eq!(r.caboose(), w.caboose());
    assert_eq!(r.caboose().map(|c| c.level), Some(41));
    for l in 41..=100 {
        assert!(
            r.read(&hash_of(l), 0, false).unwrap().is_some(),
            "level {l}"
        );
    }
    // A read-write handle's sync is a no-op.
    assert!(!w.sync().unwrap());
}

/// The writer child: stores blocks one by one (durably), merging every
/// 100 blocks, and prints `stored N` after each store returns.
fn writer_child(dir: &Path, total: i32) {
    let w = BlockStore::open(dir, options(HistoryMode::Archive, 1)).unwrap();
    let mut out = std::io::stdout();
    for l in 1..=total {
        w.store(&block(l).as_ref()).unwrap();
        if l % 100 == 0 && l >= 200 {
            w.merge_preserving(&hash_of(l), &[l - 100], 5).unwrap();
        }
        writeln!(out, "stored {l}").unwrap();
        out.flush().unwrap();
    }
    w.await_merge().unwrap();
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

#[test]
fn a_reader_process_syncing_throughout_never_misses_a_stored_block() {
    const TOTAL: i32 = 1500;
    if let Ok(dir) = std::env::var(DIR) {
        if std::env::var(CHILD).is_ok() {
            writer_child(Path::new(&dir), TOTAL);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    drop(
        BlockStore::create(
            dir.path(),
            options(HistoryMode::Archive, 1),
            &block(0).as_ref(),
        )
        .unwrap(),
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_reader_process_syncing_throughout_never_misses_a_stored_block",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "writer")
        .env(DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let r = BlockStore::open(dir.path(), read_only(options(HistoryMode::Archive, 1))).unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut syncs, mut merges_seen, mut done) = (0u32, 0u64, false);
    for line in lines {
        let line = line.unwrap();
        if line.contains("done") {
            done = true;
            break;
        }
        let Some(at) = line.rfind("stored ") else {
            continue;
        };
        let Ok(stored) = line[at + 7..].trim().parse::<i32>() else {
            continue;
        };
        r.sync().unwrap();
        syncs += 1;
        // The block just stored, its neighbours, and a spread below.
        let mut levels = vec![stored, stored - 1, stored / 2, stored / 3, 0];
        levels.extend((0..stored).step_by(97));
        for l in levels.into_iter().filter(|&l| l >= 0) {
            let got = r.read(&hash_of(l), 0, true).unwrap();
            assert_eq!(got, Some(block(l)), "level {l} after `stored {stored}`");
        }
        merges_seen = merges_seen.max(r.stats().unwrap().merges_done);
    }
    assert!(done, "the writer did not finish");
    assert!(child.wait().unwrap().success());
    r.sync().unwrap();
    for l in 0..=TOTAL {
        assert_eq!(
            r.read(&hash_of(l), 0, true).unwrap(),
            Some(block(l)),
            "level {l}"
        );
    }
    assert!(syncs as i32 >= TOTAL / 2, "only {syncs} syncs");
    assert!(merges_seen >= 5, "the reader saw only {merges_seen} merges");
}
