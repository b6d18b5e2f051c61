//! Power cuts on the crash-model file system (`io::crash`): the singleton
//! store's writes and deletes, cut before every sync and under every cut
//! mode, reopen to the last acknowledged value or the one in flight.

mod power_common;

use std::path::Path;
use std::sync::Arc;

use tzstore::OpenOptions;
use tzstore::io::FileSystem;
use tzstore::io::crash::CrashFs;
use tzstore::singleton::Singleton;

/// What the workload does, in order: Some(value) writes, None deletes.
fn ops() -> Vec<Option<Vec<u8>>> {
    let mut v: Vec<Option<Vec<u8>>> = (0..4u8)
        .map(|i| Some(vec![b'a' + i; 100 + i as usize]))
        .collect();
    v.insert(2, None);
    v.push(Some(b"last".to_vec()));
    v
}

fn opts(fs: &CrashFs) -> OpenOptions {
    let mut o = OpenOptions::read_write();
    o.fs = Arc::new(fs.clone());
    o
}

/// Runs the workload; returns, per op, the syncs done when it returned.
fn workload(fs: &CrashFs) -> Vec<u64> {
    fs.create_dir_all(Path::new("/store")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let s = Singleton::open("/store/value", &opts(fs)).unwrap();
    ops()
        .iter()
        .map(|op| {
            match op {
                Some(v) => s.write(v).unwrap(),
                None => s.delete().unwrap(),
            }
            fs.syncs()
        })
        .collect()
}

#[test]
fn every_acknowledged_write_survives_a_power_cut_at_every_sync() {
    let ops = ops();
    // Sync 0 is the setup's own directory fsync.
    let states = power_common::at_every_sync(1, 1_000, 4, workload, |after, acked_at, k, mode| {
        // The last op acknowledged before the cut, and the one in flight.
        let done = acked_at.iter().take_while(|&&s| s <= k).count();
        let before: Option<&[u8]> = done.checked_sub(1).and_then(|i| ops[i].as_deref());
        let in_flight: Option<Option<&[u8]>> = ops.get(done).map(|o| o.as_deref());
        let s = Singleton::open("/store/value", &opts(after))
            .unwrap_or_else(|e| panic!("cut before sync {k}, {mode:?}: open: {e}"));
        let got = s.read();
        let got = got.as_deref();
        assert!(
            got == before || Some(got) == in_flight,
            "cut before sync {k} ({mode:?}): read {:?}, acknowledged {:?}, in flight {:?}",
            got.map(|g| g.len()),
            before.map(|b| b.len()),
            in_flight.map(|o| o.map(|b| b.len()))
        );
        let report = Singleton::check("/store/value", &opts(after), false).unwrap();
        assert!(report.is_ok(), "cut before sync {k} ({mode:?}): {report:?}");
    });
    assert!(states >= 100, "only {states} crash states");
}
