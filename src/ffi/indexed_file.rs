//! C API of the indexed file store.

use std::ffi::{c_char, c_void};

use super::args;
use super::boundary::{arg, call, call_value, call_void};
use super::error::tzs_error;
use super::gc::{CFilter, tzs_filter_fn};
use super::open_options;
use super::types::*;
use crate::error::Error;
use crate::indexed_file::{IndexedFile, IndexedFileConfig};

/// An open indexed file: variable-size values with fixed-size headers,
/// indexed by fixed-size keys. Thread-safe: any thread may call any function
/// on it concurrently, except `tzs_indexed_file_close`, which must be the
/// last call.
pub struct tzs_indexed_file {
    pub(super) inner: IndexedFile,
    pub(super) key_size: usize,
    header_size: usize,
}

/// Decides whether a key survives a compaction: return true to keep it.
/// Called with a borrowed key (valid only during the call) and the `ctx`
/// given to `tzs_indexed_file_gc`.
pub type tzs_indexed_file_keep_fn =
    Option<unsafe extern "C" fn(key: *const u8, key_len: usize, ctx: *mut c_void) -> bool>;

/// Opens (read-write: creating if needed) the indexed file in directory
/// `dir`. `key_size` (1..=65536) and `header_size` (0..=65528) are fixed for
/// the store's life. `flags`: `TZS_READONLY` (no writes, no lock; see new data
/// with `tzs_indexed_file_sync`), `TZS_HEADER_IN_VALUE` (the header is the
/// first `header_size` bytes of each value), `TZS_NO_FSYNC` (tests only).
/// `log_size`: the index's log size (0 = default).
///
/// On success `*out` receives a handle owned by the caller (free it with
/// `tzs_indexed_file_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL/empty/
/// non-UTF-8 `dir`, NULL `out`, unknown flags, sizes out of range or
/// different from the store's), `TZS_NOT_FOUND` (read-only open of a missing
/// store), `TZS_LOCKED`, `TZS_CORRUPTED`, `TZS_NO_SPACE`, `TZS_IO`.
///
/// A damaged store returns `TZS_CORRUPTED` with an error naming the file
/// and the offset (a record that fails its checksum or length bound while
/// intact records or index entries follow it, a truncated acknowledged
/// record, a missing or garbled `current`, `values` or index file, a FIFO
/// or directory in place of one), and nothing is changed: only a torn tail
/// (the incomplete last record of an append no index entry points to) is
/// cut by a read-write open. Use `tzs_indexed_file_check` with `repair` to
/// salvage the intact values.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_open(
    dir: *const c_char,
    key_size: u32,
    header_size: u32,
    flags: u32,
    log_size: u64,
    out: *mut *mut tzs_indexed_file,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let opts = open_options(
            flags,
            TZS_READONLY | TZS_NO_FSYNC | TZS_HEADER_IN_VALUE,
            "tzs_indexed_file_open",
        )?;
        let cfg = IndexedFileConfig {
            key_size: key_size as usize,
            header_size: header_size as usize,
            header_in_value: flags & TZS_HEADER_IN_VALUE != 0,
            log_size,
            open: opts,
        };
        let inner = IndexedFile::open(dir, cfg)?;
        *out = args::into_handle(tzs_indexed_file {
            inner,
            key_size: key_size as usize,
            header_size: header_size as usize,
        });
        Ok(())
    })
}

/// Checks the indexed file in directory `dir` without a handle (so it
/// works on a store that refuses to open): the generation file, every
/// record of the values file (checksum, length bound, key, header) and
/// every index entry against the record it points to. Changes nothing
/// unless `repair`. With `repair` (takes the store's lock: no read-write
/// handle may be open, in this or another process), a torn tail is moved
/// into the quarantine; on damage the store is rebuilt into a new
/// generation from the newest intact record of each key (a key whose
/// acknowledged newest record is damaged is dropped, never rolled back to an
/// older value), and the damaged generation is moved whole into
/// `DIR/.tzs-quarantine/<UTC time>-<n>/`; nothing is deleted. Afterwards
/// the store opens and checks clean.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` or `quarantined:` line per item. Returns `TZS_OK` when no
/// problem remains, `TZS_CORRUPTED` (naming the problems) otherwise. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL, empty or non-UTF-8 `dir`, unknown flags),
/// `TZS_NOT_FOUND` (no such directory), `TZS_LOCKED` (with `repair`, a
/// read-write handle is open), `TZS_NO_SPACE`, `TZS_IO`. `flags`:
/// `TZS_NO_FSYNC` only. Thread-safe; the sizes are read from the store.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `report` is NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_check(
    dir: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(dir, "path"))?;
        super::check_export(
            "tzs_indexed_file_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| IndexedFile::check(p, o, r),
        )
    })
}

