//! Octez's GC of an indexed file (`gc ?async`, `wait_gc_completion`,
//! `is_gc_finished`) and a `cancel_gc`: a compaction whose filter sees
//! each key with its header and runs on the worker pool.
//!
//! The filter is asked about a snapshot of the index taken under the writer
//! lock when the GC starts; values appended later are always kept. It is
//! called on a worker thread (or, when the caller waits for a GC no worker
//! has started yet, on the waiting thread), never on two threads at once,
//! with no lock of the store held: from inside it the store may be read
//! and appended to, but waiting for the GC (`await_gc`, `cancel_gc`, a
//! waiting `gc_filter`) is refused with `InvalidArgument` instead of
//! waiting for itself, and a closing handle does not wait for it. A panic
//! in the filter is caught: the GC fails with `Panic`, the store unchanged.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{IndexedFile, Inner, OFFSET};
use crate::error::{Error, Result};
use crate::index::IndexIter;

/// A filter of `(key, header)`.
type Keep = Box<dyn FnMut(&[u8], &[u8]) -> bool + Send>;

/// What a compaction keeps.
pub(super) enum Selection {
    /// These keys (chosen by the caller before the start).
    Keys(Vec<Vec<u8>>),
    /// The keys of this snapshot of the index that `keep` keeps.
    Filter { snapshot: IndexIter, keep: Keep },
}

impl Inner {
    /// True when called from inside this store's GC filter.
    pub(super) fn in_own_gc(&self) -> bool {
        crate::gc_filter_thread::in_gc_of(self)
    }

    /// Refuses `what` from inside this store's GC filter.
    pub(super) fn refuse_in_gc(&self, what: &str) -> Result<()> {
        if self.in_own_gc() {
            return Err(Error::invalid(format!(
                "{what} on indexed file {} from inside its own GC filter",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// The keys `selection` keeps; `None` when cancelled meanwhile.
    pub(super) fn select(
        &self,
        selection: Selection,
        cancel: &AtomicBool,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let (snapshot, mut keep) = match selection {
            Selection::Keys(keys) => return Ok(Some(keys)),
            Selection::Filter { snapshot, keep } => (snapshot, keep),
        };
        let _running = crate::gc_filter_thread::RunningGc::enter(self);
        catch_unwind(AssertUnwindSafe(|| {
            let mut kept = Vec::new();
            for r in snapshot {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let (key, entry) = r?;
                if keep(&key, entry.get(OFFSET..).unwrap_or(&[])) {
                    kept.push(key);
                }
            }
            Ok(Some(kept))
        }))
        .unwrap_or_else(|p| {
            let text = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            Err(Error::Panic(format!("panic in GC filter: {text}")))
        })
    }
}

impl IndexedFile {
    /// Octez's `gc ?async`: compacts the store, keeping the values of the
    /// keys for which `keep(key, header)` is true. The filter runs on a
    /// worker thread over the keys stored when the GC starts (values
    /// appended meanwhile are kept), then the kept values are copied into a
    /// new generation that replaces the old one atomically: readers see
    /// the old or the new store, a crash leaves one or the other. With
    /// `wait` false it returns at once (see [`await_gc`](Self::await_gc));
    /// with `wait` true once the GC ended, returning its error. Returns
    /// false, starting nothing, when a GC is already running (Octez
    /// ignores such a request too).
    ///
    /// Errors: `ReadOnly`; `InvalidArgument` (with `wait`, from inside this
    /// store's filter); the error of an earlier GC nobody waited for; with
    /// `wait`, this GC's (`Corrupted`, `NoSpace`, `Io`, `Panic`).
    pub fn gc_filter(
        &self,
        keep: impl FnMut(&[u8], &[u8]) -> bool + Send + 'static,
        wait: bool,
    ) -> Result<bool> {
        if wait {
            self.inner.refuse_in_gc("a waiting gc")?;
        }
        let started = self.start_gc(|generation| {
            Ok(Selection::Filter {
                snapshot: generation.index.iter()?,
                keep: Box::new(keep),
            })
        })?;
        let Some(job) = started else {
            return Ok(false);
        };
        if wait {
            let outcome = job.wait();
            let mut slot = self.inner.gc.lock();
            if slot.as_ref().is_some_and(|g| g.job.is_finished()) {
                *slot = None;
            }
            outcome?;
        }
        Ok(true)
    }

    /// True when no GC is running (Octez `is_gc_finished`).
    pub fn is_gc_finished(&self) -> bool {
        self.inner
            .gc
            .lock()
            .as_ref()
            .is_none_or(|g| g.job.is_finished())
    }

    /// Stops the running GC and waits until it stopped: the store is left
    /// exactly as before it (the new generation it was filling is
    /// removed), and a later GC runs normally. True if a GC was stopped
    /// before it switched generations; false if none ran or it had already
    /// switched. `InvalidArgument` from inside this store's filter.
    pub fn cancel_gc(&self) -> Result<bool> {
        self.inner.refuse_in_gc("cancel_gc")?;
        let running = self.inner.gc.lock().as_ref().and_then(|g| {
            (!g.job.is_finished()).then(|| {
                g.cancel.store(true, Ordering::Relaxed);
                (g.job.clone(), g.from)
            })
        });
        let Some((job, from)) = running else {
            return Ok(false);
        };
        let outcome = job.wait();
        let stopped = self.current().n == from;
        if stopped && outcome.is_ok() {
            // Nothing to report: the slot is free for the next GC.
            let mut slot = self.inner.gc.lock();
            if slot.as_ref().is_some_and(|g| g.job.is_finished()) {
                *slot = None;
            }
        }
        Ok(stopped)
    }
}
