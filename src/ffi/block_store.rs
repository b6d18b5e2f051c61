//! C API of the block store.

use std::ffi::{c_char, c_void};

use super::args;
use super::block::block_out;
use super::boundary::{arg, call, call_void};
use super::error::tzs_error;
use super::open_options;
use super::types::*;
use crate::block::cemented::HistoryMode;
use crate::block::store::{BlockStore, BlockStoreOptions};
use crate::error::Error;

/// A node's block store: floating and cemented stores under one directory,
/// merged in the background. Thread-safe: stores, reads and a running merge
/// may overlap from any threads; `tzs_block_store_close` must be the last
/// call (it waits for a running merge).
pub struct tzs_block_store {
    pub(super) inner: BlockStore,
}

/// The most merge threads `tzs_block_store_options.workers` may ask for; a
/// larger value makes `tzs_block_store_open` fail with
/// `TZS_INVALID_ARGUMENT` (one merge runs at a time, so a few threads are
/// all it can use).
pub const TZS_BLOCK_STORE_MAX_WORKERS: u32 = 64;

const _: () = assert!(TZS_BLOCK_STORE_MAX_WORKERS == crate::block::store::MAX_WORKERS);

/// The default options: read-write, fsync on, `TZS_HISTORY_FULL` with offset
/// 1, one merge thread, default index log size, the default zstd level.
#[unsafe(no_mangle)]
pub extern "C" fn tzs_block_store_options_default() -> tzs_block_store_options {
    let d = BlockStoreOptions::default();
    tzs_block_store_options {
        flags: 0,
        history_mode: mode_tag(d.history_mode),
        history_offset: d.history_offset,
        workers: d.workers,
        index_log_size: d.index_log_size,
        zstd_level: d.zstd_level,
    }
}

pub(super) fn mode_tag(m: HistoryMode) -> u32 {
    crate::block::store::manifest::mode_tag(m) as u32
}

/// The options a caller passed, or the defaults for NULL.
pub(super) fn options_or_default(
    o: Option<&tzs_block_store_options>,
) -> crate::Result<BlockStoreOptions> {
    options_of(
        &o.copied()
            .unwrap_or_else(|| tzs_block_store_options_default()),
    )
}

fn options_of(o: &tzs_block_store_options) -> crate::Result<BlockStoreOptions> {
    let open = open_options(o.flags, TZS_READONLY | TZS_NO_FSYNC, "tzs_block_store_open")?;
    let history_mode = u8::try_from(o.history_mode)
        .ok()
        .and_then(crate::block::store::manifest::mode_of)
        .ok_or_else(|| Error::invalid(format!("unknown history mode {}", o.history_mode)))?;
    Ok(BlockStoreOptions {
        open,
        history_mode,
        history_offset: o.history_offset,
        workers: o.workers,
        index_log_size: o.index_log_size,
        zstd_level: o.zstd_level,
    })
}

/// Opens (read-write: creating) the block store in `dir` with `opts` (NULL =
/// the defaults). A read-write open locks `dir/lock` and repairs what a crash
/// left (a merge in progress is rolled back without losing any block, torn
/// tails are cut, unindexed blocks re-indexed, floating stores that a
/// manifest generation proves abandoned are deleted). A read-only open may
/// run while the writer merges: it retries when a merge swaps stores under
/// it.
///
/// A damaged store (a damaged or missing `manifest` while the directory
/// holds blocks, a FIFO or directory in place of a file, a listed floating
/// store missing, a damaged index or file) returns `TZS_CORRUPTED` with an
/// error naming the file (and the offset, for damaged records); nothing is
/// deleted or truncated but a torn tail. Use `tzs_block_store_check_path`
/// with `repair` to salvage it.
///
/// On success `*out` receives a handle owned by the caller
/// (`tzs_block_store_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL/non-UTF-8
/// `dir`, NULL `out`, unknown flags or history mode, zstd level outside
/// 1..=22, `workers` above `TZS_BLOCK_STORE_MAX_WORKERS`), `TZS_NOT_FOUND`
/// (read-only open of a missing store), `TZS_LOCKED`, `TZS_CORRUPTED`,
/// `TZS_NO_SPACE`, `TZS_IO`.
///
/// # Safety
/// `dir` NULL or NUL-terminated; `opts` NULL or valid; `out`/`err` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_open(
    dir: *const c_char,
    opts: *const tzs_block_store_options,
    out: *mut *mut tzs_block_store,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let dir = arg!(path(dir, "dir"))?;
        let inner = BlockStore::open(dir, options_or_default(arg!(live(opts)))?)?;
        *out = args::into_handle(tzs_block_store { inner });
        Ok(())
    })
}

