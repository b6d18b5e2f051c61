//! C API of the index engine.

use std::ffi::{c_char, c_void};

use parking_lot::Mutex;

use super::args;
use super::boundary::{arg, call, call_value, call_void};
use super::error::tzs_error;
use super::gc::{CFilter, tzs_filter_fn};
use super::open_options;
use super::types::*;
use crate::error::Error;
use crate::index::{Index, IndexConfig, IndexIter};

/// An open index: fixed-size keys to fixed-size values. Thread-safe: any
/// thread may call any function on it concurrently (lookups never wait for
/// each other nor for a merge), except `tzs_index_close`, which must be the
/// last call.
pub struct tzs_index {
    inner: Index,
}

/// A snapshot iterator over an index, from `tzs_index_iter_new`. It stays
/// valid after later writes (which it does not see) and even after the
/// index is closed. Calls on one iterator are serialised internally.
pub struct tzs_index_iter {
    iter: Mutex<IndexIter>,
    key_size: usize,
    value_size: usize,
}

/// Opens (read-write: creating if needed) the index in directory `dir`.
///
/// `key_size` (1..=65536) and `value_size` (0..=65536) are fixed for the
/// index's life; reopening with other sizes fails. `flags`: `TZS_READONLY`
/// (no writes, no lock; see new data with `tzs_index_sync`), `TZS_REMOVABLE`
/// (allows `tzs_index_remove`; must match the creation), `TZS_NO_FSYNC`
/// (tests only). `log_size`: entries buffered in the log before a background
/// merge (0 = default 500000). A read-write open locks `dir/lock`.
///
/// On success `*out` receives a handle owned by the caller (free it with
/// `tzs_index_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL/empty/non-UTF-8
/// `dir`, NULL `out`, unknown flags, sizes out of range or different from the
/// index's), `TZS_NOT_FOUND` (read-only open of a missing index), `TZS_LOCKED`
/// (another read-write instance is open), `TZS_CORRUPTED`, `TZS_NO_SPACE`,
/// `TZS_IO`.
///
/// A damaged index returns `TZS_CORRUPTED` with a message naming the file
/// and the offset: a `meta`, `data` or log that fails a checksum, a log
/// header garbled in front of entries, a whole log entry failing its
/// checksum (even the last one), `data` missing or older than `meta`
/// records, a directory or FIFO in place of a file. Nothing is changed
/// then: the only thing an open ever cuts is an incomplete last log entry
/// (a write torn by a crash, never acknowledged). Use `tzs_index_check`
/// with `repair` to salvage the intact entries.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_open(
    dir: *const c_char,
    key_size: u32,
    value_size: u32,
    flags: u32,
    log_size: u64,
    out: *mut *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let opts = open_options(
            flags,
            TZS_READONLY | TZS_NO_FSYNC | TZS_REMOVABLE,
            "tzs_index_open",
        )?;
        let cfg = IndexConfig {
            key_size: key_size as usize,
            value_size: value_size as usize,
            removable: flags & TZS_REMOVABLE != 0,
            log_size,
            open: opts,
        };
        let inner = Index::open(dir, cfg)?;
        *out = args::into_handle(tzs_index { inner });
        Ok(())
    })
}

/// Checks the index in directory `dir` without a handle (so it also works
/// on an index that refuses to open): `meta`, every entry of `data` and of
/// each log. Changes nothing unless `repair`. With `repair` (takes
/// `dir/lock`), it keeps every entry that passes its checksum and moves
/// whatever it drops into `dir/.tzs-quarantine/<UTC time>-<n>/`, nothing is
/// deleted: a damaged log is moved there and replaced by a log holding its
/// intact entries; a damaged `data` (whose entries cannot be told intact
/// one by one) is moved there, the logs kept; a damaged or missing `meta`
/// is rewritten from the data or log headers. Afterwards the index opens.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` (entries kept and dropped per file) or `quarantined:` line
/// per item. Returns `TZS_OK` when no problem remains, `TZS_CORRUPTED`
/// (naming the problems) otherwise. Errors: `TZS_INVALID_ARGUMENT` (NULL,
/// empty or non-UTF-8 `dir`, unknown flags), `TZS_NOT_FOUND` (no such
/// directory), `TZS_LOCKED` (with `repair`, a read-write handle is open),
/// `TZS_IO`. `flags`: `TZS_NO_FSYNC` only. Thread-safe; a check without
/// repair may run while handles are open (it reads a snapshot of the files).
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `report` is NULL or writable;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_check(
    dir: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(dir, "path"))?;
        super::check_export(
            "tzs_index_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| Index::check(p, o, r),
        )
    })
}

