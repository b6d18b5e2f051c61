//! The panic boundary and error reporting used by every exported function.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error::{status_of, tzs_error};
use super::types::*;
use crate::error::{Error, Result};

/// Runs `body` for an exported function: clears `*err`, catches panics (a
/// panic becomes `TZS_PANIC` with its message), and turns an `Err` into its
/// status, writing a new `tzs_error` to `*err` unless the status is
/// `TZS_NOT_FOUND` or `TZS_DONE` (absence is not an error).
pub(crate) fn call(err: *mut *mut tzs_error, body: impl FnOnce() -> Result<()>) -> tzs_status {
    if !err.is_null() {
        // SAFETY: a non-NULL `err` points to writable storage for one pointer (the caller's contract for every `tzs_error **err`).
        unsafe { *err = std::ptr::null_mut() };
    }
    let outcome = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => Err(Error::Panic(panic_message(payload.as_ref()))),
    };
    match outcome {
        Ok(()) => TZS_OK,
        Err(e) => report(err, e),
    }
}

/// Runs a function that returns no status (close, free): panics are caught
/// and dropped, since there is nowhere to report them.
pub(crate) fn call_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// Runs a function returning a plain value; a panic yields `fallback`.
pub(crate) fn call_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn report(err: *mut *mut tzs_error, e: Error) -> tzs_status {
    let status = status_of(&e);
    if status != TZS_NOT_FOUND && status != TZS_DONE && !err.is_null() {
        let boxed = Box::new(tzs_error::new(status, e.message()));
        // SAFETY: checked non-NULL above; see `call`.
        unsafe { *err = Box::into_raw(boxed) };
    }
    status
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    format!("panic: {text}")
}
