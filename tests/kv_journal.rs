//! Roll-forward at open of a journal written in the documented format
//! (`src/kv/journal.rs`), and a torn journal ignored.

use tzstore::io::frame;
use tzstore::kv::{Kind, Kv};
use tzstore::{Error, OpenOptions};

fn record(ops: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut p = b"TZSKVJ01".to_vec();
    p.extend_from_slice(&(ops.len() as u32).to_be_bytes());
    for (key, value) in ops {
        p.push(if value.is_some() { 1 } else { 2 });
        p.extend_from_slice(&(key.len() as u32).to_be_bytes());
        p.extend_from_slice(key.as_bytes());
        if let Some(v) = value {
            p.extend_from_slice(&(v.len() as u64).to_be_bytes());
            p.extend_from_slice(v);
        }
    }
    frame::encode(&p).unwrap()
}

#[test]
fn pending_journal_is_rolled_forward_at_open_and_a_torn_one_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default().no_fsync();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    kv.set("a", b"old").unwrap();
    kv.set("d/x", b"1").unwrap();
    drop(kv);
    let rec = record(&[("a", Some(b"new")), ("d", None), ("d/y/z", Some(b"2"))]);
    let journal = dir.path().join(".tzs-journal");

    // Torn (the crash hit while the journal was written): nothing happens.
    std::fs::write(&journal, &rec[..rec.len() - 1]).unwrap();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(kv.get("a").unwrap(), b"old");
    assert_eq!(kv.get("d/x").unwrap(), b"1");
    drop(kv);

    // Whole: a read-only handle does not apply it...
    std::fs::write(&journal, &rec).unwrap();
    let ro = Kv::open(dir.path(), &OpenOptions::read_only()).unwrap();
    assert_eq!(ro.get("a").unwrap(), b"old");
    // ...the next read-write open does, all of it.
    let kv = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(kv.get("a").unwrap(), b"new");
    assert!(matches!(kv.get("d/x"), Err(Error::NotFound(_))));
    assert_eq!(kv.get("d/y/z").unwrap(), b"2");
    assert_eq!(kv.exists("d/y").unwrap(), Some(Kind::Dictionary));
    assert_eq!(ro.get("a").unwrap(), b"new");
    // Applied and checkpointed at open: the journal is empty.
    assert!(std::fs::read(&journal).unwrap().is_empty());
    // Applying is idempotent: replaying the same record again changes nothing.
    drop(kv);
    std::fs::write(&journal, &rec).unwrap();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(kv.get("a").unwrap(), b"new");
    assert_eq!(
        kv.list("d").unwrap(),
        vec![("y".to_string(), Kind::Dictionary)]
    );
}

#[test]
fn a_live_writer_rolls_forward_a_journal_left_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default().no_fsync();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    kv.set("k", b"1").unwrap();
    // As if another process died right after its commit point.
    std::fs::write(
        dir.path().join(".tzs-journal"),
        record(&[("k", Some(b"2")), ("j", Some(b"3"))]),
    )
    .unwrap();
    kv.set("other", b"x").unwrap();
    assert_eq!(kv.get("k").unwrap(), b"2");
    assert_eq!(kv.get("j").unwrap(), b"3");
}

#[test]
fn batches_accumulate_in_the_journal_until_a_plain_write_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default().no_fsync();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    let journal = dir.path().join(".tzs-journal");
    for i in 0..3u8 {
        kv.batch(0, |b| b.set("k", &[i])).unwrap();
    }
    let len = std::fs::read(&journal).unwrap().len();
    assert!(len > 0);
    // What the three records replay to is what the tree holds: a replay
    // (here by another handle's open) changes nothing.
    let other = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(other.get("k").unwrap(), [2]);
    assert!(std::fs::read(&journal).unwrap().is_empty());
    kv.batch(0, |b| b.set("k", &[3])).unwrap();
    assert!(!std::fs::read(&journal).unwrap().is_empty());
    // A plain write is not journaled: the journal is emptied first, so no
    // older record can be replayed over it.
    kv.set("k", b"plain").unwrap();
    assert!(std::fs::read(&journal).unwrap().is_empty());
    drop((kv, other));
    let kv = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(kv.get("k").unwrap(), b"plain");
}

#[test]
fn replay_replaces_a_dictionary_and_a_value_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default().no_fsync();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    kv.set("d/x/y", b"1").unwrap();
    kv.set("v", b"2").unwrap();
    drop(kv);
    // Forced semantics: the set of `d` replaces the dictionary there, the
    // set of `v/w` the value in its way.
    std::fs::write(
        dir.path().join(".tzs-journal"),
        record(&[("d", Some(b"3")), ("v/w", Some(b"4"))]),
    )
    .unwrap();
    let kv = Kv::open(dir.path(), &opts).unwrap();
    assert_eq!(kv.get("d").unwrap(), b"3");
    assert_eq!(kv.get("v/w").unwrap(), b"4");
    assert_eq!(kv.exists("v").unwrap(), Some(Kind::Dictionary));
    assert!(
        std::fs::read_dir(dir.path().join(".tzs-tmp"))
            .unwrap()
            .next()
            .is_none()
    );
}
