//! C API of borrowed reads: a `tzs_reader` holds the map the last block or
//! indexed-file value read through it points into, so a read fills a
//! `tzs_block_view` or `tzs_view`s with pointers into the mapped file
//! instead of copying.

use super::block_store::tzs_block_store;
use super::boundary::{arg, call, call_void};
use super::cemented::tzs_cemented;
use super::error::tzs_error;
use super::floating::tzs_floating;
use super::indexed_file::tzs_indexed_file;
use super::types::*;
use crate::block::BlockRef;
use crate::block::reader::BlockReader;
use crate::error::{Error, Result};
use crate::indexed_file::value_reader::ValueReader;

/// What a borrowed read leaves behind: the map (or, for a record no map
/// covers yet, the copy) that the views the last read filled point into.
/// A reader holds one block or one indexed-file value at a time; any
/// store's reads may go through the same reader.
///
/// Views stay valid, and their bytes unchanged, until the next read
/// through the same reader, `tzs_reader_release` or `tzs_reader_free` —
/// even if meanwhile a merge retires the floating file, a GC deletes the
/// cemented chunk or the indexed file's old values file, or the store is
/// closed: the reader keeps its own reference to the mapping, and the
/// store never cuts or rewrites a file below the records it has published.
/// Holding a view of a retired file keeps that file's disk space until the
/// view is released.
///
/// Threading: a reader is used by one thread at a time (one per reader
/// thread is the intended use); it may move between threads. Any number
/// of readers may read the same store at once, alongside its writes and
/// merges.
pub struct tzs_reader {
    blocks: BlockReader,
    values: ValueReader,
}

impl tzs_reader {
    /// The block reader, the value reader's view ended: a read through a
    /// `tzs_reader` ends the views of the one before, whatever it read.
    fn blocks(&mut self) -> &mut BlockReader {
        self.values.release();
        &mut self.blocks
    }

    /// The value reader, the block reader's view ended.
    fn values(&mut self) -> &mut ValueReader {
        self.blocks.release();
        &mut self.values
    }
}

/// Creates a reader holding nothing into `*out`; free it with
/// `tzs_reader_free`. Errors: `TZS_INVALID_ARGUMENT` (NULL `out`).
///
/// # Safety
/// `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_reader_new(
    out: *mut *mut tzs_reader,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        *out = super::args::into_handle(tzs_reader {
            blocks: BlockReader::new(),
            values: ValueReader::new(),
        });
        Ok(())
    })
}

/// Ends the views of the last read through `r` and lets go of what they
/// pointed into (a retired file's space can then be reclaimed). The reader
/// stays usable. NULL is a no-op.
///
/// # Safety
/// `r` NULL or a live reader, used by no other call meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_reader_release(r: *mut tzs_reader) {
    call_void(|| {
        if let Ok(r) = arg!(handle_mut(r, "reader")) {
            r.blocks.release();
            r.values.release();
        }
    })
}

/// Frees `r` and ends its views. NULL is a no-op.
///
/// # Safety
/// `r` NULL or a live reader, used by no other call meanwhile and never
/// after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_reader_free(r: *mut tzs_reader) {
    call_void(|| arg!(free_handle(r)))
}

fn lend(bytes: &[u8]) -> tzs_view {
    tzs_view {
        ptr: if bytes.is_empty() {
            std::ptr::null()
        } else {
            bytes.as_ptr()
        },
        len: bytes.len(),
    }
}

/// Fills `out` from the block a read found, or reports `missing`.
fn view_out(
    out: &mut tzs_block_view,
    found: Result<Option<BlockRef<'_>>>,
    missing: impl FnOnce() -> String,
) -> Result<()> {
    let b = found?.ok_or_else(|| Error::NotFound(missing()))?;
    *out = tzs_block_view {
        hash: *b.hash,
        level: b.level,
        predecessor: *b.predecessor,
        contents: lend(b.contents),
        has_metadata: b.metadata.is_some(),
        metadata: lend(b.metadata.unwrap_or_default()),
    };
    Ok(())
}

/// `tzs_block_store_read` without a copy: fills `*out` with the block
/// `distance` blocks below `hash` (0 = the block itself), its contents and
/// metadata lent by `r` (see `tzs_reader` for how long they stay valid);
/// nothing to free. With `read_metadata` false, `out->has_metadata` is
/// false. Each record's checksum is checked before any view of it is
/// given (once per mapping), so a view never shows damaged bytes.
///
/// The reader's previous views end when this call starts, whatever its
/// outcome. `TZS_NOT_FOUND` as for `tzs_block_store_read` (the reader then
/// holds nothing). Errors: `TZS_INVALID_ARGUMENT` (NULL), `TZS_CORRUPTED`,
/// `TZS_IO`. Thread-safe on the store; the reader one thread at a time.
///
/// # Safety
/// `s` NULL or live; `r` NULL or a live reader used by no other call
/// meanwhile; `hash` NULL or 32 readable bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_read_view(
    s: *mut tzs_block_store,
    r: *mut tzs_reader,
    hash: *const u8,
    distance: u32,
    read_metadata: bool,
    out: *mut tzs_block_view,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let r = arg!(handle_mut(r, "reader"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let found = s.inner.read_view(hash, distance, read_metadata, r.blocks());
        view_out(out, found, || "block not stored".into())
    })
}

