//! Which stores' GC filters the current thread is running, so that a call
//! from inside a filter that would wait for that very GC (or write the
//! store it is filtering) is refused instead of deadlocking. Shared by the
//! index and the indexed file; a store is named by its shared state's
//! address, unique among live stores.

use std::cell::RefCell;

thread_local! {
    /// Stores whose GC filter this thread runs, innermost last (a filter
    /// may run another store's GC).
    static RUNNING_GC: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as running the GC filter of `store` until dropped.
pub(crate) struct RunningGc;

impl RunningGc {
    /// Enters the filter of the store whose shared state is `store`.
    pub(crate) fn enter<T>(store: &T) -> RunningGc {
        RUNNING_GC.with(|c| c.borrow_mut().push(store as *const T as usize));
        RunningGc
    }
}

impl Drop for RunningGc {
    fn drop(&mut self) {
        RUNNING_GC.with(|c| c.borrow_mut().pop());
    }
}

/// True when called from inside the GC filter of `store`.
pub(crate) fn in_gc_of<T>(store: &T) -> bool {
    let me = store as *const T as usize;
    RUNNING_GC.with(|c| c.borrow().contains(&me))
}
