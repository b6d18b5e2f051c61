//! Metadata for blocks cemented without it (Octez's
//! `cement_blocks_metadata`): written once per chunk, checked against the
//! cemented blocks, durable and flagged (a lost zip is then damage), after
//! GC dropped it too; and a power cut at every sync leaves the chunk with
//! no metadata or all of it.

mod cemented_util;
mod power_common;

use std::path::Path;
use std::sync::Arc;

use cemented_util::{chain, refs};
use tzstore::block::cemented::{Cemented, HistoryMode};
use tzstore::block::{Block, BlockRef};
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;
use tzstore::{Error, OpenOptions};

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

#[test]
fn metadata_of_a_chunk_cemented_without_it_reads_back_and_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(1, 0, 59, 7);
    {
        let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
        s.cement(&refs(&blocks[..30]), false, true).unwrap();
        s.cement(&refs(&blocks[30..]), false, true).unwrap();
        assert!(s.metadata_chunks().is_empty());
        assert_eq!(s.read_metadata(10).unwrap(), None);
        // Every level but 12 of the first chunk (a block without metadata).
        let with: Vec<BlockRef<'_>> = blocks[..30]
            .iter()
            .filter(|b| b.level != 12)
            .map(Block::as_ref)
            .collect();
        let range = s.cement_metadata(with).unwrap();
        assert_eq!((range.start, range.end), (0, 29));
        assert_eq!(s.metadata_chunks(), vec![range]);
        for b in &blocks[..30] {
            let want = if b.level == 12 {
                None
            } else {
                b.metadata.clone()
            };
            assert_eq!(s.read_metadata(b.level).unwrap(), want, "level {}", b.level);
        }
        // Once only.
        assert!(matches!(
            s.cement_metadata(refs(&blocks[..30])),
            Err(Error::InvalidArgument(_))
        ));
    }
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.read_metadata(3).unwrap(), blocks[3].metadata);
    s.check_consistency(None).unwrap();
    // The chunk is now flagged: its zip going missing is damage, not "no
    // metadata" (the second chunk, never given metadata, stays fine).
    drop(s);
    let zip = std::fs::read_dir(dir.path().join("cemented_metadata"))
        .or_else(|_| std::fs::read_dir(dir.path().join("metadata")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("0_29"))
        .expect("the zip");
    std::fs::remove_file(zip).unwrap();
    let opened = Cemented::open(dir.path(), &opts(), 0);
    let damaged = match opened {
        Err(Error::Corrupted(_)) => true,
        Ok(s) => matches!(s.read_metadata(3), Err(Error::Corrupted(_))),
        Err(e) => panic!("{e}"),
    };
    assert!(damaged, "a lost zip of a flagged chunk must be damage");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(1, 0, 59, 7);
    let other = chain(2, 0, 59, 7);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    s.cement(&refs(&blocks[..30]), false, true).unwrap();
    s.cement(&refs(&blocks[30..]), false, true).unwrap();
    let none: Vec<BlockRef<'_>> = Vec::new();
    assert!(matches!(
        s.cement_metadata(none),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s.cement_metadata(refs(&other[..3])),
        Err(Error::Inconsistent(_))
    ));
    assert!(matches!(
        s.cement_metadata(refs(&blocks[28..32])),
        Err(Error::Inconsistent(_))
    ));
    let backwards = vec![blocks[5].as_ref(), blocks[4].as_ref()];
    assert!(matches!(
        s.cement_metadata(backwards),
        Err(Error::InvalidArgument(_))
    ));
    let beyond = chain(1, 60, 61, 7);
    assert!(matches!(
        s.cement_metadata(refs(&beyond)),
        Err(Error::NotFound(_))
    ));
    assert!(s.metadata_chunks().is_empty());
    assert_eq!(s.read_metadata(5).unwrap(), None);
    let ro = Cemented::open(dir.path(), &OpenOptions::read_only(), 0).unwrap();
    assert!(matches!(
        ro.cement_metadata(refs(&blocks[..3])),
        Err(Error::ReadOnly(_))
    ));
}

#[test]
fn metadata_dropped_by_gc_can_be_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(1, 0, 89, 7);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    for part in blocks.chunks(30) {
        s.cement(&refs(part), true, true).unwrap();
    }
    s.gc(HistoryMode::Full, 1).unwrap();
    assert_eq!(s.metadata_chunks().len(), 1);
    assert_eq!(s.read_metadata(3).unwrap(), None);
    s.cement_metadata(refs(&blocks[..30])).unwrap();
    assert_eq!(s.metadata_chunks().len(), 2);
    drop(s);
    let s = Cemented::open(dir.path(), &opts(), 0).unwrap();
    assert_eq!(s.read_metadata(3).unwrap(), blocks[3].metadata);
    s.check_consistency(None).unwrap();
}

fn crash_opts(fs: &CrashFs) -> OpenOptions {
    let mut o = OpenOptions::read_write();
    o.fs = Arc::new(fs.clone());
    o
}

#[test]
fn a_power_cut_leaves_no_metadata_or_all_of_it() {
    let blocks = chain(1, 0, 39, 7);
    let workload = |fs: &CrashFs| {
        fs.create_dir_all(Path::new("/c")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let s = Cemented::open("/c", &crash_opts(fs), 0).unwrap();
        s.cement(&refs(&blocks[..20]), false, true).unwrap();
        s.cement(&refs(&blocks[20..]), false, true).unwrap();
        let before = fs.syncs();
        s.cement_metadata(refs(&blocks[..20])).unwrap();
        (before, fs.syncs())
    };
    let states =
        power_common::at_every_sync(1, 200, 1, workload, |after, &(start, done), k, mode| {
            let what = format!("cut before sync {k} ({mode:?})");
            let s = power_common::open_or_repair(
                mode,
                &what,
                || Cemented::open("/c", &crash_opts(after), 0),
                |repair| Cemented::check("/c", &crash_opts(after), repair),
            );
            if k <= start {
                return; // the chunks themselves: covered by the cemented crash tests
            }
            let got: Vec<Option<Vec<u8>>> = (0..20).map(|l| s.read_metadata(l).unwrap()).collect();
            let none = got.iter().all(Option::is_none);
            let all = got.iter().zip(&blocks[..20]).all(|(g, b)| *g == b.metadata);
            assert!(none || all, "{what}: a partial metadata chunk: {got:?}");
            if k > done {
                assert!(all, "{what}: acknowledged metadata lost");
            }
            if none {
                s.cement_metadata(refs(&blocks[..20])).unwrap();
                assert_eq!(s.read_metadata(7).unwrap(), blocks[7].metadata, "{what}");
            }
        });
    assert!(states >= 20, "only {states} crash states");
}
