//! Records are checked once per map (issue 20, point 2): the first read of
//! a floating or cemented record through a map checks its checksum; later
//! reads through the same map do not (the bytes of an append-only file
//! cannot change under it by tzstore's hand); a new map checks again, and
//! `check` always does.
//!
//! Each test changes a byte of a record behind a live handle (as another
//! program could) to see which reads checked: the live handle's next read
//! returns the changed byte (it did not check again: this fails if every
//! read checked), a new handle's read is CORRUPTED (it fails if the first
//! read of a map did not check).

mod cemented_util;

use std::fs::OpenOptions as FsOpen;
use std::os::unix::fs::FileExt;
use std::path::Path;

use tzstore::block::cemented::Cemented;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::{Block, Hash};
use tzstore::{Error, OpenOptions};

fn flip_byte(path: &Path, at: u64) {
    let f = FsOpen::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

/// Where `needle` starts in the file at `path`.
fn find_in_file(path: &Path, needle: &[u8]) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("bytes in the file") as u64
}

/// `len` bytes that occur nowhere else in these tests' files (xorshift
/// seeded by `seed`).
fn unique_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn floating_block(n: u8) -> Block {
    let mut hash: Hash = [0x11; 32];
    hash[0] = n;
    Block {
        hash,
        level: i32::from(n),
        predecessor: [0x22; 32],
        contents: unique_bytes(u64::from(n), 4096),
        metadata: Some(b"receipts".repeat(100)),
    }
}

#[test]
fn a_floating_record_is_checked_on_its_first_read_through_each_map() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::read_write().no_fsync();
    let blocks: Vec<Block> = (1..=3).map(floating_block).collect();
    let fl = Floating::open(dir.path(), FloatingKind::Rw, &opts).unwrap();
    for b in &blocks {
        fl.append(&b.as_ref(), &[], true).unwrap();
    }
    drop(fl);
    // A new handle maps the whole file: its reads come from the map.
    let fl = Floating::open(dir.path(), FloatingKind::Rw, &opts).unwrap();
    let target = &blocks[1];
    assert_eq!(fl.read_block(&target.hash).unwrap().as_ref(), Some(target));

    let file = dir.path().join(FloatingKind::Rw.file_name());
    let at = find_in_file(&file, &target.contents[100..132]) + 10;
    flip_byte(&file, at);

    // Checked in this map already: the changed byte is returned as is.
    let again = fl.read_block(&target.hash).unwrap().unwrap();
    assert_eq!(
        again.contents[110],
        target.contents[110] ^ 0x40,
        "the read checked again"
    );
    // A record this map never returned is checked on its first read.
    assert_eq!(
        fl.read_block(&blocks[2].hash).unwrap().as_ref(),
        Some(&blocks[2])
    );
    drop(fl);

    // A new map checks before it returns anything.
    let ro = Floating::open(dir.path(), FloatingKind::Rw, &OpenOptions::read_only()).unwrap();
    match ro.read_block(&target.hash) {
        Err(Error::Corrupted(msg)) => assert!(msg.contains("checksum"), "{msg}"),
        other => panic!("a new map returned {other:?}"),
    }
    assert_eq!(
        ro.read_block(&blocks[0].hash).unwrap().as_ref(),
        Some(&blocks[0])
    );
}

#[test]
fn a_cemented_record_is_checked_on_its_first_read_and_by_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::read_write().no_fsync();
    let blocks: Vec<Block> = (0..=63)
        .map(|level| Block {
            hash: cemented_util::hash(9, level),
            level,
            predecessor: cemented_util::hash(9, level - 1),
            contents: unique_bytes(1000 + level as u64, 200),
            metadata: None,
        })
        .collect();
    {
        let s = Cemented::open(dir.path(), &opts, 0).unwrap();
        s.cement(&cemented_util::refs(&blocks), true, true).unwrap();
    }
    let target = &blocks[40];
    let level = target.level;
    let s = Cemented::open(dir.path(), &opts, 0).unwrap();
    assert_eq!(
        s.read_by_level(level, false).unwrap().as_ref(),
        Some(target)
    );

    let chunk = dir.path().join("0_63");
    let at = find_in_file(&chunk, &target.contents[..32]) + 5;
    flip_byte(&chunk, at);

    let again = s.read_by_level(level, false).unwrap().unwrap();
    assert_eq!(
        again.contents[5],
        target.contents[5] ^ 0x40,
        "the read checked again"
    );
    // A check reads every record back, whatever reads checked before.
    assert!(
        matches!(s.check_consistency(None), Err(Error::Corrupted(_))),
        "check_consistency passed over the changed record"
    );
    drop(s);

    let s = Cemented::open(dir.path(), &opts, 0).unwrap();
    match s.read_by_level(level, false) {
        Err(Error::Corrupted(msg)) => assert!(msg.contains("checksum"), "{msg}"),
        other => panic!("a new map returned {other:?}"),
    }
    let other = &blocks[3];
    assert_eq!(
        s.read_by_level(other.level, false).unwrap().as_ref(),
        Some(other)
    );
}
