//! The block store against Octez's own block-store tests
//! (`src/lib_store/unix/test/test_block_store.ml`): ten 20-block cycles
//! stored, then merged with the head's last preserved block (LPBL) and
//! `max_op_ttl` 1, in every history mode, asserting which blocks are kept,
//! which keep their metadata, and where the savepoint and caboose end; the
//! same cycle by cycle; and the genesis, savepoint and caboose bookkeeping.

mod chain_util;

use chain_util::{block, hash_of, options};
use tzstore::Error;
use tzstore::OpenOptions;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockDescr, BlockStore, BlockStoreOptions, MergeStatus};
// A failed merge's status: tests/damage_block_store.rs
// (damaged_side_branch_record_size_aborts_the_merge).
use tzstore::block::Block;

const CYCLE: i32 = 20;
const CYCLES: i32 = 10;
/// Octez's test blocks have `max_operations_ttl` 1.
const MAX_OP_TTL: u32 = 1;

/// A store created with genesis and holding levels 1..=`CYCLES * CYCLE`.
fn filled(dir: &std::path::Path, mode: HistoryMode, offset: u32) -> BlockStore {
    let store = BlockStore::create(dir, options(mode, offset), &block(0).as_ref()).unwrap();
    for level in 1..=CYCLES * CYCLE {
        store.store(&block(level).as_ref()).unwrap();
    }
    store
}

/// Octez's `perform_n_cycles_merge`: one merge whose head is the last
/// block, whose LPBL is the end of the next-to-last cycle, and whose chunks
/// are the cycles up to it.
fn merge_all(store: &BlockStore) {
    let head = hash_of(CYCLES * CYCLE);
    let ends: Vec<i32> = (1..CYCLES).map(|c| c * CYCLE).collect();
    store.merge_preserving(&head, &ends, MAX_OP_TTL).unwrap();
    store.await_merge().unwrap();
    assert_eq!(store.merge_status(), MergeStatus::NotRunning);
}

/// What a read of level `level` by hash finds: absent, without metadata,
/// or with the metadata it was stored with.
#[derive(Debug, PartialEq)]
enum Found {
    Absent,
    Pruned,
    Full,
}

fn found(store: &BlockStore, level: i32) -> Found {
    match store.read(&hash_of(level), 0, true).unwrap() {
        None => Found::Absent,
        Some(b) => {
            assert_eq!(
                b,
                Block {
                    metadata: b.metadata.clone(),
                    ..block(level)
                }
            );
            match b.metadata {
                None => Found::Pruned,
                Some(m) => {
                    assert_eq!(Some(m), block(level).metadata, "metadata of {level}");
                    Found::Full
                }
            }
        }
    }
}

/// Asserts `expect(level)` for every stored level.
fn assert_levels(store: &BlockStore, expect: impl Fn(i32) -> Found) {
    for level in 0..=CYCLES * CYCLE {
        assert_eq!(found(store, level), expect(level), "level {level}");
    }
}

fn level_of(d: Option<BlockDescr>) -> i32 {
    let d = d.expect("recorded");
    assert_eq!(d.hash, hash_of(d.level));
    d.level
}

/// LPBL 180, `max_op_ttl` 1: the lowest preserved block is 179.
const LOWEST_PRESERVED: i32 = (CYCLES - 1) * CYCLE - MAX_OP_TTL as i32;

#[test]
fn archive_merge_keeps_everything_and_savepoint_and_caboose_at_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Archive, 0);
    merge_all(&store);
    assert_levels(&store, |_| Found::Full);
    assert_eq!(level_of(store.savepoint()), 0);
    assert_eq!(level_of(store.caboose()), 0);
}

#[test]
fn full_0_merge_keeps_metadata_only_from_the_lowest_preserved_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Full, 0);
    merge_all(&store);
    assert_levels(&store, |l| {
        if l < LOWEST_PRESERVED {
            Found::Pruned
        } else {
            Found::Full
        }
    });
    assert_eq!(level_of(store.savepoint()), LOWEST_PRESERVED);
    assert_eq!(level_of(store.caboose()), 0);
    // The cemented top is cemented without metadata, and read by level
    // with the floating copy's metadata.
    let top = (CYCLES - 1) * CYCLE;
    assert_eq!(store.stats().unwrap().cemented_highest, Some(top));
    assert_eq!(store.read_by_level(top, true).unwrap(), Some(block(top)));
    assert_eq!(
        store
            .read_by_level(top - 5, true)
            .unwrap()
            .map(|b| b.metadata),
        Some(None)
    );
}

#[test]
fn full_2_merge_keeps_metadata_of_the_last_two_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Full, 2);
    merge_all(&store);
    // Chunks [0, 20], [21, 40], ..., [161, 180]: the 2 newest start at 141.
    let savepoint = (CYCLES - 3) * CYCLE + 1;
    assert_levels(&store, |l| {
        if l < savepoint {
            Found::Pruned
        } else {
            Found::Full
        }
    });
    assert_eq!(level_of(store.savepoint()), savepoint);
    assert_eq!(level_of(store.caboose()), 0);
}

#[test]
fn rolling_0_merge_keeps_only_the_preserved_blocks_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Rolling, 0);
    merge_all(&store);
    assert_levels(&store, |l| {
        if l < LOWEST_PRESERVED {
            Found::Absent
        } else {
            Found::Full
        }
    });
    assert_eq!(level_of(store.savepoint()), LOWEST_PRESERVED);
    assert_eq!(level_of(store.caboose()), LOWEST_PRESERVED);
    // Octez cements nothing in ROLLING 0.
    assert_eq!(store.stats().unwrap().cemented_blocks, 0);
}

