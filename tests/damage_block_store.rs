//! Damage of the block store: the regression tests of issue #15's rows
//! (a FIFO manifest, a deleted manifest, a damaged side-branch record under
//! a merge, read-only opens during merges, an absurd worker count), orphans
//! left alone, `check_dir` with repair, and the damage fuzz (see
//! `tests/common/damage.rs`).

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::damage;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions, MAX_WORKERS};
use tzstore::block::{Block, Hash};
use tzstore::{Error, OpenOptions};

fn hash_of(n: u64) -> Hash {
    let mut h = [0xB5; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

fn block(id: u64, level: i32, pred: Hash) -> Block {
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents: format!("block {id} at level {level}").into_bytes(),
        metadata: (id % 3 != 0).then(|| vec![(id % 251) as u8; 16 + (id % 40) as usize]),
    }
}

fn opts(read_only: bool) -> BlockStoreOptions {
    let mut open = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    open.fs = tzstore::io::default_fs(true);
    BlockStoreOptions {
        open,
        history_mode: HistoryMode::Archive,
        index_log_size: 16,
        ..BlockStoreOptions::default()
    }
}

/// The main chain: block `i` at level `i`.
fn main_block(i: u64) -> Block {
    block(
        i,
        i as i32,
        if i == 0 { hash_of(0) } else { hash_of(i - 1) },
    )
}

/// A side branch forking at `fork` (its first block is at `fork + 1`):
/// blocks `base + k`, `len` of them.
fn side_branch(base: u64, fork: u64, len: u64) -> Vec<Block> {
    (0..len)
        .map(|k| {
            let pred = if k == 0 {
                hash_of(fork)
            } else {
                hash_of(base + k - 1)
            };
            block(base + k, (fork + 1 + k) as i32, pred)
        })
        .collect()
}

fn store_all(s: &BlockStore, blocks: &[Block]) {
    for b in blocks {
        s.store_with(&b.as_ref(), false).unwrap();
    }
    s.flush().unwrap();
}

/// Every file under `dir` (relative paths), for "nothing was deleted".
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// The fuzz template: 300 main blocks, a side branch below and one above
/// the merge top, one merge done (levels 0..=149 cemented), 100 more blocks
/// and a second side branch floating.
fn build_template(dir: &Path) -> Vec<Block> {
    let s = BlockStore::open(dir, opts(false)).unwrap();
    let mut all = Vec::new();
    let mut first: Vec<Block> = (0..200).map(main_block).collect();
    // Arrival order interleaves the branches: the side branch forks at 120
    // (dropped by the merge) and at 160 (kept: it descends from the top).
    first.splice(130..130, side_branch(1000, 120, 8));
    first.splice(180..180, side_branch(1100, 160, 8));
    store_all(&s, &first);
    all.extend(first);
    s.merge(&hash_of(199), &[49, 99, 149]).unwrap();
    s.await_merge().unwrap();
    let mut second: Vec<Block> = (200..300).map(main_block).collect();
    second.splice(60..60, side_branch(2000, 250, 8));
    store_all(&s, &second);
    all.extend(second);
    drop(s);
    all
}

/// The blocks the template holds after its merge: the side branch at 120
/// no longer connects.
fn template_blocks() -> Vec<Block> {
    let mut all: Vec<Block> = (0..300).map(main_block).collect();
    all.extend(side_branch(1100, 160, 8));
    all.extend(side_branch(2000, 250, 8));
    all
}

/// Reads every expected block; panics unless each read is exact.
fn read_all_exact(s: &BlockStore, blocks: &[Block]) {
    for b in blocks {
        let got = s.read(&b.hash, 0, true).unwrap();
        assert_eq!(got.as_ref(), Some(b), "block at level {}", b.level);
    }
}

/// Opens `path` on another thread and fails if that takes more than 10 s
/// (an open blocked on a FIFO never returns).
fn open_with_timeout(path: &Path, o: BlockStoreOptions) -> tzstore::Result<BlockStore> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(BlockStore::open(&path, o));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("open blocked for 10 s")
}

