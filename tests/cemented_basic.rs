//! Cemented store: basic reads and writes, reopen, streaming writer, and
//! rejection of bad input.

mod cemented_util;

use cemented_util::{block, chain, hash, pruned, refs};
use tzstore::block::cemented::{Cemented, ChunkRange};
use tzstore::{Error, OpenOptions};

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

#[test]
fn cement_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(1, 0, 99, 7);
    {
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        assert_eq!(s.lowest_level(), None);
        assert_eq!(s.highest_level(), None);
        assert_eq!(s.read_by_level(0, true).unwrap(), None);
        s.cement(&refs(&blocks[..50]), true, true).unwrap();
        s.cement(&refs(&blocks[50..]), true, true).unwrap();
    }
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.lowest_level(), Some(0));
    assert_eq!(s.highest_level(), Some(99));
    assert_eq!(
        s.chunks(),
        vec![
            ChunkRange::new(0, 49).unwrap(),
            ChunkRange::new(50, 99).unwrap()
        ]
    );
    assert_eq!(s.metadata_chunks(), s.chunks());
    for b in &blocks {
        assert_eq!(s.read_by_level(b.level, true).unwrap().as_ref(), Some(b));
        assert_eq!(s.read_by_level(b.level, false).unwrap(), Some(pruned(b)));
        assert_eq!(s.read_by_hash(&b.hash, true).unwrap().as_ref(), Some(b));
        assert_eq!(s.level_of(&b.hash).unwrap(), Some(b.level));
        assert_eq!(s.hash_of(b.level).unwrap(), Some(b.hash));
        assert_eq!(s.read_metadata(b.level).unwrap(), b.metadata);
        assert!(s.is_cemented(&b.hash).unwrap());
    }
    assert_eq!(s.read_by_level(100, true).unwrap(), None);
    assert_eq!(s.level_of(&hash(2, 3)).unwrap(), None);
    assert_eq!(s.hash_of(-1).unwrap(), None);
    let it: Vec<_> = s
        .iter_chunk(ChunkRange::new(50, 99).unwrap(), true)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(it, blocks[50..].to_vec());
    assert!(matches!(
        s.iter_chunk(ChunkRange::new(50, 98).unwrap(), true),
        Err(Error::NotFound(_))
    ));
    s.check_consistency(Some(&hash(1, 0))).unwrap();
}

#[test]
fn without_metadata_no_zip_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    let blocks = chain(1, 10, 19, 3);
    s.cement(&refs(&blocks), false, true).unwrap();
    assert!(s.metadata_chunks().is_empty());
    assert_eq!(s.read_by_level(12, true).unwrap(), Some(pruned(&blocks[2])));
    let none: Vec<_> = chain(1, 20, 29, 3)
        .into_iter()
        .map(|b| pruned(&b))
        .collect();
    s.cement(&refs(&none), true, true).unwrap();
    assert!(s.metadata_chunks().is_empty());
}

#[test]
fn streaming_writer_matches_cement() {
    let dir = tempfile::tempdir().unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    // Large enough for several compression batches on the worker pool.
    let blocks: Vec<_> = (0..2000)
        .map(|l| {
            let mut b = block(5, l, 11);
            b.metadata = Some(vec![(l % 251) as u8; 3000]);
            b
        })
        .collect();
    let mut w = s.begin_chunk(0, 1999, true, true).unwrap();
    for b in &blocks {
        w.push(&b.as_ref()).unwrap();
    }
    assert_eq!(w.commit().unwrap(), ChunkRange::new(0, 1999).unwrap());
    for b in blocks.iter().step_by(97) {
        assert_eq!(s.read_by_level(b.level, true).unwrap().as_ref(), Some(b));
    }
    // An abandoned writer leaves nothing behind.
    let more = chain(5, 2000, 2009, 1);
    let mut w = s.begin_chunk(2000, 2009, true, true).unwrap();
    w.push(&more[0].as_ref()).unwrap();
    drop(w);
    assert_eq!(s.highest_level(), Some(1999));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    // A commit with missing blocks is refused.
    let mut w = s.begin_chunk(2000, 2009, true, true).unwrap();
    w.push(&more[0].as_ref()).unwrap();
    assert!(matches!(w.commit(), Err(Error::Inconsistent(_))));
    s.cement(&refs(&more), true, true).unwrap();
    s.check_consistency(None).unwrap();
}

