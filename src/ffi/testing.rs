//! Test-only exports (feature `testing`): prove the panic boundary works.

use super::boundary::call;
use super::error::tzs_error;
use super::types::*;

/// Panics inside the library on purpose; returns `TZS_PANIC` with the message
/// "panic: tzs_test_panic called". Only built with the `testing` feature.
///
/// # Safety
/// `err` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tzs_test_panic(err: *mut *mut tzs_error) -> tzs_status {
    call(err, || panic!("tzs_test_panic called"))
}
