//! C API of resulting context hashes: stored with a block (Octez's
//! `store_block block resulting_context_hash`, floating `append_block`,
//! cemented records) and read back without reading the block.

use super::block_store::tzs_block_store;
use super::boundary::{arg, call};
use super::cemented::tzs_cemented;
use super::chunk_writer::tzs_chunk_writer;
use super::error::tzs_error;
use super::floating::tzs_floating;
use super::types::*;
use crate::block::Hash;
use crate::error::{Error, Result};

fn context_out(out: &mut Hash, found: Option<Hash>) -> Result<()> {
    *out = found.ok_or_else(|| Error::NotFound("block not stored".into()))?;
    Ok(())
}

/// `tzs_block_store_store_with`, recording the block's resulting context
/// hash (the 32 bytes at `context`), which
/// `tzs_block_store_resulting_context_hash` reads back; the plain store
/// functions record 32 zero bytes. Errors as `tzs_block_store_store`.
/// Thread-safe; works during a merge (which keeps the hash).
///
/// # Safety
/// `s` NULL or live; `block` NULL or valid; `context` NULL or 32 readable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_store_with_context(
    s: *mut tzs_block_store,
    block: *const tzs_block,
    context: *const u8,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let block = arg!(block_in(block))?;
        let context = arg!(hash(context, "context"))?;
        s.inner.store_with_context(&block, context, flush)
    })
}

/// Copies the resulting context hash the block `hash` (32 bytes) was
/// stored with into the 32 bytes at `out` (zeros if none was given),
/// without reading the block: from the floating index, or from the
/// cemented record (checked, not copied). `TZS_NOT_FOUND` if the block is
/// not stored. Errors: `TZS_INVALID_ARGUMENT` (NULL), `TZS_CORRUPTED`,
/// `TZS_IO`. Thread-safe.
///
/// # Safety
/// `s` NULL or live; `hash` NULL or 32 readable bytes; `out` NULL or 32
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_resulting_context_hash(
    s: *mut tzs_block_store,
    hash: *const u8,
    out: *mut u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out.cast::<Hash>(), "out"))?;
        context_out(out, s.inner.resulting_context_hash(hash)?)
    })
}

/// `tzs_floating_append` with the block's resulting context hash (the 32
/// bytes at `context`; Octez's `append_block`). Errors as
/// `tzs_floating_append`. Thread-safe.
///
/// # Safety
/// `f` NULL or live; `block` NULL or valid; `context` NULL or 32 readable
/// bytes; `preds` NULL or `n_preds * 32` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_append_with_context(
    f: *mut tzs_floating,
    block: *const tzs_block,
    context: *const u8,
    preds: *const u8,
    n_preds: usize,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let block = arg!(block_in(block))?;
        let context = arg!(hash(context, "context"))?;
        let preds = arg!(preds_in(preds, n_preds))?;
        f.inner.append_with_context(&block, context, &preds, flush)
    })
}

/// Copies the resulting context hash of the floating block `hash` into
/// the 32 bytes at `out`, from the index alone (Octez's `find_info`).
/// `TZS_NOT_FOUND` if it is not stored. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `f` NULL or live; `hash` NULL or 32 readable bytes; `out` NULL or 32
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_resulting_context_hash(
    f: *mut tzs_floating,
    hash: *const u8,
    out: *mut u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out.cast::<Hash>(), "out"))?;
        context_out(out, f.inner.find_info(hash)?.map(|(_, c)| c))
    })
}

/// `tzs_chunk_writer_push` with the block's resulting context hash (the 32
/// bytes at `context`). Errors as `tzs_chunk_writer_push`.
///
/// # Safety
/// `w` NULL or a live writer; `block` NULL or valid; `context` NULL or 32
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_writer_push_with_context(
    w: *mut tzs_chunk_writer,
    block: *const tzs_block,
    context: *const u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let w = arg!(handle_mut(w, "chunk writer"))?;
        let b = arg!(block_in(block))?;
        let context = arg!(hash(context, "context"))?;
        w.writer.push_with_context(&b, context)
    })
}

/// Copies the resulting context hash of the cemented block `hash` into the
/// 32 bytes at `out`, from its record (checked, not copied).
/// `TZS_NOT_FOUND` if it is not cemented. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` NULL or live; `hash` NULL or 32 readable bytes; `out` NULL or 32
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_resulting_context_hash(
    c: *mut tzs_cemented,
    hash: *const u8,
    out: *mut u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out.cast::<Hash>(), "out"))?;
        context_out(out, c.inner.resulting_context_hash(hash)?)
    })
}
