//! Power cuts on the crash-model file system: an indexed file appending,
//! flushing and compacting (gc into a new generation). After a cut before
//! any sync, under every cut mode, the store opens, every value flushed
//! before the cut and kept by the compactions reads back exactly, and no
//! key ever reads another key's value or a torn one.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

#[derive(Debug, Clone, Copy)]
enum Op {
    Append(u64, bool),
    Flush,
    /// Compact, keeping keys not divisible by this, and wait for it.
    Gc(u64),
}

fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    for k in 0..60u64 {
        v.push(Op::Append(k, k % 3 == 0));
        if k % 10 == 9 {
            v.push(Op::Flush);
        }
        if k == 29 {
            v.push(Op::Gc(4));
        }
    }
    v.push(Op::Gc(5));
    v.push(Op::Append(1000, true));
    v
}

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

fn value(k: u64) -> Vec<u8> {
    let len = 10 + (k * 37 % 300) as usize;
    (0..len)
        .map(|i| (k as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn header(k: u64) -> [u8; 4] {
    (k as u32 ^ 0xA5A5_A5A5).to_be_bytes()
}

fn cfg(fs: &CrashFs) -> IndexedFileConfig {
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value: false,
        log_size: 16,
        open: {
            let mut o = OpenOptions::read_write();
            o.fs = Arc::new(fs.clone());
            o
        },
    }
}

fn workload(fs: &CrashFs) -> Vec<u64> {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let f = IndexedFile::open("/node/values", cfg(fs)).unwrap();
    ops()
        .iter()
        .map(|op| {
            match *op {
                Op::Append(k, flush) => f
                    .append(&key(k), Some(&header(k)), &value(k), flush)
                    .unwrap(),
                Op::Flush => f.flush().unwrap(),
                Op::Gc(d) => {
                    f.gc(|kb| u64::from_be_bytes(kb.try_into().unwrap()) % d != 0)
                        .unwrap();
                    f.await_gc().unwrap();
                }
            }
            fs.syncs()
        })
        .collect()
}

#[test]
fn flushed_values_survive_a_power_cut_at_every_sync() {
    let ops = ops();
    let states = power_common::at_every_sync(1, 150, 2, workload, |after, acked_at, k, mode| {
        let done = acked_at.iter().take_while(|&&s| s <= k).count();
        let durable_upto = ops[..done]
            .iter()
            .rposition(|op| matches!(op, Op::Flush | Op::Append(_, true)))
            .map_or(0, |i| i + 1);
        let before_open = after.tree();
        let f = power_common::open_or_repair(
            mode,
            &format!("cut before sync {k} ({mode:?})"),
            || IndexedFile::open("/node/values", cfg(after)),
            |repair| IndexedFile::check("/node/values", &cfg(after).open, repair),
        );
        let dropped_by = |key: u64| {
            ops.iter()
                .any(|op| matches!(*op, Op::Gc(d) if key % d == 0))
        };
        for op in &ops {
            let Op::Append(kk, _) = *op else { continue };
            let got = f
                .read(&key(kk))
                .unwrap_or_else(|e| panic!("cut before sync {k} ({mode:?}): read {kk}: {e}"));
            let was_durable = ops[..durable_upto]
                .iter()
                .any(|o| matches!(*o, Op::Append(x, _) if x == kk));
            match got {
                Some((v, h)) => {
                    assert_eq!(v, value(kk), "cut before sync {k} ({mode:?}): key {kk}");
                    assert_eq!(h, header(kk), "cut before sync {k} ({mode:?}): key {kk}");
                }
                None => assert!(
                    !was_durable || dropped_by(kk),
                    "cut before sync {k} ({mode:?}): flushed key {kk} lost ({durable_upto} ops durable, {done} done)\nbefore open:\n{before_open}after:\n{}",
                    after.tree()
                ),
            }
        }
        f.append(&key(5000), Some(&header(5000)), &value(5000), true)
            .unwrap();
        drop(f);
        let f = IndexedFile::open("/node/values", cfg(after)).unwrap();
        assert_eq!(f.read(&key(5000)).unwrap().unwrap().0, value(5000));
    });
    assert!(states >= 300, "only {states} crash states");
}