/// Reports whether `key` (exactly `key_size` bytes) is bound: `TZS_OK` if
/// so, `TZS_NOT_FOUND` if not (no error object). Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle or key, wrong key length).
/// Thread-safe, allocation-free.
///
/// # Safety
/// `ix` is NULL or a live handle; `key` is NULL or `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_mem(
    ix: *mut tzs_index,
    key: *const u8,
    key_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let key = arg!(bytes_exact(key, key_len, ix.inner.key_size(), "key"))?;
        if ix.inner.mem(key)? {
            Ok(())
        } else {
            Err(Error::NotFound(String::new()))
        }
    })
}

/// Copies the value bound to `key` into `value_out` (exactly `value_size`
/// bytes). `TZS_NOT_FOUND` (buffer untouched, no error object) if the key is
/// not bound. Errors: `TZS_INVALID_ARGUMENT` (NULL handle, key or buffer;
/// wrong key or buffer length). Thread-safe, allocation-free.
///
/// # Safety
/// `ix` is NULL or a live handle; `key` is NULL or `key_len` readable bytes;
/// `value_out` is NULL or `value_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_find(
    ix: *mut tzs_index,
    key: *const u8,
    key_len: usize,
    value_out: *mut u8,
    value_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let key = arg!(bytes_exact(key, key_len, ix.inner.key_size(), "key"))?;
        let out = arg!(out_exact(
            value_out,
            value_len,
            ix.inner.value_size(),
            "value"
        ))?;
        if ix.inner.find_into(key, out)? {
            Ok(())
        } else {
            Err(Error::NotFound(String::new()))
        }
    })
}

/// Binds `key` to `value` (inserting or replacing); both are copied. With
/// `flush`, this binding and all earlier ones are durable on return (fsync);
/// otherwise they are buffered until `tzs_index_flush` (or a later flushing
/// add). May start a background merge; waits for a running one only when
/// `log_size` more entries were added since it started (memory then holds
/// two full logs). Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle/key/value, wrong lengths),
/// `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`, and the error of a failed
/// background merge (reported once; the merge is retried later).
/// Thread-safe (writers are serialised).
///
/// # Safety
/// `ix` is NULL or a live handle; `key`/`value` are NULL or readable for
/// their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_add(
    ix: *mut tzs_index,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let key = arg!(bytes_exact(key, key_len, ix.inner.key_size(), "key"))?;
        let value = arg!(bytes_exact(
            value,
            value_len,
            ix.inner.value_size(),
            "value"
        ))?;
        ix.inner.add(key, value, flush)
    })
}

/// Unbinds `key` (a no-op when it is not bound). Only for indexes opened
/// with `TZS_REMOVABLE`. Durability as `tzs_index_add`. Errors:
/// `TZS_INVALID_ARGUMENT` (not removable, NULL handle/key, wrong key length),
/// `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `key` is NULL or `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_remove(
    ix: *mut tzs_index,
    key: *const u8,
    key_len: usize,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let key = arg!(bytes_exact(key, key_len, ix.inner.key_size(), "key"))?;
        ix.inner.remove(key, flush)
    })
}

/// Makes every binding added so far durable (write and fsync the logs).
/// `TZS_OK` on a read-only handle. Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle), `TZS_NO_SPACE`, `TZS_IO`, or the error of a failed background
/// merge. Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_flush(
    ix: *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        ix.inner.flush()
    })
}

/// Read-only handles: loads what the read-write instance has written out
/// (flushed) since the open or the last sync. `TZS_OK` and no effect on a
/// read-write handle. Errors: `TZS_INVALID_ARGUMENT` (NULL handle),
/// `TZS_CORRUPTED` (a new data file or a new log entry fails its checks;
/// the message names the file and the offset), `TZS_IO`.
/// Thread-safe; lookups running meanwhile see the old or the new state.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_sync(
    ix: *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        ix.inner.sync()
    })
}

/// Waits for the running background merge, if any. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle) or the merge's own error (`TZS_IO`,
/// `TZS_NO_SPACE`, `TZS_CORRUPTED`, `TZS_PANIC`), reported once. A merge
/// verifies every entry it copies: on damage it publishes nothing and the
/// index keeps its state from before it (`TZS_CORRUPTED` naming the file
/// and the offset).
/// Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_await_merge(
    ix: *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        ix.inner.await_merge()
    })
}

