//! indexed_file crash safety: a child appends (flushing every few values and
//! starting compactions) and is killed with SIGKILL at random moments; the
//! reopened store has every flushed value, and every value it returns was
//! written for its key, with the matching header.
//!
//! The child role re-executes this test binary with `TZS_IFILE_CHILD` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tzstore::OpenOptions;
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};

const CHILD: &str = "TZS_IFILE_CHILD";
const KEYS: u64 = 600;
const FLUSH_EVERY: u64 = 25;

fn cfg() -> IndexedFileConfig {
    IndexedFileConfig {
        key_size: 8,
        header_size: 4,
        header_in_value: false,
        log_size: 100,
        open: OpenOptions::default().no_fsync(),
    }
}

fn op_key(op: u64) -> u64 {
    op.wrapping_mul(0x2545_F491_4F6C_DD1D) % KEYS
}

fn value(op: u64) -> Vec<u8> {
    let mut v = op.to_be_bytes().to_vec();
    v.extend(std::iter::repeat_n(op as u8, (op % 40) as usize));
    v
}

/// Compactions drop keys that are multiples of 3.
fn kept(k: u64) -> bool {
    k % 3 != 0
}

fn child(dir: &Path) {
    let f = IndexedFile::open(dir, cfg()).unwrap();
    let mut out = std::io::stdout();
    let mut op = 0u64;
    loop {
        let k = op_key(op);
        f.append(
            &k.to_be_bytes(),
            Some(&(op as u32).to_be_bytes()),
            &value(op),
            false,
        )
        .unwrap();
        if op % FLUSH_EVERY == FLUSH_EVERY - 1 {
            f.flush().unwrap();
            writeln!(out, "flushed {op}").unwrap();
            out.flush().unwrap();
        }
        if op % 400 == 399 {
            // A compaction may still be running: then this one is refused.
            let _ = f.gc(|key| kept(u64::from_be_bytes(key.try_into().unwrap())));
        }
        op += 1;
    }
}

fn verify(f: &IndexedFile, flushed: Option<u64>) {
    let mut last: HashMap<u64, u64> = HashMap::new();
    if let Some(fl) = flushed {
        for op in 0..=fl {
            last.insert(op_key(op), op);
        }
    }
    for k in 0..KEYS {
        match f.read(&k.to_be_bytes()).unwrap() {
            None => assert!(
                !last.contains_key(&k) || !kept(k),
                "key {k} lost (flushed up to op {flushed:?})"
            ),
            Some((v, h)) => {
                let op = u64::from_be_bytes(v[..8].try_into().unwrap());
                assert_eq!(v, value(op), "key {k}: value bytes");
                assert_eq!(h, (op as u32).to_be_bytes().to_vec(), "key {k}: header");
                assert_eq!(
                    op_key(op),
                    k,
                    "key {k} holds a value written to another key"
                );
                if let Some(&min) = last.get(&k) {
                    assert!(op >= min, "key {k}: op {op} older than flushed op {min}");
                }
            }
        }
    }
}

#[test]
fn killed_appender_keeps_flushed_values() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(Path::new(&dir));
        return;
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut compacted = 0;
    for iteration in 0..25 {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "killed_appender_keeps_flushed_values",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.rfind("flushed ") {
                    last = line[at + 8..].trim().parse::<u64>().ok().or(last);
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(30 + rand() % 200));
        c.kill().unwrap();
        c.wait().unwrap();
        let flushed = reader.join().unwrap();
        let f = IndexedFile::open(dir.path(), cfg())
            .unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
        verify(&f, flushed);
        drop(f);
        verify(&IndexedFile::open(dir.path(), cfg()).unwrap(), flushed);
        if !dir.path().join("gen.0").exists() {
            compacted += 1;
        }
    }
    // The kills must also have hit stores that went through compactions.
    assert!(compacted > 0, "no iteration ran a compaction");
}
