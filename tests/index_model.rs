//! Property test: random add/replace/remove/find/flush/reopen sequences on a
//! removable index with a tiny log size (merges interleave with everything)
//! agree with a `HashMap` model.

use std::collections::HashMap;

use proptest::prelude::*;
use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u16),
    Remove(u8),
    Find(u8),
    Flush,
    AwaitMerge,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Add(k % 64, v)),
        2 => any::<u8>().prop_map(|k| Op::Remove(k % 64)),
        3 => any::<u8>().prop_map(|k| Op::Find(k % 64)),
        1 => Just(Op::Flush),
        1 => Just(Op::AwaitMerge),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> [u8; 8] {
    [k, 0xA5, k ^ 0x3C, 1, 2, 3, 4, k]
}

fn open(dir: &std::path::Path, log_size: u64) -> Index {
    Index::open(
        dir,
        IndexConfig {
            key_size: 8,
            value_size: 2,
            removable: true,
            log_size,
            open: OpenOptions::default().no_fsync(),
        },
    )
    .unwrap()
}

fn check_all(ix: &Index, model: &HashMap<u8, u16>) {
    assert_eq!(ix.len(), model.len() as u64);
    for k in 0..64u8 {
        let want = model.get(&k).map(|v| v.to_le_bytes().to_vec());
        assert_eq!(ix.find(&key(k)).unwrap(), want, "key {k}");
        assert_eq!(ix.mem(&key(k)).unwrap(), want.is_some());
    }
    let mut seen: Vec<(Vec<u8>, Vec<u8>)> = ix.iter().unwrap().map(|r| r.unwrap()).collect();
    seen.sort();
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .map(|(k, v)| (key(*k).to_vec(), v.to_le_bytes().to_vec()))
        .collect();
    want.sort();
    assert_eq!(seen, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_hashmap(ops in prop::collection::vec(op(), 1..300), log_size in 1u64..12) {
        let dir = tempfile::tempdir().unwrap();
        let mut ix = open(dir.path(), log_size);
        let mut model: HashMap<u8, u16> = HashMap::new();
        for op in ops {
            match op {
                Op::Add(k, v) => {
                    ix.add(&key(k), &v.to_le_bytes(), false).unwrap();
                    model.insert(k, v);
                }
                Op::Remove(k) => {
                    ix.remove(&key(k), false).unwrap();
                    model.remove(&k);
                }
                Op::Find(k) => {
                    let want = model.get(&k).map(|v| v.to_le_bytes().to_vec());
                    prop_assert_eq!(ix.find(&key(k)).unwrap(), want);
                }
                Op::Flush => ix.flush().unwrap(),
                Op::AwaitMerge => ix.await_merge().unwrap(),
                Op::Reopen => {
                    ix.close().unwrap();
                    ix = open(dir.path(), log_size);
                }
            }
        }
        check_all(&ix, &model);
        ix.close().unwrap();
        check_all(&open(dir.path(), log_size), &model);
    }
}
