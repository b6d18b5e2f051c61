//! Generates `include/tzstore.h` from the C layer with cbindgen.
//!
//! The header is written to `OUT_DIR` and, outside CI, copied into
//! `include/` when it changed, so developers always commit a fresh header.
//! In CI (`CI` set) the committed header is left alone and the test
//! `tests/header.rs` fails if it differs from the fresh one.
//!
//! The header carries the crate version as `TZS_VERSION_*` macros, so C code
//! can check at compile time what `tzs_version()` reports at run time.
//!
//! The shared library gets the SONAME `libtzstore.so.<major>` (ELF only), so
//! programs record that name and keep running against later compatible
//! releases installed beside it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    // The version macros come from the package version.
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-env-changed=CI");
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml must parse");
    let version = |part: &str| {
        std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version parts")
    };
    let (major, minor, patch) = (version("MAJOR"), version("MINOR"), version("PATCH"));
    config.after_includes = Some(format!(
        "\n/**\n \
         * The version of this header, from Cargo.toml; tzs_version() returns the\n \
         * library's at run time. TZS_VERSION_NUMBER >= TZS_MAKE_VERSION(0, 1, 0)\n \
         * tests for a minimum version at compile time.\n \
         */\n\
         #define TZS_VERSION_MAJOR {major}\n\
         #define TZS_VERSION_MINOR {minor}\n\
         #define TZS_VERSION_PATCH {patch}\n\
         #define TZS_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         #define TZS_MAKE_VERSION(major, minor, patch) (((major) * 1000000L) + ((minor) * 1000L) + (patch))\n\
         #define TZS_VERSION_NUMBER TZS_MAKE_VERSION(TZS_VERSION_MAJOR, TZS_VERSION_MINOR, TZS_VERSION_PATCH)"
    ));
    set_soname(&major);
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

/// Sets the cdylib's SONAME to `libtzstore.so.<major>` and makes that name
/// resolve inside the build directory as well.
///
/// Every program linked against `target/<profile>/libtzstore.so` records the
/// SONAME in its DT_NEEDED, so the loader then looks for
/// `libtzstore.so.<major>` next to it (the C tests and the bindings' tests
/// use the build tree through an rpath or `LD_LIBRARY_PATH`). A symlink
/// `libtzstore.so.<major> -> libtzstore.so` in the profile directory, three
/// levels above `OUT_DIR` (`<profile>/build/<pkg>-<hash>/out`), provides it;
/// it dangles until the library is linked, which is harmless.
fn set_soname(major: &str) {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "linux" {
        return;
    }
    let soname = format!("libtzstore.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let link = profile_dir.join(&soname);
        if std::fs::symlink_metadata(&link).is_err() {
            // A failure (a read-only target directory) only affects running
            // programs from the build tree, which then report the missing
            // library by name; the build itself is unaffected.
            let _ = std::os::unix::fs::symlink("libtzstore.so", &link);
        }
    }
}