/// `TZS_OK` if `key` is stored, `TZS_NOT_FOUND` if not (no error object).
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle or key, wrong key length).
/// Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle; `key` is NULL or `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_mem(
    f: *mut tzs_indexed_file,
    key: *const u8,
    key_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let key = arg!(bytes_exact(key, key_len, f.key_size, "key"))?;
        if f.inner.mem(key)? {
            Ok(())
        } else {
            Err(Error::NotFound(String::new()))
        }
    })
}

/// Copies the header of `key` into `header_out` (exactly `header_size`
/// bytes), from the index alone (the values file is not read).
/// `TZS_NOT_FOUND` if the key is not stored. Errors: `TZS_INVALID_ARGUMENT`
/// (NULL handle/key/buffer, wrong lengths). Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle; `key` is NULL or `key_len` readable bytes;
/// `header_out` is NULL or `header_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_header(
    f: *mut tzs_indexed_file,
    key: *const u8,
    key_len: usize,
    header_out: *mut u8,
    header_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let key = arg!(bytes_exact(key, key_len, f.key_size, "key"))?;
        let out = arg!(out_exact(header_out, header_len, f.header_size, "header"))?;
        if f.inner.header(key, out)? {
            Ok(())
        } else {
            Err(Error::NotFound(String::new()))
        }
    })
}

/// Reads the value of `key` into `*value_out` (library-allocated; free it
/// with `tzs_bytes_free`) and, when `header_out` is not NULL, its header
/// (`header_len` must then be `header_size`). `TZS_NOT_FOUND` if the key is
/// not stored (outputs untouched). Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle/key/`value_out`, wrong lengths), `TZS_CORRUPTED` (the record the
/// index points to is damaged: out of the file, a length over its bound, a
/// bad checksum, another key or header; the error names the file and
/// offset, and another key's value is never returned), `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle; `key` is NULL or `key_len` readable bytes;
/// `value_out` is NULL or writable; `header_out` is NULL or `header_len`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_read(
    f: *mut tzs_indexed_file,
    key: *const u8,
    key_len: usize,
    value_out: *mut tzs_bytes,
    header_out: *mut u8,
    header_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let key = arg!(bytes_exact(key, key_len, f.key_size, "key"))?;
        let value_out = arg!(out(value_out, "value_out"))?;
        let header_out = if header_out.is_null() {
            None
        } else {
            Some(arg!(out_exact(
                header_out,
                header_len,
                f.header_size,
                "header"
            ))?)
        };
        let Some((value, header)) = f.inner.read(key)? else {
            return Err(Error::NotFound(String::new()));
        };
        if let Some(h) = header_out {
            h.copy_from_slice(&header);
        }
        args::set_bytes(value_out, value);
        Ok(())
    })
}

/// Appends `value` (up to 256 MiB, NULL allowed when 0) for `key`, with
/// `header` (`header_size` bytes; must be NULL with length 0 for a store
/// opened with `TZS_HEADER_IN_VALUE`, whose values must be at least
/// `header_size` bytes). A key appended again is replaced. With `flush` the
/// value and its index entry are durable on return. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle/key, wrong lengths, a value over
/// 256 MiB, header given or missing wrongly), `TZS_READ_ONLY`,
/// `TZS_NO_SPACE`, `TZS_IO`. Thread-safe (appends are serialised).
///
/// # Safety
/// `f` is NULL or a live handle; `key`, `header`, `value` are NULL or
/// readable for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_append(
    f: *mut tzs_indexed_file,
    key: *const u8,
    key_len: usize,
    header: *const u8,
    header_len: usize,
    value: *const u8,
    value_len: usize,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let key = arg!(bytes_exact(key, key_len, f.key_size, "key"))?;
        let header = if header.is_null() && header_len == 0 {
            None
        } else {
            Some(arg!(bytes(header, header_len, "header"))?)
        };
        let value = arg!(bytes(value, value_len, "value"))?;
        f.inner.append(key, header, value, flush)
    })
}

/// Makes every append so far durable (values fsynced before the index).
/// `TZS_OK` on a read-only handle. Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle), `TZS_NO_SPACE`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_flush(
    f: *mut tzs_indexed_file,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        f.inner.flush()
    })
}

/// Read-only handles: loads what the writer flushed since the open or the
/// last sync (following a finished compaction). `TZS_OK` and no effect on a
/// read-write handle. Errors: `TZS_INVALID_ARGUMENT` (NULL handle),
/// `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_sync(
    f: *mut tzs_indexed_file,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        f.inner.sync()
    })
}

/// Starts a compaction. `keep_fn(key, key_len, ctx)` is called
/// synchronously, on the calling thread and before this function returns,
/// once per stored key; the values of the kept keys are then copied into a
/// new values file in the background while appends continue (values
/// appended meanwhile are always kept), and the store switches to it
/// atomically. Wait for the end (and its error) with
/// `tzs_indexed_file_await_gc`. The library keeps no pointer to `ctx` or
/// `keep_fn` after this call returns. Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle or `keep_fn`, a compaction already running), `TZS_READ_ONLY`,
/// `TZS_IO`, or the error of the previous compaction if it was not awaited.
///
/// # Safety
/// `f` is NULL or a live handle; `keep_fn` is NULL or a function safe to
/// call with the given `ctx` from this thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_gc(
    f: *mut tzs_indexed_file,
    keep_fn: tzs_indexed_file_keep_fn,
    ctx: *mut c_void,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let keep = keep_fn.ok_or_else(|| Error::invalid("keep_fn is NULL"))?;
        f.inner.gc(|k| {
            // SAFETY: `k` is valid for the call; the caller vouches for `keep` and `ctx` (function contract).
            unsafe { keep(k.as_ptr(), k.len(), ctx) }
        })
    })
}

