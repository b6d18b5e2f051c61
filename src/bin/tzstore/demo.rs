//! `tzstore demo`: every store, end to end, in a fresh directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::block::{Block, Hash};
use tzstore::index::{Index, IndexConfig};
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::kv::Kv;
use tzstore::singleton::Singleton;
use tzstore::{Error, OpenOptions, Result};

use crate::fmt::{bytes_rate, disk_usage, hex, human_bytes, rate, thousands};
use crate::progress::{Unit, bar};

/// Blocks per cycle (one cemented chunk per cycle).
const CYCLE: u32 = 4096;
/// Cycles kept by the rolling history mode of the demo.
const KEEP_CYCLES: u32 = 5;

pub fn run(dir: Option<PathBuf>, blocks: u32) -> Result<()> {
    let (root, _tmp) = match dir {
        Some(d) => {
            refuse_data(&d)?;
            std::fs::create_dir_all(&d).map_err(|e| Error::io("create directory", &d, e))?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("tzstore-demo-")
                .tempdir()
                .map_err(|e| Error::io("create temporary directory", Path::new("/tmp"), e))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    println!("tzstore {} demo in {}", tzstore::VERSION, root.display());
    let started = Instant::now();
    singleton(&root)?;
    index(&root.join("index"))?;
    indexed_file(&root.join("indexed_file"))?;
    kv(&root.join("kv"))?;
    block_store(&root.join("blocks"), blocks)?;
    println!("\ndemo finished in {:.2?}", started.elapsed());
    Ok(())
}

/// `--dir` must be new or empty: the demo creates its stores there, and
/// reusing a directory with data would fail late (or mix old and new).
fn refuse_data(d: &Path) -> Result<()> {
    match std::fs::read_dir(d) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::invalid(format!(
            "--dir {}: {e}; give a new or empty directory",
            d.display()
        ))),
        Ok(mut rd) => match rd.next() {
            None => Ok(()),
            Some(_) => Err(Error::invalid(format!(
                "--dir {} already holds data; give a new or empty directory",
                d.display()
            ))),
        },
    }
}

fn section(title: &str) {
    println!("\n== {title} ==");
}

fn singleton(root: &Path) -> Result<()> {
    section("singleton (L2 SINGLETON_STORE)");
    let path = root.join("head");
    let s = Singleton::open(&path, &OpenOptions::read_write())?;
    println!("opened {} (unset: {})", path.display(), s.read().is_none());
    s.write(b"BLc1...head-at-level-42")?;
    println!("wrote the head durably (temp file, fsync, rename, fsync dir)");
    let ro = Singleton::open(&path, &OpenOptions::read_only())?;
    s.write(b"BLd2...head-at-level-43")?;
    ro.sync()?;
    println!(
        "read-only handle after sync sees: {}",
        String::from_utf8_lossy(&ro.read().unwrap_or_default())
    );
    match Singleton::open(&path, &OpenOptions::read_write()) {
        Err(e) => println!("a second read-write open is refused: {e}"),
        Ok(_) => return Err(Error::Inconsistent("lock not enforced".into())),
    }
    drop((s, ro));
    let s = Singleton::open(&path, &OpenOptions::read_write())?;
    println!(
        "after reopen: {}",
        String::from_utf8_lossy(&s.read().unwrap_or_default())
    );
    s.delete()?;
    println!("deleted; unset again: {}", s.read().is_none());
    Ok(())
}

