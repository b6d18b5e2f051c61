//! Filtering and garbage collection of an index (mirage `filter`, `clear`,
//! `try_merge`, `is_merging`; Octez L2 `INDEXABLE_STORE.gc`,
//! `wait_gc_completion`, `is_gc_finished`, and a `cancel_gc`).
//!
//! A GC is a merge with a filter: it freezes the log table (writes go on to
//! a log of the next generation, as during any merge), asks the filter
//! about every binding of the frozen logs and the data file, and writes the
//! kept ones into a data file of the next generation, published by the
//! same fsync + rename as a merge's. So readers see the old bindings until
//! the rename and the filtered ones after it, never a mix; a crash leaves
//! the old data file (with the frozen logs, replayed at open) or the new
//! one. Bindings written while the GC runs are not offered to the filter:
//! they are newer than the GC and are kept.
//!
//! The GC runs on the worker pool, in the index's merge slot, so no other
//! merge runs meanwhile and a writer that fills the log table waits for it
//! as for a merge. The filter is called on that worker (or, for a GC the
//! caller waits for and no worker has started yet, on the waiting thread),
//! never on two threads at once, with no lock of the index held: from
//! inside it the index may be read (`find`, `mem`, `len`, `iter`, the
//! status calls), but every call that writes or waits for the GC
//! (`add`, `remove`, `flush`, `filter`, `gc`, `clear`, `try_merge`,
//! `await_gc`, `cancel_gc`, `await_merge`, `close`) is refused with
//! `InvalidArgument` instead of waiting for itself. A panic in the filter
//! is caught: the GC fails with `Panic` and the index is unchanged.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::data::DataFile;
use super::frozen::FrozenLogs;
use super::hash::{Table, key_hash};
use super::log::{self, LogWriter};
use super::{Index, Inner, State, merge};
use crate::error::{Error, Result};
use crate::worker::{JobHandle, WorkerPool};

/// A GC's filter: `keep(key, value)`; the value without the removable tag.
pub(super) type Keep = Box<dyn FnMut(&[u8], &[u8]) -> bool + Send>;

/// Where a GC's job leaves its outcome: `Ok(true)` once published,
/// `Ok(false)` if cancelled.
type Outcome = Arc<Mutex<Option<Result<bool>>>>;

/// A started GC, until its outcome is taken.
pub(super) struct GcRun {
    job: JobHandle,
    cancel: Arc<AtomicBool>,
    outcome: Outcome,
    /// `filter` runs are not cancelled: their caller was promised the
    /// filtered index on return.
    cancellable: bool,
}

impl Inner {
    /// True when called from inside this index's GC filter.
    pub(super) fn in_own_gc(&self) -> bool {
        crate::gc_filter_thread::in_gc_of(self)
    }

