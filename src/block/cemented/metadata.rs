//! Metadata zips: `metadata/<start>_<end>.zip` holds one entry per level of
//! the chunk that has metadata, named by the decimal level and compressed
//! with zstd (zip method 93). Each entry is compressed on its own, so one
//! level's metadata is read without decompressing the others. The writer is
//! `meta_writer` (a private sibling module).

use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use zip::{CompressionMethod, ZipArchive};

use super::chunk::ChunkRange;
use crate::error::{Error, Result};
use crate::io::{FileSystem, MapPromise, Mapped, OpenMode};
use crate::verified_once::CheckedSlots;

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
/// Signature of a zip local file header (APPNOTE 4.3.7), little-endian.
const LOCAL_HEADER_SIG: [u8; 4] = [0x50, 0x4b, 0x03, 0x04];
/// Default zstd level (zstd's own default: fast, and smaller than deflate).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// The "zstd level" that stores metadata uncompressed (zip method 0): a
/// read then points into the mapped zip instead of decompressing, at the
/// cost of the space zstd would save.
pub const STORED: i32 = 0;

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
pub(crate) struct MapBytes(Arc<Mapped>);

impl AsRef<[u8]> for MapBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

type Archive = ZipArchive<Cursor<MapBytes>>;

/// A level's metadata as a reader holds it: decompressed (owned), or, for
/// an entry stored uncompressed, the bytes of the mapped zip (checked
/// against the entry's CRC once per map).
pub(crate) enum MetaBytes {
    Owned(Vec<u8>),
    Mapped {
        map: MapBytes,
        start: usize,
        len: usize,
    },
}

impl fmt::Debug for MetaBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaBytes::Owned(v) => write!(f, "MetaBytes::Owned({} bytes)", v.len()),
            MetaBytes::Mapped { start, len, .. } => {
                write!(f, "MetaBytes::Mapped({len} bytes at {start})")
            }
        }
    }
}

impl MetaBytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            MetaBytes::Owned(v) => v,
            MetaBytes::Mapped { map, start, len } => {
                map.as_ref().get(*start..*start + *len).unwrap_or(&[])
            }
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            MetaBytes::Owned(v) => v,
            m @ MetaBytes::Mapped { .. } => m.as_slice().to_vec(),
        }
    }
}

/// Where a level's entry lies in the mapped zip, read once from the
/// directory and its local header (whose name was checked to agree).
#[derive(Clone, Copy)]
struct EntryLoc {
    /// The entry's index in the directory.
    index: u32,
    method: CompressionMethod,
    /// Offset of the entry's data in the file.
    start: u64,
    /// Bytes of data (compressed).
    len: u64,
    /// Bytes once decompressed.
    size: u64,
    crc: u32,
}

/// The entries of a zip by level (`None`: the level has no metadata; an
/// error: its local header names another level), whether every local
/// header names its entry (else a level without an entry may have lost it
/// to a rename), and which stored entries passed their CRC in this map.
struct Entries {
    by_level: Vec<Option<std::result::Result<EntryLoc, Error>>>,
    names_agree: bool,
    stored_checked: CheckedSlots,
}

/// An immutable metadata zip, mapped and parsed on first read.
pub struct MetaChunk {
    range: ChunkRange,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    loaded: OnceCell<(Archive, MapBytes)>,
    /// The entries' levels, once checked (see [`MetaChunk::levels`]).
    levels: OnceCell<Vec<i32>>,
    /// Each level's entry, once read from the directory.
    entries: OnceCell<Entries>,
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
            levels: OnceCell::new(),
            entries: OnceCell::new(),
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
            // A metadata archive is renamed in whole and only ever
            // replaced by another rename or removed.
            let map = MapBytes(Arc::new(file.map(MapPromise::IMMUTABLE)?));
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
    /// A damaged entry is `Corrupted`, and so is every read of a zip whose
    /// directory names an entry twice or outside the chunk; an entry whose
    /// local header does not carry the level it is looked up by (a renamed
    /// entry) is never returned for it.
    pub fn read(&self, level: i32) -> Result<Option<Vec<u8>>> {
        Ok(self.read_held(level)?.map(MetaBytes::into_vec))
    }

