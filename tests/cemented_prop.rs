//! Property test of the cemented store against an in-memory model: random
//! chains cemented in random chunk sizes, with and without metadata.

mod cemented_util;

use cemented_util::{block, pruned, refs};
use proptest::prelude::*;
use tzstore::OpenOptions;
use tzstore::block::Block;
use tzstore::block::cemented::{Cemented, ChunkRange};

fn check(s: &Cemented, model: &[(Block, bool)], chunks: &[ChunkRange]) {
    assert_eq!(s.chunks(), chunks);
    assert_eq!(s.lowest_level(), model.first().map(|(b, _)| b.level));
    assert_eq!(s.highest_level(), model.last().map(|(b, _)| b.level));
    for (b, with_meta) in model {
        let expected = if *with_meta { b.clone() } else { pruned(b) };
        assert_eq!(
            s.read_by_level(b.level, true).unwrap(),
            Some(expected.clone())
        );
        assert_eq!(
            s.read_by_hash(&b.hash, true).unwrap(),
            Some(expected.clone())
        );
        assert_eq!(s.read_by_level(b.level, false).unwrap(), Some(pruned(b)));
        assert_eq!(s.read_by_hash(&b.hash, false).unwrap(), Some(pruned(b)));
        assert_eq!(s.read_metadata(b.level).unwrap(), expected.metadata);
        assert_eq!(s.level_of(&b.hash).unwrap(), Some(b.level));
        assert_eq!(s.hash_of(b.level).unwrap(), Some(b.hash));
    }
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(s.find_chunk(c.start), Some(*c));
        assert_eq!(s.find_chunk(c.end), Some(*c));
        assert_eq!(
            s.find_chunk(c.start - 1),
            i.checked_sub(1).map(|j| chunks[j])
        );
        assert_eq!(s.find_chunk(c.end + 1), chunks.get(i + 1).copied());
    }
    let with_zip: Vec<_> = chunks
        .iter()
        .filter(|c| {
            model
                .iter()
                .any(|(b, m)| *m && c.contains(b.level) && b.metadata.is_some())
        })
        .copied()
        .collect();
    assert_eq!(s.metadata_chunks(), with_zip);
    s.check_consistency(None).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_chains_in_random_chunks(
        start in 0i32..5,
        sizes in proptest::collection::vec((1usize..40, any::<bool>()), 1..10),
        salt in any::<u64>(),
        reopen_at in 0usize..10,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = OpenOptions::default().no_fsync();
        let mut s = Cemented::open(dir.path(), &opts, 16).unwrap();
        let mut model: Vec<(Block, bool)> = Vec::new();
        let mut chunks = Vec::new();
        let mut level = start;
        for (i, (n, with_meta)) in sizes.iter().enumerate() {
            let blocks: Vec<Block> = (level..level + *n as i32).map(|l| block(salt, l, salt ^ l as u64)).collect();
            let r = s.cement(&refs(&blocks), *with_meta, true).unwrap();
            prop_assert_eq!(r, ChunkRange::new(level, level + *n as i32 - 1).unwrap());
            chunks.push(r);
            model.extend(blocks.into_iter().map(|b| (b, *with_meta)));
            level += *n as i32;
            if i == reopen_at {
                drop(s);
                s = Cemented::open(dir.path(), &opts, 16).unwrap();
            }
        }
        check(&s, &model, &chunks);
        drop(s);
        let s = Cemented::open(dir.path(), &OpenOptions::read_only(), 16).unwrap();
        check(&s, &model, &chunks);
    }
}
