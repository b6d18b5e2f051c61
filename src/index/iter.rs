//! Snapshot iteration over an index.

use super::FrozenView;
use super::data::DataFile;
use super::hash::{Table, key_hash};
use super::levels::Levels;
use crate::error::Result;

/// Iterator over a snapshot of an index's bindings, as `(key, value)`.
/// Order is unspecified; each key appears once. It holds the data files'
/// mappings and a copy of the unmerged log table, so later writes and
/// merges do not affect it.
pub struct IndexIter {
    levels: Levels,
    frozen: Option<FrozenView>,
    active: Table,
    removable: bool,
    phase: u8,
    pos: u64,
}

impl std::fmt::Debug for IndexIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IndexIter(phase {}, pos {})", self.phase, self.pos)
    }
}

impl IndexIter {
    pub(crate) fn new(
        levels: Levels,
        frozen: Option<FrozenView>,
        active: Table,
        removable: bool,
    ) -> IndexIter {
        IndexIter {
            levels,
            frozen,
            active,
            removable,
            phase: 0,
            pos: 0,
        }
    }

    fn value(&self, v: &[u8]) -> Option<Vec<u8>> {
        if !self.removable {
            return Some(v.to_vec());
        }
        match v.split_first() {
            Some((1, rest)) => Some(rest.to_vec()),
            _ => None,
        }
    }

    fn shadowed_by_frozen(&self, h: u64, k: &[u8]) -> bool {
        self.frozen.as_ref().is_some_and(|f| f.get(h, k).is_some())
    }

    /// Entry `i` of `file` unless a newer binding (log table, frozen, or,
    /// for the base, the delta) shadows it; a tombstone yields nothing.
    fn merged_entry(
        &self,
        file: &DataFile,
        i: u64,
        under_delta: bool,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let (k, v) = file.entry(i);
        let h = file.hash(i);
        if self.active.get(h, k).is_some()
            || self.shadowed_by_frozen(h, k)
            || (under_delta && self.levels.delta.find(h, k).is_some())
        {
            return None;
        }
        self.value(v).map(|v| (k.to_vec(), v))
    }
}

impl Iterator for IndexIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let i = self.pos;
            self.pos += 1;
            match self.phase {
                0 => match self.active.entry(i as usize) {
                    Some((k, v)) => {
                        if let Some(v) = self.value(v) {
                            return Some(Ok((k.to_vec(), v)));
                        }
                    }
                    None => (self.phase, self.pos) = (1, 0),
                },
                1 => match self.frozen.as_ref().and_then(|f| f.entry(i as usize)) {
                    Some((k, v)) => {
                        if self.active.get(key_hash(k), k).is_none() {
                            if let Some(v) = self.value(v) {
                                return Some(Ok((k.to_vec(), v)));
                            }
                        }
                    }
                    None => (self.phase, self.pos) = (2, 0),
                },
                2 | 3 => {
                    let under_delta = self.phase == 3;
                    let file = if under_delta {
                        &self.levels.base
                    } else {
                        &self.levels.delta
                    };
                    if i < file.count() {
                        if let Some(kv) = self.merged_entry(file, i, under_delta) {
                            return Some(Ok(kv));
                        }
                        continue;
                    }
                    (self.phase, self.pos) = (self.phase + 1, 0);
                    if self.phase == 4 {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}