    /// [`MetaChunk::read`] for a reader that holds the bytes: an entry
    /// stored uncompressed (zstd level 0) is lent from the map, its CRC
    /// checked the first time it is read through this map.
    pub(crate) fn read_held(&self, level: i32) -> Result<Option<MetaBytes>> {
        let entries = self.entries()?;
        let slot = i64::from(level) - i64::from(self.range.start);
        let loc = match usize::try_from(slot)
            .ok()
            .and_then(|i| entries.by_level.get(i))
        {
            Some(Some(Ok(loc))) => *loc,
            Some(Some(Err(e))) => return Err(e.clone()),
            // "No metadata" only if no entry was renamed away from this
            // level: every local header must carry its entry's name.
            _ if entries.names_agree => return Ok(None),
            _ => {
                return Err(Error::corrupted(
                    &self.path,
                    format!(
                        "level {level}: no entry, and a local header names another level than its entry"
                    ),
                ));
            }
        };
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        match loc.method {
            CompressionMethod::Stored => {
                let map = &self.load()?.1;
                let (start, len) = (loc.start as usize, loc.len as usize);
                let bytes = start
                    .checked_add(len)
                    .and_then(|end| map.as_ref().get(start..end))
                    .filter(|_| loc.size == loc.len)
                    .ok_or_else(|| {
                        bad(format!(
                            "stored entry {}+{} is outside the file",
                            loc.start, loc.len
                        ))
                    })?;
                let i = slot as usize;
                if !entries.stored_checked.is_checked(i) {
                    if crc32fast::hash(bytes) != loc.crc {
                        return Err(bad("entry checksum mismatch".into()));
                    }
                    entries.stored_checked.mark_checked(i);
                }
                Ok(Some(MetaBytes::Mapped {
                    map: map.clone(),
                    start,
                    len,
                }))
            }
            CompressionMethod::Zstd => self
                .read_zstd(level, loc.start, loc.len, loc.size, loc.crc)
                .map(|v| Some(MetaBytes::Owned(v))),
            // Other methods (zips written by other tools) go through the
            // zip crate's decoders.
            _ => self
                .read_generic(&mut self.archive()?, loc.index as usize, level)
                .map(|v| Some(MetaBytes::Owned(v))),
        }
    }

    /// Each level's entry, read once: the levels checked (in range, unique,
    /// entries back to back) and every local header's name compared with
    /// the directory's.
    fn entries(&self) -> Result<&Entries> {
        self.entries.get_or_try_init(|| {
            self.levels_checked()?;
            let mut a = self.archive()?;
            let n = self.range.len();
            let mut by_level: Vec<Option<std::result::Result<EntryLoc, Error>>> =
                std::iter::repeat_with(|| None).take(n).collect();
            let mut names_agree = true;
            for i in 0..a.len() {
                let e = a
                    .by_index_raw(i)
                    .map_err(|e| Error::corrupted(&self.path, format!("entry {i}: {e}")))?;
                // In range and unique: `levels_checked` read every name.
                let level = e
                    .name()
                    .ok()
                    .and_then(|n| n.parse::<i32>().ok())
                    .ok_or_else(|| {
                        Error::corrupted(&self.path, format!("entry {i} is not named by a level"))
                    })?;
                let loc = self
                    .check_local_name(e.header_start(), level)
                    .and_then(|()| {
                        Ok(EntryLoc {
                            index: u32::try_from(i).unwrap_or(u32::MAX),
                            method: e.compression(),
                            start: e.data_start().ok_or_else(|| {
                                Error::corrupted(
                                    &self.path,
                                    format!("entry {i} has no data offset"),
                                )
                            })?,
                            len: e.compressed_size(),
                            size: e.size(),
                            crc: e.crc32(),
                        })
                    });
                names_agree &= loc.is_ok();
                let slot = usize::try_from(i64::from(level) - i64::from(self.range.start)).ok();
                if let Some(s) = slot.and_then(|s| by_level.get_mut(s)) {
                    *s = Some(loc);
                }
            }
            Ok(Entries {
                stored_checked: CheckedSlots::new(n),
                names_agree,
                by_level,
            })
        })
    }

