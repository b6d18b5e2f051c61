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
/// Largest metadata entry accepted when reading: the writer refuses 4 GiB
/// and more (the zip fields are 32 bits).
const MAX_ENTRY: u64 = u32::MAX as u64 - 1;
/// The most a zstd frame can expand: every block (at least 4 bytes with its
/// header, an RLE block) yields at most 128 KiB. A damaged size field above
/// this bound is rejected before anything is allocated.
const ZSTD_BYTES_PER_4: u64 = 128 << 10;
/// Output buffer reserved up front for entries of other methods; the
/// buffer then grows with what the entry really yields.
const GENERIC_RESERVE: u64 = 1 << 20;
/// Default zstd level (zstd's own default: fast, and smaller than deflate).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The file name of a chunk's metadata zip.
pub fn file_name(range: ChunkRange) -> String {
    format!("{}{SUFFIX}", range.file_name())
}

/// Suffix of the marker GC leaves for a zip it dropped (empty file).
pub const DROPPED_SUFFIX: &str = ".dropped";

/// The name of the marker saying that GC dropped the zip of `range`.
pub fn dropped_name(range: ChunkRange) -> String {
    format!("{}{DROPPED_SUFFIX}", range.file_name())
}

/// Parses a dropped-zip marker's name; other names give `None`.
pub fn parse_dropped(name: &str) -> Option<ChunkRange> {
    ChunkRange::parse(name.strip_suffix(DROPPED_SUFFIX)?)
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
        let bound = (len / 4 + 1).saturating_mul(ZSTD_BYTES_PER_4);
        if size > MAX_ENTRY || size > bound {
            return Err(bad(format!(
                "entry size {size} is implausible for {len} compressed bytes at byte {start}"
            )));
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
        let file_len = self.load()?.1.as_ref().len() as u64;
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        let entry = match a.by_name(&level.to_string()) {
            Ok(e) => e,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let (size, csize) = (entry.size(), entry.compressed_size());
        let stored = entry.compression() == CompressionMethod::Stored;
        if size > MAX_ENTRY || csize > file_len || (stored && size != csize) {
            return Err(bad(format!(
                "entry of {size} bytes ({csize} stored) is implausible in a file of {file_len} bytes"
            )));
        }
        // Reserve no more than the file could hold; a damaged size of a
        // compressed entry then costs only what the data really yields.
        let mut out = Vec::with_capacity(size.min(file_len).min(GENERIC_RESERVE) as usize);
        entry
            .take(size + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(e.to_string()))?;
        if out.len() as u64 != size {
            return Err(bad(format!(
                "entry holds {} bytes, its header says {size}",
                out.len()
            )));
        }
        Ok(Some(out))
    }

    /// Reads back every entry (names, sizes, checksums); returns the number
    /// of entries. The first damaged entry is `Corrupted`.
    pub fn verify(&self) -> Result<u64> {
        let levels = self.levels()?;
        for l in &levels {
            if self.read(*l)?.is_none() {
                return Err(Error::corrupted(
                    &self.path,
                    format!("entry {l} is listed but cannot be found"),
                ));
            }
        }
        Ok(levels.len() as u64)
    }

    /// Every entry that reads back intact, for a repair that keeps them;
    /// and the number of entries the zip lists (0 if its directory is
    /// unreadable).
    pub fn salvage(&self) -> (Vec<(i32, Vec<u8>)>, usize) {
        let Ok(a) = self.archive() else {
            return (Vec::new(), 0);
        };
        let total = a.len();
        let mut seen = std::collections::BTreeMap::new();
        for name in a.file_names().flatten() {
            let Some(level) = name.parse::<i32>().ok().filter(|l| self.range.contains(*l)) else {
                continue;
            };
            if let Ok(Some(v)) = self.read(level) {
                seen.entry(level).or_insert(v);
            }
        }
        (seen.into_iter().collect(), total)
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
        if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::corrupted(
                &self.path,
                format!("entry {} appears twice", w[0]),
            ));
        }
        Ok(out)
    }
}
