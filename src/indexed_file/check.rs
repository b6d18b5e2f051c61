//! [`IndexedFile::check`]: verifies a store on disk without an open handle
//! and, with repair, rebuilds it from its intact records.
//!
//! Each record carries its key and header, so the values file alone says
//! what the store holds; the index is checked against it. A repair writes a
//! new generation holding the newest intact record of every key (never an
//! older one when the index proves a newer one was acknowledged and is
//! damaged), switches `current` to it, and moves the damaged generation
//! whole into the quarantine: nothing is deleted.

use std::collections::HashMap;

use super::*;
use crate::check::CheckReport;
use crate::io::quarantine::Quarantine;

/// Problems of one kind listed one by one before a summary line.
const LISTED: usize = 20;

/// The index's entries: key -> (offset, header).
type Entries = HashMap<Vec<u8>, (u64, Vec<u8>)>;

/// An intact record found by the scan.
struct Found {
    offset: u64,
    /// Offset just past the record.
    end: u64,
    key: Vec<u8>,
    header: Vec<u8>,
}

/// What [`inspect`] learnt about a store.
struct Inspection {
    report: CheckReport,
    /// The generation to salvage from and the store's sizes, when known.
    source: Option<(u64, Layout)>,
    /// `current` is missing or damaged.
    current_bad: bool,
    /// Intact records of the source generation, by offset.
    records: Vec<Found>,
    /// The index entries (key -> offset, header), when the index reads.
    index: Option<Entries>,
    /// Start of a torn tail of the values file (not damage).
    torn: Option<u64>,
}

/// Adds problems, listing the first [`LISTED`] of each kind.
struct Problems<'a> {
    report: &'a mut CheckReport,
    kind_count: usize,
}

impl Problems<'_> {
    fn add(&mut self, what: String) {
        self.kind_count += 1;
        if self.kind_count <= LISTED {
            self.report.problem(what);
        }
    }

    fn finish(self, kind: &str) {
        if self.kind_count > LISTED {
            self.report
                .problem(format!("... and {} more {kind}", self.kind_count - LISTED));
        }
    }
}

impl IndexedFile {
    /// Checks the indexed file in `dir` without opening a handle (so it
    /// works on a store that refuses to open): the generation file, the
    /// values file record by record (CRC, key, header), and every index
    /// entry against the record it points to. Changes nothing unless
    /// `repair`.
    ///
    /// With `repair` (takes the store's lock, so no read-write handle may
    /// be open): a torn tail is moved into the quarantine; on damage the
    /// store is rebuilt into a new generation from the newest intact record
    /// of each key (a key whose newest, acknowledged record is damaged is
    /// dropped rather than rolled back to an older value), and the damaged
    /// generation (and a damaged generation file) is moved into
    /// `DIR/.tzs-quarantine/<time>/`. The report lists what was kept and
    /// moved; afterwards the store opens and checks clean.
    ///
    /// Errors: `NotFound` (no directory), `Locked` (repair while a
    /// read-write handle is open), `Io`. Damage is reported in the
    /// [`CheckReport`], not as an error.
    pub fn check(dir: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        let dir = dir.as_ref();
        let fs = opts.fs.as_ref();
        if !fs.is_dir(dir)? {
            return Err(Error::NotFound(format!(
                "indexed file {} does not exist",
                dir.display()
            )));
        }
        let _lock = if repair {
            Some(fs.lock(&dir.join("lock"))?)
        } else {
            None
        };
        let mut found = inspect(fs, dir, opts)?;
        if repair && found.report.is_ok() {
            refuses_read_write(fs, dir, opts, &mut found)?;
        }
        if !repair || (found.report.is_ok() && found.torn.is_none()) {
            return Ok(found.report);
        }
        let mut report = salvage(fs, dir, opts, found)?;
        report.problems = inspect(fs, dir, opts)?.report.problems;
        Ok(report)
    }
}

