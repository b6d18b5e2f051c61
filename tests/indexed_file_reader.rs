//! Borrowed value reads of an indexed file (`ValueReader`): a view equals
//! the copying read, from a map of the values file (records present at
//! open) or the reader's own copy (records appended since), for both
//! layouts (header in the index, header in the value); a miss leaves the
//! reader empty; a damaged record is never shown; and a view stays valid
//! and unchanged while a GC switches generations and unlinks the values
//! file it points into, and after the store is closed. Reads placed by
//! the table of places return a key's newest value, after it is bound
//! again and while a writer binds keys on another thread.

use std::path::Path;

use tzstore::indexed_file::value_reader::ValueReader;
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::{Error, OpenOptions};

fn cfg(header_in_value: bool) -> IndexedFileConfig {
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value,
        log_size: 64,
        open: OpenOptions::default().no_fsync(),
    }
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn header(i: u64) -> [u8; 4] {
    (i as u32 * 7 + 1).to_be_bytes()
}

/// Values of 4..2,000 bytes; with the header in the value, it starts it.
fn value(i: u64, header_in_value: bool) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 4 + (i as usize * 37) % 2000];
    if header_in_value {
        v[..4].copy_from_slice(&header(i));
    }
    v
}

fn append(f: &IndexedFile, i: u64, header_in_value: bool) {
    let h = header(i);
    let hdr = if header_in_value { None } else { Some(&h[..]) };
    f.append(&key(i), hdr, &value(i, header_in_value), false)
        .unwrap();
}

/// `n` values appended and flushed, the store reopened so a map covers
/// them, then `more` appended (read from the unmapped tail).
fn store(dir: &Path, header_in_value: bool, n: u64, more: u64) -> IndexedFile {
    let f = IndexedFile::open(dir, cfg(header_in_value)).unwrap();
    (0..n).for_each(|i| append(&f, i, header_in_value));
    f.flush().unwrap();
    drop(f);
    let f = IndexedFile::open(dir, cfg(header_in_value)).unwrap();
    (n..n + more).for_each(|i| append(&f, i, header_in_value));
    f
}

#[test]
fn views_equal_copies_mapped_or_not_in_both_layouts() {
    for header_in_value in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let f = store(dir.path(), header_in_value, 300, 50);
        let mut reader = ValueReader::new();
        for i in 0..350 {
            let copy = f.read(&key(i)).unwrap().unwrap();
            let view = f.read_view(&key(i), &mut reader).unwrap().unwrap();
            assert_eq!((view.0.to_vec(), view.1.to_vec()), copy, "key {i}");
            assert_eq!(view.0, &value(i, header_in_value)[..]);
            assert_eq!(view.1, &header(i)[..]);
            // Present at open: a view into the map; appended since: a copy.
            assert_eq!(reader.borrows_map(), i < 300, "key {i}");
        }
        // A value replaced since open is read from its new record.
        let h6 = header(6);
        let hdr = if header_in_value { None } else { Some(&h6[..]) };
        f.append(&key(5), hdr, &value(6, header_in_value), false)
            .unwrap();
        let view = f.read_view(&key(5), &mut reader).unwrap().unwrap();
        assert_eq!(view.0, &value(6, header_in_value)[..]);
    }
}

#[test]
fn a_miss_or_a_bad_key_leaves_the_reader_holding_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = store(dir.path(), false, 20, 0);
    let mut reader = ValueReader::new();
    assert!(f.read_view(&key(3), &mut reader).unwrap().is_some());
    assert!(f.read_view(&key(99), &mut reader).unwrap().is_none());
    assert_eq!(reader.value(), None);
    assert!(f.read_view(&key(3), &mut reader).unwrap().is_some());
    let r = f.read_view(b"short", &mut reader);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert!(f.read_view(&key(3), &mut reader).unwrap().is_some());
    reader.release();
    assert_eq!(reader.value(), None);
}

#[test]
fn a_view_outlives_the_gc_that_unlinks_its_values_file_and_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let f = store(dir.path(), false, 200, 0);
    let mut kept = ValueReader::new();
    let mut dropped = ValueReader::new();
    let view_kept = f.read_view(&key(10), &mut kept).unwrap().unwrap();
    let view_dropped = f.read_view(&key(11), &mut dropped).unwrap().unwrap();
    let values_before = values_files(dir.path());

    // Keeps the even keys: key 11 is gone, the old values file unlinked.
    f.gc(|k| u64::from_be_bytes(k.try_into().unwrap()) % 2 == 0)
        .unwrap();
    f.await_gc().unwrap();
    assert!(f.read(&key(11)).unwrap().is_none());
    let values_after = values_files(dir.path());
    assert!(
        values_before.iter().any(|p| !values_after.contains(p)),
        "the GC unlinked no values file: the test proves nothing ({values_before:?} -> {values_after:?})"
    );
    assert_eq!(view_kept.0, &value(10, false)[..]);
    assert_eq!(view_dropped.0, &value(11, false)[..]);
    assert_eq!(view_dropped.1, &header(11)[..]);

    drop(f);
    assert_eq!(view_kept.0, &value(10, false)[..]);
    assert_eq!(
        kept.value().map(|(v, _)| v.to_vec()),
        Some(value(10, false))
    );
}