    /// Refuses `what` from inside this index's GC filter.
    pub(super) fn refuse_in_gc(&self, what: &str) -> Result<()> {
        if self.in_own_gc() {
            return Err(Error::invalid(format!(
                "{what} on index {} from inside its own GC filter (only reads are allowed there)",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Freezes the log table (and the logs a crash left sealed) for a
    /// merge: writes go on to a new log of the next generation. A no-op
    /// on a read-only instance.
    pub(super) fn freeze(&self, st: &mut State) -> Result<()> {
        let Some(w) = st.writer.as_mut() else {
            return Ok(());
        };
        w.write_out()?;
        let next = w.generation() + 1;
        let fresh = LogWriter::create(
            self.fs.as_ref(),
            &self.dir,
            next,
            self.ksize,
            self.dsize,
            self.flags(),
        )?;
        let old = std::mem::replace(w, fresh);
        let table = std::mem::replace(&mut st.active, Table::new(self.ksize, self.dsize));
        let mut logs = std::mem::take(&mut st.sealed);
        logs.push(old.file().clone());
        st.frozen = Some(super::Frozen {
            view: super::FrozenView::Table(Arc::new(table)),
            logs,
            generation: next,
            live: st.len,
        });
        Ok(())
    }

    /// The GC job: merges what an earlier failed merge left frozen, then
    /// freezes the log table and merges it with the data through the
    /// filter. `Ok(false)` when cancelled (nothing published by this GC).
    fn run_gc(&self, keep: &mut Keep, cancel: &AtomicBool) -> Result<bool> {
        let _running = crate::gc_filter_thread::RunningGc::enter(self);
        let pending = {
            let st = self.state.read();
            st.frozen
                .as_ref()
                .map(|f| (f.logs.clone(), f.generation, f.live, st.levels.clone()))
        };
        if let Some((logs, generation, live, old)) = pending {
            self.run_merge(&logs, generation, live, &old)?;
        }
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let (logs, generation, live, old) = {
            let mut st = self.state.write();
            self.freeze(&mut st)?;
            match st.frozen.as_ref() {
                Some(f) => (f.logs.clone(), f.generation, f.live, st.levels.clone()),
                None => return Ok(false),
            }
        };
        self.merge_logs(&logs, generation, live, &old, Some((keep, cancel)))
    }

    /// Starts a GC with `keep` unless one is running (then `None`, or,
    /// with `wait_running`, waits for it first). Reports the error of an
    /// earlier GC nobody waited for.
    fn start_gc(
        self: &Arc<Self>,
        mut keep: Keep,
        cancellable: bool,
        wait_running: bool,
    ) -> Result<Option<(JobHandle, Outcome)>> {
        self.check_write("gc")?;
        self.refuse_in_gc("gc")?;
        let mut slot = self.gc.lock();
        while let Some(run) = slot.as_ref() {
            if !run.job.is_finished() {
                if !wait_running {
                    return Ok(None);
                }
                let job = run.job.clone();
                drop(slot);
                let _ = job.wait();
                slot = self.gc.lock();
                continue;
            }
            let earlier = run.outcome.lock().take();
            *slot = None;
            if let Some(Err(e)) = earlier {
                return Err(e);
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(None));
        let mut m = self.merge.lock();
        // A merge running or failed: the GC waits for it, and redoes a
        // failed one first (its error is superseded by the GC's outcome).
        let previous = m.take();
        let (inner, flag, out) = (self.clone(), cancel.clone(), outcome.clone());
        let job = WorkerPool::global().submit(move || {
            if let Some(p) = previous {
                let _ = p.wait();
            }
            let r = catch_unwind(AssertUnwindSafe(|| inner.run_gc(&mut keep, &flag)))
                .unwrap_or_else(|p| {
                    Err(Error::Panic(format!(
                        "panic in GC filter: {}",
                        text(p.as_ref())
                    )))
                });
            *out.lock() = Some(r);
            // The outcome is the GC's, reported by `await_gc`; the merge
            // slot sees a finished job and merges whatever the GC left.
            Ok(())
        });
        *m = Some(job.clone());
        *slot = Some(GcRun {
            job: job.clone(),
            cancel,
            outcome: outcome.clone(),
            cancellable,
        });
        Ok(Some((job, outcome)))
    }

    /// Raises the cancel flag of a running cancellable GC; its job, if so.
    fn cancel_running_gc(&self) -> Option<JobHandle> {
        let slot = self.gc.lock();
        let run = slot.as_ref()?;
        if !run.cancellable || run.job.is_finished() {
            return None;
        }
        run.cancel.store(true, Ordering::Relaxed);
        Some(run.job.clone())
    }

    /// Takes `outcome` and forgets the run it belongs to.
    fn finish_gc(&self, outcome: &Outcome) -> Option<Result<bool>> {
        let r = outcome.lock().take();
        let mut slot = self.gc.lock();
        if slot
            .as_ref()
            .is_some_and(|run| Arc::ptr_eq(&run.outcome, outcome))
        {
            *slot = None;
        }
        r
    }

    /// The number of live bindings once the data file has replaced the
    /// frozen logs (no frozen view): the data's, corrected by the log
    /// table's bindings written since.
    pub(super) fn recount(st: &State) -> u64 {
        let mut n = st.levels.len();
        let mut i = 0;
        while let Some((k, v)) = st.active.entry(i) {
            let in_data = st
                .levels
                .find(key_hash(k), k)
                .is_some_and(|old| st.live(old));
            match (in_data, st.live(v)) {
                (false, true) => n += 1,
                (true, false) => n = n.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        n
    }
}

fn text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

impl Index {
    /// Keeps only the bindings for which `keep(key, value)` is true
    /// (mirage `filter`), and returns once the result is durable. Readers
    /// meanwhile see every binding until the filtered data file is
    /// published, then only the kept ones, never a mix; a crash leaves one
    /// state or the other. Bindings added while it runs are kept. Waits
    /// for a running GC first; not stopped by [`cancel_gc`](Self::cancel_gc).
    ///
    /// `keep` runs on a worker thread (or this one), once per binding,
    /// never concurrently; see the module documentation for what it may
    /// call. Errors: `ReadOnly`, `InvalidArgument` (called from inside
    /// this index's filter), `Panic` (the filter panicked: nothing
    /// changed), `Corrupted` (a binding failed its checksum: nothing
    /// changed), `NoSpace`, `Io`.
    pub fn filter(&self, keep: impl FnMut(&[u8], &[u8]) -> bool + Send + 'static) -> Result<()> {
        let Some((job, outcome)) = self.inner.start_gc(Box::new(keep), false, true)? else {
            return Ok(());
        };
        let _ = job.wait();
        match self.inner.finish_gc(&outcome) {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Octez's `gc ?async`: keeps only the bindings for which `keep(key,
    /// value)` is true, as [`filter`](Self::filter) does, but on a worker
    /// thread. With `wait` false it returns at once; with `wait` true it
    /// returns once the GC is durable (or was cancelled meanwhile, leaving
    /// the index unchanged). Returns false, starting nothing, when a GC is
    /// already running (Octez ignores such a request too).
    ///
    /// Errors: `ReadOnly`, `InvalidArgument` (from inside this index's
    /// filter); the error of an earlier GC nobody waited for; with `wait`,
    /// this GC's error (see [`await_gc`](Self::await_gc)).
    pub fn gc(
        &self,
        keep: impl FnMut(&[u8], &[u8]) -> bool + Send + 'static,
        wait: bool,
    ) -> Result<bool> {
        let Some((job, outcome)) = self.inner.start_gc(Box::new(keep), true, false)? else {
            return Ok(false);
        };
        if wait {
            let _ = job.wait();
            if let Some(Err(e)) = self.inner.finish_gc(&outcome) {
                return Err(e);
            }
        }
        Ok(true)
    }

    /// Waits for the running GC, if any (Octez `wait_gc_completion`), and
    /// returns its error once: `Corrupted`, `NoSpace`, `Io`, `Panic` (the
    /// filter panicked). A failed or cancelled GC leaves the index as it
    /// was. `InvalidArgument` from inside this index's filter.
    pub fn await_gc(&self) -> Result<()> {
        self.inner.refuse_in_gc("await_gc")?;
        let run = self
            .inner
            .gc
            .lock()
            .as_ref()
            .map(|r| (r.job.clone(), r.outcome.clone()));
        let Some((job, outcome)) = run else {
            return Ok(());
        };
        let _ = job.wait();
        match self.inner.finish_gc(&outcome) {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// True when no GC is running (Octez `is_gc_finished`).
    pub fn is_gc_finished(&self) -> bool {
        self.inner
            .gc
            .lock()
            .as_ref()
            .is_none_or(|r| r.job.is_finished())
    }

    /// Stops the running GC started by [`gc`](Self::gc) and waits until it
    /// stopped: the index is left exactly as it was before the GC (the
    /// bindings the GC froze are merged later as in any merge), and a
    /// later GC runs normally. True if a GC was stopped before it
    /// published its result; false if none ran, it had already finished,
    /// or it is a [`filter`](Self::filter). `InvalidArgument` from inside
    /// this index's filter.
    pub fn cancel_gc(&self) -> Result<bool> {
        self.inner.refuse_in_gc("cancel_gc")?;
        let Some(job) = self.inner.cancel_running_gc() else {
            return Ok(false);
        };
        let _ = job.wait();
        let slot = self.inner.gc.lock();
        let published = slot
            .as_ref()
            .and_then(|r| r.outcome.lock().as_ref().map(|o| matches!(o, Ok(true))));
        Ok(published == Some(false))
    }

    /// Removes every binding (mirage `clear`), durably on return: an empty
    /// data file of a new generation replaces the data and the logs, so a
    /// crash leaves every binding or none. A running GC is cancelled and a
    /// running merge waited for (its error, moot now, is dropped).
    /// Readers wait for the few file operations this takes and then see
    /// an empty index.
    ///
    /// Errors: `ReadOnly`, `InvalidArgument` (from inside this index's
    /// filter), `NoSpace`, `Io`.
    pub fn clear(&self) -> Result<()> {
        self.inner.check_write("clear")?;
        self.inner.refuse_in_gc("clear")?;
        if let Some(job) = self.inner.cancel_running_gc() {
            let _ = job.wait();
        }
        loop {
            let mut st = self.inner.state.write();
            let mut m = self.inner.merge.lock();
            if let Some(h) = m.as_ref().filter(|h| !h.is_finished()).cloned() {
                drop(m);
                drop(st);
                let _ = h.wait();
                continue;
            }
            *m = None;
            *self.inner.start_error.lock() = None;
            return self.inner.clear_state(&mut st);
        }
    }

    /// Starts a merge of the log table when it holds any binding and no
    /// merge (or GC) runs, and returns at once: whether it started. Unlike
    /// mirage's `try_merge`, which merges only a log of `log_size` entries
    /// (here such a merge always starts by itself), it merges whatever
    /// the log holds. Also reports the error of a failed background merge.
    /// Errors: `ReadOnly`, `InvalidArgument` (from inside this index's
    /// filter), `NoSpace`, `Io`.
    pub fn try_merge(&self) -> Result<bool> {
        self.inner.check_write("try_merge")?;
        self.inner.refuse_in_gc("try_merge")?;
        self.report_merge_error()?;
        let mut st = self.inner.state.write();
        self.maybe_merge(&mut st, true)
    }

    /// True while a merge or a GC runs in the background (mirage
    /// `is_merging`); always false on a read-only instance.
    pub fn is_merging(&self) -> bool {
        self.inner
            .merge
            .lock()
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }
}

impl Inner {
    /// `clear` with the state locked and no merge running.
    fn clear_state(&self, st: &mut State) -> Result<()> {
        let fs = self.fs.as_ref();
        let Some(w) = st.writer.as_mut() else {
            return Err(Error::ReadOnly(format!(
                "clear on read-only index {}",
                self.dir.display()
            )));
        };
        let next = w.generation() + 1;
        let fresh = LogWriter::create(fs, &self.dir, next, self.ksize, self.dsize, self.flags())?;
        let none = FrozenLogs::build(&[], self.ksize, self.dsize)?;
        let empty = DataFile::empty(self.ksize, self.dsize);
        let sources = merge::Sources {
            old: &empty,
            delta: None,
            frozen: &none,
        };
        let out = merge::Output {
            path: &self.data_path(),
            generation: next,
            ksize: self.ksize,
            vsize: self.dsize,
            flags: self.flags(),
            tombstones: false,
            live: None,
            base_generation: 0,
        };
        merge::write(fs, &sources, &out, None)?;
        // Published: from here on the index is empty, on disk and here
        // (the delta is stale: older than the new base).
        fs.remove_file(&self.delta_path())?;
        let (levels, _) = self.open_levels()?;
        *w = fresh;
        st.levels = levels;
        st.frozen = None;
        st.active = Table::new(self.ksize, self.dsize);
        st.sealed.clear();
        st.len = 0;
        self.write_meta(next)?;
        for lg in log::list(fs, &self.dir)? {
            if lg < next {
                fs.remove_file(&log::path(&self.dir, lg))?;
            }
        }
        fs.sync_dir(&self.dir)
    }
}
