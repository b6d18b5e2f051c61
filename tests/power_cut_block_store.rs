//! Power cuts on the crash-model file system: a block store (archive mode)
//! storing a chain with a side branch, durably and in unflushed runs closed
//! by a flush, and merging it into cemented chunks. After a cut before any
//! sync, under every cut mode, the store opens, every block stored durably
//! before the cut reads back exactly (with its metadata), no read returns
//! another block, `check` passes, and the store takes new blocks.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::block::{Block, Hash};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const CHAIN: u64 = 48;

fn hash_of(id: u64) -> Hash {
    let mut h = [0x3C; 32];
    h[..8].copy_from_slice(&id.to_be_bytes());
    h
}

/// Main-chain block at level `id`; side-branch blocks have ids 1000+.
fn block(id: u64) -> Block {
    let (level, pred) = if id >= 1000 {
        let l = (id - 1000) as i32 + 20;
        let p = if id == 1000 {
            hash_of(19)
        } else {
            hash_of(id - 1)
        };
        (l, p)
    } else {
        (id as i32, hash_of(id.saturating_sub(1)))
    };
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents: format!("block {id} at level {level}").into_bytes(),
        metadata: (id % 3 != 1).then(|| vec![(id % 251) as u8; 40 + (id % 70) as usize]),
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Store(u64, bool),
    Flush,
    /// Merge up to this chunk end with the main chain's tip as head, and
    /// wait for it.
    Merge(i32, u64),
}

fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    for id in 0..CHAIN {
        // Runs of three unflushed stores closed by a flush.
        v.push(Op::Store(id, id % 4 == 0 || id < 2));
        if id % 4 == 3 {
            v.push(Op::Flush);
        }
        if id == 24 {
            for s in 1000..1004 {
                v.push(Op::Store(s, true));
            }
        }
        if id == 30 {
            v.push(Op::Merge(15, id));
        }
        if id == 45 {
            v.push(Op::Merge(31, id));
        }
    }
    v
}

fn options(fs: &CrashFs) -> BlockStoreOptions {
    let mut open = OpenOptions::read_write();
    open.fs = Arc::new(fs.clone());
    BlockStoreOptions {
        open,
        history_mode: HistoryMode::Archive,
        history_offset: 1,
        index_log_size: 16,
        ..BlockStoreOptions::default()
    }
}

fn workload(fs: &CrashFs) -> Vec<u64> {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let bs = BlockStore::open("/node/blocks", options(fs)).unwrap();
    let acked = ops()
        .iter()
        .map(|op| {
            match *op {
                Op::Store(id, flush) => bs.store_with(&block(id).as_ref(), flush).unwrap(),
                Op::Flush => bs.flush().unwrap(),
                Op::Merge(end, head) => {
                    bs.merge(&hash_of(head), &[end]).unwrap();
                    bs.await_merge().unwrap();
                }
            }
            fs.syncs()
        })
        .collect();
    drop(bs);
    acked
}

#[test]
fn durable_blocks_survive_a_power_cut_at_every_sync() {
    let ops = ops();
    let states = power_common::at_every_sync(1, 120, 1, workload, |after, acked_at, k, mode| {
        let at = |what: &str| format!("cut before sync {k} ({mode:?}): {what}");
        let done = acked_at.iter().take_while(|&&s| s <= k).count();
        let durable_upto = ops[..done]
            .iter()
            .rposition(|op| matches!(op, Op::Flush | Op::Store(_, true) | Op::Merge(..)))
            .map_or(0, |i| i + 1);
        let bs = power_common::open_or_repair(
            mode,
            &at(""),
            || BlockStore::open("/node/blocks", options(after)),
            |repair| BlockStore::check_dir("/node/blocks", &options(after), repair),
        );
        for op in &ops {
            let Op::Store(id, _) = *op else { continue };
            let want = block(id);
            // A merge cementing past a side branch drops it: once such a
            // merge has started (done or in flight), the branch may be gone.
            let dropped = id >= 1000
                && ops[..(done + 1).min(ops.len())]
                    .iter()
                    .any(|o| matches!(*o, Op::Merge(end, _) if end >= want.level));
            let durable = !dropped
                && ops[..durable_upto]
                    .iter()
                    .any(|o| matches!(*o, Op::Store(x, _) if x == id));
            match bs.read(&want.hash, 0, true) {
                Ok(Some(got)) => assert_eq!(got, want, "{}", at(&format!("block {id}"))),
                Ok(None) => assert!(
                    !durable,
                    "{}",
                    at(&format!(
                        "durable block {id} lost; files:\n{}",
                        after.tree()
                    ))
                ),
                Err(e) => panic!("{}", at(&format!("read block {id}: {e}"))),
            }
        }
        let report = bs.check(false).unwrap();
        assert!(report.is_ok(), "{}", at(&format!("{report:?}")));
        // The recovered store goes on: a new block on its highest block.
        let top = (0..CHAIN)
            .rev()
            .find(|&id| bs.mem(&hash_of(id)).unwrap())
            .unwrap_or(0);
        if bs.mem(&hash_of(top)).unwrap() {
            let next = Block {
                hash: hash_of(5000),
                level: top as i32 + 1,
                predecessor: hash_of(top),
                contents: b"after the cut".to_vec(),
                metadata: None,
            };
            bs.store(&next.as_ref()).unwrap();
            drop(bs);
            let bs = BlockStore::open("/node/blocks", options(after)).unwrap();
            assert_eq!(bs.read(&hash_of(5000), 0, false).unwrap(), Some(next));
        }
    });
    assert!(states >= 300, "only {states} crash states");
}
