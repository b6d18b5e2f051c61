//! Property tests of the kv decoders on arbitrary bytes: the journal
//! record payload decoder, the generation file decoder, and the whole
//! journal as a read-write open reads it. Never a panic; never an
//! allocation beyond what the bytes hold (each test runs in a child
//! process under a 1 GiB address-space limit, so a length field taken at
//! its word would abort it); an error is `Corrupted` naming the file.

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tzstore::io::frame;
use tzstore::kv::journal::Op;
use tzstore::kv::{Kv, generation, journal};
use tzstore::{Error, OpenOptions};

/// Runs `body` in a child process of this test binary under RLIMIT_AS.
fn limited(name: &str, body: impl FnOnce()) {
    if !common::is_child(name) {
        let mut child = common::spawn_child(name, &[]);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{name}: child failed ({status:?}); rerun with --nocapture and TZS_TEST_CHILD={name}"
        );
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: setrlimit with a valid struct; it only lowers this process's limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    body();
}

/// Bytes that look like a journal payload now and then: the magic, then
/// arbitrary words (lengths near the edges included).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        any::<u32>().prop_map(|w| w.to_be_bytes().to_vec()),
        any::<u64>().prop_map(|w| w.to_be_bytes().to_vec()),
        Just(u32::MAX.to_be_bytes().to_vec()),
        Just(u64::MAX.to_be_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
        Just(vec![1u8]),
        Just(vec![2u8]),
        Just(b"a/b".to_vec()),
    ];
    (any::<bool>(), prop::collection::vec(word, 0..12)).prop_map(|(magic, words)| {
        let mut p = if magic {
            b"TZSKVJ01".to_vec()
        } else {
            Vec::new()
        };
        for w in words {
            p.extend_from_slice(&w);
        }
        p
    })
}

#[test]
fn journal_payload_decoder_never_panics_nor_allocates_from_a_length() {
    limited(
        "journal_payload_decoder_never_panics_nor_allocates_from_a_length",
        || {
            let mut runner = TestRunner::new(Config::with_cases(4096));
            runner
                .run(&payload(), |p| {
                    if let Ok(ops) = journal::decode_payload(&p) {
                        // Whatever decodes fits in the bytes it came from.
                        let bytes: usize = ops
                            .iter()
                            .map(|op| match op {
                                Op::Set(k, v) => k.path().len() + v.len(),
                                Op::Remove(k) => k.path().len(),
                            })
                            .sum();
                        prop_assert!(bytes <= p.len());
                        prop_assert!(ops.iter().all(|op| !op.key().is_root()));
                    }
                    Ok(())
                })
                .unwrap();
        },
    );
}

#[test]
fn generation_decoder_accepts_only_its_own_encoding() {
    limited("generation_decoder_accepts_only_its_own_encoding", || {
        let mut runner = TestRunner::new(Config::with_cases(4096));
        runner
            .run(&prop::collection::vec(any::<u8>(), 0..40), |b| {
                match generation::decode(&b) {
                    Ok(None) => prop_assert!(b.is_empty()),
                    Ok(Some(s)) => prop_assert_eq!(&generation::encode(s)[..], &b[..]),
                    Err(why) => prop_assert!(why.contains("offset"), "{}", why),
                }
                Ok(())
            })
            .unwrap();
        let mut runner = TestRunner::new(Config::with_cases(1024));
        runner
            .run(&(any::<u64>(), any::<u64>()), |(g, e)| {
                let s = generation::State {
                    generation: g,
                    journal_end: e,
                };
                prop_assert_eq!(generation::decode(&generation::encode(s)), Ok(Some(s)));
                Ok(())
            })
            .unwrap();
    });
}

/// A journal: framed payloads (valid records among them), raw bytes, and
/// lengths near the edges, in any order.
fn journal_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = Just({
        let mut p = b"TZSKVJ01".to_vec();
        p.extend_from_slice(&1u32.to_be_bytes());
        p.push(1);
        p.extend_from_slice(&1u32.to_be_bytes());
        p.push(b'k');
        p.extend_from_slice(&1u64.to_be_bytes());
        p.push(b'v');
        frame::encode(&p).unwrap()
    });
    let piece = prop_oneof![
        valid,
        payload().prop_map(|p| frame::encode(&p).unwrap()),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<u32>().prop_map(|w| w.to_be_bytes().to_vec()),
        Just(0xFFFF_FFF0u32.to_be_bytes().to_vec()),
        Just(vec![0u8; 16]),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

#[test]
fn arbitrary_journal_opens_or_is_corrupted_without_being_changed() {
    limited(
        "arbitrary_journal_opens_or_is_corrupted_without_being_changed",
        || {
            let d = tempfile::tempdir().unwrap();
            let opts = OpenOptions::default().no_fsync();
            drop(Kv::open(d.path(), &opts).unwrap());
            let journal = d.path().join(".tzs-journal");
            let mut runner = TestRunner::new(Config::with_cases(512));
            runner
                .run(&journal_bytes(), |bytes| {
                    std::fs::write(&journal, &bytes).unwrap();
                    let gen_path = d.path().join(".tzs-generation");
                    let gen_before = std::fs::read(&gen_path).unwrap();
                    match Kv::open(d.path(), &opts) {
                        Ok(kv) => drop(kv),
                        Err(Error::Corrupted(m)) => {
                            prop_assert!(m.contains(".tzs-journal"), "{}", m);
                            prop_assert_eq!(std::fs::read(&journal).unwrap(), bytes);
                            prop_assert_eq!(std::fs::read(&gen_path).unwrap(), gen_before);
                        }
                        Err(e) => prop_assert!(false, "{}", e),
                    }
                    let check = Kv::check(d.path(), &opts, false).unwrap();
                    if check.is_ok() {
                        prop_assert!(Kv::open(d.path(), &opts).is_ok());
                    }
                    Ok(())
                })
                .unwrap();
        },
    );
}
