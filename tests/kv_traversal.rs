//! Hostile keys: every one is `InvalidArgument` for every operation, and
//! nothing outside the root is read, created, changed or removed.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use tzstore::ffi::kv::*;
use tzstore::ffi::types::*;
use tzstore::kv::Kv;
use tzstore::{Error, OpenOptions};

/// Every file and directory under `dir` (not following links) with its
/// contents, so any change shows up.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with(".tzs") {
                continue; // the store's own files (its write counter moves)
            }
            let ft = e.file_type().unwrap();
            let p = e.path();
            if ft.is_dir() {
                stack.push(p.clone());
                out.insert(p, None);
            } else if ft.is_symlink() {
                out.insert(
                    p.clone(),
                    Some(
                        std::fs::read_link(&p)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes(),
                    ),
                );
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

struct Fixture {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

/// `base/root` is the store; `base/outside` holds a secret and a directory
/// an attacker would like to reach; links inside the root point out.
fn fixture() -> Fixture {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("secret"), b"top secret").unwrap();
    std::fs::write(outside.join("sub/file"), b"x").unwrap();
    std::fs::write(root.join("d/ok"), b"fine").unwrap();
    let link = |target: &Path, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
    link(&outside, "out");
    link(&outside, "d/deep_out");
    link(&outside.join("secret"), "secret_link");
    link(&outside.join("secret"), "d/secret_link");
    link(Path::new("../outside"), "rel_out");
    link(Path::new("/"), "slash");
    link(Path::new("/etc/passwd"), "passwd");
    link(Path::new("d"), "inner_link"); // inside, but still not followed
    link(&outside.join("nonexistent"), "dangling");
    Fixture {
        root,
        outside,
        _base: base,
    }
}

fn hostile_keys() -> Vec<String> {
    let long = "x".repeat(256);
    let mut keys: Vec<String> = [
        "..",
        "../",
        "/..",
        "../outside/secret",
        "../../etc/passwd",
        "d/../../outside/secret",
        "d/..",
        "./d",
        ".",
        "d/./ok",
        "a/b/../../..",
        "..%2f../x/..",
        "\0",
        "a\0b",
        "d/ok\0/../../x",
        ".tzs-journal",
        ".tzs-lock",
        ".tzs-tmp",
        ".tzs-tmp/x",
        "d/.tzs",
        ".tzsanything",
        "out",
        "out/secret",
        "out/sub/file",
        "out/new_file",
        "out/sub",
        "d/deep_out/secret",
        "d/deep_out",
        "secret_link",
        "d/secret_link",
        "rel_out/secret",
        "rel_out",
        "slash/etc/passwd",
        "slash",
        "passwd",
        "inner_link/ok",
        "inner_link",
        "dangling",
        "dangling/x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push(long.clone());
    keys.push(format!("d/{long}"));
    keys.push(format!("{long}/../../outside/secret"));
    keys.push("/..//..//outside".to_string());
    keys.push("..\\../..".to_string());
    keys
}

fn invalid<T: std::fmt::Debug>(what: &str, key: &str, r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "{what}({key:?}) gave {r:?}"
    );
}

#[test]
fn hostile_keys_are_rejected_and_nothing_outside_changes() {
    let f = fixture();
    let keys = hostile_keys();
    assert!(keys.len() >= 40, "{} keys", keys.len());
    let kv = Kv::open(&f.root, &OpenOptions::default().no_fsync()).unwrap();
    let before_outside = snapshot(&f.outside);
    let before_root = snapshot(&f.root);
    for k in &keys {
        invalid("exists", k, kv.exists(k));
        invalid("get", k, kv.get(k));
        invalid("get_partial", k, kv.get_partial(k, 0, 10));
        invalid("size", k, kv.size(k));
        invalid("list", k, kv.list(k));
        invalid("last_modified", k, kv.last_modified(k));
        invalid("digest", k, kv.digest(k));
        invalid("set", k, kv.set(k, b"pwned"));
        invalid("set_partial", k, kv.set_partial(k, 0, b"pwned"));
        invalid("remove", k, kv.remove(k));
        invalid("allocate", k, kv.allocate(k, 10));
        invalid("rename from", k, kv.rename(k, "d/moved"));
        invalid("rename to", k, kv.rename("d/ok", k));
        let mut b = kv.batch_begin().unwrap();
        invalid("batch exists", k, b.exists(k));
        invalid("batch get", k, b.get(k));
        invalid("batch list", k, b.list(k));
        invalid("batch set", k, b.set(k, b"pwned"));
        invalid("batch remove", k, b.remove(k));
        b.commit().unwrap();
    }
    assert_eq!(snapshot(&f.outside), before_outside);
    assert_eq!(snapshot(&f.root), before_root, "the root changed");
    // The links stay invisible, the real entries are served.
    assert_eq!(kv.get("d/ok").unwrap(), b"fine");
    let names: Vec<String> = kv.list("").unwrap().into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["d"]);
    // Removing the root removes what is below it, never through a link.
    kv.remove("").unwrap();
    assert_eq!(snapshot(&f.outside), before_outside);
    assert_eq!(
        std::fs::read(f.outside.join("secret")).unwrap(),
        b"top secret"
    );
}

