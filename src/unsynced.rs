//! Index entries of appended records whose bytes are not yet fsynced.
//!
//! A store that appends records to a data file and indexes them (floating
//! blocks, indexed-file values) hands an entry to its index only once the
//! record's bytes are durable. The index may write its log or merge, and so
//! fsync an entry, at any moment; an entry made durable before the bytes it
//! points to would survive a power cut that the bytes do not, and a
//! read-write open would have to take an acknowledged-looking entry for
//! damage. Keeping the entries here until the file's fsync means every
//! index entry on disk points to durable bytes: an index entry whose block
//! is missing or invalid is damage, never a torn tail.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;
use std::borrow::Borrow;
use std::hash::Hash;

/// Records appended since the data file's last fsync, in append order,
/// with their index entries (key -> value). Shared with iterators, which
/// tell appended records from torn bytes.
#[derive(Debug)]
pub(crate) struct Unsynced<K, V>(Arc<Shared<K, V>>);

#[derive(Debug)]
struct Shared<K, V> {
    entries: RwLock<Entries<K, V>>,
    /// `entries.order.len()`, stored under the write lock after each
    /// change: a lookup finds an empty set (the common case: reads of
    /// flushed data) with one load, without the lock, whose atomic writes
    /// reader threads would share. Sound because `publish` hands the
    /// entries to the index before it empties the set: a reader that sees
    /// the empty set (acquire) sees the index holding them.
    len: AtomicUsize,
}

impl<K, V> Clone for Unsynced<K, V> {
    fn clone(&self) -> Self {
        Unsynced(self.0.clone())
    }
}

impl<K, V> Default for Unsynced<K, V> {
    fn default() -> Self {
        Unsynced(Arc::new(Shared {
            entries: RwLock::new(Entries {
                order: Vec::new(),
                at: HashMap::new(),
            }),
            len: AtomicUsize::new(0),
        }))
    }
}

#[derive(Debug)]
struct Entries<K, V> {
    /// Append order: the index receives them in it, so an index log cut by
    /// a crash keeps a prefix of the appends, as recovery expects.
    order: Vec<(K, V)>,
    /// key -> position of its latest entry in `order`.
    at: HashMap<K, usize>,
}

/// Unsynced appends after which the file is fsynced and they move to the
/// index, so memory stays bounded whatever the caller's flush pattern (a
/// merge copying a cycle without flushing pays one extra fsync per 4,096
/// blocks).
pub(crate) const MAX_UNSYNCED: usize = 4096;

impl<K: Eq + Hash + Clone, V: Clone> Unsynced<K, V> {
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut e = self.0.entries.write();
        let i = e.order.len();
        e.order.push((key.clone(), value));
        e.at.insert(key, i);
        self.0.len.store(e.order.len(), Ordering::Release);
    }

    /// The latest value of `key`, if it is here.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if self.0.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let e = self.0.entries.read();
        e.at.get(key).map(|&i| e.order[i].1.clone())
    }

    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.0.len.load(Ordering::Acquire) != 0 && self.0.entries.read().at.contains_key(key)
    }

    /// The distinct keys, for counting those the index does not hold yet.
    pub(crate) fn keys(&self) -> Vec<K> {
        self.0.entries.read().at.keys().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len.load(Ordering::Acquire)
    }

    /// Hands every entry to `add` (the index), then forgets them: readers
    /// find each block here or in the index throughout. The caller has
    /// just fsynced the file and holds the writer lock.
    pub(crate) fn publish(
        &self,
        mut add: impl FnMut(&K, &V) -> crate::Result<()>,
    ) -> crate::Result<()> {
        // Appends wait for the writer lock the caller holds, so nothing is
        // added meanwhile: clearing after the copy drops only what `add` took.
        let entries = self.0.entries.read().order.clone();
        for (h, v) in &entries {
            add(h, v)?;
        }
        let mut e = self.0.entries.write();
        e.order.clear();
        e.at.clear();
        self.0.len.store(0, Ordering::Release);
        Ok(())
    }
}
