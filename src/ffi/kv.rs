//! C API of the key/value store.
//!
//! Keys are NUL-terminated UTF-8 strings: `/`-separated segments, a leading
//! `/` optional, `""` or `"/"` the root. A segment is 1..255 bytes, not `.`
//! or `..`, not starting with `.tzs`; anything else (or invalid UTF-8) is
//! `TZS_INVALID_ARGUMENT`, and no key reaches outside the root. A key has at
//! most 256 segments (`TZS_INVALID_ARGUMENT` beyond, in every call).

use std::ffi::{CString, c_char, c_void};

use parking_lot::Mutex;

use super::args;
use super::boundary::{arg, call, call_value, call_void};
use super::error::tzs_error;
use super::open_options;
use super::types::*;
use crate::error::{Error, Result};
use crate::kv::{Batch, DEFAULT_RETRIES, Kind, Kv};

/// Most segments in a kv key: a longer key is `TZS_INVALID_ARGUMENT` in
/// every call (set, rename, batches, reads). It bounds every walk of the
/// tree; `tzs_kv_digest` of a dictionary with a deeper tree below it (made
/// by renaming a dictionary, or by hand) is `TZS_INVALID_ARGUMENT` too.
pub const TZS_KV_MAX_KEY_DEPTH: usize = 256;
const _: () = assert!(TZS_KV_MAX_KEY_DEPTH == crate::kv::key::MAX_DEPTH);

/// An open key/value store. Thread-safe: any thread may call any function on
/// it concurrently, except `tzs_kv_close`, which must be the last call.
pub struct tzs_kv {
    inner: Kv,
}

enum Slot {
    Owned(Batch),
    /// The batch of a running `tzs_kv_batch_run`, owned by that call.
    Lent(*mut Batch),
}

/// An open batch (transaction): reads see the batch's own writes over the
/// store; writes are buffered until `tzs_kv_batch_commit`. A batch may be
/// used from any thread, one call at a time (calls are serialised).
pub struct tzs_kv_batch {
    slot: Mutex<Slot>,
}

impl tzs_kv_batch {
    fn with<R>(&self, f: impl FnOnce(&mut Batch) -> R) -> R {
        let mut slot = self.slot.lock();
        match &mut *slot {
            Slot::Owned(b) => f(b),
            // SAFETY: a lent pointer is only stored by `tzs_kv_batch_run` for the duration of its callback, while the batch it points to is alive and borrowed by nothing else; the mutex serialises access.
            Slot::Lent(p) => f(unsafe { &mut **p }),
        }
    }
}

/// The entries of a dictionary, returned by `tzs_kv_list`/`tzs_kv_batch_list`
/// and freed with `tzs_kv_entries_free`. Immutable: readable from any thread.
pub struct tzs_kv_entries {
    items: Vec<(CString, tzs_kv_kind)>,
}

/// A batch function for `tzs_kv_batch_run`: reads and writes through the
/// batch handle it is given and returns `TZS_OK` to commit, `TZS_CONFLICT` to
/// be run again, or any other status to stop (nothing is written).
pub type tzs_kv_batch_fn =
    Option<unsafe extern "C" fn(batch: *mut tzs_kv_batch, ctx: *mut c_void) -> tzs_status>;

fn kind_code(k: Kind) -> tzs_kv_kind {
    match k {
        Kind::Value => TZS_KV_VALUE,
        Kind::Dictionary => TZS_KV_DICTIONARY,
    }
}

fn entries_out(list: Vec<(String, Kind)>) -> Result<*mut tzs_kv_entries> {
    let mut items = Vec::with_capacity(list.len());
    for (name, kind) in list {
        let c =
            CString::new(name).map_err(|_| Error::Inconsistent("NUL in an entry name".into()))?;
        items.push((c, kind_code(kind)));
    }
    Ok(args::into_handle(tzs_kv_entries { items }))
}

/// The error a batch function's status stands for.
fn status_error(st: tzs_status) -> Error {
    let msg = format!(
        "the batch function returned {}",
        // SAFETY: tzs_status_name returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(super::common::tzs_status_name(st)) }.to_string_lossy()
    );
    // A number that is no failure status (TZS_OK cannot reach here) is
    // the batch function's own failure.
    Error::from_code(st, msg.clone()).unwrap_or(Error::Io(msg))
}

