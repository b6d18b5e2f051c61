//! Chunk files. A chunk named `<start>_<end>` holds the blocks of levels
//! `start..=end` (inclusive), without metadata, as
//! `n x offset u64 | n x block record` with `n = end - start + 1`; offsets are
//! absolute and big-endian. A block is read by level with one offset lookup
//! and one slice of the file's memory map: never a scan.
//!
//! The top bit of the first offset ([`HAS_METADATA`]) says that the chunk
//! was written with a metadata zip, so a zip that goes missing is damage,
//! not "no metadata" (GC marks the zips it drops, see
//! [`super::metadata::dropped_name`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;

use crate::block::record;
use crate::block::{Block, BlockRef, Hash};
use crate::error::{Error, Result};
use crate::io::{FileSystem, MapPromise, Mapped, OpenMode};
use crate::verified_once::CheckedSlots;

/// Bytes of one offset-table entry.
pub const OFFSET_SIZE: usize = 8;
/// Flag in the first offset: the chunk has a metadata zip.
pub const HAS_METADATA: u64 = 1 << 63;

/// The levels of one chunk, inclusive on both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRange {
    /// First level.
    pub start: i32,
    /// Last level (inclusive).
    pub end: i32,
}

impl ChunkRange {
    /// A range, checked to be non-empty.
    pub fn new(start: i32, end: i32) -> Result<ChunkRange> {
        if start > end {
            return Err(Error::invalid(format!(
                "chunk start level {start} is above its end level {end}"
            )));
        }
        Ok(ChunkRange { start, end })
    }

    /// Number of levels (blocks) in the range.
    pub fn len(&self) -> usize {
        (i64::from(self.end) - i64::from(self.start) + 1) as usize
    }

    /// Always false: a range holds at least one level.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// True if `level` is in the range.
    pub fn contains(&self, level: i32) -> bool {
        self.start <= level && level <= self.end
    }

    /// The file name `<start>_<end>`.
    pub fn file_name(&self) -> String {
        format!("{}_{}", self.start, self.end)
    }

    /// Parses a file name made by [`ChunkRange::file_name`]; other names
    /// (locks, indexes, temporary files) give `None`.
    pub fn parse(name: &str) -> Option<ChunkRange> {
        let (s, e) = name.split_once('_')?;
        let start: i32 = s.parse().ok()?;
        let end: i32 = e.parse().ok()?;
        let r = ChunkRange::new(start, end).ok()?;
        // Reject spellings that would not round-trip ("+1_2", "01_2").
        (r.file_name() == name).then_some(r)
    }
}

impl fmt::Display for ChunkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.start, self.end)
    }
}

/// An immutable chunk file, mapped on first read. The file descriptor is
/// closed once mapped, so a store of thousands of chunks holds no
/// descriptor per chunk; the mapping stays valid after GC unlinks the file.
pub struct Chunk {
    range: ChunkRange,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    map: OnceCell<Mapped>,
    /// Which levels' records passed their checksum in `map`.
    checked: OnceCell<CheckedSlots>,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({})", self.path.display())
    }
}

impl Chunk {
    /// The chunk file `dir/<start>_<end>` (opened on first read).
    pub fn new(fs: Arc<dyn FileSystem>, dir: &Path, range: ChunkRange) -> Chunk {
        Chunk {
            range,
            path: dir.join(range.file_name()),
            fs,
            map: OnceCell::new(),
            checked: OnceCell::new(),
        }
    }

    /// The chunk's levels.
    pub fn range(&self) -> ChunkRange {
        self.range
    }