/// Under the repair's lock: opens the index read-write, as the store's open
/// will, and reports the damage that only a read-write open refuses.
fn refuses_read_write(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &OpenOptions,
    found: &mut Inspection,
) -> Result<()> {
    let Some((n, layout)) = found.source else {
        return Ok(());
    };
    let idir = gen_dir(dir, n).join(INDEX);
    if !fs.is_dir(&idir)? {
        return Ok(());
    }
    let cfg = IndexConfig {
        key_size: layout.key_size,
        value_size: OFFSET + layout.header_size,
        removable: false,
        log_size: 0,
        open: OpenOptions {
            read_only: false,
            ..opts.clone()
        },
    };
    match Index::open(&idir, cfg) {
        Ok(_) => Ok(()),
        Err(Error::Corrupted(m)) => {
            found.report.problem(m);
            found.torn = None;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The highest generation whose values header names the store's sizes.
fn readable_gen(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(u64, Layout)>> {
    for g in gen_dirs(fs, dir)?.into_iter().rev() {
        let Ok(f) = fs.open(&gen_dir(dir, g).join(VALUES), OpenMode::Read) else {
            continue;
        };
        let n = f.len()?.min(VALUES_HEADER) as usize;
        let mut b = [0u8; VALUES_HEADER as usize];
        f.read_exact_at(&mut b[..n], 0)?;
        if let Ok(l) = format::decode_values_header(&b[..n]) {
            return Ok(Some((g, l)));
        }
    }
    Ok(None)
}

fn inspect(fs: &dyn FileSystem, dir: &Path, opts: &OpenOptions) -> Result<Inspection> {
    let mut out = Inspection {
        report: CheckReport::default(),
        source: None,
        current_bad: false,
        records: Vec::new(),
        index: None,
        torn: None,
    };
    let current = dir.join(CURRENT);
    match read_current(fs, &current) {
        Ok(Some(s)) => out.source = Some(s),
        Ok(None) => {
            let mut holding = Vec::new();
            for g in gen_dirs(fs, dir)? {
                if !gen_is_empty(fs, dir, g)? {
                    holding.push(g);
                }
            }
            if holding.is_empty() {
                // Never created, or a creation that crashed: nothing stored.
                return Ok(out);
            }
            out.report.problem(format!(
                "{}: missing, but generations {holding:?} hold records",
                current.display()
            ));
            out.current_bad = true;
            out.source = readable_gen(fs, dir)?;
        }
        Err(Error::Corrupted(m)) => {
            out.report.problem(m);
            out.current_bad = true;
            out.source = readable_gen(fs, dir)?;
        }
        Err(e) => return Err(e),
    }
    let Some((n, layout)) = out.source else {
        out.report.problem(format!(
            "{}: no generation with a readable values header",
            dir.display()
        ));
        return Ok(out);
    };
    let gdir = gen_dir(dir, n);
    scan_values(fs, &gdir.join(VALUES), &layout, &mut out)?;
    check_index(&gdir.join(INDEX), &layout, opts, &mut out);
    Ok(out)
}

/// Reads every record of the values file into `out.records`, reporting
/// damaged byte ranges; a trailing damaged range becomes `out.torn` (the
/// index decides later whether it is torn or damaged).
fn scan_values(
    fs: &dyn FileSystem,
    path: &Path,
    layout: &Layout,
    out: &mut Inspection,
) -> Result<()> {
    let values = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => {
            out.report.problem(format!("{}: missing", path.display()));
            return Ok(());
        }
        Err(Error::Corrupted(m)) => {
            out.report.problem(m);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = format::check_values_header(values.as_ref(), layout) {
        match e {
            Error::Corrupted(m) => out.report.problem(m),
            e => return Err(e),
        }
    }
    let len = values.len()?;
    let mut r = Reader::new(values.as_ref(), len, *layout);
    let mut problems = Problems {
        report: &mut out.report,
        kind_count: 0,
    };
    let mut pos = VALUES_HEADER;
    while pos < len {
        let why = match r.record_at(pos)? {
            Decoded::Record(rec, total) => {
                let header = rec.header_of(layout).map(<[u8]>::to_vec);
                match header {
                    Some(header) => out.records.push(Found {
                        offset: pos,
                        end: pos + total as u64,
                        key: rec.key.to_vec(),
                        header,
                    }),
                    None => problems.add(format!(
                        "{}: record at offset {pos} is shorter than its header",
                        path.display()
                    )),
                }
                pos += total as u64;
                continue;
            }
            Decoded::Incomplete(_) => "the file ends inside it".to_string(),
            Decoded::Bad(why) => why,
        };
        match r.next_record(pos + 1)? {
            Some(q) => {
                problems.add(format!(
                    "{}: bytes {pos}..{q} are damaged ({why}); intact records follow",
                    path.display()
                ));
                pos = q;
            }
            None => {
                out.torn = Some(pos);
                break;
            }
        }
    }
    problems.finish("damaged ranges");
    out.report.records_checked = out.records.len() as u64;
    Ok(())
}

/// Checks every index entry against the record it points to, and decides
/// whether a damaged tail is torn (no entry points into it) or damage.
fn check_index(idir: &Path, layout: &Layout, opts: &OpenOptions, out: &mut Inspection) {
    let mut ro = opts.clone();
    ro.read_only = true;
    let cfg = IndexConfig {
        key_size: layout.key_size,
        value_size: OFFSET + layout.header_size,
        removable: false,
        log_size: 0,
        open: ro,
    };
    let entries = Index::open(idir, cfg).and_then(|index| {
        let mut map = HashMap::new();
        for e in index.iter()? {
            let (k, v) = e?;
            map.insert(k, (entry_offset(&v), v[OFFSET..].to_vec()));
        }
        Ok(map)
    });
    let map = match entries {
        Ok(m) => m,
        Err(e) => {
            out.report.problem(format!(
                "{}: {e} (the values can rebuild it)",
                idir.display()
            ));
            out.torn = None;
            return;
        }
    };
    let values = idir.with_file_name(VALUES);
    let mut problems = Problems {
        report: &mut out.report,
        kind_count: 0,
    };
    for (k, (o, h)) in &map {
        let at = out.records.binary_search_by_key(o, |r| r.offset);
        let ok = at.is_ok_and(|i| out.records[i].key == *k && out.records[i].header == *h);
        if !ok {
            problems.add(format!(
                "{}: the index entry of key {} points to offset {o}, where no intact record of that key is",
                values.display(),
                hex(k)
            ));
        }
        if out.torn.is_some_and(|t| *o >= t) {
            // The damaged tail holds an acknowledged record: not torn.
            out.torn = None;
        }
    }
    problems.finish("index entries without their record");
    out.index = Some(map);
}

/// Repairs what [`inspect`] found, under the store's lock.
fn salvage(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &OpenOptions,
    found: Inspection,
) -> Result<CheckReport> {
    let mut q = Quarantine::new(fs, dir);
    let mut report = found.report;
    let current = dir.join(CURRENT);
    match found.source {
        None => {
            if found.current_bad && (fs.exists(&current)? || fs.is_dir(&current)?) {
                q.move_in(&current)?;
            }
            for g in gen_dirs(fs, dir)? {
                q.move_in(&gen_dir(dir, g))?;
            }
            report.repaired.push(
                "no generation could be read: every generation was moved out; the store is empty"
                    .into(),
            );
        }
        Some((n, _)) if report.is_ok() => {
            if let Some(t) = found.torn {
                q.cut_tail(&gen_dir(dir, n).join(VALUES), t)?;
                report.repaired.push(format!(
                    "gen.{n}/values: torn tail from offset {t} moved out"
                ));
            }
        }
        Some((n, layout)) => {
            rebuild(
                fs,
                dir,
                opts,
                n,
                &layout,
                &found.records,
                found.index.as_ref(),
                &mut report,
            )?;
            if found.current_bad && (fs.exists(&current)? || fs.is_dir(&current)?) {
                q.move_in(&current)?;
            }
            let m = gen_dirs(fs, dir)?.last().copied().unwrap_or(n);
            write_current(fs, &current, m, &layout)?;
            for g in gen_dirs(fs, dir)? {
                if g != m {
                    q.move_in(&gen_dir(dir, g))?;
                }
            }
        }
    }
    let (qdir, moved) = q.into_parts();
    report.quarantine_dir = qdir;
    report.quarantined = moved;
    Ok(report)
}

/// Writes a new generation (after every existing one) holding, for each
/// key, its newest intact record of generation `n`.
#[allow(clippy::too_many_arguments)]
fn rebuild(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &OpenOptions,
    n: u64,
    layout: &Layout,
    records: &[Found],
    index: Option<&Entries>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut newest: HashMap<&[u8], usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        newest.insert(&r.key, i);
    }
    let mut dropped = 0u64;
    if let Some(index) = index {
        // Records after the last one the index points to were appended
        // after the last flush: the newest of them wins. That last record
        // must be intact where the index says, else (records moved) no
        // record counts as unflushed. Below that point the index says which
        // record was acknowledged last; if that record is damaged, an older
        // one of the key would be a silent rollback.
        let intact_at = |k: &[u8], o: u64, h: &[u8]| {
            records
                .binary_search_by_key(&o, |r| r.offset)
                .ok()
                .filter(|&i| records[i].key == k && records[i].header == h)
        };
        let unflushed_from = match index.iter().max_by_key(|(_, (o, _))| *o) {
            None => 0,
            Some((k, (o, h))) => intact_at(k, *o, h).map_or(u64::MAX, |i| records[i].end),
        };
        for (k, (o, h)) in index {
            let latest = newest.get(k.as_slice()).copied();
            if latest.is_some_and(|i| records[i].offset >= unflushed_from) {
                continue;
            }
            match intact_at(k, *o, h) {
                Some(i) => {
                    newest.insert(k, i);
                }
                None => {
                    newest.remove(k.as_slice());
                    dropped += 1;
                    if dropped <= LISTED as u64 {
                        report.repaired.push(format!(
                            "key {}: its acknowledged record at offset {o} is damaged; the key is dropped",
                            hex(k)
                        ));
                    }
                }
            }
        }
    }
    let mut chosen: Vec<usize> = newest.into_values().collect();
    chosen.sort_unstable();
    let m = gen_dirs(fs, dir)?.last().copied().unwrap_or(n).max(n) + 1;
    let cfg = IndexedFileConfig {
        key_size: layout.key_size,
        header_size: layout.header_size,
        header_in_value: layout.header_in_value,
        log_size: 0,
        open: OpenOptions {
            read_only: false,
            ..opts.clone()
        },
    };
    let new = create_gen(fs, dir, m, &cfg, layout, 0)?;
    if !chosen.is_empty() {
        // Records were read from it, so it is there (unless it vanished
        // under the repair's lock, which is an error).
        let old = fs.open(&gen_dir(dir, n).join(VALUES), OpenMode::Read)?;
        let mut r = Reader::new(old.as_ref(), old.len()?, *layout);
        for &i in &chosen {
            let f = &records[i];
            match r.record_at(f.offset)? {
                Decoded::Record(rec, _) if rec.key == f.key.as_slice() => {
                    append_to(&new, rec.key, &f.header, rec.value)?;
                }
                _ => {
                    return Err(Error::Inconsistent(format!(
                        "gen.{n}/values changed during the repair at offset {}",
                        f.offset
                    )));
                }
            }
        }
    }
    flush_gen(&new)?;
    drop(new);
    if dropped > LISTED as u64 {
        report.repaired.push(format!(
            "... and {} more keys dropped",
            dropped - LISTED as u64
        ));
    }
    report.repaired.push(format!(
        "gen.{n}: the newest intact records of {} keys (of {} intact records) rebuilt into gen.{m} (values and index)",
        chosen.len(),
        records.len()
    ));
    Ok(())
}
