//! Power cuts on the crash-model file system (`io::crash`): the kv store's
//! set, set_partial, remove, rename, allocate and batch commits, cut before
//! every sync of a short run and at random syncs of a longer one, under
//! every cut mode. Each of these calls is durable on return and
//! all-or-nothing (a value is staged and renamed in, a dictionary moves or
//! leaves by one rename, a batch commits at its journal's fdatasync and is
//! rolled forward after it), so after a cut the store must open (or, after
//! a cut that persisted data out of order, be repaired by `Kv::check`), and
//! hold exactly the values of the acknowledged calls, or those plus the one
//! in flight, whole: never a value lost, torn, or a batch or rename half
//! applied. `check` must then be clean and the store writable.

mod power_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::io::FileSystem;
use tzstore::io::crash::{CrashFs, CutMode};
use tzstore::kv::{Kind, Kv};

/// One call of the workload.
#[derive(Debug, Clone)]
enum Op {
    Set(String, Vec<u8>),
    SetPartial(String, u64, Vec<u8>),
    Remove(String),
    Rename(String, String),
    Allocate(String, u64),
    /// A batch: `Some` sets, `None` removes.
    Batch(Vec<(String, Option<Vec<u8>>)>),
}

/// Every value of the store by key (dictionaries are implied by them).
type Values = BTreeMap<String, Vec<u8>>;

fn under(key: &str, k: &str) -> bool {
    k == key || k.starts_with(&format!("{key}/"))
}

fn is_dict(m: &Values, key: &str) -> bool {
    m.keys().any(|k| k.starts_with(&format!("{key}/")))
}

/// What `op` does to the values (Mirage_kv's rules, for the cases used).
fn apply(m: &mut Values, op: &Op) {
    match op {
        Op::Set(k, v) => {
            m.insert(k.clone(), v.clone());
        }
        Op::SetPartial(k, off, data) => {
            let mut v = m.get(k).cloned().unwrap_or_default();
            let at = (*off as usize).min(v.len());
            let end = (at + data.len()).min(v.len());
            v.splice(at..end, data.iter().copied());
            m.insert(k.clone(), v);
        }
        Op::Remove(k) => m.retain(|x, _| !under(k, x)),
        Op::Rename(from, to) => {
            let dest = if is_dict(m, to) {
                format!("{to}/{}", from.rsplit('/').next().unwrap_or(from))
            } else {
                to.clone()
            };
            let moved: Vec<(String, Vec<u8>)> = m
                .iter()
                .filter(|(x, _)| under(from, x))
                .map(|(x, v)| (format!("{dest}{}", &x[from.len()..]), v.clone()))
                .collect();
            m.retain(|x, _| !under(from, x));
            m.extend(moved);
        }
        Op::Allocate(k, n) => {
            m.insert(k.clone(), vec![0; *n as usize]);
        }
        Op::Batch(ops) => {
            for (k, v) in ops {
                match v {
                    Some(v) => apply(m, &Op::Set(k.clone(), v.clone())),
                    None => apply(m, &Op::Remove(k.clone())),
                }
            }
        }
    }
}

