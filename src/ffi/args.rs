//! Argument conversion helpers shared by every exported function, so that each
//! export checks NULLs, sizes and UTF-8 the same way in a few lines.

use std::ffi::{CStr, c_char};

pub(crate) use super::block::{block_in, preds_in};
use super::types::tzs_bytes;
use crate::check::CheckReport;
use crate::error::{Error, Result};

/// Borrows a handle; NULL is `InvalidArgument`.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` created by this library.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Error::invalid(format!("{what} handle is NULL")))
}

/// Borrows a handle mutably; NULL is `InvalidArgument`.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` created by this library, used
/// by no other call meanwhile.
pub(crate) unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} handle is NULL")))
}

/// Takes back a handle created by [`into_handle`], which the caller gives
/// up (a consuming call); NULL is `InvalidArgument`.
///
/// # Safety
/// A non-NULL `p` must come from [`into_handle`], be live, and not be used
/// after this call.
pub(crate) unsafe fn take_handle<T>(p: *mut T, what: &str) -> Result<Box<T>> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} handle is NULL")));
    }
    // SAFETY: `p` came from `Box::into_raw` in `into_handle`, is live, and the caller never uses it again (this function's contract).
    Ok(unsafe { Box::from_raw(p) })
}

/// Borrows an input buffer. NULL is accepted only with `len == 0`.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes for the call's duration.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    // SAFETY: non-NULL and `len` readable bytes, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows an input array of `n` values. NULL is accepted only with `n == 0`
/// (then the pointer is not looked at).
///
/// # Safety
/// With `n > 0`, a non-NULL `ptr` must point to `n` readable, initialised
/// `T` for the call's duration.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and `n` readable values, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Borrows an input buffer that must be exactly `expected` bytes long.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn bytes_exact<'a>(
    ptr: *const u8,
    len: usize,
    expected: usize,
    what: &str,
) -> Result<&'a [u8]> {
    if len != expected {
        return Err(Error::invalid(format!(
            "{what} must be {expected} bytes, got {len}"
        )));
    }
    if ptr.is_null() && expected > 0 {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: forwarded.
    unsafe { bytes(ptr, len, what) }
}

/// Borrows a caller output buffer that must be exactly `expected` bytes long.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes for the call's duration.
pub(crate) unsafe fn out_exact<'a>(
    ptr: *mut u8,
    len: usize,
    expected: usize,
    what: &str,
) -> Result<&'a mut [u8]> {
    if len != expected {
        return Err(Error::invalid(format!(
            "{what} buffer must be {expected} bytes, got {len}"
        )));
    }
    if ptr.is_null() {
        if expected == 0 {
            return Ok(&mut []);
        }
        return Err(Error::invalid(format!("{what} buffer is NULL")));
    }
    // SAFETY: non-NULL and `len` writable bytes, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Borrows a hash input of `TZS_HASH_SIZE` bytes.
///
/// # Safety
/// A non-NULL `ptr` must point to 32 readable bytes.
pub(crate) unsafe fn hash<'a>(ptr: *const u8, what: &str) -> Result<&'a [u8; 32]> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and 32 readable bytes per the caller's contract.
    Ok(unsafe { &*(ptr as *const [u8; 32]) })
}

/// Borrows a handle for an accessor, which answers NULL with its fallback
/// rather than an error.
///
/// # Safety
/// A non-NULL `p` must point to a live `T` created by this library.
pub(crate) unsafe fn live<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { p.as_ref() }
}

/// Borrows a caller-owned struct the library fills or frees in place
/// (`tzs_bytes`, `tzs_block`); NULL is `None`, a no-op for the caller.
///
/// # Safety
/// A non-NULL `p` must point to a writable `T`, used by no one else for
/// the call's duration.
pub(crate) unsafe fn live_mut<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { p.as_mut() }
}

/// Borrows an out-parameter; NULL is `InvalidArgument`.
///
/// # Safety
/// A non-NULL `p` must point to writable storage for a `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// Borrows a NUL-terminated UTF-8 string (a path or a kv key).
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string.
pub(crate) unsafe fn utf8<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Like [`utf8`] but also rejects the empty string (paths).
///
/// # Safety
/// As [`utf8`].
pub(crate) unsafe fn path<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded.
    let s = unsafe { utf8(p, what) }?;
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    Ok(s)
}

/// Rejects flag bits outside `allowed`.
pub(crate) fn flags(flags: u32, allowed: u32, what: &str) -> Result<()> {
    if flags & !allowed != 0 {
        return Err(Error::invalid(format!(
            "{what}: unknown flag bits {:#x}",
            flags & !allowed
        )));
    }
    Ok(())
}

/// Moves `data` into a library-allocated `tzs_bytes`.
pub(crate) fn bytes_out(data: Vec<u8>) -> tzs_bytes {
    if data.is_empty() {
        return tzs_bytes {
            ptr: std::ptr::null_mut(),
            len: 0,
        };
    }
    let boxed: Box<[u8]> = data.into_boxed_slice();
    let len = boxed.len();
    tzs_bytes {
        ptr: Box::into_raw(boxed) as *mut u8,
        len,
    }
}

/// Writes a newly allocated `tzs_bytes` holding `data` to `out`.
///
/// # Safety
/// `out` must be a valid, writable `tzs_bytes` (checked non-NULL by caller).
pub(crate) fn set_bytes(out: &mut tzs_bytes, data: Vec<u8>) {
    *out = bytes_out(data);
}

/// Hands a check report to C: its text (see [`CheckReport::to_text`]) goes
/// to `*out` when `out` is not NULL, and a report with problems left becomes
/// `Corrupted` naming them. Every `tzs_*_check` export ends with this.
pub(crate) fn report_out(report: CheckReport, out: Option<&mut tzs_bytes>) -> Result<()> {
    if let Some(out) = out {
        set_bytes(out, report.to_text().into_bytes());
    }
    report.into_result().map(|_| ())
}

/// Frees the allocation of a `tzs_bytes` built by [`bytes_out`].
///
/// # Safety
/// `b` must come from [`bytes_out`] and not have been freed.
pub(crate) unsafe fn free_bytes(b: &mut tzs_bytes) {
    if !b.ptr.is_null() {
        let slice = std::ptr::slice_from_raw_parts_mut(b.ptr, b.len);
        // SAFETY: `ptr`/`len` came from `Box<[u8]>::into_raw` in `bytes_out`.
        drop(unsafe { Box::from_raw(slice) });
    }
    b.ptr = std::ptr::null_mut();
    b.len = 0;
}

/// Writes `value` to an optional out-parameter (one the caller may pass
/// as NULL, borrowed with [`live_mut`]).
pub(crate) fn put<T>(out: Option<&mut T>, value: T) {
    if let Some(o) = out {
        *o = value;
    }
}

/// Turns a handle box into an opaque pointer for C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle created by [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// A non-NULL `p` must come from [`into_handle`] and be freed once.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: a non-NULL `p` came from `Box::into_raw` in `into_handle` and is freed once (this function's contract).
        drop(unsafe { Box::from_raw(p) });
    }
}
