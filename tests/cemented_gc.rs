//! Cemented store GC: each history mode and several offsets; index entries
//! of dropped blocks removed; readers keep working during GC.

mod cemented_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cemented_util::{chain, hash, pruned, refs};
use tzstore::OpenOptions;
use tzstore::block::cemented::{Cemented, ChunkRange, HistoryMode};
use tzstore::index::{Index, IndexConfig};

const CHUNKS: i32 = 6;
const LEN: i32 = 10;

fn filled(dir: &std::path::Path) -> Cemented {
    let s = Cemented::open(dir, &OpenOptions::default().no_fsync(), 8).unwrap();
    for c in 0..CHUNKS {
        s.cement(&refs(&chain(1, c * LEN, c * LEN + LEN - 1, 3)), true, true)
            .unwrap();
    }
    s
}

fn ranges(from: i32) -> Vec<ChunkRange> {
    (from..CHUNKS)
        .map(|c| ChunkRange::new(c * LEN, c * LEN + LEN - 1).unwrap())
        .collect()
}

/// Whether the raw indexes (opened directly) still hold `level`.
fn in_indexes(dir: &std::path::Path, level: i32) -> (bool, bool) {
    let cfg = |k, v| IndexConfig {
        key_size: k,
        value_size: v,
        removable: true,
        log_size: 8,
        open: OpenOptions::read_only(),
    };
    let h2l = Index::open(dir.join("hash_to_level"), cfg(32, 4)).unwrap();
    let l2h = Index::open(dir.join("level_to_hash"), cfg(4, 32)).unwrap();
    (
        h2l.mem(&hash(1, level)).unwrap(),
        l2h.mem(&level.to_be_bytes()).unwrap(),
    )
}

fn check_state(s: &Cemented, mode: HistoryMode, offset: i32) {
    let all = chain(1, 0, CHUNKS * LEN - 1, 3);
    let kept_from = (CHUNKS - offset).max(0);
    let (chunks, metas) = match mode {
        HistoryMode::Archive => (ranges(0), ranges(0)),
        HistoryMode::Full => (ranges(0), ranges(kept_from)),
        HistoryMode::Rolling => (ranges(kept_from), ranges(kept_from)),
    };
    assert_eq!(s.chunks(), chunks, "{mode:?} {offset}");
    assert_eq!(s.metadata_chunks(), metas, "{mode:?} {offset}");
    for b in &all {
        let stored = chunks.iter().any(|c| c.contains(b.level));
        let with_meta = metas.iter().any(|c| c.contains(b.level));
        let expected = match (stored, with_meta) {
            (false, _) => None,
            (true, true) => Some(b.clone()),
            (true, false) => Some(pruned(b)),
        };
        assert_eq!(s.read_by_level(b.level, true).unwrap(), expected);
        assert_eq!(s.level_of(&b.hash).unwrap(), stored.then_some(b.level));
        assert_eq!(s.hash_of(b.level).unwrap(), stored.then_some(b.hash));
    }
    s.check_consistency(None).unwrap();
}

#[test]
fn every_mode_and_offset() {
    for mode in [
        HistoryMode::Archive,
        HistoryMode::Full,
        HistoryMode::Rolling,
    ] {
        for offset in [0, 1, 2, 5, 6, 10] {
            let dir = tempfile::tempdir().unwrap();
            let s = filled(dir.path());
            s.gc(mode, offset as u32).unwrap();
            check_state(&s, mode, offset);
            // Idempotent.
            s.gc(mode, offset as u32).unwrap();
            check_state(&s, mode, offset);
            drop(s);
            let s = Cemented::open(dir.path(), &OpenOptions::default().no_fsync(), 8).unwrap();
            check_state(&s, mode, offset);
            drop(s);
            let dropped = mode == HistoryMode::Rolling && offset < CHUNKS;
            let kept_from = (CHUNKS - offset).max(0) * LEN;
            for level in [0, kept_from - 1, kept_from, CHUNKS * LEN - 1] {
                let expect = !(dropped && level < kept_from);
                if (0..CHUNKS * LEN).contains(&level) {
                    assert_eq!(in_indexes(dir.path(), level), (expect, expect), "{level}");
                }
            }
            // Zips only: GC leaves a `.dropped` marker for each zip it
            // drops from a chunk it keeps.
            let zips = std::fs::read_dir(dir.path().join("metadata"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".zip")
                })
                .count() as i32;
            let expect_zips = match mode {
                HistoryMode::Archive => CHUNKS,
                _ => offset.min(CHUNKS),
            };
            assert_eq!(zips, expect_zips, "{mode:?} {offset}");
        }
    }
}

