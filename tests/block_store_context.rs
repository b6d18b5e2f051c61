//! Resulting context hashes (Octez's `store_block block
//! resulting_context_hash`): stored with each block, read back without
//! reading the block from the floating index and from cemented records,
//! kept by merges (preserved and cemented copies alike), by reopening, and
//! by `tzstore copy`.

use std::process::Command;

mod chain_util;

use chain_util::{block, hash_of, options};
use tzstore::block::Hash;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::record::NO_CONTEXT;
use tzstore::block::store::BlockStore;

fn context_of(level: i32) -> Hash {
    let mut h = [0xC7; 32];
    h[28..].copy_from_slice(&level.to_be_bytes());
    h
}

fn assert_contexts(s: &BlockStore, levels: impl Iterator<Item = i32>, what: &str) {
    for l in levels {
        assert_eq!(
            s.resulting_context_hash(&hash_of(l)).unwrap(),
            Some(context_of(l)),
            "{what}: level {l}"
        );
    }
}

#[test]
fn context_hashes_survive_merges_reopens_and_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blocks");
    let s = BlockStore::open(&dir, options(HistoryMode::Archive, 1)).unwrap();
    for l in 0..=120 {
        s.store_with_context(&block(l).as_ref(), &context_of(l), l % 10 == 0)
            .unwrap();
    }
    // A block stored without one reads back zeros; an unknown one, None.
    let plain = block(121);
    s.store(&plain.as_ref()).unwrap();
    assert_eq!(
        s.resulting_context_hash(&plain.hash).unwrap(),
        Some(NO_CONTEXT)
    );
    assert_eq!(s.resulting_context_hash(&[9; 32]).unwrap(), None);
    assert_contexts(&s, 0..=120, "floating");
    s.merge_preserving(&hash_of(120), &[40, 80], 5).unwrap();
    s.await_merge().unwrap();
    assert_eq!(s.stats().unwrap().cemented_highest, Some(80));
    assert_contexts(&s, 0..=120, "after a merge");
    // The preserved copies (75..=80) leave the floating store in the next
    // merge: the cemented copies answer then.
    for l in 122..=160 {
        s.store_with_context(&block(l).as_ref(), &context_of(l), true)
            .unwrap();
    }
    s.merge_preserving(&hash_of(160), &[120], 0).unwrap();
    s.await_merge().unwrap();
    assert_contexts(&s, (0..=120).chain(122..=160), "after two merges");
    drop(s);
    let s = BlockStore::open(&dir, options(HistoryMode::Archive, 1)).unwrap();
    assert_contexts(&s, (0..=120).chain(122..=160), "reopened");
    drop(s);
    let copy = tmp.path().join("copy");
    let out = Command::new(env!("CARGO_BIN_EXE_tzstore"))
        .args(["copy", dir.to_str().unwrap(), copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = BlockStore::open(&copy, options(HistoryMode::Archive, 1)).unwrap();
    assert_contexts(&c, (0..=120).chain(122..=160), "copied");
}
