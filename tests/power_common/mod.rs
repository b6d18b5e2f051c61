//! The driver of the power-cut tests (`tests/power_cut_*.rs`): a workload
//! runs on the crash-model file system (`tzstore::io::crash`), once to count
//! its syncs, then once per cut with the state recorded just before sync k;
//! each recorded state is cut under every mode and a few seeds, and the
//! store's own check runs on what a reboot would find.
#![allow(dead_code)]

use tzstore::io::crash::{CrashFs, CutMode};

/// Runs `workload` with a cut before each sync from `first` to its last
/// (every `step`-th when there are more than `max_cuts`), and calls
/// `verify(fs_after_cut, record_of_that_run, k, mode)` for every cut mode
/// and `seeds` seeds. Returns how many crash states were verified.
///
/// The long run (RELIABILITY.md) raises both: `TZS_POWER_MAX_CUTS` (cut
/// before every sync when it exceeds the workload's syncs) and
/// `TZS_POWER_SEEDS` (random choices of pending operations per mode).
pub fn at_every_sync<R>(
    first: u64,
    max_cuts: u64,
    seeds: u64,
    workload: impl Fn(&CrashFs) -> R,
    verify: impl Fn(&CrashFs, &R, u64, CutMode),
) -> u64 {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let max_cuts = env("TZS_POWER_MAX_CUTS", max_cuts).max(1);
    let seeds = env("TZS_POWER_SEEDS", seeds).max(1);
    let total = {
        let fs = CrashFs::new().unwrap();
        workload(&fs);
        fs.syncs()
    };
    assert!(total > first, "the workload made only {total} syncs");
    let step = ((total - first) / max_cuts).max(1);
    let mut states = 0;
    let mut k = first;
    while k < total {
        let fs = CrashFs::new().unwrap();
        fs.cut_before_sync(k);
        let record = workload(&fs);
        // Background work (merges) can make a run sync less often than the
        // counting run: a cut it never reached is no state to check.
        if let Some(snap) = fs.taken() {
            for mode in CutMode::ALL {
                for seed in 1..=seeds {
                    let after = CrashFs::power_cut(&snap, mode, seed * 7919 + k).unwrap();
                    verify(&after, &record, k, mode);
                    states += 1;
                }
            }
        }
        k += step;
    }
    eprintln!("{states} crash states verified ({total} syncs in the workload)");
    states
}

/// Opens the store after a cut: `open` must succeed, except after a cut
/// that persisted data out of order (`CutMode::Subset`). There, bytes
/// written after the last fsync can leave an invalid record before intact
/// ones, or an index entry of an unacknowledged append without its bytes,
/// which the store cannot tell from damage: the open or `check` reports it
/// as `Corrupted`, and the documented repair (`check` with repair) must
/// salvage the store, after which `open` succeeds and `check` is clean.
/// With `TZS_POWER_STRICT` set, each repair prints `STRICT-REPAIR` and the
/// reason, to count the crash states that needed one.
pub fn open_or_repair<T>(
    mode: CutMode,
    what: &str,
    open: impl Fn() -> tzstore::Result<T>,
    check: impl Fn(bool) -> tzstore::Result<tzstore::check::CheckReport>,
) -> T {
    let repair = |why: String| {
        if std::env::var_os("TZS_POWER_STRICT").is_some() {
            eprintln!("STRICT-REPAIR {what}: {why}");
        }
        let report = check(true).unwrap_or_else(|e| panic!("{what}: repair after {why}: {e}"));
        assert!(report.is_ok(), "{what}: repair after {why}: {report:?}");
        let t = open().unwrap_or_else(|e| panic!("{what}: open after the repair of {why}: {e}"));
        let again = check(false).unwrap_or_else(|e| panic!("{what}: check after repair: {e}"));
        assert!(
            again.is_ok(),
            "{what}: check after the repair of {why}: {again:?}"
        );
        t
    };
    match open() {
        Ok(t) if mode == CutMode::Subset => {
            let report = check(false).unwrap_or_else(|e| panic!("{what}: check: {e}"));
            if report.is_ok() {
                t
            } else {
                drop(t);
                repair(format!("{:?}", report.problems))
            }
        }
        Ok(t) => t,
        Err(tzstore::Error::Corrupted(m)) if mode == CutMode::Subset => repair(m),
        Err(e) => panic!("{what}: open: {e}"),
    }
}