#[test]
fn block_store_manifest_replaced_by_fifo_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    build_template(d.path());
    let manifest = d.path().join("manifest");
    std::fs::remove_file(&manifest).unwrap();
    damage::mkfifo(&manifest).unwrap();
    for read_only in [false, true] {
        match open_with_timeout(d.path(), opts(read_only)) {
            Err(Error::Corrupted(m)) => assert!(m.contains("not a regular file"), "{m}"),
            other => panic!("read_only {read_only}: {other:?}"),
        }
    }
    let found = BlockStore::check_dir(d.path(), &opts(false), false).unwrap();
    assert!(!found.is_ok());
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok(), "{fixed:?}");
    assert!(
        fixed.quarantined.iter().any(|q| q == "manifest"),
        "{fixed:?}"
    );
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    read_all_exact(&s, &template_blocks());
}

#[test]
fn block_store_manifest_deleted_is_damage_and_nothing_is_deleted() {
    let d = tempfile::tempdir().unwrap();
    build_template(d.path());
    std::fs::remove_file(d.path().join("manifest")).unwrap();
    let before = tree(d.path());
    for read_only in [false, true] {
        match BlockStore::open(d.path(), opts(read_only)) {
            Err(Error::Corrupted(m)) => assert!(m.contains("manifest"), "{m}"),
            other => panic!("read_only {read_only}: {other:?}"),
        }
        assert_eq!(tree(d.path()), before, "the open changed the directory");
    }
    let found = BlockStore::check_dir(d.path(), &opts(false), false).unwrap();
    assert!(!found.is_ok(), "{found:?}");
    assert_eq!(
        tree(d.path()),
        before,
        "check without repair changed something"
    );
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok(), "{fixed:?}");
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    read_all_exact(&s, &template_blocks());
    assert!(s.check(false).unwrap().is_ok());
}

/// A store whose floating part holds a side branch among the main chain
/// (arrival order), not merged yet. Returns the blocks stored.
fn build_unmerged(dir: &Path) -> Vec<Block> {
    let s = BlockStore::open(dir, opts(false)).unwrap();
    let mut blocks: Vec<Block> = (0..100).map(main_block).collect();
    blocks.splice(60..60, side_branch(500, 50, 10));
    store_all(&s, &blocks);
    blocks
}

/// Offset and total length of the entry of `hash` in a floating file.
fn entry_offset(file: &Path, hash: &Hash) -> (u64, u64) {
    let bytes = std::fs::read(file).unwrap();
    let mut at = 0usize;
    while at + 36 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let rec = 4 + size;
        let n = bytes[at + rec] as usize;
        let len = rec + 1 + n * 32 + 4;
        if &bytes[at + 4..at + 36] == hash {
            return (at as u64, len as u64);
        }
        at += len;
    }
    panic!("hash not in {}", file.display());
}

#[test]
fn damaged_side_branch_record_size_aborts_the_merge() {
    let d = tempfile::tempdir().unwrap();
    let blocks = build_unmerged(d.path());
    let file = d.path().join("floating/0/RW_floating_block_store");
    let victim = hash_of(505);
    let (at, _) = entry_offset(&file, &victim);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap();
        // The size now reaches the file's last byte: a walk from header to
        // header without checksums jumps past the end and stops, as if the
        // entries after the damaged one did not exist.
        let len = f.metadata().unwrap().len();
        let size = (len - 1 - at - 4) as u32;
        f.write_all_at(&size.to_be_bytes(), at).unwrap();
    }
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    s.merge(&hash_of(99), &[49, 79]).unwrap();
    let failure = match s.await_merge() {
        Err(Error::Corrupted(m)) => {
            assert!(
                m.contains("RW_floating_block_store") && m.contains(&at.to_string()),
                "{m}"
            );
            Error::Corrupted(m)
        }
        other => panic!("the merge completed over damage: {other:?}"),
    };
    // The status tells the same without waiting, until the next merge.
    assert_eq!(
        s.merge_status(),
        tzstore::block::store::MergeStatus::Failed(failure)
    );
    // The state from before the merge: nothing cemented, every block but
    // the damaged one reads back.
    assert_eq!(s.stats().unwrap().cemented_highest, None);
    for b in blocks.iter().filter(|b| b.hash != victim) {
        assert_eq!(s.read(&b.hash, 0, true).unwrap().as_ref(), Some(b));
    }
    let found = s.check(false).unwrap();
    assert!(!found.is_ok(), "check missed the damaged record");
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.contains(&format!("offset {at}"))),
        "{found:?}"
    );
    drop(s);
    // Repair keeps every intact block (those after the damage included).
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok(), "{fixed:?}");
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    for b in blocks.iter().filter(|b| b.hash != victim) {
        assert_eq!(s.read(&b.hash, 0, true).unwrap().as_ref(), Some(b));
    }
    assert_eq!(s.read(&victim, 0, true).unwrap(), None);
    s.merge(&hash_of(99), &[49, 79]).unwrap();
    s.await_merge().unwrap();
    for i in 0..100 {
        assert_eq!(s.read(&hash_of(i), 0, true).unwrap(), Some(main_block(i)));
    }
    assert!(s.check(false).unwrap().is_ok());
}

