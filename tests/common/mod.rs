//! Helpers shared by integration tests: child processes for crash tests.
#![allow(dead_code)]

pub mod damage;

use std::process::{Child, Command, Stdio};

/// Env var naming the child role; a test that sees it acts as the child.
pub const CHILD_ENV: &str = "TZS_TEST_CHILD";

/// Re-runs this test binary, executing only the test `name` with `envs` set
/// and `CHILD_ENV` = `name`. The child test must check `is_child(name)`.
pub fn spawn_child(name: &str, envs: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("current test executable");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child test process")
}

/// True when this process is the child spawned for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).map(|v| v == name).unwrap_or(false)
}

/// Kills `child` with SIGKILL and reaps it.
pub fn kill9(child: &mut Child) {
    // SIGKILL cannot be caught: this is the "crash at any point" we test.
    let _ = child.kill();
    let _ = child.wait();
}

/// A small deterministic PRNG (xorshift) so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