#[test]
fn cement_after_rolling_gc() {
    let dir = tempfile::tempdir().unwrap();
    let s = filled(dir.path());
    s.gc(HistoryMode::Rolling, 2).unwrap();
    let next = chain(1, CHUNKS * LEN, CHUNKS * LEN + 4, 3);
    s.cement(&refs(&next), true, true).unwrap();
    assert_eq!(s.lowest_level(), Some((CHUNKS - 2) * LEN));
    assert_eq!(s.highest_level(), Some(CHUNKS * LEN + 4));
    s.check_consistency(None).unwrap();
}

#[test]
fn readers_never_see_a_half_removed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(filled(dir.path()));
    let all = Arc::new(chain(1, 0, CHUNKS * LEN - 1, 3));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (s, all, stop) = (s.clone(), all.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let b = &all[i % all.len()];
                    // Either the whole block or nothing; never an error.
                    if let Some(got) = s.read_by_level(b.level, false).unwrap() {
                        assert_eq!(got, pruned(b));
                    }
                    if let Some(l) = s.level_of(&b.hash).unwrap() {
                        assert_eq!(l, b.level);
                    }
                    i += 7;
                }
            })
        })
        .collect();
    for offset in (1..CHUNKS as u32).rev() {
        s.gc(HistoryMode::Full, offset).unwrap();
        s.gc(HistoryMode::Rolling, offset).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    check_state(&s, HistoryMode::Rolling, 1);
}

/// Rolling GC deletes through trash names (gradually, with fsync on): none
/// is left after it, and trash left by a crash is never loaded and is
/// removed by the next read-write open.
#[test]
fn gc_trash_is_never_loaded_and_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let durable = OpenOptions::default();
    let s = Cemented::open(dir.path(), &durable, 8).unwrap();
    for c in 0..CHUNKS {
        s.cement(&refs(&chain(1, c * LEN, c * LEN + LEN - 1, 3)), true, true)
            .unwrap();
    }
    s.gc(HistoryMode::Rolling, 2).unwrap();
    check_state(&s, HistoryMode::Rolling, 2);
    drop(s);
    let names = |sub: &str| -> Vec<String> {
        std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let trash = |sub: &str| {
        names(sub)
            .iter()
            .filter(|n| n.ends_with(".tzs-trash"))
            .count()
    };
    assert_eq!((trash(""), trash("metadata")), (0, 0));

    // A crash after the rename to trash: copies of live files under trash
    // names (as a dropped chunk and zip would be).
    let chunk = names("")
        .into_iter()
        .find(|n| ChunkRange::parse(n).is_some())
        .unwrap();
    let zip = names("metadata").into_iter().next().unwrap();
    std::fs::copy(dir.path().join(&chunk), dir.path().join("0_9.tzs-trash")).unwrap();
    std::fs::copy(
        dir.path().join("metadata").join(&zip),
        dir.path().join("metadata/0_9.zip.tzs-trash"),
    )
    .unwrap();
    let ro = Cemented::open(dir.path(), &OpenOptions::read_only(), 8).unwrap();
    assert_eq!(ro.chunks(), ranges(CHUNKS - 2));
    drop(ro);
    let s = Cemented::open(dir.path(), &durable, 8).unwrap();
    check_state(&s, HistoryMode::Rolling, 2);
    assert_eq!((trash(""), trash("metadata")), (0, 0));
}
