//! Anonymous memory mappings for large in-memory tables.
//!
//! Their pages come straight from the kernel and go back to it when the
//! mapping is dropped, so freeing a table lowers resident memory at once
//! (glibc malloc keeps freed blocks of a few MB in its arenas once its
//! dynamic mmap threshold has grown), and capacity never touched costs no
//! resident memory at all.

use std::alloc::Layout;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use memmap2::MmapMut;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// Integer element types: every bit pattern, all zeroes included, is a
/// valid value, and their alignment divides the page size.
pub trait Plain: Copy + sealed::Sealed {}
impl Plain for u8 {}
impl Plain for u32 {}
impl Plain for u64 {}

/// A fixed-length, zero-initialised array in its own anonymous mapping.
pub struct AnonVec<T: Plain> {
    map: MmapMut,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> AnonVec<T> {
    /// `len` zeroes. Running out of memory aborts, as it does for `Vec`.
    pub fn zeroed(len: usize) -> AnonVec<T> {
        let Some(layout) = Layout::array::<T>(len).ok() else {
            panic!("anonymous array of {len} elements overflows the address space");
        };
        // A zero-length mapping is refused by mmap: map one byte instead.
        match MmapMut::map_anon(layout.size().max(1)) {
            Ok(map) => AnonVec {
                map,
                len,
                _t: PhantomData,
            },
            Err(_) => std::alloc::handle_alloc_error(layout),
        }
    }
}

impl<T: Plain> Deref for AnonVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping is page-aligned (so aligned for T), at least len * size_of::<T>() bytes long, initialised (zero-filled by the kernel, then written only as T), every bit pattern is a valid T (Plain), and the borrow of self keeps it mapped.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> DerefMut for AnonVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the mutable borrow of self makes this the only view of the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> Clone for AnonVec<T> {
    fn clone(&self) -> AnonVec<T> {
        let mut c = AnonVec::zeroed(self.len);
        c.copy_from_slice(self);
        c
    }
}

impl<T: Plain> fmt::Debug for AnonVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnonVec({} x {} bytes)", self.len, size_of::<T>())
    }
}

/// A fixed-length array of `AtomicU64`, zero-initialised, in its own
/// anonymous mapping: a table that threads read and write without a lock,
/// whose untouched slots cost no resident memory. Only atomic access is
/// offered (no plain view of the same bytes exists).
pub struct AnonAtomics {
    map: memmap2::MmapMut,
    len: usize,
}

impl AnonAtomics {
    /// `len` zeroes. Running out of memory aborts, as it does for `Vec`.
    pub fn zeroed(len: usize) -> AnonAtomics {
        let Some(layout) = Layout::array::<u64>(len).ok() else {
            panic!("anonymous array of {len} atomics overflows the address space");
        };
        match MmapMut::map_anon(layout.size().max(1)) {
            Ok(map) => AnonAtomics { map, len },
            Err(_) => std::alloc::handle_alloc_error(layout),
        }
    }
}

impl Deref for AnonAtomics {
    type Target = [std::sync::atomic::AtomicU64];
    fn deref(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: AtomicU64 has the size and bit validity of u64 and an alignment of 8, which the page-aligned mapping satisfies; the mapping is at least len * 8 bytes, zero-filled by the kernel (a valid AtomicU64), touched only through these atomics (this type gives no other view), and kept mapped by the borrow of self.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast(), self.len) }
    }
}

impl fmt::Debug for AnonAtomics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnonAtomics({} x 8 bytes)", self.len)
    }
}

/// Asks the CPU to start loading the cache line holding `bytes[0]` (a hint:
/// no effect on the program's results, no fault on any address). Unlike a
/// load, it does not hold up the instructions after it until the line
/// arrives, so several lines can be on their way at once.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE (which provides prefetcht0) is part of the x86_64 baseline, and a prefetch never faults nor writes, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(bytes.as_ptr().cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_write_clone() {
        let mut a = AnonVec::<u64>::zeroed(1000);
        assert!(a.iter().all(|&x| x == 0));
        a[999] = u64::MAX;
        let b = a.clone();
        assert_eq!((b.len(), b[999], b[0]), (1000, u64::MAX, 0));
        assert!(AnonVec::<u32>::zeroed(0).is_empty());
    }
}
