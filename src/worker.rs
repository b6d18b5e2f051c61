//! A small background worker pool: N threads fed by one FIFO queue.
//!
//! Stores use it for work that must not block their callers (index merges,
//! block-store merges, compaction). A job is a closure returning
//! `Result<()>`; [`WorkerPool::submit`] returns a [`JobHandle`] on which the
//! submitter waits for the outcome. A panic inside a job is caught on the
//! worker thread and reported to the submitter as [`Error::Panic`], so a
//! failing job never kills a worker nor goes unnoticed.
//!
//! The queue is a `parking_lot` mutex and condvar rather than a
//! crossbeam channel: crossbeam's `send` to a blocked receiver calls
//! `std::thread::current()`, which on a thread created by C (a C program's
//! main thread) allocates a handle that is never freed, and valgrind in the
//! C tests reports it. parking_lot keeps its per-thread data inline in TLS.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use std::collections::VecDeque;

use once_cell::sync::OnceCell;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// Threads of the process-wide pool.
pub const DEFAULT_THREADS: usize = 2;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads running submitted jobs in FIFO order.
/// Dropping a pool (or [`WorkerPool::shutdown`]) lets queued jobs finish,
/// then joins the threads.
pub struct WorkerPool {
    queue: Arc<Queue>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    size: usize,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerPool({} threads)", self.size)
    }
}

impl WorkerPool {
    /// Starts a pool of `n` threads (at least one).
    pub fn new(n: usize) -> Result<WorkerPool> {
        let queue = Arc::new(Queue::default());
        queue.state.lock().open = true;
        let pool = WorkerPool {
            queue: queue.clone(),
            threads: Mutex::new(Vec::new()),
            size: n.max(1),
        };
        for i in 0..pool.size {
            let q = queue.clone();
            let t = std::thread::Builder::new()
                .name(format!("tzs-worker-{i}"))
                .spawn(move || {
                    crate::io::priority::lower_current_thread();
                    crate::io::foreground::mark_background_thread();
                    q.run()
                })
                .map_err(|e| Error::Io(format!("spawn worker thread: {e}")))?;
            pool.threads.lock().push(t);
        }
        Ok(pool)
    }

    /// The process-wide pool ([`DEFAULT_THREADS`] threads), started on first
    /// use and shut down at process exit (queued jobs, e.g. a merge, finish
    /// first).
    pub fn global() -> &'static WorkerPool {
        GLOBAL.get_or_init(|| match WorkerPool::new(DEFAULT_THREADS) {
            Ok(p) => {
                crate::io::exit::at_exit(shutdown_global);
                p
            }
            // No thread could be started: degrade to running jobs inline
            // (submit falls back when the pool has no sender).
            Err(_) => WorkerPool {
                queue: Arc::new(Queue::default()),
                threads: Mutex::new(Vec::new()),
                size: 0,
            },
        })
    }

    /// Number of worker threads the pool was started with.
    pub fn threads(&self) -> usize {
        self.size
    }

    /// Stops the pool: queued jobs finish, threads are joined; jobs
    /// submitted afterwards run on the submitting thread.
    pub fn shutdown(&self) {
        self.queue.state.lock().open = false;
        self.queue.cv.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }

    /// Queues `job`; its result (or its panic, as [`Error::Panic`]) is
    /// delivered through the returned handle. If the pool cannot run jobs
    /// (no thread could be started) the job runs on the calling thread.
    pub fn submit<F>(&self, job: F) -> JobHandle
    where
        F: FnOnce() -> Result<()> + Send + 'static,
    {
        let slot = Arc::new(Slot::default());
        let done = Arc::downgrade(&slot);
        let run: Job = Box::new(move || {
            let outcome = match catch_unwind(AssertUnwindSafe(job)) {
                Ok(r) => r,
                Err(p) => Err(Error::Panic(format!(
                    "panic in background job: {}",
                    panic_text(p.as_ref())
                ))),
            };
            if let Some(slot) = done.upgrade() {
                slot.set(outcome);
            }
        });
        *slot.job.lock() = Some(run);
        let mut q = self.queue.state.lock();
        if q.open {
            q.jobs.push_back(slot.clone());
            drop(q);
            self.queue.cv.notify_one();
        } else {
            drop(q);
            slot.run_here();
        }
        JobHandle { slot }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Arc<Slot>>,
    /// False once the pool is shut down: workers drain the queue and exit.
    open: bool,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    cv: Condvar,
}

