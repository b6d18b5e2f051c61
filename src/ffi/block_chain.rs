//! C API of the block store's chain bookkeeping: creation with a genesis,
//! loading with a genesis check, savepoint and caboose, merges that keep
//! preserved blocks, and the merge status.

use std::ffi::c_char;

use super::args;
use super::block_store::{mode_tag, options_or_default, tzs_block_store};
use super::boundary::{arg, call};
use super::error::{status_of, tzs_error};
use super::types::*;
use crate::block::store::{BlockDescr, BlockStore, MergeStatus};
use crate::error::{Error, Result};

fn descr_out(out: &mut tzs_block_descr, d: Option<BlockDescr>, what: &str) -> Result<()> {
    let d = d.ok_or_else(|| Error::NotFound(format!("no {what} is recorded")))?;
    *out = tzs_block_descr {
        hash: d.hash,
        level: d.level,
    };
    Ok(())
}

fn descr_in(d: &tzs_block_descr) -> BlockDescr {
    BlockDescr {
        hash: d.hash,
        level: d.level,
    }
}

/// Creates a block store in `dir` holding `genesis` (its first block, stored
/// durably), with `opts` (NULL = the defaults; must not ask for
/// `TZS_READONLY`), as Octez's `Block_store.create ~genesis_block`. The
/// genesis, savepoint and caboose are then `genesis`.
///
/// On success `*out` receives a handle owned by the caller
/// (`tzs_block_store_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL or
/// invalid arguments, `dir` already holds a block store, read-only
/// options), `TZS_LOCKED`, `TZS_CORRUPTED`, `TZS_NO_SPACE`, `TZS_IO`.
///
/// # Safety
/// `dir` NULL or NUL-terminated; `opts` NULL or valid; `genesis` NULL or
/// valid with its buffers; `out`/`err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_create(
    dir: *const c_char,
    opts: *const tzs_block_store_options,
    genesis: *const tzs_block,
    out: *mut *mut tzs_block_store,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let genesis = arg!(block_in(genesis))?;
        let inner = BlockStore::create(dir, options_or_default(arg!(live(opts)))?, &genesis)?;
        *out = args::into_handle(tzs_block_store { inner });
        Ok(())
    })
}

/// Opens the existing block store in `dir` (as `tzs_block_store_open`) and
/// checks that its genesis is the block whose 32-byte hash is at
/// `genesis_hash` (Octez's `Block_store.load`).
///
/// On success `*out` receives a handle owned by the caller
/// (`tzs_block_store_close`). Errors: those of `tzs_block_store_open`;
/// `TZS_NOT_FOUND` (`dir` holds no block store), `TZS_INCONSISTENT` (its
/// genesis is another block).
///
/// # Safety
/// `dir` NULL or NUL-terminated; `opts` NULL or valid; `genesis_hash` NULL
/// or 32 readable bytes; `out`/`err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_load(
    dir: *const c_char,
    opts: *const tzs_block_store_options,
    genesis_hash: *const u8,
    out: *mut *mut tzs_block_store,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let genesis = arg!(hash(genesis_hash, "genesis_hash"))?;
        let inner = BlockStore::load(dir, options_or_default(arg!(live(opts)))?, genesis)?;
        *out = args::into_handle(tzs_block_store { inner });
        Ok(())
    })
}

/// Fills `*out` with the store's genesis block (recorded when its first
/// block was stored). `TZS_NOT_FOUND` while the store holds no block (or
/// after a repair rebuilt its manifest). Errors: `TZS_INVALID_ARGUMENT`
/// (NULL). Thread-safe.
///
/// # Safety
/// `s` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_genesis(
    s: *mut tzs_block_store,
    out: *mut tzs_block_descr,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        descr_out(arg!(out(out, "out"))?, s.inner.genesis(), "genesis")
    })
}

/// Fills `*out` with the savepoint: the lowest block stored with its
/// metadata. Merges move it by the history mode (Octez's rules);
/// `tzs_block_store_write_savepoint` sets it. `TZS_NOT_FOUND` while the
/// store holds no block. Errors: `TZS_INVALID_ARGUMENT` (NULL).
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_savepoint(
    s: *mut tzs_block_store,
    out: *mut tzs_block_descr,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        descr_out(arg!(out(out, "out"))?, s.inner.savepoint(), "savepoint")
    })
}

/// Fills `*out` with the caboose: the lowest block stored. Only ROLLING
/// merges move it; `tzs_block_store_write_caboose` sets it. `TZS_NOT_FOUND`
/// while the store holds no block. Errors: `TZS_INVALID_ARGUMENT` (NULL).
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_caboose(
    s: *mut tzs_block_store,
    out: *mut tzs_block_descr,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        descr_out(arg!(out(out, "out"))?, s.inner.caboose(), "caboose")
    })
}

/// Sets the savepoint to `*savepoint`, durably on return (one atomic
/// replacement of the manifest: a crash leaves the old or the new value).
/// Errors: `TZS_INVALID_ARGUMENT` (NULL, below the caboose or the genesis),
/// `TZS_NOT_FOUND` (the block is not stored), `TZS_INCONSISTENT` (it is
/// stored at another level), `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `savepoint` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_write_savepoint(
    s: *mut tzs_block_store,
    savepoint: *const tzs_block_descr,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let d = arg!(handle(savepoint, "savepoint"))?;
        s.inner.write_savepoint(descr_in(d))
    })
}

