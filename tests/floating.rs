//! Floating block store: random block trees (forks included) appended in
//! random topological order with reopens, predecessor lists against a naive
//! walk, crash recovery under SIGKILL, damaged records, bad input, and
//! concurrent readers during appends.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::predecessors;
use tzstore::block::{Block, Hash};
use tzstore::{Error, OpenOptions};

fn hash_of(n: u64, salt: u8) -> Hash {
    let mut h = [salt; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

/// A tree of blocks: node i > 0 has parent `parents[i] < i`.
#[derive(Debug, Clone)]
struct Tree {
    blocks: Vec<Block>,
    parent: Vec<usize>,
}

fn make_tree(parents: &[usize], sizes: &[(usize, Option<usize>)]) -> Tree {
    let mut blocks: Vec<Block> = Vec::new();
    let mut parent = vec![0usize];
    let genesis = hash_of(0, 0xAA);
    blocks.push(Block {
        hash: genesis,
        level: 0,
        predecessor: genesis,
        contents: vec![0; sizes[0].0],
        metadata: sizes[0].1.map(|m| vec![0xEE; m]),
    });
    for i in 1..parents.len() + 1 {
        let p = parents[i - 1] % i;
        let (c, m) = sizes[i % sizes.len()];
        blocks.push(Block {
            hash: hash_of(i as u64, 0xAA),
            level: blocks[p].level + 1,
            predecessor: blocks[p].hash,
            contents: (0..c).map(|x| (x as u8) ^ (i as u8)).collect(),
            metadata: m.map(|m| (0..m).map(|x| (x as u8).wrapping_mul(i as u8)).collect()),
        });
        parent.push(p);
    }
    Tree { blocks, parent }
}

/// The naive ancestor of node `i` at distance `d`.
fn naive_ancestor(t: &Tree, mut i: usize, d: u64) -> Option<Hash> {
    for _ in 0..d {
        if i == 0 {
            return None;
        }
        i = t.parent[i];
    }
    Some(t.blocks[i].hash)
}

fn preds_for(store: &Floating, b: &Block) -> Vec<Hash> {
    if b.level == 0 {
        return Vec::new(); // genesis has no ancestors
    }
    predecessors::compute(&b.predecessor, |h, i| {
        Ok(store.find_predecessors(h)?.and_then(|l| l.get(i).copied()))
    })
    .unwrap()
}

fn opts() -> OpenOptions {
    OpenOptions::read_write().no_fsync()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn random_trees_read_back_and_predecessors_match(
        parents in prop::collection::vec(0usize..1000, 1..80),
        sizes in prop::collection::vec((0usize..300, prop::option::of(0usize..200)), 1..8),
        order_seed in any::<u64>(),
        reopen_every in 3usize..40,
    ) {
        let tree = make_tree(&parents, &sizes);
        let dir = tempfile::tempdir().unwrap();
        let mut store = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
        // Random topological order: pick any node whose parent is stored.
        let mut rng = common::Rng::new(order_seed);
        let mut stored = vec![false; tree.blocks.len()];
        let mut ready = vec![0usize];
        let mut count = 0;
        while !ready.is_empty() {
            let i = ready.swap_remove(rng.below(ready.len() as u64) as usize);
            let preds = preds_for(&store, &tree.blocks[i]);
            store.append(&tree.blocks[i].as_ref(), &preds, rng.below(2) == 0).unwrap();
            stored[i] = true;
            for (j, &p) in tree.parent.iter().enumerate().skip(1) {
                if p == i && !stored[j] { ready.push(j); }
            }
            count += 1;
            if count % reopen_every == 0 {
                drop(store);
                store = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
            }
        }
        prop_assert_eq!(store.len(), tree.blocks.len() as u64);
        for (i, b) in tree.blocks.iter().enumerate() {
            let (got, preds) = store.read_block_and_predecessors(&b.hash).unwrap().unwrap();
            prop_assert_eq!(&got, b);
            for (k, p) in preds.iter().enumerate() {
                prop_assert_eq!(Some(*p), naive_ancestor(&tree, i, 1 << k));
            }
            // The list is as long as the history allows (up to 12).
            let depth = tree.blocks[i].level as u64;
            let want_len = (0..12).take_while(|k| (1u64 << k) <= depth).count();
            prop_assert_eq!(preds.len(), want_len);
            for d in 0..=depth + 1 {
                let got = predecessors::ancestor(&b.hash, d, |h| store.find_predecessors(h)).unwrap();
                prop_assert_eq!(got, naive_ancestor(&tree, i, d), "node {} distance {}", i, d);
            }
        }
        // Iteration in file order yields every block once, parents first.
        let mut seen = HashMap::new();
        for e in store.iter(true) {
            let e = e.unwrap();
            if e.block.level > 0 {
                prop_assert!(seen.contains_key(&e.block.predecessor));
            }
            seen.insert(e.block.hash, e.preds.clone());
        }
        prop_assert_eq!(seen.len(), tree.blocks.len());
    }
}

#[test]
fn five_kinds_coexist_and_read_only_sees_appends_after_sync() {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(&[0, 1, 2], &[(10, Some(5))]);
    let stores: Vec<Floating> = FloatingKind::ALL
        .iter()
        .map(|k| Floating::open(dir.path(), *k, &opts()).unwrap())
        .collect();
    for (n, s) in stores.iter().enumerate() {
        s.append(&tree.blocks[n % 4].as_ref(), &[], true).unwrap();
        assert_eq!(s.len(), 1);
    }
    let rw = &stores[1];
    let ro = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_only()).unwrap();
    assert!(matches!(
        ro.append(&tree.blocks[0].as_ref(), &[], true),
        Err(Error::ReadOnly(_))
    ));
    rw.append(&tree.blocks[2].as_ref(), &[tree.blocks[1].hash], true)
        .unwrap();
    assert!(!ro.mem(&tree.blocks[2].hash).unwrap());
    ro.sync().unwrap();
    assert!(ro.mem(&tree.blocks[2].hash).unwrap());
    assert_eq!(
        ro.read_block(&tree.blocks[2].hash).unwrap().unwrap(),
        tree.blocks[2]
    );
    assert!(matches!(
        Floating::open(dir.path(), FloatingKind::Rw, &opts()),
        Err(Error::Locked(_))
    ));
}

#[test]
fn bad_input_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
    let b = make_tree(&[0], &[(4, None)]).blocks[1].clone();
    let too_many = vec![[1u8; 32]; 13];
    assert!(matches!(
        s.append(&b.as_ref(), &too_many, true),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(s.len(), 0);
    assert_eq!(s.read_block(&b.hash).unwrap(), None);
    assert_eq!(s.find_predecessors(&b.hash).unwrap(), None);
    assert!(matches!(
        Floating::open(
            dir.path().join("missing"),
            FloatingKind::Ro,
            &OpenOptions::read_only()
        ),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn damaged_record_in_the_middle_is_corrupted_and_others_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(&[0, 1, 2, 3, 4], &[(100, Some(50))]);
    {
        let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
        for b in &tree.blocks {
            s.append(&b.as_ref(), &[], true).unwrap();
        }
    }
    // Flip a byte inside the contents of the third block.
    let path = dir.path().join(FloatingKind::Rw.file_name());
    let mut data = std::fs::read(&path).unwrap();
    let entry_len = data.len() / tree.blocks.len();
    data[2 * entry_len + 100] ^= 0xFF;
    std::fs::write(&path, &data).unwrap();
    let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
    assert!(matches!(
        s.read_block(&tree.blocks[2].hash),
        Err(Error::Corrupted(_))
    ));
    for i in [0, 1, 3, 4, 5] {
        assert_eq!(
            s.read_block(&tree.blocks[i].hash).unwrap().unwrap(),
            tree.blocks[i]
        );
    }
    assert_eq!(
        s.len(),
        6,
        "a damaged middle record never truncates the file"
    );
}

#[test]
fn torn_tail_is_cut_and_unindexed_blocks_are_reindexed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(&[0, 1, 2, 3], &[(64, None)]);
    let path = dir.path().join(FloatingKind::Rw.file_name());
    {
        let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
        for b in &tree.blocks[..3] {
            s.append(&b.as_ref(), &[], true).unwrap();
        }
    }
    let three = std::fs::read(&path).unwrap();
    {
        let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
        s.append(&tree.blocks[3].as_ref(), &[tree.blocks[2].hash], true)
            .unwrap();
    }
    let four = std::fs::read(&path).unwrap();
    // Lose the index (as if its files never reached the disk) but keep all
    // four entries plus a torn fifth one.
    std::fs::remove_dir_all(dir.path().join(FloatingKind::Rw.index_name())).unwrap();
    let mut torn = four.clone();
    torn.extend_from_slice(&four[three.len()..three.len() + 20]);
    std::fs::write(&path, &torn).unwrap();
    let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), four.len() as u64);
    for b in &tree.blocks[..4] {
        assert_eq!(&s.read_block(&b.hash).unwrap().unwrap(), b);
    }
    assert_eq!(
        s.find_predecessors(&tree.blocks[3].hash).unwrap().unwrap(),
        vec![tree.blocks[2].hash]
    );
    // An index entry pointing past the end of the file names an append
    // that returned: its loss is damage, reported, not hidden.
    drop(s);
    std::fs::write(&path, &three).unwrap();
    match Floating::open(dir.path(), FloatingKind::Rw, &opts()) {
        Err(Error::Corrupted(m)) => assert!(m.contains(&format!("offset {}", three.len())), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), three, "nothing changed");
    // Repair rebuilds the index from what the file holds.
    let report = Floating::check(dir.path(), &opts(), true).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let s = Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.read_block(&tree.blocks[3].hash).unwrap(), None);
}

