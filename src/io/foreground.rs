//! Background writers step aside while a foreground fsync is in flight.
//!
//! A `store` that a node waits on ends in an fsync, and on a shared disk
//! that fsync waits for every write queued before it. A merge writing tens
//! of megabytes would put milliseconds of its own writes in front of each
//! store. So durable foreground operations announce themselves, and every
//! write, truncation and fsync made on a worker-pool thread (merges,
//! compactions, deletions) is held back until no such fsync is in flight,
//! for a bounded time, so that a busy foreground can slow a merge down but
//! never stop it.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Longest a background write waits for foreground fsyncs to finish.
const MAX_WAIT: Duration = Duration::from_millis(5);
/// Poll interval while waiting.
const POLL: Duration = Duration::from_micros(50);

/// Marks a foreground fsync in flight until dropped.
#[must_use = "the fsync counts as in flight only while the guard lives"]
pub struct ForegroundSync(());

impl ForegroundSync {
    /// Starts a foreground fsync.
    pub fn begin() -> ForegroundSync {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        ForegroundSync(())
    }
}

impl Drop for ForegroundSync {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    static BACKGROUND: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a background (worker-pool) thread.
pub fn mark_background_thread() {
    BACKGROUND.with(|b| b.set(true));
}

/// True on a worker-pool thread.
pub fn is_background() -> bool {
    BACKGROUND.with(Cell::get)
}

/// Called by the file layer before each write, truncation and fsync: on a
/// background thread, waits while a foreground fsync is in flight.
pub fn yield_if_background() {
    if is_background() {
        yield_to_foreground();
    }
}

/// Waits (at most [`MAX_WAIT`]) while a foreground fsync is in flight.
fn yield_to_foreground() {
    if IN_FLIGHT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let start = Instant::now();
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && start.elapsed() < MAX_WAIT {
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_write_waits_for_an_in_flight_fsync_but_not_forever() {
        let guard = ForegroundSync::begin();
        let waited = std::thread::spawn(|| {
            mark_background_thread();
            let t = Instant::now();
            yield_if_background();
            t.elapsed()
        })
        .join()
        .expect("background thread");
        // It waited the whole bound (the fsync never ended) and came back.
        assert!(waited >= MAX_WAIT);
        drop(guard);
    }
}
