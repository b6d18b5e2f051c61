//! C API of the singleton store.

use std::ffi::c_char;

use super::args;
use super::boundary::{arg, call, call_void};
use super::error::tzs_error;
use super::open_options;
use super::types::*;
use crate::singleton::Singleton;

/// An open singleton store: one value in one file, cached in memory.
/// Thread-safe: any thread may call any function on it concurrently, except
/// `tzs_singleton_close`, which must be the last call.
pub struct tzs_singleton {
    inner: Singleton,
}

/// Opens the singleton stored in the file `path` (created by the first
/// write; the directory must exist).
///
/// `flags`: `TZS_READONLY` (no writes, no lock; see new values with
/// `tzs_singleton_sync`) and/or `TZS_NO_FSYNC`. A read-write open locks
/// `<path>.lock`.
///
/// On success `*out` receives a handle owned by the caller (free it with
/// `tzs_singleton_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8
/// path, NULL `out`, unknown flags, `path` is a directory), `TZS_NOT_FOUND`
/// (the directory does not exist), `TZS_LOCKED` (another read-write instance
/// is open), `TZS_CORRUPTED` (the file fails its checksum, its header is
/// garbled, or a FIFO or device stands in its place; the message names the
/// file, and nothing is changed: `tzs_singleton_check` with `repair` moves
/// the damaged file into the quarantine), `TZS_IO`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_open(
    path: *const c_char,
    flags: u32,
    out: *mut *mut tzs_singleton,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let path = arg!(path(path, "path"))?;
        let opts = open_options(flags, TZS_READONLY | TZS_NO_FSYNC, "tzs_singleton_open")?;
        let inner = Singleton::open(path, &opts)?;
        *out = args::into_handle(tzs_singleton { inner });
        Ok(())
    })
}

/// Checks the singleton file at `path` without a handle: it must be absent
/// or hold a value that passes its checksum. Changes nothing unless
/// `repair`; with `repair`, a damaged file (bad checksum, garbled header, a
/// directory or FIFO in its place) is moved into
/// `DIR/.tzs-quarantine/<UTC time>-<n>/` (DIR the file's directory), which
/// leaves the value unset; nothing is deleted.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` or `quarantined:` line per item. Returns `TZS_OK` when no
/// problem remains, `TZS_CORRUPTED` (naming the problems) otherwise. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8 path, unknown flags),
/// `TZS_LOCKED` (with `repair`, a read-write handle is open), `TZS_IO`.
/// `flags`: `TZS_NO_FSYNC` only.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `report` is NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_check(
    path: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(path, "path"))?;
        super::check_export(
            "tzs_singleton_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| Singleton::check(p, o, r),
        )
    })
}

/// Copies the current value into `*out` (library-allocated; free it with
/// `tzs_bytes_free`). Served from memory. Returns `TZS_NOT_FOUND` (and
/// leaves `*out` untouched) when no value is set. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle or `out`). Thread-safe.
///
/// # Safety
/// `s` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_read(
    s: *mut tzs_singleton,
    out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "singleton"))?;
        let out = arg!(out(out, "out"))?;
        match s.inner.read() {
            Some(v) => {
                args::set_bytes(out, v.to_vec());
                Ok(())
            }
            None => Err(crate::Error::NotFound(format!(
                "{} holds no value",
                s.inner.path().display()
            ))),
        }
    })
}

/// Replaces the value with the `len` bytes at `v` (NULL allowed when `len` is
/// 0). Durable on return (temporary file, fsync, rename, fsync of the
/// directory) unless opened with `TZS_NO_FSYNC`; the caller's buffer is
/// copied. Errors: `TZS_INVALID_ARGUMENT`, `TZS_READ_ONLY`, `TZS_NO_SPACE`,
/// `TZS_IO`; after an error the previous value is still stored. Thread-safe
/// (writers are serialised).
///
/// # Safety
/// `s` is NULL or a live handle; `v` is NULL or `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_write(
    s: *mut tzs_singleton,
    v: *const u8,
    len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "singleton"))?;
        let v = arg!(bytes(v, len, "value"))?;
        s.inner.write(v)
    })
}

/// Removes the value (durably). Removing an unset value is `TZS_OK`.
/// Errors: `TZS_INVALID_ARGUMENT`, `TZS_READ_ONLY`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `s` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_delete(
    s: *mut tzs_singleton,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "singleton"))?;
        s.inner.delete()
    })
}

/// Reloads the value from the file, for a read-only handle to see what the
/// read-write instance wrote since. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_CORRUPTED` (the cached value is kept), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `s` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_sync(
    s: *mut tzs_singleton,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "singleton"))?;
        s.inner.sync()
    })
}

/// Closes the handle and releases its lock. NULL is a no-op. Must be the
/// last call on the handle; no other thread may be using it.
///
/// # Safety
/// `s` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_singleton_close(s: *mut tzs_singleton) {
    call_void(|| arg!(free_handle(s)))
}