#[test]
fn read_only_open_while_merges_swap_always_succeeds() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    let writer = BlockStore::open(&dir, opts(false)).unwrap();
    writer.store(&main_block(0).as_ref()).unwrap();
    let stored = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (dir, stored, stop) = (dir.clone(), stored.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut opens = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let n = stored.load(Ordering::SeqCst);
                    let s = BlockStore::open(&dir, opts(true))
                        .unwrap_or_else(|e| panic!("read-only open failed: {e}"));
                    for i in 0..n {
                        assert_eq!(
                            s.read(&hash_of(i), 0, false).unwrap().map(|b| b.level),
                            Some(i as i32),
                            "block {i} of {n}"
                        );
                    }
                    opens += 1;
                }
                opens
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 1u64;
    while i < 2000 && Instant::now() < deadline {
        writer.store(&main_block(i).as_ref()).unwrap();
        stored.store(i + 1, Ordering::SeqCst);
        if i % 20 == 19 {
            writer.merge(&hash_of(i), &[i as i32 - 10]).unwrap();
            writer.await_merge().unwrap();
        }
        i += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn workers_above_the_maximum_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for workers in [u32::MAX, MAX_WORKERS + 1] {
        let o = BlockStoreOptions {
            workers,
            ..opts(false)
        };
        match BlockStore::open(d.path(), o) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("workers"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    let o = BlockStoreOptions {
        workers: MAX_WORKERS,
        ..opts(false)
    };
    BlockStore::open(d.path(), o).unwrap();
}

#[test]
fn orphans_no_manifest_accounts_for_are_left_alone() {
    let d = tempfile::tempdir().unwrap();
    build_template(d.path());
    // A store-like directory with an id the manifest never handed out.
    let planted = d.path().join("floating/999");
    damage::copy_tree(&d.path().join("floating/2"), &planted).unwrap();
    drop(BlockStore::open(d.path(), opts(false)).unwrap());
    assert!(
        planted.exists(),
        "the open deleted a directory it cannot account for"
    );
    let found = BlockStore::check_dir(d.path(), &opts(false), false).unwrap();
    assert!(
        found.problems.iter().any(|p| p.contains("999")),
        "{found:?}"
    );
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok(), "{fixed:?}");
    assert!(!planted.exists());
    assert!(
        fixed.quarantined.iter().any(|q| q.contains("999")),
        "{fixed:?}"
    );
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    read_all_exact(&s, &template_blocks());
}

/// Found by the fuzz (seed 67): the read-write open recreated a deleted
/// blocks file empty, and the floating recovery then dropped every index
/// entry pointing into it: 108 blocks lost, OK, and `check` passed.
#[test]
fn deleted_floating_blocks_file_is_corrupted_not_recreated() {
    let d = tempfile::tempdir().unwrap();
    build_template(d.path());
    let file = d.path().join("floating/1/RW_floating_block_store");
    std::fs::remove_file(&file).unwrap();
    let before = tree(d.path());
    for read_only in [false, true] {
        match BlockStore::open(d.path(), opts(read_only)) {
            Err(Error::Corrupted(m)) => assert!(m.contains("RW_floating_block_store"), "{m}"),
            other => panic!("read_only {read_only}: {other:?}"),
        }
    }
    assert_eq!(tree(d.path()), before);
    let found = BlockStore::check_dir(d.path(), &opts(false), false).unwrap();
    assert!(!found.is_ok());
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok(), "{fixed:?}");
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    // The blocks of the deleted file are gone; every other one reads back.
    let layout = floating_layout(d.path());
    for b in template_blocks() {
        let got = s.read(&b.hash, 0, true).unwrap();
        if got.is_some() || layout.contains_key(&b.hash) {
            assert_eq!(got, Some(b));
        }
    }
    assert!(s.check(false).unwrap().is_ok());
}

