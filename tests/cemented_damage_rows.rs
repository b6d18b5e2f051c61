//! The cemented store's rows of issue #15, one regression test each:
//! bounded zip entry sizes, a damaged fsynced chunk reported instead of
//! deleted, planted chunk names bounded by the file size, metadata read by
//! `check_consistency`, GC verifying what it drops and keeps.

mod alloc_probe;
mod cemented_util;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cemented_util::{block, chain, pruned, refs};
use tzstore::block::Block;
use tzstore::block::cemented::{Cemented, ChunkRange, HistoryMode};
use tzstore::{Error, OpenOptions};

#[global_allocator]
static ALLOC: alloc_probe::Largest = alloc_probe::Largest;

/// Other tests of this binary allocate at most a few MiB at once.
const HUGE: usize = 64 << 20;

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

fn ro() -> OpenOptions {
    let mut o = OpenOptions::read_only();
    o.fs = tzstore::io::default_fs(true);
    o
}

/// Blocks `start..=end`, each with `size` bytes of metadata.
fn with_meta(start: i32, end: i32, size: u32) -> Vec<Block> {
    (start..=end)
        .map(|l| {
            let mut b = block(1, l, 1);
            b.metadata = Some((0..size).map(|i| (i * 7 + l as u32) as u8).collect());
            b
        })
        .collect()
}

/// A store of chunks 0_9, 10_19, 20_29 (with metadata); returns the blocks.
fn three_chunks(dir: &Path) -> Vec<Block> {
    let blocks = with_meta(0, 29, 3000);
    let s = Cemented::open(dir, &opts(), 0).unwrap();
    for c in blocks.chunks(10) {
        s.cement(&refs(c), true, true).unwrap();
    }
    blocks
}

fn corrupted(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::Corrupted(m)) => m,
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

/// Offset of the header (`PK` + `kind`) whose entry is named `name`.
fn find_header(zip: &[u8], kind: &[u8; 2], name: &[u8]) -> usize {
    let (name_at, len_at) = if kind == b"\x03\x04" {
        (30, 26)
    } else {
        (46, 28)
    };
    (0..zip.len() - name_at)
        .find(|&at| {
            zip[at..at + 2] == *b"PK"
                && zip[at + 2..at + 4] == *kind
                && u16::from_le_bytes([zip[at + len_at], zip[at + len_at + 1]]) as usize
                    == name.len()
                && zip.get(at + name_at..at + name_at + name.len()) == Some(name)
        })
        .expect("entry header")
}

/// Sets the uncompressed size of entry `name` to `size` in both headers.
fn set_entry_size(zip: &Path, name: &[u8], size: u32) {
    let mut bytes = std::fs::read(zip).unwrap();
    let local = find_header(&bytes, b"\x03\x04", name);
    bytes[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    let central = find_header(&bytes, b"\x01\x02", name);
    bytes[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    std::fs::write(zip, bytes).unwrap();
}

fn read_metadata_bounded(dir: &Path, level: i32) -> Result<Option<Vec<u8>>, Error> {
    let s = Cemented::open(dir, &opts(), 0).unwrap();
    alloc_probe::reset();
    let r = s.read_metadata(level);
    let largest = alloc_probe::largest();
    assert!(largest < HUGE, "an allocation of {largest} bytes");
    r
}

#[test]
fn zip_stored_entry_with_a_4gib_length_is_corrupted_without_a_huge_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    // Zips written by other tools may store entries uncompressed.
    let zip = dir.path().join("metadata/0_9.zip");
    let mut w = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for b in &blocks[..10] {
        w.start_file(b.level.to_string(), stored).unwrap();
        std::io::Write::write_all(&mut w, b.metadata.as_deref().unwrap()).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(
        read_metadata_bounded(dir.path(), 3).unwrap(),
        blocks[3].metadata
    );
    set_entry_size(&zip, b"4", 0xFFFF_FFF0);
    let m = corrupted(read_metadata_bounded(dir.path(), 4));
    assert!(m.contains("0_9.zip") && m.contains("level 4"), "{m}");
    assert_eq!(
        read_metadata_bounded(dir.path(), 5).unwrap(),
        blocks[5].metadata
    );
}

#[test]
fn zip_zstd_entry_with_a_4gib_length_is_corrupted_without_a_huge_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    set_entry_size(&dir.path().join("metadata/10_19.zip"), b"12", 0xFFFF_FFF0);
    let m = corrupted(read_metadata_bounded(dir.path(), 12));
    assert!(m.contains("10_19.zip") && m.contains("byte"), "{m}");
    assert_eq!(
        read_metadata_bounded(dir.path(), 13).unwrap(),
        blocks[13].metadata
    );
}

#[test]
fn truncated_last_chunk_that_is_indexed_is_corrupted_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let last = dir.path().join("20_29");
    let zip = dir.path().join("metadata/20_29.zip");
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    let m = corrupted(Cemented::open(dir.path(), &opts(), 0));
    assert!(m.contains("20_29") && m.contains("byte"), "{m}");
    // Nothing was deleted or cut.
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len - 10);
    assert!(zip.exists());
    let s = Cemented::open(dir.path(), &ro(), 0).unwrap();
    assert_eq!(s.highest_level(), Some(29));
    assert!(s.read_by_level(29, false).is_err());
    assert_eq!(
        s.read_by_level(28, true).unwrap().as_ref(),
        Some(&blocks[28])
    );
    corrupted(s.check_consistency(None));
}

