//! C API of the floating block store.

use std::ffi::c_char;

use parking_lot::Mutex;

use super::args;
use super::block::{self, block_out};
use super::boundary::{arg, call, call_value, call_void};
use super::error::tzs_error;
use super::open_options;
use super::types::*;
use crate::block::floating::{Floating, FloatingIter, FloatingKind};
use crate::error::Error;

/// An open floating block store. Thread-safe: many readers and one appender
/// may use it at once (appends never block readers of stored blocks);
/// `tzs_floating_close` must be the last call.
pub struct tzs_floating {
    pub(super) inner: Floating,
}

/// An iterator over a floating store's blocks in file (arrival) order. Use
/// it from one thread at a time; it stays valid after the store is closed.
pub struct tzs_floating_iter {
    inner: Mutex<FloatingIter>,
}

fn kind_of(kind: tzs_floating_kind) -> crate::Result<FloatingKind> {
    Ok(match kind {
        TZS_FLOATING_RO => FloatingKind::Ro,
        TZS_FLOATING_RW => FloatingKind::Rw,
        TZS_FLOATING_RO_TMP => FloatingKind::RoTmp,
        TZS_FLOATING_RW_TMP => FloatingKind::RwTmp,
        TZS_FLOATING_RESTORE => FloatingKind::Restore,
        k => return Err(Error::invalid(format!("unknown floating kind {k}"))),
    })
}

/// Opens the floating store of `kind` (`TZS_FLOATING_RO`, `_RW`, `_RO_TMP`,
/// `_RW_TMP`, `_RESTORE`) in directory `dir`, creating it for a read-write
/// open. The five kinds may be open on one directory at once. A read-write
/// open recovers a crashed store: it cuts a torn tail (an incomplete last
/// block that no index entry holds, or the zeros written ahead of the
/// appends) and re-indexes blocks missing from the index.
///
/// A damaged store returns `TZS_CORRUPTED` with a message naming the file
/// and the offset (an indexed block whose entry is invalid or missing, an
/// invalid entry followed by intact ones, a damaged index), and nothing is
/// changed: no block is cut or dropped. Damage the open does not reach (an
/// entry below the last indexed one) is `TZS_CORRUPTED` from the read or
/// iteration that meets it. Use `tzs_floating_check` with `repair` to
/// salvage every intact block.
///
/// `flags`: `TZS_READONLY`, `TZS_NO_FSYNC`. On success `*out` receives a
/// handle owned by the caller (`tzs_floating_close`). Errors:
/// `TZS_INVALID_ARGUMENT` (NULL/non-UTF-8 `dir`, NULL `out`, unknown kind or
/// flags), `TZS_NOT_FOUND` (read-only open of a missing store), `TZS_LOCKED`
/// (another read-write instance of this kind), `TZS_CORRUPTED`, `TZS_IO`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out`/`err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_open(
    dir: *const c_char,
    kind: tzs_floating_kind,
    flags: u32,
    out: *mut *mut tzs_floating,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let kind = kind_of(kind)?;
        let opts = open_options(flags, TZS_READONLY | TZS_NO_FSYNC, "tzs_floating_open")?;
        let inner = Floating::open(dir, kind, &opts)?;
        *out = args::into_handle(tzs_floating { inner });
        Ok(())
    })
}

/// Checks every floating store in directory `dir` (each kind with files
/// there) without a handle, so it also works on a store that refuses to
/// open: every entry of each file must be intact (checksums), every index
/// entry must point to an intact entry of its block with its predecessor
/// list, and every entry below the last indexed one must be indexed. A torn
/// tail no index entry points to is not a problem (a read-write open cuts
/// it). Changes nothing unless `repair`.
///
/// With `repair`, each store with problems is salvaged, keeping every intact
/// block: a damaged file is rewritten with its intact entries (each block
/// once) and the original moved into `dir/.tzs-quarantine/<UTC time>-<n>/`;
/// a torn tail is saved there and cut; the index is moved there and rebuilt
/// from the file. Nothing is deleted. Afterwards the store opens and checks
/// clean. Repair takes each damaged store's index lock: no read-write
/// handle of it may be open (`TZS_LOCKED`).
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` or `quarantined:` line per item. Returns `TZS_OK` when no
/// problem remains, `TZS_CORRUPTED` (naming the problems) otherwise.
/// Errors: `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8 `dir`, unknown flags),
/// `TZS_LOCKED`, `TZS_IO`. `flags`: `TZS_NO_FSYNC` only. Thread-safe; runs
/// on the calling thread.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `report` is NULL or writable;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_check(
    dir: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(dir, "path"))?;
        super::check_export(
            "tzs_floating_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| Floating::check(p, o, r),
        )
    })
}

/// Appends `block` with its predecessor list: `n_preds` (at most 12) hashes
/// of 32 bytes at `preds`, entry i being the 2^i-th ancestor. A block
/// already stored is left unchanged (`TZS_OK`). With `flush`, the block is
/// durable on return. The caller's buffers are copied. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle/block, NULL buffer with a non-zero
/// length, more than 12 predecessors), `TZS_READ_ONLY`, `TZS_NO_SPACE`,
/// `TZS_IO`. Thread-safe (appends are serialised).
///
/// # Safety
/// `f` NULL or live; `block` NULL or valid; `preds` NULL or `n_preds * 32`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_append(
    f: *mut tzs_floating,
    block: *const tzs_block,
    preds: *const u8,
    n_preds: usize,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let block = arg!(block_in(block))?;
        let preds = arg!(preds_in(preds, n_preds))?;
        f.inner.append(&block, &preds, flush)
    })
}

