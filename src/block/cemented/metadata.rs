//! Metadata zips: `metadata/<start>_<end>.zip` holds one entry per level of
//! the chunk that has metadata, named by the decimal level and compressed
//! with zstd (zip method 93). Each entry is compressed on its own, so one
//! level's metadata is read without decompressing the others. The writer is
//! [`super::meta_writer`].

use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::chunk::ChunkRange;
use crate::error::{Error, Result};
use crate::io::{FileSystem, Mapped, OpenMode};

/// Name of the metadata directory inside the store.
pub const DIR: &str = "metadata";
/// Suffix of metadata files.
pub const SUFFIX: &str = ".zip";
/// Largest metadata entry accepted when reading (a damaged size field
/// must not cause a huge allocation); Octez caps metadata at 10 MB.
const MAX_ENTRY: u64 = 1 << 32;
/// Default zstd level (zstd's own default: fast, and smaller than deflate).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The file name of a chunk's metadata zip.
pub fn file_name(range: ChunkRange) -> String {
    format!("{}{SUFFIX}", range.file_name())
}

/// Parses a metadata file name; other names give `None`.
pub fn parse_name(name: &str) -> Option<ChunkRange> {
    ChunkRange::parse(name.strip_suffix(SUFFIX)?)
}

/// The bytes of a mapped file, shareable by cloned zip readers.
#[derive(Clone)]
struct MapBytes(Arc<Mapped>);

impl AsRef<[u8]> for MapBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

type Archive = ZipArchive<Cursor<MapBytes>>;

/// An immutable metadata zip, mapped and parsed on first read.
pub struct MetaChunk {
    range: ChunkRange,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    loaded: OnceCell<(Archive, MapBytes)>,
}

impl fmt::Debug for MetaChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetaChunk({})", self.path.display())
    }
}

impl MetaChunk {
    /// The metadata of chunk `range` in directory `meta_dir` (opened lazily).
    pub fn new(fs: Arc<dyn FileSystem>, meta_dir: &Path, range: ChunkRange) -> MetaChunk {
        MetaChunk {
            range,
            path: meta_dir.join(file_name(range)),
            fs,
            loaded: OnceCell::new(),
        }
    }

    /// The chunk's levels.
    pub fn range(&self) -> ChunkRange {
        self.range
    }

    /// The zip's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<&(Archive, MapBytes)> {
        self.loaded.get_or_try_init(|| {
            let file = self.fs.open(&self.path, OpenMode::Read)?;
            let map = MapBytes(Arc::new(file.map()?));
            let a = ZipArchive::new(Cursor::new(map.clone()))
                .map_err(|e| Error::corrupted(&self.path, e))?;
            Ok((a, map))
        })
    }

    fn archive(&self) -> Result<Archive> {
        // Clones share the parsed central directory and the mapping.
        Ok(self.load()?.0.clone())
    }

    /// The metadata of `level`, or `None` if the block had none.
    /// A damaged entry is `Corrupted`.
    pub fn read(&self, level: i32) -> Result<Option<Vec<u8>>> {
        let mut a = self.archive()?;
        let Some(i) = a.index_for_name(&level.to_string()) else {
            return Ok(None);
        };
        let raw = {
            let e = a
                .by_index_raw(i)
                .map_err(|e| Error::corrupted(&self.path, format!("level {level}: {e}")))?;
            match (e.compression(), e.data_start()) {
                (CompressionMethod::Zstd, Some(start)) => {
                    Some((start, e.compressed_size(), e.size(), e.crc32()))
                }
                _ => None,
            }
        };
        match raw {
            Some((start, len, size, crc)) => self.read_zstd(level, start, len, size, crc).map(Some),
            // Other methods (zips written by other tools) go through the
            // zip crate's decoders.
            None => self.read_generic(&mut a, level),
        }
    }

    /// Decompresses a zstd entry straight from the mapping with a reusable
    /// per-thread context (the zip crate sets up a new one per entry, which
    /// costs more than decompressing a few KiB).
    fn read_zstd(&self, level: i32, start: u64, len: u64, size: u64, crc: u32) -> Result<Vec<u8>> {
        thread_local! {
            static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
                const { std::cell::RefCell::new(None) };
        }
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        let data = self.load()?.1.as_ref();
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| bad(format!("entry data {start}+{len} is outside the file")))?;
        if size > MAX_ENTRY {
            return Err(bad(format!("entry size {size} is implausible")));
        }
        let src = &data[start as usize..end as usize];
        let out = DCTX.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(
                    zstd::bulk::Decompressor::new()
                        .map_err(|e| Error::Io(format!("zstd context: {e}")))?,
                );
            }
            match slot.as_mut() {
                Some(d) => d
                    .decompress(src, size as usize)
                    .map_err(|e| bad(format!("zstd: {e}"))),
                None => Err(Error::Io("zstd context".into())),
            }
        })?;
        if out.len() as u64 != size || crc32fast::hash(&out) != crc {
            return Err(bad("entry checksum mismatch".into()));
        }
        Ok(out)
    }

    fn read_generic(&self, a: &mut Archive, level: i32) -> Result<Option<Vec<u8>>> {
        let mut entry = match a.by_name(&level.to_string()) {
            Ok(e) => e,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(Error::corrupted(&self.path, format!("level {level}: {e}"))),
        };
        let mut out = Vec::with_capacity(entry.size().min(1 << 30) as usize);
        entry
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupted(&self.path, format!("level {level}: {e}")))?;
        Ok(Some(out))
    }

    /// The levels that have an entry, checked to be in the chunk's range.
    pub fn levels(&self) -> Result<Vec<i32>> {
        let a = self.archive()?;
        let mut out = Vec::with_capacity(a.len());
        for name in a.file_names() {
            let name = name.map_err(|e| Error::corrupted(&self.path, e))?;
            let level: i32 = name
                .parse()
                .ok()
                .filter(|l| self.range.contains(*l))
                .ok_or_else(|| {
                    Error::corrupted(
                        &self.path,
                        format!("entry {name:?} is not a level of {}", self.range),
                    )
                })?;
            out.push(level);
        }
        out.sort_unstable();
        Ok(out)
    }
}