/// One body for each operation a store handle and a batch handle share
/// (`tzs_kv_X` and `tzs_kv_batch_X`): the store reads and writes itself, a
/// batch its own view (reads recorded for conflict detection, writes
/// buffered until the commit).
mod view {
    use std::ffi::c_char;

    use super::super::args;
    use super::super::boundary::{arg, call};
    use super::super::error::tzs_error;
    use super::super::types::*;
    use super::{entries_out, kind_code, tzs_kv, tzs_kv_batch, tzs_kv_entries};
    use crate::error::{Error, Result};
    use crate::kv::Kind;

    /// What `tzs_kv` and `tzs_kv_batch` both answer.
    pub(super) trait View {
        /// The handle's name in the NULL-handle error.
        const WHAT: &'static str;
        fn exists(&self, key: &str) -> Result<Option<Kind>>;
        fn get(&self, key: &str) -> Result<Vec<u8>>;
        fn list(&self, key: &str) -> Result<Vec<(String, Kind)>>;
        fn set(&self, key: &str, v: &[u8]) -> Result<()>;
        fn remove(&self, key: &str) -> Result<()>;
    }

    impl View for tzs_kv {
        const WHAT: &'static str = "kv";
        fn exists(&self, key: &str) -> Result<Option<Kind>> {
            self.inner.exists(key)
        }
        fn get(&self, key: &str) -> Result<Vec<u8>> {
            self.inner.get(key)
        }
        fn list(&self, key: &str) -> Result<Vec<(String, Kind)>> {
            self.inner.list(key)
        }
        fn set(&self, key: &str, v: &[u8]) -> Result<()> {
            self.inner.set(key, v)
        }
        fn remove(&self, key: &str) -> Result<()> {
            self.inner.remove(key)
        }
    }

    impl View for tzs_kv_batch {
        const WHAT: &'static str = "batch";
        fn exists(&self, key: &str) -> Result<Option<Kind>> {
            self.with(|b| b.exists(key))
        }
        fn get(&self, key: &str) -> Result<Vec<u8>> {
            self.with(|b| b.get(key))
        }
        fn list(&self, key: &str) -> Result<Vec<(String, Kind)>> {
            self.with(|b| b.list(key))
        }
        fn set(&self, key: &str, v: &[u8]) -> Result<()> {
            self.with(|b| b.set(key, v))
        }
        fn remove(&self, key: &str) -> Result<()> {
            self.with(|b| b.remove(key))
        }
    }

    /// `tzs_kv_exists` and `tzs_kv_batch_exists`.
    ///
    /// # Safety
    /// As those exports: `h` is NULL or a live handle; `key` is NULL or
    /// NUL-terminated; `kind_out` and `err` are NULL or writable.
    pub(super) unsafe fn exists<H: View>(
        h: *mut H,
        key: *const c_char,
        kind_out: *mut tzs_kv_kind,
        err: *mut *mut tzs_error,
    ) -> tzs_status {
        call(err, || {
            let (h, key) = (arg!(handle(h, H::WHAT))?, arg!(utf8(key, "key"))?);
            let kind_out = arg!(out(kind_out, "kind_out"))?;
            match h.exists(key)? {
                Some(k) => {
                    *kind_out = kind_code(k);
                    Ok(())
                }
                None => Err(Error::NotFound(format!("{key} is not bound"))),
            }
        })
    }

    /// `tzs_kv_get` and `tzs_kv_batch_get`.
    ///
    /// # Safety
    /// As those exports: `h` is NULL or a live handle; `key` is NULL or
    /// NUL-terminated; `out` and `err` are NULL or writable.
    pub(super) unsafe fn get<H: View>(
        h: *mut H,
        key: *const c_char,
        out: *mut tzs_bytes,
        err: *mut *mut tzs_error,
    ) -> tzs_status {
        call(err, || {
            let (h, key) = (arg!(handle(h, H::WHAT))?, arg!(utf8(key, "key"))?);
            let out = arg!(out(out, "out"))?;
            args::set_bytes(out, h.get(key)?);
            Ok(())
        })
    }

