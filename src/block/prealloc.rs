//! Zero-filled space ahead of a floating store's durable appends.
//!
//! An fdatasync after an append that grows a file must commit the file
//! system's journal (the new size and blocks); after overwriting blocks that
//! are already allocated and written, it only writes the data and flushes
//! the disk. On the test VM's ext4 that halves a durable append (0.10 ms
//! instead of 0.20 ms at the median, see BENCHMARKS.md). So while a store
//! sees frequent durable appends (at most 1 MiB apart: a node storing
//! blocks one by one; bulk loads that fsync rarely gain nothing), a worker
//! keeps the next tens of MiB of its file written with zeros and fsynced. RocksDB's recycled WAL files serve the
//! same purpose.
//!
//! A fill's writes are disk traffic that the next fsync of a store would
//! wait for, so fills are exclusive background bursts like a merge's (see
//! [`crate::io::foreground`]): the store fsync that starts during one waits
//! for it, and fills share the merge's burst slots (an unpaced fill during
//! a merge made stores slower, measured). There is one per 8 MiB of
//! appends, started well before the appends reach the end of the zeroed
//! space; appends that do reach it extend the file as usual, which is only
//! slower. A merge zero-fills the first 2 MiB of its new read-write store
//! at once, on the caller's thread.
//!
//! Zeros (or holes) after the last entry read as "no entry" (a record
//! length of 0), so the read-write open cuts them like a torn tail and
//! read-only views stop there; a clean close trims them. Only zeros that
//! run to the end of the file are taken for this space: zeros followed by
//! an intact entry are damage (see `entry::next_intact`).
//!
//! The appender and a fill never write the same bytes: a fill claims its
//! range when it starts writing, at least [`MARGIN`] past the appends; an
//! append that reaches a claimed range waits for that fill to finish.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::io::{FileHandle, foreground};
use crate::worker::{JobHandle, WorkerPool};

/// Bytes zero-filled per fill (one background burst).
const STEP: u64 = 8 << 20;
/// A fill is queued when less than this is zeroed ahead of the appends.
const LOW_WATER: u64 = 24 << 20;
/// A fill starts at least this far past the appends, so that they rarely
/// reach it while it runs.
const MARGIN: u64 = 2 << 20;
/// Poll interval while a fill waits for its burst.
const POLL: Duration = Duration::from_millis(1);
/// Durable appends at most this far apart get zeros written ahead.
const FREQUENT_BYTES: u64 = 1 << 20;
/// Bytes zero-filled at once by [`Prealloc::fill_now`]: a few hundred
/// stores' worth, little next to a merge's writes.
const FIRST_FILL: u64 = 2 << 20;
/// Zeros written per call.
const PIECE: usize = 1 << 20;

#[derive(Debug)]
struct State {
    /// Where the appends end (as reserved).
    appended_to: u64,
    /// Where the last durable append ended.
    durable_to: u64,
    /// End of the space made ready by fills (or of the appends, if later).
    zeroed_to: u64,
    /// A fill is queued or running.
    queued: bool,
    /// The range the running fill writes, if it has claimed one.
    running: Option<(u64, u64)>,
    /// Queued fills give up (close, or a failed append cutting the file).
    cancel: bool,
    /// A fill failed (e.g. no space left): no more for this store.
    disabled: bool,
}

/// The zero-filled space of one floating store's file.
#[derive(Debug)]
pub(crate) struct Prealloc {
    state: Mutex<State>,
    changed: Condvar,
    /// The last fill submitted: waiting on it runs it here if no worker has
    /// started it, so waiting from a worker thread cannot deadlock the pool.
    job: Mutex<Option<JobHandle>>,
}

impl Prealloc {
    /// For a file whose data (and length) end at `end`.
    pub(crate) fn new(end: u64) -> Prealloc {
        Prealloc {
            state: Mutex::new(State {
                appended_to: end,
                durable_to: end,
                zeroed_to: end,
                queued: false,
                running: None,
                cancel: false,
                disabled: false,
            }),
            changed: Condvar::new(),
            job: Mutex::new(None),
        }
    }

    /// Before the appender writes up to `end`: waits while a running fill
    /// has claimed any of those bytes.
    pub(crate) fn reserve(&self, end: u64) {
        let mut st = self.state.lock();
        while st.running.is_some_and(|(from, _)| end > from) {
            self.changed.wait(&mut st);
        }
        st.appended_to = end;
        st.zeroed_to = st.zeroed_to.max(end);
    }

    /// After a durable append ending at `end`: queues a fill on the worker
    /// pool when little zeroed space is left ahead.
    pub(crate) fn after_durable_append(self: &Arc<Self>, file: &Arc<dyn FileHandle>, end: u64) {
        {
            let mut st = self.state.lock();
            let since_last = end.saturating_sub(st.durable_to);
            st.durable_to = end;
            // Fsyncs megabytes apart amortise their journal commit: zeros
            // would only double what they write.
            if since_last > FREQUENT_BYTES
                || st.disabled
                || st.queued
                || st.zeroed_to.saturating_sub(end) >= LOW_WATER
            {
                return;
            }
            st.queued = true;
        }
        let (me, file) = (self.clone(), file.clone());
        // The outcome is recorded in the state, not in the job's result.
        let job = WorkerPool::global().submit(move || {
            me.fill(file.as_ref());
            Ok(())
        });
        *self.job.lock() = Some(job);
    }

