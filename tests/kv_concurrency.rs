//! Concurrent batches from threads (shared and separate handles) and from
//! processes: no lost update, and conflicts are reported.

use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use tzstore::kv::Kv;
use tzstore::{Error, OpenOptions};

const CHILD_ENV: &str = "TZS_KV_COUNTER_CHILD";

fn opts() -> OpenOptions {
    OpenOptions::default().no_fsync()
}

fn read_counter(kv: &Kv, key: &str) -> u64 {
    match kv.get(key) {
        Ok(v) => String::from_utf8(v).unwrap().parse().unwrap(),
        Err(Error::NotFound(_)) => 0,
        Err(e) => panic!("{e}"),
    }
}

/// One increment of `key` in a batch retried up to `retries` times.
fn increment(kv: &Kv, key: &str, retries: u32) -> Result<(), Error> {
    kv.batch(retries, |b| {
        let n: u64 = match b.get(key) {
            Ok(v) => String::from_utf8(v).unwrap().parse().unwrap(),
            Err(Error::NotFound(_)) => 0,
            Err(e) => return Err(e),
        };
        b.set(key, (n + 1).to_string().as_bytes())
    })
}

#[test]
fn threads_incrementing_counters_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Kv::open(dir.path(), &opts()).unwrap();
    let threads = 4;
    let per_thread = 40;
    let counters = ["c/0", "c/1", "c/2"];
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            // Half the threads share a handle, half have their own.
            let kv = if t % 2 == 0 {
                shared.clone()
            } else {
                Kv::open(dir.path(), &opts()).unwrap()
            };
            std::thread::spawn(move || {
                let mut ok = [0u64; 3];
                for i in 0..per_thread {
                    let c = (i + t) % counters.len();
                    match increment(&kv, counters[c], 1000) {
                        Ok(()) => ok[c] += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let mut total = [0u64; 3];
    for h in handles {
        for (t, n) in total.iter_mut().zip(h.join().unwrap()) {
            *t += n;
        }
    }
    for (c, n) in counters.iter().zip(total) {
        assert_eq!(read_counter(&shared, c), n, "{c}");
    }
    assert_eq!(total.iter().sum::<u64>(), (threads * per_thread) as u64);
}

#[test]
fn without_retries_racing_batches_conflict_and_the_count_matches_commits() {
    let dir = tempfile::tempdir().unwrap();
    let threads = 4;
    let rounds = 10;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let kv = Kv::open(dir.path(), &opts()).unwrap();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let (mut ok, mut conflicts) = (0u64, 0u64);
                for _ in 0..rounds {
                    let mut b = kv.batch_begin().unwrap();
                    let n: u64 = match b.get("n") {
                        Ok(v) => String::from_utf8(v).unwrap().parse().unwrap(),
                        Err(Error::NotFound(_)) => 0,
                        Err(e) => panic!("{e}"),
                    };
                    b.set("n", (n + 1).to_string().as_bytes()).unwrap();
                    // Everyone has read the same value before anyone commits.
                    barrier.wait();
                    match b.commit() {
                        Ok(()) => ok += 1,
                        Err(Error::Conflict(_)) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                    barrier.wait();
                }
                (ok, conflicts)
            })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for h in handles {
        let (o, c) = h.join().unwrap();
        ok += o;
        conflicts += c;
    }
    let kv = Kv::open(dir.path(), &opts()).unwrap();
    assert_eq!(read_counter(&kv, "n"), ok);
    // Exactly one of the racing batches wins each round.
    assert_eq!(ok, rounds as u64);
    assert_eq!(conflicts, ((threads - 1) * rounds) as u64);
}

/// The body of a child process of the test below.
#[test]
fn counter_child_role() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let kv = Kv::open(&dir, &opts()).unwrap();
    for _ in 0..30 {
        increment(&kv, "p", 10_000).unwrap();
    }
}

#[test]
fn processes_incrementing_a_counter_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "counter_child_role", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let kv = Kv::open(dir.path(), &opts()).unwrap();
    for _ in 0..30 {
        increment(&kv, "p", 10_000).unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(read_counter(&kv, "p"), 4 * 30);
}
