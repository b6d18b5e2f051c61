//! Damage of the floating block store: the regression tests of issue #15's
//! rows (a ~4 GiB length field, the first 4 KiB zeroed, a checksum failure
//! followed by intact entries), `check` and its repair, and the damage fuzz
//! (see `tests/common/damage.rs`): every read returns the acknowledged block
//! or an error, entries the damage did not touch stay readable, iteration
//! never ends early without an error, and after repair the store opens,
//! checks clean and still holds every entry the damage did not touch.

mod common;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use common::damage;
use tzstore::block::entry;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::predecessors;
use tzstore::block::{Block, Hash};
use tzstore::{Error, OpenOptions};

const KIND: FloatingKind = FloatingKind::Rw;

fn opts(read_only: bool) -> OpenOptions {
    let o = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    o.no_fsync()
}

fn hash_of(n: u64) -> Hash {
    let mut h = [0x5A; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

/// One stored block: the block, its predecessor list, and where its entry
/// lies in the file.
#[derive(Debug, Clone)]
struct Stored {
    block: Block,
    preds: Vec<Hash>,
    range: Range<u64>,
}

/// `n` blocks: a chain with a fork every 7 levels, contents of varied
/// sizes, metadata on two blocks of three; in append order.
fn content(n: u64) -> Vec<Stored> {
    let mut out: Vec<Stored> = Vec::new();
    let mut lists: HashMap<Hash, Vec<Hash>> = HashMap::new();
    let mut at = 0u64;
    for i in 0..n {
        let parent = match i {
            0 => None,
            _ if i % 7 == 0 && i > 7 => Some(i - 2),
            _ => Some(i - 1),
        };
        let hash = hash_of(i);
        let pred = parent.map_or(hash, hash_of);
        let block = Block {
            hash,
            level: out
                .get(parent.unwrap_or(0) as usize)
                .map_or(0, |p| p.block.level + 1),
            predecessor: pred,
            contents: (0..20 + (i * 37) % 180)
                .map(|x| (x as u8) ^ (i as u8))
                .collect(),
            metadata: (i % 3 != 0).then(|| vec![(i % 251) as u8; 10 + (i as usize * 13) % 90]),
        };
        let preds = match parent {
            None => Vec::new(),
            Some(_) => predecessors::compute(&pred, |h, k| {
                Ok(lists.get(h).and_then(|l| l.get(k).copied()))
            })
            .unwrap(),
        };
        lists.insert(hash, preds.clone());
        let len = (block.as_ref().encoded_len(true) + entry::trailer_len(preds.len())) as u64;
        out.push(Stored {
            block,
            preds,
            range: at..at + len,
        });
        at += len;
    }
    out
}

fn build(dir: &Path, blocks: &[Stored]) {
    let s = Floating::open(dir, KIND, &opts(false)).unwrap();
    for b in blocks {
        s.append(&b.block.as_ref(), &b.preds, false).unwrap();
    }
    s.flush().unwrap();
}

fn file(dir: &Path) -> PathBuf {
    dir.join(KIND.file_name())
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

fn corrupted(r: tzstore::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Corrupted(m)) => m,
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

/// Runs `f` in a child process limited to 1 GiB of address space, so that
/// a gibibyte allocation driven by a damaged length aborts the test.
fn under_memory_limit(name: &str, f: impl FnOnce()) {
    if common::is_child(name) {
        let lim = libc::rlimit {
            rlim_cur: 1 << 30,
            rlim_max: 1 << 30,
        };
        // SAFETY: plain system call on a local struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        return f();
    }
    let status = common::spawn_child(name, &[("MALLOC_ARENA_MAX", "2".into())])
        .wait()
        .unwrap();
    assert!(status.success(), "{name} failed in its child: {status}");
}

/// Row "floating: a record length field set to ~4 GiB": reads, iteration
/// and the merge's header walk return `Corrupted` naming the offset instead
/// of allocating the announced gibibytes.
#[test]
fn huge_length_field_is_corrupted_without_a_huge_allocation() {
    under_memory_limit(
        "huge_length_field_is_corrupted_without_a_huge_allocation",
        || {
            let d = tempfile::tempdir().unwrap();
            let blocks = content(100);
            build(d.path(), &blocks);
            let victim = &blocks[50];
            write_at(
                &file(d.path()),
                victim.range.start,
                &0xFFFF_FFF0u32.to_be_bytes(),
            );
            for read_only in [false, true] {
                let s = Floating::open(d.path(), KIND, &opts(read_only)).unwrap();
                let m = corrupted(s.read_block(&victim.block.hash));
                assert!(m.contains(&format!("offset {}", victim.range.start)), "{m}");
                corrupted(s.read_block_and_predecessors(&victim.block.hash));
                assert_eq!(
                    s.read_block(&blocks[51].block.hash).unwrap().unwrap(),
                    blocks[51].block
                );
                let items: Vec<_> = s.iter(true).collect();
                assert_eq!(items.len(), 51, "50 blocks, then the error");
                let m = corrupted(items[50].as_ref().map(|_| ()).map_err(Clone::clone));
                assert!(m.contains(&format!("offset {}", victim.range.start)), "{m}");
                corrupted(s.headers());
            }
        },
    );
}

/// The same damage on the last entry: today's open took it for a torn tail
/// and cut an acknowledged block. It is indexed, so it is damage.
#[test]
fn huge_length_field_in_the_last_entry_is_corrupted_not_cut() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(20);
    build(d.path(), &blocks);
    let last = blocks.last().unwrap();
    write_at(
        &file(d.path()),
        last.range.start,
        &0xFFFF_FFF0u32.to_be_bytes(),
    );
    let before = std::fs::read(file(d.path())).unwrap();
    let m = corrupted(Floating::open(d.path(), KIND, &opts(false)));
    assert!(m.contains(&format!("offset {}", last.range.start)), "{m}");
    assert_eq!(
        std::fs::read(file(d.path())).unwrap(),
        before,
        "nothing cut"
    );
}

/// Row "floating: the first 4 KiB zeroed": iteration returned DONE after 0
/// of 100 blocks. Zeros followed by intact entries are damage: the
/// iteration returns `Corrupted` naming the file and offset 0; `check`
/// reports it; repair keeps every entry past the zeros.
#[test]
fn zeroed_first_4k_is_corrupted_not_the_end_of_the_blocks() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(100);
    build(d.path(), &blocks);
    write_at(&file(d.path()), 0, &[0u8; 4096]);
    for read_only in [false, true] {
        let s = Floating::open(d.path(), KIND, &opts(read_only)).unwrap();
        let mut it = s.iter(true);
        let m = corrupted(it.next().expect("an item, not the end"));
        assert!(
            m.contains("RW_floating_block_store") && m.contains("offset 0"),
            "{m}"
        );
        corrupted(s.read_block(&blocks[0].block.hash));
    }
    let report = Floating::check(d.path(), &opts(false), false).unwrap();
    assert!(!report.is_ok(), "{report:?}");
    assert!(report.problems[0].contains("bytes 0.."), "{report:?}");
    let repaired = Floating::check(d.path(), &opts(false), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let q = repaired.quarantine_dir.clone().unwrap();
    assert_eq!(
        std::fs::metadata(q.join(KIND.file_name())).unwrap().len(),
        blocks.last().unwrap().range.end,
        "the original is kept whole"
    );
    assert!(
        Floating::check(d.path(), &opts(false), false)
            .unwrap()
            .is_ok()
    );
    let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
    for b in &blocks {
        let got = s.read_block(&b.block.hash).unwrap();
        if b.range.start >= 4096 {
            assert_eq!(got.as_ref(), Some(&b.block));
            assert_eq!(
                s.find_predecessors(&b.block.hash).unwrap(),
                Some(b.preds.clone())
            );
        } else {
            assert_eq!(got, None);
        }
    }
    assert_eq!(s.iter(true).filter(|e| e.is_ok()).count() as u64, s.len());
}

/// Rules 1 and 2: an entry failing its checksum followed by intact entries
/// is damage, even past the last indexed entry (the index lost its last
/// writes): the open returns `Corrupted` and cuts nothing; repair keeps
/// every intact entry and quarantines the original.
#[test]
fn checksum_failure_followed_by_intact_entries_is_corrupted_not_cut() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(10);
    build(d.path(), &blocks[..7]);
    let saved = tempfile::tempdir().unwrap();
    damage::copy_tree(&d.path().join(KIND.index_name()), saved.path()).unwrap();
    {
        let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
        for b in &blocks[7..] {
            s.append(&b.block.as_ref(), &b.preds, true).unwrap();
        }
    }
    // The index as of 7 blocks, and a flipped byte in block 7's contents.
    std::fs::remove_dir_all(d.path().join(KIND.index_name())).unwrap();
    damage::copy_tree(saved.path(), &d.path().join(KIND.index_name())).unwrap();
    let path = file(d.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[blocks[7].range.start as usize + 80] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let m = corrupted(Floating::open(d.path(), KIND, &opts(false)));
    assert!(
        m.contains(&format!("offset {}", blocks[7].range.start)),
        "{m}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut");
    let repaired = Floating::check(d.path(), &opts(false), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
    for (i, b) in blocks.iter().enumerate() {
        let want = (i != 7).then(|| b.block.clone());
        assert_eq!(s.read_block(&b.block.hash).unwrap(), want, "block {i}");
    }

    // The same on the last entry, which the index holds: not a torn tail.
    let d = tempfile::tempdir().unwrap();
    build(d.path(), &blocks);
    let mut bytes = std::fs::read(file(d.path())).unwrap();
    bytes[blocks[9].range.start as usize + 80] ^= 0x40;
    std::fs::write(file(d.path()), &bytes).unwrap();
    corrupted(Floating::open(d.path(), KIND, &opts(false)));
    assert_eq!(std::fs::read(file(d.path())).unwrap(), bytes, "nothing cut");
}

/// A read-only view cannot tell a torn append from a damaged last entry by
/// the bytes alone; the index can: an indexed entry is not the end.
#[test]
fn damaged_last_entry_ends_a_read_only_iteration_with_corrupted() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(10);
    build(d.path(), &blocks);
    let mut bytes = std::fs::read(file(d.path())).unwrap();
    bytes[blocks[9].range.start as usize + 90] ^= 0x01;
    std::fs::write(file(d.path()), &bytes).unwrap();
    let s = Floating::open(d.path(), KIND, &opts(true)).unwrap();
    let items: Vec<_> = s.iter(true).collect();
    assert_eq!(items.len(), 10, "9 blocks, then the error");
    let m = corrupted(items[9].as_ref().map(|_| ()).map_err(Clone::clone));
    assert!(
        m.contains(&format!("offset {}", blocks[9].range.start)),
        "{m}"
    );
}

/// Found by the fuzz (seed 159): a directory in place of the index's log
/// passed `check` (a read-only index open does not read it) while the
/// read-write open failed. `check` now agrees with the open, and repair
/// rebuilds the index.
#[test]
fn directory_in_place_of_an_index_file_fails_check_like_the_open() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(10);
    build(d.path(), &blocks);
    let index_dir = d.path().join(KIND.index_name());
    let victim = damage::store_files(&index_dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("log"))
        .expect("an index log file");
    std::fs::remove_file(&victim).unwrap();
    std::fs::create_dir(&victim).unwrap();
    assert!(Floating::open(d.path(), KIND, &opts(false)).is_err());
    let report = Floating::check(d.path(), &opts(false), false).unwrap();
    assert!(!report.is_ok(), "{report:?}");
    let repaired = Floating::check(d.path(), &opts(false), true).unwrap();
    assert!(repaired.is_ok(), "{repaired:?}");
    let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
    for b in &blocks {
        assert_eq!(
            s.read_block(&b.block.hash).unwrap().as_ref(),
            Some(&b.block)
        );
    }
}

/// Entries appended after the last index write, then a torn entry: the open
/// indexes the whole ones and cuts only the torn one (a crash, not damage).
#[test]
fn torn_tail_after_unindexed_entries_is_still_cut() {
    let d = tempfile::tempdir().unwrap();
    let blocks = content(12);
    build(d.path(), &blocks[..5]);
    let saved = tempfile::tempdir().unwrap();
    damage::copy_tree(&d.path().join(KIND.index_name()), saved.path()).unwrap();
    {
        let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
        for b in &blocks[5..] {
            s.append(&b.block.as_ref(), &b.preds, true).unwrap();
        }
    }
    std::fs::remove_dir_all(d.path().join(KIND.index_name())).unwrap();
    damage::copy_tree(saved.path(), &d.path().join(KIND.index_name())).unwrap();
    let end = blocks[10].range.end;
    let path = file(d.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..end as usize + 30]).unwrap();
    assert!(
        Floating::check(d.path(), &opts(false), false)
            .unwrap()
            .is_ok()
    );
    let s = Floating::open(d.path(), KIND, &opts(false)).unwrap();
    assert_eq!(s.len(), 11);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
    for b in &blocks[..11] {
        assert_eq!(
            s.read_block(&b.block.hash).unwrap().as_ref(),
            Some(&b.block)
        );
    }
}

