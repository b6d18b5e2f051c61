//! Background threads yield to the caller's threads: a merge or a
//! compaction must not add latency to the `store` or `add` a node is
//! waiting on (RocksDB lowers its background pools' CPU and I/O priority
//! for the same reason).

/// Nice value of background threads: still about a quarter of a core's
/// share against a busy foreground thread, so merges always progress.
const BACKGROUND_NICE: libc::c_int = 5;
/// Lowest best-effort I/O priority (honoured by the bfq and mq-deadline
/// schedulers; others ignore it).
const IOPRIO_CLASS_BE: libc::c_long = 2;
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_LOWEST_BE_LEVEL: libc::c_long = 7;
const IOPRIO_WHO_PROCESS: libc::c_long = 1;

/// Lowers the calling thread's CPU and I/O priority. Best effort: a
/// sandbox that forbids it leaves the priorities as they were.
pub fn lower_current_thread() {
    // SAFETY: setpriority only reads its integer arguments; on Linux PRIO_PROCESS with `who` 0 applies to the calling thread alone.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) };
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST_BE_LEVEL;
    // SAFETY: ioprio_set has no glibc wrapper; the raw system call only reads its integer arguments (`who` 0 is the calling thread).
    unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
}
