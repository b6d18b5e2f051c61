//! Concurrency: 4 reader threads and 1 writer for over a second with merges
//! running; every value read was written for that key, and versions seen by
//! a reader for one key never go backwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

const KEYS: u32 = 512;

fn key(k: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&k.to_le_bytes());
    b[8..12].copy_from_slice(&(k ^ 0xDEAD_BEEF).to_le_bytes());
    b
}

/// value = key id | version
fn value(k: u32, version: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&k.to_le_bytes());
    b[4..].copy_from_slice(&version.to_le_bytes());
    b
}

#[test]
fn readers_see_only_written_values_during_merges() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Arc::new(
        Index::open(
            dir.path(),
            IndexConfig {
                key_size: 16,
                value_size: 8,
                removable: false,
                log_size: 300,
                open: OpenOptions::default().no_fsync(),
            },
        )
        .unwrap(),
    );
    // versions[k]: highest version of key k whose add has returned.
    let versions: Arc<Vec<AtomicU32>> = Arc::new((0..KEYS).map(|_| AtomicU32::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (ix, versions, stop) = (ix.clone(), versions.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last_seen = vec![0u32; KEYS as usize];
                let mut reads = 0u64;
                let mut out = [0u8; 8];
                let mut k = r;
                while !stop.load(Ordering::Relaxed) {
                    k = (k * 7 + 13) % KEYS;
                    let floor = versions[k as usize].load(Ordering::Acquire);
                    let found = ix.find_into(&key(k), &mut out).unwrap();
                    reads += 1;
                    if !found {
                        assert_eq!(floor, 0, "key {k} missing after version {floor} was added");
                        continue;
                    }
                    let id = u32::from_le_bytes(out[..4].try_into().unwrap());
                    let ver = u32::from_le_bytes(out[4..].try_into().unwrap());
                    assert_eq!(id, k, "value of another key");
                    assert!(
                        ver >= floor,
                        "key {k}: version {ver} older than acknowledged {floor}"
                    );
                    assert!(
                        ver >= last_seen[k as usize],
                        "key {k}: version went backwards"
                    );
                    last_seen[k as usize] = ver;
                }
                reads
            })
        })
        .collect();
    let start = Instant::now();
    let mut version = 0u32;
    while start.elapsed() < Duration::from_millis(1200) {
        version += 1;
        for k in 0..KEYS {
            if (k + version) % 3 == 0 {
                ix.add(&key(k), &value(k, version), false).unwrap();
                versions[k as usize].store(version, Ordering::Release);
            }
        }
        if version % 10 == 0 {
            ix.flush().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    ix.await_merge().unwrap();
    assert!(reads > 0);
    assert!(version > 3, "writer made progress");
    for k in 0..KEYS {
        let v = versions[k as usize].load(Ordering::Acquire);
        assert_eq!(ix.find(&key(k)).unwrap(), Some(value(k, v).to_vec()));
    }
}
