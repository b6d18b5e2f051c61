//! Property tests of the cemented store's decoders: arbitrary bytes as a
//! chunk file, as a metadata zip, and over the index files never panic,
//! never allocate more than a bound, and give values or errors.

mod alloc_probe;
mod cemented_util;

use std::sync::Arc;

use proptest::prelude::*;
use tzstore::OpenOptions;
use tzstore::block::cemented::Cemented;
use tzstore::block::cemented::chunk::{Chunk, ChunkRange};
use tzstore::block::cemented::metadata::MetaChunk;

#[global_allocator]
static ALLOC: alloc_probe::Largest = alloc_probe::Largest;

/// No decoder input here may cost more than this in one allocation.
const BOUND: usize = 64 << 20;

fn fs() -> Arc<dyn tzstore::io::FileSystem> {
    tzstore::io::default_fs(true)
}

/// A valid zip of a few entries, to mutate.
fn valid_zip() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let s = Cemented::open(dir.path(), &OpenOptions::default().no_fsync(), 0).unwrap();
    let blocks: Vec<_> = (0..4)
        .map(|l| {
            let mut b = cemented_util::block(1, l, 3);
            b.metadata = Some(vec![l as u8; 300]);
            b
        })
        .collect();
    s.cement(&cemented_util::refs(&blocks), true, true).unwrap();
    std::fs::read(dir.path().join("metadata/0_3.zip")).unwrap()
}

fn mutate(mut base: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, b) in edits {
        if !base.is_empty() {
            let i = at % base.len();
            base[i] = b;
        }
    }
    if let Some(c) = cut {
        base.truncate(c % (base.len() + 1));
    }
    base
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunk_decoder_takes_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        start in -5i32..5,
        len in prop_oneof![1i32..40, Just(i32::MAX / 2)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let r = ChunkRange::new(start, start.saturating_add(len - 1)).unwrap();
        std::fs::write(dir.path().join(r.file_name()), &bytes).unwrap();
        let c = Chunk::new(fs(), dir.path(), r);
        alloc_probe::reset();
        let shape = c.check_shape();
        let verified = c.verify();
        for level in r.start..=r.end.min(r.start + 40) {
            let _ = c.read(level);
        }
        prop_assert!(alloc_probe::largest() < BOUND);
        prop_assert!(verified.is_err() || shape.is_ok());
    }

    #[test]
    fn zip_decoder_takes_any_bytes(
        random in proptest::collection::vec(any::<u8>(), 0..1024),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        use_valid in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let r = ChunkRange::new(0, 3).unwrap();
        let bytes = if use_valid { mutate(valid_zip(), &edits, cut) } else { random };
        std::fs::write(dir.path().join("0_3.zip"), &bytes).unwrap();
        let m = MetaChunk::new(fs(), dir.path(), r);
        alloc_probe::reset();
        let verified = m.verify();
        for level in -1..5 {
            if let Ok(Some(v)) = m.read(level) {
                prop_assert!(r.contains(level));
                prop_assert!(v.len() <= 1 << 20);
            }
        }
        let (kept, _) = m.salvage();
        prop_assert!(alloc_probe::largest() < BOUND);
        if verified.is_ok() {
            prop_assert_eq!(kept.len() as u64, verified.unwrap());
        }
    }

    #[test]
    fn index_files_take_any_bytes(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<usize>()),
        which in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions::default().no_fsync();
        {
            let s = Cemented::open(dir.path(), &opts, 4).unwrap();
            let blocks = cemented_util::chain(1, 0, 9, 5);
            s.cement(&cemented_util::refs(&blocks), false, true).unwrap();
        }
        let mut files = Vec::new();
        for d in ["hash_to_level", "level_to_hash"] {
            for e in std::fs::read_dir(dir.path().join(d)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() && !p.ends_with("lock") && !p.to_string_lossy().ends_with(".lock") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let victim = which.get(&files).clone();
        let bytes = mutate(std::fs::read(&victim).unwrap(), &edits, cut);
        std::fs::write(&victim, bytes).unwrap();
        alloc_probe::reset();
        if let Ok(s) = Cemented::open(dir.path(), &opts, 4) {
            for l in 0..10 {
                if let Ok(Some(b)) = s.read_by_hash(&cemented_util::hash(1, l), false) {
                    prop_assert_eq!(b.level, l);
                }
            }
        }
        let _ = Cemented::check(dir.path(), &opts, false);
        prop_assert!(alloc_probe::largest() < BOUND);
    }
}
