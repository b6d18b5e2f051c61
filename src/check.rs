//! What a store's `check` found and, with repair, what it changed. One
//! report type for every store, so the CLI and the C layer print them alike.
//!
//! The rule every store's check follows: without repair it changes nothing;
//! with repair it keeps every intact record and moves whatever it drops into
//! the store's quarantine folder (see [`crate::io::quarantine`]) instead of
//! deleting it, and lists both here.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// What `check` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records (blocks, entries, values, keys) read back and verified.
    pub records_checked: u64,
    /// Damage that remains, each naming the file and the offset.
    pub problems: Vec<String>,
    /// What repair kept or rewrote (e.g. "index/log: 96 of 97 entries kept").
    pub repaired: Vec<String>,
    /// What repair moved into quarantine, as paths relative to the store.
    pub quarantined: Vec<String>,
    /// The quarantine folder of this repair, if it moved anything.
    pub quarantine_dir: Option<PathBuf>,
    /// True when the check stopped before reading everything (the problems
    /// say where); `records_checked` is then a lower bound.
    pub stopped_early: bool,
}

impl CheckReport {
    /// True when no problem remains.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok` when clean, else `Corrupted` listing the problems.
    pub fn into_result(self) -> Result<CheckReport> {
        if self.is_ok() {
            Ok(self)
        } else {
            Err(Error::Corrupted(format!(
                "check found {} problem(s): {}",
                self.problems.len(),
                self.problems.join("; ")
            )))
        }
    }

    /// Adds a problem.
    pub fn problem(&mut self, what: impl Into<String>) {
        self.problems.push(what.into());
    }

    /// The report as text, one item a line: `checked N records`, then
    /// `problem: ...`, `repaired: ...`, `quarantined: ...` lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "checked {} records{}",
            self.records_checked,
            if self.stopped_early {
                " (stopped early: see the problems)"
            } else {
                ""
            }
        );
        for p in &self.problems {
            let _ = writeln!(out, "problem: {p}");
        }
        for r in &self.repaired {
            let _ = writeln!(out, "repaired: {r}");
        }
        if let Some(dir) = &self.quarantine_dir {
            let _ = writeln!(out, "quarantine folder: {}", dir.display());
        }
        for q in &self.quarantined {
            let _ = writeln!(out, "quarantined: {q}");
        }
        out
    }
}