#[test]
fn missing_listed_floating_store_is_corrupted_and_repair_names_an_empty_one() {
    let d = tempfile::tempdir().unwrap();
    build_template(d.path());
    let layout = floating_layout(d.path());
    std::fs::remove_dir_all(d.path().join("floating/2")).unwrap();
    match BlockStore::open(d.path(), opts(false)) {
        Err(Error::Corrupted(m)) => assert!(m.contains("floating/2"), "{m}"),
        other => panic!("{other:?}"),
    }
    let fixed = BlockStore::check_dir(d.path(), &opts(false), true).unwrap();
    assert!(fixed.is_ok() && !fixed.repaired.is_empty(), "{fixed:?}");
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    for b in template_blocks() {
        // The cemented top (149) is floating too, and stays cemented.
        let lost = b.level > 149
            && layout
                .get(&b.hash)
                .is_some_and(|(f, _)| f.starts_with("floating/2"));
        let got = s.read(&b.hash, 0, true).unwrap();
        assert_eq!(got, (!lost).then_some(b));
    }
    assert!(
        BlockStore::check_dir(d.path(), &opts(false), false)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn check_dir_refuses_a_directory_without_a_block_store() {
    let d = tempfile::tempdir().unwrap();
    for repair in [false, true] {
        match BlockStore::check_dir(d.path(), &opts(false), repair) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{other:?}"),
        }
        match BlockStore::check_dir(d.path().join("missing"), &opts(false), repair) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(tree(d.path()).is_empty(), "check created files");
}

/// Where each floating block of the template lies: the store file (relative
/// to the store) and the byte range of its entry. Filled by the fuzz's
/// template build, in the child process that runs the cases.
static LAYOUT: std::sync::OnceLock<std::collections::HashMap<Hash, (PathBuf, Range<u64>)>> =
    std::sync::OnceLock::new();

/// Every entry of every floating file under `dir`.
fn floating_layout(dir: &Path) -> std::collections::HashMap<Hash, (PathBuf, Range<u64>)> {
    let mut out = std::collections::HashMap::new();
    for e in std::fs::read_dir(dir.join("floating")).unwrap().flatten() {
        let rel = PathBuf::from("floating")
            .join(e.file_name())
            .join("RW_floating_block_store");
        let bytes = std::fs::read(dir.join(&rel)).unwrap();
        let mut at = 0usize;
        while at + 36 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if size == 0 {
                break;
            }
            let rec = 4 + size;
            let n = bytes[at + rec] as usize;
            let len = rec + 1 + n * 32 + 4;
            let hash: Hash = bytes[at + 4..at + 36].try_into().unwrap();
            out.insert(hash, (rel.clone(), at as u64..(at + len) as u64));
            at += len;
        }
    }
    out
}

/// True if the damage of `case` may have hit anything `b` depends on:
/// before repair its store's files (entry, index) and the manifest; after
/// repair (`repaired`) only its entry's bytes, since repair rebuilds
/// indexes and the manifest from the entries. Cemented blocks depend on
/// every file of the cemented store.
fn may_be_lost(case: &damage::Case, b: &Block, repaired: bool) -> bool {
    let dir = &case.dir;
    let layout = LAYOUT.get().expect("layout");
    let touched_under = |prefix: &Path| {
        case.damage
            .iter()
            .flat_map(|d| d.files())
            .any(|f| f.starts_with(dir.join(prefix)))
    };
    match layout.get(&b.hash) {
        Some((file, range)) => {
            if case.touches(&dir.join(file), range.clone()) {
                return true;
            }
            if repaired {
                return false;
            }
            let store = file.parent().unwrap();
            case.damage.iter().flat_map(|d| d.files()).any(|f| {
                (f.starts_with(dir.join(store)) && f != dir.join(file)) || f == dir.join("manifest")
            })
        }
        None => {
            touched_under(Path::new("cemented"))
                || (!repaired && touched_under(Path::new("manifest")))
        }
    }
}

/// Reads every block of the template from `s`: each read is exact or an
/// error, and a block the damage could not have hit reads back exactly.
/// Returns the blocks that did not read back.
fn check_reads<'a>(
    s: &BlockStore,
    case: &damage::Case,
    blocks: &'a [Block],
    repaired: bool,
) -> Vec<&'a Block> {
    let what = case.describe();
    let mut missing = Vec::new();
    for b in blocks {
        match s.read(&b.hash, 0, true) {
            Ok(Some(got)) => {
                assert_eq!(&got, b, "{what}: another value for level {}", b.level);
                continue;
            }
            Ok(None) => assert!(
                may_be_lost(case, b, repaired),
                "{what}: untouched block at level {} (repaired: {repaired}) not found",
                b.level
            ),
            Err(Error::Panic(m)) => panic!("{what}: {m}"),
            Err(_) => {}
        }
        missing.push(b);
    }
    missing
}