#[test]
fn torn_last_chunk_that_no_index_covers_is_set_aside_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let full = tempfile::tempdir().unwrap();
    three_chunks(full.path());
    let blocks = with_meta(0, 19, 3000);
    {
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        s.cement(&refs(&blocks[..10]), true, true).unwrap();
        s.cement(&refs(&blocks[10..]), true, true).unwrap();
    }
    // A power cut without fsync: the renamed chunk lost its tail, and its
    // indexing never reached the disk.
    let bytes = std::fs::read(full.path().join("20_29")).unwrap();
    std::fs::write(dir.path().join("20_29"), &bytes[..bytes.len() / 2]).unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.highest_level(), Some(19));
    s.check_consistency(None).unwrap();
    let q = dir.path().join(".tzs-quarantine");
    let kept: Vec<_> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().path().join("20_29"))
        .collect();
    assert!(kept.iter().any(|p| p.exists()), "{kept:?}");
}

#[test]
fn planted_chunk_with_a_huge_range_is_refused_or_set_aside_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    std::fs::write(dir.path().join("30_2000000000"), vec![7u8; 100]).unwrap();
    let t = Instant::now();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(s.highest_level(), Some(29));
    assert_eq!(
        s.read_by_level(29, true).unwrap().as_ref(),
        Some(&blocks[29])
    );
    drop(s);
    // Below the indexed chunks: not a torn tail, so damage.
    std::fs::write(dir.path().join("-2000000000_-1"), vec![7u8; 100]).unwrap();
    let t = Instant::now();
    let m = corrupted(Cemented::open(dir.path(), &opts(), 0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(m.contains("-2000000000_-1"), "{m}");
    let r = Cemented::open(dir.path(), &ro(), 0).unwrap();
    let t = Instant::now();
    corrupted(r.check_consistency(None));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn deleted_chunk_is_corrupted_at_open() {
    for victim in ["0_9", "10_19", "20_29"] {
        let dir = tempfile::tempdir().unwrap();
        three_chunks(dir.path());
        std::fs::remove_file(dir.path().join(victim)).unwrap();
        let m = corrupted(Cemented::open(dir.path(), &opts(), 0));
        assert!(m.contains("missing"), "{victim}: {m}");
        corrupted(Cemented::open(dir.path(), &ro(), 0));
        assert!(
            dir.path()
                .join("metadata")
                .join(format!("{victim}.zip"))
                .exists()
        );
    }
}

#[test]
fn chunk_replaced_by_a_directory_is_corrupted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    three_chunks(dir.path());
    let p = dir.path().join("10_19");
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    for o in [opts(), ro()] {
        let m = corrupted(Cemented::open(dir.path(), &o, 0));
        assert!(
            m.contains("10_19") && m.contains("not a regular file"),
            "{m}"
        );
    }
}

#[test]
fn damaged_metadata_entry_fails_check_consistency() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let zip = dir.path().join("metadata/10_19.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let at = find_header(&bytes, b"\x03\x04", b"14") + 32;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&zip, &bytes).unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    let m = corrupted(s.check_consistency(None));
    assert!(m.contains("10_19.zip") && m.contains("level 14"), "{m}");
    assert_eq!(
        s.read_by_level(14, false).unwrap(),
        Some(pruned(&blocks[14]))
    );
}

/// Found by the cemented and block store damage fuzzers' long runs (seeds
/// 54,971 and 19,051): zeros over the end-of-central-directory record's
/// entry counts parsed as an empty archive, and every level of the chunk
/// read back with no metadata and OK.
#[test]
fn zip_directory_whose_entry_count_is_zeroed_is_corrupted_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let zip = dir.path().join("metadata/10_19.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let eocd = bytes.len() - 22;
    assert_eq!(bytes[eocd..eocd + 4], *b"PK\x05\x06");
    // Entries on this disk and in all: 0.
    bytes[eocd + 8..eocd + 12].fill(0);
    std::fs::write(&zip, &bytes).unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    for level in 10..20 {
        let m = corrupted(s.read_by_level(level, true));
        assert!(m.contains("10_19.zip"), "{m}");
    }
    assert_eq!(
        s.read_by_level(14, false).unwrap(),
        Some(pruned(&blocks[14]))
    );
    assert_eq!(s.read_by_level(24, true).unwrap(), Some(blocks[24].clone()));
    corrupted(s.check_consistency(None));
}

/// Flips a byte inside the record of `level` of the chunk file `name`
/// (whose first level is `start`).
fn damage_record(dir: &Path, name: &str, start: i32, level: i32) {
    let p = dir.join(name);
    let mut bytes = std::fs::read(&p).unwrap();
    let i = (level - start) as usize * 8;
    let off = u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap()) as usize;
    bytes[off + 50] ^= 0x10;
    std::fs::write(&p, bytes).unwrap();
}

