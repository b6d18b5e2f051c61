//! `Kv::check`: what the store can verify without a handle, and repair.
//!
//! Values are plain files without checksums, so check verifies the store's
//! own files and the shape of the tree: `.tzs-lock`, `.tzs-journal` and
//! `.tzs-generation` are regular files (when present), the generation file
//! decodes, every journal record reads back whole (the rules of
//! `journal.rs`, so exactly what a read-write open would refuse), `.tzs-tmp`
//! is a directory, and every entry of the tree is a regular file (a value)
//! or a directory (a dictionary) no deeper than a key may reach.
//!
//! Repair holds the store lock (live handles of other processes wait for
//! it; it must not run while this process has a handle writing) and moves
//! whatever it drops or rewrites into the quarantine: a file that is not
//! regular, a damaged journal (rewritten with the whole records after its
//! last damaged stretch: see `Records::salvage` for why not those before),
//! a damaged generation file (rewritten to say the new journal's records
//! were applied; without it no record is known to be acknowledged), the
//! torn tail of the journal, and entries of the tree that are neither files
//! nor directories or lie too deep. It then checks again: what remains is
//! in the report's problems.

use std::path::Path;

use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::beneath::{self, Dir, FileAt};
use crate::io::quarantine::{QUARANTINE_DIR, Quarantine};
use crate::kv::generation::{self, GENERATION, State};
use crate::kv::journal::{JOURNAL, Records};
use crate::kv::key::{MAX_DEPTH, is_reserved};
use crate::kv::write::TMP_DIR;
use crate::kv::{Kv, LOCK, open_error};
use crate::options::OpenOptions;

/// What was found about one of the store's own files.
enum Own {
    Absent,
    Regular(FileAt),
    /// Something else in its place (the kind, for the report).
    Other(&'static str),
}

fn kind_name(k: beneath::Kind) -> &'static str {
    match k {
        beneath::Kind::File => "a regular file",
        beneath::Kind::Dir => "a directory",
        beneath::Kind::Other => "a FIFO, socket, device or link",
    }
}

/// Opens the store file `name` for reading if it is a regular file.
fn own_file(dir: &Dir, root: &Path, name: &str) -> Result<Own> {
    let st = match dir.stat_at(name) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Own::Absent),
        Err(e) => return Err(Error::io("stat", &root.join(name), e)),
    };
    if st.kind != beneath::Kind::File {
        return Ok(Own::Other(kind_name(st.kind)));
    }
    let file = dir
        .open_read(name)
        .map_err(|e| Error::io("open", &root.join(name), e))?;
    let st = file
        .stat()
        .map_err(|e| Error::io("stat", &root.join(name), e))?;
    if st.kind != beneath::Kind::File {
        return Ok(Own::Other(kind_name(st.kind)));
    }
    Ok(Own::Regular(file))
}

/// One pass over the store: problems into `report`, and what repair needs.
#[derive(Default)]
struct Findings {
    lock_bad: bool,
    tmp_bad: bool,
    journal_other: bool,
    /// The journal fails verification (damage, or shorter than recorded).
    journal_damaged: bool,
    /// Where the whole records end when a torn tail follows them.
    torn_from: Option<u64>,
    /// The verified end of the journal (0 when absent or damaged).
    journal_end: u64,
    /// `None` when absent, empty or damaged.
    generation: Option<State>,
    generation_bad: bool,
    /// Tree entries (paths below the root) to move aside.
    strays: Vec<String>,
}

impl Kv {
    /// Checks the store rooted at `root` without opening it (so it works
    /// on a store that refuses to open), changing nothing unless `repair`.
    /// See `check.rs` for what is verified and what repair does; after a
    /// repair the store opens and checks clean unless the report still
    /// lists problems. Errors: `NotFound`/`InvalidArgument` for the root as
    /// in [`Kv::open`], `Io` (including a failed move into the quarantine);
    /// damage is reported, not returned.
    pub fn check(root: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        let root = root.as_ref();
        if root.as_os_str().is_empty() {
            return Err(Error::invalid("kv root path is empty"));
        }
        let dir = opts
            .fs
            .open_root_dir(root)
            .map_err(|e| open_error(root, e))?;
        let mut report = CheckReport::default();
        if !repair {
            inspect(&dir, root, &mut report)?;
            return Ok(report);
        }
        // The lock file itself may be what is damaged: move it aside first.
        if let Own::Other(what) = own_file(&dir, root, LOCK)? {
            report.problem(format!(
                "{}: not a regular file ({what})",
                root.join(LOCK).display()
            ));
        }
        let fs = opts.fs.as_ref();
        let mut q = Quarantine::new(fs, root);
        if !report.problems.is_empty() {
            q.move_in(&root.join(LOCK))?;
            report
                .repaired
                .push(format!("{LOCK}: moved aside, a new lock file was created"));
        }
        let lock = dir
            .open_rw(LOCK)
            .map_err(|e| Error::io("open", &root.join(LOCK), e))?;
        lock.lock_exclusive()
            .map_err(|e| Error::io("lock", &root.join(LOCK), e))?;
        let found = inspect(&dir, root, &mut report)?;
        repair_findings(&dir, root, &found, &mut q, &mut report, fs.fsync_enabled())?;
        let (qdir, moved) = q.into_parts();
        report.quarantine_dir = qdir;
        report.quarantined = moved;
        // What remains, seen afresh.
        let mut after = CheckReport::default();
        inspect(&dir, root, &mut after)?;
        report.problems = after.problems;
        report.records_checked = after.records_checked;
        report.stopped_early = after.stopped_early;
        drop(lock);
        Ok(report)
    }
}