    /// Zero-fills a first [`FIRST_FILL`] bytes now, on the calling thread (a
    /// store about to receive durable appends: the new read-write store of
    /// a merge, from a worker); fills after appends take over from there.
    pub(crate) fn fill_now(&self, file: &dyn FileHandle) -> Result<()> {
        {
            let mut st = self.state.lock();
            while st.queued {
                self.changed.wait(&mut st);
            }
            if st.disabled {
                return Ok(());
            }
            st.queued = true;
        }
        // Right at the appends: they have hardly started on a new store,
        // and the few that come meanwhile wait for these 2 MiB.
        let Some((from, to)) = self.claim(0, FIRST_FILL) else {
            self.finish(None);
            return Ok(());
        };
        // Stores are waiting for this space: not held back for a burst.
        self.write_claimed(file, from, to)
    }

    /// Claims the next `len` bytes to fill, at least `margin` past the
    /// appends, unless fills are cancelled.
    fn claim(&self, margin: u64, len: u64) -> Option<(u64, u64)> {
        let mut st = self.state.lock();
        if st.cancel || st.disabled {
            return None;
        }
        let from = st.zeroed_to.max(st.appended_to + margin);
        st.running = Some((from, from + len));
        Some((from, from + len))
    }

    fn fill(&self, file: &dyn FileHandle) {
        // Wait for a burst without holding anything the appender needs.
        while !foreground::try_pace_urgent_background(STEP) {
            if self.state.lock().cancel {
                return self.finish(None);
            }
            std::thread::sleep(POLL);
        }
        let Some(range) = self.claim(MARGIN, STEP) else {
            return self.finish(None);
        };
        // The burst is granted: its writes and fsync are not held back again.
        // Its outcome is kept in the state (a failure disables fills).
        let _ = self.write_claimed(file, range.0, range.1);
    }

    /// Writes the claimed range `from..to` with zeros and ends the fill,
    /// unpaced and as one exclusive burst: zeros in the page cache would be
    /// written out by the appender's next fsync (same file), so it waits
    /// for the whole fill instead.
    fn write_claimed(&self, file: &dyn FileHandle, from: u64, to: u64) -> Result<()> {
        let _unpaced = foreground::Unpaced::begin();
        let burst = foreground::BackgroundBurst::begin();
        let written = write_zeros(file, from, to);
        drop(burst);
        self.finish(Some((to, written.is_ok())));
        written
    }

    /// Ends a fill: `Some((end, ok))` if it wrote up to `end`.
    fn finish(&self, outcome: Option<(u64, bool)>) {
        let mut st = self.state.lock();
        match outcome {
            Some((end, true)) => st.zeroed_to = st.zeroed_to.max(end),
            Some((_, false)) => st.disabled = true,
            None => {}
        }
        st.queued = false;
        st.running = None;
        self.changed.notify_all();
    }

    /// Cancels queued fills and waits for a running one (before the
    /// appender cuts the file, and at close). Returns the end of the
    /// zeroed space.
    pub(crate) fn stop(&self) -> u64 {
        self.state.lock().cancel = true;
        let job = self.job.lock().take();
        if let Some(job) = job {
            let _ = job.wait();
        }
        let mut st = self.state.lock();
        while st.queued {
            self.changed.wait(&mut st);
        }
        st.zeroed_to
    }

    /// After the appender cut the file at `end` (a failed write): fills may
    /// run again.
    pub(crate) fn cut(&self, end: u64) {
        let mut st = self.state.lock();
        st.appended_to = end;
        st.zeroed_to = end;
        st.cancel = false;
    }
}

fn write_zeros(file: &dyn FileHandle, from: u64, to: u64) -> Result<()> {
    let zeros = vec![0u8; PIECE];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(PIECE);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, OpenMode, StdFs};

    #[test]
    fn fills_ahead_of_the_appender_never_under_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = StdFs::new(true);
        let file = fs
            .open(&dir.path().join("f"), OpenMode::ReadWrite)
            .expect("open");
        file.write_all_at(&[7u8; 100], 0).expect("write");
        let p = Arc::new(Prealloc::new(100));
        p.reserve(100);
        p.after_durable_append(&file, 100);
        // The fill starts MARGIN past the appends.
        let wait_fill = |p: &Prealloc| {
            let mut st = p.state.lock();
            while st.queued {
                p.changed.wait(&mut st);
            }
            st.zeroed_to
        };
        assert_eq!(wait_fill(&p), 100 + MARGIN + STEP);
        assert_eq!(file.len().expect("len"), 100 + MARGIN + STEP);
        let mut b = [1u8; 101];
        file.read_exact_at(&mut b, 0).expect("read");
        assert_eq!((&b[..100], b[100]), (&[7u8; 100][..], 0));
        // Less than LOW_WATER ahead: another fill, after the first.
        p.after_durable_append(&file, 200);
        assert_eq!(wait_fill(&p), 100 + MARGIN + 2 * STEP);
        // Enough ahead now? Not yet (2 x 8 < 24 MiB): a third one.
        p.after_durable_append(&file, 300);
        assert_eq!(wait_fill(&p), 100 + MARGIN + 3 * STEP);
        p.after_durable_append(&file, 400);
        assert_eq!(
            p.stop(),
            100 + MARGIN + 3 * STEP,
            "no fill once 24 MiB are ahead"
        );
        // Appends past the zeroed space move it along; a cancelled store
        // queues fills that give up.
        p.reserve(100 + 4 * STEP);
        p.after_durable_append(&file, 100 + 4 * STEP);
        assert_eq!(p.stop(), 100 + 4 * STEP);
        p.cut(50);
        assert_eq!(p.stop(), 50);

        // A first fill starts right at the appends.
        let first = Arc::new(Prealloc::new(100));
        first.fill_now(file.as_ref()).expect("fill");
        assert_eq!(first.stop(), 100 + FIRST_FILL);

        // Durable appends megabytes apart get no zeros.
        let rare = Arc::new(Prealloc::new(0));
        rare.reserve(5 << 20);
        rare.after_durable_append(&file, 5 << 20);
        assert_eq!(rare.stop(), 5 << 20);
    }
}
