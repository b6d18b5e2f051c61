//! An allocator for test binaries that records the largest single
//! allocation, so a test can tell that a damaged length field did not drive
//! one. A binary installs it with
//! `#[global_allocator] static ALLOC: alloc_probe::Largest = alloc_probe::Largest;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The recording allocator (forwards everything to the system's).
pub struct Largest;

pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// Forgets what was allocated so far.
pub fn reset() {
    LARGEST.store(0, Ordering::Relaxed);
}

/// The largest allocation since the last [`reset`].
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}
