//! The chain's bookkeeping (Octez `Block_store`'s stored data): the genesis
//! block, the savepoint (lowest block kept with its metadata) and the
//! caboose (lowest block kept), all in the manifest, so each change is one
//! atomic, durable replacement of it and a crash leaves the old or the new
//! values, never a mix. Merges move savepoint and caboose (see `merge`);
//! the node may also write them.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::manifest::{BlockDescr, Manifest};
use super::{BlockStore, BlockStoreOptions, Inner, hex};
use crate::block::BlockRef;
use crate::error::{Error, Result};

/// Where the background merge stands (Octez's `get_merge_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeStatus {
    /// No merge runs; the last one of this handle, if any, succeeded.
    NotRunning,
    /// A merge runs.
    Running,
    /// The last merge of this handle failed with this error; the store
    /// holds what it held before that merge.
    Failed(Error),
}

/// Everything [`BlockStore`] records about the chain, as a copy tool moves
/// it from one store to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainMarks {
    /// See [`BlockStore::genesis`].
    pub genesis: Option<BlockDescr>,
    /// See [`BlockStore::savepoint`].
    pub savepoint: Option<BlockDescr>,
    /// See [`BlockStore::caboose`].
    pub caboose: Option<BlockDescr>,
    /// The highest level merged (Octez's cementing highwatermark).
    pub highwatermark: Option<i32>,
}

impl BlockStore {
    /// Creates a block store in `dir` holding `genesis`, durably (Octez's
    /// `Block_store.create ~genesis_block`). `InvalidArgument` if `dir`
    /// already holds a block store, or `opts` asks for a read-only open.
    pub fn create(
        dir: impl AsRef<Path>,
        opts: BlockStoreOptions,
        genesis: &BlockRef<'_>,
    ) -> Result<BlockStore> {
        let dir = dir.as_ref();
        if opts.open.read_only {
            return Err(Error::invalid("a block store cannot be created read-only"));
        }
        if Manifest::load(opts.open.fs.as_ref(), dir)?.is_some() {
            return Err(Error::invalid(format!(
                "{} already holds a block store",
                dir.display()
            )));
        }
        let store = BlockStore::open(dir, opts)?;
        // Another process may have created it between the check and the
        // lock: only an empty store takes this genesis.
        if store.inner.manifest.lock().genesis.is_some() || store.stats()?.floating_blocks > 0 {
            return Err(Error::invalid(format!(
                "{} already holds a block store",
                dir.display()
            )));
        }
        store.store(genesis)?;
        Ok(store)
    }

    /// Opens the existing block store in `dir` and checks that its genesis
    /// is `genesis` (Octez's `Block_store.load`). `NotFound` if `dir` holds
    /// no block store, `Inconsistent` if its genesis is another block or
    /// (for a store whose manifest was rebuilt by a repair) `genesis` is
    /// not stored in it.
    pub fn load(
        dir: impl AsRef<Path>,
        opts: BlockStoreOptions,
        genesis: &[u8; 32],
    ) -> Result<BlockStore> {
        let dir = dir.as_ref();
        if Manifest::load(opts.open.fs.as_ref(), dir)?.is_none() {
            return Err(Error::NotFound(format!(
                "{} holds no block store (no manifest)",
                dir.display()
            )));
        }
        let store = BlockStore::open(dir, opts)?;
        let recorded = store.genesis();
        match recorded {
            Some(g) if g.hash == *genesis => Ok(store),
            Some(g) => Err(Error::Inconsistent(format!(
                "the store's genesis is {}, not {}",
                hex(&g.hash),
                hex(genesis)
            ))),
            None if store.mem(genesis)? => Ok(store),
            None => Err(Error::Inconsistent(format!(
                "genesis {} is not stored in {}",
                hex(genesis),
                dir.display()
            ))),
        }
    }

    /// The genesis block, recorded when the store's first block was
    /// stored; `None` while the store is empty (or after a repair rebuilt
    /// the manifest).
    pub fn genesis(&self) -> Option<BlockDescr> {
        self.inner.manifest.lock().genesis
    }

    /// The savepoint: the lowest block stored with its metadata.
    pub fn savepoint(&self) -> Option<BlockDescr> {
        self.inner.manifest.lock().savepoint
    }

    /// The caboose: the lowest block stored.
    pub fn caboose(&self) -> Option<BlockDescr> {
        self.inner.manifest.lock().caboose
    }

    /// Sets the savepoint, durably. The block must be stored at that level
    /// (`NotFound`, `Inconsistent`), at or above the caboose and the genesis
    /// (`InvalidArgument`).
    pub fn write_savepoint(&self, savepoint: BlockDescr) -> Result<()> {
        self.write_marks(|m| {
            if let Some(c) = m.caboose.filter(|c| savepoint.level < c.level) {
                return Err(Error::invalid(format!(
                    "savepoint level {} is below the caboose's {}",
                    savepoint.level, c.level
                )));
            }
            m.savepoint = Some(savepoint);
            Ok(savepoint)
        })
    }

