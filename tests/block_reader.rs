//! Borrowed block reads (`BlockReader`): a view equals what the copying
//! read returns, wherever the block lives (a floating map, a floating tail
//! no map covers yet, a cemented chunk with or without metadata, a
//! preserved block read by level); a miss leaves the reader empty; a
//! damaged record is never shown; and a view stays valid and unchanged
//! while a merge retires the floating file it points into, a rolling GC
//! unlinks the chunk it points into, and the store is closed.

mod chain_util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chain_util::{block, hash_of, options};
use tzstore::Error;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::reader::BlockReader;
use tzstore::block::store::BlockStore;
use tzstore::block::{Block, BlockRef};

const CYCLE: i32 = 20;

/// A store created with genesis and holding levels `1..=top`.
fn filled(dir: &Path, mode: HistoryMode, offset: u32, top: i32) -> BlockStore {
    let store = BlockStore::create(dir, options(mode, offset), &block(0).as_ref()).unwrap();
    store_levels(&store, 1, top);
    store
}

fn store_levels(store: &BlockStore, from: i32, to: i32) {
    for level in from..=to {
        store.store(&block(level).as_ref()).unwrap();
    }
}

/// Reopens the store so the floating store maps everything stored so far.
fn reopened(store: BlockStore, dir: &Path, mode: HistoryMode, offset: u32) -> BlockStore {
    drop(store);
    BlockStore::load(dir, options(mode, offset), &hash_of(0)).unwrap()
}

/// Merges the chain up to `head`, cementing cycles up to `last_end`, with
/// Octez's test `max_op_ttl` of 1.
fn merge(store: &BlockStore, head: i32, last_end: i32) {
    let ends: Vec<i32> = (1..=last_end / CYCLE).map(|c| c * CYCLE).collect();
    store.merge_preserving(&hash_of(head), &ends, 1).unwrap();
    store.await_merge().unwrap();
    // Lets the store delete what the merge retired.
    store.stats().unwrap();
}

fn owned(view: Option<BlockRef<'_>>) -> Option<Block> {
    view.map(|b| b.to_owned())
}

/// Every read through `reader` equals the copying read: by hash at
/// distances 0, 1 and 7, by level, with and without metadata.
fn assert_views_match_copies(store: &BlockStore, reader: &mut BlockReader, top: i32) {
    for level in 0..=top + 1 {
        let hash = hash_of(level);
        for read_metadata in [true, false] {
            for distance in [0u32, 1, 7] {
                let copy = store.read(&hash, distance, read_metadata).unwrap();
                let view = owned(
                    store
                        .read_view(&hash, distance, read_metadata, reader)
                        .unwrap(),
                );
                assert_eq!(
                    view, copy,
                    "level {level} distance {distance} md {read_metadata}"
                );
                assert_eq!(owned(reader.block().unwrap()), copy);
            }
            let copy = store.read_by_level(level, read_metadata).unwrap();
            let view = owned(
                store
                    .read_view_by_level(level, read_metadata, reader)
                    .unwrap(),
            );
            assert_eq!(view, copy, "by level {level} md {read_metadata}");
        }
    }
}

#[test]
fn views_equal_copies_in_every_part_of_the_store() {
    for (mode, offset) in [
        (HistoryMode::Archive, 0),
        (HistoryMode::Full, 0),
        (HistoryMode::Full, 1),
        (HistoryMode::Rolling, 0),
        (HistoryMode::Rolling, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path(), mode, offset, 5 * CYCLE);
        merge(&store, 5 * CYCLE, 4 * CYCLE);
        // Reopened: the floating stores' maps cover their records; the
        // levels stored after it are read from the unmapped tail.
        let store = reopened(store, dir.path(), mode, offset);
        store_levels(&store, 5 * CYCLE + 1, 6 * CYCLE);
        let mut reader = BlockReader::new();
        assert_views_match_copies(&store, &mut reader, 6 * CYCLE);
    }
}