impl Queue {
    fn run(&self) {
        loop {
            let slot = {
                let mut q = self.state.lock();
                loop {
                    if let Some(j) = q.jobs.pop_front() {
                        break j;
                    }
                    if !q.open {
                        return;
                    }
                    self.cv.wait(&mut q);
                }
            };
            slot.run_here();
        }
    }
}

static GLOBAL: OnceCell<WorkerPool> = OnceCell::new();

extern "C" fn shutdown_global() {
    if let Some(p) = GLOBAL.get() {
        p.shutdown();
    }
}

/// One submitted job: the closure until someone runs it, then its outcome.
#[derive(Default)]
struct Slot {
    job: Mutex<Option<Job>>,
    outcome: Mutex<Option<Result<()>>>,
    cv: Condvar,
}

impl Slot {
    fn set(&self, r: Result<()>) {
        *self.outcome.lock() = Some(r);
        self.cv.notify_all();
    }

    /// Runs the job on this thread unless a worker (or a waiter) took it.
    fn run_here(&self) {
        let job = self.job.lock().take();
        if let Some(job) = job {
            job();
        }
    }
}

/// The submitter's view of a queued job. Cloning shares the same job.
#[derive(Clone)]
pub struct JobHandle {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobHandle(finished: {})", self.is_finished())
    }
}

impl JobHandle {
    /// Blocks until the job finished; returns its result (every call returns
    /// the same result). A job no worker has started yet is run on the
    /// waiting thread, so waiting from inside a job (a compaction closing an
    /// index that waits for its merge) can never deadlock the pool.
    pub fn wait(&self) -> Result<()> {
        self.slot.run_here();
        let mut g = self.slot.outcome.lock();
        loop {
            if let Some(r) = g.as_ref() {
                return r.clone();
            }
            self.slot.cv.wait(&mut g);
        }
    }

    /// True once the job has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.slot.outcome.lock().is_some()
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_jobs_and_reports_results() {
        let pool = WorkerPool::new(2).unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let n = n.clone();
                pool.submit(move || {
                    n.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
            .collect();
        for h in &handles {
            h.wait().unwrap();
            assert!(h.is_finished());
        }
        assert_eq!(n.load(Ordering::SeqCst), 50);
        let failing = pool.submit(|| Err(Error::Io("boom".into())));
        assert_eq!(failing.wait(), Err(Error::Io("boom".into())));
        assert_eq!(failing.wait(), Err(Error::Io("boom".into())));
    }

    #[test]
    fn panic_becomes_error_and_pool_survives() {
        let pool = WorkerPool::new(1).unwrap();
        let h = pool.submit(|| panic!("job exploded"));
        match h.wait() {
            Err(Error::Panic(m)) => assert!(m.contains("job exploded"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
        pool.submit(|| Ok(())).wait().unwrap();
    }

    #[test]
    fn waiting_inside_a_job_runs_the_awaited_job() {
        // One thread: the outer job waits for an inner job queued behind it.
        let pool = Arc::new(WorkerPool::new(1).unwrap());
        let p = pool.clone();
        let outer = pool.submit(move || {
            let inner = p.submit(|| Err(Error::Io("inner".into())));
            assert_eq!(inner.wait(), Err(Error::Io("inner".into())));
            Ok(())
        });
        outer.wait().unwrap();
    }

    #[test]
    fn global_pool_runs_jobs() {
        let pool = WorkerPool::global();
        assert_eq!(pool.threads(), DEFAULT_THREADS);
        pool.submit(|| Ok(())).wait().unwrap();
    }

    #[test]
    fn drop_finishes_queued_jobs() {
        let n = Arc::new(AtomicUsize::new(0));
        {
            let pool = WorkerPool::new(1).unwrap();
            for _ in 0..10 {
                let n = n.clone();
                pool.submit(move || {
                    n.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            }
        }
        assert_eq!(n.load(Ordering::SeqCst), 10);
    }
}
