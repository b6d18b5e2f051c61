//! Process-exit hooks, so that process-wide resources (the global worker
//! pool's threads) are released before the process ends and leak checkers
//! (valgrind in the C tests) see no thread still running.

/// Registers `f` to run at normal process exit (`exit(3)`, return from
/// `main`), in reverse order of registration. Returns false if the C library
/// refused (too many handlers), in which case `f` will not run.
pub fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: `atexit` only stores the function pointer; `f` is a plain `extern "C" fn` with no captured state, valid for the process's life.
    unsafe { libc::atexit(f) == 0 }
}