    /// `tzs_kv_list` and `tzs_kv_batch_list`.
    ///
    /// # Safety
    /// As those exports: `h` is NULL or a live handle; `key` is NULL or
    /// NUL-terminated; `out` and `err` are NULL or writable.
    pub(super) unsafe fn list<H: View>(
        h: *mut H,
        key: *const c_char,
        out: *mut *mut tzs_kv_entries,
        err: *mut *mut tzs_error,
    ) -> tzs_status {
        call(err, || {
            let (h, key) = (arg!(handle(h, H::WHAT))?, arg!(utf8(key, "key"))?);
            let out = arg!(out(out, "out"))?;
            *out = entries_out(h.list(key)?)?;
            Ok(())
        })
    }

    /// `tzs_kv_set` and `tzs_kv_batch_set`.
    ///
    /// # Safety
    /// As those exports: `h` is NULL or a live handle; `key` is NULL or
    /// NUL-terminated; `v` is NULL or `len` readable bytes; `err` is NULL or
    /// writable.
    pub(super) unsafe fn set<H: View>(
        h: *mut H,
        key: *const c_char,
        v: *const u8,
        len: usize,
        err: *mut *mut tzs_error,
    ) -> tzs_status {
        call(err, || {
            let (h, key) = (arg!(handle(h, H::WHAT))?, arg!(utf8(key, "key"))?);
            let v = arg!(bytes(v, len, "value"))?;
            h.set(key, v)
        })
    }

    /// `tzs_kv_remove` and `tzs_kv_batch_remove`.
    ///
    /// # Safety
    /// As those exports: `h` is NULL or a live handle; `key` is NULL or
    /// NUL-terminated; `err` is NULL or writable.
    pub(super) unsafe fn remove<H: View>(
        h: *mut H,
        key: *const c_char,
        err: *mut *mut tzs_error,
    ) -> tzs_status {
        call(err, || {
            let (h, key) = (arg!(handle(h, H::WHAT))?, arg!(utf8(key, "key"))?);
            h.remove(key)
        })
    }
}

/// Opens the store rooted at the existing directory `root`; files and
/// directories already there are served as values and dictionaries.
///
/// Keys, in every kv call, are NUL-terminated UTF-8 strings of `/`-separated
/// segments (a leading `/` optional, `""` or `"/"` the root); a segment is
/// 1..255 bytes, not `.` or `..`, not starting with `.tzs`; a key has at
/// most `TZS_KV_MAX_KEY_DEPTH` (256) segments. Anything else is
/// `TZS_INVALID_ARGUMENT`.
///
/// `flags`: `TZS_READONLY` (no writes, no batches) and/or `TZS_NO_FSYNC`
/// (tests only). Several read-write handles, in this or other processes, may
/// share a root: writes are serialised by a lock held only while writing. A
/// read-write open creates `.tzs-lock`, `.tzs-journal`, `.tzs-generation` and
/// `.tzs-tmp/` in the root and rolls forward a batch interrupted by a crash.
///
/// On success `*out` receives a handle owned by the caller (free it with
/// `tzs_kv_close`). Errors: `TZS_INVALID_ARGUMENT` (NULL, empty or
/// non-UTF-8 `root`, `root` not a directory, NULL `out`, unknown flags),
/// `TZS_NOT_FOUND` (no such directory), `TZS_CORRUPTED`, `TZS_NO_SPACE`,
/// `TZS_IO`.
///
/// A damaged store: the read-write open verifies the whole journal before
/// replaying it and cuts only the torn last record of a commit that never
/// returned. Any other damage to `.tzs-journal` or `.tzs-generation` (a
/// record failing its checksum with data after it, a garbled header, a
/// length beyond the 1 GiB record limit, a journal shorter than what was
/// applied), or a directory, FIFO or device in place of `.tzs-lock`,
/// `.tzs-journal`, `.tzs-generation` (or a non-directory in place of
/// `.tzs-tmp`), returns `TZS_CORRUPTED` with a message naming the file and
/// the offset, at once, and changes nothing. A read-only open reads none of
/// these files. Values are plain files without checksums: their bytes are
/// served as they are; a FIFO, socket, device or link in place of a value
/// is never opened (`TZS_INVALID_ARGUMENT` for its key). Use
/// `tzs_kv_check` with `repair` to salvage a damaged store.
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `out` and `err` are NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_open(
    root: *const c_char,
    flags: u32,
    out: *mut *mut tzs_kv,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let out = arg!(out(out, "out"))?;
        let root = arg!(path(root, "root"))?;
        let opts = open_options(flags, TZS_READONLY | TZS_NO_FSYNC, "tzs_kv_open")?;
        let inner = Kv::open(root, &opts)?;
        *out = args::into_handle(tzs_kv { inner });
        Ok(())
    })
}