fn index(dir: &Path) -> Result<()> {
    section("index (mirage index; L2 INDEXABLE_STORE / INDEXABLE_REMOVABLE_STORE)");
    let cfg = IndexConfig {
        removable: true,
        log_size: 50_000,
        ..IndexConfig::new(32, 8)
    };
    let idx = Index::open(dir, cfg.clone())?;
    let n = 200_000u64;
    let t = Instant::now();
    for i in 0..n {
        idx.add(&hash_of(i), &i.to_be_bytes(), false)?;
    }
    idx.flush()?;
    println!(
        "added {} 32-byte keys -> 8-byte values, one flush at the end: {:.2?} ({}/s; merges ran in the background)",
        thousands(n),
        t.elapsed(),
        rate(n, t.elapsed().as_secs_f64())
    );
    idx.await_merge()?;
    let t = Instant::now();
    let mut out = [0u8; 8];
    let mut hits = 0;
    for i in 0..n {
        if idx.find_into(&hash_of(i), &mut out)? && out == i.to_be_bytes() {
            hits += 1;
        }
    }
    println!(
        "found {}/{} in {:.2?} ({}/s, no allocation per lookup)",
        thousands(hits),
        thousands(n),
        t.elapsed(),
        rate(n, t.elapsed().as_secs_f64())
    );
    idx.remove(&hash_of(7), true)?;
    println!("removed one key durably; mem = {}", idx.mem(&hash_of(7))?);
    let ro = Index::open(
        dir,
        IndexConfig {
            open: OpenOptions::read_only(),
            ..cfg
        },
    )?;
    idx.add(&hash_of(n), &n.to_be_bytes(), true)?;
    ro.sync()?;
    println!(
        "a read-only instance sees a new key after sync: {}",
        ro.mem(&hash_of(n))?
    );
    println!("index holds {} keys", idx.len());
    Ok(())
}

fn indexed_file(dir: &Path) -> Result<()> {
    section("indexed file (L2 INDEXED_FILE: values + fixed headers)");
    let f = IndexedFile::open(
        dir,
        IndexedFileConfig {
            key_size: 32,
            header_size: 4,
            header_in_value: false,
            log_size: 0,
            open: OpenOptions::read_write(),
        },
    )?;
    for i in 0..1000u64 {
        let value = format!("commitment {i} ").repeat(1 + (i % 7) as usize);
        f.append(
            &hash_of(i),
            Some(&(i as u32).to_be_bytes()),
            value.as_bytes(),
            false,
        )?;
    }
    f.flush()?;
    let mut header = [0u8; 4];
    f.header(&hash_of(42), &mut header)?;
    println!(
        "appended 1000 values; header of key 42 from the index alone: {}",
        u32::from_be_bytes(header)
    );
    if let Some((value, _)) = f.read(&hash_of(42))? {
        println!("value of key 42: {:?}", String::from_utf8_lossy(&value));
    }
    f.gc(|key| key[0] % 2 == 0)?;
    f.await_gc()?;
    println!(
        "background compaction kept {} of 1000 values (a keep-callback chose)",
        f.len()
    );
    Ok(())
}

fn kv(root: &Path) -> Result<()> {
    section("key/value store (mirage-kv-unix, with atomic batches)");
    std::fs::create_dir_all(root).map_err(|e| Error::io("create directory", root, e))?;
    let kv = Kv::open(root, &OpenOptions::read_write())?;
    kv.set("config/network", b"mainnet")?;
    kv.set("config/peers/count", b"0")?;
    println!(
        "set two keys durably; config/network = {}",
        String::from_utf8_lossy(&kv.get("config/network")?)
    );
    let names: Vec<String> = kv
        .list("config")?
        .into_iter()
        .map(|(name, kind)| format!("{name} ({kind:?})"))
        .collect();
    println!("list config: {}", names.join(", "));
    // Four threads increment one counter through batches; conflicts retry.
    let kv = std::sync::Arc::new(kv);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let kv = kv.clone();
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..25 {
                    kv.batch(100, |b| {
                        let n: u64 = String::from_utf8_lossy(&b.get("config/peers/count")?)
                            .parse()
                            .unwrap_or(0);
                        b.set("config/peers/count", (n + 1).to_string().as_bytes())
                    })?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| Error::Panic("demo thread panicked".into()))??;
    }
    println!(
        "4 threads x 25 batched increments: counter = {} (no lost update)",
        String::from_utf8_lossy(&kv.get("config/peers/count")?)
    );
    match kv.get("../etc/passwd") {
        Err(e) => println!("a key escaping the root is refused: {e}"),
        Ok(_) => return Err(Error::Inconsistent("path traversal not refused".into())),
    }
    let d = kv.digest("config")?;
    println!("digest of the config dictionary: {}", hex(&d));
    Ok(())
}

