//! Multi-process behaviour: a read-only child process follows a writer
//! with `sync`, and a writer killed with SIGKILL at random moments never
//! loses a flushed binding nor yields a value that was not written.
//!
//! Child roles re-execute this test binary with `TZS_INDEX_CHILD` set.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tzstore::OpenOptions;
use tzstore::index::{Index, IndexConfig};

const CHILD: &str = "TZS_INDEX_CHILD";
const DIR: &str = "TZS_INDEX_DIR";

fn cfg(read_only: bool, log_size: u64) -> IndexConfig {
    let mut open = OpenOptions::default().no_fsync();
    open.read_only = read_only;
    IndexConfig {
        key_size: 32,
        value_size: 8,
        removable: false,
        log_size,
        open,
    }
}

fn key(k: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&k.to_le_bytes());
    b[16..24].copy_from_slice(&k.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    b
}

fn child(test: &str, role: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .env(DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    c
}

/// Parses `tag N` from a child's line, ignoring the test harness's output
/// (which may precede it on the same line: `test name ... `).
fn number_after(line: &str, tag: &str) -> Option<u64> {
    let at = line.rfind(tag)?;
    line[at + tag.len()..].trim().parse().ok()
}

// ---- read-only follower --------------------------------------------------

const BATCH: u64 = 250;

fn ro_child(dir: &Path) {
    let ix = Index::open(dir, cfg(true, 0)).unwrap();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Some(batch) = number_after(&line.unwrap(), "batch") else {
            continue;
        };
        ix.sync().unwrap();
        for k in 0..(batch + 1) * BATCH {
            assert_eq!(
                ix.find(&key(k)).unwrap(),
                Some(k.to_le_bytes().to_vec()),
                "RO child: key {k} after batch {batch}"
            );
        }
        assert_eq!(ix.len(), (batch + 1) * BATCH);
        // Straight to the stdout handle: `println!` may be captured by the
        // test harness.
        let mut out = std::io::stdout();
        writeln!(out, "seen {batch}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn read_only_process_sees_new_keys_after_sync() {
    if std::env::var(CHILD).as_deref() == Ok("ro") {
        return ro_child(Path::new(&std::env::var(DIR).unwrap()));
    }
    let dir = tempfile::tempdir().unwrap();
    let ix = Index::open(dir.path(), cfg(false, 300)).unwrap();
    ix.add(&key(0), &0u64.to_le_bytes(), true).unwrap();
    let mut c = child(
        "read_only_process_sees_new_keys_after_sync",
        "ro",
        dir.path(),
    )
    .spawn()
    .unwrap();
    let mut to_child = c.stdin.take().unwrap();
    let mut from_child = BufReader::new(c.stdout.take().unwrap()).lines();
    for batch in 0..8u64 {
        for k in batch * BATCH..(batch + 1) * BATCH {
            ix.add(&key(k), &k.to_le_bytes(), false).unwrap();
        }
        ix.flush().unwrap();
        if batch % 3 == 2 {
            ix.await_merge().unwrap();
        }
        writeln!(to_child, "batch {batch}").unwrap();
        to_child.flush().unwrap();
        let seen = loop {
            let line = from_child.next().expect("child ended early").unwrap();
            if let Some(n) = number_after(&line, "seen") {
                break n;
            }
        };
        assert_eq!(seen, batch);
    }
    drop(to_child);
    assert!(c.wait().unwrap().success());
}

// ---- crash -----------------------------------------------------------------

/// Keys written by the crash child: op `i` writes value `i` to key
/// `op_key(i)`, cycling over a set small enough to be replaced often.
fn op_key(i: u64) -> u64 {
    i.wrapping_mul(0x2545_F491_4F6C_DD1D) % 1500
}

const FLUSH_EVERY: u64 = 40;

fn crash_child(dir: &Path) {
    let ix = Index::open(dir, cfg(false, 200)).unwrap();
    let mut out = std::io::stdout();
    let mut i = 0u64;
    loop {
        ix.add(&key(op_key(i)), &i.to_le_bytes(), false).unwrap();
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            ix.flush().unwrap();
            writeln!(out, "flushed {i}").unwrap();
            out.flush().unwrap();
        }
        i += 1;
    }
}

/// Checks the reopened index against the op sequence: every key written at
/// or before `flushed` holds the value of its last write up to `flushed`
/// or of a later write; no key holds a value never written to it.
fn verify(ix: &Index, flushed: Option<u64>) {
    let mut last_flushed: std::collections::HashMap<u64, u64> = Default::default();
    if let Some(f) = flushed {
        for i in 0..=f {
            last_flushed.insert(op_key(i), i);
        }
    }
    for k in 0..1500u64 {
        match ix.find(&key(k)).unwrap() {
            None => assert!(
                !last_flushed.contains_key(&k),
                "key {k} lost (flushed up to op {flushed:?})"
            ),
            Some(v) => {
                let op = u64::from_le_bytes(v.try_into().unwrap());
                assert_eq!(
                    op_key(op),
                    k,
                    "key {k} holds op {op}, written to another key"
                );
                if let Some(&min) = last_flushed.get(&k) {
                    assert!(op >= min, "key {k}: op {op} older than flushed op {min}");
                }
            }
        }
    }
    for r in ix.iter().unwrap() {
        let (k, v) = r.unwrap();
        let op = u64::from_le_bytes(v.try_into().unwrap());
        assert_eq!(
            key(op_key(op)).to_vec(),
            k,
            "iterated binding was never written"
        );
    }
}

#[test]
fn killed_writer_never_loses_flushed_bindings() {
    if std::env::var(CHILD).as_deref() == Ok("crash") {
        crash_child(Path::new(&std::env::var(DIR).unwrap()));
        return;
    }
    let mut seed = 0x1234_5678_9ABC_DEF0u64 ^ u64::from(std::process::id());
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for iteration in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let mut c = child(
            "killed_writer_never_loses_flushed_bindings",
            "crash",
            dir.path(),
        )
        .spawn()
        .unwrap();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                if let Some(n) = line.ok().and_then(|l| number_after(&l, "flushed")) {
                    last = Some(n);
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(20 + rand() % 150));
        c.kill().unwrap();
        c.wait().unwrap();
        let flushed = reader.join().unwrap();
        let ix = Index::open(dir.path(), cfg(false, 200))
            .unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
        verify(&ix, flushed);
        drop(ix);
        // Recovery itself must leave a state that reopens identically.
        let ix = Index::open(dir.path(), cfg(false, 200)).unwrap();
        verify(&ix, flushed);
    }
}
