//! Power cuts on the crash-model file system: a cemented store cementing
//! chunks (with and without metadata) and running the history modes' GC.
//! After a cut before any sync, under every cut mode, the store opens,
//! every chunk acknowledged before the cut (and not dropped by a GC that had
//! started) reads back exactly, a chunk in flight is all there or absent,
//! and `check_consistency` passes.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::block::cemented::{Cemented, HistoryMode};
use tzstore::block::{Block, Hash};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;

const CHUNK: i32 = 8;

fn hash_of(level: i32) -> Hash {
    let mut h = [0xC3; 32];
    h[..4].copy_from_slice(&level.to_be_bytes());
    h
}

fn block(level: i32) -> Block {
    Block {
        hash: hash_of(level),
        level,
        predecessor: hash_of(level - 1),
        contents: format!("cemented block {level}").into_bytes(),
        metadata: Some(vec![level as u8; 30 + (level % 50) as usize]),
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Cement chunk `n` (levels n*CHUNK ..= n*CHUNK+CHUNK-1), with metadata?
    Cement(i32, bool),
    /// GC in a mode keeping `offset` chunks.
    Gc(HistoryMode, u32),
}

fn ops() -> Vec<Op> {
    vec![
        Op::Cement(0, true),
        Op::Cement(1, true),
        Op::Cement(2, false),
        Op::Cement(3, true),
        Op::Gc(HistoryMode::Full, 2),
        Op::Cement(4, true),
        Op::Cement(5, true),
        Op::Gc(HistoryMode::Rolling, 3),
        Op::Cement(6, true),
    ]
}

fn opts(fs: &CrashFs) -> OpenOptions {
    let mut o = OpenOptions::read_write();
    o.fs = Arc::new(fs.clone());
    o
}

fn workload(fs: &CrashFs) -> Vec<u64> {
    fs.create_dir_all(Path::new("/node")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let c = Cemented::open("/node/cemented", &opts(fs), 16).unwrap();
    ops()
        .iter()
        .map(|op| {
            match *op {
                Op::Cement(n, meta) => {
                    let blocks: Vec<Block> = (n * CHUNK..(n + 1) * CHUNK).map(block).collect();
                    let refs: Vec<_> = blocks.iter().map(Block::as_ref).collect();
                    c.cement(&refs, meta, true).unwrap();
                }
                Op::Gc(mode, offset) => c.gc(mode, offset).unwrap(),
            }
            fs.syncs()
        })
        .collect()
}

#[test]
fn cemented_chunks_survive_a_power_cut_at_every_sync() {
    let ops = ops();
    let states = power_common::at_every_sync(1, 150, 2, workload, |after, acked_at, k, mode| {
        let at = |what: String| format!("cut before sync {k} ({mode:?}): {what}");
        let done = acked_at.iter().take_while(|&&s| s <= k).count();
        let started = &ops[..(done + 1).min(ops.len())];
        let c = Cemented::open("/node/cemented", &opts(after), 16)
            .unwrap_or_else(|e| panic!("{}", at(format!("open: {e}\n{}", after.tree()))));
        c.check_consistency(None)
            .unwrap_or_else(|e| panic!("{}", at(format!("check: {e}"))));
        for (i, op) in ops.iter().enumerate() {
            let Op::Cement(n, meta) = *op else { continue };
            let acked = i < done;
            // A GC that started may drop this chunk (rolling) or its
            // metadata (full); one that has not started drops nothing.
            let gc_may_drop = started.iter().any(|o| matches!(o, Op::Gc(..)));
            let mut present = 0;
            for level in n * CHUNK..(n + 1) * CHUNK {
                let want = block(level);
                match c.read_by_level(level, true) {
                    Ok(Some(got)) => {
                        present += 1;
                        assert_eq!(got.hash, want.hash, "{}", at(format!("level {level}")));
                        assert_eq!(
                            got.contents,
                            want.contents,
                            "{}",
                            at(format!("level {level}"))
                        );
                        if let Some(m) = &got.metadata {
                            assert!(
                                meta,
                                "{}",
                                at(format!("level {level}: metadata never written"))
                            );
                            assert_eq!(
                                m,
                                want.metadata.as_ref().unwrap(),
                                "{}",
                                at(format!("level {level}"))
                            );
                        } else {
                            assert!(
                                !meta || !acked || gc_may_drop,
                                "{}",
                                at(format!("level {level}: acknowledged metadata lost"))
                            );
                        }
                    }
                    Ok(None) => {}
                    Err(e) => panic!("{}", at(format!("read level {level}: {e}"))),
                }
            }
            assert!(
                present == 0 || present == CHUNK,
                "{}",
                at(format!(
                    "chunk {n} half there ({present} of {CHUNK} blocks)"
                ))
            );
            assert!(
                present == CHUNK || !acked || gc_may_drop,
                "{}",
                at(format!("acknowledged chunk {n} lost\n{}", after.tree()))
            );
        }
        // The store takes the next chunk after its highest.
        let next = c.highest_level().map_or(0, |h| h + 1);
        let blocks: Vec<Block> = (next..next + CHUNK).map(block).collect();
        let refs: Vec<_> = blocks.iter().map(Block::as_ref).collect();
        c.cement(&refs, true, false)
            .unwrap_or_else(|e| panic!("{}", at(format!("cement after: {e}"))));
    });
    assert!(states >= 300, "only {states} crash states");
}