#[test]
fn views_borrow_maps_and_copy_only_the_unmapped_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Full, 0);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    merge(&store, 3 * CYCLE, 2 * CYCLE);
    let store = reopened(store, dir.path(), mode, offset);
    store_levels(&store, 3 * CYCLE + 1, 3 * CYCLE + 5);
    let mut reader = BlockReader::new();

    // Mapped floating record: a view into the map.
    let b = store.read_view(&hash_of(50), 0, true, &mut reader).unwrap();
    assert_eq!(owned(b), Some(block(50)));
    assert!(reader.borrows_map());
    // Appended since the map was made: the reader's own copy.
    let b = store.read_view(&hash_of(62), 0, true, &mut reader).unwrap();
    assert_eq!(owned(b), Some(block(62)));
    assert!(!reader.borrows_map());
    // Cemented without metadata (below the preserved block 39): the chunk.
    let b = store.read_view_by_level(10, true, &mut reader).unwrap();
    assert_eq!(b.map(|b| b.metadata), Some(None));
    assert!(reader.borrows_map());
    // The cemented top, preserved: by level with the floating metadata.
    let b = store.read_view_by_level(40, true, &mut reader).unwrap();
    assert_eq!(owned(b), Some(block(40)));
    // Without metadata asked: none shown, even where the record has some.
    let b = store
        .read_view(&hash_of(50), 0, false, &mut reader)
        .unwrap();
    assert_eq!(b.map(|b| b.metadata), Some(None));
}

#[test]
fn a_miss_leaves_the_reader_holding_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Archive, 0, 30);
    merge(&store, 30, 20);
    let mut reader = BlockReader::new();
    assert!(
        store
            .read_view(&hash_of(5), 0, true, &mut reader)
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .read_view(&hash_of(99), 0, true, &mut reader)
            .unwrap()
            .is_none()
    );
    assert_eq!(reader.block().unwrap(), None);
    assert!(!reader.borrows_map());
    assert!(
        store
            .read_view(&hash_of(25), 0, true, &mut reader)
            .unwrap()
            .is_some()
    );
    // Beyond genesis: the ancestor does not exist.
    assert!(
        store
            .read_view(&hash_of(5), 6, true, &mut reader)
            .unwrap()
            .is_none()
    );
    assert_eq!(reader.block().unwrap(), None);
    assert!(
        store
            .read_view_by_level(25, true, &mut reader)
            .unwrap()
            .is_none()
    );
    assert_eq!(reader.block().unwrap(), None);
    reader.release();
    assert_eq!(reader.block().unwrap(), None);
}

/// Every file under `dir`. The store deletes retired stores in the
/// background, file by file: a directory or entry that vanishes during the
/// walk is skipped.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => panic!("listing {}: {e}", dir.display()),
    };
    for e in entries {
        let p = match e {
            Ok(e) => e.path(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("listing {}: {e}", dir.display()),
        };
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.insert(p);
        }
    }
    out
}

#[test]
fn a_view_outlives_the_merge_that_retires_its_floating_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    let store = reopened(store, dir.path(), mode, offset);
    let before = files(dir.path());
    let mut reader = BlockReader::new();
    let view = store
        .read_view(&hash_of(7), 0, true, &mut reader)
        .unwrap()
        .unwrap();
    let bytes_before = view.to_owned();
    assert!(reader_borrows(&store, &mut BlockReader::new()));

    merge(&store, 3 * CYCLE, 2 * CYCLE);
    assert!(
        some_file_goes(&store, dir.path(), &before),
        "the merge retired no file: the test proves nothing"
    );
    assert_eq!(view.to_owned(), bytes_before);
    assert_eq!(view.to_owned(), block(7));
    // Now read from the cemented chunk.
    assert_eq!(
        owned(store.read_view(&hash_of(7), 0, true, &mut reader).unwrap()),
        Some(block(7))
    );
}