/// Blocks of the fuzz template.
const FUZZ_BLOCKS: u64 = 40;

/// What one open handle must show on a damaged store: each read is the
/// acknowledged block or an error, entries the damage did not touch read
/// back, and an iteration that ends without an error saw all of them.
fn check_handle(s: &Floating, case: &damage::Case, blocks: &[Stored], index_hit: bool) {
    let what = case.describe();
    let path = file(&case.dir);
    let untouched = |b: &Stored| !case.touches(&path, b.range.clone());
    for (i, b) in blocks.iter().enumerate() {
        match s.read_block(&b.block.hash) {
            Ok(Some(got)) => assert_eq!(got, b.block, "{what}: block {i}"),
            Ok(None) => assert!(index_hit, "{what}: block {i} lost without an error"),
            Err(Error::Corrupted(_)) => {
                assert!(
                    index_hit || !untouched(b),
                    "{what}: untouched block {i} unreadable"
                )
            }
            Err(e) => panic!("{what}: block {i}: unexpected {e}"),
        }
        match s.level_and_predecessor(&b.block.hash) {
            Ok(Some(lp)) => assert_eq!(lp, (b.block.level, b.block.predecessor), "{what}: {i}"),
            Ok(None) | Err(Error::Corrupted(_)) => {
                assert!(index_hit, "{what}: level of {i} lost")
            }
            Err(e) => panic!("{what}: level of {i}: unexpected {e}"),
        }
        match s.find_predecessors(&b.block.hash) {
            Ok(Some(p)) => assert_eq!(p, b.preds, "{what}: predecessors of {i}"),
            Ok(None) | Err(Error::Corrupted(_)) => {
                assert!(index_hit, "{what}: predecessors of {i} lost")
            }
            Err(e) => panic!("{what}: predecessors of {i}: unexpected {e}"),
        }
    }
    let by_hash: HashMap<Hash, &Stored> = blocks.iter().map(|b| (b.block.hash, b)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut clean_end = true;
    for item in s.iter(true) {
        match item {
            Ok(e) => {
                let b = by_hash
                    .get(&e.block.hash)
                    .unwrap_or_else(|| panic!("{what}: iteration made up a block"));
                assert_eq!((&e.block, &e.preds), (&b.block, &b.preds), "{what}");
                seen.insert(e.block.hash);
            }
            Err(Error::Corrupted(_)) => {
                clean_end = false;
                break;
            }
            Err(e) => panic!("{what}: iteration: unexpected {e}"),
        }
    }
    if clean_end {
        for (i, b) in blocks.iter().enumerate() {
            assert!(
                seen.contains(&b.block.hash) || !untouched(b),
                "{what}: iteration ended without an error before untouched block {i}"
            );
        }
        // An iteration may end quietly only where the damage left no
        // readable header naming an indexed block (a torn append looks so).
        if let Some(first) = blocks.iter().find(|b| !seen.contains(&b.block.hash)) {
            let header = first.range.start..first.range.start + entry::HEADER_LEN as u64;
            assert!(
                index_hit || case.touches(&path, header),
                "{what}: iteration ended quietly at damaged block {}",
                first.block.level
            );
        }
    }
}

#[test]
fn damaged_floating_store_never_loses_an_untouched_block() {
    let blocks = content(FUZZ_BLOCKS);
    damage::run(
        "damaged_floating_store_never_loses_an_untouched_block",
        500,
        |dir| build(dir, &blocks),
        |case| {
            let what = case.describe();
            let path = file(&case.dir);
            let index_dir = case.dir.join(KIND.index_name());
            let index_hit = case
                .damage
                .iter()
                .any(|d| d.files().iter().any(|f| f.starts_with(&index_dir)));
            let untouched = |b: &Stored| !case.touches(&path, b.range.clone());
            let mut rw_opens = false;
            for read_only in [false, true] {
                match Floating::open(&case.dir, KIND, &opts(read_only)) {
                    Ok(s) => {
                        rw_opens |= !read_only;
                        check_handle(&s, case, &blocks, index_hit);
                    }
                    Err(Error::Corrupted(_) | Error::InvalidArgument(_) | Error::NotFound(_)) => {}
                    Err(e) => panic!("{what}: open (read-only {read_only}): unexpected {e}"),
                }
            }
            let before = Floating::check(&case.dir, &opts(false), false).unwrap();
            if before.is_ok() {
                assert!(rw_opens, "{what}: check passes but the open fails");
            }
            let repaired = Floating::check(&case.dir, &opts(false), true).unwrap();
            assert!(repaired.is_ok(), "{what}: {repaired:?}");
            if !before.is_ok() {
                assert!(repaired.quarantine_dir.is_some(), "{what}: {repaired:?}");
            }
            let after = Floating::check(&case.dir, &opts(false), false).unwrap();
            assert!(after.is_ok(), "{what}: {after:?}");
            let s = Floating::open(&case.dir, KIND, &opts(false)).unwrap();
            for (i, b) in blocks.iter().enumerate() {
                match s.read_block(&b.block.hash).unwrap() {
                    Some(got) => assert_eq!(got, b.block, "{what}: block {i}"),
                    None => assert!(!untouched(b), "{what}: repair lost untouched block {i}"),
                }
                if s.mem(&b.block.hash).unwrap() {
                    assert_eq!(
                        s.find_predecessors(&b.block.hash).unwrap(),
                        Some(b.preds.clone()),
                        "{what}"
                    );
                }
            }
            let mut iterated = 0u64;
            for e in s.iter(true) {
                e.unwrap_or_else(|e| panic!("{what}: iteration after repair: {e}"));
                iterated += 1;
            }
            assert_eq!(iterated, s.len(), "{what}");
            let extra = content(FUZZ_BLOCKS + 1).pop().unwrap();
            s.append(&extra.block.as_ref(), &[], true).unwrap();
            drop(s);
            let s = Floating::open(&case.dir, KIND, &opts(false)).unwrap();
            assert_eq!(
                s.read_block(&extra.block.hash).unwrap(),
                Some(extra.block.clone()),
                "{what}"
            );
            drop(s);
            let ro = Floating::open(&case.dir, KIND, &opts(true)).unwrap();
            assert!(ro.mem(&extra.block.hash).unwrap(), "{what}");
        },
    );
}
