//! Conversions between `tzs_block` and the core's block types.

use super::args;
use super::boundary::{arg, call_void};
use super::types::*;
use crate::block::{Block, BlockRef, HASH_SIZE, Hash, MAX_PREDECESSORS};
use crate::error::{Error, Result};

/// Borrows a caller-filled block.
///
/// # Safety
/// `b` must be valid for reads; its buffers valid for their lengths.
pub(crate) unsafe fn block_in<'a>(b: *const tzs_block) -> Result<BlockRef<'a>> {
    // SAFETY: a non-NULL `b` is valid for reads (this function's contract).
    let b = unsafe { args::handle(b, "block") }?;
    // SAFETY: the caller's buffers are valid for their lengths.
    let contents = unsafe { args::bytes(b.contents.ptr, b.contents.len, "block contents") }?;
    let metadata = if b.has_metadata {
        // SAFETY: as above.
        Some(unsafe { args::bytes(b.metadata.ptr, b.metadata.len, "block metadata") }?)
    } else {
        None
    };
    Ok(BlockRef {
        hash: &b.hash,
        level: b.level,
        predecessor: &b.predecessor,
        contents,
        metadata,
    })
}

/// Fills `out` with `block`, moving its buffers to C.
pub(crate) fn block_out(out: &mut tzs_block, block: Block) {
    out.hash = block.hash;
    out.level = block.level;
    out.predecessor = block.predecessor;
    out.contents = args::bytes_out(block.contents);
    out.has_metadata = block.metadata.is_some();
    out.metadata = args::bytes_out(block.metadata.unwrap_or_default());
}

/// Borrows `n` hashes of 32 bytes (a predecessor list, at most 12).
///
/// # Safety
/// A non-NULL `p` must point to `n * 32` readable bytes.
pub(crate) unsafe fn preds_in(p: *const u8, n: usize) -> Result<Vec<Hash>> {
    if n > MAX_PREDECESSORS {
        return Err(Error::invalid(format!(
            "a predecessor list holds at most {MAX_PREDECESSORS} hashes, got {n}"
        )));
    }
    // SAFETY: a non-NULL `p` holds `n * 32` readable bytes (this function's contract).
    let raw = unsafe { args::bytes(p, n * HASH_SIZE, "predecessors") }?;
    Ok(raw
        .chunks_exact(HASH_SIZE)
        .map(|c| {
            let mut h = [0u8; HASH_SIZE];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// A predecessor list as `n * 32` bytes.
pub(crate) fn preds_out(preds: &[Hash]) -> tzs_bytes {
    args::bytes_out(preds.concat())
}

/// Frees the contents and metadata of a block filled by the library and
/// zeroes them. NULL, or a zeroed block, is a no-op; freeing twice is safe.
/// Thread-safe for distinct blocks.
///
/// # Safety
/// `b` is NULL or points to a `tzs_block` that is zeroed or was filled by
/// this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_free(b: *mut tzs_block) {
    call_void(|| {
        if let Some(b) = arg!(live_mut(b)) {
            // SAFETY: the buffers were filled by `block_out` or are zeroed.
            unsafe {
                args::free_bytes(&mut b.contents);
                args::free_bytes(&mut b.metadata);
            }
            b.has_metadata = false;
        }
    })
}
