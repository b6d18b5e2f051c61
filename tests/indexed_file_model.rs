//! Property test: random append/read/header/flush/gc/reopen sequences on an
//! indexed file agree with a `HashMap` model (tiny index log size, so index
//! merges and compactions interleave).

use std::collections::HashMap;

use proptest::prelude::*;
use tzstore::OpenOptions;
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};

#[derive(Debug, Clone)]
enum Op {
    Append(u8, u8, usize),
    Read(u8),
    Flush,
    /// Keep keys whose id has this bit clear.
    Gc(u8),
    AwaitGc,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>(), 0usize..70).prop_map(|(k, h, n)| Op::Append(k % 40, h, n)),
        3 => any::<u8>().prop_map(|k| Op::Read(k % 40)),
        1 => Just(Op::Flush),
        1 => (0u8..6).prop_map(Op::Gc),
        1 => Just(Op::AwaitGc),
        1 => Just(Op::Reopen),
    ]
}

fn open(dir: &std::path::Path) -> IndexedFile {
    IndexedFile::open(
        dir,
        IndexedFileConfig {
            key_size: 4,
            header_size: 3,
            header_in_value: false,
            log_size: 4,
            open: OpenOptions::default().no_fsync(),
        },
    )
    .unwrap()
}

fn key(k: u8) -> [u8; 4] {
    [k, 1, 2, k ^ 0xFF]
}

type Model = HashMap<u8, (Vec<u8>, Vec<u8>)>;

fn check(f: &IndexedFile, model: &Model) {
    assert_eq!(f.len(), model.len() as u64);
    for k in 0..40u8 {
        let got = f.read(&key(k)).unwrap();
        assert_eq!(
            got.as_ref().map(|(v, h)| (h.clone(), v.clone())),
            model.get(&k).cloned(),
            "key {k}"
        );
        let mut h = [0u8; 3];
        assert_eq!(f.header(&key(k), &mut h).unwrap(), model.contains_key(&k));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn indexed_file_matches_hashmap(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut f = open(dir.path());
        let mut model: Model = HashMap::new();
        // Keys a running compaction will drop: until it ends they may still
        // be read (with their old value) or already be gone.
        let mut dropping: std::collections::HashSet<u8> = Default::default();
        let settle = |model: &mut Model, dropping: &mut std::collections::HashSet<u8>| {
            for k in dropping.drain() {
                model.remove(&k);
            }
        };
        for op in ops {
            match op {
                Op::Append(k, h, n) => {
                    let header = vec![h; 3];
                    let value: Vec<u8> = (0..n).map(|i| (i as u8) ^ k ^ h).collect();
                    f.append(&key(k), Some(&header), &value, false).unwrap();
                    model.insert(k, (header, value));
                    dropping.remove(&k);
                }
                Op::Read(k) => {
                    let got = f.read(&key(k)).unwrap().map(|(v, h)| (h, v));
                    if !(dropping.contains(&k) && got.is_none()) {
                        prop_assert_eq!(got, model.get(&k).cloned());
                    }
                }
                Op::Flush => f.flush().unwrap(),
                Op::Gc(bit) => {
                    // Wait for a previous compaction so this one is accepted.
                    f.await_gc().unwrap();
                    settle(&mut model, &mut dropping);
                    f.gc(|k| k[0] & (1 << bit) == 0).unwrap();
                    dropping = model.keys().copied().filter(|k| k & (1 << bit) != 0).collect();
                }
                Op::AwaitGc => {
                    f.await_gc().unwrap();
                    settle(&mut model, &mut dropping);
                }
                Op::Reopen => {
                    drop(f);
                    settle(&mut model, &mut dropping);
                    f = open(dir.path());
                }
            }
        }
        settle(&mut model, &mut dropping);
        f.await_gc().unwrap();
        check(&f, &model);
        drop(f);
        check(&open(dir.path()), &model);
    }
}
