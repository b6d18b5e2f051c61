//! A value that many readers use and a writer rarely replaces (a floating
//! store's map, its table of places), published so that a reader that
//! already holds the current one finds out with one load of a counter:
//! no lock taken and no reference count touched.
//!
//! Why: a borrowed block read used to take the map's lock and clone its
//! `Arc` (two atomic writes to lines every reader thread shares, and two
//! more to let go of it), and the same for the table of places. On one
//! thread that is a few percent of a read; on two, the lines bounce
//! between the cores and the second thread adds almost nothing.
//!
//! How: the writer replaces the value and bumps the generation while it
//! holds the write lock; a reader keeps a [`Held`] copy (the source's id,
//! the generation it saw under the read lock, the `Arc`) and reuses it
//! while the source's generation still equals it. A reader that misses a
//! bump for a moment uses the previous value, which stays valid as long
//! as it holds it: both values here only ever grow (a longer map of the
//! same append-only file, a larger table of the same places), and what a
//! reader takes from them is checked against the record it names.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Gives every [`Published`] an id of its own, so that a reader's copy of
/// one is never taken for another's (an address can be reused, an id is
/// not).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The current value and how many times it was replaced.
pub(crate) struct Published<T> {
    id: u64,
    value: RwLock<Arc<T>>,
    generation: AtomicU64,
}

/// A reader's copy of a [`Published`] value.
pub(crate) struct Held<T> {
    source: u64,
    generation: u64,
    value: Arc<T>,
}

impl<T> Published<T> {
    pub(crate) fn new(value: Arc<T>) -> Published<T> {
        Published {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value: RwLock::new(value),
            generation: AtomicU64::new(0),
        }
    }

    /// The current value.
    pub(crate) fn load(&self) -> Arc<T> {
        self.value.read().clone()
    }

    /// Makes `value` the current one.
    pub(crate) fn replace(&self, value: Arc<T>) {
        let mut current = self.value.write();
        *current = value;
        // Under the write lock: a reader that reads the generation under
        // the read lock sees the one that goes with the value it clones.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current value, from `held` if it holds it (the common case: no
    /// lock, no reference count), else cloned into `held`.
    pub(crate) fn current<'h>(&self, held: &'h mut Option<Held<T>>) -> &'h Arc<T> {
        let generation = self.generation.load(Ordering::Acquire);
        let copy = match held.take() {
            Some(h) if h.source == self.id && h.generation == generation => h,
            _ => {
                let value = self.value.read();
                Held {
                    source: self.id,
                    generation: self.generation.load(Ordering::Acquire),
                    value: value.clone(),
                }
            }
        };
        &held.insert(copy).value
    }
}

impl<T> Held<T> {
    /// The value held.
    pub(crate) fn value(&self) -> &Arc<T> {
        &self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Published<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Published({:?})", self.value.read())
    }
}

impl<T> std::fmt::Debug for Held<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Held(source {}, generation {})",
            self.source, self.generation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_copy_is_reused_until_the_value_is_replaced() {
        let p = Published::new(Arc::new(1));
        let mut held = None;
        let first = p.current(&mut held).clone();
        assert_eq!(*first, 1);
        // Reused: the same allocation, no new clone taken from the source.
        assert!(Arc::ptr_eq(p.current(&mut held), &first));
        p.replace(Arc::new(2));
        assert_eq!(**p.current(&mut held), 2);
        assert_eq!(*p.load(), 2);
    }

    #[test]
    fn a_copy_of_another_source_is_never_reused() {
        // Both at generation 0: only the id tells them apart.
        let a = Published::new(Arc::new("a"));
        let b = Published::new(Arc::new("b"));
        let mut held = None;
        assert_eq!(**a.current(&mut held), "a");
        assert_eq!(**b.current(&mut held), "b");
        assert_eq!(**a.current(&mut held), "a");
    }
}
