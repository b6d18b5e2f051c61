//! Runs the generated ctest2 checks; exits non-zero on any mismatch.
#![allow(bad_style, clippy::all, unused_imports, deprecated)]

use libc::*;
use tzstore::ffi::types::*;

include!(concat!(env!("OUT_DIR"), "/all.rs"));
