//! Block store: random store / merge / read / reopen sequences against an
//! in-memory model in all three history modes, readers during merges, and
//! crash repair under SIGKILL.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::block::{Block, Hash};
use tzstore::{Error, OpenOptions};

fn hash_of(n: u64) -> Hash {
    let mut h = [0x5A; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

fn make_block(id: u64, level: i32, pred: Hash) -> Block {
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents: format!("block {id} at {level}").into_bytes(),
        metadata: (id % 4 != 1).then(|| vec![(id % 251) as u8; 64 + (id % 100) as usize]),
    }
}

fn options(mode: HistoryMode, offset: u32) -> BlockStoreOptions {
    BlockStoreOptions {
        open: OpenOptions::read_write().no_fsync(),
        history_mode: mode,
        history_offset: offset,
        index_log_size: 64,
        ..BlockStoreOptions::default()
    }
}

/// The model: every block ever stored, its parent, and which are alive.
struct Model {
    blocks: HashMap<Hash, Block>,
    alive: HashMap<Hash, bool>,
    main: Vec<Hash>, // main chain by level
    chunks: Vec<(i32, i32)>,
    mode: HistoryMode,
    offset: u32,
    next_id: u64,
}

impl Model {
    fn parent(&self, h: &Hash) -> Option<Hash> {
        let b = &self.blocks[h];
        (b.level > 0).then_some(b.predecessor)
    }

    fn ancestor(&self, h: &Hash, d: u32) -> Option<Hash> {
        let mut cur = *h;
        for _ in 0..d {
            cur = self.parent(&cur)?;
        }
        self.alive[&cur].then_some(cur)
    }

    fn cemented_top(&self) -> i32 {
        self.chunks.last().map_or(-1, |c| c.1)
    }

    /// Applies a merge up to `top_level` with the given chunk ends.
    fn merge(&mut self, ends: &[i32]) {
        let Some(&top_level) = ends.last() else {
            return;
        };
        let mut start = self.cemented_top() + 1;
        for &e in ends {
            self.chunks.push((start, e));
            start = e + 1;
        }
        let top = self.main[top_level as usize];
        let hashes: Vec<Hash> = self.blocks.keys().copied().collect();
        for h in hashes {
            let b = &self.blocks[&h];
            let keep = if b.level <= top_level {
                self.main[b.level as usize] == h
            } else {
                // Alive above the top iff it descends from the top.
                let mut cur = h;
                while self.blocks[&cur].level > top_level {
                    cur = self.blocks[&cur].predecessor;
                }
                cur == top
            };
            if !keep {
                self.alive.insert(h, false);
            }
        }
        if self.mode == HistoryMode::Rolling {
            let n = self.chunks.len();
            let keep_from = n.saturating_sub(self.offset as usize);
            let low = self.chunks[keep_from].0;
            for h in &self.main[..low as usize] {
                self.alive.insert(*h, false);
            }
        }
    }

    /// The metadata a read with metadata must return for `h`.
    fn expected_metadata(&self, h: &Hash) -> Option<Vec<u8>> {
        let b = &self.blocks[h];
        let cemented = b.level <= self.cemented_top() && self.main[b.level as usize] == *h;
        if !cemented || self.mode == HistoryMode::Archive {
            // Floating blocks (including a late fork off a cemented block)
            // keep the metadata they were stored with.
            return b.metadata.clone();
        }
        let n = self.chunks.len();
        let idx = self
            .chunks
            .iter()
            .position(|c| c.0 <= b.level && b.level <= c.1)?;
        if self.offset > 0 && idx + self.offset as usize >= n {
            b.metadata.clone()
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Extend(u8),
    Fork { back: u8, len: u8 },
    Merge { keep: u8, chunk: u8 },
    Reopen,
    Read { pick: u16, distance: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..20).prop_map(Op::Extend),
        2 => (0u8..10, 1u8..5).prop_map(|(back, len)| Op::Fork { back, len }),
        2 => (0u8..6, 3u8..12).prop_map(|(keep, chunk)| Op::Merge { keep, chunk }),
        1 => Just(Op::Reopen),
        4 => (any::<u16>(), 0u16..70).prop_map(|(pick, distance)| Op::Read { pick, distance }),
    ]
}

fn check_all(store: &BlockStore, model: &Model) {
    for (h, alive) in &model.alive {
        let got = store.read(h, 0, true).unwrap();
        if *alive {
            let got = got.unwrap_or_else(|| {
                panic!("alive block at level {} missing", model.blocks[h].level)
            });
            let mut want = model.blocks[h].clone();
            want.metadata = model.expected_metadata(h);
            assert_eq!(got, want);
            let mut no_meta = want.clone();
            no_meta.metadata = None;
            assert_eq!(store.read(h, 0, false).unwrap().unwrap(), no_meta);
        } else {
            assert_eq!(
                got, None,
                "dead block at level {} still readable",
                model.blocks[h].level
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn matches_the_model(
        mode in prop_oneof![Just(HistoryMode::Archive), Just(HistoryMode::Full), Just(HistoryMode::Rolling)],
        offset in 1u32..3,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = BlockStore::open(dir.path(), options(mode, offset)).unwrap();
        let genesis = make_block(0, 0, hash_of(0));
        store.store(&genesis.as_ref()).unwrap();
        let mut model = Model {
            blocks: HashMap::from([(genesis.hash, genesis.clone())]),
            alive: HashMap::from([(genesis.hash, true)]),
            main: vec![genesis.hash],
            chunks: Vec::new(),
            mode,
            offset,
            next_id: 1,
        };
        for op in ops {
            match op {
                Op::Extend(n) => {
                    for _ in 0..n {
                        let tip = *model.main.last().unwrap();
                        let b = make_block(model.next_id, model.main.len() as i32, tip);
                        model.next_id += 1;
                        store.store(&b.as_ref()).unwrap();
                        model.main.push(b.hash);
                        model.alive.insert(b.hash, true);
                        model.blocks.insert(b.hash, b);
                    }
                }
                Op::Fork { back, len } => {
                    let lvl = model.main.len().saturating_sub(1 + back as usize);
                    let mut parent = model.main[lvl];
                    if !model.alive[&parent] { continue; }
                    for i in 0..len {
                        let b = make_block(model.next_id, (lvl + 1 + i as usize) as i32, parent);
                        model.next_id += 1;
                        store.store(&b.as_ref()).unwrap();
                        parent = b.hash;
                        model.alive.insert(b.hash, true);
                        model.blocks.insert(b.hash, b);
                    }
                }
                Op::Merge { keep, chunk } => {
                    let head_level = model.main.len() as i32 - 1;
                    let last = head_level - keep as i32;
                    let mut ends = Vec::new();
                    let mut e = model.cemented_top() + chunk as i32;
                    while e <= last {
                        ends.push(e);
                        e += chunk as i32;
                    }
                    if ends.is_empty() { continue; }
                    store.merge(model.main.last().unwrap(), &ends).unwrap();
                    store.await_merge().unwrap();
                    model.merge(&ends);
                }
                Op::Reopen => {
                    drop(store);
                    store = BlockStore::open(dir.path(), options(mode, offset)).unwrap();
                }
                Op::Read { pick, distance } => {
                    let hashes: Vec<&Hash> = model.alive.iter().filter(|(_, a)| **a).map(|(h, _)| h).collect();
                    let mut hashes = hashes;
                    hashes.sort();
                    let h = *hashes[pick as usize % hashes.len()];
                    let got = store.read(&h, distance as u32, false).unwrap().map(|b| b.hash);
                    prop_assert_eq!(got, model.ancestor(&h, distance as u32), "read({}, {})", model.blocks[&h].level, distance);
                }
            }
        }
        check_all(&store, &model);
        let report = store.check(false).unwrap();
        prop_assert!(report.is_ok(), "{:?}", report.problems);
        let stats = store.stats().unwrap();
        prop_assert_eq!(stats.cemented_highest, model.chunks.last().map(|c| c.1));
        for (lvl, h) in model.main.iter().enumerate() {
            let lvl = lvl as i32;
            let got = store.read_by_level(lvl, false).unwrap().map(|b| b.hash);
            let want = (lvl <= model.cemented_top() && model.alive[h]).then_some(*h);
            prop_assert_eq!(got, want, "level {}", lvl);
        }
    }
}

#[test]
fn bad_input_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path(), options(HistoryMode::Archive, 1)).unwrap();
    let g = make_block(0, 0, hash_of(0));
    store.store(&g.as_ref()).unwrap();
    store.store(&g.as_ref()).unwrap(); // already stored: no-op
    let orphan = make_block(9, 5, hash_of(1234));
    assert!(matches!(
        store.store(&orphan.as_ref()),
        Err(Error::Inconsistent(_))
    ));
    let wrong_level = make_block(1, 7, g.hash);
    assert!(matches!(
        store.store(&wrong_level.as_ref()),
        Err(Error::Inconsistent(_))
    ));
    assert!(matches!(
        store.merge(&hash_of(77), &[0]),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.merge(&g.hash, &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.merge(&g.hash, &[3]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(store.read(&g.hash, 1, true).unwrap(), None, "past genesis");
    assert!(matches!(
        BlockStore::open(dir.path(), options(HistoryMode::Archive, 1)),
        Err(Error::Locked(_))
    ));
    let ro = BlockStore::open(
        dir.path(),
        BlockStoreOptions {
            open: OpenOptions::read_only(),
            ..BlockStoreOptions::default()
        },
    )
    .unwrap();
    assert!(ro.mem(&g.hash).unwrap());
    assert!(matches!(
        ro.store(&make_block(1, 1, g.hash).as_ref()),
        Err(Error::ReadOnly(_))
    ));
}

#[test]
fn readers_and_a_writer_run_through_merges() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path(), options(HistoryMode::Archive, 1)).unwrap());
    let chain: Arc<Vec<Block>> = Arc::new(
        (0..1200u64)
            .map(|i| {
                make_block(
                    i,
                    i as i32,
                    if i == 0 { hash_of(0) } else { hash_of(i - 1) },
                )
            })
            .collect(),
    );
    let stored = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (store, chain, stored, stop) =
                (store.clone(), chain.clone(), stored.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = common::Rng::new(r + 11);
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = stored.load(Ordering::SeqCst);
                    if n == 0 {
                        continue;
                    }
                    let i = rng.below(n);
                    let d = rng.below(i + 1);
                    let b = store
                        .read(&chain[i as usize].hash, d as u32, true)
                        .unwrap()
                        .unwrap_or_else(|| panic!("block {i} distance {d} missing"));
                    assert_eq!(b, chain[(i - d) as usize]);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for (i, b) in chain.iter().enumerate() {
        store.store_with(&b.as_ref(), false).unwrap();
        stored.store(i as u64 + 1, Ordering::SeqCst);
        if i % 200 == 199 {
            let top = i as i32 - 50;
            let low = store.stats().unwrap().cemented_highest.unwrap_or(-1);
            let ends: Vec<i32> = ((low + 1)..=top).filter(|l| (l + 1) % 50 == 0).collect();
            if !ends.is_empty() {
                store.merge(&b.hash, &ends).unwrap();
            }
        }
    }
    store.await_merge().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let st = store.stats().unwrap();
    assert!(st.merges_done >= 4, "{st:?}");
    assert!(store.check(false).unwrap().is_ok());
}

const CRASH_CHILD: &str = "crash_child_store_and_merge";

fn chain_block(i: u64) -> Block {
    let mut b = make_block(
        i,
        i as i32,
        if i == 0 { hash_of(0) } else { hash_of(i - 1) },
    );
    b.metadata = Some(vec![(i % 13) as u8; 300]);
    b
}

/// Child role: stores the chain (each block durable) and merges every 25
/// blocks, never awaiting, until killed.
#[test]
fn crash_child_store_and_merge() {
    if !common::is_child(CRASH_CHILD) {
        return;
    }
    let dir = std::env::var("TZS_BS_DIR").unwrap();
    let acked = std::path::PathBuf::from(&dir).join("acked");
    let opts = BlockStoreOptions {
        open: OpenOptions::read_write(),
        history_mode: HistoryMode::Full,
        history_offset: 2,
        index_log_size: 50,
        ..BlockStoreOptions::default()
    };
    let store = BlockStore::open(&dir, opts).unwrap();
    let mut i: u64 = std::fs::read_to_string(&acked)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    loop {
        let b = chain_block(i);
        store.store(&b.as_ref()).unwrap();
        i += 1;
        std::fs::write(&acked, i.to_string()).unwrap();
        if i % 25 == 0 {
            let low = store.stats().unwrap().cemented_highest.unwrap_or(-1);
            let top = i as i32 - 10;
            let ends: Vec<i32> = ((low + 1)..=top).filter(|l| (l + 1) % 16 == 0).collect();
            if !ends.is_empty() {
                store.merge(&b.hash, &ends).unwrap();
            }
        }
    }
}

#[test]
fn sigkill_during_store_and_merge_loses_no_flushed_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = common::Rng::new(99);
    let mut max_seen = 0;
    for round in 0..50 {
        let mut child = common::spawn_child(
            CRASH_CHILD,
            &[("TZS_BS_DIR", dir.path().display().to_string())],
        );
        // Kill after the child made some progress (however loaded the
        // machine), at a random moment of its store and merge loop.
        let read_acked = || -> u64 {
            std::fs::read_to_string(dir.path().join("acked"))
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        let target = max_seen + 1 + rng.below(40);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read_acked() < target && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        common::kill9(&mut child);
        let acked = read_acked();
        let opts = BlockStoreOptions {
            open: OpenOptions::read_write(),
            history_mode: HistoryMode::Full,
            history_offset: 2,
            index_log_size: 50,
            ..BlockStoreOptions::default()
        };
        // What a crash leaves in the manifest and the floating stores is no
        // damage: a check without a handle finds nothing there before the
        // open repairs it. (The cemented store's read-only consistency
        // check cannot tell its own crash leftovers, such as a chunk whose
        // index entries were not written yet, from damage.)
        let crashed = BlockStore::check_dir(dir.path(), &opts, false).unwrap();
        let floating: Vec<&String> = crashed
            .problems
            .iter()
            .filter(|p| !p.starts_with("cemented store"))
            .collect();
        assert!(floating.is_empty(), "round {round}: {floating:?}");
        let store = BlockStore::open(dir.path(), opts)
            .unwrap_or_else(|e| panic!("round {round}: reopen: {e}"));
        let report = store.check(false).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        for i in 0..acked {
            let b = store
                .read(&hash_of(i), 0, false)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged block {i} lost"));
            assert_eq!(b.contents, chain_block(i).contents);
        }
        max_seen = max_seen.max(acked);
    }
    assert!(max_seen > 100, "children stored only {max_seen} blocks");
}

/// The merge hook hears of each merge's end: `Ok` after a merge, at once
/// for a merge with nothing to cement, and the error of a merge that found
/// damage (which `await_merge` returns too).
#[test]
fn merge_hook_reports_each_merge_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path(), options(HistoryMode::Archive, 1)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), Error>>();
    let tx = std::sync::Mutex::new(tx);
    store.set_merge_hook(Some(Arc::new(move |r: &Result<(), Error>| {
        let _ = tx.lock().unwrap().send(r.clone());
    })));
    for i in 0..60 {
        store.store(&chain_block(i).as_ref()).unwrap();
    }
    let wait = || {
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the hook was called")
    };
    store.merge(&hash_of(59), &[19, 39]).unwrap();
    assert_eq!(wait(), Ok(()));
    assert!(!store.merging(), "the hook runs once the merge is over");
    store.await_merge().unwrap();
    // Nothing left to cement: the hook is told at once.
    store.merge(&hash_of(59), &[39]).unwrap();
    assert_eq!(wait(), Ok(()));
    // A byte in the middle of each floating store file (one of them holds
    // blocks 40-59, which the next merge walks; stores the first merge
    // replaced may still be waiting for deletion) is damaged on disk.
    store.await_merge().unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path().join("floating"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join("RW_floating_block_store")))
        .collect();
    let mut damaged = 0;
    for file in files {
        let Ok(mut bytes) = std::fs::read(&file) else {
            continue;
        };
        if bytes.is_empty() {
            continue;
        }
        let at = bytes.len() / 2;
        bytes[at] ^= 0x55;
        if std::fs::write(&file, &bytes).is_ok() {
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    store.merge(&hash_of(59), &[49]).unwrap();
    let got = wait();
    assert!(matches!(got, Err(Error::Corrupted(_))), "{got:?}");
    assert_eq!(store.await_merge(), got);
    // Removed: no more calls.
    store.set_merge_hook(None);
    assert!(rx.try_recv().is_err());
}