/// Keeps only the bindings for which `filter(ctx, key, key_len, value,
/// value_len)` returns true (mirage index's `filter`), and returns once the
/// result is durable. Readers meanwhile (other threads, read-only handles
/// after `tzs_index_sync`) see every binding until the filtered data file
/// is published, then only the kept ones, never a mix; a crash leaves one
/// state or the other. Bindings added meanwhile are not offered to the
/// filter and are kept. Waits for a running GC first; `tzs_index_cancel_gc`
/// does not stop it.
///
/// `filter` is called once per binding (the value without the removable
/// tag), one call at a time, on a library worker thread or on this thread,
/// and never after this function returns. Inside it, this index may be
/// read (`tzs_index_find`, `tzs_index_mem`, `tzs_index_len`, iterators,
/// `tzs_index_is_merging`, `tzs_index_is_gc_finished`); every call on it
/// that writes or waits (`add`, `remove`, `flush`, `filter`, `gc`,
/// `await_gc`, `cancel_gc`, `clear`, `try_merge`, `await_merge`) fails
/// with `TZS_INVALID_ARGUMENT` instead of waiting for itself, and
/// `tzs_index_close` must not be called. Other stores may be used freely.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle or `filter`, called from
/// inside this index's filter), `TZS_READ_ONLY`, `TZS_CORRUPTED` (a
/// binding failed its checksum), `TZS_NO_SPACE`, `TZS_IO`; on any error
/// the index is unchanged. Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `filter` is NULL or a function that may
/// be called with `ctx` from any thread until this function returns, and
/// that returns normally (no `longjmp` or C++ exception out of it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_filter(
    ix: *mut tzs_index,
    filter: tzs_filter_fn,
    ctx: *mut c_void,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let mut f = CFilter::new(filter, ctx)?;
        ix.inner.filter(move |k, v| f.keep(k, v))
    })
}

/// Octez's `gc ?async` for an indexable store: keeps only the bindings for
/// which `filter` returns true, as `tzs_index_filter` does, but as a
/// background GC. With `wait` false it returns at once; with `wait` true,
/// once the GC is durable (or was cancelled meanwhile, leaving the index
/// unchanged). `*started` (when `started` is not NULL) receives whether a
/// GC started: false when one is already running, in which case this
/// request is ignored, as in Octez.
///
/// `filter` runs as for `tzs_index_filter` (same threads, same calls
/// allowed inside it), from now until the GC ends: until
/// `tzs_index_is_gc_finished` returns true, or `tzs_index_await_gc`,
/// `tzs_index_cancel_gc` or `tzs_index_close` returns. The library keeps
/// no pointer to `filter` or `ctx` after that.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle or `filter`, called from
/// inside this index's filter), `TZS_READ_ONLY`, the error of an earlier
/// GC nobody awaited, and with `wait` this GC's error (as
/// `tzs_index_await_gc`). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `filter` is NULL or a function that may
/// be called with `ctx` from any thread until the GC ends, and that
/// returns normally; `started` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_gc(
    ix: *mut tzs_index,
    filter: tzs_filter_fn,
    ctx: *mut c_void,
    wait: bool,
    started: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let started = arg!(live_mut(started));
        let mut f = CFilter::new(filter, ctx)?;
        let did = ix.inner.gc(move |k, v| f.keep(k, v), wait)?;
        args::put(started, did);
        Ok(())
    })
}

/// Waits for the running GC, if any (Octez's `wait_gc_completion`), and
/// returns its outcome once: `TZS_OK` (also for a cancelled GC), or its
/// error: `TZS_CORRUPTED`, `TZS_NO_SPACE`, `TZS_IO`, `TZS_PANIC`. A failed GC leaves the
/// index as it was. Errors: `TZS_INVALID_ARGUMENT` (NULL handle, called
/// from inside this index's filter). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_await_gc(
    ix: *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        ix.inner.await_gc()
    })
}

/// True when no GC runs on this index (Octez's `is_gc_finished`); false
/// for a NULL handle. Never blocks. Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_is_gc_finished(ix: *mut tzs_index) -> bool {
    call_value(|| arg!(live(ix)).is_some_and(|ix| ix.inner.is_gc_finished()))
}