/// A reader kept across a merge (holding a map of the retired store)
/// finds the blocks stored after the merge in the new read-write store,
/// and the stores the merge retired are deleted.
#[test]
fn a_reader_kept_across_a_merge_reads_what_was_stored_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    let before = files(dir.path());
    let mut reader = BlockReader::new();
    assert_eq!(
        owned(store.read_view(&hash_of(7), 0, true, &mut reader).unwrap()),
        Some(block(7))
    );
    merge(&store, 3 * CYCLE, 2 * CYCLE);
    store_levels(&store, 3 * CYCLE + 1, 3 * CYCLE + 5);
    for level in [3 * CYCLE + 3, 7, 2 * CYCLE + 5, 3 * CYCLE + 5] {
        assert_eq!(
            owned(
                store
                    .read_view(&hash_of(level), 0, true, &mut reader)
                    .unwrap()
            ),
            Some(block(level)),
            "level {level}"
        );
    }
    assert_eq!(
        owned(
            store
                .read_view(&hash_of(3 * CYCLE + 5), 2, true, &mut reader)
                .unwrap()
        ),
        Some(block(3 * CYCLE + 3))
    );
    assert!(
        some_file_goes(&store, dir.path(), &before),
        "the stores the merge retired were not deleted after the reader moved on"
    );
}

/// Whether a file of `before` is deleted within 10 s: retired stores are
/// deleted by the store in the background (`stats` reaps those done).
fn some_file_goes(store: &BlockStore, dir: &Path, before: &BTreeSet<PathBuf>) -> bool {
    for _ in 0..200 {
        store.stats().unwrap();
        if before.difference(&files(dir)).next().is_some() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Whether a floating block read now borrows the map (so a test that holds
/// one tests a view, not a copy).
fn reader_borrows(store: &BlockStore, reader: &mut BlockReader) -> bool {
    store.read_view(&hash_of(7), 0, true, reader).unwrap();
    reader.borrows_map()
}

#[test]
fn a_view_outlives_the_rolling_gc_that_unlinks_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Rolling, 1);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    merge(&store, 3 * CYCLE, 2 * CYCLE);
    let mut reader = BlockReader::new();
    let view = store
        .read_view_by_level(25, true, &mut reader)
        .unwrap()
        .unwrap();
    assert_eq!(view.to_owned(), block(25));
    let before = files(dir.path());

    // Two more cycles cemented: rolling 1 keeps only the newest chunk, so
    // the GC unlinks the one level 25 is in.
    store_levels(&store, 3 * CYCLE + 1, 5 * CYCLE);
    merge(&store, 5 * CYCLE, 4 * CYCLE);
    assert!(store.read(&hash_of(25), 0, true).unwrap().is_none());
    assert!(
        some_file_goes(&store, dir.path(), &before),
        "the GC unlinked no file: the test proves nothing"
    );
    assert_eq!(view.to_owned(), block(25));
}

#[test]
fn a_view_outlives_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Full, 0);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    merge(&store, 3 * CYCLE, 2 * CYCLE);
    let store = reopened(store, dir.path(), mode, offset);
    let mut floating = BlockReader::new();
    let mut cemented = BlockReader::new();
    store
        .read_view(&hash_of(50), 0, true, &mut floating)
        .unwrap();
    store.read_view_by_level(3, false, &mut cemented).unwrap();
    assert!(floating.borrows_map() && cemented.borrows_map());
    drop(store);
    // The reader still shows its block, from maps the store let go of.
    assert_eq!(owned(floating.block().unwrap()), Some(block(50)));
    assert_eq!(
        owned(cemented.block().unwrap()),
        Some(Block {
            metadata: None,
            ..block(3)
        })
    );
}

/// Flips one byte of the first file under `dir` holding `needle`.
fn damage(dir: &Path, needle: &[u8]) {
    for p in files(dir) {
        let mut bytes = std::fs::read(&p).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at] ^= 0x20;
            std::fs::write(&p, bytes).unwrap();
            return;
        }
    }
    panic!("no file holds {:?}", String::from_utf8_lossy(needle));
}