/// Checks the store rooted at `root` without opening it (so it works on a
/// store that `tzs_kv_open` refuses): `.tzs-lock`, `.tzs-journal` and
/// `.tzs-generation` must be regular files (when present) and `.tzs-tmp` a
/// directory; the generation file must decode; every journal record must
/// read back whole, as a read-write open requires; every entry of the tree
/// must be a regular file (a value) or a directory (a dictionary) no deeper
/// than 256 levels. Values themselves carry no checksum and are not
/// verified. Changes nothing unless `repair`.
///
/// With `repair` (which holds the store's lock while it runs; other
/// processes' writes wait for it; do not call it while a handle of this
/// process is writing), whatever is dropped or rewritten is moved into
/// `ROOT/.tzs-quarantine/<UTC time>-<n>/`, never deleted: a non-regular
/// store file; a damaged journal, rewritten with the whole records after
/// its last damaged stretch (those before are already in the tree); the
/// generation file, rewritten when the journal was; the torn tail of the
/// journal; and tree entries that are neither files nor directories or lie
/// too deep. The store then opens, and a second check passes. The store
/// never lists or serves the quarantine.
///
/// When `report` is not NULL it receives the report as text (free it with
/// `tzs_bytes_free`): `checked N records` (journal records and values),
/// then one `problem:`, `repaired:` or `quarantined:` line per item.
/// Returns `TZS_OK` when no problem remains, `TZS_CORRUPTED` (naming the
/// problems, each with its file and offset) otherwise. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL, empty or non-UTF-8 `root`, `root` not a
/// directory, unknown flags), `TZS_NOT_FOUND` (no such directory), `TZS_IO`
/// (including a failed move into the quarantine). `flags`: `TZS_NO_FSYNC`
/// only. Thread-safe (no handle involved).
///
/// # Safety
/// `root` is NULL or a NUL-terminated string; `report` is NULL or
/// writable; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_check(
    root: *const c_char,
    flags: u32,
    repair: bool,
    report: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let path = arg!(path(root, "path"))?;
        super::check_export(
            "tzs_kv_check",
            path,
            flags,
            repair,
            arg!(live_mut(report)),
            |p, o, r| Kv::check(p, o, r),
        )
    })
}

/// Writes what `key` is bound to (`TZS_KV_VALUE` or `TZS_KV_DICTIONARY`) to
/// `*kind_out`; the root is a dictionary. Returns `TZS_NOT_FOUND` (no error
/// object, `*kind_out` untouched) when the key is unbound, including below a
/// value. Errors: `TZS_INVALID_ARGUMENT` (NULL argument, invalid key, or the
/// key names a symbolic link or special file), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated;
/// `kind_out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_exists(
    kv: *mut tzs_kv,
    key: *const c_char,
    kind_out: *mut tzs_kv_kind,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::exists`'s.
    unsafe { view::exists(kv, key, kind_out, err) }
}

/// Copies the value at `key` into `*out` (library-allocated; free it with
/// `tzs_bytes_free`). Returns `TZS_NOT_FOUND` when unbound. Errors:
/// `TZS_INVALID_ARGUMENT`, `TZS_VALUE_EXPECTED` (a dictionary),
/// `TZS_DICTIONARY_EXPECTED` (a parent is a value), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `out` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_get(
    kv: *mut tzs_kv,
    key: *const c_char,
    out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::get`'s.
    unsafe { view::get(kv, key, out, err) }
}