    /// Reads entry `i`, which must hold `level`.
    fn read_index(&self, a: &mut Archive, i: usize, level: i32) -> Result<Vec<u8>> {
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        let raw = {
            let e = a.by_index_raw(i).map_err(|e| bad(e.to_string()))?;
            self.check_local_name(e.header_start(), level)?;
            match (e.compression(), e.data_start()) {
                (CompressionMethod::Zstd, Some(start)) => {
                    Some((start, e.compressed_size(), e.size(), e.crc32()))
                }
                _ => None,
            }
        };
        match raw {
            Some((start, len, size, crc)) => self.read_zstd(level, start, len, size, crc),
            // Other methods (zips written by other tools) go through the
            // zip crate's decoders.
            None => self.read_generic(a, i, level),
        }
    }

    /// Checks that the local header at `at` names `level`: the central
    /// directory and the local header each carry the name, so a damaged
    /// one cannot pass another level's entry off as this one's.
    fn check_local_name(&self, at: u64, level: i32) -> Result<()> {
        let data = self.load()?.1.as_ref();
        let want = level.to_string();
        let name = usize::try_from(at).ok().and_then(|h| {
            let hdr = data.get(h..h.checked_add(30)?)?;
            if hdr[..4] != LOCAL_HEADER_SIG {
                return None;
            }
            let n = usize::from(u16::from_le_bytes([hdr[26], hdr[27]]));
            data.get(h + 30..h + 30 + n)
        });
        if name != Some(want.as_bytes()) {
            return Err(Error::corrupted(
                &self.path,
                format!(
                    "the local header at byte {at} does not name level {level}: {:?}",
                    name.map(String::from_utf8_lossy)
                ),
            ));
        }
        Ok(())
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

    fn read_generic(&self, a: &mut Archive, i: usize, level: i32) -> Result<Vec<u8>> {
        let file_len = self.load()?.1.as_ref().len() as u64;
        let bad = |what: String| Error::corrupted(&self.path, format!("level {level}: {what}"));
        let entry = a.by_index(i).map_err(|e| bad(e.to_string()))?;
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
        Ok(out)
    }

    /// Reads back every entry (names in both headers, sizes, checksums);
    /// returns the number of entries. The first damaged entry is
    /// `Corrupted`.
    pub fn verify(&self) -> Result<u64> {
        let levels = self.levels_checked()?;
        let mut a = self.archive()?;
        for i in 0..a.len() {
            let level = a
                .name_for_index(i)
                .and_then(|n| n.ok()?.parse::<i32>().ok())
                .ok_or_else(|| Error::corrupted(&self.path, format!("entry {i} has no level")))?;
            self.read_index(&mut a, i, level)?;
        }
        Ok(levels.len() as u64)
    }

    /// Every entry that reads back intact and whose two names agree, for
    /// a repair that keeps them (the first, if two claim one level); and
    /// the number of entries the zip lists (0 if its directory is
    /// unreadable).
    pub fn salvage(&self) -> (Vec<(i32, Vec<u8>)>, usize) {
        let Ok(mut a) = self.archive() else {
            return (Vec::new(), 0);
        };
        let total = a.len();
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..total {
            let Some(level) = a
                .name_for_index(i)
                .and_then(|n| n.ok()?.parse::<i32>().ok())
                .filter(|l| self.range.contains(*l))
            else {
                continue;
            };
            if seen.contains_key(&level) {
                continue;
            }
            if let Ok(v) = self.read_index(&mut a, i, level) {
                seen.insert(level, v);
            }
        }
        (seen.into_iter().collect(), total)
    }

    /// The levels that have an entry, checked to be in the chunk's range
    /// and unique (checked once, then remembered).
    pub fn levels(&self) -> Result<Vec<i32>> {
        self.levels_checked().cloned()
    }

    fn levels_checked(&self) -> Result<&Vec<i32>> {
        self.levels.get_or_try_init(|| self.scan_levels())
    }

    fn scan_levels(&self) -> Result<Vec<i32>> {
        let a = self.archive()?;
        // The zip crate keeps one entry per name: an entry renamed to
        // another's name would vanish unnoticed.
        let listed = directory_count(self.load()?.1.as_ref());
        if listed.is_some_and(|n| n != a.len() as u64) {
            return Err(Error::corrupted(
                &self.path,
                format!(
                    "the directory lists {} entries but only {} distinct names",
                    listed.unwrap_or_default(),
                    a.len()
                ),
            ));
        }
        self.check_tiling(&a)?;
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

impl MetaChunk {
    /// The entries, as the writer lays them out, tile the file from byte 0
    /// to the central directory, back to back. A directory whose count or
    /// offset was damaged can otherwise parse as a smaller (even empty)
    /// archive, and a level it lost would read as "no metadata".
    fn check_tiling(&self, a: &Archive) -> Result<()> {
        let data = self.load()?.1.as_ref();
        let mut a = a.clone();
        let mut spans = Vec::with_capacity(a.len());
        for i in 0..a.len() {
            let e = a
                .by_index_raw(i)
                .map_err(|e| Error::corrupted(&self.path, format!("entry {i}: {e}")))?;
            spans.push((e.header_start(), e.compressed_size()));
        }
        spans.sort_unstable();
        let mut at = 0u64;
        for (start, compressed) in spans {
            let next = usize::try_from(start)
                .ok()
                .filter(|_| start == at)
                .and_then(|h| data.get(h..h.checked_add(30)?))
                .filter(|hdr| hdr[..4] == LOCAL_HEADER_SIG)
                .and_then(|hdr| {
                    let names = u64::from(u16::from_le_bytes([hdr[26], hdr[27]]))
                        + u64::from(u16::from_le_bytes([hdr[28], hdr[29]]));
                    start.checked_add(30 + names)?.checked_add(compressed)
                });
            at = next.ok_or_else(|| {
                Error::corrupted(
                    &self.path,
                    format!("the directory's entries do not lie back to back from byte {at}"),
                )
            })?;
        }
        if a.offset() != 0 || a.central_directory_start() != at {
            return Err(Error::corrupted(
                &self.path,
                format!(
                    "the entries end at byte {at}, but the central directory starts at {}",
                    a.central_directory_start()
                ),
            ));
        }
        Ok(())
    }
}

const END_OF_CENTRAL_SIG: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const ZIP64_LOCATOR_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
const ZIP64_END_SIG: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];

fn le_u16(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The number of entries the end-of-central-directory record (or its
/// Zip64 form) announces, if it can be found (APPNOTE 4.3.14-16).
pub(super) fn directory_count(data: &[u8]) -> Option<u64> {
    let last = data.len().checked_sub(22)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    let eocd = (first..=last).rev().find(|&p| {
        data[p..p + 4] == END_OF_CENTRAL_SIG
            && le_u16(data, p + 20).is_some_and(|c| p as u64 + 22 + c == data.len() as u64)
    })?;
    let count = le_u16(data, eocd + 10)?;
    if count != u64::from(u16::MAX) {
        return Some(count);
    }
    let loc = eocd.checked_sub(20)?;
    if data[loc..loc + 4] != ZIP64_LOCATOR_SIG {
        return None;
    }
    let at = usize::try_from(le_u64(data, loc + 8)?).ok()?;
    if data.get(at..at + 4)? != ZIP64_END_SIG {
        return None;
    }
    le_u64(data, at + 32)
}
