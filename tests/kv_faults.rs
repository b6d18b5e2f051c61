//! ENOSPC and EIO injected at every mutating I/O step of each kv write
//! (`set`, `set_partial`, `rename`, `remove`, `allocate`, batch commit): for
//! k = 0, 1, ... the k-th operation fails (once, or from then on) until the
//! write goes through without meeting the fault. Each time:
//! * the status is `NoSpace` for ENOSPC and `Io` for EIO, naming the store;
//! * a failure up to the write's commit point (the rename of a plain write,
//!   the journal's fdatasync of a batch) leaves the previous state intact
//!   (a plain write after batches first checkpoints the journal: `syncfs`,
//!   then empties it; those steps are covered too);
//! * after the fault is lifted and the store reopened, the write is wholly
//!   there or wholly absent (wholly there if it failed after its commit
//!   point), the journal is clear and no staged or trashed file is left.

use std::path::Path;
use std::sync::Arc;

use tzstore::io::fault::{FaultFs, FaultOp, Faults};
use tzstore::kv::{Kind, Kv};
use tzstore::{Error, OpenOptions};

/// Every key of the store with its value (`None` for a dictionary).
type Snapshot = Vec<(String, Option<Vec<u8>>)>;

fn snapshot(kv: &Kv) -> Snapshot {
    fn walk(kv: &Kv, key: &str, out: &mut Snapshot) {
        for (name, kind) in kv.list(key).unwrap() {
            let child = format!("{key}/{name}");
            match kind {
                Kind::Value => out.push((child.clone(), Some(kv.get(&child).unwrap()))),
                Kind::Dictionary => {
                    out.push((child.clone(), None));
                    walk(kv, &child, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(kv, "", &mut out);
    out
}

/// A scratch directory, on tmpfs when there is one (the syncs are real).
fn scratch() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn open(root: &Path, faults: &Arc<Faults>) -> Kv {
    let fs = Arc::new(FaultFs::new(faults.clone()));
    Kv::open(root, &OpenOptions::default().with_fs(fs)).unwrap()
}

/// No staged or trashed file is left, and no batch is pending.
fn assert_clean(root: &Path) {
    let left: Vec<_> = std::fs::read_dir(root.join(".tzs-tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in .tzs-tmp: {left:?}");
    let journal = std::fs::read(root.join(".tzs-journal")).unwrap();
    assert!(
        journal.len() < 4 || journal[..4] == [0u8; 4],
        "journal pending"
    );
}

struct Case {
    name: &'static str,
    setup: fn(&Kv),
    op: fn(&Kv) -> tzstore::Result<()>,
    /// Index in the operation log of the write's commit point.
    commit: fn(&[FaultOp]) -> usize,
    /// A `rename` to new parents removes the parents it created when it
    /// fails, but a persistent fault can defeat that cleanup, leaving them
    /// (empty) behind.
    may_leave_empty_parents: bool,
}

fn first(log: &[FaultOp], want: fn(&FaultOp) -> bool) -> usize {
    log.iter().position(want).expect("commit point in the log")
}

/// The rename that makes a plain write visible (the last one: a `set`
/// under new dictionaries first moves the value into them).
fn last_rename(log: &[FaultOp]) -> usize {
    log.iter()
        .rposition(|op| *op == FaultOp::Rename)
        .expect("commit point in the log")
}

fn first_remove(log: &[FaultOp]) -> usize {
    first(log, |op| *op == FaultOp::Remove)
}

/// A batch is committed once its journal record is fdatasynced: the first
/// sync of a commit (staging does not sync).
fn first_sync(log: &[FaultOp]) -> usize {
    first(log, |op| *op == FaultOp::Sync)
}

fn base(kv: &Kv) {
    kv.set("a/b", b"old value").unwrap();
    kv.set("a/c/d", b"deep").unwrap();
    kv.set("x", b"1").unwrap();
}

/// `base`, then a batch left in the journal (not yet checkpointed).
fn base_and_batch(kv: &Kv) {
    base(kv);
    kv.batch(0, |b| {
        b.set("j/1", b"journaled")?;
        b.set("x", b"0")
    })
    .unwrap();
}

fn batch_op(kv: &Kv) -> tzstore::Result<()> {
    let mut b = kv.batch_begin()?;
    b.set("a/b", b"new value")?;
    b.set("x", b"2")?;
    b.set("n/m/k", b"fresh")?;
    b.remove("a/c")?;
    b.set("y", b"3")?;
    b.commit()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "set (replace)",
            setup: base,
            op: |kv| kv.set("a/b", b"new value"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "set (new dictionaries)",
            setup: base,
            op: |kv| kv.set("n/m/k", b"fresh"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "set_partial",
            setup: base,
            op: |kv| kv.set_partial("a/b", 4, b"VALUE and more"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "rename (value, new parent)",
            setup: base,
            op: |kv| kv.rename("a/b", "e/g/f"),
            commit: last_rename,
            may_leave_empty_parents: true,
        },
        Case {
            name: "rename (dictionary)",
            setup: base,
            op: |kv| kv.rename("a", "z"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "remove (value)",
            setup: base,
            op: |kv| kv.remove("a/b"),
            commit: first_remove,
            may_leave_empty_parents: false,
        },
        Case {
            name: "remove (dictionary)",
            setup: base,
            op: |kv| kv.remove("a"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "allocate",
            setup: base,
            op: |kv| kv.allocate("a/big", 8192),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
        Case {
            name: "batch commit",
            setup: base,
            op: batch_op,
            commit: first_sync,
            may_leave_empty_parents: false,
        },
        Case {
            name: "batch commit appended to another",
            setup: base_and_batch,
            op: batch_op,
            commit: first_sync,
            may_leave_empty_parents: false,
        },
        Case {
            // The journal is checkpointed (syncfs, emptied) first.
            name: "set after a batch",
            setup: base_and_batch,
            op: |kv| kv.set("a/b", b"new value"),
            commit: last_rename,
            may_leave_empty_parents: false,
        },
    ]
}

/// `now` without the empty dictionaries that `old` does not have.
fn without_new_empty_dictionaries(now: &Snapshot, old: &Snapshot) -> Snapshot {
    let mut out = now.clone();
    loop {
        let empty_new = out.iter().position(|(k, v)| {
            v.is_none()
                && !old.iter().any(|(o, _)| o == k)
                && !out.iter().any(|(c, _)| c.starts_with(&format!("{k}/")))
        });
        match empty_new {
            Some(i) => {
                out.remove(i);
            }
            None => return out,
        }
    }
}

/// The states before and after a fault-free run of `case`, and its log.
fn dry_run(case: &Case) -> (Snapshot, Snapshot, Vec<FaultOp>) {
    let dir = scratch();
    let faults = Faults::none();
    let kv = open(dir.path(), &faults);
    (case.setup)(&kv);
    let old = snapshot(&kv);
    faults.record();
    (case.op)(&kv).unwrap();
    let log = faults.take_log();
    let new = snapshot(&kv);
    assert_ne!(old, new, "{}: the write changes nothing", case.name);
    (old, new, log)
}

fn run(case: &Case, errno: i32, sticky: bool) {
    let what = format!(
        "{} with {} ({})",
        case.name,
        if errno == libc::ENOSPC {
            "ENOSPC"
        } else {
            "EIO"
        },
        if sticky { "sticky" } else { "once" }
    );
    let (old, new, log) = dry_run(case);
    let commit = (case.commit)(&log);
    let mut k = 0u64;
    loop {
        let dir = scratch();
        let root = dir.path();
        let faults = Faults::none();
        let kv = open(root, &faults);
        (case.setup)(&kv);
        faults.fail_op(k, errno, sticky);
        let r = (case.op)(&kv);
        let failed = faults.has_failed();
        faults.heal();
        let at = k as usize;
        match r {
            Ok(()) if !failed => {
                // The fault came after the last operation: every step was
                // covered.
                assert_eq!(at, log.len(), "{what}: ran {at} operations");
                assert_eq!(snapshot(&kv), new, "{what}");
                break;
            }
            // A failure the write may tolerate (deleting trash, discarding
            // a staged file): it must have gone through.
            Ok(()) => assert_eq!(snapshot(&kv), new, "{what}: k = {k}"),
            Err(e) => {
                let root_name = root.display().to_string();
                match (&e, errno) {
                    (Error::NoSpace(m), libc::ENOSPC) | (Error::Io(m), libc::EIO) => {
                        assert!(m.contains(&root_name), "{what}: k = {k}: {m}")
                    }
                    _ => panic!("{what}: k = {k} ({:?}): unexpected {e:?}", log.get(at)),
                }
                if at <= commit {
                    let mut now = snapshot(&kv);
                    if sticky && case.may_leave_empty_parents {
                        now = without_new_empty_dictionaries(&now, &old);
                    }
                    assert_eq!(now, old, "{what}: k = {k}: before the commit point");
                }
            }
        }
        drop(kv);
        // Lifted and reopened: all or nothing.
        let kv = open(root, &Faults::none());
        let mut now = snapshot(&kv);
        if sticky && case.may_leave_empty_parents {
            now = without_new_empty_dictionaries(&now, &old);
        }
        let expect_old = at < commit || (at == commit && !sticky);
        if failed && expect_old {
            assert_eq!(now, old, "{what}: k = {k} ({:?}) after reopen", log.get(at));
        } else if failed && at > commit {
            assert_eq!(now, new, "{what}: k = {k} ({:?}) after reopen", log.get(at));
        } else {
            assert!(now == old || now == new, "{what}: k = {k}: torn: {now:?}");
        }
        assert_clean(root);
        // The store is usable again.
        kv.set("after", b"ok").unwrap();
        k += 1;
        assert!(k <= log.len() as u64 + 1, "{what}: never succeeded");
    }
}

fn run_all(errno: i32, sticky: bool) {
    for case in cases() {
        run(&case, errno, sticky);
    }
}

#[test]
fn enospc_at_every_step_sticky() {
    run_all(libc::ENOSPC, true);
}

#[test]
fn enospc_at_every_step_once() {
    run_all(libc::ENOSPC, false);
}

#[test]
fn eio_at_every_step_sticky() {
    run_all(libc::EIO, true);
}

#[test]
fn eio_at_every_step_once() {
    run_all(libc::EIO, false);
}

#[test]
fn write_budget_and_failing_syncs_reach_the_kv_store() {
    let dir = scratch();
    let faults = Faults::none();
    let kv = open(dir.path(), &faults);
    kv.set("k", b"v1").unwrap();
    // A full disk: the value cannot be staged.
    faults
        .write_budget
        .store(10, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(kv.set("k", &[7u8; 100]), Err(Error::NoSpace(_))));
    assert_eq!(kv.get("k").unwrap(), b"v1");
    faults.heal();
    // Failing fsyncs: a durable write cannot be acknowledged.
    faults
        .fail_sync
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(kv.set("k", b"v2"), Err(Error::Io(_))));
    let mut b = kv.batch_begin().unwrap();
    b.set("j", b"x").unwrap();
    assert!(matches!(b.commit(), Err(Error::Io(_))));
    faults.heal();
    drop(kv);
    let kv = open(dir.path(), &Faults::none());
    assert_eq!(kv.get("k").unwrap(), b"v1");
    assert!(matches!(kv.get("j"), Err(Error::NotFound(_))));
    assert_clean(dir.path());
}
