//! Shared by the CLI tests: run the built `tzstore`, parse its JSON,
//! damage files, build sample blocks.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use tzstore::block::{Block, Hash};

/// What one run printed and returned.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw: Vec<u8>,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn tzstore(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_tzstore"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tzstore");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        raw: out.stdout,
    }
}

/// Runs and expects exit status `code`.
pub fn expect(code: i32, args: &[&str]) -> Out {
    let out = tzstore(args);
    assert_eq!(out.code, code, "tzstore {args:?}:\n{}", out.all());
    out
}

pub fn ok(args: &[&str]) -> Out {
    expect(0, args)
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Flips every bit of the byte at `offset` of `path`.
pub fn flip(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).expect("read");
    b[offset as usize] ^= 0xff;
    std::fs::write(path, b).expect("write");
}

/// Copies a directory tree (a cold copy, to damage without touching the
/// original).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("list") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

pub fn hash_of(id: u64) -> Hash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&id.to_be_bytes());
    h[8..16].copy_from_slice(&id.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    h[31] = 0xb1;
    h
}

/// Block `id` at `level` on `pred`, with contents and metadata of its own.
pub fn block(id: u64, level: i32, pred: Hash) -> Block {
    Block {
        hash: hash_of(id),
        level,
        predecessor: pred,
        contents: format!("contents of block {id} at level {level}").into_bytes(),
        metadata: Some(format!("metadata of {id}").repeat(3).into_bytes()),
    }
}

/// A chain of `n` blocks from level 0 (block `i` has id `i`).
pub fn chain(n: u64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for i in 0..n {
        let pred = out.last().map_or([0u8; 32], |b| b.hash);
        out.push(block(i, i as i32, pred));
    }
    out
}