#[test]
fn bad_input_is_inconsistent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    s.cement(&refs(&chain(1, 0, 9, 1)), true, true).unwrap();
    let inconsistent =
        |r: Result<ChunkRange, Error>| assert!(matches!(r, Err(Error::Inconsistent(_))), "{r:?}");
    // Not contiguous with the highest level.
    inconsistent(s.cement(&refs(&chain(1, 11, 20, 1)), true, true));
    // Overlapping, even without consistency checks.
    inconsistent(s.cement(&refs(&chain(1, 5, 20, 1)), true, false));
    // Levels not consecutive.
    let mut gap = chain(1, 10, 20, 1);
    gap.remove(3);
    inconsistent(s.cement(&refs(&gap), true, true));
    // Levels out of order.
    let mut swapped = chain(1, 10, 20, 1);
    swapped.swap(2, 3);
    inconsistent(s.cement(&refs(&swapped), true, true));
    // Last level below the first.
    let mut rev = chain(1, 10, 20, 1);
    rev.reverse();
    inconsistent(s.cement(&refs(&rev), true, true));
    // Broken predecessor link (inside the chunk, and with the stored chain).
    let mut broken = chain(1, 10, 20, 1);
    broken[4].predecessor = [9; 32];
    inconsistent(s.cement(&refs(&broken), true, true));
    inconsistent(s.cement(&refs(&chain(2, 10, 20, 1)), true, true));
    // Duplicated hash, inside the chunk and with a cemented block.
    let mut dup = chain(1, 10, 20, 1);
    dup[5].hash = dup[4].hash;
    dup[6].predecessor = dup[5].hash;
    inconsistent(s.cement(&refs(&dup), true, false));
    let mut dup = chain(1, 10, 20, 1);
    dup[0].hash = hash(1, 3);
    inconsistent(s.cement(&refs(&dup), true, false));
    assert!(matches!(
        s.cement(&[], true, true),
        Err(Error::InvalidArgument(_))
    ));
    // Nothing of the above was stored.
    assert_eq!(s.chunks(), vec![ChunkRange::new(0, 9).unwrap()]);
    s.check_consistency(None).unwrap();
    // Without consistency checks a gap and another chain are accepted.
    s.cement(&refs(&chain(2, 15, 20, 1)), true, false).unwrap();
    assert_eq!(s.hash_of(15).unwrap(), Some(hash(2, 15)));
    assert!(matches!(
        s.check_consistency(None),
        Err(Error::Inconsistent(_))
    ));
}

#[test]
fn damaged_zip_entry_is_corrupted_blocks_still_readable() {
    let dir = tempfile::tempdir().unwrap();
    let blocks: Vec<_> = (0..10)
        .map(|l| {
            let mut b = block(1, l, 1);
            b.metadata = Some((0..5000u32).map(|i| (i * 7 + l as u32) as u8).collect());
            b
        })
        .collect();
    {
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        s.cement(&refs(&blocks), true, true).unwrap();
    }
    // Flip bytes inside the compressed data of the entry of level 4: the
    // zip's local header of entry "4" is followed by its data.
    let zip = dir.path().join("metadata/0_9.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let name_at = find_entry_name(&bytes, b"4");
    for b in &mut bytes[name_at + 4..name_at + 20] {
        *b ^= 0x5a;
    }
    std::fs::write(&zip, &bytes).unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert!(matches!(s.read_metadata(4), Err(Error::Corrupted(_))));
    assert!(matches!(s.read_by_level(4, true), Err(Error::Corrupted(_))));
    assert_eq!(s.read_by_level(4, false).unwrap(), Some(pruned(&blocks[4])));
    for b in blocks.iter().filter(|b| b.level != 4) {
        assert_eq!(s.read_by_level(b.level, true).unwrap().as_ref(), Some(b));
    }
}

/// Offset of the end of the local file header named `name` (PK\x03\x04).
fn find_entry_name(zip: &[u8], name: &[u8]) -> usize {
    let mut at = 0;
    while at + 30 < zip.len() {
        if &zip[at..at + 4] == b"PK\x03\x04" {
            let nlen = u16::from_le_bytes([zip[at + 26], zip[at + 27]]) as usize;
            let xlen = u16::from_le_bytes([zip[at + 28], zip[at + 29]]) as usize;
            if &zip[at + 30..at + 30 + nlen] == name {
                return at + 30 + nlen + xlen;
            }
        }
        at += 1;
    }
    panic!("entry not found");
}

#[test]
fn read_only_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Cemented::open(dir.path().join("none"), &OpenOptions::read_only(), 0),
        Err(Error::NotFound(_))
    ));
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    s.cement(&refs(&chain(1, 0, 9, 1)), true, true).unwrap();
    assert!(matches!(
        Cemented::open(dir.path(), &opts(), 0),
        Err(Error::Locked(_))
    ));
    let ro = Cemented::open(dir.path(), &OpenOptions::read_only(), 0).unwrap();
    assert_eq!(ro.highest_level(), Some(9));
    assert_eq!(ro.read_by_level(3, true).unwrap(), Some(block(1, 3, 1)));
    assert!(matches!(
        ro.cement(&refs(&chain(1, 10, 12, 1)), true, true),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(
        ro.gc(tzstore::block::cemented::HistoryMode::Rolling, 0),
        Err(Error::ReadOnly(_))
    ));
    // The read-only handle sees new chunks and GC after a sync; blocks it
    // already mapped stay readable until then.
    s.cement(&refs(&chain(1, 10, 19, 1)), true, true).unwrap();
    assert_eq!(ro.highest_level(), Some(9));
    ro.sync().unwrap();
    assert_eq!(ro.highest_level(), Some(19));
    assert_eq!(
        ro.read_by_hash(&hash(1, 15), true).unwrap(),
        Some(block(1, 15, 1))
    );
    s.gc(tzstore::block::cemented::HistoryMode::Rolling, 1)
        .unwrap();
    assert_eq!(
        ro.read_by_level(3, false).unwrap(),
        Some(pruned(&block(1, 3, 1)))
    );
    ro.sync().unwrap();
    assert_eq!(ro.lowest_level(), Some(10));
    assert_eq!(ro.read_by_level(3, false).unwrap(), None);
    assert_eq!(ro.level_of(&hash(1, 3)).unwrap(), None);
    ro.check_consistency(None).unwrap();
    assert!(s.set_zstd_level(-1).is_err());
    assert!(s.set_zstd_level(23).is_err());
    s.set_zstd_level(0).unwrap(); // stored uncompressed
    assert_eq!(s.zstd_level(), 0);
    s.set_zstd_level(19).unwrap();
    assert_eq!(s.zstd_level(), 19);
}

