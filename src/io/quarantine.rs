//! Where a repair puts what it drops: `STORE/.tzs-quarantine/<UTC time>-<n>/`,
//! keeping each file's path relative to the store. Nothing a repair drops is
//! unlinked, so an operator can inspect or restore it. Stores never read the
//! quarantine folder; its name starts with `.tzs-` like the store's other
//! private files.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{FileSystem, OpenMode};
use crate::error::{Error, Result};

/// Name of the quarantine folder in a store's directory.
pub const QUARANTINE_DIR: &str = ".tzs-quarantine";

/// Bytes copied per step when saving a file's tail.
const COPY_STEP: usize = 1 << 20;

/// One repair's quarantine folder, created at the first move.
#[derive(Debug)]
pub struct Quarantine<'a> {
    fs: &'a dyn FileSystem,
    store_dir: PathBuf,
    dir: Option<PathBuf>,
    moved: Vec<String>,
}

impl<'a> Quarantine<'a> {
    /// A quarantine for the store at `store_dir`; nothing is created yet.
    pub fn new(fs: &'a dyn FileSystem, store_dir: &Path) -> Quarantine<'a> {
        Quarantine {
            fs,
            store_dir: store_dir.to_path_buf(),
            dir: None,
            moved: Vec::new(),
        }
    }

    /// The folder, if anything was moved.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// What was moved so far, as paths relative to the store (a saved tail
    /// reads `FILE from byte N`).
    pub fn moved(&self) -> &[String] {
        &self.moved
    }

    /// Consumes the quarantine: (folder, what was moved).
    pub fn into_parts(self) -> (Option<PathBuf>, Vec<String>) {
        (self.dir, self.moved)
    }

    /// Moves the file or directory at `path` (inside the store) into the
    /// quarantine, durably: both directories are fsynced.
    pub fn move_in(&mut self, path: &Path) -> Result<()> {
        let rel = self.relative(path)?;
        let target = self.folder()?.join(&rel);
        let parent = super::atomic::parent_dir(&target).to_path_buf();
        self.fs.create_dir_all(&parent)?;
        self.fs.rename(path, &target)?;
        self.fs.sync_dir(&parent)?;
        self.fs.sync_dir(super::atomic::parent_dir(path))?;
        self.moved.push(rel.display().to_string());
        Ok(())
    }

    /// Saves the bytes of `path` from `offset` to its end into the
    /// quarantine (as `REL.from-OFFSET`), fsynced, then cuts `path` at
    /// `offset` and fsyncs it. A crash in between leaves the original whole
    /// or cut with its tail saved.
    pub fn cut_tail(&mut self, path: &Path, offset: u64) -> Result<()> {
        let rel = self.relative(path)?;
        let src = self.fs.open(path, OpenMode::ReadWrite)?;
        let len = src.len()?;
        if offset >= len {
            return Ok(());
        }
        let target = self
            .folder()?
            .join(format!("{}.from-{offset}", rel.display()));
        let parent = super::atomic::parent_dir(&target).to_path_buf();
        self.fs.create_dir_all(&parent)?;
        let dst = self.fs.open(&target, OpenMode::Truncate)?;
        let mut buf = vec![0u8; COPY_STEP.min(usize::try_from(len - offset).unwrap_or(COPY_STEP))];
        let mut at = offset;
        while at < len {
            let n = buf
                .len()
                .min(usize::try_from(len - at).unwrap_or(buf.len()));
            src.read_exact_at(&mut buf[..n], at)?;
            dst.write_all_at(&buf[..n], at - offset)?;
            at += n as u64;
        }
        dst.sync()?;
        self.fs.sync_dir(&parent)?;
        src.set_len(offset)?;
        src.sync()?;
        self.moved
            .push(format!("{} from byte {offset}", rel.display()));
        Ok(())
    }

    fn relative(&self, path: &Path) -> Result<PathBuf> {
        path.strip_prefix(&self.store_dir)
            .map(Path::to_path_buf)
            .map_err(|_| {
                Error::invalid(format!(
                    "{} is not inside the store {}",
                    path.display(),
                    self.store_dir.display()
                ))
            })
    }

    /// Creates this repair's folder on first use: the time, then a counter
    /// that makes it new if another repair ran in the same second.
    fn folder(&mut self) -> Result<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let root = self.store_dir.join(QUARANTINE_DIR);
        self.fs.create_dir_all(&root)?;
        let stamp = utc_stamp(SystemTime::now());
        let mut n = 0u32;
        let dir = loop {
            let d = root.join(format!("{stamp}-{n}"));
            if !self.fs.exists(&d)? {
                break d;
            }
            n += 1;
        };
        self.fs.create_dir_all(&dir)?;
        self.fs.sync_dir(&root)?;
        self.fs.sync_dir(&self.store_dir)?;
        self.dir = Some(dir.clone());
        Ok(dir)
    }
}

/// `YYYYMMDDTHHMMSSZ` for `t` (UTC).
fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;
    use std::time::Duration;

    #[test]
    fn stamp_is_the_utc_date() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_300_000);
        assert_eq!(utc_stamp(t), "20261203T121320Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000Z");
    }

    #[test]
    fn moves_and_cuts_keep_every_byte() {
        let d = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a"), b"whole").unwrap();
        std::fs::write(d.path().join("b"), b"keep|drop").unwrap();
        let mut q = Quarantine::new(&fs, d.path());
        assert!(q.dir().is_none());
        q.move_in(&d.path().join("sub/a")).unwrap();
        q.cut_tail(&d.path().join("b"), 5).unwrap();
        q.cut_tail(&d.path().join("b"), 5).unwrap(); // nothing more to cut
        let dir = q.dir().unwrap().to_path_buf();
        assert!(dir.starts_with(d.path().join(QUARANTINE_DIR)));
        assert_eq!(std::fs::read(dir.join("sub/a")).unwrap(), b"whole");
        assert_eq!(std::fs::read(dir.join("b.from-5")).unwrap(), b"drop");
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), b"keep|");
        assert!(!d.path().join("sub/a").exists());
        assert_eq!(q.moved(), ["sub/a", "b from byte 5"]);
        // A second repair gets a folder of its own.
        let mut q2 = Quarantine::new(&fs, d.path());
        std::fs::write(d.path().join("c"), b"c").unwrap();
        q2.move_in(&d.path().join("c")).unwrap();
        assert_ne!(q2.dir().unwrap(), dir);
        assert!(
            Quarantine::new(&fs, d.path())
                .move_in(Path::new("/elsewhere"))
                .is_err()
        );
    }
}
