//! The panic boundary: a panic inside an exported function becomes
//! `TZS_PANIC` with its message, never an abort or unwinding into C.

use std::ffi::CStr;
use std::ptr;

use tzstore::ffi::error::{tzs_error_code, tzs_error_free, tzs_error_message};
use tzstore::ffi::testing::tzs_test_panic;
use tzstore::ffi::types::*;

#[test]
fn panic_becomes_status_with_message() {
    let mut err = ptr::null_mut();
    // SAFETY: `err` is a valid out-pointer.
    let st = unsafe { tzs_test_panic(&mut err) };
    assert_eq!(st, TZS_PANIC);
    assert!(!err.is_null());
    // SAFETY: `err` is a live error; its message is a C string it owns.
    assert_eq!(unsafe { tzs_error_code(err) }, TZS_PANIC);
    // SAFETY: as above.
    let msg = unsafe { CStr::from_ptr(tzs_error_message(err)) };
    assert_eq!(msg.to_str().unwrap(), "panic: tzs_test_panic called");
    // SAFETY: freed once.
    unsafe { tzs_error_free(err) };
    // With a NULL err the status is still reported.
    // SAFETY: NULL err is allowed.
    assert_eq!(unsafe { tzs_test_panic(ptr::null_mut()) }, TZS_PANIC);
}
