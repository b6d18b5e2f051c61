//! Generates `include/tzstore.h` from the C layer with cbindgen.
//!
//! The header is written to `OUT_DIR` and, outside CI, copied into
//! `include/` when it changed, so developers always commit a fresh header.
//! In CI (`CI` set) the committed header is left alone and the test
//! `tests/header.rs` fails if it differs from the fresh one.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CI");
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml must parse");
    let fresh = out_dir.join("tzstore.h");
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src").join("ffi").join("mod.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen failed to generate the header")
        .write_to_file(&fresh);
    if std::env::var_os("CI").is_none() {
        let committed = crate_dir.join("include").join("tzstore.h");
        let new = std::fs::read(&fresh).expect("read generated header");
        if std::fs::read(&committed).ok().as_deref() != Some(&new[..]) {
            std::fs::create_dir_all(committed.parent().expect("include dir"))
                .expect("mkdir include");
            std::fs::write(&committed, new).expect("write include/tzstore.h");
        }
    }
}
