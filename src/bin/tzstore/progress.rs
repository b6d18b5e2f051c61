//! Progress bars for long work (check, copy, dump), drawn on stderr only
//! when stderr is a terminal (so pipes, logs and tests see none of it),
//! with an ETA and integer rates; and a file system wrapper that counts
//! the bytes a store's check reads, which is the only progress measure a
//! check gives from outside the library.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tzstore::Result;
use tzstore::io::{DirEntry, FileHandle, FileSystem, LockFile, MapPromise, Mapped, OpenMode};

use crate::fmt::{bytes_rate, human_bytes, thousands};

/// What a bar counts.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Records (blocks, entries, keys), shown with separators.
    Records(&'static str),
    /// Bytes, shown as sizes.
    Bytes,
}

/// A bar of `len` units with `msg` in front; hidden unless stderr is a
/// terminal.
pub fn bar(len: u64, unit: Unit, msg: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    // indicatif's own `{per_sec}` prints fractions (`54,172.7438/s`):
    // rates are written here as integers.
    let style = ProgressStyle::with_template(
        "{msg} {wide_bar} {counts} {rate} {elapsed_precise} ETA {eta_precise}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "counts",
        move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let len = s.len().unwrap_or(0);
            let _ = match unit {
                Unit::Records(what) => {
                    write!(w, "{}/{} {what}", thousands(s.pos()), thousands(len))
                }
                Unit::Bytes => write!(w, "{}/{}", human_bytes(s.pos()), human_bytes(len)),
            };
        },
    )
    .with_key(
        "rate",
        move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let per = s.per_sec();
            let per = if per.is_finite() {
                per.round() as u64
            } else {
                0
            };
            let _ = match unit {
                Unit::Records(_) => write!(w, "{}/s", thousands(per)),
                Unit::Bytes => write!(w, "{}", bytes_rate(per)),
            };
        },
    );
    pb.set_style(style);
    pb.set_message(msg.to_string());
    pb
}

/// Wraps a file system and counts the bytes read through it (a mapped
/// file counts as read whole when mapped), for a check's progress bar.
#[derive(Debug)]
pub struct CountingFs {
    inner: Arc<dyn FileSystem>,
    read: Arc<AtomicU64>,
}

impl CountingFs {
    /// The wrapper and its shared counter.
    pub fn new(inner: Arc<dyn FileSystem>) -> (Arc<CountingFs>, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        (
            Arc::new(CountingFs {
                inner,
                read: read.clone(),
            }),
            read,
        )
    }
}

#[derive(Debug)]
struct CountingHandle {
    inner: Arc<dyn FileHandle>,
    read: Arc<AtomicU64>,
}

impl FileHandle for CountingHandle {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.inner.read_exact_at(buf, offset)?;
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn map(&self, promise: MapPromise) -> Result<Mapped> {
        let m = self.inner.map(promise)?;
        self.read.fetch_add(m.len() as u64, Ordering::Relaxed);
        Ok(m)
    }
    fn write_behind(&self, offset: u64, len: u64) {
        self.inner.write_behind(offset, len)
    }
}

impl FileSystem for CountingFs {
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(CountingHandle {
            inner: self.inner.open(path, mode)?,
            read: self.read.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn stamp(&self, path: &Path) -> Result<Option<tzstore::io::FileStamp>> {
        self.inner.stamp(path)
    }
    fn is_dir(&self, path: &Path) -> Result<bool> {
        self.inner.is_dir(path)
    }
    fn lock(&self, path: &Path) -> Result<LockFile> {
        self.inner.lock(path)
    }
    fn fsync_enabled(&self) -> bool {
        self.inner.fsync_enabled()
    }
    fn open_root_dir(&self, path: &Path) -> std::io::Result<tzstore::io::beneath::Dir> {
        // kv reads through directory handles, which this count does not see.
        self.inner.open_root_dir(path)
    }
}