/// Copies up to `length` bytes of the value at `key` from `offset` into
/// `*out` (free it with `tzs_bytes_free`): fewer past the end, none from
/// beyond it (never an error, never allocated beyond the value's size).
/// Returns `TZS_NOT_FOUND` when unbound. Errors as `tzs_kv_get`. Thread-safe.
///
/// # Safety
/// As `tzs_kv_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_get_partial(
    kv: *mut tzs_kv,
    key: *const c_char,
    offset: u64,
    length: u64,
    out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        let out = arg!(out(out, "out"))?;
        args::set_bytes(out, kv.inner.get_partial(key, offset, length)?);
        Ok(())
    })
}

/// Writes the size in bytes of the value at `key` to `*out`. Returns
/// `TZS_NOT_FOUND` when unbound. Errors as `tzs_kv_get`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `out` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_size(
    kv: *mut tzs_kv,
    key: *const c_char,
    out: *mut u64,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        let out = arg!(out(out, "out"))?;
        *out = kv.inner.size(key)?;
        Ok(())
    })
}

/// Lists the dictionary at `key` (`""` for the root): `*out` receives a new
/// `tzs_kv_entries` (names are single segments, sorted by bytes; the store's
/// `.tzs*` files, symbolic links and special files are not listed), owned by
/// the caller and freed with `tzs_kv_entries_free`. Returns `TZS_NOT_FOUND`
/// when unbound. Errors: `TZS_INVALID_ARGUMENT`, `TZS_DICTIONARY_EXPECTED`
/// (the key or a parent is a value), `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `out` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_list(
    kv: *mut tzs_kv,
    key: *const c_char,
    out: *mut *mut tzs_kv_entries,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::list`'s.
    unsafe { view::list(kv, key, out, err) }
}

/// Number of entries; 0 for NULL. Thread-safe.
///
/// # Safety
/// `e` is NULL or a live `tzs_kv_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_entries_len(e: *const tzs_kv_entries) -> usize {
    call_value(|| arg!(live(e)).map_or(0, |e| e.items.len()))
}

/// The name of entry `i` (a NUL-terminated UTF-8 string owned by `e`, valid
/// until `tzs_kv_entries_free`), or NULL if `e` is NULL or `i` is out of
/// range. Thread-safe.
///
/// # Safety
/// `e` is NULL or a live `tzs_kv_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_entries_name(e: *const tzs_kv_entries, i: usize) -> *const c_char {
    call_value(|| {
        arg!(live(e))
            .and_then(|e| e.items.get(i))
            .map_or(std::ptr::null(), |(n, _)| n.as_ptr())
    })
}

/// The kind of entry `i` (`TZS_KV_VALUE` or `TZS_KV_DICTIONARY`), or 0 if
/// `e` is NULL or `i` is out of range. Thread-safe.
///
/// # Safety
/// `e` is NULL or a live `tzs_kv_entries`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_entries_kind(e: *const tzs_kv_entries, i: usize) -> tzs_kv_kind {
    call_value(|| {
        arg!(live(e))
            .and_then(|e| e.items.get(i))
            .map_or(0, |(_, k)| *k)
    })
}

/// Frees entries returned by a list function. NULL is a no-op.
///
/// # Safety
/// `e` is NULL or a live `tzs_kv_entries`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_entries_free(e: *mut tzs_kv_entries) {
    call_void(|| arg!(free_handle(e)))
}

/// Writes the modification time of `key` as `(*days, *picoseconds)` since
/// 1970-01-01 UTC (Ptime's span: `*days` may be negative, `0 <= *picoseconds
/// < 86400e12`). A dictionary's time is the latest of its direct entries (its
/// own when empty). Returns `TZS_NOT_FOUND` when unbound. Errors:
/// `TZS_INVALID_ARGUMENT`, `TZS_DICTIONARY_EXPECTED` (a parent is a value),
/// `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `days`,
/// `picoseconds` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_last_modified(
    kv: *mut tzs_kv,
    key: *const c_char,
    days: *mut i64,
    picoseconds: *mut u64,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        let days = arg!(out(days, "days"))?;
        let ps = arg!(out(picoseconds, "picoseconds"))?;
        let (d, p) = kv.inner.last_modified(key)?;
        *days = d;
        *ps = p;
        Ok(())
    })
}

