//! `tzstore copy SRC DST` while a writer keeps writing SRC: the copy checks
//! clean and holds everything the writer had acknowledged before the copy
//! started, with the same content, and nothing the writer never wrote.
//! Stores without a concurrent writer here are copied and compared whole.

mod cli_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cli_util::*;
use tzstore::OpenOptions;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::index::{Index, IndexConfig};
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::kv::Kv;
use tzstore::singleton::Singleton;

/// Waits until `count` reaches `n` (the writer has acknowledged that many).
fn wait_for(count: &AtomicU64, n: u64) {
    let t = Instant::now();
    while count.load(Ordering::SeqCst) < n {
        assert!(t.elapsed() < Duration::from_secs(120), "writer too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn block_store_copy_under_a_writer_that_stores_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let blocks = Arc::new(chain(4000));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, blocks, acked, stop) = (src.clone(), blocks.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let store = BlockStore::open(
                &src,
                BlockStoreOptions {
                    open: OpenOptions::read_write().no_fsync(),
                    history_mode: HistoryMode::Archive,
                    ..BlockStoreOptions::default()
                },
            )
            .unwrap();
            for (i, b) in blocks.iter().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                store.store(&b.as_ref()).unwrap();
                acked.store(i as u64 + 1, Ordering::SeqCst);
                // Cement in chunks of 100 levels, 50 levels behind the head:
                // merges swap floating stores while the copy reads.
                if i >= 150 && i % 100 == 50 {
                    store.merge(&b.hash, &[(i - 51) as i32]).unwrap();
                }
            }
            store.await_merge().unwrap();
        })
    };
    wait_for(&acked, 600);
    let before = acked.load(Ordering::SeqCst);
    ok(&["copy", p(&src), p(&dst)]);
    let after = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(after > before, "the writer kept storing during the copy");

    let out = ok(&["check", p(&dst)]);
    assert!(
        out.stdout.contains("ok: no problem found"),
        "{}",
        out.stdout
    );
    let copy = BlockStore::open(
        &dst,
        BlockStoreOptions {
            open: OpenOptions::read_only(),
            ..BlockStoreOptions::default()
        },
    )
    .unwrap();
    assert_eq!(copy.history().0, HistoryMode::Archive);
    for b in &blocks[..before as usize] {
        let got = copy.read(&b.hash, 0, true).unwrap();
        assert_eq!(got.as_ref(), Some(b), "block at level {}", b.level);
    }
    let st = copy.stats().unwrap();
    let held = st.cemented_blocks + st.floating_blocks;
    assert!(
        held >= before && held <= after + 1,
        "{held} blocks: {before}..={after}"
    );
    assert!(st.cemented_blocks > 0, "chunks were copied: {st:?}");
}

#[test]
fn index_copy_under_a_writer_with_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let cfg = IndexConfig {
        log_size: 300,
        open: OpenOptions::read_write().no_fsync(),
        ..IndexConfig::new(8, 8)
    };
    let value = |i: u64| (i * 7 + 1).to_le_bytes();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, acked, stop, cfg) = (src.clone(), acked.clone(), stop.clone(), cfg.clone());
        std::thread::spawn(move || {
            let idx = Index::open(&src, cfg).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && i < 2_000_000 {
                idx.add(&i.to_be_bytes(), &value(i), i % 10 == 9).unwrap();
                i += 1;
                if i % 10 == 0 {
                    acked.store(i, Ordering::SeqCst);
                }
            }
            idx.close().unwrap();
        })
    };
    wait_for(&acked, 5_000);
    let before = acked.load(Ordering::SeqCst);
    ok(&["copy", p(&src), p(&dst)]);
    let after = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(after > before, "the writer kept adding during the copy");

    ok(&["check", p(&dst)]);
    let copy = Index::open(
        &dst,
        IndexConfig {
            open: OpenOptions::read_only(),
            ..IndexConfig::new(8, 8)
        },
    )
    .unwrap();
    for i in 0..before {
        assert_eq!(
            copy.find(&i.to_be_bytes()).unwrap(),
            Some(value(i).to_vec()),
            "key {i}"
        );
    }
    // Nothing the writer never wrote, and every value its key's.
    for e in copy.iter().unwrap() {
        let (k, v) = e.unwrap();
        let i = u64::from_be_bytes(k.try_into().unwrap());
        assert_eq!(v, value(i).to_vec());
        assert!(i < after + 10, "key {i} beyond what was written");
    }
}