#[test]
fn link_swapped_in_for_a_dictionary_is_not_followed() {
    let f = fixture();
    let kv = Kv::open(&f.root, &OpenOptions::default().no_fsync()).unwrap();
    kv.set("victim/a", b"1").unwrap();
    let before = snapshot(&f.outside);
    // Another program replaces the dictionary with a link to the outside.
    std::fs::remove_dir_all(f.root.join("victim")).unwrap();
    std::os::unix::fs::symlink(&f.outside, f.root.join("victim")).unwrap();
    invalid("set", "victim/a", kv.set("victim/a", b"pwned"));
    invalid("get", "victim/secret", kv.get("victim/secret"));
    invalid("remove", "victim/secret", kv.remove("victim/secret"));
    invalid("remove", "victim", kv.remove("victim"));
    assert_eq!(snapshot(&f.outside), before);
}

#[test]
fn c_api_rejects_invalid_utf8_and_hostile_keys() {
    let f = fixture();
    let root = CString::new(f.root.to_str().unwrap()).unwrap();
    let mut kv = std::ptr::null_mut();
    // SAFETY: valid pointers for every call below; handles freed once.
    unsafe {
        assert_eq!(
            tzs_kv_open(root.as_ptr(), TZS_NO_FSYNC, &mut kv, std::ptr::null_mut()),
            TZS_OK
        );
        let before = snapshot(&f.outside);
        let bad: Vec<Vec<u8>> = vec![
            b"\xff".to_vec(),
            b"d/\xc3".to_vec(),
            b"\xc0\xaf..".to_vec(),
            b"..".to_vec(),
            b"out/secret".to_vec(),
        ];
        for k in bad {
            let c = CString::new(k).unwrap();
            let mut kind = 0;
            let mut out = tzs_bytes {
                ptr: std::ptr::null_mut(),
                len: 0,
            };
            let mut e = std::ptr::null_mut();
            assert_eq!(
                tzs_kv_exists(kv, c.as_ptr(), &mut kind, &mut e),
                TZS_INVALID_ARGUMENT
            );
            tzstore::ffi::error::tzs_error_free(e);
            assert_eq!(
                tzs_kv_get(kv, c.as_ptr(), &mut out, std::ptr::null_mut()),
                TZS_INVALID_ARGUMENT
            );
            assert_eq!(
                tzs_kv_set(kv, c.as_ptr(), b"x".as_ptr(), 1, std::ptr::null_mut()),
                TZS_INVALID_ARGUMENT
            );
            assert_eq!(
                tzs_kv_remove(kv, c.as_ptr(), std::ptr::null_mut()),
                TZS_INVALID_ARGUMENT
            );
        }
        assert_eq!(snapshot(&f.outside), before);
        tzs_kv_close(kv);
    }
}
