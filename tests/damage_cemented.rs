//! Damage fuzzing of the cemented store (see `tests/common/damage.rs`): a
//! store of four chunks (three with metadata zips) is damaged, then opened
//! read-write and read-only and read whole. Every read gives the exact
//! acknowledged block or an error, and a chunk or zip the damage did not
//! hit stays readable; `check` reports what `open` refuses; after `check`
//! with repair the store opens, checks clean, reads exact values or
//! not-found for what was quarantined, and takes new chunks.

mod common;

use std::path::Path;

use common::damage::{self, Case};
use tzstore::block::Block;
use tzstore::block::cemented::{Cemented, ChunkRange, HistoryMode};
use tzstore::{Error, OpenOptions};

const LOG_SIZE: u64 = 16;
const CHUNKS: [(i32, i32); 4] = [(0, 7), (8, 15), (16, 23), (24, 31)];
/// The last chunk is cemented without metadata: it has no zip.
const WITH_META: usize = 3;

fn opts(read_only: bool) -> OpenOptions {
    let mut o = if read_only {
        OpenOptions::read_only()
    } else {
        OpenOptions::read_write()
    };
    o.fs = tzstore::io::default_fs(true);
    o
}

fn hash(level: i32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&level.to_be_bytes());
    for (i, b) in h[4..].iter_mut().enumerate() {
        *b = (level as u8).wrapping_mul(37) ^ i as u8;
    }
    h
}

fn expected(level: i32) -> Block {
    let meta = level < CHUNKS[WITH_META].0 && level % 5 != 4;
    Block {
        hash: hash(level),
        level,
        predecessor: hash(level - 1),
        contents: (0..(level as usize * 13) % 200)
            .map(|i| (i as i32 ^ level) as u8)
            .collect(),
        metadata: meta.then(|| {
            (0..(level as usize * 71) % 900 + 10)
                .map(|i| (i / 3) as u8 ^ level as u8)
                .collect()
        }),
    }
}

fn range(i: usize) -> ChunkRange {
    ChunkRange::new(CHUNKS[i].0, CHUNKS[i].1).unwrap()
}

fn chunk_of(level: i32) -> ChunkRange {
    range(CHUNKS.iter().position(|&(_, e)| level <= e).unwrap())
}

/// Where level `level`'s offset entry and record sit in its chunk file.
fn record_place(level: i32) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
    let r = chunk_of(level);
    let mut at = r.len() as u64 * 8;
    for l in r.start..level {
        at += tzstore::block::record::encode(&expected(l).as_ref(), false)
            .unwrap()
            .len() as u64;
    }
    let len = tzstore::block::record::encode(&expected(level).as_ref(), false)
        .unwrap()
        .len() as u64;
    let i = (level - r.start) as u64;
    (i * 8..i * 8 + 8, at..at + len)
}

fn build(dir: &Path, gc: bool) {
    let s = Cemented::open(dir, &opts(false), LOG_SIZE).unwrap();
    for (i, &(a, b)) in CHUNKS.iter().enumerate() {
        let blocks: Vec<Block> = (a..=b).map(expected).collect();
        let refs: Vec<_> = blocks.iter().map(Block::as_ref).collect();
        s.cement(&refs, i < WITH_META, true).unwrap();
    }
    if gc {
        // Drops the first chunk's zip, leaving its `.dropped` marker.
        s.gc(HistoryMode::Full, 3).unwrap();
    }
}

/// Which files the damage hit (any change, appended bytes included).
struct Hits<'a> {
    case: &'a Case,
    /// The template went through a Full GC that dropped chunk 0's zip.
    gc: bool,
}

impl Hits<'_> {
    fn file(&self, p: &Path) -> bool {
        self.case.damage.iter().any(|d| d.files().contains(&p))
    }
    fn chunk(&self, r: ChunkRange) -> bool {
        self.file(&self.case.dir.join(r.file_name()))
    }
    /// The chunk's zip or its `.dropped` marker.
    fn zip(&self, r: ChunkRange) -> bool {
        let m = self.case.dir.join("metadata");
        self.file(&m.join(format!("{r}.zip"))) || self.file(&m.join(format!("{r}.dropped")))
    }
    fn index(&self) -> bool {
        self.case.damage.iter().any(|d| {
            d.files().iter().any(|f| {
                f.starts_with(self.case.dir.join("hash_to_level"))
                    || f.starts_with(self.case.dir.join("level_to_hash"))
            })
        })
    }
}

/// `b` read at `level`: the exact block; its metadata exact, or absent
/// only if `may_vanish` (the chunk's "has a zip" flag hit along with the
/// zip, or a repair that dropped it).
fn same(b: &Block, level: i32, may_vanish: bool, gc: bool, what: &str) {
    let mut want = expected(level);
    if gc && level <= CHUNKS[0].1 {
        want.metadata = None;
    }
    assert_eq!(
        (&b.hash, b.level, &b.predecessor, &b.contents),
        (&want.hash, want.level, &want.predecessor, &want.contents),
        "{what}: level {level}"
    );
    if b.metadata != want.metadata {
        assert!(
            may_vanish && b.metadata.is_none(),
            "{what}: metadata of level {level}: got {:?} bytes, want {:?}",
            b.metadata
                .as_ref()
                .map(|m| (m.len(), &m[..m.len().min(40)])),
            want.metadata.as_ref().map(|m| m.len())
        );
    }
}