/// Writes the 32-byte SHA-256 digest of `key` to `out`: of a value's bytes,
/// or for a dictionary of its sorted `(name, kind, digest)` entries (the
/// encoding is documented in `src/kv/digest.rs`). Returns `TZS_NOT_FOUND`
/// when unbound. Errors: `TZS_INVALID_ARGUMENT`, `TZS_DICTIONARY_EXPECTED`,
/// `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `out` is
/// NULL or 32 writable bytes; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_digest(
    kv: *mut tzs_kv,
    key: *const c_char,
    out: *mut u8,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        let out = arg!(out_exact(
            out,
            TZS_KV_DIGEST_SIZE,
            TZS_KV_DIGEST_SIZE,
            "out"
        ))?;
        out.copy_from_slice(&kv.inner.digest(key)?);
        Ok(())
    })
}

/// Binds `key` to the `len` bytes at `v` (copied; NULL allowed when `len` is
/// 0), creating missing parent dictionaries. Durable on return (staged
/// file, fsync, rename, fsync of the directory) unless opened with
/// `TZS_NO_FSYNC`; readers see the old value or the new one. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL argument, invalid key), `TZS_READ_ONLY`,
/// `TZS_VALUE_EXPECTED` (the key is a dictionary or the root),
/// `TZS_DICTIONARY_EXPECTED` (a parent is a value), `TZS_NO_SPACE`,
/// `TZS_IO`; after an error the previous value is intact. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `v` is
/// NULL or `len` readable bytes; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_set(
    kv: *mut tzs_kv,
    key: *const c_char,
    v: *const u8,
    len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::set`'s.
    unsafe { view::set(kv, key, v, len, err) }
}

/// Writes the `len` bytes at `v` at `offset` of the value at `key`, keeping
/// the bytes before and after; an offset past the end appends, an unbound
/// key is created. The whole new value replaces the old atomically and
/// durably. Errors as `tzs_kv_set`. Thread-safe.
///
/// # Safety
/// As `tzs_kv_set`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_set_partial(
    kv: *mut tzs_kv,
    key: *const c_char,
    offset: u64,
    v: *const u8,
    len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        let v = arg!(bytes(v, len, "value"))?;
        kv.inner.set_partial(key, offset, v)
    })
}

/// Removes `key`: a value, or a dictionary with everything in it (it
/// disappears in one step). An unbound key is `TZS_OK`; the root is emptied
/// and stays usable. Durable on return. Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_READ_ONLY`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_remove(
    kv: *mut tzs_kv,
    key: *const c_char,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::remove`'s.
    unsafe { view::remove(kv, key, err) }
}

/// Renames `from` to `to`, durably: a value onto a value replaces it; onto
/// an existing dictionary the source moves inside it (as `to/<basename>`);
/// a dictionary moves whole; missing parents of the destination are
/// created. Returns `TZS_NOT_FOUND` when `from` is unbound. Errors:
/// `TZS_INVALID_ARGUMENT` (invalid keys; `from` is the root or a
/// segment-wise prefix of the destination), `TZS_VALUE_EXPECTED` (a
/// dictionary onto a value), `TZS_KEY_EXISTS` (the entry inside the
/// destination dictionary is itself a dictionary), `TZS_DICTIONARY_EXPECTED`
/// (a parent is a value), `TZS_READ_ONLY`, `TZS_NO_SPACE`, `TZS_IO`.
/// Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `from` and `to` are NULL or
/// NUL-terminated; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_rename(
    kv: *mut tzs_kv,
    from: *const c_char,
    to: *const c_char,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let kv = arg!(handle(kv, "kv"))?;
        let (from, to) = (arg!(utf8(from, "from"))?, arg!(utf8(to, "to"))?);
        kv.inner.rename(from, to)
    })
}

/// Binds the unbound `key` to `size` zero bytes, reserving the space now.
/// Durable on return. Errors: `TZS_KEY_EXISTS` (bound, or the root),
/// `TZS_INVALID_ARGUMENT`, `TZS_READ_ONLY`, `TZS_DICTIONARY_EXPECTED`,
/// `TZS_NO_SPACE`, `TZS_IO`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `key` is NULL or NUL-terminated; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_allocate(
    kv: *mut tzs_kv,
    key: *const c_char,
    size: u64,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let (kv, key) = (arg!(handle(kv, "kv"))?, arg!(utf8(key, "key"))?);
        kv.inner.allocate(key, size)
    })
}

/// Starts a batch: `*out` receives a handle owned by the caller, to be
/// passed to exactly one of `tzs_kv_batch_commit` or `tzs_kv_batch_abort`.
/// A committed batch read exactly the store as of its begin: if any write
/// (by any handle or process) lands between the begin and one of its reads,
/// the batch will not commit (`TZS_CONFLICT`), so begin close to the reads.
/// The batch keeps the store open; it may outlive `tzs_kv_close`. Errors:
/// `TZS_INVALID_ARGUMENT`, `TZS_READ_ONLY`. Thread-safe.
///
/// # Safety
/// `kv` is NULL or a live handle; `out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_begin(
    kv: *mut tzs_kv,
    out: *mut *mut tzs_kv_batch,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let kv = arg!(handle(kv, "kv"))?;
        let out = arg!(out(out, "out"))?;
        let b = kv.inner.batch_begin()?;
        *out = args::into_handle(tzs_kv_batch {
            slot: Mutex::new(Slot::Owned(b)),
        });
        Ok(())
    })
}