/// Makes every appended block durable. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_READ_ONLY`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_flush(
    f: *mut tzs_floating,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || arg!(handle(f, "floating"))?.inner.flush())
}

/// Read-only handles: loads the blocks appended by the read-write instance
/// since open or the last sync. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_sync(
    f: *mut tzs_floating,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || arg!(handle(f, "floating"))?.inner.sync())
}

/// `TZS_OK` if the block with the 32-byte `hash` is stored, `TZS_NOT_FOUND`
/// if not. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or hash), `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `f` NULL or live; `hash` NULL or 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_mem(
    f: *mut tzs_floating,
    hash: *const u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let hash = arg!(hash(hash, "hash"))?;
        if f.inner.mem(hash)? {
            Ok(())
        } else {
            Err(Error::NotFound("block not stored".into()))
        }
    })
}

/// Writes the block's predecessor list to `*preds_out` (n x 32 bytes,
/// library-allocated; free with `tzs_bytes_free`). `TZS_NOT_FOUND` if the
/// block is not stored. Answered from the index alone. Errors:
/// `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` NULL or live; `hash` NULL or 32 readable bytes; `preds_out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_find_predecessors(
    f: *mut tzs_floating,
    hash: *const u8,
    preds_out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(preds_out, "preds_out"))?;
        let preds = f
            .inner
            .find_predecessors(hash)?
            .ok_or_else(|| Error::NotFound("block not stored".into()))?;
        *out = block::preds_out(&preds);
        Ok(())
    })
}

/// Reads the block with `hash` (contents and, if it has any, metadata) into
/// `*out`; release it with `tzs_block_free`. `TZS_NOT_FOUND` if not stored.
/// Errors: `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED` (the block's record is
/// damaged; other blocks stay readable), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` NULL or live; `hash` NULL or 32 readable bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_read_block(
    f: *mut tzs_floating,
    hash: *const u8,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let block = f
            .inner
            .read_block(hash)?
            .ok_or_else(|| Error::NotFound("block not stored".into()))?;
        block_out(out, block);
        Ok(())
    })
}

/// `tzs_floating_read_block` plus the predecessor list in `*preds_out`
/// (free with `tzs_bytes_free`). Same errors. Thread-safe.
///
/// # Safety
/// As `tzs_floating_read_block`; `preds_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_read_block_and_predecessors(
    f: *mut tzs_floating,
    hash: *const u8,
    out: *mut tzs_block,
    preds_out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let pout = arg!(out(preds_out, "preds_out"))?;
        let (block, preds) = f
            .inner
            .read_block_and_predecessors(hash)?
            .ok_or_else(|| Error::NotFound("block not stored".into()))?;
        block_out(out, block);
        *pout = block::preds_out(&preds);
        Ok(())
    })
}

/// Number of blocks stored (0 for a NULL handle). Thread-safe.
///
/// # Safety
/// `f` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_len(f: *mut tzs_floating) -> u64 {
    call_value(|| arg!(live(f)).map_or(0, |f| f.inner.len()))
}

/// Creates an iterator over the blocks stored now, in file order (the
/// `fold_left_s` analogue). Free it with `tzs_floating_iter_free`. Errors:
/// `TZS_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `f` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_iter_new(
    f: *mut tzs_floating,
    out: *mut *mut tzs_floating_iter,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let out = arg!(out(out, "out"))?;
        *out = args::into_handle(tzs_floating_iter {
            inner: Mutex::new(f.inner.iter(true)),
        });
        Ok(())
    })
}

/// Reads the next block into `*out` (free with `tzs_block_free`) and, when
/// `preds_out` is not NULL, its predecessor list (free with
/// `tzs_bytes_free`): the `fold_left_with_pred_s` analogue. Returns
/// `TZS_DONE` at the end. Errors: `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED`
/// (a damaged entry, named by file and offset: zeros or an invalid entry
/// followed by intact ones are damage, never the end; the iteration ends
/// there), `TZS_IO`.
///
/// # Safety
/// `it` NULL or live; `out` NULL or writable; `preds_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_iter_next(
    it: *mut tzs_floating_iter,
    out: *mut tzs_block,
    preds_out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let it = arg!(handle(it, "floating iterator"))?;
        let out = arg!(out(out, "out"))?;
        let entry = it.inner.lock().next().ok_or(Error::Done)??;
        block_out(out, entry.block);
        if let Some(p) = arg!(live_mut(preds_out)) {
            *p = block::preds_out(&entry.preds);
        }
        Ok(())
    })
}

/// Frees an iterator. NULL is a no-op.
///
/// # Safety
/// `it` NULL or live, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_iter_free(it: *mut tzs_floating_iter) {
    call_void(|| arg!(free_handle(it)))
}

/// Closes the store (its index is flushed; unflushed appends are kept by
/// the OS but not fsynced). NULL is a no-op. Must be the last call.
///
/// # Safety
/// `f` NULL or live, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_close(f: *mut tzs_floating) {
    call_void(|| arg!(free_handle(f)))
}
