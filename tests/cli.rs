//! The command-line tool: `demo` runs end to end and `info` on its block
//! store states the same size; refusals (a path that holds no store, a
//! missing path, `--blocks 0`, a `--dir` with data) are usage errors that
//! change nothing; `--help` documents the exit codes.

mod cli_util;

use cli_util::*;

#[test]
fn demo_then_info_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let out = ok(&["demo", "--dir", p(&d), "--blocks", "13000"]);
    let text = out.stdout;
    assert!(
        text.contains("check: ") && text.contains(" 0 problems"),
        "{text}"
    );
    assert!(text.contains("merges done"), "{text}");
    // Rates are integers with separators (`6,267 blocks/s`, `30 MiB/s`),
    // never `54,172.7438/s` or `30.8 MiB/s`.
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut rates = 0;
    for pair in words.windows(2) {
        let w = pair[1].trim_end_matches([',', ';', ')']);
        if w.ends_with("/s") {
            // `(65,401/s)` carries its number, `MiB/s` follows it.
            let n = if w.starts_with(|c: char| c.is_ascii_digit() || c == '(') {
                w
            } else {
                pair[0]
            };
            assert!(!n.contains('.'), "fractional rate {n} in: {text}");
            rates += 1;
        }
    }
    assert!(rates >= 4, "{text}");
    // Full hashes only: the cemented read prints all 64 digits.
    let hash_line = text
        .lines()
        .find(|l| l.starts_with("read cemented level"))
        .unwrap();
    let hash = hash_line.rsplit(' ').next().unwrap();
    assert_eq!(hash.len(), 64, "{hash_line}");

    let blocks = d.join("blocks");
    let b = p(&blocks);
    let info = ok(&["info", b]).stdout;
    assert!(
        info.contains("history mode  Rolling (offset 5)")
            && info.contains("cemented      levels 0..=4095"),
        "{info}"
    );
    // The demo's size on disk and info's are one measure.
    let demo_size = text
        .lines()
        .find(|l| l.trim_start().starts_with("on disk"))
        .unwrap()
        .trim_start()
        .trim_start_matches("on disk")
        .trim();
    let info_size = info
        .lines()
        .find(|l| l.starts_with("on disk"))
        .unwrap()
        .trim_start_matches("on disk")
        .trim();
    assert_eq!(demo_size, info_size);
    let out = ok(&["check", b]);
    assert!(
        out.stdout.contains("ok: no problem found"),
        "{}",
        out.stdout
    );
    let out = ok(&["check", "--repair", b]);
    assert!(
        out.stdout.contains("repair: nothing changed"),
        "{}",
        out.stdout
    );
}

#[test]
fn refusals_are_usage_errors_that_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("mistyped");
    for cmd in ["info", "check", "dump"] {
        let out = expect(2, &[cmd, p(&empty)]);
        assert!(
            out.stderr.contains("holds no tzstore store"),
            "{}",
            out.stderr
        );
        let out = expect(2, &[cmd, p(&missing)]);
        assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    }
    let out = expect(2, &["check", "--repair", p(&empty)]);
    assert!(
        out.stderr.contains("holds no tzstore store"),
        "{}",
        out.stderr
    );
    expect(2, &["check", "--repair", p(&missing)]);
    expect(2, &["copy", p(&missing), p(&dir.path().join("copy"))]);
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing created"
    );
    assert!(!missing.exists(), "a mistyped path must not become a store");

    // --blocks 0 fails at parsing: no section ran.
    let out = expect(2, &["demo", "--blocks", "0"]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("--blocks"), "{}", out.stderr);
    // --dir holding data fails before anything is written.
    std::fs::write(empty.join("something"), b"x").unwrap();
    let out = expect(2, &["demo", "--dir", p(&empty), "--blocks", "10"]);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("already holds data"),
        "{}",
        out.all()
    );
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 1);
    // Unknown commands and flags.
    expect(2, &["frobnicate"]);
    expect(2, &["info"]);
}

#[test]
fn help_documents_exit_codes() {
    let out = ok(&["--help"]);
    for needle in [
        "Exit status",
        "0  success",
        "1  damage found",
        "2  usage error",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
    for cmd in ["info", "check", "get", "dump", "copy", "demo"] {
        assert!(out.stdout.contains(cmd), "{cmd}: {}", out.stdout);
    }
}
