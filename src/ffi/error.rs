//! `tzs_error`: the error object handed to C, and the mapping from the core's
//! [`Error`] to `tzs_status`.

use std::ffi::{CString, c_char};

use super::types::*;
use crate::error::Error;

/// An error: a status and a UTF-8 message naming the path or key concerned.
/// Created by the library, owned by the caller, freed with `tzs_error_free`.
/// Errors are immutable and may be read from any thread.
pub struct tzs_error {
    code: tzs_status,
    message: CString,
}

impl tzs_error {
    pub(crate) fn new(code: tzs_status, message: &str) -> tzs_error {
        tzs_error {
            code,
            message: c_message(message),
        }
    }
}

/// `message` as a C string: interior NULs cannot occur in one, so they are
/// replaced visibly.
pub(crate) fn c_message(message: &str) -> CString {
    CString::new(message.replace('\0', "\\0")).unwrap_or_default()
}

/// The status that represents `e` (1:1 with the variants, from the status
/// table in `src/error.rs`).
pub(crate) fn status_of(e: &Error) -> tzs_status {
    e.code()
}

/// The status of an error object, or `TZS_INVALID_ARGUMENT` for NULL.
///
/// Thread-safe; `e` is borrowed.
///
/// # Safety
/// `e` is NULL or an error returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_error_code(e: *const tzs_error) -> tzs_status {
    // SAFETY: a non-NULL `e` was created by this library and not yet freed (the caller's contract); we only read it.
    match unsafe { e.as_ref() } {
        Some(e) => e.code,
        None => TZS_INVALID_ARGUMENT,
    }
}

/// The error's message: a NUL-terminated UTF-8 string owned by `e`, valid
/// until `tzs_error_free(e)`. Returns an empty string for NULL.
/// Every front end (C++, OCaml, Go, the CLI) shows an error as
/// `TZS_<STATUS>: <message>`: in C, `tzs_status_name(tzs_error_code(e))`,
/// `": "`, then this message.
///
/// Thread-safe; `e` is borrowed.
///
/// # Safety
/// `e` is NULL or an error returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_error_message(e: *const tzs_error) -> *const c_char {
    // SAFETY: as in `tzs_error_code`.
    match unsafe { e.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Frees an error returned through a `tzs_error **err` parameter. NULL is a
/// no-op. Must be called exactly once per error.
///
/// # Safety
/// `e` is NULL or an error returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_error_free(e: *mut tzs_error) {
    if !e.is_null() {
        // SAFETY: a non-NULL `e` came from `Box::into_raw` in this library and is freed once (the caller's contract).
        drop(unsafe { Box::from_raw(e) });
    }
}