#[test]
fn a_damaged_floating_record_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let store = filled(dir.path(), mode, offset, 30);
    drop(store);
    damage(dir.path(), b"metadata 17");
    let store = BlockStore::load(dir.path(), options(mode, offset), &hash_of(0)).unwrap();
    let mut reader = BlockReader::new();
    let r = store.read_view(&hash_of(17), 0, true, &mut reader);
    assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
    assert_eq!(reader.block().ok().flatten(), None);
    // Its neighbours read as before.
    let b = store.read_view(&hash_of(18), 0, true, &mut reader).unwrap();
    assert_eq!(owned(b), Some(block(18)));
}

/// `options` with cemented metadata stored uncompressed (zstd level 0).
fn stored_options(mode: HistoryMode, offset: u32) -> tzstore::block::store::BlockStoreOptions {
    tzstore::block::store::BlockStoreOptions {
        zstd_level: 0,
        ..options(mode, offset)
    }
}

/// With metadata stored uncompressed, a cemented view lends its metadata
/// from the zip's map (no decompression, no copy), and equals the copy.
#[test]
fn stored_metadata_is_lent_from_the_zip() {
    for (mode, offset) in [(HistoryMode::Archive, 0), (HistoryMode::Full, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let opts = stored_options(mode, offset);
        let store = BlockStore::create(dir.path(), opts.clone(), &block(0).as_ref()).unwrap();
        store_levels(&store, 1, 5 * CYCLE);
        merge(&store, 5 * CYCLE, 4 * CYCLE);
        let mut reader = BlockReader::new();
        assert_views_match_copies(&store, &mut reader, 5 * CYCLE);
        // Level 3M+ of the last cycle kept its metadata (FULL 1 keeps one
        // cycle's); level 17 only in ARCHIVE.
        let level = 3 * CYCLE + 5;
        let b = store.read_view_by_level(level, true, &mut reader).unwrap();
        assert_eq!(owned(b), Some(block(level)));
        assert!(
            reader.borrows_map() && !reader.copies_metadata(),
            "{mode:?}"
        );
        // The zip holds the metadata as it is.
        let zips: Vec<PathBuf> = files(dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "zip"))
            .collect();
        assert!(!zips.is_empty());
        let text = format!("metadata {level}");
        assert!(zips.iter().any(|z| {
            let b = std::fs::read(z).unwrap();
            b.windows(text.len()).any(|w| w == text.as_bytes())
        }));
    }
    // The default (zstd level 3) decompresses into the reader.
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path(), HistoryMode::Archive, 0, 5 * CYCLE);
    merge(&store, 5 * CYCLE, 4 * CYCLE);
    let mut reader = BlockReader::new();
    store.read_view_by_level(17, true, &mut reader).unwrap();
    assert!(reader.borrows_map() && reader.copies_metadata());
}

/// A stored metadata entry whose bytes were damaged is never shown: its
/// CRC is checked the first time a map lends it.
#[test]
fn a_damaged_stored_metadata_entry_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let opts = stored_options(mode, offset);
    let store = BlockStore::create(dir.path(), opts.clone(), &block(0).as_ref()).unwrap();
    store_levels(&store, 1, 5 * CYCLE);
    merge(&store, 5 * CYCLE, 4 * CYCLE);
    drop(store);
    damage(dir.path(), b"metadata 17");
    let store = BlockStore::load(dir.path(), opts, &hash_of(0)).unwrap();
    let mut reader = BlockReader::new();
    let r = store.read_view_by_level(17, true, &mut reader);
    assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
    assert_eq!(reader.block().ok().flatten(), None);
    assert!(store.read_by_level(17, true).is_err());
    // Without its metadata, and its neighbours, read as before.
    let b = store.read_view_by_level(17, false, &mut reader).unwrap();
    assert_eq!(owned(b), store.read_by_level(17, false).unwrap());
    let b = store.read_view_by_level(18, true, &mut reader).unwrap();
    assert_eq!(owned(b), Some(block(18)));
}