#[test]
fn kv_copy_under_a_writer_is_a_state_the_store_had() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    std::fs::create_dir(&src).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, acked, stop) = (src.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let kv = Kv::open(&src, &OpenOptions::read_write().no_fsync()).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // Each write sets a new key and moves a counter: a copy
                // mixing two states would pair a counter with the wrong keys.
                kv.batch(10, |b| {
                    b.set(&format!("keys/{i}"), &i.to_be_bytes())?;
                    b.set("counter", (i + 1).to_string().as_bytes())
                })
                .unwrap();
                i += 1;
                acked.store(i, Ordering::SeqCst);
                // Bursts with pauses: a copy fits between two writes.
                if i % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
        })
    };
    wait_for(&acked, 100);
    let before = acked.load(Ordering::SeqCst);
    let out = ok(&["copy", p(&src), p(&dst)]);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(out.stdout.contains("root digest"), "{}", out.stdout);
    ok(&["check", p(&dst)]);
    let copy = Kv::open(&dst, &OpenOptions::read_only()).unwrap();
    let n: u64 = String::from_utf8(copy.get("counter").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= before, "counter {n} < {before} acknowledged");
    let keys = copy.list("keys").unwrap();
    assert_eq!(keys.len() as u64, n, "the keys of exactly one state");
    for i in 0..n {
        assert_eq!(copy.get(&format!("keys/{i}")).unwrap(), i.to_be_bytes());
    }
}

#[test]
fn other_stores_copy_whole_and_dst_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    let kv_dir = t.join("kv");
    std::fs::create_dir(&kv_dir).unwrap();
    let kv = Kv::open(&kv_dir, &OpenOptions::read_write()).unwrap();
    kv.set("a/b", b"1").unwrap();
    kv.set("a/c/d", b"2").unwrap();
    kv.set("e", b"").unwrap();
    drop(kv);

    let if_dir = t.join("if");
    let f = IndexedFile::open(
        &if_dir,
        IndexedFileConfig {
            key_size: 3,
            header_size: 2,
            header_in_value: true,
            log_size: 0,
            open: OpenOptions::read_write(),
        },
    )
    .unwrap();
    for i in 0..30u8 {
        f.append(&[i, i, i], None, &[i, 0, 9, 9, 9], false).unwrap();
    }
    f.flush().unwrap();
    drop(f);

    let single = t.join("head");
    Singleton::open(&single, &OpenOptions::read_write())
        .unwrap()
        .write(b"the head")
        .unwrap();

    for (name, src) in [("kv", &kv_dir), ("if", &if_dir), ("head", &single)] {
        let dst = t.join(format!("{name}-copy"));
        let out = ok(&["copy", p(src), p(&dst)]);
        assert!(
            out.stdout.contains("the copy checks clean"),
            "{}",
            out.stdout
        );
        let a = json(&ok(&["dump", "--json", p(src)]).stdout);
        let b = json(&ok(&["dump", "--json", p(&dst)]).stdout);
        let sorted = |v: &serde_json::Value| {
            let mut e: Vec<String> = v["entries"]
                .as_array()
                .map(|a| a.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            e.sort();
            (e, v["value"].clone())
        };
        assert_eq!(sorted(&a), sorted(&b), "{name}");
        // A second copy to the same DST is refused and leaves it as it was.
        let out = expect(2, &["copy", p(src), p(&dst)]);
        assert!(out.stderr.contains("already exists"), "{}", out.stderr);
        ok(&["check", p(&dst)]);
    }
    // No temporary copy is left beside the copies.
    assert!(std::fs::read_dir(t).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("tzstore-copy")
    }),);
}

#[test]
fn a_pruned_rolling_block_store_copies_with_its_chunks_and_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let blocks = chain(80);
    {
        let store = BlockStore::open(
            &src,
            BlockStoreOptions {
                history_mode: HistoryMode::Rolling,
                history_offset: 2,
                ..BlockStoreOptions::default()
            },
        )
        .unwrap();
        for (i, b) in blocks.iter().enumerate() {
            store.store(&b.as_ref()).unwrap();
            if i % 10 == 9 && i >= 19 {
                store.merge(&b.hash, &[(i - 10) as i32]).unwrap();
                store.await_merge().unwrap();
            }
        }
        let lowest = store.stats().unwrap().cemented_lowest.unwrap();
        assert!(lowest > 0, "GC pruned the first chunks");
    }
    ok(&["copy", p(&src), p(&dst)]);
    let a = json(&ok(&["dump", "--json", p(&src)]).stdout);
    let b = json(&ok(&["dump", "--json", p(&dst)]).stdout);
    assert_eq!(a["chunks"], b["chunks"]);
    assert_eq!(a["floating"], b["floating"]);
    let a = json(&ok(&["info", "--json", p(&src)]).stdout);
    let b = json(&ok(&["info", "--json", p(&dst)]).stdout);
    assert_eq!(a["history_mode"], b["history_mode"]);
    assert_eq!(a["cemented"], b["cemented"]);
    let head = hex(&blocks[79].hash);
    assert_eq!(
        ok(&[
            "get",
            p(&src),
            &head,
            "--distance",
            "20",
            "--json",
            "--metadata"
        ])
        .stdout,
        ok(&[
            "get",
            p(&dst),
            &head,
            "--distance",
            "20",
            "--json",
            "--metadata"
        ])
        .stdout
    );
}