    /// The chunk file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bytes(&self) -> Result<&[u8]> {
        Ok(self
            .map
            // A chunk file is renamed in whole and never written again.
            .get_or_try_init(|| {
                self.fs
                    .open(&self.path, OpenMode::Read)?
                    .map(MapPromise::IMMUTABLE)
            })?)
    }

    /// Checks the offset table's shape (first offset right after the table,
    /// offsets increasing, the last record ending at the end of the file),
    /// without reading the records: enough to detect a truncated file. The
    /// range is first bounded by the file's size (each level takes an
    /// offset and a record of at least [`min_level_bytes`] bytes), so a
    /// damaged or planted name never drives a long loop.
    pub fn check_shape(&self) -> Result<()> {
        let n = self.range.len();
        let bytes = self.bytes()?;
        let len = bytes.len();
        let need = (n as u64).saturating_mul(min_level_bytes() as u64);
        if need > len as u64 {
            return Err(self.corrupted(format!(
                "{n} levels need at least {need} bytes, the file ends at byte {len}"
            )));
        }
        let table = n * OFFSET_SIZE;
        let mut prev = table as u64;
        for i in 0..n {
            let off = offset_at(bytes, i);
            let in_order = if i == 0 { off == prev } else { off > prev };
            if !in_order || off > len as u64 {
                return Err(self.corrupted(format!(
                    "offset entry {i} at byte {} is {off} (previous {prev}, file of {len} bytes)",
                    i * OFFSET_SIZE
                )));
            }
            prev = off;
        }
        let last = prev as usize;
        if last + 4 > len {
            return Err(self.corrupted(format!(
                "last record at byte {last} is truncated (file of {len} bytes)"
            )));
        }
        let want = record::record_len([
            bytes[last],
            bytes[last + 1],
            bytes[last + 2],
            bytes[last + 3],
        ]);
        if last.checked_add(want) != Some(len) {
            return Err(self.corrupted(format!(
                "last record at byte {last} is {want} bytes long but the file ends at byte {len}"
            )));
        }
        Ok(())
    }

    /// Checks the shape, then every record (CRC, level), even those a read
    /// already checked: the whole chunk read back. Returns the hash of each
    /// level, in order.
    pub fn verify(&self) -> Result<Vec<Hash>> {
        self.check_shape()?;
        (self.range.start..=self.range.end)
            .map(|l| Ok(*self.parse_rechecked(l)?.hash))
            .collect()
    }

    /// The raw record of `level` (which must be in the chunk's range).
    fn raw(&self, level: i32) -> Result<(u64, &[u8])> {
        if !self.range.contains(level) {
            return Err(Error::invalid(format!(
                "level {level} is not in chunk {}",
                self.range
            )));
        }
        let n = self.range.len();
        let i = (i64::from(level) - i64::from(self.range.start)) as usize;
        let bytes = self.bytes()?;
        let table = n * OFFSET_SIZE;
        if bytes.len() < table {
            return Err(self.corrupted(format!(
                "the file ends at byte {} inside its offset table of {table} bytes",
                bytes.len()
            )));
        }
        let from = offset_at(bytes, i);
        let to = if i + 1 < n {
            offset_at(bytes, i + 1)
        } else {
            bytes.len() as u64
        };
        if from < table as u64 || from > to || to > bytes.len() as u64 {
            return Err(self.corrupted(format!(
                "offset entry {i} at byte {} gives {from}..{to} for level {level}, outside {table}..{}",
                i * OFFSET_SIZE,
                bytes.len()
            )));
        }
        Ok((from, &bytes[from as usize..to as usize]))
    }

    /// Parses the record of `level`, checking its CRC and its level.
    pub fn parse(&self, level: i32) -> Result<BlockRef<'_>> {
        self.parse_with_context(level).map(|(b, _)| b)
    }

    /// [`Chunk::parse`], checking the record's checksum even if a read
    /// through this map already did (checks and repairs).
    pub fn parse_rechecked(&self, level: i32) -> Result<BlockRef<'_>> {
        self.parse_record(level, Recheck::Always).map(|(b, _)| b)
    }

    /// [`Chunk::parse`], with the block's resulting context hash.
    pub fn parse_with_context(&self, level: i32) -> Result<(BlockRef<'_>, Hash)> {
        self.parse_record(level, Recheck::OncePerMap)
    }

    fn parse_record(&self, level: i32, recheck: Recheck) -> Result<(BlockRef<'_>, Hash)> {
        let (at, raw) = self.raw(level)?;
        // `raw` succeeded: the level is in the range.
        let i = (i64::from(level) - i64::from(self.range.start)) as usize;
        let checked = self.checked.get_or_init(|| {
            // At most one slot per record the file can hold, so a damaged
            // or planted range never sizes this.
            let fits = self.bytes().map_or(0, |b| b.len() / min_level_bytes());
            CheckedSlots::new(self.range.len().min(fits))
        });
        let parsed = if recheck == Recheck::OncePerMap && checked.is_checked(i) {
            record::parse_checked_before_with_context(raw, false)
        } else {
            record::parse_with_context(raw, false)
        };
        let (b, context) = parsed
            .map_err(|e| self.corrupted(format!("record of level {level} at byte {at}: {e}")))?;
        if b.level != level {
            return Err(self.corrupted(format!(
                "record of level {level} at byte {at} holds level {}",
                b.level
            )));
        }
        checked.mark_checked(i);
        Ok((b, context))
    }

    /// True if the chunk was written with a metadata zip (the flag of its
    /// first offset). `Corrupted` if the file is shorter than one offset.
    pub fn has_metadata(&self) -> Result<bool> {
        let bytes = self.bytes()?;
        if bytes.len() < OFFSET_SIZE {
            return Err(self.corrupted(format!(
                "the file ends at byte {} inside its first offset",
                bytes.len()
            )));
        }
        Ok(raw_offset_at(bytes, 0) & HAS_METADATA != 0)
    }

    /// True if the file is readable and holds the whole offset table (so
    /// a loop over the range's levels is bounded by its size).
    pub fn table_fits(&self) -> bool {
        let need = (self.range.len() as u64).saturating_mul(OFFSET_SIZE as u64);
        self.bytes().is_ok_and(|b| need <= b.len() as u64)
    }

    /// For a repair: the record of `level` if it is intact, even when the
    /// file around it is not (a damaged neighbour, bytes appended after
    /// it): the bytes its offset points to must start with a whole record
    /// that passes its checksum and holds `level`. `None` when the offset
    /// table does not fit in the file (nothing is read).
    pub fn intact_record(&self, level: i32) -> Option<&[u8]> {
        if !self.table_fits() || !self.range.contains(level) {
            return None;
        }
        let bytes = self.bytes().ok()?;
        let i = (i64::from(level) - i64::from(self.range.start)) as usize;
        let from = usize::try_from(offset_at(bytes, i)).ok()?;
        let rest = bytes.get(from..)?;
        match record::scan(rest) {
            record::Scan::Record(len) => {
                let raw = &rest[..len];
                let b = record::parse(raw, false).ok()?;
                (b.level == level && from >= self.range.len() * OFFSET_SIZE).then_some(raw)
            }
            _ => None,
        }
    }

    /// The block at `level`, without metadata.
    pub fn read(&self, level: i32) -> Result<Block> {
        Ok(self.parse(level)?.to_owned())
    }

    /// The hash of the block at `level` (read from the record, CRC-checked).
    pub fn hash(&self, level: i32) -> Result<Hash> {
        Ok(*self.parse(level)?.hash)
    }

    fn corrupted(&self, detail: impl fmt::Display) -> Error {
        Error::corrupted(&self.path, detail)
    }
}

