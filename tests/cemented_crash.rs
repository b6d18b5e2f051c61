//! Crash safety of the cemented store: a child process cements chunks (and
//! runs GC) until SIGKILLed at a random point; the reopened store passes
//! `check_consistency` and holds every chunk acknowledged before the kill.

mod cemented_util;
mod common;

use std::path::Path;
use std::time::Duration;

use cemented_util::{block, refs};
use tzstore::OpenOptions;
use tzstore::block::Block;
use tzstore::block::cemented::{Cemented, ChunkRange, HistoryMode};

const SEED: u64 = 77;
const CHILD_CEMENT: &str = "child_cements";
const CHILD_GC: &str = "child_cements_and_gcs";
const ROUNDS: u64 = 30;

fn opts() -> OpenOptions {
    // A process crash keeps the page cache: fsync is not what is tested.
    OpenOptions::default().no_fsync()
}

/// The chunk starting at `start` (sizes vary with the start level).
fn chunk_at(start: i32) -> ChunkRange {
    let len = 20 + (start as u32).wrapping_mul(2_654_435_761) % 150;
    ChunkRange::new(start, start + len as i32 - 1).unwrap()
}

fn expected(level: i32) -> Block {
    let mut b = block(SEED, level, 5);
    b.metadata = Some(vec![level as u8; 500 + (level as usize % 7) * 100]);
    b
}

/// Child: cements chunks forever from where the store stands, recording
/// each acknowledged chunk's end level in `acked`; optionally runs GC.
fn child(gc: bool) {
    let dir = std::env::var("TZS_CEMENTED_DIR").unwrap();
    let dir = Path::new(&dir);
    let s = Cemented::open(dir.join("store"), &opts(), 64).unwrap();
    let mut n = 0u64;
    loop {
        let start = s.highest_level().map_or(0, |h| h + 1);
        let r = chunk_at(start);
        let blocks: Vec<Block> = (r.start..=r.end).map(expected).collect();
        s.cement(&refs(&blocks), true, true).unwrap();
        std::fs::write(dir.join("acked.tmp"), r.end.to_string()).unwrap();
        std::fs::rename(dir.join("acked.tmp"), dir.join("acked")).unwrap();
        if gc {
            n += 1;
            if n % 2 == 0 {
                s.gc(HistoryMode::Full, 2).unwrap();
            } else {
                s.gc(HistoryMode::Rolling, 3).unwrap();
            }
        }
    }
}

#[test]
fn child_cements() {
    if common::is_child(CHILD_CEMENT) {
        child(false);
    }
}

#[test]
fn child_cements_and_gcs() {
    if common::is_child(CHILD_GC) {
        child(true);
    }
}

fn acked(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("acked"))
        .ok()
        .map(|s| s.parse().unwrap())
}

/// Reopens after a kill and checks the invariants; returns the chunks.
fn verify(dir: &Path, gc: bool, round: u64) -> Vec<ChunkRange> {
    let s = Cemented::open(dir.join("store"), &opts(), 64)
        .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
    s.check_consistency(None)
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
    let chunks = s.chunks();
    // Chunks are exactly the deterministic ones, contiguous.
    for w in chunks.windows(2) {
        assert_eq!(w[0].end + 1, w[1].start, "round {round}");
    }
    for c in &chunks {
        assert_eq!(*c, chunk_at(c.start), "round {round}");
    }
    if let Some(a) = acked(dir) {
        let h = s.highest_level().expect("acknowledged chunks are stored");
        assert!(h >= a, "round {round}: highest {h} below acknowledged {a}");
    }
    let metas = s.metadata_chunks();
    for (i, c) in chunks.iter().enumerate() {
        // Without GC every chunk keeps its metadata; with GC (Full 2 /
        // Rolling 3) at least the last two do.
        let must_have_meta = !gc || i + 2 >= chunks.len();
        if must_have_meta {
            assert!(metas.contains(c), "round {round}: {c} lost its metadata");
        }
        let has_meta = metas.contains(c);
        for b in s.iter_chunk(*c, true).unwrap() {
            let b = b.unwrap_or_else(|e| panic!("round {round}: {e}"));
            let mut want = expected(b.level);
            if !has_meta {
                want.metadata = None;
            }
            assert_eq!(b, want, "round {round}");
        }
    }
    chunks
}

fn crash_rounds(role: &str, gc: bool, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::Rng::new(seed);
    let mut last_highest = None;
    for round in 0..ROUNDS {
        let mut child = common::spawn_child(
            role,
            &[("TZS_CEMENTED_DIR", dir.path().display().to_string())],
        );
        std::thread::sleep(Duration::from_millis(30 + rng.below(120)));
        common::kill9(&mut child);
        let chunks = verify(dir.path(), gc, round);
        let highest = chunks.last().map(|c| c.end);
        assert!(
            highest >= last_highest,
            "round {round}: the store went back"
        );
        last_highest = highest;
    }
    assert!(
        last_highest.is_some(),
        "the children never cemented anything"
    );
}

#[test]
fn sigkill_during_cement() {
    if common::is_child(CHILD_CEMENT) || common::is_child(CHILD_GC) {
        return;
    }
    crash_rounds(CHILD_CEMENT, false, 0xc3e7);
}

#[test]
fn sigkill_during_cement_and_gc() {
    if common::is_child(CHILD_CEMENT) || common::is_child(CHILD_GC) {
        return;
    }
    crash_rounds(CHILD_GC, true, 0x6c6c);
}
