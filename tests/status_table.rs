//! The status table in `src/error.rs` is the one source of the statuses:
//! the C constants cbindgen writes into the header, `tzs_status_name`, the
//! error's code and name, and the reverse map must all agree with it. The
//! bindings' lists are checked against the header by
//! `scripts/check-status-lists.py` (run by the test command).

use std::collections::BTreeMap;
use std::ffi::CStr;

use tzstore::Error;
use tzstore::error::STATUSES;
use tzstore::ffi::common::tzs_status_name;

/// The statuses of the header: the run of `#define TZS_<NAME> <n>` that
/// starts at `TZS_OK 0` and counts up by one (the numbering is append-only).
fn header_statuses() -> Vec<(u32, String)> {
    let header = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/tzstore.h"));
    let defines: Vec<(String, u32)> = header
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("#define TZS_")?.split_whitespace();
            let name = w.next()?.to_string();
            let n = w.next()?.parse().ok()?;
            Some((name, n))
        })
        .collect();
    let start = defines
        .iter()
        .position(|(name, n)| name == "OK" && *n == 0)
        .expect("#define TZS_OK 0 in the header");
    defines[start..]
        .iter()
        .enumerate()
        .take_while(|(i, (_, n))| *n as usize == *i)
        .map(|(_, (name, n))| (*n, name.clone()))
        .collect()
}

#[test]
fn the_header_defines_exactly_the_table() {
    let table: Vec<(u32, String)> = STATUSES
        .iter()
        .map(|(n, name)| (*n, name.to_string()))
        .collect();
    let mut sorted = table.clone();
    sorted.sort();
    assert_eq!(table, sorted, "the table is in number order");
    assert_eq!(header_statuses(), table);
}

#[test]
fn status_names_come_from_the_table() {
    for (n, name) in STATUSES {
        // SAFETY: tzs_status_name returns a static NUL-terminated string.
        let c = unsafe { CStr::from_ptr(tzs_status_name(*n)) };
        assert_eq!(c.to_str().unwrap(), format!("TZS_{name}"));
    }
    let past = STATUSES.len() as u32;
    for n in [past, past + 1, u32::MAX] {
        // SAFETY: as above.
        let c = unsafe { CStr::from_ptr(tzs_status_name(n)) };
        assert_eq!(c.to_str().unwrap(), "TZS_UNKNOWN");
    }
}

#[test]
fn every_failure_status_round_trips_through_the_error() {
    let names: BTreeMap<u32, &str> = STATUSES.iter().copied().collect();
    assert!(
        Error::from_code(0, "x".into()).is_none(),
        "TZS_OK is no error"
    );
    assert!(Error::from_code(STATUSES.len() as u32, "x".into()).is_none());
    for &(n, name) in &STATUSES[1..] {
        let e = Error::from_code(n, format!("message {n}")).expect("a failure status");
        assert_eq!(e.code(), n);
        assert_eq!(e.kind_name(), names[&n]);
        assert_eq!(e.kind_name(), name);
        if name == "DONE" {
            assert_eq!(e.to_string(), "TZS_DONE: iteration finished");
        } else {
            assert_eq!(e.message(), format!("message {n}"));
            // The one error text of every front end.
            assert_eq!(e.to_string(), format!("TZS_{name}: message {n}"));
        }
    }
}