/// `tzs_block_store_read_by_level` without a copy, as
/// `tzs_block_store_read_view`: the cemented block at `level` (a block a
/// merge preserved with its metadata is read with the floating copy's).
/// `TZS_NOT_FOUND` if the level is not cemented. Errors as
/// `tzs_block_store_read_view`.
///
/// # Safety
/// `s` NULL or live; `r` NULL or a live reader used by no other call
/// meanwhile; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_block_store_read_by_level_view(
    s: *mut tzs_block_store,
    r: *mut tzs_reader,
    level: i32,
    read_metadata: bool,
    out: *mut tzs_block_view,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let s = arg!(handle(s, "block store"))?;
        let r = arg!(handle_mut(r, "reader"))?;
        let out = arg!(out(out, "out"))?;
        let found = s.inner.read_view_by_level(level, read_metadata, r.blocks());
        view_out(out, found, || format!("level {level} is not cemented"))
    })
}

/// `tzs_floating_read_block` without a copy, as
/// `tzs_block_store_read_view` (metadata always read). `TZS_NOT_FOUND` if
/// not stored. Errors: `TZS_INVALID_ARGUMENT`, `TZS_CORRUPTED`, `TZS_IO`.
///
/// # Safety
/// `f` NULL or live; `r` NULL or a live reader used by no other call
/// meanwhile; `hash` NULL or 32 readable bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_floating_read_view(
    f: *mut tzs_floating,
    r: *mut tzs_reader,
    hash: *const u8,
    out: *mut tzs_block_view,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "floating"))?;
        let r = arg!(handle_mut(r, "reader"))?;
        let hash = arg!(hash(hash, "hash"))?;
        let out = arg!(out(out, "out"))?;
        let found = f.inner.read_view(hash, r.blocks());
        view_out(out, found, || "block not stored".into())
    })
}

/// `tzs_cemented_read_by_level` without a copy, as
/// `tzs_block_store_read_view`: contents lent from the chunk's map,
/// metadata (decompressed) from the reader's own buffer. `TZS_NOT_FOUND`
/// if no chunk holds `level`. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_CORRUPTED`, `TZS_IO`.
///
/// # Safety
/// `c` NULL or live; `r` NULL or a live reader used by no other call
/// meanwhile; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_cemented_read_view_by_level(
    c: *mut tzs_cemented,
    r: *mut tzs_reader,
    level: i32,
    read_metadata: bool,
    out: *mut tzs_block_view,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let c = arg!(handle(c, "cemented"))?;
        let r = arg!(handle_mut(r, "reader"))?;
        let out = arg!(out(out, "out"))?;
        let found = c.inner.read_view_by_level(level, read_metadata, r.blocks());
        view_out(out, found, || format!("level {level} is not cemented"))
    })
}

/// `tzs_indexed_file_read` without a copy: fills `*value_out` with the
/// value of `key` and, when `header_out` is not NULL, `*header_out` with
/// its header, both lent by `r` (see `tzs_reader` for how long they stay
/// valid); nothing to free. The record's checksum is checked before any
/// view of it is given (once per mapping of the values file); records
/// appended since the file was last mapped are read into the reader.
///
/// The reader's previous views end when this call starts, whatever its
/// outcome. `TZS_NOT_FOUND` if the key is not stored (the reader then
/// holds nothing). Errors: `TZS_INVALID_ARGUMENT` (NULL handle, reader,
/// key or `value_out`; a key of the wrong size), `TZS_CORRUPTED` (as
/// `tzs_indexed_file_read`), `TZS_IO`. Thread-safe on the store; the
/// reader one thread at a time.
///
/// # Safety
/// `f` NULL or live; `r` NULL or a live reader used by no other call
/// meanwhile; `key` NULL or `key_len` readable bytes; `value_out` NULL or
/// writable; `header_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_indexed_file_read_view(
    f: *mut tzs_indexed_file,
    r: *mut tzs_reader,
    key: *const u8,
    key_len: usize,
    value_out: *mut tzs_view,
    header_out: *mut tzs_view,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let f = arg!(handle(f, "indexed file"))?;
        let r = arg!(handle_mut(r, "reader"))?;
        let key = arg!(bytes_exact(key, key_len, f.key_size, "key"))?;
        let value_out = arg!(out(value_out, "value_out"))?;
        let header_out = arg!(live_mut(header_out));
        let (value, header) = f
            .inner
            .read_view(key, r.values())?
            .ok_or_else(|| Error::NotFound(String::new()))?;
        *value_out = lend(value);
        super::args::put(header_out, lend(header));
        Ok(())
    })
}