#[test]
fn gc_over_a_damaged_chunk_aborts_and_keeps_the_store() {
    for (name, start, level) in [("0_9", 0, 3), ("20_29", 20, 25)] {
        let dir = tempfile::tempdir().unwrap();
        let blocks = three_chunks(dir.path());
        damage_record(dir.path(), name, start, level);
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        // Rolling, keeping the last chunk: drops 0_9 and 10_19, keeps 20_29.
        let m = corrupted(s.gc(HistoryMode::Rolling, 1));
        assert!(m.contains(name), "{m}");
        let all: Vec<ChunkRange> = ["0_9", "10_19", "20_29"]
            .iter()
            .map(|n| ChunkRange::parse(n).unwrap())
            .collect();
        assert_eq!(s.chunks(), all);
        for b in blocks.iter().filter(|b| b.level != level) {
            assert_eq!(s.read_by_level(b.level, true).unwrap().as_ref(), Some(b));
            assert_eq!(s.level_of(&b.hash).unwrap(), Some(b.level));
        }
        drop(s);
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        assert_eq!(s.chunks(), all);
        // Full GC keeps every chunk and reads the lowest one whose metadata
        // it keeps.
        if start == 20 {
            corrupted(s.gc(HistoryMode::Full, 1));
            assert_eq!(s.metadata_chunks(), all);
        }
    }
}

#[test]
fn gc_keeps_working_on_an_intact_store() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    s.gc(HistoryMode::Rolling, 2).unwrap();
    assert_eq!(s.lowest_level(), Some(10));
    assert_eq!(s.read_by_level(5, false).unwrap(), None);
    assert_eq!(
        s.read_by_level(15, true).unwrap().as_ref(),
        Some(&blocks[15])
    );
    s.check_consistency(None).unwrap();
    let _ = chain(1, 0, 0, 0);
}

#[test]
fn read_only_open_during_gc_never_reports_damage() {
    // The missing-chunk check must not mistake a chunk that a rolling GC
    // unindexed and renamed away meanwhile for a missing file.
    let dir = tempfile::tempdir().unwrap();
    let s = Cemented::open(dir.path(), &opts(), 8).unwrap();
    let blocks = chain(1, 0, 399, 2);
    for c in blocks.chunks(10).take(3) {
        s.cement(&refs(c), false, true).unwrap();
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for c in blocks.chunks(10).skip(3) {
                s.cement(&refs(c), false, true).unwrap();
                s.gc(HistoryMode::Rolling, 2).unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        let mut opened = 0;
        while !stop.load(Ordering::SeqCst) || opened == 0 {
            let r = Cemented::open(dir.path(), &ro(), 8).unwrap();
            r.sync().unwrap();
            opened += 1;
        }
    });
}