/// Stores `block` (the library copies it), durable on return. The library
/// computes its predecessor list. Storing a block already stored is
/// `TZS_OK`. Errors: `TZS_INVALID_ARGUMENT`, `TZS_INCONSISTENT` (the
/// predecessor is unknown, except for the first block of an empty store, or
/// the level is not the predecessor's plus one), `TZS_READ_ONLY`,
/// `TZS_NO_SPACE`, `TZS_IO`. Thread-safe; works during a merge.
///
/// # Safety
/// `s` NULL or live; `block` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_store(
    s: *mut tzs_block_store,
    block: *const tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let block = arg!(block_in(block))?;
        s.inner.store(&block)
    })
}

/// Stores `block` like `tzs_block_store_store`, but durable on return only
/// when `flush` is true (Octez's `store_block ?flush`): without it the block
/// is readable at once and survives a crash of the process, and a power cut
/// keeps it only once a later flushed store or `tzs_block_store_flush` has
/// returned. A node that stores a burst of blocks pays one fsync for the
/// burst this way. Errors as `tzs_block_store_store`. Thread-safe; works
/// during a merge.
///
/// # Safety
/// `s` NULL or live; `block` NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_store_with(
    s: *mut tzs_block_store,
    block: *const tzs_block,
    flush: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let block = arg!(block_in(block))?;
        s.inner.store_with(&block, flush)
    })
}

/// Makes every block stored so far durable (one fsync of the floating
/// store receiving blocks). Errors: `TZS_INVALID_ARGUMENT` (NULL),
/// `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`. Thread-safe; works during a
/// merge.
///
/// # Safety
/// `s` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_flush(
    s: *mut tzs_block_store,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        s.inner.flush()
    })
}

/// Told of each merge's end by `tzs_block_store_set_merge_hook`: `ctx` as
/// given there; `status` is `TZS_OK` once the merge swapped the stores and
/// ran its GC, or the status of the error it failed with (the store then
/// holds what it held before); `message` is that error's NUL-terminated
/// message (`""` for `TZS_OK`), valid only during the call.
pub type tzs_merge_hook =
    Option<unsafe extern "C" fn(ctx: *mut c_void, status: tzs_status, message: *const c_char)>;

/// The hook and its context, moved to the merge's worker thread.
struct MergeHookCall {
    hook: unsafe extern "C" fn(*mut c_void, tzs_status, *const c_char),
    ctx: *mut c_void,
}

// SAFETY: `tzs_block_store_set_merge_hook`'s contract makes the caller
// promise that the hook may be called with `ctx` from any thread, until the
// hook is replaced or removed or the store closed.
unsafe impl Send for MergeHookCall {}
// SAFETY: as for `Send`; the library only reads the two pointers.
unsafe impl Sync for MergeHookCall {}

impl MergeHookCall {
    fn call(&self, result: &crate::error::Result<()>) {
        let (status, message) = match result {
            Ok(()) => (TZS_OK, std::ffi::CString::default()),
            Err(e) => (
                super::error::status_of(e),
                super::error::c_message(e.message()),
            ),
        };
        // The caller of `tzs_block_store_set_merge_hook` gave a function that
        // takes this context from any thread; the message outlives the call.
        // SAFETY: per that contract, stated on the setter.
        unsafe { (self.hook)(self.ctx, status, message.as_ptr()) };
    }
}

/// Sets the function told of each merge's end (`tzs_merge_hook`), so that a
/// caller learns of it without polling `tzs_block_store_read_stats` or
/// blocking in `tzs_block_store_await_merge`; NULL removes it. The hook runs
/// once per merge that ends while it is set, on the merge's worker thread
/// after the merge stopped running (or, for a `tzs_block_store_merge` with
/// nothing left to cement, on the calling thread before that call returns).
/// It must return quickly and must not call `tzs_block_store_merge`,
/// `tzs_block_store_await_merge` or `tzs_block_store_close` on this store
/// (the worker would wait for itself); other calls, on any store, are
/// fine. `tzs_block_store_await_merge` still returns the merge's result.
/// Errors: `TZS_INVALID_ARGUMENT` (NULL store). Thread-safe.
///
/// # Safety
/// `s` NULL or live. `hook` NULL, or a function that may be called from any
/// thread with `ctx`, which must stay valid until the hook is replaced or
/// removed, or the store closed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_set_merge_hook(
    s: *mut tzs_block_store,
    hook: tzs_merge_hook,
    ctx: *mut c_void,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let hook = hook.map(|hook| {
            let call = MergeHookCall { hook, ctx };
            std::sync::Arc::new(move |r: &crate::error::Result<()>| call.call(r))
                as crate::block::store::MergeHook
        });
        s.inner.set_merge_hook(hook);
        Ok(())
    })
}

