//! Crash test: a child process commits batches in a loop and is killed with
//! SIGKILL at random moments (40 times); after each kill the store is
//! reopened (rolling forward a pending journal) and every batch must be
//! wholly applied or wholly absent.
//!
//! Batch `i` sets `seq = i`, sets `g/i/k0..k7 = i` and removes the whole
//! dictionary `g/(i-3)`. So with `s` the value of `seq`, exactly the groups
//! `s-2..=s` exist, each complete: any torn batch breaks this.

use std::process::{Command, Stdio};
use std::time::Duration;

use tzstore::kv::Kv;
use tzstore::{Error, OpenOptions};

const CHILD_ENV: &str = "TZS_KV_CRASH_CHILD";
const KEYS: u64 = 8;
const KILLS: usize = 40;

fn opts() -> OpenOptions {
    // The kill is a process crash: the page cache survives, so fsync is not
    // what is tested here; the journal and roll-forward are.
    OpenOptions::default().no_fsync()
}

fn seq(kv: &Kv) -> Option<u64> {
    match kv.get("seq") {
        Ok(v) => Some(String::from_utf8(v).unwrap().parse().unwrap()),
        Err(Error::NotFound(_)) => None,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn crash_child_role() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let kv = Kv::open(&dir, &opts()).unwrap();
    let mut i = seq(&kv).map_or(0, |s| s + 1);
    loop {
        let mut b = kv.batch_begin().unwrap();
        b.set("seq", i.to_string().as_bytes()).unwrap();
        for j in 0..KEYS {
            b.set(&format!("g/{i}/k{j}"), i.to_string().as_bytes())
                .unwrap();
        }
        if i >= 3 {
            b.remove(&format!("g/{}", i - 3)).unwrap();
        }
        b.commit().unwrap();
        i += 1;
    }
}

fn check(kv: &Kv) -> Option<u64> {
    let s = seq(kv);
    let groups: Vec<u64> = match kv.list("g") {
        Ok(e) => e.into_iter().map(|(n, _)| n.parse().unwrap()).collect(),
        Err(Error::NotFound(_)) => vec![],
        Err(e) => panic!("{e}"),
    };
    let mut want: Vec<u64> = match s {
        Some(s) => (s.saturating_sub(2)..=s).collect(),
        None => vec![],
    };
    want.sort_by_key(|g| g.to_string());
    assert_eq!(groups, want, "seq {s:?}");
    for g in groups {
        let entries = kv.list(&format!("g/{g}")).unwrap();
        assert_eq!(entries.len() as u64, KEYS, "group {g} is torn");
        for (name, _) in entries {
            assert_eq!(
                kv.get(&format!("g/{g}/{name}")).unwrap(),
                g.to_string().as_bytes()
            );
        }
    }
    s
}

#[test]
fn sigkill_during_batch_commits_leaves_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rolled_forward = 0;
    let mut last = None;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child_role", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of the kill (the child needs a few ms to start).
        std::thread::sleep(Duration::from_millis(15 + (round as u64 * 7919) % 40));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let journal = std::fs::read(dir.path().join(".tzs-journal")).unwrap_or_default();
        if journal.len() >= 4 && journal[..4] != [0u8; 4] {
            rolled_forward += 1;
        }
        let kv = Kv::open(dir.path(), &opts()).unwrap();
        let s = check(&kv);
        assert!(s >= last, "seq went back from {last:?} to {s:?}");
        last = s;
    }
    let s = last.expect("the child committed batches");
    eprintln!(
        "{KILLS} kills, {} batches committed, {rolled_forward} pending journals rolled forward",
        s + 1
    );
}