#[test]
fn readers_run_while_a_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(
        &(0..400).collect::<Vec<_>>(),
        &[(200, Some(100)), (10, None)],
    );
    let store = Arc::new(Floating::open(dir.path(), FloatingKind::Rw, &opts()).unwrap());
    store.append(&tree.blocks[0].as_ref(), &[], false).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (store, stop, tree) = (store.clone(), stop.clone(), tree.clone());
            std::thread::spawn(move || {
                let mut rng = common::Rng::new(r + 1);
                let mut hits = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.below(tree.blocks.len() as u64) as usize;
                    if let Some(b) = store.read_block(&tree.blocks[i].hash).unwrap() {
                        assert_eq!(b, tree.blocks[i]);
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    for b in &tree.blocks[1..] {
        let preds = preds_for(&store, b);
        store.append(&b.as_ref(), &preds, false).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

const CRASH_CHILD: &str = "crash_child_appender";

fn chain_block(i: u64) -> Block {
    let prev = if i == 0 {
        hash_of(0, 0xCC)
    } else {
        hash_of(i - 1, 0xCC)
    };
    Block {
        hash: hash_of(i, 0xCC),
        level: i as i32,
        predecessor: prev,
        contents: vec![(i % 251) as u8; 40 + (i % 300) as usize],
        metadata: (i % 3 != 0).then(|| vec![(i % 7) as u8; 1000 + (i % 500) as usize]),
    }
}

/// Child role: appends the chain from where the store ends, flushing every
/// third block and recording the last flushed block in a side file.
#[test]
fn crash_child_appender() {
    if !common::is_child(CRASH_CHILD) {
        return;
    }
    let dir = std::env::var("TZS_FLOATING_DIR").unwrap();
    let acked = std::path::PathBuf::from(&dir).join("acked");
    let s = Floating::open(&dir, FloatingKind::Rw, &OpenOptions::read_write()).unwrap();
    let mut i = s.len();
    loop {
        let b = chain_block(i);
        let preds = preds_for(&s, &b);
        let flush = i % 3 == 0;
        s.append(&b.as_ref(), &preds, flush).unwrap();
        if flush {
            std::fs::write(&acked, (i + 1).to_string()).unwrap();
        }
        i += 1;
    }
}

#[test]
fn sigkill_during_appends_loses_no_flushed_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::Rng::new(77);
    let mut total = 0;
    for round in 0..50 {
        let mut child = common::spawn_child(
            CRASH_CHILD,
            &[("TZS_FLOATING_DIR", dir.path().display().to_string())],
        );
        std::thread::sleep(Duration::from_millis(15 + rng.below(40)));
        common::kill9(&mut child);
        let acked: u64 = std::fs::read_to_string(dir.path().join("acked"))
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let s = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_write()).unwrap();
        assert!(
            s.len() >= acked,
            "round {round}: {} blocks but {acked} acknowledged",
            s.len()
        );
        // The file holds exactly the indexed blocks, in chain order.
        let mut n = 0u64;
        for e in s.iter(true) {
            let e = e.unwrap();
            assert_eq!(e.block, chain_block(n), "round {round}");
            assert!(s.mem(&e.block.hash).unwrap());
            n += 1;
        }
        assert_eq!(
            n,
            s.len(),
            "round {round}: every indexed block is in the file"
        );
        for i in 0..n {
            assert_eq!(
                s.read_block(&hash_of(i, 0xCC)).unwrap().unwrap(),
                chain_block(i)
            );
        }
        total = n;
    }
    assert!(total > 100, "the children appended only {total} blocks");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Durable appends get zeros written ahead of them (so their fsync need
/// not commit a new file size); the zeros are invisible to read-only views
/// and to recovery after a crash, and a clean close trims them.
#[test]
fn zeros_ahead_of_durable_appends_are_invisible_and_trimmed_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let rw = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_write()).unwrap();
    let file = dir.path().join(FloatingKind::Rw.file_name());
    let file_len = || std::fs::metadata(&file).unwrap().len();
    let append = |s: &Floating, range: std::ops::Range<u64>| {
        for i in range {
            let b = chain_block(i);
            s.append(&b.as_ref(), &preds_for(s, &b), true).unwrap();
        }
    };
    append(&rw, 0..20);
    // The fill runs on the worker pool.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while file_len() <= rw.size_bytes() {
        assert!(
            std::time::Instant::now() < deadline,
            "no zeros were written ahead"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let count = |s: &Floating| s.iter(true).filter(|e| e.as_ref().is_ok()).count() as u64;
    let ro = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_only()).unwrap();
    assert_eq!((ro.len(), count(&ro)), (20, 20));
    append(&rw, 20..40);
    ro.sync().unwrap();
    assert_eq!((ro.len(), count(&ro)), (40, 40));
    for i in 0..40 {
        assert_eq!(
            ro.read_block(&hash_of(i, 0xCC)).unwrap(),
            Some(chain_block(i))
        );
    }
    // A crash now: the copy holds the zeros; the open cuts them.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    assert!(
        std::fs::metadata(crashed.path().join(FloatingKind::Rw.file_name()))
            .unwrap()
            .len()
            > rw.size_bytes()
    );
    let rec = Floating::open(crashed.path(), FloatingKind::Rw, &OpenOptions::read_write()).unwrap();
    assert_eq!((rec.len(), count(&rec)), (40, 40));
    assert_eq!(
        std::fs::metadata(crashed.path().join(FloatingKind::Rw.file_name()))
            .unwrap()
            .len(),
        rec.size_bytes()
    );
    drop(ro);
    let end = rw.size_bytes();
    drop(rw);
    assert_eq!(file_len(), end);
}

/// An encoded entry of `b` with `preds`, for the decoder proptests.
fn encoded_entry(b: &Block, preds: &[Hash]) -> Vec<u8> {
    let mut out = Vec::new();
    tzstore::block::entry::encode_into(
        &mut out,
        &b.as_ref(),
        &tzstore::block::record::NO_CONTEXT,
        preds,
    )
    .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// The record and entry decoders take any bytes: an error or a value
    /// that lies within the input, never a panic or an allocation beyond it.
    #[test]
    fn decoders_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        use tzstore::block::{entry, record};
        if let Ok(b) = record::decode(&bytes, true) {
            prop_assert!(b.contents.len() <= bytes.len());
        }
        let _ = record::scan(&bytes);
        if let Ok(e) = entry::parse(&bytes, true) {
            prop_assert!(e.len <= bytes.len());
        }
        let hash = [7u8; 32];
        if let Ok(v) = tzstore::block::floating::decode_value(&hash, &bytes) {
            prop_assert!(v.preds.len() <= 12);
        }
    }

    /// Damaged entries (random bytes written over a valid one, or any
    /// prefix of it) decode to the original or to an error.
    #[test]
    fn damaged_entries_decode_to_the_original_or_an_error(
        at in 0usize..400,
        junk in prop::collection::vec(any::<u8>(), 1..8),
        cut in 0usize..400,
    ) {
        use tzstore::block::entry;
        let tree = make_tree(&[0, 1], &[(120, Some(60))]);
        let b = &tree.blocks[2];
        let preds = [tree.blocks[1].hash, tree.blocks[0].hash];
        let good = encoded_entry(b, &preds);
        let mut bad = good.clone();
        let at = at % bad.len();
        for (i, j) in junk.iter().enumerate() {
            if let Some(x) = bad.get_mut(at + i) { *x = *j; }
        }
        match entry::parse(&bad, true) {
            Ok(e) => prop_assert_eq!((&e.block, &e.preds[..]), (b, &preds[..])),
            Err(_) => prop_assert_ne!(&bad, &good),
        }
        prop_assert!(entry::parse(&good[..cut.min(good.len() - 1)], true).is_err());
    }

    /// The scan for intact entries and the probe read any file contents:
    /// they find an entry only where a valid one starts, and only within
    /// the bounds they are given.
    #[test]
    fn intact_entry_scan_takes_any_file(
        noise in prop::collection::vec(any::<u8>(), 0..300),
        zeros in 0usize..200,
        place in any::<bool>(),
    ) {
        use tzstore::block::entry::{self, Probe};
        use tzstore::io::{FileSystem, OpenMode, StdFs};
        let tree = make_tree(&[0], &[(50, None)]);
        let rec = encoded_entry(&tree.blocks[1], &[tree.blocks[0].hash]);
        let mut bytes = noise.clone();
        bytes.extend(std::iter::repeat_n(0u8, zeros));
        let start = bytes.len() as u64;
        if place {
            bytes.extend_from_slice(&rec);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        let fs = StdFs::new(false);
        let file = fs.open(&path, OpenMode::Read).unwrap();
        let len = bytes.len() as u64;
        let found = entry::next_intact(file.as_ref(), 0, len).unwrap();
        if let Some(at) = found {
            prop_assert!(matches!(entry::probe(file.as_ref(), at, len).unwrap(), Probe::Valid(_)));
            prop_assert!(at <= start || !place);
        } else {
            prop_assert!(!place, "the intact entry at {} was not found", start);
        }
        for at in [0u64, 1, start] {
            let _ = entry::probe(file.as_ref(), at, len).unwrap();
            let _ = entry::read_at(file.as_ref(), at, len, true);
        }
    }
}