/// `TZS_OK` if the block is stored (floating or cemented), `TZS_NOT_FOUND`
/// if not. Errors: `TZS_INVALID_ARGUMENT`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `s` NULL or live; `hash` NULL or 32 readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_mem(
    s: *mut tzs_block_store,
    hash: *const u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let hash = arg!(hash(hash, "hash"))?;
        if s.inner.mem(hash)? {
            Ok(())
        } else {
            Err(Error::NotFound("block not stored".into()))
        }
    })
}

/// Reads the block `distance` blocks below `hash` (0 = the block itself)
/// into `*out` (free with `tzs_block_free`), with its metadata when
/// `read_metadata` and it has any. `TZS_NOT_FOUND` when `hash` is unknown or
/// the distance runs past genesis or into history removed by rolling GC.
/// Errors: `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED`, `TZS_IO`. Thread-safe;
/// during a merge it sees the state before or after it.
///
/// # Safety
/// `s` NULL or live; `hash` NULL or 32 readable bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_read(
    s: *mut tzs_block_store,
    hash: *const u8,
    distance: u32,
    read_metadata: bool,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let b = s
            .inner
            .read(hash, distance, read_metadata)?
            .ok_or_else(|| Error::NotFound("block not stored".into()))?;
        block_out(out, b);
        Ok(())
    })
}

/// Reads the cemented block at `level` into `*out` (free with
/// `tzs_block_free`). `TZS_NOT_FOUND` if the level is not cemented (yet, or
/// any more). Errors: `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED`, `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `s` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_read_by_level(
    s: *mut tzs_block_store,
    level: i32,
    read_metadata: bool,
    out: *mut tzs_block,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let out = arg!(out(out, "out"))?;
        let b = s
            .inner
            .read_by_level(level, read_metadata)?
            .ok_or_else(|| Error::NotFound(format!("level {level} is not cemented")))?;
        block_out(out, b);
        Ok(())
    })
}

/// Starts a background merge: cements the ancestors of `head` up to the
/// last of the `n_chunk_ends` levels at `chunk_ends` (strictly increasing),
/// one chunk per interval `(previous end + 1 ..= end]`, keeps the blocks
/// above that descend from the new cemented top, drops branches that no
/// longer connect, and applies the history mode's GC. Returns once started;
/// stores and reads keep working. Ends already cemented are skipped. If a
/// merge is running, this call first waits for it; if that merge failed, its
/// error is returned and no new merge starts.
///
/// Errors: `TZS_INVALID_ARGUMENT` (no ends, ends not increasing, last end
/// above the head), `TZS_NOT_FOUND` (head not stored), `TZS_INCONSISTENT`,
/// `TZS_READ_ONLY`, `TZS_IO`, or the previous merge's error. Thread-safe.
///
/// # Safety
/// `s` NULL or live; `head` NULL or 32 bytes; `chunk_ends` NULL or
/// `n_chunk_ends` readable `int32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_merge(
    s: *mut tzs_block_store,
    head: *const u8,
    chunk_ends: *const i32,
    n_chunk_ends: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let head = arg!(hash(head, "head"))?;
        let ends = arg!(array(chunk_ends, n_chunk_ends, "chunk_ends"))?;
        s.inner.merge(head, ends)
    })
}

/// Waits for the running merge, if any, and returns its result (`TZS_OK`
/// when none ran). Errors: `TZS_INVALID_ARGUMENT`, or the merge's own error
/// (`TZS_INCONSISTENT`, `TZS_IO`, ...). Thread-safe.
///
/// # Safety
/// `s` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_await_merge(
    s: *mut tzs_block_store,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || arg!(handle(s, "block store"))?.inner.await_merge())
}

/// Read-only handles: catches up with the read-write handle (Octez's
/// `Block_store.sync`), usually in another process. Every block the writer
/// stored durably (with flush, or followed by `tzs_block_store_flush`)
/// before this call is readable after it, and every merge it completed is
/// seen, with its savepoint, caboose and history mode; concurrent reads on
/// this handle see the state before or after, never a block lost in
/// between. Cheap when nothing changed (one `stat` of the manifest and a
/// replay of the RW store's index from where the last sync stopped). If
/// `changed` is not NULL, `*changed` says whether the manifest changed (a
/// merge, a mark or a mode written). A no-op on a read-write handle.
///
/// Errors: `TZS_INVALID_ARGUMENT` (NULL `s`), `TZS_CORRUPTED`, `TZS_IO`;
/// the handle then keeps the state it had. Thread-safe (syncs are
/// serialized).
///
/// # Safety
/// `s` NULL or live; `changed` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_sync(
    s: *mut tzs_block_store,
    changed: *mut bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let changed = arg!(live_mut(changed));
        let c = s.inner.sync()?;
        args::put(changed, c);
        Ok(())
    })
}