/// Every file in the quarantine folder of `report`, relative to it.
fn quarantined_files(report: &tzstore::check::CheckReport) -> Vec<String> {
    let q = report.quarantine_dir.clone().expect("a quarantine folder");
    let mut out = Vec::new();
    let mut stack = vec![q.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(&q).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn check_repair_keeps_the_intact_records_of_a_truncated_last_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let last = dir.path().join("20_29");
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    corrupted(Cemented::open(dir.path(), &opts(), 0));
    let before = Cemented::check(dir.path(), &opts(), false).unwrap();
    assert!(!before.is_ok());
    assert!(before.problems[0].contains("20_29"), "{before:?}");
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len - 10);
    let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
    assert!(rep.is_ok(), "{}", rep.to_text());
    let moved = quarantined_files(&rep);
    assert!(moved.contains(&"20_29".to_string()), "{moved:?}");
    assert!(
        moved.contains(&"metadata/20_29.zip".to_string()),
        "{moved:?}"
    );
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.highest_level(), Some(28));
    for b in &blocks[..29] {
        assert_eq!(s.read_by_level(b.level, true).unwrap().as_ref(), Some(b));
        assert_eq!(s.level_of(&b.hash).unwrap(), Some(b.level));
    }
    assert_eq!(s.read_by_level(29, true).unwrap(), None);
    s.check_consistency(None).unwrap();
}

#[test]
fn check_repair_rebuilds_a_damaged_index_and_keeps_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let data: Vec<_> = std::fs::read_dir(dir.path().join("level_to_hash"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("lock"))
        .collect();
    for p in &data {
        std::fs::write(p, b"garbage").unwrap();
    }
    let before = Cemented::check(dir.path(), &opts(), false).unwrap();
    assert!(!before.is_ok(), "{}", before.to_text());
    let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
    assert!(rep.is_ok(), "{}", rep.to_text());
    assert!(
        rep.repaired.iter().any(|r| r.contains("rebuilt")),
        "{}",
        rep.to_text()
    );
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    for b in &blocks {
        assert_eq!(s.read_by_hash(&b.hash, true).unwrap().as_ref(), Some(b));
    }
    s.check_consistency(None).unwrap();
}

#[test]
fn check_changes_nothing_without_repair_and_repair_needs_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    three_chunks(dir.path());
    damage_record(dir.path(), "10_19", 10, 12);
    let listing = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let bytes = std::fs::read(dir.path().join("10_19")).unwrap();
    let rep = Cemented::check(dir.path(), &opts(), false).unwrap();
    assert!(
        rep.problems
            .iter()
            .any(|p| p.contains("10_19") && p.contains("level 12"))
    );
    assert_eq!(listing(dir.path()), before);
    assert_eq!(std::fs::read(dir.path().join("10_19")).unwrap(), bytes);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert!(matches!(
        Cemented::check(dir.path(), &opts(), true),
        Err(Error::Locked(_))
    ));
    drop(s);
    let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
    assert!(rep.is_ok(), "{}", rep.to_text());
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    let kept: Vec<String> = s.chunks().iter().map(|c| c.to_string()).collect();
    assert_eq!(kept, ["0_9", "10_11", "13_19", "20_29"]);
    assert_eq!(s.read_by_level(12, false).unwrap(), None);
}

#[test]
fn deleted_zip_is_corrupted_not_no_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    std::fs::remove_file(dir.path().join("metadata/10_19.zip")).unwrap();
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    let m = corrupted(s.read_metadata(12));
    assert!(m.contains("10_19.zip") && m.contains("missing"), "{m}");
    corrupted(s.read_by_level(12, true));
    assert_eq!(
        s.read_by_level(12, false).unwrap(),
        Some(pruned(&blocks[12]))
    );
    let r = ChunkRange::parse("10_19").unwrap();
    assert!(matches!(
        s.iter_chunk(r, true).unwrap().next(),
        Some(Err(Error::Corrupted(_)))
    ));
    corrupted(s.check_consistency(None));
    drop(s);
    // Repair cannot bring the metadata back: it says so and marks it
    // dropped, and the blocks stay.
    let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
    assert!(rep.is_ok(), "{}", rep.to_text());
    assert!(rep.to_text().contains("is lost"), "{}", rep.to_text());
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.read_metadata(12).unwrap(), None);
    assert_eq!(
        s.read_by_level(12, true).unwrap(),
        Some(pruned(&blocks[12]))
    );
    s.check_consistency(None).unwrap();
}

