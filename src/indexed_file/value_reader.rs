//! Borrowed value reads: a [`ValueReader`] holds what the last value read
//! through it points into (a map of the generation's values file, or, for
//! a record no map covers yet, its own copy), so
//! [`IndexedFile::read_view`](super::IndexedFile::read_view) returns the
//! value and header without a copy.
//!
//! What keeps a view valid: the reader owns a reference to the map, not to
//! the store. A GC that switches generations and unlinks the old values
//! file, or closing the store, drops the store's references; the mapping
//! lives until the reader lets go of it (its next read,
//! [`ValueReader::release`], or its drop). The values file is never cut or
//! rewritten below a published record while mapped (see `values_map`), and
//! each record's checksum is checked the first time a map returns it,
//! before any view of it is given.
//!
//! The reader keeps the map between reads, so that the next read of the
//! same generation takes no lock and touches no reference count for it
//! (module `published`): it lets go of it when it reads from another
//! generation or store, and on [`ValueReader::release`] or drop; until
//! then a GC'd generation's values file stays mapped.

use super::values_map::ValuesMap;
use crate::error::{Error, Result};
use crate::published;

/// Holds the bytes the last value read through it points into. One reader
/// per thread: a read takes `&mut`, which ends the views of the previous
/// one.
#[derive(Default)]
pub struct ValueReader {
    held: Held,
    /// The map of the last generation read from; `Held::Map` points into it.
    map: Option<published::Held<ValuesMap>>,
}

#[derive(Default)]
enum Held {
    #[default]
    Nothing,
    /// A value and header in the reader's map, as spans of it (checked
    /// when the reader took them).
    Map {
        value: (usize, usize),
        header: (usize, usize),
    },
    /// A value and header read by `pread` from a tail no map covers yet.
    Owned { value: Vec<u8>, header: Vec<u8> },
}

impl std::fmt::Debug for ValueReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.held {
            Held::Nothing => "nothing",
            Held::Map { .. } => "a mapped record",
            Held::Owned { .. } => "a copied record",
        };
        write!(f, "ValueReader(holding {what})")
    }
}

impl ValueReader {
    /// A reader holding nothing.
    pub fn new() -> ValueReader {
        ValueReader::default()
    }

    /// Lets go of what the last read pointed into, ending its views.
    pub fn release(&mut self) {
        self.held = Held::Nothing;
        self.map = None;
    }

    /// Ends the last read's views, keeping the map for the next read.
    pub(super) fn start(&mut self) {
        self.held = Held::Nothing;
    }

    /// Where the reader keeps the map reads use.
    pub(super) fn map_slot(&mut self) -> &mut Option<published::Held<ValuesMap>> {
        &mut self.map
    }

    fn held_map(&self) -> Option<&ValuesMap> {
        self.map.as_ref().map(|m| &**m.value())
    }

    /// Whether the last value read is borrowed from a map of the values
    /// file (no copy made); false for a value read into the reader's own
    /// buffer and when the reader holds nothing.
    pub fn borrows_map(&self) -> bool {
        matches!(self.held, Held::Map { .. })
    }

    /// The value and header of the last successful read, borrowed from
    /// what this reader holds; `None` if it holds nothing.
    pub fn value(&self) -> Option<(&[u8], &[u8])> {
        match &self.held {
            Held::Nothing => None,
            // Spans of a map whose bytes do not change.
            Held::Map { value, header } => {
                let map = self.held_map()?;
                Some((map.span(*value)?, map.span(*header)?))
            }
            Held::Owned { value, header } => Some((value, header)),
        }
    }

    /// The value and header of the last read, or the error that a record
    /// no longer decoding in its map would be (it cannot, see above).
    pub(super) fn view(&self) -> Result<(&[u8], &[u8])> {
        self.value().ok_or_else(|| match &self.held {
            Held::Map { value, .. } => match self.held_map() {
                Some(map) => Error::corrupted(
                    map.path(),
                    format!("the value at offset {} is no longer in its map", value.0),
                ),
                None => Error::Inconsistent("a mapped value read without its map".into()),
            },
            _ => Error::invalid("the value reader holds no value"),
        })
    }

    /// Holds a value and header of the map in [`ValueReader::map_slot`],
    /// as spans of it ([`ValuesMap::span_of`]).
    pub(super) fn hold_map(&mut self, value: (usize, usize), header: (usize, usize)) {
        self.held = Held::Map { value, header };
    }

    pub(super) fn hold_owned(&mut self, value: Vec<u8>, header: Vec<u8>) {
        self.held = Held::Owned { value, header };
    }
}