/// A reader that still holds a view does not hold the store: the closed
/// store can be opened read-write again at once (its lock is free).
#[test]
fn a_reader_holding_a_view_does_not_keep_the_closed_stores_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let store = filled(dir.path(), mode, offset, 3);
    let store = reopened(store, dir.path(), mode, offset);
    let mut reader = BlockReader::new();
    let view = store.read_view(&hash_of(2), 0, true, &mut reader).unwrap();
    assert_eq!(owned(view), Some(block(2)));
    drop(store);
    let again = BlockStore::load(dir.path(), options(mode, offset), &hash_of(0)).unwrap();
    assert_eq!(again.read(&hash_of(2), 0, true).unwrap(), Some(block(2)));
    assert_eq!(owned(reader.block().unwrap()), Some(block(2)));
}

/// The files under `dir` this process still maps after they were deleted.
fn mapped_deleted_files(dir: &Path) -> BTreeSet<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = dir.to_str().unwrap();
    maps.lines()
        .filter_map(|l| l.find(dir).map(|at| &l[at..]))
        .filter_map(|path| path.strip_suffix(" (deleted)"))
        .map(str::to_owned)
        .collect()
}

/// A reader keeps a copy of each floating store's map for the reads that
/// find their block placed; once a merge changed the store's floating
/// stores, its next read lets go of the retired ones' maps, even one that
/// finds its block in the first store and looks at no other.
#[test]
fn a_reader_lets_go_of_retired_stores_maps_at_its_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, offset) = (HistoryMode::Archive, 0);
    let store = filled(dir.path(), mode, offset, 3 * CYCLE);
    merge(&store, 3 * CYCLE, 2 * CYCLE);
    store_levels(&store, 3 * CYCLE + 1, 4 * CYCLE);
    // Reopened: a read-write and a read-only floating store, both mapped.
    let store = reopened(store, dir.path(), mode, offset);
    let mut reader = BlockReader::new();
    for level in 2 * CYCLE + 1..=4 * CYCLE {
        for _ in 0..2 {
            let view = store.read_view(&hash_of(level), 0, true, &mut reader);
            assert_eq!(owned(view.unwrap()), Some(block(level)), "level {level}");
        }
    }
    let before = files(dir.path());
    merge(&store, 4 * CYCLE, 3 * CYCLE);
    assert!(
        some_file_goes(&store, dir.path(), &before),
        "the merge retired no file: the test proves nothing"
    );
    // The retired store's files go one by one in the background: wait
    // until the one the reader maps is gone.
    let mut waited = 0;
    while mapped_deleted_files(dir.path()).is_empty() && waited < 200 {
        store.stats().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    assert!(
        !mapped_deleted_files(dir.path()).is_empty(),
        "the reader held no retired store's map: the test proves nothing"
    );
    // Another reader places a new block in the new read-write store (large
    // enough to have its file mapped again), so that this reader finds it
    // in the first floating store without looking at the others.
    let mut big = block(4 * CYCLE + 1);
    big.contents = vec![7; 2 << 20];
    store.store(&big.as_ref()).unwrap();
    let mut other = BlockReader::new();
    for _ in 0..2 {
        let view = store.read_view(&big.hash, 0, true, &mut other).unwrap();
        assert_eq!(owned(view).as_ref(), Some(&big));
    }
    assert!(
        other.borrows_map(),
        "the new block is not mapped: the test proves nothing"
    );
    drop(other);
    let view = store.read_view(&big.hash, 0, true, &mut reader).unwrap();
    assert_eq!(owned(view).as_ref(), Some(&big));
    assert_eq!(mapped_deleted_files(dir.path()), BTreeSet::new());
}