/// `op` with its values' lengths instead of their bytes, for messages.
fn brief(op: &Op) -> String {
    match op {
        Op::Set(k, v) => format!("set {k} ({} bytes)", v.len()),
        Op::SetPartial(k, off, d) => format!("set_partial {k} at {off} ({} bytes)", d.len()),
        Op::Remove(k) => format!("remove {k}"),
        Op::Rename(a, b) => format!("rename {a} to {b}"),
        Op::Allocate(k, n) => format!("allocate {k} ({n} bytes)"),
        Op::Batch(ops) => format!(
            "batch [{}]",
            ops.iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("set {k} ({} bytes)", v.len()),
                    None => format!("remove {k}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn run(kv: &Kv, op: &Op) -> tzstore::Result<()> {
    match op {
        Op::Set(k, v) => kv.set(k, v),
        Op::SetPartial(k, off, data) => kv.set_partial(k, *off, data),
        Op::Remove(k) => kv.remove(k),
        Op::Rename(from, to) => kv.rename(from, to),
        Op::Allocate(k, n) => kv.allocate(k, *n),
        Op::Batch(ops) => kv.batch(0, |b| {
            for (k, v) in ops {
                match v {
                    Some(v) => b.set(k, v)?,
                    None => b.remove(k)?,
                }
            }
            Ok(())
        }),
    }
}

fn s(k: &str) -> String {
    k.to_string()
}

fn v(tag: &str, n: usize) -> Vec<u8> {
    tag.bytes().cycle().take(n).collect()
}

/// The short run: every kind of call, over values, new and existing
/// parents, dictionaries, and batches appended one after another.
fn short_ops() -> Vec<Op> {
    vec![
        Op::Set(s("a"), v("alpha", 300)),
        Op::Set(s("d/x"), v("x1", 50)),
        Op::Set(s("d/y"), v("y1", 5000)),
        Op::Batch(vec![
            (s("b"), Some(v("beta", 70))),
            (s("d/z"), Some(v("z1", 9000))),
            (s("a"), None),
        ]),
        Op::Batch(vec![
            (s("e/f/g"), Some(v("deep", 40))),
            (s("d/x"), Some(v("x2", 60))),
        ]),
        Op::SetPartial(s("d/y"), 4000, v("PART", 2000)),
        Op::Allocate(s("big"), 20_000),
        Op::Rename(s("d/x"), s("d/x2")),
        Op::Rename(s("d"), s("moved")),
        Op::Rename(s("b"), s("moved")),
        Op::Rename(s("e/f/g"), s("n/e/w")),
        Op::Remove(s("moved/y")),
        Op::Batch(vec![(s("e"), None), (s("c"), Some(v("gamma", 10)))]),
        Op::Remove(s("moved")),
        Op::SetPartial(s("c"), 100, v("tail", 8)),
        Op::Allocate(s("z/zero"), 4096),
        Op::Batch(vec![(s("h"), Some(v("h1", 30)))]),
        Op::Batch(vec![(s("h"), Some(v("h2", 31))), (s("big"), None)]),
        Op::Rename(s("h"), s("a")),
        Op::Set(s("a"), v("final", 77)),
    ]
}

/// A longer run drawn from `seed`: the same calls over a few keys.
fn long_ops(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = seed | 1;
    let mut next = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let keys = ["p", "q/r", "q/s", "t/u/v", "w"];
    let mut m = Values::new();
    let mut out = Vec::new();
    for i in 0..n {
        let k = s(keys[next(keys.len() as u64) as usize]);
        let val = v(&format!("{i}-"), 1 + next(3000) as usize);
        let op = match next(7) {
            0 | 1 => Op::Set(k, val),
            2 => Op::SetPartial(k, next(4000), val),
            3 if m.contains_key(&k) => Op::Remove(k),
            4 if m.contains_key(&k) => {
                let to = format!("{k}-{i}");
                Op::Rename(k, to)
            }
            5 if !m.contains_key(&k) && !is_dict(&m, &k) => Op::Allocate(k, next(10_000)),
            _ => {
                let mut ops = Vec::new();
                for j in 0..1 + next(4) {
                    let bk = s(keys[next(keys.len() as u64) as usize]);
                    if next(4) == 0 {
                        ops.push((bk, None));
                    } else {
                        ops.push((bk, Some(v(&format!("b{i}.{j}-"), 1 + next(2000) as usize))));
                    }
                }
                Op::Batch(ops)
            }
        };
        // Keep the run valid: no value where a dictionary must go, or
        // the reverse (the calls would fail, which is not under test).
        let mut after = m.clone();
        apply(&mut after, &op);
        let valid = after.keys().all(|k| !is_dict(&after, k));
        if valid {
            m = after;
            out.push(op);
        }
    }
    out
}

fn opts(fs: &CrashFs) -> OpenOptions {
    OpenOptions::read_write().with_fs(Arc::new(fs.clone()))
}

const ROOT: &str = "/kv";

/// Runs `ops`; returns, per op, the syncs done when it returned.
fn workload(fs: &CrashFs, ops: &[Op]) -> Vec<u64> {
    fs.create_dir_all(Path::new(ROOT)).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let kv = Kv::open(ROOT, &opts(fs)).unwrap();
    ops.iter()
        .map(|op| {
            run(&kv, op).unwrap_or_else(|e| panic!("{}: {e}", brief(op)));
            fs.syncs()
        })
        .collect()
}

/// Every value of the store, read through it.
fn contents(kv: &Kv) -> Values {
    let mut out = Values::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        for (name, kind) in kv.list(&dir).unwrap() {
            let key = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            match kind {
                Kind::Value => {
                    out.insert(key.clone(), kv.get(&key).unwrap());
                }
                Kind::Dictionary => stack.push(key),
            }
        }
    }
    out
}

fn describe(m: &Values) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}:{}", v.len()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// After a cut before sync `k` of a run of `ops` whose calls returned at
/// `acked_at`: the store opens (or is repaired), holds the acknowledged
/// state or that plus the call in flight, checks clean and takes a write.
fn verify(after: &CrashFs, ops: &[Op], acked_at: &[u64], k: u64, mode: CutMode) {
    let done = acked_at.iter().take_while(|&&s| s <= k).count();
    let mut acked = Values::new();
    for op in &ops[..done] {
        apply(&mut acked, op);
    }
    let with_in_flight = ops.get(done).map(|op| {
        let mut m = acked.clone();
        apply(&mut m, op);
        m
    });
    let what = format!("cut before sync {k} ({mode:?}), {done} calls acknowledged");
    let before_open = after.tree();
    let kv = power_common::open_or_repair(
        mode,
        &what,
        || Kv::open(ROOT, &opts(after)),
        |repair| Kv::check(ROOT, &opts(after), repair),
    );
    let got = contents(&kv);
    assert!(
        got == acked || Some(&got) == with_in_flight.as_ref(),
        "{what}: the store holds\n  {}\nacknowledged:\n  {}\nwith the call in flight ({}):\n  {}\nfiles before the open:\n{before_open}",
        describe(&got),
        describe(&acked),
        ops.get(done).map(brief).unwrap_or_default(),
        with_in_flight.as_ref().map(describe).unwrap_or_default(),
    );
    drop(kv);
    let report = Kv::check(ROOT, &opts(after), false).unwrap();
    assert!(report.is_ok(), "{what}: check: {report:?}");
    let kv = Kv::open(ROOT, &opts(after)).unwrap();
    kv.set("after/the/cut", b"written").unwrap();
    assert_eq!(kv.get("after/the/cut").unwrap(), b"written", "{what}");
}

#[test]
fn kv_calls_survive_a_power_cut_at_every_sync() {
    let ops = short_ops();
    // Sync 0 is the setup's fsync of the root's parent.
    let states = power_common::at_every_sync(
        1,
        1_000,
        2,
        |fs| workload(fs, &ops),
        |after, acked_at, k, mode| verify(after, &ops, acked_at, k, mode),
    );
    assert!(states >= 300, "only {states} crash states");
}

#[test]
fn kv_calls_survive_a_power_cut_at_random_syncs_of_a_longer_run() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // The long run (RELIABILITY.md) raises both.
    let cuts = env("TZS_POWER_MAX_CUTS", 30).max(1);
    let seeds = env("TZS_POWER_SEEDS", 1).max(1);
    let mut states = 0;
    for seed in 1..=seeds {
        let ops = long_ops(seed * 0x9E37_79B9, 120);
        let total = {
            let fs = CrashFs::new().unwrap();
            workload(&fs, &ops);
            fs.syncs()
        };
        let mut rng = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        for _ in 0..cuts.min(total) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let k = 1 + rng % (total - 1);
            let fs = CrashFs::new().unwrap();
            fs.cut_before_sync(k);
            let acked_at = workload(&fs, &ops);
            let snap = fs.taken().unwrap();
            for mode in CutMode::ALL {
                let after = CrashFs::power_cut(&snap, mode, rng ^ k).unwrap();
                verify(&after, &ops, &acked_at, k, mode);
                states += 1;
            }
        }
    }
    eprintln!("{states} crash states verified at random syncs of longer runs");
    assert!(states >= 100, "only {states} crash states");
}

/// A batch whose journal record outgrows the checkpoint threshold (8 MiB)
/// checkpoints at its commit (`syncfs`, the applied end synced, the journal
/// emptied); a cut at each of those syncs keeps it and what follows.
#[test]
fn a_batch_that_checkpoints_at_commit_survives_a_power_cut_at_every_sync() {
    let ops = vec![
        Op::Set(s("before"), v("b", 100)),
        Op::Batch(vec![
            (s("huge"), Some(v("H", (8 << 20) + 1))),
            (s("d/small"), Some(v("s", 10))),
        ]),
        Op::Batch(vec![(s("later"), Some(v("a", 10)))]),
        Op::Set(s("d/small"), v("t", 20)),
    ];
    let states = power_common::at_every_sync(
        1,
        1_000,
        1,
        |fs| workload(fs, &ops),
        |after, acked_at, k, mode| verify(after, &ops, acked_at, k, mode),
    );
    assert!(states >= 50, "only {states} crash states");
}
