//! Index values of appended blocks whose bytes are not yet fsynced.
//!
//! A floating store hands an appended block to its index only once the
//! block's bytes are durable. The index may write its log or merge, and so
//! fsync an entry, at any moment; an entry made durable before the bytes it
//! points to would survive a power cut that the bytes do not, and a
//! read-write open would have to take an acknowledged-looking entry for
//! damage. Keeping the entries here until the file's fsync means every
//! index entry on disk points to durable bytes: an index entry whose block
//! is missing or invalid is damage, never a torn tail.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::Hash;

/// Blocks appended since the file's last fsync, in append order, with
/// their index values. Shared with the iterators, which tell appended
/// entries from torn bytes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Unsynced<const N: usize>(Arc<RwLock<Entries<N>>>);

#[derive(Debug, Default)]
struct Entries<const N: usize> {
    /// Append order: the index receives them in it, so an index log cut by
    /// a crash keeps a prefix of the appends, as recovery expects.
    order: Vec<(Hash, [u8; N])>,
    /// hash -> position in `order`.
    at: HashMap<Hash, usize>,
}

/// Unsynced appends after which the file is fsynced and they move to the
/// index, so memory stays bounded whatever the caller's flush pattern (a
/// merge copying a cycle without flushing pays one extra fsync per 4,096
/// blocks).
pub(crate) const MAX_UNSYNCED: usize = 4096;

impl<const N: usize> Unsynced<N> {
    pub(crate) fn insert(&self, hash: Hash, value: [u8; N]) {
        let mut e = self.0.write();
        let i = e.order.len();
        e.order.push((hash, value));
        e.at.insert(hash, i);
    }

    /// Copies the value of `hash` into `out` if it is here.
    pub(crate) fn find_into(&self, hash: &Hash, out: &mut [u8; N]) -> bool {
        let e = self.0.read();
        match e.at.get(hash) {
            Some(&i) => {
                *out = e.order[i].1;
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.0.read().at.contains_key(hash)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().order.len()
    }

    /// Hands every entry to `add` (the index), then forgets them: readers
    /// find each block here or in the index throughout. The caller has
    /// just fsynced the file and holds the writer lock.
    pub(crate) fn publish(
        &self,
        mut add: impl FnMut(&Hash, &[u8; N]) -> crate::Result<()>,
    ) -> crate::Result<()> {
        // Appends wait for the writer lock the caller holds, so nothing is
        // added meanwhile: clearing after the copy drops only what `add` took.
        let entries = self.0.read().order.clone();
        for (h, v) in &entries {
            add(h, v)?;
        }
        let mut e = self.0.write();
        e.order.clear();
        e.at.clear();
        Ok(())
    }
}