/// Sizes of every file under `dir`, to show a check changed nothing.
fn sizes(dir: &Path) -> Vec<(PathBuf, u64)> {
    tree(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::symlink_metadata(dir.join(&p)).map_or(0, |m| m.len());
            (p, len)
        })
        .collect()
}

#[test]
fn damaged_block_store_never_returns_another_block() {
    damage::run(
        "damaged_block_store_never_returns_another_block",
        // About 250 ms a case in a debug build (a merge on a copy, three
        // checks, a repair): 30 s.
        120,
        |dir| {
            build_template(dir);
            LAYOUT.set(floating_layout(dir)).unwrap();
        },
        |case| {
            let what = case.describe();
            let blocks = template_blocks();
            for read_only in [false, true] {
                if let Ok(s) = BlockStore::open(&case.dir, opts(read_only)) {
                    check_reads(&s, case, &blocks, false);
                }
            }
            merge_keeps_what_reads(case, &blocks);
            let before = sizes(&case.dir);
            let found = BlockStore::check_dir(&case.dir, &opts(false), false)
                .unwrap_or_else(|e| panic!("{what}: check failed: {e}"));
            assert_eq!(
                sizes(&case.dir),
                before,
                "{what}: check without repair changed files"
            );
            if found.is_ok() {
                // A clean check promises a sound store.
                let s = BlockStore::open(&case.dir, opts(false))
                    .unwrap_or_else(|e| panic!("{what}: check passed but open fails: {e}"));
                let missing = check_reads(&s, case, &blocks, false);
                let levels: Vec<i32> = missing.iter().map(|b| b.level).collect();
                assert!(
                    missing.is_empty(),
                    "{what}: check passed but levels {levels:?} are missing"
                );
            }
            let fixed = BlockStore::check_dir(&case.dir, &opts(false), true)
                .unwrap_or_else(|e| panic!("{what}: repair failed: {e}"));
            if fixed
                .problems
                .iter()
                .any(|p| p.starts_with("cemented store"))
            {
                // Damage of the cemented store is reported, not repaired
                // here: the cemented store's own check salvages it.
                assert!(may_be_lost_any_cemented(case), "{what}: {fixed:?}");
                return;
            }
            assert!(
                fixed.is_ok(),
                "{what}: problems remain after repair: {fixed:?}"
            );
            let after = BlockStore::check_dir(&case.dir, &opts(false), false).unwrap();
            assert!(after.is_ok(), "{what}: check fails after repair: {after:?}");
            let s = BlockStore::open(&case.dir, opts(false))
                .unwrap_or_else(|e| panic!("{what}: open fails after repair: {e} ({fixed:?})"));
            check_reads(&s, case, &blocks, true);
            if s.read(&hash_of(299), 0, false).unwrap().is_some() {
                s.store(&main_block(300).as_ref()).unwrap();
                drop(s);
                let s = BlockStore::open(&case.dir, opts(true)).unwrap();
                assert_eq!(
                    s.read(&hash_of(300), 0, true).unwrap(),
                    Some(main_block(300))
                );
            }
        },
    );
}

/// True if the damage of `case` touched the cemented store.
fn may_be_lost_any_cemented(case: &damage::Case) -> bool {
    case.damage
        .iter()
        .flat_map(|d| d.files())
        .any(|f| f.starts_with(case.dir.join("cemented")))
}

mod manifest_decoder {
    use proptest::prelude::*;
    use tzstore::block::store::manifest::Manifest;
    use tzstore::io::frame;

