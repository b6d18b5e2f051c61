//! indexed_file: append/read/header, header-in-value, replace, reopen, torn
//! values tail, damaged value, read-only follower, background compaction.

use std::fs;

use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::{Error, OpenOptions};

fn cfg(header_in_value: bool, read_only: bool) -> IndexedFileConfig {
    let mut open = OpenOptions::default().no_fsync();
    open.read_only = read_only;
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value,
        log_size: 16,
        open,
    }
}

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = (i as u32).to_be_bytes().to_vec();
    v.extend(std::iter::repeat_n(i as u8, (i % 50) as usize));
    v
}

#[test]
fn append_read_header_replace_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let f = IndexedFile::open(dir.path(), cfg(false, false)).unwrap();
    for i in 0..200 {
        f.append(&key(i), Some(&[i as u8; 4]), &value(i), i % 50 == 0)
            .unwrap();
    }
    f.append(&key(7), Some(&[9; 4]), b"replaced", false)
        .unwrap();
    let check = |f: &IndexedFile| {
        assert_eq!(f.len(), 200);
        for i in 0..200 {
            let (v, h) = f.read(&key(i)).unwrap().unwrap();
            let mut hb = [0u8; 4];
            assert!(f.header(&key(i), &mut hb).unwrap());
            if i == 7 {
                assert_eq!(
                    (v.as_slice(), h.as_slice()),
                    (&b"replaced"[..], &[9u8; 4][..])
                );
            } else {
                assert_eq!((v, h), (value(i), vec![i as u8; 4]));
            }
            assert_eq!(hb.to_vec(), f.read(&key(i)).unwrap().unwrap().1);
        }
        assert_eq!(f.read(&key(999)).unwrap(), None);
        assert!(!f.mem(&key(999)).unwrap());
        assert!(!f.header(&key(999), &mut [0; 4]).unwrap());
    };
    check(&f);
    // Bad input.
    assert!(matches!(
        f.append(&[0; 7], Some(&[0; 4]), b"x", false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.append(&key(1), Some(&[0; 3]), b"x", false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.append(&key(1), None, b"x", false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.header(&key(1), &mut [0; 5]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        IndexedFile::open(dir.path(), cfg(false, false)),
        Err(Error::Locked(_))
    ));
    drop(f);
    let f = IndexedFile::open(dir.path(), cfg(false, false)).unwrap();
    check(&f);
}

#[test]
fn header_in_value_variant() {
    let dir = tempfile::tempdir().unwrap();
    let f = IndexedFile::open(dir.path(), cfg(true, false)).unwrap();
    f.append(&key(1), None, b"HEADand the rest", true).unwrap();
    let mut h = [0u8; 4];
    assert!(f.header(&key(1), &mut h).unwrap());
    assert_eq!(&h, b"HEAD");
    assert_eq!(f.read(&key(1)).unwrap().unwrap().0, b"HEADand the rest");
    assert!(matches!(
        f.append(&key(2), None, b"abc", false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.append(&key(2), Some(b"HEAD"), b"HEADx", false),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn torn_values_tail_is_cut_and_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let f = IndexedFile::open(dir.path(), cfg(false, false)).unwrap();
    for i in 0..10 {
        f.append(&key(i), Some(&[1; 4]), &value(i), false).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let values = dir.path().join("gen.0").join("values");
    let len = fs::metadata(&values).unwrap().len();
    // A partial record at the end (a crash mid-append) is cut at open.
    let mut bytes = fs::read(&values).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 100, 1, 2, 3]);
    fs::write(&values, &bytes).unwrap();
    let f = IndexedFile::open(dir.path(), cfg(false, false)).unwrap();
    assert_eq!(fs::metadata(&values).unwrap().len(), len);
    f.append(&key(50), Some(&[2; 4]), b"after", true).unwrap();
    assert_eq!(f.read(&key(50)).unwrap().unwrap().0, b"after");
    drop(f);
    // A flipped byte inside a stored value is reported, never returned.
    let mut bytes = fs::read(&values).unwrap();
    bytes[len as usize + 6] ^= 0x55;
    fs::write(&values, &bytes).unwrap();
    let mut c = cfg(false, true);
    c.open.read_only = true;
    let ro = IndexedFile::open(dir.path(), c).unwrap();
    assert!(matches!(ro.read(&key(50)), Err(Error::Corrupted(_))));
    assert_eq!(ro.read(&key(3)).unwrap().unwrap().0, value(3));
}

#[test]
fn gc_keeps_selected_keys_and_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    let f = IndexedFile::open(dir.path(), cfg(false, false)).unwrap();
    for i in 0..300 {
        f.append(&key(i), Some(&[i as u8; 4]), &value(i), false)
            .unwrap();
    }
    let ro = IndexedFile::open(dir.path(), cfg(false, true)).unwrap();
    f.gc(|k| u64::from_be_bytes(k.try_into().unwrap()) % 2 == 0)
        .unwrap();
    // Appends while the compaction runs are kept, even for dropped keys.
    for i in 1000..1100 {
        f.append(&key(i), Some(&[0; 4]), &value(i), false).unwrap();
    }
    f.append(&key(1), Some(&[1; 4]), b"re-added", false)
        .unwrap();
    f.await_gc().unwrap();
    let check = |f: &IndexedFile| {
        for i in 0..300 {
            let got = f.read(&key(i)).unwrap();
            if i == 1 {
                assert_eq!(got.unwrap().0, b"re-added");
            } else if i % 2 == 0 {
                assert_eq!(got.unwrap(), (value(i), vec![i as u8; 4]), "{i}");
            } else {
                assert_eq!(got, None, "{i}");
            }
        }
        for i in 1000..1100 {
            assert_eq!(f.read(&key(i)).unwrap().unwrap().0, value(i));
        }
        assert_eq!(f.len(), 150 + 1 + 100);
    };
    check(&f);
    f.flush().unwrap();
    ro.sync().unwrap();
    check(&ro);
    assert!(!dir.path().join("gen.0").exists());
    drop(f);
    check(&IndexedFile::open(dir.path(), cfg(false, false)).unwrap());
}

/// Appends made without a flush are held back from the index until their
/// bytes are fsynced; a clean close still keeps them.
#[test]
fn unflushed_appends_survive_a_clean_close() {
    let d = tempfile::tempdir().unwrap();
    let cfg = || IndexedFileConfig {
        key_size: 4,
        header_size: 2,
        header_in_value: false,
        log_size: 0,
        open: OpenOptions::read_write(),
    };
    let f = IndexedFile::open(d.path(), cfg()).unwrap();
    f.append(b"abcd", Some(b"hh"), b"value", false).unwrap();
    assert_eq!(f.len(), 1);
    drop(f);
    let f = IndexedFile::open(d.path(), cfg()).unwrap();
    assert_eq!(f.read(b"abcd").unwrap().unwrap().0, b"value");
}