/// `tzs_kv_exists` in the batch's view (its writes over the store). The
/// outcome is recorded: if it no longer holds at commit, the commit is
/// `TZS_CONFLICT`.
///
/// # Safety
/// `b` is NULL or a live batch; `key` is NULL or NUL-terminated;
/// `kind_out` and `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_exists(
    b: *mut tzs_kv_batch,
    key: *const c_char,
    kind_out: *mut tzs_kv_kind,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::exists`'s.
    unsafe { view::exists(b, key, kind_out, err) }
}

/// `tzs_kv_get` in the batch's view; the outcome is recorded for conflict
/// detection. Errors as `tzs_kv_get`.
///
/// # Safety
/// `b` is NULL or a live batch; `key` is NULL or NUL-terminated; `out` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_get(
    b: *mut tzs_kv_batch,
    key: *const c_char,
    out: *mut tzs_bytes,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::get`'s.
    unsafe { view::get(b, key, out, err) }
}

/// `tzs_kv_list` in the batch's view; the outcome is recorded for conflict
/// detection. Errors as `tzs_kv_list`.
///
/// # Safety
/// `b` is NULL or a live batch; `key` is NULL or NUL-terminated; `out` and
/// `err` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_list(
    b: *mut tzs_kv_batch,
    key: *const c_char,
    out: *mut *mut tzs_kv_entries,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::list`'s.
    unsafe { view::list(b, key, out, err) }
}

/// Buffers `key := v` (copied) in the batch, checked against its view:
/// `TZS_VALUE_EXPECTED` (a dictionary or the root), `TZS_DICTIONARY_EXPECTED`
/// (a parent is a value), `TZS_INVALID_ARGUMENT`, `TZS_IO`. Nothing reaches
/// the store before `tzs_kv_batch_commit`.
///
/// # Safety
/// `b` is NULL or a live batch; `key` is NULL or NUL-terminated; `v` is NULL
/// or `len` readable bytes; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_set(
    b: *mut tzs_kv_batch,
    key: *const c_char,
    v: *const u8,
    len: usize,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::set`'s.
    unsafe { view::set(b, key, v, len, err) }
}

/// Buffers the removal of `key` (a value or a whole dictionary; unbound is
/// `TZS_OK`; the root removes every entry). Errors: `TZS_INVALID_ARGUMENT`,
/// `TZS_IO`.
///
/// # Safety
/// `b` is NULL or a live batch; `key` is NULL or NUL-terminated; `err` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_remove(
    b: *mut tzs_kv_batch,
    key: *const c_char,
    err: *mut *mut tzs_error,
) -> tzs_status {
    // SAFETY: this function's contract is `view::remove`'s.
    unsafe { view::remove(b, key, err) }
}

