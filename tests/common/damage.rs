//! Damage fuzzing: a deterministic, seeded mutation harness shared by every
//! store's damage test (`tests/damage_*.rs`).
//!
//! A store test builds a valid store once (the template), then for each case
//! copies it, applies random damage to its files ([`Damage`]), and runs the
//! store against it, checking its own invariants (every read returns the
//! exact acknowledged value or an error status; after repair the store opens
//! and passes `check`; ...). [`run`] executes the cases in a child process
//! under an address-space limit (an allocation driven by a damaged length
//! aborts the child) and a per-case watchdog (a hang aborts it), and reports
//! the seed of the case that failed, so it can be replayed alone:
//!
//! ```text
//! TZS_DAMAGE_SEED=<seed> TZS_DAMAGE_CASES=1 cargo test --test damage_index
//! ```
//!
//! Knobs (environment): `TZS_DAMAGE_CASES` (cases per store; the test's
//! default otherwise), `TZS_DAMAGE_SEED` (first seed, default 1),
//! `TZS_DAMAGE_AS_MB` (address-space limit of the child, default 1024),
//! `TZS_DAMAGE_CASE_SECS` (per-case timeout, default 30).

use std::fmt;
use std::io::{Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{CHILD_ENV, Rng, is_child};

/// One mutation of one store file (or two, for a swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// One bit flipped.
    FlipBit { file: PathBuf, offset: u64, bit: u8 },
    /// A run of bytes set to zero.
    Zero {
        file: PathBuf,
        offset: u64,
        len: u64,
    },
    /// A run of bytes set to random values.
    Random {
        file: PathBuf,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// The file cut at `len`.
    Truncate { file: PathBuf, len: u64 },
    /// Random bytes appended.
    Extend { file: PathBuf, bytes: Vec<u8> },
    /// The file deleted.
    Delete { file: PathBuf },
    /// Two files' contents exchanged.
    Swap { a: PathBuf, b: PathBuf },
    /// The file replaced by an empty directory.
    ReplaceWithDir { file: PathBuf },
    /// The file replaced by a FIFO (opening it for reading would block).
    ReplaceWithFifo { file: PathBuf },
    /// A huge value written over what may be a length field.
    HugeLength {
        file: PathBuf,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// `len` bytes from `from` copied over `to` (a duplicated record).
    Duplicate {
        file: PathBuf,
        from: u64,
        to: u64,
        len: u64,
    },
    /// Two runs of `len` bytes exchanged (reordered records).
    Reorder {
        file: PathBuf,
        a: u64,
        b: u64,
        len: u64,
    },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::FlipBit { file, offset, bit } => {
                write!(f, "flip bit {bit} at {offset} of {}", file.display())
            }
            Damage::Zero { file, offset, len } => {
                write!(f, "zero {len} bytes at {offset} of {}", file.display())
            }
            Damage::Random {
                file,
                offset,
                bytes,
            } => write!(
                f,
                "{} random bytes at {offset} of {}",
                bytes.len(),
                file.display()
            ),
            Damage::Truncate { file, len } => write!(f, "truncate {} to {len}", file.display()),
            Damage::Extend { file, bytes } => {
                write!(f, "append {} bytes to {}", bytes.len(), file.display())
            }
            Damage::Delete { file } => write!(f, "delete {}", file.display()),
            Damage::Swap { a, b } => write!(f, "swap {} and {}", a.display(), b.display()),
            Damage::ReplaceWithDir { file } => {
                write!(f, "replace {} by a directory", file.display())
            }
            Damage::ReplaceWithFifo { file } => write!(f, "replace {} by a FIFO", file.display()),
            Damage::HugeLength {
                file,
                offset,
                bytes,
            } => write!(f, "write {bytes:02x?} at {offset} of {}", file.display()),
            Damage::Duplicate {
                file,
                from,
                to,
                len,
            } => write!(
                f,
                "copy {len} bytes from {from} to {to} of {}",
                file.display()
            ),
            Damage::Reorder { file, a, b, len } => write!(
                f,
                "exchange {len} bytes at {a} and {b} of {}",
                file.display()
            ),
        }
    }
}

impl Damage {
    /// The files this damage changes.
    pub fn files(&self) -> Vec<&Path> {
        match self {
            Damage::Swap { a, b } => vec![a, b],
            Damage::FlipBit { file, .. }
            | Damage::Zero { file, .. }
            | Damage::Random { file, .. }
            | Damage::Truncate { file, .. }
            | Damage::Extend { file, .. }
            | Damage::Delete { file }
            | Damage::ReplaceWithDir { file }
            | Damage::ReplaceWithFifo { file }
            | Damage::HugeLength { file, .. }
            | Damage::Duplicate { file, .. }
            | Damage::Reorder { file, .. } => vec![file],
        }
    }