/// Octez's `gc ?async` for an indexed file: compacts the store, keeping
/// the values of the keys for which `filter(ctx, key, key_len, header,
/// header_len)` returns true (the header as stored in the index; the
/// value is not read). The filter is asked about the keys stored when the
/// GC starts, on a library worker thread (or on the thread waiting for
/// the GC), one call at a time; values appended meanwhile are kept. The
/// kept values are then copied into a new generation that replaces the
/// old one atomically: readers see the old or the new store, a crash
/// leaves one or the other. With `wait` false it returns at once (wait
/// with `tzs_indexed_file_await_gc`); with `wait` true once the GC ended,
/// returning its error. `*started` (when not NULL) receives whether a GC
/// started: false when one is already running, in which case this request
/// is ignored, as in Octez.
///
/// Inside `filter`, this store may be read (`tzs_indexed_file_mem`,
/// `header`, `read`, `len`, `is_gc_finished`) and appended to; calls that
/// wait for the GC (`tzs_indexed_file_await_gc`,
/// `tzs_indexed_file_cancel_gc`, this function with `wait`) fail with
/// `TZS_INVALID_ARGUMENT` instead of waiting for themselves, and
/// `tzs_indexed_file_close` must not be called. The library keeps no
/// pointer to `filter` or `ctx` once the GC ended (see
/// `tzs_indexed_file_is_gc_finished`).
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle or `filter`; with `wait`,
/// called from inside this store's filter), `TZS_READ_ONLY`, `TZS_IO`,
/// the error of an earlier GC nobody awaited, and with `wait` this GC's
/// (as `tzs_indexed_file_await_gc`). Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle; `filter` is NULL or a function that may
/// be called with `ctx` from any thread until the GC ends, and that
/// returns normally (no `longjmp` or C++ exception out of it); `started`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_gc_filter(
    f: *mut tzs_indexed_file,
    filter: tzs_filter_fn,
    ctx: *mut c_void,
    wait: bool,
    started: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let started = arg!(live_mut(started));
        let mut keep = CFilter::new(filter, ctx)?;
        let did = f.inner.gc_filter(move |k, h| keep.keep(k, h), wait)?;
        args::put(started, did);
        Ok(())
    })
}

/// True when no GC (compaction) runs on this store (Octez's
/// `is_gc_finished`); false for a NULL handle. Never blocks. Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_is_gc_finished(f: *mut tzs_indexed_file) -> bool {
    call_value(|| arg!(live(f)).is_some_and(|f| f.inner.is_gc_finished()))
}

/// Stops the running GC (from `tzs_indexed_file_gc_filter` or
/// `tzs_indexed_file_gc`) and waits until it stopped: the store is left
/// exactly as before it (the generation it was filling is removed), and a
/// later GC runs normally. `*cancelled` (when not NULL) receives true if a
/// GC was stopped before it switched generations, false if none ran or it
/// had already switched. Errors: `TZS_INVALID_ARGUMENT` (NULL handle,
/// called from inside this store's filter). Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle; `cancelled` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_cancel_gc(
    f: *mut tzs_indexed_file,
    cancelled: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let cancelled = arg!(live_mut(cancelled));
        let did = f.inner.cancel_gc()?;
        args::put(cancelled, did);
        Ok(())
    })
}

/// Waits for the running compaction (from `tzs_indexed_file_gc` or
/// `tzs_indexed_file_gc_filter`; Octez's `wait_gc_completion`), if any,
/// and returns its outcome: `TZS_OK` (also for a cancelled one), or its
/// error (`TZS_IO`, `TZS_NO_SPACE`, `TZS_CORRUPTED`, `TZS_PANIC`),
/// reported once. `TZS_INVALID_ARGUMENT` for a NULL handle or a call from
/// inside this store's GC filter.
/// Every record a compaction copies is verified: on `TZS_CORRUPTED` it
/// stopped, and the old generation stays current with all its values.
/// Thread-safe.
///
/// # Safety
/// `f` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_await_gc(
    f: *mut tzs_indexed_file,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        f.inner.await_gc()
    })
}

/// Closes the store: waits for a running compaction (stop it first with
/// `tzs_indexed_file_cancel_gc` to close at once), flushes, releases the
/// lock. NULL is a no-op. Must be the last call on the handle, and never
/// made from inside its GC filter.
///
/// # Safety
/// `f` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_close(f: *mut tzs_indexed_file) {
    call_void(|| arg!(free_handle(f)))
}
