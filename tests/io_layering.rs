//! The layering rule of `src/io/mod.rs`: outside `src/io/`, no store does
//! file I/O itself. Every file below `src/` except `src/io/` (the file
//! layer) and `src/bin/` (the command-line tool, which is no store and
//! reads demo and detection inputs directly) is scanned, outside
//! `#[cfg(test)]` modules (inline, or whole files declared so) and comments, for `std::fs` and for calls of raw
//! `libc` functions (`libc::name(`; errno and flag constants are fine).

use std::path::{Path, PathBuf};

/// The offending lines of `src` (a Rust file's text), as `line: text`.
fn violations(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = src.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            // Skip the item it guards when that item is a module, to its
            // closing brace.
            let Some((_, next)) = lines.peek() else { break };
            let next = next.trim_start();
            if next.starts_with("mod ") || next.starts_with("pub mod ") {
                let mut depth = 0i64;
                for (_, l) in lines.by_ref() {
                    depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                    if depth <= 0 && l.contains('}') {
                        break;
                    }
                }
            }
            continue;
        }
        let code = match code.find("//") {
            Some(at) => &code[..at],
            None => code,
        };
        if uses_std_fs(code) || calls_libc(code) {
            out.push(format!("{}: {}", i + 1, line.trim()));
        }
    }
    out
}

fn uses_std_fs(code: &str) -> bool {
    code.match_indices("std::fs").any(|(at, m)| {
        !code[at + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn calls_libc(code: &str) -> bool {
    code.match_indices("libc::").any(|(at, m)| {
        let rest = &code[at + m.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        name.starts_with(|c: char| c.is_ascii_lowercase()) && rest[name.len()..].starts_with('(')
    })
}

/// The files of the modules `file` declares under `#[cfg(test)]`
/// (`#[cfg(test)] mod name;`).
fn test_module_files(file: &Path, text: &str) -> Vec<PathBuf> {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = match stem {
        "mod" | "lib" | "main" => file.parent().unwrap().to_path_buf(),
        _ => file.with_extension(""),
    };
    let mut out = Vec::new();
    let mut after_cfg_test = false;
    for line in text.lines().map(str::trim) {
        if after_cfg_test
            && let Some(name) = line
                .strip_prefix("mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .and_then(|rest| rest.strip_suffix(';'))
        {
            out.push(dir.join(format!("{name}.rs")));
            out.push(dir.join(name).join("mod.rs"));
        }
        after_cfg_test = line == "#[cfg(test)]";
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_file_io_outside_the_file_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let exempt = [src.join("io"), src.join("bin")];
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    let test_only: Vec<PathBuf> = texts
        .iter()
        .flat_map(|(f, text)| test_module_files(f, text))
        .collect();
    assert!(
        test_only.contains(&src.join("index/decode_props.rs")),
        "the scan no longer sees `#[cfg(test)] mod decode_props;`"
    );
    let mut scanned = 0;
    let mut found = Vec::new();
    for (f, text) in &texts {
        if exempt.iter().any(|e| f.starts_with(e)) || test_only.contains(f) {
            continue;
        }
        scanned += 1;
        for v in violations(text) {
            found.push(format!("{}:{v}", f.strip_prefix(&src).unwrap().display()));
        }
    }
    assert!(scanned > 20, "only {scanned} files scanned");
    assert!(
        found.is_empty(),
        "file I/O outside src/io/ (go through io::FileSystem or io::beneath):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_what_it_must_and_skips_test_modules() {
    let sample = "use std::fs::File;\n\
                  let n = unsafe { libc::fsync(fd) };\n\
                  // std::fs::read in a comment\n\
                  Some(libc::ENOENT) => {}\n\
                  use std::fsx;\n\
                  #[cfg(test)]\n\
                  mod tests {\n\
                      fn f() { std::fs::write(\"a\", b\"\").unwrap(); }\n\
                  }\n\
                  std::fs::remove_file(p);\n";
    let v = violations(sample);
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(v[0].starts_with("1:") && v[1].starts_with("2:") && v[2].starts_with("10:"));
}
