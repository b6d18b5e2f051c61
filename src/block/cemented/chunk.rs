//! Chunk files. A chunk named `<start>_<end>` holds the blocks of levels
//! `start..=end` (inclusive), without metadata, as
//! `n x offset u64 | n x block record` with `n = end - start + 1`; offsets are
//! absolute and big-endian. A block is read by level with one offset lookup
//! and one slice of the file's memory map: never a scan.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;

use crate::block::record;
use crate::block::{Block, BlockRef, Hash};
use crate::error::{Error, Result};
use crate::io::{FileSystem, Mapped, OpenMode};

/// Bytes of one offset-table entry.
pub const OFFSET_SIZE: usize = 8;

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
            .get_or_try_init(|| self.fs.open(&self.path, OpenMode::Read)?.map())?)
    }

    /// Checks the offset table's shape (first offset right after the table,
    /// offsets increasing, the last record ending at the end of the file),
    /// without reading the records: enough to detect a truncated file.
    pub fn check_shape(&self) -> Result<()> {
        let n = self.range.len();
        let bytes = self.bytes()?;
        let table = n
            .checked_mul(OFFSET_SIZE)
            .filter(|&t| t <= bytes.len())
            .ok_or_else(|| {
                self.corrupted(format!("{} bytes cannot hold {n} offsets", bytes.len()))
            })?;
        let mut prev = table as u64;
        for i in 0..n {
            let off = offset_at(bytes, i);
            let in_order = if i == 0 { off == prev } else { off > prev };
            if !in_order || off > bytes.len() as u64 {
                return Err(self.corrupted(format!("offset {i} is {off}")));
            }
            prev = off;
        }
        let last = prev as usize;
        if last + 4 > bytes.len() {
            return Err(self.corrupted("last record is truncated"));
        }
        let want = record::record_len([
            bytes[last],
            bytes[last + 1],
            bytes[last + 2],
            bytes[last + 3],
        ]);
        if last + want != bytes.len() {
            return Err(self.corrupted(format!(
                "last record ends at {} but the file has {} bytes",
                last + want,
                bytes.len()
            )));
        }
        Ok(())
    }

    /// The raw record of `level` (which must be in the chunk's range).
    fn raw(&self, level: i32) -> Result<&[u8]> {
        let n = self.range.len();
        let i = (i64::from(level) - i64::from(self.range.start)) as usize;
        let bytes = self.bytes()?;
        let table = n * OFFSET_SIZE;
        if bytes.len() < table {
            return Err(self.corrupted("file shorter than its offset table"));
        }
        let from = offset_at(bytes, i);
        let to = if i + 1 < n {
            offset_at(bytes, i + 1)
        } else {
            bytes.len() as u64
        };
        if from < table as u64 || from > to || to > bytes.len() as u64 {
            return Err(self.corrupted(format!(
                "offsets {from}..{to} of level {level} are out of bounds"
            )));
        }
        Ok(&bytes[from as usize..to as usize])
    }

    /// Parses the record of `level`, checking its CRC and its level.
    pub fn parse(&self, level: i32) -> Result<BlockRef<'_>> {
        let raw = self.raw(level)?;
        let b =
            record::parse(raw, false).map_err(|e| self.corrupted(format!("level {level}: {e}")))?;
        if b.level != level {
            return Err(self.corrupted(format!("record at level {level} holds level {}", b.level)));
        }
        Ok(b)
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

fn offset_at(bytes: &[u8], i: usize) -> u64 {
    let at = i * OFFSET_SIZE;
    let mut b = [0u8; OFFSET_SIZE];
    b.copy_from_slice(&bytes[at..at + OFFSET_SIZE]);
    u64::from_be_bytes(b)
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
