//! Power cuts on the crash-model file system: an index adding, removing
//! and flushing through several merges. After a cut before any sync, under
//! every cut mode, the index opens, every key holds its value as of the
//! last acknowledged flush or a value written after it (never anything
//! else, never a torn entry), and a merge runs clean.

mod power_common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const KEYS: u64 = 24;

#[derive(Debug, Clone)]
enum Op {
    Add(u64, u64, bool),
    Remove(u64, bool),
    Flush,
}

fn ops() -> Vec<Op> {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    (0..90u64)
        .map(|i| match next() % 10 {
            0 => Op::Flush,
            1 | 2 => Op::Remove(next() % KEYS, next() % 4 == 0),
            _ => Op::Add(next() % KEYS, i, next() % 4 == 0),
        })
        .collect()
}

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

fn cfg(fs: &CrashFs) -> IndexConfig {
    let mut c = IndexConfig::new(8, 8);
    c.removable = true;
    c.log_size = 16;
    c.open = OpenOptions::read_write();
    c.open.fs = Arc::new(fs.clone());
    c
}

/// Runs the ops; returns, per op, the syncs done when it returned.
fn workload(fs: &CrashFs) -> Vec<u64> {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let idx = Index::open("/node/index", cfg(fs)).unwrap();
    let acked = ops()
        .iter()
        .map(|op| {
            match *op {
                Op::Add(k, v, flush) => idx.add(&key(k), &v.to_be_bytes(), flush).unwrap(),
                Op::Remove(k, flush) => idx.remove(&key(k), flush).unwrap(),
                Op::Flush => idx.flush().unwrap(),
            }
            fs.syncs()
        })
        .collect();
    idx.close().unwrap();
    acked
}

#[test]
fn flushed_bindings_survive_a_power_cut_at_every_sync() {
    let ops = ops();
    let states = power_common::at_every_sync(1, 150, 2, workload, |after, acked_at, k, mode| {
        // Durable: every op up to the last flushing one acknowledged before
        // the cut. Later ops may or may not have reached the disk.
        let done = acked_at.iter().take_while(|&&s| s <= k).count();
        let durable_upto = ops[..done]
            .iter()
            .rposition(|op| matches!(op, Op::Flush | Op::Add(_, _, true) | Op::Remove(_, true)))
            .map_or(0, |i| i + 1);
        let mut allowed: HashMap<u64, Vec<Option<u64>>> =
            (0..KEYS).map(|k| (k, vec![None])).collect();
        for op in &ops[..durable_upto] {
            match *op {
                Op::Add(key, v, _) => allowed.insert(key, vec![Some(v)]),
                Op::Remove(key, _) => allowed.insert(key, vec![None]),
                Op::Flush => None,
            };
        }
        for op in &ops[durable_upto..] {
            match *op {
                Op::Add(key, v, _) => allowed.entry(key).or_default().push(Some(v)),
                Op::Remove(key, _) => allowed.entry(key).or_default().push(None),
                Op::Flush => {}
            }
        }
        let idx = power_common::open_or_repair(
            mode,
            &format!("cut before sync {k} ({mode:?})"),
            || Index::open("/node/index", cfg(after)),
            |repair| Index::check("/node/index", &cfg(after).open, repair),
        );
        for (kk, ok) in &allowed {
            let got = idx
                .find(&key(*kk))
                .unwrap_or_else(|e| panic!("cut before sync {k} ({mode:?}): find {kk}: {e}"))
                .map(|v| u64::from_be_bytes(v.try_into().unwrap()));
            assert!(
                ok.contains(&got),
                "cut before sync {k} ({mode:?}): key {kk} reads {got:?}, allowed {ok:?} \
                 ({durable_upto} ops durable)"
            );
        }
        // The recovered index keeps working: a write, a merge, a reopen.
        idx.add(&key(KEYS + 1), &7u64.to_be_bytes(), true).unwrap();
        idx.await_merge().unwrap();
        idx.close().unwrap();
        let idx = Index::open("/node/index", cfg(after)).unwrap();
        assert_eq!(
            idx.find(&key(KEYS + 1)).unwrap(),
            Some(7u64.to_be_bytes().to_vec())
        );
    });
    assert!(states >= 300, "only {states} crash states");
}