/// Whether a parse checks a record's checksum again when this map already
/// checked it (see `verified_once`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recheck {
    /// Reads: once per map is enough.
    OncePerMap,
    /// `verify`, a check or a repair reading the chunk back: every time.
    Always,
}

/// The fewest bytes one level takes in a chunk file: its offset and the
/// record of a block with empty contents.
pub fn min_level_bytes() -> usize {
    let h = [0u8; crate::block::HASH_SIZE];
    let empty = BlockRef {
        hash: &h,
        level: 0,
        predecessor: &h,
        contents: &[],
        metadata: None,
    };
    OFFSET_SIZE + empty.encoded_len(false)
}

fn raw_offset_at(bytes: &[u8], i: usize) -> u64 {
    let at = i * OFFSET_SIZE;
    let mut b = [0u8; OFFSET_SIZE];
    b.copy_from_slice(&bytes[at..at + OFFSET_SIZE]);
    u64::from_be_bytes(b)
}

fn offset_at(bytes: &[u8], i: usize) -> u64 {
    raw_offset_at(bytes, i) & !HAS_METADATA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_others() {
        let r = ChunkRange::new(0, 4095).unwrap();
        assert_eq!(r.file_name(), "0_4095");
        assert_eq!(ChunkRange::parse("0_4095"), Some(r));
        assert_eq!(r.len(), 4096);
        assert_eq!(
            ChunkRange::parse("-5_-1"),
            Some(ChunkRange { start: -5, end: -1 })
        );
        for bad in [
            "lock",
            "01_2",
            "3_2",
            "1_2.tzs-tmp",
            "_",
            "1_",
            "a_b",
            "+1_2",
        ] {
            assert_eq!(ChunkRange::parse(bad), None, "{bad}");
        }
        assert!(ChunkRange::new(2, 1).is_err());
    }
}