/// Fills `*out` with levels, counts, bytes on disk and merge counters.
/// Errors: `TZS_INVALID_ARGUMENT`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `s` NULL or live; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_read_stats(
    s: *mut tzs_block_store,
    out: *mut tzs_block_store_stats,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let out = arg!(out(out, "out"))?;
        let st = s.inner.stats()?;
        *out = tzs_block_store_stats {
            cemented_lowest: st.cemented_lowest.unwrap_or(-1),
            cemented_highest: st.cemented_highest.unwrap_or(-1),
            cemented_blocks: st.cemented_blocks,
            floating_blocks: st.floating_blocks,
            bytes_on_disk: st.bytes_on_disk,
            merges_done: st.merges_done,
            last_merge_ms: st.last_merge_ms,
            merging: st.merging,
        };
        Ok(())
    })
}

/// Checks every invariant of an open store (each floating store's entries
/// verified and compared with its index, the cemented chain consistent, no
/// orphan directories). With `repair` (read-write handles), moves orphan
/// directories no manifest generation accounts for into
/// `dir/.tzs-quarantine/<UTC time>-<n>/`; damaged stores are repaired only
/// without a handle (`tzs_block_store_check_path`). Returns `TZS_OK` when no
/// problem remains, else `TZS_CORRUPTED` with a message listing the
/// problems. Errors: `TZS_INVALID_ARGUMENT`, `TZS_IO`. Blocks stores while
/// it runs. Thread-safe.
///
/// # Safety
/// `s` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_check(
    s: *mut tzs_block_store,
    repair: bool,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        s.inner.check(repair)?.into_result().map(|_| ())
    })
}

/// Checks the block store in directory `path` without a handle, so it works
/// on a store that refuses to open: the manifest, every floating store
/// (each entry verified, file and index compared), directories no manifest
/// generation accounts for, and the cemented store. Changes nothing unless
/// `repair`.
///
/// With `repair` it takes the store's lock and salvages: a missing or
/// damaged manifest is rebuilt from the floating stores found (the damaged
/// one moved out; history mode and offset come from `opts`); the intact
/// entries of a damaged floating store (those behind the damage included)
/// are copied into a new store and the damaged store is moved out; orphan
/// directories are moved out. "Moved out" means into
/// `path/.tzs-quarantine/<UTC time>-<n>/`; nothing is deleted but what a
/// read-write open deletes anyway (a merge's rolled-back or retired stores).
/// Damage of the cemented store is reported, not repaired (see
/// `tzs_cemented_check`). After a repair the store opens.
///
/// `opts` (NULL = the defaults): `flags` takes `TZS_NO_FSYNC` (and
/// `TZS_READONLY`, only without `repair`); `history_mode`/`history_offset`
/// are used only to rebuild a manifest; `index_log_size` as at open.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records`, then one `problem:`,
/// `repaired:` or `quarantined:` line per item. Returns `TZS_OK` when no
/// problem remains, `TZS_CORRUPTED` (naming the problems) otherwise.
/// Errors: `TZS_INVALID_ARGUMENT` (NULL or non-UTF-8 path, bad options,
/// `TZS_READONLY` with `repair`, or `path` holds no block store: nothing is
/// created), `TZS_LOCKED` (with `repair`, a read-write handle is open),
/// `TZS_NO_SPACE`, `TZS_IO`. Thread-safe; without `repair` it may run
/// beside a writer but then sees a moving store.
///
/// # Safety
/// `path` NULL or NUL-terminated; `opts` NULL or valid; `report` NULL or
/// writable; `err` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_check_path(
    path: *const c_char,
    opts: *const tzs_block_store_options,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(path, "path"))?;
        let o = arg!(live(opts))
            .copied()
            .unwrap_or_else(|| tzs_block_store_options_default());
        let o = options_of(&o)?;
        if repair && o.open.read_only {
            return Err(Error::invalid("TZS_READONLY cannot repair"));
        }
        let found = BlockStore::check_dir(path, &o, repair)?;
        args::report_out(found, arg!(live_mut(report)))
    })
}

/// Closes the store after waiting for a running merge. NULL is a no-op. Must
/// be the last call on the handle.
///
/// # Safety
/// `s` NULL or live, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_close(s: *mut tzs_block_store) {
    call_void(|| arg!(free_handle(s)))
}
