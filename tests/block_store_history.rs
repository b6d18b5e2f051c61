//! History-mode switches after Octez's `test_history_mode_switch.ml`:
//! which switches are allowed, where the savepoint and caboose go, what
//! the GC drops, that the mode persists, and that merges go on in the new
//! mode. The store: ten 20-block cycles merged with LPBL 180 and
//! `max_op_ttl` 1 (chunks [0, 20], [21, 40], ..., [161, 180]).

mod chain_util;

use chain_util::{block, hash_of, options};
use tzstore::Error;
use tzstore::block::Block;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::BlockStore;

fn merged(dir: &std::path::Path, mode: HistoryMode, offset: u32) -> BlockStore {
    let store = BlockStore::create(dir, options(mode, offset), &block(0).as_ref()).unwrap();
    for level in 1..=200 {
        store.store(&block(level).as_ref()).unwrap();
    }
    let ends: Vec<i32> = (1..10).map(|c| c * 20).collect();
    store.merge_preserving(&hash_of(200), &ends, 1).unwrap();
    store.await_merge().unwrap();
    store
}

/// Asserts that levels below `caboose` are gone, those below `savepoint`
/// have no metadata, the rest up to `top` have theirs; and the marks.
fn assert_history(store: &BlockStore, caboose: i32, savepoint: i32, top: i32) {
    assert_eq!(store.caboose().map(|d| d.level), Some(caboose), "caboose");
    assert_eq!(
        store.savepoint().map(|d| d.level),
        Some(savepoint),
        "savepoint"
    );
    for level in 0..=top {
        let got = store.read(&hash_of(level), 0, true).unwrap();
        let want = if level < caboose {
            None
        } else if level < savepoint {
            Some(Block {
                metadata: None,
                ..block(level)
            })
        } else {
            Some(block(level))
        };
        assert_eq!(got, want, "level {level}");
    }
}

#[test]
fn refused_switches_name_both_modes_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = merged(dir.path(), HistoryMode::Rolling, 2);
    for (mode, offset) in [(HistoryMode::Full, 2), (HistoryMode::Archive, 0)] {
        match store.switch_history_mode(&hash_of(200), mode, offset, 1) {
            Err(Error::InvalidArgument(m)) => {
                assert!(
                    m.contains("rolling 2") && m.contains("cannot switch"),
                    "{m}"
                )
            }
            other => panic!("{mode:?} accepted: {other:?}"),
        }
    }
    assert!(matches!(
        store.switch_history_mode(&hash_of(200), HistoryMode::Rolling, 1001, 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.switch_history_mode(&[7; 32], HistoryMode::Rolling, 1, 1),
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.history(), (HistoryMode::Rolling, 2));
    assert_history(&store, 141, 141, 200);
    let full = tempfile::tempdir().unwrap();
    let store = merged(full.path(), HistoryMode::Full, 1);
    assert!(matches!(
        store.switch_history_mode(&hash_of(200), HistoryMode::Archive, 0, 1),
        Err(Error::InvalidArgument(_))
    ));
}

/// ARCHIVE -> FULL 2 -> ROLLING 1 -> ROLLING 0 -> ROLLING 5, checking after
/// each switch and after a reopen, then merging on in the last mode.
#[test]
fn archive_to_full_to_rolling_moves_the_marks_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let store = merged(dir.path(), HistoryMode::Archive, 0);
    assert_history(&store, 0, 0, 200);
    let head = hash_of(200);

    // FULL 2: metadata of the two newest chunks and the preserved blocks.
    store
        .switch_history_mode(&head, HistoryMode::Full, 2, 1)
        .unwrap();
    assert_history(&store, 0, 141, 200);
    assert_eq!(store.cemented_metadata_chunks().len(), 2);

    // ROLLING 1: the newest chunk and the floating blocks.
    store
        .switch_history_mode(&head, HistoryMode::Rolling, 1, 1)
        .unwrap();
    assert_history(&store, 161, 161, 200);
    assert_eq!(store.cemented_chunks().len(), 1);

    // ROLLING 0: only the preserved blocks (179, 180) and above.
    store
        .switch_history_mode(&head, HistoryMode::Rolling, 0, 1)
        .unwrap();
    assert_history(&store, 179, 179, 200);
    assert!(store.cemented_chunks().is_empty());
    drop(store);
    let store =
        BlockStore::load(dir.path(), options(HistoryMode::Archive, 0), &hash_of(0)).unwrap();
    assert_eq!(store.history(), (HistoryMode::Rolling, 0));
    assert_history(&store, 179, 179, 200);

    // ROLLING 5: nothing to get back; the next merges keep up to 5 chunks.
    store
        .switch_history_mode(&head, HistoryMode::Rolling, 5, 1)
        .unwrap();
    assert_history(&store, 179, 179, 200);
    for level in 201..=240 {
        store.store(&block(level).as_ref()).unwrap();
    }
    store
        .merge_preserving(&hash_of(240), &[200, 220], 1)
        .unwrap();
    store.await_merge().unwrap();
    // Chunks [181, 200] and [201, 220] with metadata; 179 and 180 were only
    // preserved, and are gone: the marks follow the lowest kept block.
    assert_eq!(store.cemented_chunks().len(), 2);
    assert_history(&store, 181, 181, 240);
}

#[test]
fn full_to_full_changes_only_the_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = merged(dir.path(), HistoryMode::Full, 3);
    assert_history(&store, 0, 121, 200);
    store
        .switch_history_mode(&hash_of(200), HistoryMode::Full, 1, 1)
        .unwrap();
    assert_history(&store, 0, 161, 200);
    // A larger offset cannot bring metadata back: the savepoint stays.
    store
        .switch_history_mode(&hash_of(200), HistoryMode::Full, 4, 1)
        .unwrap();
    assert_history(&store, 0, 161, 200);
    assert_eq!(store.history(), (HistoryMode::Full, 4));
}
