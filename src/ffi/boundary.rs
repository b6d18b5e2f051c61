//! The one pattern every exported function follows.
//!
//! Each `pub unsafe extern "C" fn` stays written out (cbindgen reads the
//! signatures and doc comments; it does not expand macros), and its body is
//! one of:
//!
//! * `call(err, || { ... })` for a function returning `tzs_status`:
//!   the panic boundary, `*err` cleared and filled, a `Result` turned into
//!   its status;
//! * `call_value(|| ...)` for an accessor returning a plain value: a
//!   panic yields the value's `Fallback`, chosen by the return type;
//! * `call_void(|| ...)` for a free or a close: panics are dropped.
//!
//! Inside, every raw argument is converted by `arg!`, which calls one
//! conversion of [`super::args`] (NULL checks, lengths, UTF-8; handles,
//! out-parameters and buffers borrowed for the call) and states once why
//! that is sound: each export's `# Safety` section asks of its caller what
//! the conversion's `# Safety` section asks of its arguments. Exports that
//! differ only in their handle (`tzs_kv_X` and `tzs_kv_batch_X`) share one
//! generic body (`ffi::kv::view`).

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

/// Runs a function returning a plain value; a panic yields the type's
/// [`Fallback`].
pub(crate) fn call_value<T: Fallback>(body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(T::FALLBACK)
}

/// What an accessor returns when a panic leaves it no answer: one value per
/// C type, the same as its answer to a NULL handle or an index out of range
/// (documented on each export).
pub(crate) trait Fallback {
    /// The answer to give.
    const FALLBACK: Self;
}

impl Fallback for u64 {
    const FALLBACK: u64 = 0;
}

impl Fallback for usize {
    const FALLBACK: usize = 0;
}

impl Fallback for u32 {
    const FALLBACK: u32 = 0;
}

impl<T> Fallback for *const T {
    const FALLBACK: *const T = std::ptr::null();
}

impl Fallback for tzs_chunk {
    /// An empty range, which no chunk has.
    const FALLBACK: tzs_chunk = tzs_chunk {
        start_level: 0,
        end_level: -1,
    };
}

/// Converts one raw argument of an export: `arg!(handle(ix, "index"))` is
/// `args::handle(ix, "index")`, a `Result` (or an `Option` for the
/// conversions that answer NULL with `None`). Only the conversions of
/// [`super::args`] can be named, so every `unsafe` call an export makes on
/// its arguments goes through the one argument below.
macro_rules! arg {
    ($conv:ident ( $($a:expr),* $(,)? )) => {
        // SAFETY: every export's `# Safety` section (and that of each body shared by exports, e.g. `ffi::kv::view`) asks of its caller, for each pointer argument, what this conversion's `# Safety` section asks (NULL, or valid for the reads or writes it names for the call's duration; a handle live and made by this library; a string NUL-terminated), and exports pass their arguments to `arg!` unchanged (or, for an array of structs, pointers to the elements `arg!(array(..))` borrowed, which the export's contract covers too).
        unsafe { $crate::ffi::args::$conv($($a),*) }
    };
}
pub(crate) use arg;

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