#[test]
fn zips_dropped_by_gc_read_as_no_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    s.gc(HistoryMode::Full, 1).unwrap();
    assert_eq!(s.read_metadata(5).unwrap(), None);
    assert_eq!(s.read_metadata(25).unwrap(), blocks[25].metadata);
    s.check_consistency(None).unwrap();
    drop(s);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(
        s.read_by_level(15, true).unwrap(),
        Some(pruned(&blocks[15]))
    );
    s.check_consistency(None).unwrap();
    assert!(Cemented::check(dir.path(), &opts(), false).unwrap().is_ok());
    s.gc(HistoryMode::Rolling, 1).unwrap();
    drop(s);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.lowest_level(), Some(20));
    s.check_consistency(None).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path().join("metadata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["20_29.zip"]);
}

#[test]
fn partly_indexed_last_chunk_is_reindexed_and_counts_match() {
    // A crash while the last chunk was being indexed (or unindexed by GC):
    // the open re-indexes it; re-added bindings must not count twice.
    let dir = tempfile::tempdir().unwrap();
    let blocks = three_chunks(dir.path());
    {
        let index = |name: &str, k: usize, v: usize| {
            tzstore::index::Index::open(
                dir.path().join(name),
                tzstore::index::IndexConfig {
                    key_size: k,
                    value_size: v,
                    removable: true,
                    log_size: 0,
                    open: opts(),
                },
            )
            .unwrap()
        };
        let l2h = index("level_to_hash", 4, 32);
        let h2l = index("hash_to_level", 32, 4);
        for b in &blocks[25..] {
            l2h.remove(&b.level.to_be_bytes(), false).unwrap();
            h2l.remove(&b.hash, false).unwrap();
        }
        l2h.close().unwrap();
        h2l.close().unwrap();
    }
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    for b in &blocks {
        assert_eq!(s.level_of(&b.hash).unwrap(), Some(b.level));
    }
    s.check_consistency(None).unwrap();
    drop(s);
    assert!(Cemented::check(dir.path(), &opts(), false).unwrap().is_ok());
    Cemented::open(dir.path(), &ro(), 0).unwrap();
}

#[test]
fn check_repair_rebuilds_a_damaged_index_of_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    drop(Cemented::open(dir.path(), &opts(), 0).unwrap());
    std::fs::write(dir.path().join("level_to_hash/meta"), b"garbage").unwrap();
    assert!(!Cemented::check(dir.path(), &opts(), false).unwrap().is_ok());
    let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
    assert!(rep.is_ok(), "{}", rep.to_text());
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    let blocks = chain(1, 0, 9, 1);
    s.cement(&refs(&blocks), true, true).unwrap();
    s.check_consistency(None).unwrap();
}

/// Found by the damage fuzz (seed 15917): one bit flipped in the central
/// directory renamed entry "3" to "2", and the metadata of level 3 was
/// returned for level 2.
#[test]
fn renamed_zip_entry_is_never_returned_for_another_level() {
    for (kind, name_at) in [(b"\x01\x02", 46), (b"\x03\x04", 30)] {
        for (from, to) in [(b"3", b'2'), (b"3", b'7'), (b"4", b'5')] {
            let dir = tempfile::tempdir().unwrap();
            let blocks = three_chunks(dir.path());
            let zip = dir.path().join("metadata/0_9.zip");
            let mut bytes = std::fs::read(&zip).unwrap();
            let at = find_header(&bytes, kind, from) + name_at;
            bytes[at] = to;
            std::fs::write(&zip, &bytes).unwrap();
            let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
            for b in &blocks[..10] {
                match s.read_metadata(b.level) {
                    Ok(m) => assert!(m == b.metadata, "level {}: {m:?}", b.level),
                    Err(Error::Corrupted(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(
                matches!(s.check_consistency(None), Err(Error::Corrupted(_))),
                "{kind:?} {from:?} -> {to}"
            );
            drop(s);
            let rep = Cemented::check(dir.path(), &opts(), true).unwrap();
            assert!(rep.is_ok(), "{}", rep.to_text());
            let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
            for b in &blocks[..10] {
                let m = s.read_metadata(b.level).unwrap();
                assert!(m == b.metadata || m.is_none(), "level {}", b.level);
            }
            s.check_consistency(None).unwrap();
        }
    }
}