    /// Sets the caboose, durably. The block must be stored at that level
    /// (`NotFound`, `Inconsistent`), at or below the savepoint and at or
    /// above the genesis (`InvalidArgument`).
    pub fn write_caboose(&self, caboose: BlockDescr) -> Result<()> {
        self.write_marks(|m| {
            if let Some(s) = m.savepoint.filter(|s| caboose.level > s.level) {
                return Err(Error::invalid(format!(
                    "caboose level {} is above the savepoint's {}",
                    caboose.level, s.level
                )));
            }
            m.caboose = Some(caboose);
            Ok(caboose)
        })
    }

    /// The chain's marks, as one consistent reading.
    pub fn marks(&self) -> ChainMarks {
        let m = self.inner.manifest.lock();
        ChainMarks {
            genesis: m.genesis,
            savepoint: m.savepoint,
            caboose: m.caboose,
            highwatermark: m.highwatermark,
        }
    }

    /// Sets every mark at once, durably: for tools that copy a store (the
    /// blocks first, then the marks). The savepoint and caboose must be
    /// stored at their levels (`NotFound`, `Inconsistent`) and in order
    /// (`InvalidArgument`); the genesis is not checked, since a ROLLING
    /// store no longer holds it.
    pub fn restore_marks(&self, marks: &ChainMarks) -> Result<()> {
        let inner = &self.inner;
        inner.check_writable()?;
        let mut m = inner.manifest.lock();
        if let (Some(s), Some(c)) = (marks.savepoint, marks.caboose) {
            if c.level > s.level {
                return Err(Error::invalid(format!(
                    "caboose level {} is above the savepoint's {}",
                    c.level, s.level
                )));
            }
        }
        for d in [marks.savepoint, marks.caboose].into_iter().flatten() {
            check_stored(inner, &d)?;
        }
        let mut next = m.clone();
        next.genesis = marks.genesis;
        next.savepoint = marks.savepoint;
        next.caboose = marks.caboose;
        next.highwatermark = marks.highwatermark;
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
        Ok(())
    }

    /// Where the background merge stands.
    pub fn merge_status(&self) -> MergeStatus {
        if self.inner.merging.load(Ordering::SeqCst) {
            return MergeStatus::Running;
        }
        match self.inner.last_merge.lock().clone() {
            Some(Err(e)) => MergeStatus::Failed(e),
            _ => MergeStatus::NotRunning,
        }
    }

    /// Changes the manifest's marks with `change`, after checking that the
    /// block it names is stored at its level and above the genesis, and
    /// stores the manifest durably.
    fn write_marks(&self, change: impl FnOnce(&mut Manifest) -> Result<BlockDescr>) -> Result<()> {
        let inner = &self.inner;
        inner.check_writable()?;
        let mut m = inner.manifest.lock();
        let mut next = m.clone();
        let descr = change(&mut next)?;
        if let Some(g) = next.genesis.filter(|g| descr.level < g.level) {
            return Err(Error::invalid(format!(
                "level {} is below the genesis's {}",
                descr.level, g.level
            )));
        }
        check_stored(inner, &descr)?;
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
        Ok(())
    }
}

/// `NotFound` unless `descr`'s block is stored, `Inconsistent` if it is
/// stored at another level.
fn check_stored(inner: &Inner, descr: &BlockDescr) -> Result<()> {
    let parts = inner.parts.read().clone();
    match inner.level_of_stored(&parts, &descr.hash)? {
        None => Err(Error::NotFound(format!(
            "block {} is not stored",
            hex(&descr.hash)
        ))),
        Some(l) if l != descr.level => Err(Error::Inconsistent(format!(
            "block {} has level {l}, not {}",
            hex(&descr.hash),
            descr.level
        ))),
        Some(_) => Ok(()),
    }
}

/// Records `block`, the first block of an empty store, as the genesis (and
/// first savepoint and caboose) before it is appended. A crash in between
/// leaves a recorded genesis that is not stored: storing it again matches
/// the record and stores it. `Inconsistent` if another genesis is recorded.
pub(super) fn record_genesis(inner: &Inner, m: &mut Manifest, block: &BlockRef<'_>) -> Result<()> {
    let descr = BlockDescr {
        hash: *block.hash,
        level: block.level,
    };
    match m.genesis {
        Some(g) if g == descr => Ok(()),
        Some(g) => Err(Error::Inconsistent(format!(
            "the store's genesis is {} at level {}; block {} at level {} cannot start it",
            hex(&g.hash),
            g.level,
            hex(block.hash),
            block.level
        ))),
        None => {
            let mut next = m.clone();
            next.genesis = Some(descr);
            next.savepoint = Some(descr);
            next.caboose = Some(descr);
            next.store(inner.fs.as_ref(), &inner.dir)?;
            *m = next;
            Ok(())
        }
    }
}
