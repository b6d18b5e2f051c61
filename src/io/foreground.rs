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
//!
//! Holding back is not enough on a virtualised disk: its flush command
//! makes durable every byte written since the previous flush, so a
//! foreground fsync pays for whatever the background sent to the disk just
//! before it, however small the pieces. While the foreground is busy,
//! background disk traffic is therefore gathered into bursts: a burst may
//! send up to `BURST` bytes within `BURST_WINDOW`, and the next one
//! starts `SYNCS_PER_BURST` foreground fsyncs later (or after
//! `MAX_PAUSE`, a floor of 20 MB/s for the background; work the
//! foreground itself gains from, zeros written ahead of its appends, may
//! come four times as often). Bursts are exclusive: a foreground fsync that
//! would start while a burst's I/O is under way ([`BackgroundBurst`]) waits
//! for it, at most `MAX_FG_WAIT`, so one store pays for a burst and the
//! few hundred between bursts find the disk clean. A foreground fsync in
//! flight or waiting keeps the foreground "busy" however long it takes.
//! Background writes still go to the page cache at once: only their
//! write-back ([`crate::io::FileHandle::write_behind`], which is skipped
//! outside a burst and catches up in the next one) and their fsyncs wait
//! for a burst. When the foreground is idle the background runs at full
//! speed. Work done under a lock that the foreground waits for runs
//! [`Unpaced`].

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Foreground fsyncs waiting for a background burst to end: busy, too.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// Background bursts whose disk traffic is under way (see [`BackgroundBurst`]).
static BURSTS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Foreground fsyncs finished since the process started.
static FG_SYNCS: AtomicU64 = AtomicU64::new(0);
/// When the last foreground fsync finished, in nanoseconds since [`epoch`]
/// (0: never).
static LAST_FG_END: AtomicU64 = AtomicU64::new(0);
/// Time between the last two foreground fsync ends, in nanoseconds.
static LAST_FG_GAP: AtomicU64 = AtomicU64::new(0);
static PACER: Mutex<Pacer> = Mutex::new(Pacer::new());

/// Background bytes sent to the disk per burst while the foreground is busy.
pub(crate) const BURST: u64 = 8 << 20;
/// How long a burst stays open after it starts.
const BURST_WINDOW: Duration = Duration::from_millis(5);
/// Foreground fsyncs between the starts of two bursts.
const SYNCS_PER_BURST: u64 = 400;
/// Longest pause between the starts of two bursts.
const MAX_PAUSE: Duration = Duration::from_millis(400);
/// The foreground counts as busy until four of its recent gaps between
/// fsyncs have passed since the last one, within these bounds: back-to-back
/// stores hold a merge that follows them back for 2 ms only, while a node
/// storing 50 times a second still counts as busy.
const MIN_BUSY_WINDOW: Duration = Duration::from_millis(2);
const MAX_BUSY_WINDOW: Duration = Duration::from_millis(20);
/// Poll interval while a background write waits for its burst.
const PACE_POLL: Duration = Duration::from_millis(1);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Longest a background write waits for foreground fsyncs to finish.
const MAX_WAIT: Duration = Duration::from_millis(5);
/// Poll interval while waiting.
const POLL: Duration = Duration::from_micros(50);

/// Marks a foreground fsync in flight until dropped.
#[must_use = "the fsync counts as in flight only while the guard lives"]
pub struct ForegroundSync(());

/// Longest a foreground fsync waits for a background burst to end.
const MAX_FG_WAIT: Duration = Duration::from_millis(100);

impl ForegroundSync {
    /// Starts a foreground fsync, first letting a background burst under way
    /// finish (for at most `MAX_FG_WAIT`, 100 ms): an fsync issued during a burst
    /// would wait for it anyway, and one store waiting for the whole burst
    /// is better than every store during it waiting for part of it.
    pub fn begin() -> ForegroundSync {
        if BURSTS_IN_FLIGHT.load(Ordering::SeqCst) > 0 {
            WAITING.fetch_add(1, Ordering::SeqCst);
            wait_for_zero(&BURSTS_IN_FLIGHT, MAX_FG_WAIT);
            WAITING.fetch_sub(1, Ordering::SeqCst);
        }
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        ForegroundSync(())
    }
}

