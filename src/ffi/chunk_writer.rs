//! C API of streamed cementing (Octez's `cement_blocks` over a chunk
//! iterator): a chunk written block by block, so a cycle of tens of
//! thousands of blocks is never in memory at once; and the metadata of
//! blocks cemented without it (`cement_blocks_metadata`).

use std::sync::Arc;

use super::args;
use super::boundary::{arg, call, call_void};
use super::cemented::tzs_cemented;
use super::error::tzs_error;
use super::types::*;
use crate::block::cemented::{Cemented, ChunkRange, ChunkWriter};

/// A chunk being written (`tzs_cemented_begin_chunk`). It holds the
/// cemented store's write lock until `tzs_chunk_writer_commit` or
/// `tzs_chunk_writer_abort` frees it: other writes to the store wait
/// meanwhile. Use it from any thread, one call at a time.
pub struct tzs_chunk_writer {
    // Declared before `store`, so dropped first: it borrows the store.
    pub(super) writer: ChunkWriter<'static>,
    store: Arc<Cemented>,
}

fn chunk_out(r: ChunkRange) -> tzs_chunk {
    tzs_chunk {
        start_level: r.start,
        end_level: r.end,
    }
}

/// Begins the chunk of levels `start..=end` (inclusive), written block by
/// block with `tzs_chunk_writer_push` and made durable and visible by
/// `tzs_chunk_writer_commit`; `tzs_chunk_writer_abort` (or a failed push or
/// commit) leaves nothing of it, and a crash before the commit returns
/// leaves the store as it was. `write_metadata` and `check_consistency` as
/// in `tzs_cemented_cement`. On success `*out` receives the writer, owned
/// by the caller until it is committed or aborted. The writer keeps the
/// store alive: `tzs_cemented_close` meanwhile releases the store's lock
/// only once the writer is freed.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL `c` or `out`), `TZS_INCONSISTENT`
/// (`end < start`, overlap with a cemented chunk, with
/// `check_consistency` not right after the highest cemented level),
/// `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`. Waits for other writes to the
/// store to finish.
///
/// # Safety
/// `c` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_begin_chunk(
    c: *mut tzs_cemented,
    start: i32,
    end: i32,
    write_metadata: bool,
    check_consistency: bool,
    out: *mut *mut tzs_chunk_writer,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let store = c.inner.clone();
        let writer = store.begin_chunk(start, end, write_metadata, check_consistency)?;
        // SAFETY: `writer` borrows the `Cemented` inside the `Arc`'s heap allocation, which never moves and lives as long as one `Arc` does. The struct below owns such an `Arc` (`store`) for as long as it owns `writer`, and drops `writer` first (field order); `writer` is never moved out of it, so the borrow never outlives the store.
        let writer: ChunkWriter<'static> = unsafe { std::mem::transmute(writer) };
        *out = args::into_handle(tzs_chunk_writer { writer, store });
        Ok(())
    })
}

/// Adds the next block of the chunk (`level` = the previous one's + 1,
/// starting at the chunk's start), copying it. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL), `TZS_INCONSISTENT` (wrong level, a
/// duplicated or already cemented hash, a broken predecessor link with
/// `check_consistency`), `TZS_NO_SPACE`, `TZS_IO`; after an error the
/// writer only accepts `tzs_chunk_writer_abort` (a commit fails with
/// `TZS_INVALID_ARGUMENT`).
///
/// # Safety
/// `w` NULL or a live writer; `block` NULL or valid with its buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_writer_push(
    w: *mut tzs_chunk_writer,
    block: *const tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let w = arg!(handle_mut(w, "chunk writer"))?;
        let b = arg!(block_in(block))?;
        w.writer.push(&b)
    })
}

/// Commits the chunk: chunk file, metadata and indexes made durable, then
/// visible to readers at once. Frees `w` whatever the outcome (do not use
/// it afterwards). If `out` is not NULL it receives the chunk's range.
/// Errors: `TZS_INVALID_ARGUMENT` (NULL `w`, or a push failed: the chunk
/// was abandoned), `TZS_INCONSISTENT` (fewer blocks pushed than the range
/// holds), `TZS_NO_SPACE`, `TZS_IO`; nothing of the chunk is then visible.
///
/// # Safety
/// `w` NULL or a live writer, not used afterwards; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_writer_commit(
    w: *mut tzs_chunk_writer,
    out: *mut tzs_chunk,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let w = arg!(take_handle(w, "chunk writer"))?;
        let out = arg!(live_mut(out));
        let tzs_chunk_writer { writer, store } = *w;
        let range = writer.commit();
        drop(store);
        let range = range?;
        args::put(out, chunk_out(range));
        Ok(())
    })
}

/// Abandons the chunk and frees `w`: nothing of it stays (its temporary
/// files are removed). NULL is a no-op.
///
/// # Safety
/// `w` NULL or a live writer, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_writer_abort(w: *mut tzs_chunk_writer) {
    call_void(|| arg!(free_handle(w)))
}

/// Writes the metadata of the `n` blocks at `blocks`, blocks of one chunk
/// cemented without metadata (or whose metadata GC dropped), in level
/// order, each the cemented block at its level (Octez's
/// `cement_blocks_metadata`). Blocks without metadata are skipped.
/// Durable on return; a crash leaves the chunk with no metadata or all of
/// it. If `out` is not NULL it receives the chunk's range.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL, `n` = 0, levels not increasing,
/// the chunk already has metadata), `TZS_NOT_FOUND` (a level is not
/// cemented), `TZS_INCONSISTENT` (the blocks span two chunks, or a hash is
/// not the cemented one), `TZS_READ_ONLY`, `TZS_CORRUPTED`, `TZS_NO_SPACE`,
/// `TZS_IO`. Thread-safe (writers are serialised).
///
/// # Safety
/// `c` NULL or live; `blocks` NULL or `n` readable `tzs_block`s with their
/// buffers; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_cement_metadata(
    c: *mut tzs_cemented,
    blocks: *const tzs_block,
    n: usize,
    out: *mut tzs_chunk,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        if n == 0 || blocks.is_null() {
            return Err(crate::Error::invalid(
                "tzs_cemented_cement_metadata: no block given",
            ));
        }
        let refs = arg!(array(blocks, n, "blocks"))?
            .iter()
            .map(|b| arg!(block_in(b)))
            .collect::<crate::Result<Vec<_>>>()?;
        let range = c.inner.cement_metadata(refs)?;
        args::put(arg!(live_mut(out)), chunk_out(range));
        Ok(())
    })
}