/// A reader keeps the map of the generation it last read between reads;
/// after a GC moved the values to a new file, at other offsets, the same
/// reader reads the new generation's bytes, never the old map's.
#[test]
fn a_reader_used_across_a_gc_reads_the_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let f = store(dir.path(), false, 200, 0);
    let mut reader = ValueReader::new();
    for i in 0..200 {
        let (v, h) = f.read_view(&key(i), &mut reader).unwrap().unwrap();
        assert_eq!((v, h), (&value(i, false)[..], &header(i)[..]));
    }
    // Keeps the keys from 100 on: each is at a lower offset afterwards.
    f.gc(|k| u64::from_be_bytes(k.try_into().unwrap()) >= 100)
        .unwrap();
    f.await_gc().unwrap();
    for i in (0..200).rev() {
        let got = f
            .read_view(&key(i), &mut reader)
            .unwrap()
            .map(|(v, h)| (v.to_vec(), h.to_vec()));
        let want = (i >= 100).then(|| (value(i, false), header(i).to_vec()));
        assert_eq!(got, want, "key {i}");
    }
}

/// The values files under `dir`.
fn values_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let v = p.join("values");
            if v.exists() {
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn a_damaged_record_is_never_shown_and_its_neighbours_are() {
    let dir = tempfile::tempdir().unwrap();
    let f = store(dir.path(), false, 40, 0);
    drop(f);
    // Flip one byte inside value 17 (its bytes are all 17).
    let path = values_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let v17 = value(17, false);
    let at = bytes
        .windows(v17.len())
        .position(|w| w == &v17[..])
        .expect("value 17 is in the file");
    bytes[at + v17.len() / 2] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    // Read-only: a read-write open scans the values and refuses the damage.
    let mut ro = cfg(false);
    ro.open.read_only = true;
    let f = IndexedFile::open(dir.path(), ro).unwrap();
    let mut reader = ValueReader::new();
    for _ in 0..2 {
        // Twice: a failed check never marks the record checked.
        let r = f.read_view(&key(17), &mut reader);
        assert!(matches!(r, Err(Error::Corrupted(_))), "{r:?}");
        assert_eq!(reader.value(), None);
    }
    for i in [16, 18] {
        let view = f.read_view(&key(i), &mut reader).unwrap().unwrap();
        assert_eq!(view.0, &value(i, false)[..]);
        assert!(reader.borrows_map());
    }
}

/// A value of `len` bytes naming key `k` and its `version`.
fn versioned(k: u64, version: u64, len: usize) -> Vec<u8> {
    let mut v = vec![version as u8; len];
    v[..8].copy_from_slice(&version.to_le_bytes());
    v[8..16].copy_from_slice(&k.to_le_bytes());
    v
}

/// The version a value of [`versioned`] names, after checking its key.
fn version_of(k: u64, v: &[u8]) -> u64 {
    assert_eq!(v[8..16], k.to_le_bytes(), "another key's value");
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

/// A read placed by the table of places (the record found through the
/// index once, in a map) still returns the newest value after the key is
/// bound again, whether the new record is in the unmapped tail or mapped.
#[test]
fn a_placed_key_bound_again_reads_its_newest_value() {
    let dir = tempfile::tempdir().unwrap();
    let f = store(dir.path(), false, 100, 0);
    let mut reader = ValueReader::new();
    let k = 7;
    for _ in 0..2 {
        let (v, _) = f.read_view(&key(k), &mut reader).unwrap().unwrap();
        assert_eq!(v, value(k, false));
        assert!(reader.borrows_map());
    }
    f.append(&key(k), Some(&header(k)), &versioned(k, 1, 100), false)
        .unwrap();
    let (v, _) = f.read_view(&key(k), &mut reader).unwrap().unwrap();
    assert_eq!(version_of(k, v), 1);
    assert!(!reader.borrows_map(), "read from the tail");
    // Past a MiB more, the tail is mapped again: the new record is read
    // from the map.
    f.append(&key(k), Some(&header(k)), &versioned(k, 2, 100), false)
        .unwrap();
    for i in 1000..1600 {
        f.append(&key(i), Some(&header(i)), &[0; 2000], false)
            .unwrap();
    }
    for _ in 0..2 {
        let (v, h) = f.read_view(&key(k), &mut reader).unwrap().unwrap();
        assert_eq!((version_of(k, v), h), (2, &header(k)[..]));
        assert!(reader.borrows_map());
    }
}

/// Readers on other threads never see a value older than one whose
/// append returned before their read began, while a writer binds keys
/// again and again: no read ever leaves an older record's place behind
/// in the table of places. With few keys, the writer binds a key again
/// while a read of it is between its index lookup and its fill; with
/// many, keys share slots of the table (600 keys in 2^15 slots), so
/// places of different keys replace each other.
#[test]
fn concurrent_readers_never_see_a_replaced_value() {
    concurrent_rebinds(8, 500, 100, 1 << 20);
    concurrent_rebinds(600, 40, 1000, 0);
}

fn concurrent_rebinds(keys: u64, rounds: u64, len: usize, filler: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let f = Arc::new(IndexedFile::open(dir.path(), cfg(false)).unwrap());
    let versions: Arc<Vec<AtomicU64>> = Arc::new((0..keys).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    for k in 0..keys {
        f.append(&key(k), Some(&header(k)), &versioned(k, 0, len), false)
            .unwrap();
    }
    let readers: Vec<_> = (0..2u64)
        .map(|t| {
            let (f, versions, done) = (f.clone(), versions.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reader = ValueReader::new();
                let mut x = t + 1;
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % keys;
                    let least = versions[k as usize].load(Ordering::Acquire);
                    let (v, _) = f.read_view(&key(k), &mut reader).unwrap().unwrap();
                    let got = version_of(k, v);
                    assert!(
                        got >= least,
                        "key {k}: version {got} read after {least} was acknowledged"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 1..=rounds {
        if filler > 0 {
            // Past a MiB: the next read maps the last round's records.
            f.append(&key(u64::MAX), Some(&header(0)), &vec![0; filler], false)
                .unwrap();
        }
        for k in 0..keys {
            f.append(&key(k), Some(&header(k)), &versioned(k, round, len), false)
                .unwrap();
            versions[k as usize].store(round, Ordering::Release);
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}