/// Stops the GC started by `tzs_index_gc` and waits until it stopped: the
/// index is left exactly as before the GC, and a later GC runs normally.
/// `*cancelled` (when not NULL) receives true if a GC was stopped before
/// it published its result, false if none ran, it had already finished,
/// or it is a `tzs_index_filter`. Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle, called from inside this index's filter). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `cancelled` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_cancel_gc(
    ix: *mut tzs_index,
    cancelled: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let cancelled = arg!(live_mut(cancelled));
        let did = ix.inner.cancel_gc()?;
        args::put(cancelled, did);
        Ok(())
    })
}

/// Removes every binding (mirage index's `clear`), durably on return: a
/// crash leaves every binding or none. A running GC is cancelled and a
/// running merge waited for (its error, moot now, is dropped). Lookups
/// wait for the few file operations this takes, then see an empty index;
/// read-only handles see it after `tzs_index_sync`. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle, called from inside this index's
/// filter), `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_clear(
    ix: *mut tzs_index,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        ix.inner.clear()
    })
}

/// Starts a background merge of the log when it holds any binding and no
/// merge or GC runs, and returns at once; `*started` (when not NULL)
/// receives whether it started one. (Mirage's `try_merge` only merges a
/// log of `log_size` entries, which here merges by itself.) Wait for it
/// with `tzs_index_await_merge`. Errors: `TZS_INVALID_ARGUMENT` (NULL
/// handle, called from inside this index's filter), `TZS_READ_ONLY`,
/// `TZS_NO_SPACE`, `TZS_IO`, or the error of a failed background merge
/// (reported once). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `started` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_try_merge(
    ix: *mut tzs_index,
    started: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let started = arg!(live_mut(started));
        let did = ix.inner.try_merge()?;
        args::put(started, did);
        Ok(())
    })
}

/// True while a merge or a GC runs in the background (mirage index's
/// `is_merging`); false on a read-only or NULL handle. Never blocks.
/// Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_is_merging(ix: *mut tzs_index) -> bool {
    call_value(|| arg!(live(ix)).is_some_and(|ix| ix.inner.is_merging()))
}

/// Creates a snapshot iterator over all bindings (order unspecified, each
/// key once). `*out` is owned by the caller: free it with
/// `tzs_index_iter_free`. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or
/// `out`). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_iter_new(
    ix: *mut tzs_index,
    out: *mut *mut tzs_index_iter,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let ix = arg!(handle(ix, "index"))?;
        let out = arg!(out(out, "out"))?;
        let iter = ix.inner.iter()?;
        *out = args::into_handle(tzs_index_iter {
            iter: Mutex::new(iter),
            key_size: ix.inner.key_size(),
            value_size: ix.inner.value_size(),
        });
        Ok(())
    })
}

/// Copies the next binding into `key_out` (`key_size` bytes) and
/// `value_out` (`value_size` bytes). `TZS_DONE` (no error object) at the
/// end. Errors: `TZS_INVALID_ARGUMENT` (NULL iterator or buffer, wrong
/// lengths).
///
/// # Safety
/// `it` is NULL or a live iterator; the buffers are NULL or writable for
/// their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_iter_next(
    it: *mut tzs_index_iter,
    key_out: *mut u8,
    key_len: usize,
    value_out: *mut u8,
    value_len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let it = arg!(handle(it, "index iterator"))?;
        let k = arg!(out_exact(key_out, key_len, it.key_size, "key"))?;
        let v = arg!(out_exact(value_out, value_len, it.value_size, "value"))?;
        match it.iter.lock().next() {
            Some(Ok((key, value))) => {
                k.copy_from_slice(&key);
                v.copy_from_slice(&value);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(Error::Done),
        }
    })
}

/// Frees an iterator. NULL is a no-op.
///
/// # Safety
/// `it` is NULL or a live iterator, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_iter_free(it: *mut tzs_index_iter) {
    call_void(|| arg!(free_handle(it)))
}

/// Number of keys bound (0 for a NULL handle). Thread-safe.
///
/// # Safety
/// `ix` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_len(ix: *mut tzs_index) -> u64 {
    call_value(|| arg!(live(ix)).map_or(0, |ix| ix.inner.len()))
}

/// Closes the index: waits for a running merge or GC (stop a GC first with
/// `tzs_index_cancel_gc` to close at once), makes the logs durable and
/// releases the lock. NULL is a no-op. Must be the last call on the handle,
/// and never made from inside its GC filter; use `tzs_index_flush`,
/// `tzs_index_await_gc` and `tzs_index_await_merge` first to see errors.
///
/// # Safety
/// `ix` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_index_close(ix: *mut tzs_index) {
    call_void(|| arg!(free_handle(ix)))
}
