//! Background threads yield the disk to the caller's threads: a merge or a
//! compaction must not add latency to the `store` a node is waiting on
//! (RocksDB lowers its background pools' I/O priority for the same reason).
//!
//! Their CPU priority is left alone on purpose: an `add` may wait for a
//! running index merge (bounded memory), and a foreground thread waiting on
//! a deprioritised job is a priority inversion (under valgrind, which runs
//! one thread at a time, busy readers starved such a merge for minutes).

/// Lowest best-effort I/O priority (honoured by the bfq and mq-deadline
/// schedulers; others ignore it).
const IOPRIO_CLASS_BE: libc::c_long = 2;
const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_LOWEST_BE_LEVEL: libc::c_long = 7;
const IOPRIO_WHO_PROCESS: libc::c_long = 1;

/// Lowers the calling thread's I/O priority. Best effort: a sandbox that
/// forbids it leaves the priority as it was.
pub fn lower_current_thread() {
    let prio = (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST_BE_LEVEL;
    // SAFETY: ioprio_set has no glibc wrapper; the raw system call only reads its integer arguments (`who` 0 is the calling thread).
    unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
}
