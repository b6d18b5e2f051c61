//! Functions shared by all stores: status names, version, byte buffers.

use std::ffi::c_char;

use super::args;
use super::boundary::{arg, call_void};
use super::types::*;

/// The name of a status as a static NUL-terminated string (`"TZS_OK"`,
/// `"TZS_NOT_FOUND"`, ...); `"TZS_UNKNOWN"` for a number that is not a status.
/// Never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn tzs_status_name(status: tzs_status) -> *const c_char {
    crate::error::status_c_name(status)
        .unwrap_or(c"TZS_UNKNOWN")
        .as_ptr()
}

/// The library version, e.g. `"0.1.0"`, as a static string. Never free it.
#[unsafe(no_mangle)]
pub extern "C" fn tzs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Frees the data of a `tzs_bytes` filled by the library and resets it to
/// `{NULL, 0}`. NULL, or a zeroed `tzs_bytes`, is a no-op, so calling it
/// twice on the same struct is safe. Thread-safe for distinct buffers.
///
/// # Safety
/// `b` is NULL or points to a `tzs_bytes` that is zeroed or was filled by
/// this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_bytes_free(b: *mut tzs_bytes) {
    call_void(|| {
        if let Some(b) = arg!(live_mut(b)) {
            // SAFETY: the buffer was filled by `args::bytes_out` or is zeroed.
            unsafe { args::free_bytes(b) };
        }
    })
}