    /// True if the damage may have changed bytes of `file` in `range` (or
    /// the file as a whole: deleted, swapped, replaced). Bytes appended past
    /// the old end touch `old_len..`, which a caller can ignore for records
    /// that end before.
    pub fn touches(&self, file: &Path, range: Range<u64>) -> bool {
        let overlaps = |r: Range<u64>| r.start < range.end && range.start < r.end;
        match self {
            Damage::FlipBit {
                file: f, offset, ..
            } => f == file && overlaps(*offset..offset + 1),
            Damage::Zero {
                file: f,
                offset,
                len,
            } => f == file && overlaps(*offset..offset + len),
            Damage::Random {
                file: f,
                offset,
                bytes,
            }
            | Damage::HugeLength {
                file: f,
                offset,
                bytes,
            } => f == file && overlaps(*offset..offset + bytes.len() as u64),
            Damage::Truncate { file: f, len } => f == file && overlaps(*len..u64::MAX),
            Damage::Extend { .. } => false,
            Damage::Delete { file: f }
            | Damage::ReplaceWithDir { file: f }
            | Damage::ReplaceWithFifo { file: f } => f == file,
            Damage::Swap { a, b } => a == file || b == file,
            Damage::Duplicate {
                file: f, to, len, ..
            } => f == file && overlaps(*to..to + len),
            Damage::Reorder { file: f, a, b, len } => {
                f == file && (overlaps(*a..a + len) || overlaps(*b..b + len))
            }
        }
    }

    /// Picks a random damage of one of `files` (regular files of a store;
    /// see [`store_files`]). Offsets favour the first 64 bytes a quarter of
    /// the time, where headers and first length fields live.
    pub fn pick(rng: &mut Rng, files: &[PathBuf]) -> Damage {
        assert!(!files.is_empty(), "no file to damage");
        let file = files[rng.below(files.len() as u64) as usize].clone();
        let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let offset = |rng: &mut Rng, len: u64| -> u64 {
            if len == 0 {
                0
            } else if rng.below(4) == 0 {
                rng.below(len.min(64))
            } else {
                rng.below(len)
            }
        };
        let roll = rng.below(100);
        if len == 0 && roll < 70 {
            let n = 1 + rng.below(64) as usize;
            return Damage::Extend {
                file,
                bytes: random_bytes(rng, n),
            };
        }
        match roll {
            0..25 => Damage::FlipBit {
                offset: offset(rng, len),
                bit: rng.below(8) as u8,
                file,
            },
            25..33 => {
                let at = offset(rng, len);
                Damage::Zero {
                    offset: at,
                    len: (1 + rng.below(4096)).min(len - at),
                    file,
                }
            }
            33..41 => {
                let at = offset(rng, len);
                let n = (1 + rng.below(64)).min(len - at) as usize;
                Damage::Random {
                    offset: at,
                    bytes: random_bytes(rng, n),
                    file,
                }
            }
            41..55 => Damage::Truncate {
                len: rng.below(len),
                file,
            },
            55..58 => {
                let n = 1 + rng.below(64) as usize;
                Damage::Extend {
                    bytes: random_bytes(rng, n),
                    file,
                }
            }
            58..62 => Damage::Delete { file },
            62..65 if files.len() > 1 => {
                let b = files[rng.below(files.len() as u64) as usize].clone();
                Damage::Swap { a: file, b }
            }
            65..68 => Damage::ReplaceWithDir { file },
            68..71 => Damage::ReplaceWithFifo { file },
            71..85 => {
                let width = if rng.below(2) == 0 { 4 } else { 8 };
                let at = offset(rng, len).min(len.saturating_sub(width));
                let value: u64 = match rng.below(4) {
                    0 => u64::MAX,
                    1 => 0xFFFF_FFF0,
                    2 => 0x8000_0000 + rng.below(0x8000_0000),
                    _ => 1 << (20 + rng.below(44)),
                };
                let mut bytes = value.to_le_bytes()[..width as usize].to_vec();
                if rng.below(2) == 0 {
                    bytes.reverse();
                }
                Damage::HugeLength {
                    offset: at,
                    bytes: bytes[..(width.min(len) as usize)].to_vec(),
                    file,
                }
            }
            85..93 => {
                let n = 1 + rng.below(len.clamp(1, 4096));
                let n = n.min(len);
                let from = rng.below(len - n + 1);
                let to = rng.below(len - n + 1);
                Damage::Duplicate {
                    from,
                    to,
                    len: n,
                    file,
                }
            }
            93..100 if len >= 2 => {
                let n = 1 + rng.below((len / 2).min(4096));
                let a = rng.below(len - 2 * n + 1);
                let b = a + n + rng.below(len - a - 2 * n + 1);
                Damage::Reorder { a, b, len: n, file }
            }
            _ => Damage::FlipBit {
                offset: offset(rng, len),
                bit: rng.below(8) as u8,
                file,
            },
        }
    }