/// The checks; problems go to `report`, the rest is returned for repair.
fn inspect(dir: &Dir, root: &Path, report: &mut CheckReport) -> Result<Findings> {
    let mut f = Findings::default();
    let path = |name: &str| root.join(name);
    if let Own::Other(what) = own_file(dir, root, LOCK)? {
        f.lock_bad = true;
        report.problem(format!(
            "{}: not a regular file ({what})",
            path(LOCK).display()
        ));
    }
    match dir.stat_at(TMP_DIR) {
        Ok(st) if st.kind != beneath::Kind::Dir => {
            f.tmp_bad = true;
            report.problem(format!(
                "{}: not a directory ({})",
                path(TMP_DIR).display(),
                kind_name(st.kind)
            ));
        }
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(Error::io("stat", &path(TMP_DIR), e)),
    }
    match own_file(dir, root, GENERATION)? {
        Own::Absent => {}
        Own::Other(what) => {
            f.generation_bad = true;
            report.problem(format!(
                "{}: not a regular file ({what})",
                path(GENERATION).display()
            ));
        }
        Own::Regular(file) => match generation::read(&file, &path(GENERATION)) {
            Ok(s) => f.generation = s,
            Err(Error::Corrupted(m)) => {
                f.generation_bad = true;
                report.problem(m);
            }
            Err(e) => return Err(e),
        },
    }
    let applied = f.generation.map(|s| s.journal_end);
    match own_file(dir, root, JOURNAL)? {
        Own::Absent if applied.is_some_and(|a| a > 0) => {
            f.journal_damaged = true;
            report.problem(format!(
                "{}: missing, yet records were applied up to offset {}",
                path(JOURNAL).display(),
                applied.unwrap_or(0)
            ));
        }
        Own::Absent => {}
        Own::Other(what) => {
            f.journal_other = true;
            report.problem(format!(
                "{}: not a regular file ({what})",
                path(JOURNAL).display()
            ));
        }
        Own::Regular(file) => {
            let jpath = path(JOURNAL);
            let records = Records::new(&file, &jpath)?;
            match records.scan(0, applied, |_, _| Ok(())) {
                Ok(scan) => {
                    report.records_checked += scan.records;
                    f.journal_end = scan.end;
                    if scan.len != scan.end {
                        f.torn_from = Some(scan.end);
                    }
                }
                Err(Error::Corrupted(m)) => {
                    f.journal_damaged = true;
                    report.problem(m);
                }
                Err(e) => return Err(e),
            }
        }
    }
    walk_tree(dir, root, report, &mut f)?;
    Ok(f)
}

/// Walks the tree (iteratively, one descriptor per level): counts the
/// values and reports entries that are neither files nor directories, or
/// dictionaries deeper than a key may name.
fn walk_tree(dir: &Dir, root: &Path, report: &mut CheckReport, f: &mut Findings) -> Result<()> {
    let entries = |d: &Dir, rel: &str| -> Result<Vec<(Vec<u8>, beneath::Kind)>> {
        d.entries()
            .map_err(|e| Error::io("list", &root.join(rel), e))
    };
    let top = dir.reopen().map_err(|e| Error::io("open", root, e))?;
    let first = entries(&top, "")?.into_iter();
    let mut stack = vec![(top, first, String::new())];
    loop {
        let depth = stack.len();
        let Some((d, it, rel)) = stack.last_mut() else {
            break;
        };
        let Some((name, kind)) = it.next() else {
            stack.pop();
            continue;
        };
        let Ok(name) = String::from_utf8(name) else {
            continue; // no key names it; the store never sees it
        };
        if depth == 1 && (is_reserved(&name) || name == QUARANTINE_DIR) {
            continue;
        }
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        match kind {
            beneath::Kind::File => report.records_checked += 1,
            beneath::Kind::Dir if depth >= MAX_DEPTH => {
                report.problem(format!(
                    "{}: a dictionary deeper than keys may reach ({MAX_DEPTH} segments)",
                    root.join(&child).display()
                ));
                f.strays.push(child);
            }
            beneath::Kind::Dir => match d.open_dir(&name) {
                Ok(sub) => {
                    let e = entries(&sub, &child)?.into_iter();
                    stack.push((sub, e, child));
                }
                // Replaced since it was listed.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(Error::io("open", &root.join(&child), e)),
            },
            beneath::Kind::Other => {
                report.problem(format!(
                    "{}: neither a value nor a dictionary ({})",
                    root.join(&child).display(),
                    kind_name(kind)
                ));
                f.strays.push(child);
            }
        }
    }
    Ok(())
}