fn hash_of(id: u64) -> Hash {
    // A cheap, well-spread stand-in for a block hash.
    let mut h = [0u8; 32];
    for (i, chunk) in h.chunks_mut(8).enumerate() {
        let x = xxhash_rust::xxh3::xxh3_64_with_seed(&id.to_be_bytes(), i as u64);
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    h
}

fn sample_block(id: u64, level: i32, pred: Hash) -> Block {
    // Contents look like a header plus operations; metadata like receipts:
    // repetitive enough to compress, as real metadata does.
    let mut contents = Vec::with_capacity(1024);
    while contents.len() < 1024 {
        contents.extend_from_slice(&id.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        contents.extend_from_slice(b"operation;");
    }
    let receipt = format!(
        "{{\"level\":{level},\"balance_updates\":[{{\"kind\":\"contract\",\"change\":\"{}\"}}]}}",
        id % 9973
    );
    let metadata = receipt.repeat(4096 / receipt.len() + 1).into_bytes();
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents,
        metadata: Some(metadata),
    }
}

fn block_store(dir: &Path, blocks: u32) -> Result<()> {
    section("block store (floating + cemented, background merges, rolling history)");
    let opts = BlockStoreOptions {
        history_mode: HistoryMode::Rolling,
        history_offset: KEEP_CYCLES,
        ..BlockStoreOptions::default()
    };
    let store = BlockStore::open(dir, opts)?;
    println!(
        "opened {} in rolling mode keeping {KEEP_CYCLES} cycles of {CYCLE} blocks",
        dir.display()
    );
    let bar = bar(blocks as u64, Unit::Records("blocks"), "storing");
    let t0 = Instant::now();
    let mut main_chain: Vec<Hash> = Vec::with_capacity(blocks as usize);
    let mut input_bytes = 0u64;
    let mut forks = 0u32;
    let mut next_id = 0u64;
    let mut merges = 0u32;
    for level in 0..blocks as i32 {
        let pred = main_chain
            .last()
            .copied()
            .unwrap_or_else(|| hash_of(u64::MAX));
        let b = sample_block(next_id, level, pred);
        next_id += 1;
        input_bytes += (b.contents.len() + b.metadata.as_ref().map_or(0, Vec::len)) as u64;
        // Durable every 1,000 blocks; a node would flush every block.
        store.store_with(&b.as_ref(), level % 1000 == 999)?;
        main_chain.push(b.hash);
        // Every 1,000 levels a short competing branch appears and dies.
        if level % 1000 == 500 && level > 3 {
            let mut p = main_chain[level as usize - 3];
            for k in 0..3 {
                let f = sample_block(next_id, level - 2 + k, p);
                next_id += 1;
                store.store_with(&f.as_ref(), false)?;
                p = f.hash;
            }
            forks += 1;
        }
        // At each new cycle, cement the cycle that ended two cycles ago (the
        // last finalized one), as a node does after a protocol cycle.
        let l = level as u32;
        if l % CYCLE == 0 && l >= 3 * CYCLE {
            let end = (l - 2 * CYCLE) as i32 - 1;
            let low = store.stats()?.cemented_highest.unwrap_or(-1);
            let ends: Vec<i32> = ((low + 1)..=end)
                .filter(|e| (*e as u32 + 1) % CYCLE == 0)
                .collect();
            if !ends.is_empty() {
                store.merge(&b.hash, &ends)?;
                merges += 1;
                bar.set_message(format!("storing (merges started: {merges})"));
            }
        }
        bar.inc(1);
    }
    store.flush()?;
    store.await_merge()?;
    bar.finish_and_clear();
    let elapsed = t0.elapsed();
    println!(
        "stored {} blocks ({forks} short forks) and ran {merges} background merges in {:.2?}: {} blocks/s, {} of input",
        thousands(main_chain.len() as u64),
        elapsed,
        rate(main_chain.len() as u64, elapsed.as_secs_f64()),
        bytes_rate((input_bytes as f64 / elapsed.as_secs_f64()) as u64)
    );

    // Reads: by hash, by distance, by level.
    let head = *main_chain
        .last()
        .ok_or_else(|| Error::invalid("the demo needs at least one block"))?;
    let b = store
        .read(&head, 0, true)?
        .ok_or_else(|| Error::Inconsistent("head missing".into()))?;
    println!(
        "read head by hash: level {}, {} bytes of metadata",
        b.level,
        b.metadata.map_or(0, |m| m.len())
    );
    let d = (main_chain.len() as u32 / 2).min(10_000);
    let a = store
        .read(&head, d, false)?
        .ok_or_else(|| Error::Inconsistent("ancestor missing".into()))?;
    println!(
        "read the ancestor {d} blocks below the head: level {}",
        a.level
    );
    let st = store.stats()?;
    if let (Some(lo), Some(hi)) = (st.cemented_lowest, st.cemented_highest) {
        let mid = lo + (hi - lo) / 2;
        let c = store
            .read_by_level(mid, true)?
            .ok_or_else(|| Error::Inconsistent("cemented level missing".into()))?;
        println!("read cemented level {mid} by level: hash {}", hex(&c.hash));
        let gone = store.read(&head, (b.level - lo + 1) as u32, false)?;
        println!(
            "level {} (below the {KEEP_CYCLES} kept cycles) after rolling GC: {}",
            lo - 1,
            if gone.is_none() {
                "gone, as rolling mode wants"
            } else {
                "still there"
            }
        );
    }
    let started = Instant::now();
    let mut found = 0;
    let sample = 20_000.min(main_chain.len());
    for i in 0..sample {
        let h = &main_chain[main_chain.len()
            - 1
            - (i * 7919) % (main_chain.len().min(KEEP_CYCLES as usize * CYCLE as usize))];
        if store.read(h, 0, false)?.is_some() {
            found += 1;
        }
    }
    println!(
        "{}/{} random reads of kept blocks by hash in {:.2?} ({}/s)",
        thousands(found),
        thousands(sample as u64),
        started.elapsed(),
        rate(sample as u64, started.elapsed().as_secs_f64())
    );
    let report = store.check(false)?;
    println!(
        "check: {} blocks verified, {} problems",
        thousands(report.records_checked),
        report.problems.len()
    );
    let chunks = store.cemented_chunks().len();
    // Closed first: closing waits for the floating stores a merge retired
    // to be deleted, so the size measured is the one `tzstore info` reports
    // on the same store (measured before, it still counted them).
    drop(store);
    let usage = disk_usage(dir)?;

    println!("\n  {:<28}{:>16}", "summary", "");
    println!(
        "  {:<28}{:>16}",
        "blocks stored",
        thousands(main_chain.len() as u64 + 3 * forks as u64)
    );
    println!(
        "  {:<28}{:>16}",
        "cemented blocks (kept)",
        thousands(st.cemented_blocks)
    );
    println!(
        "  {:<28}{:>16}",
        "floating blocks",
        thousands(st.floating_blocks)
    );
    println!("  {:<28}{:>16}", "cemented chunks", chunks);
    println!("  {:<28}{:>16}", "merges done", st.merges_done);
    println!(
        "  {:<28}{:>16}",
        "last merge",
        format!("{} ms", st.last_merge_ms)
    );
    println!("  {:<28}{:>16}", "input bytes", human_bytes(input_bytes));
    println!("  {:<28}{:>16}", "on disk", usage.line());
    let meta_raw = st.cemented_blocks
        * sample_block(0, 0, [0; 32])
            .metadata
            .map_or(0, |m| m.len() as u64);
    let meta_disk = dir_bytes(&dir.join("cemented").join("metadata"));
    println!(
        "  {:<28}{:>16}",
        "cemented metadata",
        format!("{} -> {}", human_bytes(meta_raw), human_bytes(meta_disk))
    );
    println!(
        "  {:<28}{:>16}",
        "metadata compression",
        format!("{:.1}x (zstd)", meta_raw as f64 / meta_disk.max(1) as f64)
    );
    println!(
        "  {:<28}{:>16}",
        "throughput",
        format!(
            "{} blocks/s",
            rate(main_chain.len() as u64, elapsed.as_secs_f64())
        )
    );
    Ok(())
}

/// Bytes of the files directly in `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
