//! The command-line tool: `demo` runs end to end, `info` and `check` read
//! the store it leaves, and bad directories give clear errors.

use std::process::Command;

fn tzstore(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tzstore"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run tzstore");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn demo_then_info_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, out) = tzstore(&["demo", "--dir", d, "--blocks", "13000"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("check: ") && out.contains(" 0 problems"),
        "{out}"
    );
    assert!(out.contains("merges done"), "{out}");
    let blocks = dir.path().join("blocks");
    let b = blocks.to_str().unwrap();
    let (ok, out) = tzstore(&["info", b]);
    assert!(ok, "{out}");
    assert!(
        out.contains("history mode  Rolling") && out.contains("cemented      levels 0..=4095"),
        "{out}"
    );
    let (ok, out) = tzstore(&["check", b]);
    assert!(ok && out.contains("ok: no problem found"), "{out}");
    let (ok, out) = tzstore(&["check", "--repair", b]);
    assert!(ok, "{out}");
}

#[test]
fn bad_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (ok, out) = tzstore(&["info", missing.to_str().unwrap()]);
    assert!(!ok && out.contains("does not exist"), "{out}");
    let (ok, out) = tzstore(&["check", dir.path().to_str().unwrap()]);
    assert!(!ok && out.contains("no block store"), "{out}");
}
