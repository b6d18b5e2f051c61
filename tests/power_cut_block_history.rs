//! Power cuts during the chain bookkeeping: savepoint and caboose writes
//! and history-mode switches (with their GC), on the crash-model file
//! system. After a cut before any sync, under every cut mode, the store
//! opens with the marks and mode of the last acknowledged operation or of
//! the one in flight, never a mix; the savepoint's block and every block
//! above it read with metadata, every block from the caboose up reads, and
//! the store merges on.

mod chain_util;
mod power_common;

use chain_util::{block, hash_of};

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::block::Block;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockDescr, BlockStore, BlockStoreOptions};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const TOP: i32 = 100;

fn at(level: i32) -> BlockDescr {
    BlockDescr {
        hash: hash_of(level),
        level,
    }
}

fn options(fs: &CrashFs) -> BlockStoreOptions {
    let mut open = OpenOptions::read_write();
    open.fs = Arc::new(fs.clone());
    BlockStoreOptions {
        open,
        history_mode: HistoryMode::Archive,
        history_offset: 0,
        index_log_size: 16,
        ..BlockStoreOptions::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    WriteSavepoint(i32),
    WriteCaboose(i32),
    Switch(HistoryMode, u32),
}

/// (mode, offset, savepoint level, caboose level) after each operation.
type Marks = (HistoryMode, u32, i32, i32);

const OPS: [Op; 6] = [
    Op::WriteSavepoint(30),
    Op::WriteCaboose(10),
    Op::Switch(HistoryMode::Full, 2),
    Op::Switch(HistoryMode::Rolling, 1),
    Op::WriteSavepoint(90),
    Op::Switch(HistoryMode::Rolling, 0),
];

fn marks(bs: &BlockStore) -> Marks {
    let (mode, offset) = bs.history();
    let level = |d: Option<BlockDescr>| d.map_or(-1, |d| d.level);
    (mode, offset, level(bs.savepoint()), level(bs.caboose()))
}

/// Builds an ARCHIVE store of levels 0..=100 merged into chunks ending at
/// 20, 40, 60, 80 (durably, before the cuts that matter), then runs `OPS`;
/// returns the sync count and the marks after each operation (the first
/// entry: before any).
fn workload(fs: &CrashFs) -> (Vec<u64>, Vec<Marks>) {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let bs = BlockStore::create("/node/blocks", options(fs), &block(0).as_ref()).unwrap();
    for level in 1..=TOP {
        bs.store_with(&block(level).as_ref(), level == TOP).unwrap();
    }
    bs.merge_preserving(&hash_of(TOP), &[20, 40, 60, 80], 1)
        .unwrap();
    bs.await_merge().unwrap();
    let mut acked = vec![fs.syncs()];
    let mut states = vec![marks(&bs)];
    for op in OPS {
        match op {
            Op::WriteSavepoint(l) => bs.write_savepoint(at(l)).unwrap(),
            Op::WriteCaboose(l) => bs.write_caboose(at(l)).unwrap(),
            Op::Switch(mode, offset) => bs
                .switch_history_mode(&hash_of(TOP), mode, offset, 1)
                .unwrap(),
        }
        acked.push(fs.syncs());
        states.push(marks(&bs));
    }
    drop(bs);
    (acked, states)
}

#[test]
fn marks_and_mode_are_old_or_new_after_a_power_cut_at_every_sync() {
    let (_, expected) = workload(&CrashFs::new().unwrap());
    // The workload itself: what each operation leaves.
    assert_eq!(expected[0], (HistoryMode::Archive, 0, 0, 0));
    assert_eq!(expected[1], (HistoryMode::Archive, 0, 30, 0));
    assert_eq!(expected[2], (HistoryMode::Archive, 0, 30, 10));
    assert_eq!(expected[3], (HistoryMode::Full, 2, 41, 10));
    assert_eq!(expected[4], (HistoryMode::Rolling, 1, 61, 61));
    assert_eq!(expected[5], (HistoryMode::Rolling, 1, 90, 61));
    assert_eq!(expected[6], (HistoryMode::Rolling, 0, 90, 90));
    let states = power_common::at_every_sync(1, 60, 1, workload, |after, (acked, _), k, mode| {
        let what = format!("cut before sync {k} ({mode:?})");
        let bs = power_common::open_or_repair(
            mode,
            &what,
            || BlockStore::open("/node/blocks", options(after)),
            |repair| BlockStore::check_dir("/node/blocks", &options(after), repair),
        );
        // Cuts inside the set-up (before the first mark operation) only
        // need a store that opens; the block-store power-cut test covers
        // its blocks.
        let done = acked.iter().take_while(|&&s| s <= k).count();
        if done == 0 {
            return;
        }
        let got = marks(&bs);
        let old = expected[done - 1];
        let new = expected[done.min(expected.len() - 1)];
        assert!(
            got == old || got == new,
            "{what}: marks {got:?}, want {old:?} or {new:?}"
        );
        let (_, _, savepoint, caboose) = got;
        for level in caboose..=TOP {
            let b = bs.read(&hash_of(level), 0, true).unwrap();
            let Some(b) = b else {
                panic!("{what}: block {level} at or above the caboose {caboose} is gone");
            };
            if level >= savepoint {
                assert_eq!(b, block(level), "{what}: block {level} with metadata");
            }
        }
        // It merges on.
        let next = Block {
            hash: hash_of(TOP + 1),
            level: TOP + 1,
            predecessor: hash_of(TOP),
            contents: b"after".to_vec(),
            metadata: None,
        };
        bs.store(&next.as_ref()).unwrap();
        bs.merge_preserving(&hash_of(TOP + 1), &[95], 1).unwrap();
        bs.await_merge().unwrap();
        assert!(bs.check(false).unwrap().is_ok(), "{what}");
    });
    assert!(states >= 100, "only {states} crash states");
}