#[test]
fn no_space_and_failed_fsync_leave_the_store_unchanged() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use tzstore::io::fault::{FaultFs, Faults};

    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::none();
    let fs_opts = OpenOptions::default().with_fs(Arc::new(FaultFs::new(faults.clone())));
    // Default log size: no index merge runs (and fails) in the background,
    // so every failure below comes from the cement call itself.
    let s = Cemented::open(dir.path(), &fs_opts, 0).unwrap();
    s.cement(&refs(&chain(1, 0, 49, 2)), true, true).unwrap();
    let next = chain(1, 50, 99, 2);
    // Budgets failing in the chunk file and in the zip (the next chunk's
    // files are about as large as the first's).
    let chunk_len = std::fs::metadata(dir.path().join("0_49")).unwrap().len();
    let zip_len = std::fs::metadata(dir.path().join("metadata/0_49.zip"))
        .unwrap()
        .len();
    for budget in [0u64, 100, chunk_len / 2, chunk_len + zip_len / 2] {
        faults.write_budget.store(budget, Ordering::SeqCst);
        let r = s.cement(&refs(&next), true, true);
        assert!(
            matches!(r, Err(Error::NoSpace(_))),
            "budget {budget}: {r:?}"
        );
        assert_eq!(s.highest_level(), Some(49), "budget {budget}");
        assert_eq!(s.read_by_level(60, true).unwrap(), None);
    }
    faults.write_budget.store(u64::MAX, Ordering::SeqCst);
    faults.fail_sync.store(true, Ordering::SeqCst);
    assert!(matches!(
        s.cement(&refs(&next), true, true),
        Err(Error::Io(_))
    ));
    assert_eq!(s.highest_level(), Some(49));
    faults.fail_sync.store(false, Ordering::SeqCst);
    s.cement(&refs(&next), true, true).unwrap();
    s.check_consistency(None).unwrap();
    drop(s);
    let s = Cemented::open(dir.path(), &opts(), 16).unwrap();
    s.check_consistency(None).unwrap();
    assert_eq!(s.highest_level(), Some(99));
    for b in chain(1, 0, 99, 2) {
        assert_eq!(s.read_by_level(b.level, true).unwrap(), Some(b));
    }
}

#[test]
fn readers_see_whole_chunks_during_cement() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Cemented::open(dir.path(), &opts(), 32).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|t| {
            let (s, done) = (s.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rng = t + 1;
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let Some(h) = s.highest_level() else { continue };
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let level = ((rng >> 33) % (h as u64 + 1)) as i32;
                    // Everything up to the published highest level is
                    // readable by level and by hash, with its metadata.
                    let want = block(1, level, 4);
                    assert_eq!(s.read_by_level(level, true).unwrap(), Some(want.clone()));
                    assert_eq!(s.level_of(&want.hash).unwrap(), Some(level));
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for c in 0..20 {
        s.cement(&refs(&chain(1, c * 25, c * 25 + 24, 4)), true, true)
            .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    s.check_consistency(None).unwrap();
}
