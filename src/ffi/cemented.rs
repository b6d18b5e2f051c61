//! C API of the cemented block store.

use std::ffi::c_char;
use std::sync::Arc;

use super::args;
use super::block::block_out;
use super::boundary::{Fallback, arg, call, call_value, call_void};
use super::error::tzs_error;
use super::open_options;
use super::types::*;
use crate::Error;
use crate::block::cemented::{Cemented, ChunkIter, ChunkRange, HistoryMode};

/// An open cemented block store. Thread-safe: any thread may call any
/// function on it concurrently (reads run in parallel; writes are
/// serialised), except `tzs_cemented_close`, which must be the last call.
pub struct tzs_cemented {
    /// Shared with the chunk writers begun on it (`tzs_cemented_begin_chunk`).
    pub(super) inner: Arc<Cemented>,
}

/// A list of chunks returned by `tzs_cemented_chunks` and
/// `tzs_cemented_metadata_chunks`; free it with `tzs_chunk_list_free`.
pub struct tzs_chunk_list {
    items: Vec<tzs_chunk>,
}

/// An iterator over the blocks of one chunk (`tzs_cemented_iter_new`).
/// Use it from one thread at a time; free it with `tzs_cemented_iter_free`.
/// It stays valid if GC drops its chunk meanwhile, and it does not keep the
/// store alive: free it before closing the store.
pub struct tzs_cemented_iter {
    inner: ChunkIter,
}

fn not_found(what: String) -> Error {
    Error::NotFound(what)
}

fn chunk_of(r: ChunkRange) -> tzs_chunk {
    tzs_chunk {
        start_level: r.start,
        end_level: r.end,
    }
}

/// Opens (read-write: creating if needed) the cemented store in directory
/// `dir`. `flags`: `TZS_READONLY` (no writes, no lock, no repair) and/or
/// `TZS_NO_FSYNC` (tests only). `log_size` is the log size of both indexes
/// (0 = default, 10,000). A read-write open locks `dir/lock`, removes
/// temporary files, re-indexes a chunk left unindexed by a crash, and moves
/// an incomplete last chunk that no index covers (never acknowledged) into
/// `dir/.tzs-quarantine/`.
///
/// A damaged store: a chunk file that the indexes cover but whose shape is
/// wrong (truncated, extended, offsets garbled), a chunk file missing while
/// the indexes or its zip hold its levels, a directory in place of a chunk
/// or zip, chunks that overlap, or a damaged index return `TZS_CORRUPTED`
/// with a message naming the file and the byte offset; nothing is changed.
/// A damaged record or zip entry is found when read (`TZS_CORRUPTED` from
/// that read). Use `tzs_cemented_check` with `repair` to salvage the store.
///
/// On success `*out` receives a handle owned by the caller (free it with
/// `tzs_cemented_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8
/// `dir`, NULL `out`, unknown flags), `TZS_NOT_FOUND` (read-only open of a
/// missing store), `TZS_LOCKED` (another read-write instance is open),
/// `TZS_CORRUPTED` (damage, as above), `TZS_NO_SPACE`, `TZS_IO`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or writable;
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_open(
    dir: *const c_char,
    flags: u32,
    log_size: u64,
    out: *mut *mut tzs_cemented,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let opts = open_options(flags, TZS_READONLY | TZS_NO_FSYNC, "tzs_cemented_open")?;
        let inner = Cemented::open(dir, &opts, log_size)?;
        *out = args::into_handle(tzs_cemented {
            inner: Arc::new(inner),
        });
        Ok(())
    })
}

/// Checks the cemented store in directory `dir` without a handle (so it
/// works on a store that refuses to open): every chunk file read back
/// (offset table, each record's checksum and level), every metadata zip
/// entry decompressed and checksummed, both indexes against the chunks.
/// Changes nothing unless `repair`. With `repair` (it takes `dir/lock`, so
/// no read-write handle may be open) it moves each damaged or overlapping
/// chunk file and its zip into `dir/.tzs-quarantine/<UTC time>-<n>/`,
/// rewrites a damaged zip with its intact entries (the original to the
/// quarantine), and rebuilds both indexes from the intact chunk files when
/// they disagree with them (the old indexes to the quarantine). Nothing is
/// deleted; the store then opens, without the quarantined chunks.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` or `quarantined:` line per item; after a repair the
/// problems are those that remain. Returns `TZS_OK` when no problem
/// remains, `TZS_CORRUPTED` (naming the problems) otherwise. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8 `dir`, unknown flags),
/// `TZS_NOT_FOUND` (no such directory), `TZS_LOCKED` (with `repair`, a
/// read-write handle is open), `TZS_NO_SPACE`, `TZS_IO`. `flags`:
/// `TZS_NO_FSYNC` only. Thread-safe. A check without repair may run beside
/// open handles, but a chunk cemented or dropped meanwhile may then show
/// as a problem: check a store that no handle writes for a definite
/// answer.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `report` is NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_check(
    dir: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(dir, "path"))?;
        super::check_export(
            "tzs_cemented_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| Cemented::check(p, o, r),
        )
    })
}