#[test]
fn rolling_2_merge_keeps_the_last_two_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Rolling, 2);
    merge_all(&store);
    let savepoint = (CYCLES - 3) * CYCLE + 1;
    assert_levels(&store, |l| {
        if l < savepoint {
            Found::Absent
        } else {
            Found::Full
        }
    });
    assert_eq!(level_of(store.savepoint()), savepoint);
    assert_eq!(level_of(store.caboose()), savepoint);
}

/// A node merges once per cycle: each merge's LPBL is the end of the cycle
/// before the head's. The bookkeeping must hold after every one, across a
/// reopen, and ROLLING 0 (which cements nothing) must go on merging.
#[test]
fn merges_cycle_by_cycle_in_every_mode_keep_the_marks_right() {
    for (mode, offset) in [
        (HistoryMode::Archive, 0),
        (HistoryMode::Full, 0),
        (HistoryMode::Full, 2),
        (HistoryMode::Rolling, 0),
        (HistoryMode::Rolling, 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            BlockStore::create(dir.path(), options(mode, offset), &block(0).as_ref()).unwrap();
        let mut stored = 0;
        for cycle in 1..=CYCLES {
            for level in stored + 1..=cycle * CYCLE {
                store.store(&block(level).as_ref()).unwrap();
            }
            stored = cycle * CYCLE;
            if cycle < 2 {
                continue;
            }
            let lpbl = (cycle - 1) * CYCLE;
            store
                .merge_preserving(&hash_of(stored), &[lpbl], MAX_OP_TTL)
                .unwrap();
            store.await_merge().unwrap();
            let lowest_preserved = lpbl - MAX_OP_TTL as i32;
            // Chunks [0, 20], [21, 40], ...: the `offset`-th newest of the
            // `cycle - 1` starts the savepoint once there are that many.
            let chunks = cycle - 1;
            let expect_savepoint = match (mode, offset as i32) {
                (HistoryMode::Archive, _) => 0,
                (_, 0) => lowest_preserved,
                (_, n) if chunks <= n => 0,
                (_, n) => (chunks - n) * CYCLE + 1,
            };
            let expect_caboose = match mode {
                HistoryMode::Rolling => expect_savepoint,
                _ => 0,
            };
            let what = format!("{mode:?} {offset}, cycle {cycle}");
            assert_eq!(level_of(store.savepoint()), expect_savepoint, "{what}");
            assert_eq!(level_of(store.caboose()), expect_caboose, "{what}");
            if cycle == 6 {
                drop(store);
                store = BlockStore::load(dir.path(), options(mode, offset), &hash_of(0)).unwrap();
                assert_eq!(
                    level_of(store.savepoint()),
                    expect_savepoint,
                    "{what}, reopened"
                );
            }
            for level in 0..=stored {
                let expect = if level < expect_caboose {
                    Found::Absent
                } else if level < expect_savepoint {
                    Found::Pruned
                } else {
                    Found::Full
                };
                assert_eq!(found(&store, level), expect, "{what}, level {level}");
            }
        }
    }
}

#[test]
fn create_refuses_a_populated_directory_and_load_checks_the_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options(HistoryMode::Full, 1);
    let store = BlockStore::create(dir.path(), opts(), &block(0).as_ref()).unwrap();
    assert_eq!(level_of(store.genesis()), 0);
    store.store(&block(1).as_ref()).unwrap();
    drop(store);
    assert!(matches!(
        BlockStore::create(dir.path(), opts(), &block(0).as_ref()),
        Err(Error::InvalidArgument(_))
    ));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        BlockStore::load(other.path(), opts(), &hash_of(0)),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        BlockStore::load(dir.path(), opts(), &[9; 32]),
        Err(Error::Inconsistent(_))
    ));
    let store = BlockStore::load(dir.path(), opts(), &hash_of(0)).unwrap();
    assert_eq!(found(&store, 1), Found::Full);
    // A second first block cannot replace the genesis.
    let dir2 = tempfile::tempdir().unwrap();
    let plain = BlockStore::open(dir2.path(), opts()).unwrap();
    assert_eq!(plain.genesis(), None);
    plain.store(&block(0).as_ref()).unwrap();
    assert_eq!(level_of(plain.genesis()), 0);
}

#[test]
fn savepoint_and_caboose_writes_are_checked_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options(HistoryMode::Full, 1);
    let store = filled(dir.path(), HistoryMode::Full, 1);
    let at = |level: i32| BlockDescr {
        hash: hash_of(level),
        level,
    };
    store.write_caboose(at(10)).unwrap_err(); // above the savepoint (0)
    store.write_savepoint(at(50)).unwrap();
    store.write_caboose(at(10)).unwrap();
    assert!(matches!(
        store.write_savepoint(at(5)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.write_savepoint(BlockDescr {
            hash: hash_of(60),
            level: 61
        }),
        Err(Error::Inconsistent(_))
    ));
    assert!(matches!(
        store.write_savepoint(BlockDescr {
            hash: [7; 32],
            level: 60
        }),
        Err(Error::NotFound(_))
    ));
    drop(store);
    let store = BlockStore::load(dir.path(), opts(), &hash_of(0)).unwrap();
    assert_eq!(store.savepoint(), Some(at(50)));
    assert_eq!(store.caboose(), Some(at(10)));
    let ro = BlockStore::open(
        dir.path(),
        BlockStoreOptions {
            open: OpenOptions::read_only(),
            ..opts()
        },
    )
    .unwrap();
    assert!(matches!(
        ro.write_savepoint(at(60)),
        Err(Error::ReadOnly(_))
    ));
}
