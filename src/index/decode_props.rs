//! Property tests of the index's decoders: arbitrary bytes in, never a
//! panic nor an allocation driven by a field read from disk; what decodes
//! re-encodes to the same bytes.

use proptest::collection::vec;
use proptest::prelude::*;

use super::data::{DataFile, Header};
use super::log;
use super::meta::{self, Meta};
use crate::error::Error;
use crate::io::StdFs;

fn file_of(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).expect("write");
    (dir, path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn log_header_decoder(b in vec(any::<u8>(), 0..80), g in any::<u64>()) {
        if let Some((hg, k, v, f)) = log::decode_header(&b) {
            prop_assert_eq!(log::header_state(&b[..32], hg, k as usize, v as usize, f),
                log::HeaderState::Valid);
        }
        let _ = log::header_state(&b, g, 8, 8, 0);
    }

    #[test]
    fn log_entry_decoder(b in vec(any::<u8>(), 0..80), kv_len in 0usize..100, g in any::<u64>(), at in any::<u64>()) {
        if let Some(kv) = log::checked_entry(&b, kv_len, g, at) {
            prop_assert_eq!(kv.len(), kv_len);
            prop_assert_eq!(b.len(), kv_len + 4);
        }
    }

    #[test]
    fn meta_decoder(b in vec(any::<u8>(), 0..48)) {
        if let Ok(m) = Meta::decode(&b) {
            prop_assert_eq!(&m.encode()[..], &b[..]);
        }
    }

    #[test]
    fn meta_round_trip(k in any::<u32>(), v in any::<u32>(), f in any::<u32>(), g in any::<u64>(), flip in 0usize..meta::LEN * 8) {
        let m = Meta { key_size: k, value_size: v, flags: f, data_generation: g };
        let mut b = m.encode();
        prop_assert_eq!(Meta::decode(&b), Ok(m));
        b[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(Meta::decode(&b).is_err());
    }

    #[test]
    fn data_header_decoder(b in vec(any::<u8>(), 0..80)) {
        let _ = Header::decode(std::path::Path::new("data"), &b);
    }

    /// A checksummed header with any count and fan-out size, in front of
    /// any bytes: refused or read, without a huge allocation or loop.
    #[test]
    fn data_file_with_any_header_fields(
        fan_bits in 0u32..64,
        count in prop_oneof![0u64..64, any::<u64>()],
        tail in vec(any::<u8>(), 0..600),
    ) {
        let h = Header {
            ksize: 8, vsize: 8, flags: 0, fan_bits, generation: 1, count,
            fan_crc: 0, hashes_crc: 0, entries_crc: 0, live: count,
            base_generation: 0,
        };
        let mut bytes = h.encode().to_vec();
        bytes.extend_from_slice(&tail);
        let (_d, path) = file_of(&bytes);
        match DataFile::open(&StdFs::new(false), &path, 8, 8, 0) {
            Ok(d) => prop_assert_eq!(d.count(), count),
            Err(Error::Corrupted(m)) => prop_assert!(m.contains("offset") || m.contains("bytes")),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    /// Any bytes as a log: replay stops with `Corrupted` or reads whole
    /// entries only; scan never fails on content.
    #[test]
    fn log_replay_of_any_bytes(body in vec(any::<u8>(), 0..400), valid_header in any::<bool>()) {
        let mut bytes = Vec::new();
        if valid_header {
            let dir = tempfile::tempdir().expect("tempdir");
            let w = log::LogWriter::create(&StdFs::new(false), dir.path(), 2, 8, 8, 0).expect("create");
            drop(w);
            bytes = std::fs::read(log::path(dir.path(), 2)).expect("read");
        }
        bytes.extend_from_slice(&body);
        let (_d, path) = file_of(&bytes);
        let fs = StdFs::new(false);
        let f = crate::io::FileSystem::open(&fs, &path, crate::io::OpenMode::Read).expect("open");
        let len = bytes.len() as u64;
        let esize = log::entry_size(8, 8) as u64;
        match log::replay(f.as_ref(), 2, 8, 8, 0, 0, |k, v| assert_eq!((k.len(), v.len()), (8, 8))) {
            Ok(r) => {
                prop_assert!(r.end <= len);
                prop_assert!(r.end == 0 || (r.end - log::HEADER) % esize == 0);
                // A tail of whole entries starts with an invalid one.
                if r.end != 0 && len - r.end >= esize {
                    let at = r.end as usize;
                    prop_assert!(log::checked_entry(&bytes[at..at + esize as usize], 16, 2, r.end).is_none());
                }
            }
            Err(Error::Corrupted(m)) => prop_assert!(m.contains("offset"), "{}", m),
            Err(e) => prop_assert!(false, "{}", e),
        }
        let s = log::scan(f.as_ref(), 2, 8, 8, 0, |_, _| Ok(())).expect("scan");
        prop_assert!(s.tail <= len);
    }
}