/// Sets the caboose to `*caboose`, durably on return (as
/// `tzs_block_store_write_savepoint`). Errors: `TZS_INVALID_ARGUMENT` (NULL,
/// above the savepoint or below the genesis), `TZS_NOT_FOUND`,
/// `TZS_INCONSISTENT`, `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `caboose` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_write_caboose(
    s: *mut tzs_block_store,
    caboose: *const tzs_block_descr,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let d = arg!(handle(caboose, "caboose"))?;
        s.inner.write_caboose(descr_in(d))
    })
}

/// `tzs_block_store_merge`, keeping in the floating store, with their
/// metadata, the new cemented top (the last chunk end: the head's last
/// preserved block) and up to `max_op_ttl` of its ancestors (as many as the
/// floating stores hold), as Octez's `merge_stores` keeps the blocks from
/// the LPBL down to `LPBL - max_op_ttl`. Those blocks are then both
/// cemented and floating; reads take the floating copy. The merge moves the
/// savepoint and caboose by the history mode (FULL/ROLLING 0: to the lowest
/// preserved block) in the same atomic write that swaps the stores, and
/// ROLLING 0 cements nothing. Errors as `tzs_block_store_merge`.
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `head` NULL or 32 bytes; `chunk_ends` NULL or
/// `n_chunk_ends` readable `int32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_merge_preserving(
    s: *mut tzs_block_store,
    head: *const u8,
    chunk_ends: *const i32,
    n_chunk_ends: usize,
    max_op_ttl: u32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let head = arg!(hash(head, "head"))?;
        let ends = arg!(array(chunk_ends, n_chunk_ends, "chunk_ends"))?;
        s.inner.merge_preserving(head, ends, max_op_ttl)
    })
}

/// Fills `*state` with where the background merge stands (Octez's
/// `get_merge_status`): `TZS_MERGE_NOT_RUNNING`, `TZS_MERGE_RUNNING`, or
/// `TZS_MERGE_FAILED` when the last merge of this handle failed (until the
/// next merge starts). If `failure` is not NULL, `*failure` receives, for
/// `TZS_MERGE_FAILED`, a new error holding the merge's status and message
/// (owned by the caller: `tzs_error_free`), and NULL otherwise. Does not
/// wait. Errors: `TZS_INVALID_ARGUMENT` (NULL `s` or `state`). Thread-safe.
///
/// # Safety
/// `s` NULL or live; `state` NULL or writable; `failure` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_merge_status(
    s: *mut tzs_block_store,
    state: *mut tzs_merge_state,
    failure: *mut *mut tzs_error,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let state = arg!(out(state, "state"))?;
        let failure = arg!(live_mut(failure));
        let (code, failed) = match s.inner.merge_status() {
            MergeStatus::NotRunning => (TZS_MERGE_NOT_RUNNING, None),
            MergeStatus::Running => (TZS_MERGE_RUNNING, None),
            MergeStatus::Failed(e) => (TZS_MERGE_FAILED, Some(e)),
        };
        *state = code;
        // The error is made only for a caller who takes it (and owns it).
        if let Some(f) = failure {
            *f = failed.map_or(std::ptr::null_mut(), |e| {
                Box::into_raw(Box::new(tzs_error::new(status_of(&e), e.message())))
            });
        }
        Ok(())
    })
}

/// Fills `*mode` (`TZS_HISTORY_*`) and `*offset` with the store's history
/// mode and offset (persisted; changed only by
/// `tzs_block_store_switch_history_mode`). Errors: `TZS_INVALID_ARGUMENT`
/// (NULL). Thread-safe.
///
/// # Safety
/// `s` NULL or live; `mode`/`offset` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_history(
    s: *mut tzs_block_store,
    mode: *mut tzs_history_mode,
    offset: *mut u32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let mode = arg!(out(mode, "mode"))?;
        let offset = arg!(out(offset, "offset"))?;
        let (m, o) = s.inner.history();
        *mode = mode_tag(m);
        *offset = o;
        Ok(())
    })
}

/// Switches the store to history `mode` (`TZS_HISTORY_*`) with `offset`,
/// by Octez's rules: ARCHIVE may become FULL or ROLLING, FULL may become
/// FULL or ROLLING, ROLLING may change its offset; switching to ARCHIVE from
/// another mode, or from ROLLING to FULL, is refused. The savepoint and
/// caboose move as Octez moves them; `head` (32 bytes) is the node's head,
/// and the blocks kept are its last preserved block (the last merge's top)
/// and `max_op_ttl` ancestors. Mode, offset and marks are written in one
/// atomic, durable step, then the cemented store's GC for the new mode runs
/// before this returns (a crash in between leaves a consistent store that
/// holds more than its marks promise). Waits for a running merge first.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL, unknown mode, a refused switch
/// (the message names both modes), offset above 1000), `TZS_NOT_FOUND`
/// (`head` not stored), `TZS_READ_ONLY`, `TZS_CORRUPTED` (the GC met
/// damage; the switch itself is done), `TZS_NO_SPACE`, `TZS_IO`.
/// Thread-safe; blocks while the GC runs.
///
/// # Safety
/// `s` NULL or live; `head` NULL or 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_switch_history_mode(
    s: *mut tzs_block_store,
    head: *const u8,
    mode: tzs_history_mode,
    offset: u32,
    max_op_ttl: u32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let head = arg!(hash(head, "head"))?;
        let mode = u8::try_from(mode)
            .ok()
            .and_then(crate::block::store::manifest::mode_of)
            .ok_or_else(|| Error::invalid(format!("unknown history mode {mode}")))?;
        s.inner.switch_history_mode(head, mode, offset, max_op_ttl)
    })
}
