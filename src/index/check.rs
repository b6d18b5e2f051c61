//! `Index::check`: verifies an index directory without an open handle
//! (so it works on an index that refuses to open) and, with repair,
//! salvages it: every entry that passes its checksum is kept, whatever is
//! dropped goes to the quarantine folder.
//!
//! What repair does, per damage:
//! * a log with entries failing their checksum, or a garbled header in
//!   front of entries: the original goes to the quarantine, and a log of
//!   the same generation holding its intact entries takes its place;
//! * a log that is not a regular file: moved to the quarantine;
//! * a damaged `data` (any checksum, size or order failure): moved to the
//!   quarantine (its entries carry no checksum of their own, so none can
//!   be told intact), and `meta` then records no data;
//! * a damaged `delta`: the same as `data`; a whole `delta` above a
//!   damaged `data`: its entries go to a log too, replayed after the
//!   base's (a stale `delta`, at or below `data`'s generation, is left for
//!   the open to remove);
//! * `data` missing or older than `meta` records: `meta` records what is
//!   there (the entries of the missing generation are lost);
//! * a damaged or missing `meta`: rewritten from the data file's header
//!   (or, failing that, a log header), the damaged one kept in the
//!   quarantine.

use std::path::Path;

use super::data::{self, DataFile};
use super::log::{self, HeaderState};
use super::meta::{self, Meta};
use super::{DATA, DELTA, Index, LOCK, META};
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::io::quarantine::Quarantine;
use crate::io::{FileSystem, OpenMode};
use crate::options::OpenOptions;

/// The sizes and flags entries are read with.
#[derive(Clone, Copy)]
struct Shape {
    ksize: usize,
    /// Value size on disk (with the removable tag byte).
    dsize: usize,
    flags: u32,
}

impl Index {
    /// Checks the index in `dir` without opening it: `meta`, every entry
    /// of `data` (its checksums, sizes and order) and of each log (header
    /// and per-entry checksums). Changes nothing unless `repair`; with
    /// `repair` (takes `dir/lock`: no read-write handle may be open), it
    /// keeps every entry that passes its checksum and moves whatever it
    /// drops into `dir/.tzs-quarantine/<UTC time>-<n>/` (see the module
    /// documentation of `index::check` for each case), so that the index
    /// opens afterwards. An incomplete last log entry is a torn tail, not a
    /// problem (the read-write open cuts it).
    ///
    /// Errors: `NotFound` (no directory), `Locked` (repair while a
    /// read-write handle is open), `Io`; damage is reported in the
    /// [`CheckReport`], not as an error.
    pub fn check(dir: impl AsRef<Path>, opts: &OpenOptions, repair: bool) -> Result<CheckReport> {
        let dir = dir.as_ref();
        let fs = opts.fs.as_ref();
        if !fs.is_dir(dir)? {
            return Err(Error::NotFound(format!(
                "index {} does not exist",
                dir.display()
            )));
        }
        let _lock = if repair {
            Some(fs.lock(&dir.join(LOCK))?)
        } else {
            None
        };
        Checker {
            fs,
            dir,
            repair,
            report: CheckReport::default(),
            quarantine: Quarantine::new(fs, dir),
        }
        .run()
    }
}

struct Checker<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    repair: bool,
    report: CheckReport,
    quarantine: Quarantine<'a>,
}