/// Acts on what [`inspect`] found (under the lock).
fn repair_findings(
    dir: &Dir,
    root: &Path,
    f: &Findings,
    q: &mut Quarantine<'_>,
    report: &mut CheckReport,
    fsync: bool,
) -> Result<()> {
    let path = |name: &str| root.join(name);
    if f.lock_bad {
        // Only when it was replaced between the two looks.
        report.problem(format!(
            "{}: replaced during the repair",
            path(LOCK).display()
        ));
    }
    if f.tmp_bad {
        q.move_in(&path(TMP_DIR))?;
        report.repaired.push(format!(
            "{TMP_DIR}: moved aside (the next read-write open creates it)"
        ));
    }
    let mut journal_end = f.journal_end;
    let mut rewrite_generation = f.generation_bad;
    if f.journal_other {
        q.move_in(&path(JOURNAL))?;
        journal_end = 0;
        rewrite_generation = true;
        report
            .repaired
            .push(format!("{JOURNAL}: moved aside, the journal is empty"));
    } else if f.journal_damaged {
        let applied = f.generation.map(|s| s.journal_end);
        journal_end = rewrite_journal(dir, root, applied, q, report, fsync)?;
        rewrite_generation = true;
    } else if let Some(at) = f.torn_from {
        q.cut_tail(&path(JOURNAL), at)?;
        report.repaired.push(format!(
            "{JOURNAL}: the torn tail from offset {at} (a commit that never returned) moved aside"
        ));
    }
    if rewrite_generation {
        if !matches!(own_file(dir, root, GENERATION)?, Own::Absent) {
            q.move_in(&path(GENERATION))?;
        }
        let s = State {
            generation: f
                .generation
                .map(|s| s.generation)
                .unwrap_or(0)
                .wrapping_add(1),
            journal_end,
        };
        let file = dir
            .open_rw(GENERATION)
            .map_err(|e| Error::io("create", &path(GENERATION), e))?;
        file.write_all_at(&generation::encode(s), 0)
            .map_err(|e| Error::io("write", &path(GENERATION), e))?;
        if fsync {
            file.sync_data()
                .map_err(|e| Error::io("fsync", &path(GENERATION), e))?;
            dir.sync().map_err(|e| Error::io("fsync", root, e))?;
        }
        report.repaired.push(format!(
            "{GENERATION}: rewritten (journal applied up to offset {journal_end})"
        ));
    }
    for rel in &f.strays {
        q.move_in(&root.join(rel))?;
        report
            .repaired
            .push(format!("{rel}: moved aside (not a value or a dictionary)"));
    }
    Ok(())
}

/// Moves the damaged journal aside and writes a new one holding the whole
/// records after its last damaged stretch (see [`Records::salvage`]).
/// Returns the new journal's length.
fn rewrite_journal(
    dir: &Dir,
    root: &Path,
    applied: Option<u64>,
    q: &mut Quarantine<'_>,
    report: &mut CheckReport,
    fsync: bool,
) -> Result<u64> {
    let jpath = root.join(JOURNAL);
    let old = match own_file(dir, root, JOURNAL)? {
        Own::Regular(file) => Some(file),
        _ => None,
    };
    let kept = match &old {
        Some(file) => Records::new(file, &jpath)?.salvage(applied)?,
        None => Vec::new(),
    };
    if old.is_some() {
        // The open descriptor still reads the file once it is moved.
        q.move_in(&jpath)?;
    }
    let new = dir
        .open_rw(JOURNAL)
        .map_err(|e| Error::io("create", &jpath, e))?;
    new.set_len(0)
        .map_err(|e| Error::io("truncate", &jpath, e))?;
    let mut at = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    if let Some(file) = &old {
        for &(from, len) in &kept {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..n], from + done)
                    .map_err(|e| Error::io("read", &jpath, e))?;
                new.write_all_at(&buf[..n], at)
                    .map_err(|e| Error::io("write", &jpath, e))?;
                done += n as u64;
                at += n as u64;
            }
        }
    }
    if fsync {
        new.sync_data().map_err(|e| Error::io("fsync", &jpath, e))?;
        dir.sync().map_err(|e| Error::io("fsync", root, e))?;
    }
    report.repaired.push(format!(
        "{JOURNAL}: rewritten with the {} whole record(s) after the damage ({at} bytes); \
         the damaged file, with the records before it (already in the tree), moved aside",
        kept.len()
    ));
    Ok(at)
}