    /// Loads `bytes` as a block store manifest.
    fn load(bytes: &[u8]) -> tzstore::Result<Option<Manifest>> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("manifest"), bytes).unwrap();
        Manifest::load(tzstore::io::default_fs(true).as_ref(), d.path())
    }

    /// A frame with a valid checksum around `payload`, so the decoder's
    /// field parsing is reached.
    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = b"TZSBSM01".to_vec();
        out.extend_from_slice(payload);
        out.extend_from_slice(&frame::crc(&[payload]).to_be_bytes());
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            match load(&bytes) {
                Ok(_) | Err(tzstore::Error::Corrupted(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }

        #[test]
        fn checksummed_payloads_are_decoded_or_corrupted(
            payload in proptest::collection::vec(any::<u8>(), 0..128),
            huge in any::<u32>(),
        ) {
            // Also a store count claiming far more stores than bytes.
            let mut claimed = payload.clone();
            if claimed.len() >= 20 {
                claimed[16..20].copy_from_slice(&huge.to_be_bytes());
            }
            for p in [payload, claimed] {
                match load(&framed(&p)) {
                    Ok(Some(m)) => prop_assert!(m.ros.len() * 8 <= p.len()),
                    Ok(None) => prop_assert!(false, "a manifest file reads as absent"),
                    Err(tzstore::Error::Corrupted(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
}

/// On a copy of the damaged store: a merge either fails (with an error
/// status, leaving every block that read back before readable) or
/// completes, and then every block that read back before and that the merge
/// keeps still reads back (rule 6: a merge never completes over damage).
fn merge_keeps_what_reads(case: &damage::Case, blocks: &[Block]) {
    let what = case.describe();
    let dir = case.dir.with_extension("merge");
    damage::copy_tree(&case.dir, &dir).unwrap();
    let Ok(s) = BlockStore::open(&dir, opts(false)) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    // The side branch forking at 160 no longer connects once 199 is
    // cemented.
    let kept: Vec<&Block> = blocks
        .iter()
        .filter(|b| !(1100..1108).contains(&u64::from_be_bytes(b.hash[..8].try_into().unwrap())))
        .filter(|b| matches!(s.read(&b.hash, 0, true), Ok(Some(got)) if got == **b))
        .collect();
    let merged = s
        .merge(&hash_of(299), &[199])
        .and_then(|()| s.await_merge());
    if let Err(Error::Panic(m)) = &merged {
        panic!("{what}: merge panicked: {m}");
    }
    for b in kept {
        match s.read(&b.hash, 0, true) {
            Ok(Some(got)) => assert_eq!(&got, b, "{what}: level {} after merge", b.level),
            Ok(None) => panic!(
                "{what}: merge ({merged:?}) lost level {} that read back before it",
                b.level
            ),
            Err(e) if merged.is_ok() => panic!(
                "{what}: merge completed but level {} that read back before fails: {e}",
                b.level
            ),
            Err(_) => {}
        }
    }
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An append killed midway, over the zeros written ahead of the appends,
/// leaves a last entry whose lengths are whole and whose bytes are not:
/// for `check_dir` on the closed store that is a crash leftover, as it is
/// for the read-write open, which cuts it. The same entry followed by an
/// intact one is damage, and so is an invalid last entry that the index
/// names.
#[test]
fn an_invalid_last_entry_is_a_torn_tail_unless_followed_or_indexed() {
    use std::os::unix::fs::FileExt;
    let d = tempfile::tempdir().unwrap();
    let blocks = build_unmerged(d.path());
    let file = d.path().join("floating/0/RW_floating_block_store");
    let last = blocks.last().unwrap().hash;
    let (at, len) = entry_offset(&file, &last);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut entry = vec![0u8; len as usize];
    f.read_exact_at(&mut entry, at).unwrap();
    let end = f.metadata().unwrap().len();
    assert_eq!(at + len, end, "the last block is not the file's last entry");
    // A copy of the last entry, its contents half written: what a killed
    // append of the same block again would leave.
    let mut torn = entry.clone();
    let half = torn.len() / 2;
    torn[half..].fill(0);
    f.write_all_at(&torn, end).unwrap();
    let floating_problems = |d: &Path| -> Vec<String> {
        let found = BlockStore::check_dir(d, &opts(false), false).unwrap();
        found
            .problems
            .into_iter()
            .filter(|p| !p.starts_with("cemented store"))
            .collect()
    };
    assert_eq!(floating_problems(d.path()), Vec::<String>::new());

    // Followed by an intact entry: damage, not a tail.
    f.write_all_at(&entry, end + len).unwrap();
    let problems = floating_problems(d.path());
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&format!("offset {end}"))),
        "{problems:?}"
    );
    f.set_len(end + len).unwrap();

    // The read-write open cuts the tail and keeps every block.
    let s = BlockStore::open(d.path(), opts(false)).unwrap();
    read_all_exact(&s, &blocks);
    assert!(s.check(false).unwrap().is_ok());
    drop(s);
    assert_eq!(
        f.metadata().unwrap().len(),
        end,
        "the torn tail was not cut"
    );

    // The indexed last entry itself half written: damage.
    f.write_all_at(&torn, at).unwrap();
    let problems = floating_problems(d.path());
    assert!(
        !problems.is_empty(),
        "an indexed torn entry passed the check"
    );
}