impl Checker<'_> {
    fn run(mut self) -> Result<CheckReport> {
        let meta_path = self.dir.join(META);
        let data_path = self.dir.join(DATA);
        let logs = log::list(self.fs, self.dir)?;
        let (meta, meta_damaged) = match meta::read(self.fs, &meta_path) {
            // A checksummed meta with sizes no index has: never read with.
            Ok(Some(m)) if !valid_sizes(m.key_size as usize, m.value_size as usize + 1) => {
                self.report.problem(format!(
                    "{}: key size {} or value size {} at offset 8 is out of range",
                    meta_path.display(),
                    m.key_size,
                    m.value_size
                ));
                (None, true)
            }
            Ok(m) => (m, false),
            Err(Error::Corrupted(m)) => {
                self.report.problem(m);
                (None, true)
            }
            Err(e) => return Err(e),
        };
        let data_exists = self.fs.exists(&data_path)?;
        if meta.is_none() && !meta_damaged {
            if !data_exists && logs.is_empty() {
                return Ok(self.finish()); // nothing was ever stored here
            }
            self.report.problem(format!(
                "{}: missing, while the index holds other files",
                meta_path.display()
            ));
        }
        let Some(shape) = meta
            .map(|m| Shape {
                ksize: m.key_size as usize,
                dsize: m.value_size as usize + usize::from(m.flags & data::FLAG_REMOVABLE != 0),
                flags: m.flags,
            })
            .or_else(|| self.infer_shape(&data_path, &logs))
        else {
            self.report.problem(format!(
                "{}: no meta, data or log header says the key and value sizes: nothing can be read",
                self.dir.display()
            ));
            self.report.stopped_early = true;
            return Ok(self.finish());
        };
        let recorded = meta.map_or(0, |m| m.data_generation);

        // The data files: the base, and the delta above it.
        let mut meta_stale = meta.is_none();
        let mut base = self.check_data(&data_path, DATA, shape)?;
        if let Some((g, on)) = base.filter(|&(_, on)| on != 0) {
            self.report.problem(format!(
                "{}: of generation {g}, is a delta (written on data generation {on}, offset 60), not a base",
                data_path.display()
            ));
            if self.repair && !self.salvage_data_entries(&data_path, DATA, shape)? {
                self.quarantine_data(&data_path, DATA)?;
            }
            base = None;
        }
        let base_gen = base.map(|(g, _)| g);
        let delta_path = self.dir.join(DELTA);
        let mut data_gen = base_gen.unwrap_or(0);
        if self.fs.exists(&delta_path)? {
            match self.check_data(&delta_path, DELTA, shape)? {
                // Stale: folded into the base already (the open removes it).
                Some((g, _)) if base_gen.is_some_and(|b| g <= b) => {}
                Some((g, on)) if base_gen == Some(on) => data_gen = g,
                Some((g, on)) => {
                    meta_stale = true;
                    if base_gen.is_some() {
                        self.report.problem(format!(
                            "{}: of generation {g}, written on data generation {on} (offset 60), but {DATA} is of generation {data_gen}: the base it needs is missing or replaced",
                            delta_path.display()
                        ));
                    }
                    // The base below it went to a log, the quarantine, or
                    // is gone: the delta's bindings must replay after
                    // whatever is left of it, so they go to a log too.
                    if self.repair && !self.salvage_data_entries(&delta_path, DELTA, shape)? {
                        self.quarantine_data(&delta_path, DELTA)?;
                    }
                }
                None => meta_stale = true,
            }
        }
        if base_gen.is_none() {
            meta_stale = true;
        }
        if base_gen.is_some() && data_gen < recorded {
            meta_stale = true;
            let what = if data_gen == 0 {
                "missing".to_string()
            } else {
                format!("of generation {data_gen}")
            };
            self.report.problem(format!(
                "{}: {what}, but {META} records data generation {recorded} (offset 20 of {META})",
                data_path.display()
            ));
            if self.repair {
                self.report.repaired.push(format!(
                    "{META}: now records data generation {data_gen}; the entries of generation {recorded} that were in no log are lost"
                ));
            }
        }

        // The logs not yet merged into the data.
        for lg in logs {
            if lg < data_gen {
                continue;
            }
            self.check_log(lg, shape)?;
        }

        if self.repair && (meta_stale || meta_damaged) {
            if meta_damaged {
                self.quarantine.move_in(&meta_path)?;
            }
            let vsize = shape.dsize - usize::from(shape.flags & data::FLAG_REMOVABLE != 0);
            let m = Meta {
                key_size: shape.ksize as u32,
                value_size: vsize as u32,
                flags: shape.flags,
                data_generation: data_gen,
            };
            meta::write(self.fs, &meta_path, &m)?;
            if meta.is_none() {
                self.report.repaired.push(format!(
                    "{META}: rewritten (key size {}, value size {vsize}, removable {})",
                    m.key_size,
                    shape.flags & data::FLAG_REMOVABLE != 0
                ));
            }
        }
        Ok(self.finish())
    }

    /// Checks the data file `path` (`name`: `data` or `delta`); with
    /// repair, salvages what it can. The generation it holds whole and
    /// the base generation it names, or `None` when damaged (its entries then went to a log or the
    /// quarantine under repair).
    fn check_data(&mut self, path: &Path, name: &str, shape: Shape) -> Result<Option<(u64, u64)>> {
        match DataFile::open(self.fs, path, shape.ksize, shape.dsize, shape.flags) {
            Ok(d) => {
                self.report.records_checked += d.count();
                Ok(Some((d.generation(), d.base_generation())))
            }
            Err(Error::Corrupted(m)) => {
                self.report.problem(m);
                if !self.repair {
                    return Ok(None);
                }
                if let Some(d) = self.salvage_data_tail(path, shape)? {
                    self.report.records_checked += d.count();
                    self.report.repaired.push(format!(
                        "{name}: bytes after its end moved out; all {} entries kept",
                        d.count()
                    ));
                    return Ok(Some((d.generation(), d.base_generation())));
                }
                if !self.salvage_data_entries(path, name, shape)? {
                    self.quarantine_data(path, name)?;
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A data file that fails only because bytes follow its end (its
    /// header and sections verify without them): the extra bytes go to the
    /// quarantine and the file is kept. `None` if that does not make it
    /// whole.
    fn salvage_data_tail(&mut self, path: &Path, shape: Shape) -> Result<Option<DataFile>> {
        let Some(h) = read_prefix(self.fs, path, data::HEADER)
            .and_then(|b| data::Header::decode(path, &b).ok())
        else {
            return Ok(None);
        };
        let (Some(want), Ok(f)) = (h.file_len(), self.fs.open(path, OpenMode::Read)) else {
            return Ok(None);
        };
        if f.len()? <= want {
            return Ok(None);
        }
        drop(f);
        self.quarantine.cut_tail(path, want)?;
        match DataFile::open(self.fs, path, shape.ksize, shape.dsize, shape.flags) {
            Ok(d) => Ok(Some(d)),
            Err(Error::Corrupted(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A data file whose entries section still passes its checksum (the
    /// damage is in its header's other fields, fan-out table or hashes):
    /// its entries are written, checksummed, into a log of the generation
    /// just below the data's, which the open replays before every newer
    /// log, and the data file goes to the quarantine. `false` if the
    /// entries cannot be verified.
    fn salvage_data_entries(&mut self, path: &Path, name: &str, shape: Shape) -> Result<bool> {
        let Some(h) = read_prefix(self.fs, path, data::HEADER)
            .and_then(|b| data::Header::decode(path, &b).ok())
        else {
            return Ok(false);
        };
        let same = (h.ksize as usize, h.vsize as usize, h.flags)
            == (shape.ksize, shape.dsize, shape.flags);
        let (Some(want), true, Some(g)) = (h.file_len(), same, h.generation.checked_sub(1)) else {
            return Ok(false);
        };
        let Ok(file) = self.fs.open(path, OpenMode::Read) else {
            return Ok(false);
        };
        let esize = (shape.ksize + shape.dsize) as u64;
        let start = want - h.count * esize;
        if file.len()? != want {
            return Ok(false);
        }
        let mut crc = crc32fast::Hasher::new();
        each_entry(file.as_ref(), start, want, esize, |e| {
            crc.update(e);
            Ok(())
        })?;
        if crc.finalize() != h.entries_crc {
            return Ok(false);
        }
        let log_path = log::path(self.dir, g);
        if self.fs.exists(&log_path)? {
            // Merged into this data file already: its entries are there.
            self.quarantine.move_in(&log_path)?;
        }
        let tmp = self.dir.join(format!("{}.repaired", log::name(g)));
        let mut copy =
            log::LogCopy::create(self.fs, &tmp, g, shape.ksize, shape.dsize, shape.flags)?;
        each_entry(file.as_ref(), start, want, esize, |e| {
            let (k, v) = e.split_at(shape.ksize);
            copy.push(k, v)
        })?;
        copy.finish()?;
        drop(file);
        self.quarantine.move_in(path)?;
        self.fs.rename(&tmp, &log_path)?;
        self.fs.sync_dir(self.dir)?;
        self.report.repaired.push(format!(
            "{name}: entries, which pass their checksum, moved into a log: all {} entries kept in {}",
            h.count,
            log::name(g)
        ));
        Ok(true)
    }

    /// Moves a damaged data file into the quarantine.
    fn quarantine_data(&mut self, path: &Path, name: &str) -> Result<()> {
        let entries =
            data_count(self.fs, path).map_or("an unknown number of".to_string(), |n| n.to_string());
        self.quarantine.move_in(path)?;
        self.report.repaired.push(format!(
            "{name}: damaged, moved out with {entries} entries; the logs are kept"
        ));
        Ok(())
    }

    /// Checks `log.<lg>`; with repair, rewrites it with its intact entries.
    fn check_log(&mut self, lg: u64, shape: Shape) -> Result<()> {
        let path = log::path(self.dir, lg);
        let file = match self.fs.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(Error::Corrupted(m)) => {
                self.report.problem(m);
                if self.repair {
                    self.quarantine.move_in(&path)?;
                    self.report
                        .repaired
                        .push(format!("{}: not a regular file, moved out", log::name(lg)));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let len = file.len()?;
        let s = log::scan(
            file.as_ref(),
            lg,
            shape.ksize,
            shape.dsize,
            shape.flags,
            |_, _| Ok(()),
        )?;
        self.report.records_checked += s.good;
        let esize = log::entry_size(shape.ksize, shape.dsize) as u64;
        let mut damaged = false;
        match s.header {
            HeaderState::Valid => {}
            HeaderState::Garbled | HeaderState::Foreign => {
                damaged = true;
                self.report.problem(format!(
                    "{}: log header at offset 0 is {} ({} bytes of entries after it)",
                    path.display(),
                    if s.header == HeaderState::Foreign {
                        "another log's (generation or sizes)"
                    } else {
                        "damaged"
                    },
                    len.saturating_sub(log::HEADER)
                ));
            }
        }
        for at in &s.first_bad {
            self.report.problem(format!(
                "{}: log entry {} at offset {at} fails its checksum",
                path.display(),
                (at - log::HEADER) / esize
            ));
        }
        if s.bad > s.first_bad.len() as u64 {
            self.report.problem(format!(
                "{}: {} more entries fail their checksum",
                path.display(),
                s.bad - s.first_bad.len() as u64
            ));
        }
        if let Some(end) = s.past_close {
            damaged = true;
            self.report.problem(format!(
                "{}: log continues past offset {end}, where it was closed cleanly ({len} bytes)",
                path.display()
            ));
        }
        if let Some(end) = s.short_of {
            damaged = true;
            self.report.problem(format!(
                "{}: log of {len} bytes is shorter than the {end} bytes it had fsynced",
                path.display()
            ));
        }
        damaged |= s.bad > 0;
        if !damaged || !self.repair {
            return Ok(());
        }
        // The salvaged log is complete under a name no listing reads
        // before the original leaves; a crash between the two moves leaves
        // it there (`log.<g>.repaired`) for the operator.
        let tmp = self.dir.join(format!("{}.repaired", log::name(lg)));
        let mut copy =
            log::LogCopy::create(self.fs, &tmp, lg, shape.ksize, shape.dsize, shape.flags)?;
        log::scan(
            file.as_ref(),
            lg,
            shape.ksize,
            shape.dsize,
            shape.flags,
            |k, v| copy.push(k, v),
        )?;
        copy.finish()?;
        drop(file);
        self.quarantine.move_in(&path)?;
        self.fs.rename(&tmp, &path)?;
        self.fs.sync_dir(self.dir)?;
        self.report.repaired.push(format!(
            "{}: {} of {} entries kept, {} failing their checksum dropped{}",
            log::name(lg),
            s.good,
            s.good + s.bad,
            s.bad,
            if s.tail > 0 {
                format!(", {} bytes of a torn last entry dropped", s.tail)
            } else {
                String::new()
            }
        ));
        Ok(())
    }

    /// Sizes from the data file's header, else from a log header.
    fn infer_shape(&self, data_path: &Path, logs: &[u64]) -> Option<Shape> {
        if let Some(h) = read_prefix(self.fs, data_path, data::HEADER)
            .and_then(|b| data::Header::decode(data_path, &b).ok())
        {
            return Some(Shape {
                ksize: h.ksize as usize,
                dsize: h.vsize as usize,
                flags: h.flags,
            })
            .filter(|s| valid_sizes(s.ksize, s.dsize));
        }
        logs.iter().find_map(|&lg| {
            let b = read_prefix(self.fs, &log::path(self.dir, lg), log::HEADER as usize)?;
            let (_, k, v, flags) = log::decode_header(&b)?;
            Some(Shape {
                ksize: k as usize,
                dsize: v as usize,
                flags,
            })
            .filter(|s| valid_sizes(s.ksize, s.dsize))
        })
    }

    fn finish(self) -> CheckReport {
        let mut report = self.report;
        let (qdir, moved) = self.quarantine.into_parts();
        report.quarantine_dir = qdir;
        report.quarantined = moved;
        if self.repair && !report.stopped_early {
            report.problems.clear();
        }
        report
    }
}

/// Calls `f` on each `esize`-byte entry of `file` in `start..end`, read in
/// chunks of about 1 MiB.
fn each_entry(
    file: &dyn crate::io::FileHandle,
    start: u64,
    end: u64,
    esize: u64,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let per = ((1u64 << 20) / esize).max(1) * esize;
    let mut buf = vec![0u8; per as usize];
    let mut at = start;
    while at < end {
        let n = per.min(end - at);
        let chunk = &mut buf[..n as usize];
        file.read_exact_at(chunk, at)?;
        for e in chunk.chunks_exact(esize as usize) {
            f(e)?;
        }
        at += n;
    }
    Ok(())
}

fn valid_sizes(ksize: usize, dsize: usize) -> bool {
    (1..=super::MAX_SIZE).contains(&ksize) && dsize <= super::MAX_SIZE + 1
}

/// The first `n` bytes of the regular file at `path`, if it has them.
fn read_prefix(fs: &dyn FileSystem, path: &Path, n: usize) -> Option<Vec<u8>> {
    let f = fs.open(path, OpenMode::Read).ok()?;
    if f.len().ok()? < n as u64 {
        return None;
    }
    let mut b = vec![0u8; n];
    f.read_exact_at(&mut b, 0).ok()?;
    Some(b)
}

/// The entry count a data file's header states, if the header is whole.
fn data_count(fs: &dyn FileSystem, path: &Path) -> Option<u64> {
    let b = read_prefix(fs, path, data::HEADER)?;
    data::Header::decode(path, &b).ok().map(|h| h.count)
}