/// Marks background disk traffic under way (a write-back step, an fsync,
/// a truncation) until dropped; foreground fsyncs starting meanwhile wait
/// for it (see [`ForegroundSync::begin`]). A no-op on foreground threads.
#[must_use = "the burst counts as under way only while the guard lives"]
pub struct BackgroundBurst(bool);

impl BackgroundBurst {
    /// Starts a burst's disk traffic (background threads only).
    pub fn begin() -> BackgroundBurst {
        let background = is_background();
        if background {
            BURSTS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        }
        BackgroundBurst(background)
    }
}

impl Drop for BackgroundBurst {
    fn drop(&mut self) {
        if self.0 {
            BURSTS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for ForegroundSync {
    fn drop(&mut self) {
        // At least 1, so that "0 = never" stays unambiguous.
        let now = now_ns().max(1);
        let prev = LAST_FG_END.swap(now, Ordering::Relaxed);
        if prev != 0 {
            LAST_FG_GAP.store(now.saturating_sub(prev), Ordering::Relaxed);
        }
        FG_SYNCS.fetch_add(1, Ordering::Relaxed);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the pacer knows of the foreground.
#[derive(Debug, Clone, Copy)]
struct Foreground {
    /// Fsyncs finished so far.
    syncs: u64,
    /// When the last one ended (ns; 0: never).
    last_end_ns: u64,
    /// How long after it the foreground still counts as busy (ns).
    window_ns: u64,
    /// Fsyncs under way or waiting for a burst (a slow one must not make
    /// the foreground look idle).
    in_flight: usize,
}

impl Foreground {
    fn idle(&self, now_ns: u64) -> bool {
        self.in_flight == 0
            && (self.last_end_ns == 0 || now_ns.saturating_sub(self.last_end_ns) > self.window_ns)
    }

    fn now() -> Foreground {
        let gap = LAST_FG_GAP.load(Ordering::Relaxed);
        Foreground {
            syncs: FG_SYNCS.load(Ordering::Relaxed),
            last_end_ns: LAST_FG_END.load(Ordering::Relaxed),
            in_flight: IN_FLIGHT.load(Ordering::Relaxed) + WAITING.load(Ordering::Relaxed),
            window_ns: gap.saturating_mul(4).clamp(
                MIN_BUSY_WINDOW.as_nanos() as u64,
                MAX_BUSY_WINDOW.as_nanos() as u64,
            ),
        }
    }
}

/// The burst accounting of background writes (see the module docs); its
/// inputs are passed in so that the policy is testable on its own.
#[derive(Debug)]
struct Pacer {
    /// Bytes admitted in the current burst.
    used: u64,
    /// Foreground fsync count and time (ns) when the current burst began.
    start_syncs: u64,
    start_ns: u64,
}

impl Pacer {
    const fn new() -> Pacer {
        Pacer {
            used: 0,
            start_syncs: 0,
            start_ns: 0,
        }
    }

    /// Whether a background write of `bytes` may go now (it is then
    /// counted), given the time and the foreground's state.
    #[cfg(test)]
    fn admit(&mut self, bytes: u64, now_ns: u64, fg: Foreground) -> bool {
        self.admit_after(bytes, now_ns, fg, SYNCS_PER_BURST)
    }

    /// [`Pacer::admit`] with the bursts of this request `syncs_apart`
    /// foreground fsyncs apart (fewer: a more urgent request).
    fn admit_after(&mut self, bytes: u64, now_ns: u64, fg: Foreground, syncs_apart: u64) -> bool {
        let fg_syncs = fg.syncs;
        let idle = fg.idle(now_ns);
        let paused_enough = fg_syncs.saturating_sub(self.start_syncs) >= syncs_apart
            || now_ns.saturating_sub(self.start_ns) >= MAX_PAUSE.as_nanos() as u64;
        if idle || paused_enough {
            // A new burst (when idle, the next busy period starts afresh).
            self.used = if idle { 0 } else { bytes };
            self.start_syncs = fg_syncs;
            self.start_ns = now_ns;
            return true;
        }
        let open = now_ns.saturating_sub(self.start_ns) <= BURST_WINDOW.as_nanos() as u64;
        if open && (self.used == 0 || self.used.saturating_add(bytes) <= BURST) {
            self.used = self.used.saturating_add(bytes);
            return true;
        }
        false
    }
}

/// True while durable foreground work is going on (see the module docs):
/// background disk traffic then goes out in exclusive bursts.
pub fn foreground_busy() -> bool {
    !Foreground::now().idle(now_ns())
}

/// Whether a background thread may send `bytes` to the disk now (counted
/// if so); always true on foreground threads. Callers that can defer the
/// work (write-back) use this; the rest use [`pace_background`].
pub fn try_pace_background(bytes: u64) -> bool {
    try_pace(bytes, SYNCS_PER_BURST)
}

/// [`try_pace_background`] for work the foreground itself gains from (zeros
/// written ahead of its appends): its bursts may come four times as often.
pub fn try_pace_urgent_background(bytes: u64) -> bool {
    try_pace(bytes, SYNCS_PER_BURST / 4)
}

fn try_pace(bytes: u64, syncs_apart: u64) -> bool {
    if !is_background() || UNPACED.with(Cell::get) > 0 {
        return true;
    }
    PACER
        .lock()
        .admit_after(bytes, now_ns(), Foreground::now(), syncs_apart)
}

/// Called before a background thread sends `bytes` to the disk (an fsync,
/// freeing extents): while the foreground is busy, waits for a burst (see
/// the module docs). A no-op on foreground threads.
pub fn pace_background(bytes: u64) {
    while !try_pace_background(bytes) {
        std::thread::sleep(PACE_POLL);
    }
}

thread_local! {
    static BACKGROUND: Cell<bool> = const { Cell::new(false) };
    static UNPACED: Cell<u32> = const { Cell::new(0) };
}

/// While alive, the calling background thread's disk traffic is not held
/// back for a burst: for work done under a lock that foreground calls wait
/// for (a merge's final swap), where holding back would make the
/// foreground wait for its own pause.
#[must_use = "pacing is lifted only while the guard lives"]
pub struct Unpaced(std::marker::PhantomData<*const ()>);

impl Unpaced {
    /// Lifts pacing on this thread until dropped.
    pub fn begin() -> Unpaced {
        UNPACED.with(|u| u.set(u.get() + 1));
        Unpaced(std::marker::PhantomData)
    }
}

impl Drop for Unpaced {
    fn drop(&mut self) {
        UNPACED.with(|u| u.set(u.get().saturating_sub(1)));
    }
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
    wait_for_zero(&IN_FLIGHT, MAX_WAIT);
}

/// Polls until `count` is 0, for at most `max`.
fn wait_for_zero(count: &AtomicUsize, max: Duration) {
    if count.load(Ordering::SeqCst) == 0 {
        return;
    }
    let start = Instant::now();
    while count.load(Ordering::SeqCst) > 0 && start.elapsed() < max {
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

    const MS: u64 = 1_000_000;

    /// A foreground with the widest busy window.
    fn fg(syncs: u64, last_end_ns: u64) -> Foreground {
        Foreground {
            syncs,
            last_end_ns,
            window_ns: MAX_BUSY_WINDOW.as_nanos() as u64,
            in_flight: 0,
        }
    }

    #[test]
    fn back_to_back_stores_count_as_busy_only_briefly() {
        let mut p = Pacer::new();
        let narrow = Foreground {
            syncs: 10,
            last_end_ns: 1_000 * MS,
            window_ns: MIN_BUSY_WINDOW.as_nanos() as u64,
            in_flight: 0,
        };
        // Busy right after the last fsync: one burst, then held back.
        assert!(p.admit(BURST, 1_000 * MS, narrow));
        assert!(!p.admit(1, 1_000 * MS + 1, narrow));
        // Not while an fsync is in flight, however long it takes.
        let slow = Foreground {
            in_flight: 1,
            ..narrow
        };
        assert!(!p.admit(1, 1_000 * MS + 3 * MS, slow));
        // Idle once the narrow window has passed.
        assert!(p.admit(BURST, 1_000 * MS + 3 * MS, narrow));
        assert!(p.admit(BURST, 1_000 * MS + 3 * MS, narrow));
    }

    #[test]
    fn a_foreground_fsync_waits_for_a_background_burst_but_not_forever() {
        let waited = std::thread::spawn(|| {
            mark_background_thread();
            let burst = BackgroundBurst::begin();
            let fg = std::thread::spawn(|| {
                let t = Instant::now();
                drop(ForegroundSync::begin());
                t.elapsed()
            });
            std::thread::sleep(Duration::from_millis(20));
            drop(burst);
            fg.join().expect("foreground thread")
        })
        .join()
        .expect("background thread");
        assert!(waited >= Duration::from_millis(15), "{waited:?}");
        // A burst that never ends holds a foreground fsync back only so long.
        std::thread::spawn(|| {
            mark_background_thread();
            let _stuck = BackgroundBurst::begin();
            let t = Instant::now();
            let fg = std::thread::spawn(move || drop(ForegroundSync::begin()));
            fg.join().expect("foreground thread");
            assert!(t.elapsed() >= MAX_FG_WAIT);
        })
        .join()
        .expect("background thread");
    }

    #[test]
    fn unpaced_work_is_never_held_back() {
        std::thread::spawn(|| {
            mark_background_thread();
            // A busy foreground (it syncs before every try) and the burst
            // used up: held back within a few tries.
            let held_back = (0..1000).any(|_| {
                drop(ForegroundSync::begin());
                !try_pace_background(BURST)
            });
            assert!(held_back);
            drop(ForegroundSync::begin());
            let guard = Unpaced::begin();
            assert!(try_pace_background(BURST));
            drop(guard);
        })
        .join()
        .expect("background thread");
    }

    #[test]
    fn an_idle_foreground_never_holds_the_background_back() {
        let mut p = Pacer::new();
        // No foreground fsync ever, then none for longer than the window.
        for i in 0..100 {
            assert!(p.admit(BURST, i, fg(0, 0)));
        }
        let last = 1_000 * MS;
        for i in 0..100 {
            assert!(p.admit(
                BURST,
                last + MAX_BUSY_WINDOW.as_nanos() as u64 + 1 + i,
                fg(7, last)
            ));
        }
    }

    #[test]
    fn a_busy_foreground_gets_one_burst_per_few_hundred_fsyncs() {
        let mut p = Pacer::new();
        let (mut now, mut syncs) = (1_000 * MS, 1_000);
        // Busy: the last foreground fsync just ended. The first write after
        // an idle period starts a burst; the burst takes BURST bytes.
        assert!(p.admit(1 << 20, now, fg(syncs, now)));
        assert!(p.admit(7 << 20, now, fg(syncs, now)));
        assert!(!p.admit(1, now, fg(syncs, now)));
        // Fewer than SYNCS_PER_BURST fsyncs and less than MAX_PAUSE later:
        // still held back.
        now += 10 * MS;
        syncs += SYNCS_PER_BURST - 1;
        assert!(!p.admit(1, now, fg(syncs, now)));
        // One more fsync: a new burst starts with this write.
        syncs += 1;
        assert!(p.admit(2 << 20, now, fg(syncs, now)));
        assert!(p.admit(2 << 20, now, fg(syncs, now)));
        assert!(p.admit(4 << 20, now, fg(syncs, now)));
        assert!(!p.admit(1 << 20, now, fg(syncs, now)));
        // A burst closes after its window, even with bytes left.
        let mut q = Pacer::new();
        let (t, w) = (5_000 * MS, BURST_WINDOW.as_nanos() as u64);
        assert!(q.admit(1, t, fg(syncs, t)));
        assert!(q.admit(1, t + w, fg(syncs, t + w)));
        assert!(!q.admit(1, t + w + 1, fg(syncs, t + w)));
        // An urgent request needs only a quarter of the fsyncs.
        let mut u = Pacer::new();
        assert!(u.admit(BURST, now, fg(syncs, now)));
        assert!(!u.admit_after(
            1,
            now + 10 * MS,
            fg(syncs + SYNCS_PER_BURST / 4 - 1, now),
            SYNCS_PER_BURST / 4
        ));
        assert!(u.admit_after(
            1,
            now + 10 * MS,
            fg(syncs + SYNCS_PER_BURST / 4, now),
            SYNCS_PER_BURST / 4
        ));
        // A slow foreground: MAX_PAUSE alone also starts a burst.
        now += MAX_PAUSE.as_nanos() as u64;
        assert!(p.admit(1 << 20, now, fg(syncs + 3, now)));
        // A single write larger than a burst is admitted as a burst of its own.
        now += MAX_PAUSE.as_nanos() as u64;
        assert!(p.admit(3 * BURST, now, fg(syncs + 3, now)));
        assert!(!p.admit(1, now, fg(syncs + 3, now)));
    }
}
