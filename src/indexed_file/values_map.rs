//! A read-only map of a generation's values file, so a read finds its
//! record in memory instead of a `pread` into a fresh buffer, and checks
//! each record's checksum once per map (see `verified_once`).
//!
//! Why the bytes a map shows never change under it: a generation's values
//! file is append-only. It is cut only at a read-write open (recovery,
//! before any map of this handle) and after a failed append (above every
//! published record, so no index entry names those bytes); a GC writes a
//! new generation and unlinks the old one, which a live map keeps. A read
//! uses a map only for a record it covers whole; the rest is read by
//! `pread` until the unmapped tail is long enough to map again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{self, Decoded, Layout};
use crate::error::Result;
use crate::io::{FileHandle, MapPromise, Mapped};
use crate::published::{Held, Published};
use crate::verified_once::PublishedMap;

/// Map again once this many bytes were appended past the map: a fresh map
/// costs a `mmap` (its checks carried over from the old one), a `pread` of
/// a record a copy.
const REMAP_BYTES: u64 = 1 << 20;

/// One slot per KiB of values: two bytes of memory per KiB (0.2%), one
/// check per map for values of a KiB or more; shorter values sharing a
/// granule are checked again now and then, never less.
const GRANULE_SHIFT: u32 = 10;

/// A map of a values file and which of its records were checked.
pub(crate) struct ValuesMap {
    map: PublishedMap,
    layout: Layout,
    path: PathBuf,
}

impl ValuesMap {
    /// A map of `bytes` whose first `published` bytes hold published
    /// records, none checked yet; records at or past `written_from` are
    /// this handle's appends.
    fn new(
        bytes: Mapped,
        published: u64,
        layout: Layout,
        path: &Path,
        written_from: u64,
    ) -> ValuesMap {
        ValuesMap {
            map: PublishedMap::new(bytes, published, GRANULE_SHIFT, written_from),
            layout,
            path: path.to_path_buf(),
        }
    }

    /// A map of the same append-only file grown to `bytes`, keeping this
    /// one's checks.
    fn renewed(&self, bytes: Mapped, published: u64) -> ValuesMap {
        ValuesMap {
            map: self.map.renewed(bytes, published),
            layout: self.layout,
            path: self.path.clone(),
        }
    }

    /// Bytes of published records this map serves.
    fn published(&self) -> u64 {
        self.map.bytes().len() as u64
    }

    /// The mapped file, for errors.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where `part`, a slice this map returned, starts in the map, and its
    /// length: what a reader keeps to show it again.
    pub(crate) fn span_of(&self, part: &[u8]) -> (usize, usize) {
        let base = self.map.bytes().as_ptr() as usize;
        ((part.as_ptr() as usize).wrapping_sub(base), part.len())
    }

    /// The bytes of a span [`ValuesMap::span_of`] gave.
    pub(crate) fn span(&self, (start, len): (usize, usize)) -> Option<&[u8]> {
        self.map.bytes().get(start..start.checked_add(len)?)
    }

    /// The record at `offset`, its checksum checked the first time this
    /// map returns it; `None` if the map does not hold all of it.
    pub(crate) fn record(&self, offset: u64) -> Option<Decoded<'_>> {
        let at = usize::try_from(offset).ok()?;
        let rest = self.map.bytes().get(at..)?;
        let lengths_only = format::decode_record_checked_before(rest, &self.layout);
        let total = match lengths_only {
            Decoded::Record(_, total) => total,
            // Runs past the map (perhaps not past the file).
            Decoded::Incomplete(_) => return None,
            bad => return Some(bad),
        };
        if self.map.is_checked(at) {
            return Some(lengths_only);
        }
        let decoded = format::decode_record(&rest[..total], &self.layout);
        if matches!(decoded, Decoded::Record(..)) {
            self.map.mark_checked(at);
        }
        Some(decoded)
    }
}

/// The map a generation's reads use, renewed as the file grows.
pub(crate) struct ValuesMaps {
    current: Published<ValuesMap>,
}

impl ValuesMaps {
    /// A map of `file`, whose records end at `published`; records at or
    /// past `written_from` will be this handle's appends (`u64::MAX` for a
    /// read-only handle).
    pub(crate) fn new(
        file: &dyn FileHandle,
        published: u64,
        layout: Layout,
        written_from: u64,
    ) -> Result<ValuesMaps> {
        let bytes = file.map(MapPromise::APPEND_ONLY)?;
        let map = ValuesMap::new(bytes, published, layout, file.path(), written_from);
        Ok(ValuesMaps {
            current: Published::new(Arc::new(map)),
        })
    }

    /// The map to read the record at `offset` from (of a file whose
    /// records end at `bound`), renewed if the file outgrew it by
    /// [`REMAP_BYTES`]; `None` if the record starts in a tail still
    /// unmapped. The record may still run past the map
    /// ([`ValuesMap::record`] says so with `None`).
    ///
    /// The map is the reader's copy in `held` (module `published`),
    /// renewed from the current one when that changed.
    pub(crate) fn map_for<'h>(
        &self,
        file: &dyn FileHandle,
        offset: u64,
        bound: u64,
        held: &'h mut Option<Held<ValuesMap>>,
    ) -> Result<Option<&'h ValuesMap>> {
        let published = self.current.current(held).published();
        if offset >= published {
            if bound.saturating_sub(published) < REMAP_BYTES {
                return Ok(None);
            }
            let old = self.current.load();
            let fresh = Arc::new(old.renewed(file.map(MapPromise::APPEND_ONLY)?, bound));
            self.current.replace(fresh);
        }
        let map = self.current.current(held);
        Ok((offset < map.published()).then_some(&**map))
    }
}