    /// Applies the damage to the files on disk.
    pub fn apply(&self) -> std::io::Result<()> {
        match self {
            Damage::FlipBit { file, offset, bit } => {
                let mut b = std::fs::read(file)?;
                if let Some(x) = b.get_mut(*offset as usize) {
                    *x ^= 1 << bit;
                }
                std::fs::write(file, b)
            }
            Damage::Zero { file, offset, len } => {
                write_at(file, *offset, &vec![0u8; *len as usize])
            }
            Damage::Random {
                file,
                offset,
                bytes,
            }
            | Damage::HugeLength {
                file,
                offset,
                bytes,
            } => write_at(file, *offset, bytes),
            Damage::Truncate { file, len } => std::fs::OpenOptions::new()
                .write(true)
                .open(file)?
                .set_len(*len),
            Damage::Extend { file, bytes } => std::fs::OpenOptions::new()
                .append(true)
                .open(file)?
                .write_all(bytes),
            Damage::Delete { file } => std::fs::remove_file(file),
            Damage::Swap { a, b } => {
                let (x, y) = (std::fs::read(a)?, std::fs::read(b)?);
                std::fs::write(a, y)?;
                std::fs::write(b, x)
            }
            Damage::ReplaceWithDir { file } => {
                std::fs::remove_file(file)?;
                std::fs::create_dir(file)
            }
            Damage::ReplaceWithFifo { file } => {
                std::fs::remove_file(file)?;
                mkfifo(file)
            }
            Damage::Duplicate {
                file,
                from,
                to,
                len,
            } => {
                let b = std::fs::read(file)?;
                let (f, n) = (*from as usize, *len as usize);
                let run = b.get(f..f + n).unwrap_or(&[]).to_vec();
                write_at(file, *to, &run)
            }
            Damage::Reorder { file, a, b, len } => {
                let mut bytes = std::fs::read(file)?;
                let (a, b, n) = (*a as usize, *b as usize, *len as usize);
                if b + n <= bytes.len() && a + n <= b {
                    let (head, tail) = bytes.split_at_mut(b);
                    head[a..a + n].swap_with_slice(&mut tail[..n]);
                }
                std::fs::write(file, bytes)
            }
        }
    }
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}

fn write_at(file: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)?
        .write_all_at(bytes, offset)
}

/// Creates a FIFO at `path`.
pub fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o644) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Every regular file under `dir` (recursively, sorted), except lock files
/// (`lock`, `.tzs-lock`, `*.lock`) and the quarantine: the files a damage may hit.
pub fn store_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != ".tzs-quarantine" {
                    stack.push(p);
                }
            } else if ft.is_file() && !is_lock_file(&name) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Lock files hold no data: damaging them tests the OS, not the store.
fn is_lock_file(name: &str) -> bool {
    name == "lock" || name == ".tzs-lock" || name.ends_with(".lock")
}

/// Copies the tree at `src` to `dst` (created), regular files and
/// directories only.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let ft = e.file_type()?;
        let to = dst.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &to)?;
        } else if ft.is_fifo() {
            mkfifo(&to)?;
        }
    }
    Ok(())
}

/// What one case gets: its seed, a generator seeded from it, a fresh copy
/// of the template, and the damage already applied to it.
pub struct Case {
    /// The case's seed (printed on failure).
    pub seed: u64,
    /// A generator for the case's own choices (what to read, ...).
    pub rng: Rng,
    /// The damaged store's directory (a fresh copy of the template).
    pub dir: PathBuf,
    /// What was done to it (one or two damages).
    pub damage: Vec<Damage>,
}

impl Case {
    /// True if any damage of this case may have changed `range` of `file`.
    pub fn touches(&self, file: &Path, range: Range<u64>) -> bool {
        self.damage.iter().any(|d| d.touches(file, range.clone()))
    }

