//! The chunk table and the metadata-chunk table: what is visible to readers.
//! A `Tables` value is immutable; writers build a new one and swap it in, so
//! a reader sees a chunk either whole (file, metadata, index entries in
//! place) or not at all.

use std::sync::Arc;

use super::chunk::{Chunk, ChunkRange};
use super::metadata::MetaChunk;

/// Chunks and metadata zips, each sorted by start level, and the chunks
/// whose zip GC dropped (sorted).
#[derive(Debug, Default, Clone)]
pub struct Tables {
    pub(crate) chunks: Vec<Arc<Chunk>>,
    pub(crate) meta: Vec<Arc<MetaChunk>>,
    pub(crate) dropped_meta: Vec<ChunkRange>,
}

/// Index of the entry whose range contains `level`, in a list sorted by start.
fn find_in<T>(items: &[T], range: impl Fn(&T) -> ChunkRange, level: i32) -> Option<usize> {
    let i = items.partition_point(|c| range(c).start <= level);
    let i = i.checked_sub(1)?;
    range(&items[i]).contains(level).then_some(i)
}

impl Tables {
    /// The chunk holding `level`.
    pub fn chunk(&self, level: i32) -> Option<&Arc<Chunk>> {
        find_in(&self.chunks, |c| c.range(), level).map(|i| &self.chunks[i])
    }

    /// The metadata zip covering `level`.
    pub fn meta(&self, level: i32) -> Option<&Arc<MetaChunk>> {
        find_in(&self.meta, |m| m.range(), level).map(|i| &self.meta[i])
    }

    /// True if GC dropped the zip of chunk `r`.
    pub fn meta_dropped(&self, r: ChunkRange) -> bool {
        self.dropped_meta.binary_search(&r).is_ok()
    }

    /// Chunk ranges, ascending.
    pub fn ranges(&self) -> Vec<ChunkRange> {
        self.chunks.iter().map(|c| c.range()).collect()
    }

    /// Metadata ranges, ascending.
    pub fn meta_ranges(&self) -> Vec<ChunkRange> {
        self.meta.iter().map(|m| m.range()).collect()
    }

    /// A copy with `chunk` (and `meta`) inserted in order.
    pub fn with_chunk(&self, chunk: Arc<Chunk>, meta: Option<Arc<MetaChunk>>) -> Tables {
        let mut t = self.clone();
        let at = t.chunks.partition_point(|c| c.range() < chunk.range());
        t.chunks.insert(at, chunk);
        if let Some(m) = meta {
            let at = t.meta.partition_point(|x| x.range() < m.range());
            t.meta.insert(at, m);
        }
        t
    }

    /// The lowest level stored.
    pub fn lowest(&self) -> Option<i32> {
        self.chunks.first().map(|c| c.range().start)
    }

    /// The highest level stored.
    pub fn highest(&self) -> Option<i32> {
        self.chunks.last().map(|c| c.range().end)
    }

    /// True if some chunk overlaps `r`.
    pub fn overlaps(&self, r: ChunkRange) -> bool {
        self.chunks
            .iter()
            .any(|c| c.range().start <= r.end && r.start <= c.range().end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_at_boundaries() {
        let ranges = [
            ChunkRange::new(0, 0).unwrap(),
            ChunkRange::new(1, 4096).unwrap(),
            ChunkRange::new(4097, 4100).unwrap(),
            ChunkRange::new(5000, 5001).unwrap(),
        ];
        let id = |r: &ChunkRange| *r;
        assert_eq!(find_in(&ranges, id, -1), None);
        assert_eq!(find_in(&ranges, id, 0), Some(0));
        assert_eq!(find_in(&ranges, id, 1), Some(1));
        assert_eq!(find_in(&ranges, id, 4096), Some(1));
        assert_eq!(find_in(&ranges, id, 4097), Some(2));
        assert_eq!(find_in(&ranges, id, 4100), Some(2));
        assert_eq!(find_in(&ranges, id, 4101), None);
        assert_eq!(find_in(&ranges, id, 5001), Some(3));
        assert_eq!(find_in(&ranges, id, 5002), None);
        assert_eq!(find_in::<ChunkRange>(&[], id, 0), None);
    }
}