/// Commits the batch and frees it (whatever the status): all its writes are
/// applied atomically and durably, or none. Errors: `TZS_CONFLICT` (a key
/// the batch read or wrote was changed by someone else since; nothing
/// written), `TZS_NO_SPACE`, `TZS_IO`, `TZS_INVALID_ARGUMENT` (NULL, the
/// batch's keys and values together exceed the 1 GiB journal record limit,
/// or the batch of a running `tzs_kv_batch_run`, which that call commits; it
/// is then not freed). An error after the commit point (rare: I/O failing while
/// applying) leaves the batch to be rolled forward by the next write or open.
///
/// # Safety
/// `b` is NULL or a live batch, not used afterwards; `err` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_commit(
    b: *mut tzs_kv_batch,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let h = arg!(handle(b, "batch"))?;
        if matches!(*h.slot.lock(), Slot::Lent(_)) {
            return Err(Error::invalid(
                "the batch of tzs_kv_batch_run is committed by tzs_kv_batch_run",
            ));
        }
        // SAFETY: a live, owned batch handle from `tzs_kv_batch_begin`.
        let boxed = unsafe { Box::from_raw(b) };
        match boxed.slot.into_inner() {
            Slot::Owned(batch) => batch.commit(),
            Slot::Lent(_) => Err(Error::invalid("lent batch")),
        }
    })
}

/// Discards the batch and frees it. NULL is a no-op, and so is the batch of
/// a running `tzs_kv_batch_run` (that call owns it).
///
/// # Safety
/// `b` is NULL or a live batch, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_abort(b: *mut tzs_kv_batch) {
    call_void(|| {
        let Some(h) = arg!(live(b)) else {
            return;
        };
        if matches!(*h.slot.lock(), Slot::Lent(_)) {
            return;
        }
        arg!(free_handle(b))
    })
}

/// Runs `f(batch, ctx)` in a fresh batch and commits it. When `f` returns
/// `TZS_CONFLICT` or the commit conflicts, runs it again in a new batch, up
/// to `retries` more times (`retries` = 0 means the default, 13), then
/// returns `TZS_TOO_MANY_RETRIES`. Any other status from `f` is returned
/// (with an error naming it) and nothing is written. `f` must not commit,
/// abort or keep the batch handle; it runs on the calling thread. Errors:
/// `TZS_INVALID_ARGUMENT` (NULL `kv` or `f`), `TZS_READ_ONLY`,
/// `TZS_TOO_MANY_RETRIES`, those of `f` and of `tzs_kv_batch_commit`.
///
/// # Safety
/// `kv` is NULL or a live handle; `f` is NULL or a function safe to call
/// with `ctx`; `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_batch_run(
    kv: *mut tzs_kv,
    f: tzs_kv_batch_fn,
    ctx: *mut c_void,
    retries: u32,
    err: *mut *mut tzs_error,
) -> tzs_status {
    call(err, || {
        let kv = arg!(handle(kv, "kv"))?;
        let f = f.ok_or_else(|| Error::invalid("batch function is NULL"))?;
        let retries = if retries == 0 {
            DEFAULT_RETRIES
        } else {
            retries
        };
        kv.inner.batch(retries, |batch| {
            let handle = args::into_handle(tzs_kv_batch {
                slot: Mutex::new(Slot::Lent(batch as *mut Batch)),
            });
            // SAFETY: `f` is callable per the contract; `handle` is live for the call and `f` may not free it (lent batches are protected).
            let st = unsafe { f(handle, ctx) };
            // SAFETY: `handle` came from `into_handle` and is freed once.
            unsafe { args::free_handle(handle) };
            match st {
                TZS_OK => Ok(()),
                st => Err(status_error(st)),
            }
        })
    })
}

/// Closes the handle. Open batches keep working. NULL is a no-op. Must be
/// the last call on the handle.
///
/// # Safety
/// `kv` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_kv_close(kv: *mut tzs_kv) {
    call_void(|| arg!(free_handle(kv)))
}