fn read_all(s: &Cemented, hits: &Hits<'_>, what: &str) {
    for level in 0..=CHUNKS[3].1 {
        let r = chunk_of(level);
        let (chunk_hit, zip_hit) = (hits.chunk(r), hits.zip(r));
        match s.read_by_level(level, true) {
            Ok(Some(b)) => same(&b, level, chunk_hit, hits.gc, what),
            Ok(None) => assert!(chunk_hit, "{what}: level {level} lost"),
            Err(Error::Corrupted(_)) => {
                assert!(chunk_hit || zip_hit, "{what}: level {level} unreadable")
            }
            Err(e) => panic!("{what}: level {level}: {e}"),
        }
        match s.read_by_hash(&hash(level), false) {
            Ok(Some(b)) => same(&b, level, true, hits.gc, what),
            Ok(None) | Err(Error::Corrupted(_)) => assert!(
                chunk_hit || hits.index(),
                "{what}: level {level} not found by hash"
            ),
            Err(e) => panic!("{what}: by hash {level}: {e}"),
        }
    }
    for r in s.chunks() {
        let Ok(it) = s.iter_chunk(r, true) else {
            panic!("{what}: chunk {r} listed but not iterable");
        };
        for (i, b) in it.enumerate() {
            match b {
                Ok(b) => same(&b, r.start + i as i32, hits.chunk(r), hits.gc, what),
                Err(Error::Corrupted(_)) => assert!(hits.chunk(r) || hits.zip(r), "{what}"),
                Err(e) => panic!("{what}: iterating {r}: {e}"),
            }
        }
    }
    match s.check_consistency(None) {
        Ok(()) | Err(Error::Corrupted(_) | Error::Inconsistent(_)) => {}
        Err(e) => panic!("{what}: check_consistency: {e}"),
    }
}

#[test]
fn damaged_cemented_store_never_returns_another_block() {
    damage::run(
        "damaged_cemented_store_never_returns_another_block",
        400,
        |dir| build(dir, false),
        |case| check_case(case, false),
    );
}

#[test]
fn damaged_cemented_store_after_gc_never_returns_another_block() {
    damage::run(
        "damaged_cemented_store_after_gc_never_returns_another_block",
        150,
        |dir| build(dir, true),
        |case| check_case(case, true),
    );
}

fn check_case(case: &mut Case, gc: bool) {
    let what = case.describe();
    let hits = Hits { case, gc };
    let dir = &case.dir;
    let mut rw_opens = false;
    for read_only in [false, true] {
        match Cemented::open(dir, &opts(read_only), LOG_SIZE) {
            Ok(s) => {
                rw_opens |= !read_only;
                read_all(&s, &hits, &what);
            }
            Err(Error::Corrupted(_) | Error::InvalidArgument(_)) => {}
            Err(e) => panic!("{what}: open (read-only {read_only}): {e}"),
        }
    }
    let before = Cemented::check(dir, &opts(false), false).unwrap();
    if before.is_ok() {
        assert!(rw_opens, "{what}: check passes a store that does not open");
    }
    let repaired = Cemented::check(dir, &opts(false), true).unwrap();
    assert!(repaired.is_ok(), "{what}: {}", repaired.to_text());
    let after = Cemented::check(dir, &opts(false), false).unwrap();
    assert!(after.is_ok(), "{what}: {}", after.to_text());
    let s = Cemented::open(dir, &opts(false), LOG_SIZE)
        .unwrap_or_else(|e| panic!("{what}: open after repair: {e}"));
    for level in 0..=CHUNKS[3].1 {
        let r = chunk_of(level);
        match s.read_by_level(level, true) {
            Ok(Some(b)) => same(&b, level, hits.zip(r), hits.gc, &what),
            Ok(None) => {
                let file = dir.join(r.file_name());
                let (entry, record) = record_place(level);
                assert!(
                    case.touches(&file, entry) || case.touches(&file, record),
                    "{what}: intact level {level} lost by repair"
                )
            }
            Err(e) => panic!("{what}: level {level} after repair: {e}"),
        }
        if s.find_chunk(level).is_some() {
            let b = s.read_by_hash(&hash(level), false).unwrap();
            assert_eq!(b.map(|b| b.level), Some(level), "{what}");
        }
    }
    s.check_consistency(None).unwrap_or_else(|e| {
        // Repair may leave a gap where a chunk was quarantined.
        assert!(matches!(e, Error::Inconsistent(_)), "{what}: {e}")
    });
    let next = s.highest_level().map_or(100, |h| h + 1);
    let blocks: Vec<Block> = (next..next + 3)
        .map(|l| Block {
            hash: [0xEE ^ l as u8; 32],
            ..expected(l)
        })
        .collect();
    let refs: Vec<_> = blocks.iter().map(Block::as_ref).collect();
    s.cement(&refs, true, false)
        .unwrap_or_else(|e| panic!("{what}: cement after repair: {e}"));
    drop(s);
    let s = Cemented::open(dir, &opts(false), LOG_SIZE).unwrap();
    assert_eq!(
        s.read_by_level(next + 1, true).unwrap().as_ref(),
        Some(&blocks[1]),
        "{what}"
    );
    assert!(Cemented::check(dir, &opts(false), false).unwrap().is_ok());
}