    /// A description for assertion messages.
    pub fn describe(&self) -> String {
        let d: Vec<String> = self.damage.iter().map(|d| d.to_string()).collect();
        format!("seed {}: {}", self.seed, d.join(", then "))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the damage test `test_name` (the `#[test]` function's name, which
/// must call this): `build` fills the template directory with a valid store
/// once, then `check` runs on `cases` damaged copies (`TZS_DAMAGE_CASES`
/// overrides). In the test process this spawns the child and asserts that
/// it passed; in the child it runs the cases.
pub fn run(
    test_name: &str,
    default_cases: u64,
    build: impl FnOnce(&Path),
    check: impl Fn(&mut Case),
) {
    if !is_child(test_name) {
        return supervise(test_name, default_cases);
    }
    let cases = env_u64("TZS_DAMAGE_CASES", default_cases);
    let first = env_u64("TZS_DAMAGE_SEED", 1);
    let case_secs = env_u64("TZS_DAMAGE_CASE_SECS", 30);
    let root = tempfile::tempdir().expect("tempdir");
    let template = root.path().join("template");
    std::fs::create_dir(&template).expect("template dir");
    build(&template);
    let files: Vec<PathBuf> = store_files(&template)
        .into_iter()
        .filter_map(|p| p.strip_prefix(&template).ok().map(Path::to_path_buf))
        .collect();
    let watchdog = Watchdog::start(Duration::from_secs(case_secs));
    let started = Instant::now();
    for seed in first..first + cases {
        let dir = root.path().join(format!("case-{seed}"));
        copy_tree(&template, &dir).expect("copy template");
        let targets: Vec<PathBuf> = files.iter().map(|p| dir.join(p)).collect();
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = if rng.below(10) == 0 { 2 } else { 1 };
        let mut damage = Vec::new();
        for _ in 0..n {
            let live: Vec<PathBuf> = targets.iter().filter(|p| p.is_file()).cloned().collect();
            if live.is_empty() {
                break;
            }
            let d = Damage::pick(&mut rng, &live);
            d.apply().expect("apply damage");
            damage.push(d);
        }
        let mut case = Case {
            seed,
            rng,
            dir: dir.clone(),
            damage,
        };
        eprintln!("case {}", case.describe());
        watchdog.arm(seed);
        check(&mut case);
        watchdog.disarm();
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!(
        "damage fuzz {test_name}: seeds {first}..{} ({cases} cases) held every invariant in {:.1} s",
        first + cases,
        started.elapsed().as_secs_f64()
    );
}

/// The test process's side: runs the child under the address-space limit
/// and reports its failure with the last case it started.
fn supervise(test_name: &str, default_cases: u64) {
    let exe = std::env::current_exe().expect("current test executable");
    let as_bytes = env_u64("TZS_DAMAGE_AS_MB", 1024) << 20;
    let mut cmd = Command::new(exe);
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .env("RUST_BACKTRACE", "0")
        // glibc reserves 64 MiB of address space per malloc arena: keep the
        // limit about what the store allocates, not about arenas.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: as_bytes,
                rlim_max: as_bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn damage child");
    let mut stderr = child.stderr.take().expect("child stderr");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let status = child.wait().expect("wait for damage child");
    let log = reader.join().unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        status.success(),
        "damage fuzz {test_name} ({} cases by default) failed ({status}); \
         replay with TZS_DAMAGE_SEED=<seed of the last case> TZS_DAMAGE_CASES=1. \
         Last lines:\n{}",
        default_cases,
        tail.join("\n")
    );
    if let Some(last) = tail.last() {
        println!("{last}");
    }
}

/// Aborts the child when one case runs longer than its limit (a hang on
/// damage is a failure like a panic).
struct Watchdog {
    /// Seed of the running case + 1, or 0 when idle.
    running: Arc<AtomicU64>,
    since: Arc<parking_lot::Mutex<Instant>>,
}

impl Watchdog {
    fn start(limit: Duration) -> Watchdog {
        let running = Arc::new(AtomicU64::new(0));
        let since = Arc::new(parking_lot::Mutex::new(Instant::now()));
        let (r, s) = (running.clone(), since.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let seed = r.load(Ordering::SeqCst);
                if seed != 0 && s.lock().elapsed() > limit {
                    eprintln!(
                        "case seed {} ran over {} s: a hang",
                        seed - 1,
                        limit.as_secs()
                    );
                    std::process::abort();
                }
            }
        });
        Watchdog { running, since }
    }

    fn arm(&self, seed: u64) {
        *self.since.lock() = Instant::now();
        self.running.store(seed + 1, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.running.store(0, Ordering::SeqCst);
    }
}
