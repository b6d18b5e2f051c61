//! What the GC exports of the index and the indexed file share: the C
//! filter type and its move to the GC's worker thread.

use std::ffi::c_void;

use super::boundary::Fallback;

/// Decides whether a binding survives a filter or a GC: return true to keep
/// it. Called with the `ctx` given to the function that started the GC and
/// one binding: the key (`key_len` bytes) and, for an index, its value
/// (`value_size` bytes), for an indexed file, its header (`header_size`
/// bytes). Both are borrowed, valid only during the call. Called once per
/// binding, never concurrently, from a library worker thread or the thread
/// that waits for the GC; see each function for what it may call.
pub type tzs_filter_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> bool,
>;

/// A C filter and its context, moved to the GC's worker thread.
pub(crate) struct CFilter {
    filter: unsafe extern "C" fn(*mut c_void, *const u8, usize, *const u8, usize) -> bool,
    ctx: *mut c_void,
}

// Every export taking a `tzs_filter_fn` makes its caller promise that the
// filter may be called with `ctx` from any thread (one call at a time)
// until the GC it starts has ended; the library only passes both back.
// SAFETY: per that promise, moving the two pointers to a worker is sound.
unsafe impl Send for CFilter {}

impl CFilter {
    pub(crate) fn new(filter: tzs_filter_fn, ctx: *mut c_void) -> crate::error::Result<CFilter> {
        let filter = filter.ok_or_else(|| crate::error::Error::invalid("filter is NULL"))?;
        Ok(CFilter { filter, ctx })
    }

    /// The filter's verdict on `(key, value)`.
    pub(crate) fn keep(&mut self, key: &[u8], value: &[u8]) -> bool {
        // The caller of the export that built this filter vouched for the
        // function and `ctx` on any thread until the GC ends.
        // SAFETY: both slices are valid for the call; the rest per that promise.
        unsafe {
            (self.filter)(
                self.ctx,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
            )
        }
    }
}

impl Fallback for bool {
    /// "No": not merging, no GC finished, nothing started.
    const FALLBACK: bool = false;
}
