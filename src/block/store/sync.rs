//! Read-only handles following a read-write one in another process
//! (Octez's `Block_store.sync`).
//!
//! What a read-only handle sees is a snapshot: the manifest it loaded, the
//! floating stores that manifest lists, and the cemented table it loaded.
//! `sync` moves it forward. The writer's stores reach the RW floating store
//! (its index is replayed); a merge's swap replaces the manifest, and then
//! the cemented table is reloaded *before* the new floating stores are
//! published, so a block that left the floating stores is already cemented
//! when a reader can miss it there: every read sees the old state, the new
//! one, or both (a block in both parts reads the same), never a block lost
//! in between. Stores the writer deletes after a swap stay readable through
//! the files this handle still holds open.

use super::manifest::{self, Manifest};
use super::{BlockStore, Parts, READ_ONLY_OPEN_TRIES, open_floating};
use crate::error::{Error, Result};

impl BlockStore {
    /// Read-only handles: catches up with the read-write handle (another
    /// process's, or this process's). Every block the writer had stored
    /// durably (with `flush`, or followed by a flush) before this call is
    /// readable after it, and every merge it had completed is seen (its
    /// cemented chunks, its floating stores, savepoint, caboose and mode).
    /// Cheap when nothing changed: one `stat` of the manifest and a replay
    /// of the RW store's index from where the last sync stopped. Returns
    /// whether the manifest changed (a merge, a mark or mode written). A
    /// no-op returning `false` on a read-write handle.
    ///
    /// Errors: `Corrupted` (the manifest or a store is damaged), `Io`; the
    /// handle then keeps the state it had.
    pub fn sync(&self) -> Result<bool> {
        let inner = &self.inner;
        if !inner.opts.open.read_only {
            return Ok(false);
        }
        let fs = inner.fs.as_ref();
        let mut seen = inner.synced.lock();
        let path = inner.dir.join(manifest::FILE);
        let stamp = fs.stamp(&path)?;
        if let (Some(before), Some(now)) = (*seen, stamp)
            && before.unchanged_at(&now)
        {
            inner.parts.read().rw.sync()?;
            return Ok(false);
        }
        let mut tries = 0;
        loop {
            let m = Manifest::load(fs, &inner.dir)?
                .ok_or_else(|| Error::corrupted(&path, "the block store's manifest is gone"))?;
            let current = inner.manifest.lock().clone();
            if m.rw == current.rw && m.ros == current.ros {
                // Same stores: marks or mode changed, or new blocks only.
                inner.parts.read().rw.sync()?;
                let changed = m != current;
                *inner.manifest.lock() = m;
                *seen = stamp;
                return Ok(changed);
            }
            // As at open: the stores must have been whole when opened,
            // which an unchanged manifest afterwards proves.
            let loaded = self.load_parts(&m).and_then(|parts| {
                if Manifest::load(fs, &inner.dir)?.as_ref() == Some(&m) {
                    Ok(parts)
                } else {
                    Err(Error::Io("the manifest changed during the sync".into()))
                }
            });
            match loaded {
                Ok(parts) => {
                    // The cemented table first: what left the floating
                    // stores in the merge is cemented by then.
                    inner.cemented.sync()?;
                    inner.set_parts(parts);
                    *inner.manifest.lock() = m;
                    *seen = stamp;
                    return Ok(true);
                }
                // A later merge removed a store this manifest lists: the
                // next manifest names the stores that replaced it.
                Err(e) if tries < READ_ONLY_OPEN_TRIES => {
                    tries += 1;
                    if Manifest::load(fs, &inner.dir)?.as_ref() == Some(&m) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens the floating stores `m` lists, reusing those already open.
    fn load_parts(&self, m: &Manifest) -> Result<Parts> {
        let inner = &self.inner;
        let old = inner.parts.read().clone();
        let open = |id: u64| {
            let dir = super::floating_dir(&inner.dir, id);
            match old.all().find(|f| f.dir() == dir) {
                Some(f) => {
                    f.sync()?;
                    Ok(f.clone())
                }
                None => open_floating(&inner.dir, &inner.opts, id),
            }
        };
        let rw = open(m.rw)?;
        let ros = m
            .ros
            .iter()
            .map(|&id| open(id))
            .collect::<Result<Vec<_>>>()?;
        Ok(Parts { rw, ros })
    }
}