/// Writes the lowest cemented level to `*out`. Returns `TZS_NOT_FOUND` when
/// the store is empty. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or
/// `out`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_lowest_level(
    c: *mut tzs_cemented,
    out: *mut i32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        *out = c
            .inner
            .lowest_level()
            .ok_or_else(|| not_found("the cemented store is empty".into()))?;
        Ok(())
    })
}

/// Writes the highest cemented level to `*out`. Returns `TZS_NOT_FOUND`
/// when the store is empty. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or
/// `out`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_highest_level(
    c: *mut tzs_cemented,
    out: *mut i32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        *out = c
            .inner
            .highest_level()
            .ok_or_else(|| not_found("the cemented store is empty".into()))?;
        Ok(())
    })
}

/// Writes the level of the cemented block `hash` (32 bytes) to `*out`.
/// Returns `TZS_NOT_FOUND` if the block is not cemented (or was dropped by
/// GC). Errors: `TZS_INVALID_ARGUMENT` (NULL handle, `hash` or `out`),
/// `TZS_CORRUPTED` (a damaged index, or the record at the level the index
/// gives is damaged or holds another block: never another block's level),
/// `TZS_IO` (index). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `hash` is NULL or 32 readable bytes; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_level_of(
    c: *mut tzs_cemented,
    hash: *const u8,
    out: *mut i32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        *out = c
            .inner
            .level_of(hash)?
            .ok_or_else(|| not_found("block is not cemented".into()))?;
        Ok(())
    })
}

/// Copies the hash of the cemented block at `level` into `hash_out` (32
/// bytes). Returns `TZS_NOT_FOUND` (leaving `hash_out` untouched) if no
/// chunk holds `level`. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or
/// `hash_out`), `TZS_CORRUPTED` (damaged record), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `hash_out` is NULL or 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_hash_of(
    c: *mut tzs_cemented,
    level: i32,
    hash_out: *mut u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out_exact(
            hash_out,
            TZS_HASH_SIZE,
            TZS_HASH_SIZE,
            "hash_out"
        ))?;
        let h = c
            .inner
            .hash_of(level)?
            .ok_or_else(|| not_found(format!("level {level} is not cemented")))?;
        out.copy_from_slice(&h);
        Ok(())
    })
}

/// Reads the cemented block at `level` into `*out` (library-allocated
/// buffers: release them with `tzs_block_free`; pass a zeroed or freed
/// block). With `read_metadata`, `out->has_metadata` tells whether stored
/// metadata was found (only that level's zip entry is decompressed).
/// Returns `TZS_NOT_FOUND` (leaving `*out` untouched) if no chunk holds
/// `level`. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or `out`),
/// `TZS_CORRUPTED` (damaged record or metadata entry, or, with
/// `read_metadata`, the chunk's zip is missing), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_read_by_level(
    c: *mut tzs_cemented,
    level: i32,
    read_metadata: bool,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let b = c
            .inner
            .read_by_level(level, read_metadata)?
            .ok_or_else(|| not_found(format!("level {level} is not cemented")))?;
        block_out(out, b);
        Ok(())
    })
}

/// Reads the cemented block `hash` (32 bytes), as
/// `tzs_cemented_read_by_level`. Returns `TZS_NOT_FOUND` if it is not
/// cemented. Errors: `TZS_INVALID_ARGUMENT` (NULL handle, `hash` or `out`),
/// `TZS_CORRUPTED`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `hash` is NULL or 32 readable bytes; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_read_by_hash(
    c: *mut tzs_cemented,
    hash: *const u8,
    read_metadata: bool,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let b = c
            .inner
            .read_by_hash(hash, read_metadata)?
            .ok_or_else(|| not_found("block is not cemented".into()))?;
        block_out(out, b);
        Ok(())
    })
}

/// Copies the metadata of the block at `level` into `*out`
/// (library-allocated; free it with `tzs_bytes_free`). Returns
/// `TZS_NOT_FOUND` (leaving `*out` untouched) if the block has no stored
/// metadata (none given, not cemented, or dropped by GC). Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle or `out`), `TZS_CORRUPTED` (damaged
/// zip or entry, or the zip of a chunk written with one is missing and GC
/// did not drop it), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_read_metadata(
    c: *mut tzs_cemented,
    level: i32,
    out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let m = c
            .inner
            .read_metadata(level)?
            .ok_or_else(|| not_found(format!("no metadata for level {level}")))?;
        args::set_bytes(out, m);
        Ok(())
    })
}

/// Cements the `n` blocks at `blocks` as one chunk (levels `first..=last`,
/// consecutive, in order); the caller's buffers are copied. With
/// `write_metadata`, blocks' metadata go to the chunk's zstd zip (written
/// only if some block has metadata). With `check_consistency`, the chunk
/// must start right after the highest cemented level and each block's
/// predecessor must be the block before it. Durable on return (chunk file,
/// then metadata, then indexes) unless opened with `TZS_NO_FSYNC`.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle, `n` = 0, NULL `blocks` or
/// NULL buffers with non-zero lengths), `TZS_INCONSISTENT` (levels not
/// consecutive, overlap with a cemented chunk, duplicated or already
/// cemented hash, broken contiguity or predecessor link; the message says
/// where), `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`. After an error
/// nothing of the chunk is visible. Thread-safe (writers are serialised).
///
/// # Safety
/// `c` is NULL or a live handle; `blocks` is NULL or `n` readable
/// `tzs_block`s whose buffers are readable for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_cement(
    c: *mut tzs_cemented,
    blocks: *const tzs_block,
    n: usize,
    write_metadata: bool,
    check_consistency: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        if n == 0 {
            return Err(Error::invalid("tzs_cemented_cement: n is 0"));
        }
        if blocks.is_null() {
            return Err(Error::invalid("tzs_cemented_cement: blocks is NULL"));
        }
        let refs = arg!(array(blocks, n, "blocks"))?
            .iter()
            .map(|b| arg!(block_in(b)))
            .collect::<crate::Result<Vec<_>>>()?;
        c.inner.cement(&refs, write_metadata, check_consistency)?;
        Ok(())
    })
}

/// Writes a new list of the store's chunks, ascending, to `*out` (free it
/// with `tzs_chunk_list_free`). Errors: `TZS_INVALID_ARGUMENT` (NULL handle
/// or `out`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_chunks(
    c: *mut tzs_cemented,
    out: *mut *mut tzs_chunk_list,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let items = c.inner.chunks().into_iter().map(chunk_of).collect();
        *out = args::into_handle(tzs_chunk_list { items });
        Ok(())
    })
}

/// Writes a new list of the chunks that have a metadata zip, ascending, to
/// `*out` (free it with `tzs_chunk_list_free`). Errors:
/// `TZS_INVALID_ARGUMENT` (NULL handle or `out`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_metadata_chunks(
    c: *mut tzs_cemented,
    out: *mut *mut tzs_chunk_list,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let items = c
            .inner
            .metadata_chunks()
            .into_iter()
            .map(chunk_of)
            .collect();
        *out = args::into_handle(tzs_chunk_list { items });
        Ok(())
    })
}

/// The number of chunks in `list` (0 for NULL). Thread-safe.
///
/// # Safety
/// `list` is NULL or a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_list_len(list: *const tzs_chunk_list) -> usize {
    call_value(|| arg!(live(list)).map_or(0, |l| l.items.len()))
}

/// The `i`-th chunk of `list`; `{0, -1}` (an empty range, which no chunk
/// has) when `list` is NULL or `i` is out of range. Thread-safe.
///
/// # Safety
/// `list` is NULL or a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_list_get(list: *const tzs_chunk_list, i: usize) -> tzs_chunk {
    call_value(|| {
        arg!(live(list))
            .and_then(|l| l.items.get(i).copied())
            .unwrap_or(tzs_chunk::FALLBACK)
    })
}

/// Frees a list. NULL is a no-op.
///
/// # Safety
/// `list` is NULL or a live list, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_chunk_list_free(list: *mut tzs_chunk_list) {
    call_void(|| arg!(free_handle(list)))
}

/// Writes the chunk holding `level` to `*out`. Returns `TZS_NOT_FOUND` if
/// no chunk holds it. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or
/// `out`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_find_chunk(
    c: *mut tzs_cemented,
    level: i32,
    out: *mut tzs_chunk,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let r = c
            .inner
            .find_chunk(level)
            .ok_or_else(|| not_found(format!("no chunk holds level {level}")))?;
        *out = chunk_of(r);
        Ok(())
    })
}

/// Garbage-collects by history mode: `TZS_HISTORY_ARCHIVE` does nothing;
/// `TZS_HISTORY_FULL` drops the metadata of all but the last `offset`
/// chunks; `TZS_HISTORY_ROLLING` drops all but the last `offset` chunks,
/// blocks, metadata and index entries. Readers in other threads keep
/// working and never see a half-removed chunk; a crash mid-GC is repaired
/// at the next open. Before changing anything it reads back every chunk it
/// drops (records and both index bindings) and the lowest chunk it keeps:
/// damage aborts it with `TZS_CORRUPTED` naming the file, the store as it
/// was. Errors: `TZS_INVALID_ARGUMENT` (NULL handle, unknown mode),
/// `TZS_READ_ONLY`, `TZS_CORRUPTED`, `TZS_IO`. Thread-safe (serialised
/// with writes).
///
/// # Safety
/// `c` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_gc(
    c: *mut tzs_cemented,
    mode: tzs_history_mode,
    offset: u32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let mode = match mode {
            TZS_HISTORY_ARCHIVE => HistoryMode::Archive,
            TZS_HISTORY_FULL => HistoryMode::Full,
            TZS_HISTORY_ROLLING => HistoryMode::Rolling,
            m => return Err(Error::invalid(format!("unknown history mode {m}"))),
        };
        c.inner.gc(mode, offset)
    })
}

/// Checks every chunk, block and index entry: chunks contiguous, each
/// record intact and at its level, each block's predecessor the block below
/// it (the block whose hash is `genesis_hash`, if given, and the lowest
/// stored block are exempt), both indexes agreeing, every metadata zip
/// entry decompressed and checksummed. Returns `TZS_OK` or the first problem: `TZS_INCONSISTENT` or
/// `TZS_CORRUPTED` with a message saying where. Also `TZS_INVALID_ARGUMENT`
/// (NULL handle), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `genesis_hash` is NULL or 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_check_consistency(
    c: *mut tzs_cemented,
    genesis_hash: *const u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let genesis = if genesis_hash.is_null() {
            None
        } else {
            Some(arg!(hash(genesis_hash, "genesis_hash"))?)
        };
        c.inner.check_consistency(genesis)
    })
}

/// Starts an iteration over the blocks of `chunk` (exactly one of the
/// store's chunks), in level order, with metadata if `read_metadata`. On
/// success `*out` receives an iterator owned by the caller (free it with
/// `tzs_cemented_iter_free`). Returns `TZS_NOT_FOUND` if the store has no
/// such chunk. Errors: `TZS_INVALID_ARGUMENT` (NULL handle or `out`,
/// `start_level > end_level`). Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_iter_new(
    c: *mut tzs_cemented,
    chunk: tzs_chunk,
    read_metadata: bool,
    out: *mut *mut tzs_cemented_iter,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let out = arg!(out(out, "out"))?;
        let r = ChunkRange::new(chunk.start_level, chunk.end_level)?;
        let inner = c.inner.iter_chunk(r, read_metadata)?;
        *out = args::into_handle(tzs_cemented_iter { inner });
        Ok(())
    })
}

/// Reads the next block into `*out` (release its buffers with
/// `tzs_block_free`; pass a zeroed or freed block). Returns `TZS_DONE` at
/// the end (and after an error). Errors: `TZS_INVALID_ARGUMENT` (NULL
/// iterator or `out`), `TZS_CORRUPTED` (damaged record or metadata),
/// `TZS_IO`. Not thread-safe: one thread at a time per iterator.
///
/// # Safety
/// `it` is NULL or a live iterator; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_iter_next(
    it: *mut tzs_cemented_iter,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let it = arg!(live_mut(it)).ok_or_else(|| Error::invalid("iterator is NULL"))?;
        let out = arg!(out(out, "out"))?;
        match it.inner.next() {
            Some(b) => {
                block_out(out, b?);
                Ok(())
            }
            None => Err(Error::Done),
        }
    })
}

/// Frees an iterator. NULL is a no-op.
///
/// # Safety
/// `it` is NULL or a live iterator, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_iter_free(it: *mut tzs_cemented_iter) {
    call_void(|| arg!(free_handle(it)))
}

/// Sets the zstd level (1..=22, default 3) of metadata written from now on;
/// 0 stores it uncompressed (larger files; borrowed reads by level then
/// point into the zip instead of decompressing).
/// Errors: `TZS_INVALID_ARGUMENT` (NULL handle, level out of range).
/// Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_set_zstd_level(
    c: *mut tzs_cemented,
    level: i32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        c.inner.set_zstd_level(level)
    })
}

/// Read-only handles: loads what the read-write instance has written (or
/// dropped by GC) since the open or the last sync. A no-op on a read-write
/// handle. Errors: `TZS_INVALID_ARGUMENT` (NULL handle), `TZS_CORRUPTED`,
/// `TZS_IO`. Thread-safe.
///
/// # Safety
/// `c` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_sync(
    c: *mut tzs_cemented,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        c.inner.sync()
    })
}

/// Closes the store and releases its lock (the indexes are flushed). NULL
/// is a no-op. Must be the last call on the handle; no other thread may be
/// using it.
///
/// # Safety
/// `c` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_close(c: *mut tzs_cemented) {
    call_void(|| arg!(free_handle(c)))
}
