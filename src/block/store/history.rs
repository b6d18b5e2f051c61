//! History-mode switches, by Octez's rules (`Block_store.switch_history_mode`
//! and `test_history_mode_switch.ml`): ARCHIVE may become FULL or ROLLING,
//! FULL may become FULL (another offset) or ROLLING, ROLLING may change its
//! offset; nothing becomes ARCHIVE (the dropped history cannot come back)
//! and ROLLING cannot become FULL (its pruned blocks are gone).
//!
//! The new mode, offset, savepoint and caboose are one atomic replacement of
//! the manifest; the cemented store's GC for the new mode runs after it, so
//! a crash in between leaves marks that only promise less than the store
//! holds (the next merge's GC drops the rest).

use super::manifest::BlockDescr;
use super::{BlockStore, hex};
use crate::block::Hash;
use crate::block::cemented::HistoryMode;
use crate::error::{Error, Result};

/// Offsets above this are refused, as Octez refuses them (0..1000).
pub const MAX_HISTORY_OFFSET: u32 = 1000;

fn name(mode: HistoryMode, offset: u32) -> String {
    match mode {
        HistoryMode::Archive => "archive".into(),
        HistoryMode::Full => format!("full {offset}"),
        HistoryMode::Rolling => format!("rolling {offset}"),
    }
}

impl BlockStore {
    /// Switches the store to history `mode` with `offset` (chunks kept by
    /// FULL and ROLLING), persisted durably, moving the savepoint and
    /// caboose as Octez does and running the cemented store's GC for the
    /// new mode before returning. `head` is the node's current head; the
    /// blocks to preserve are its last preserved block (the last merge's
    /// top, or the genesis before any merge) and `max_op_ttl` ancestors.
    ///
    /// Errors: `InvalidArgument` for a switch Octez refuses (to ARCHIVE from
    /// another mode, ROLLING to FULL) or an offset above
    /// [`MAX_HISTORY_OFFSET`], naming both modes; `NotFound` if `head` is
    /// not stored; `ReadOnly`; the GC's `Corrupted` (the marks and mode are
    /// then already switched and the store consistent); `Io`, `NoSpace`.
    /// Waits for a running merge first.
    pub fn switch_history_mode(
        &self,
        head: &Hash,
        mode: HistoryMode,
        offset: u32,
        max_op_ttl: u32,
    ) -> Result<()> {
        let inner = &self.inner;
        inner.check_writable()?;
        // A failed merge left the store as it was before it (its error
        // stays in `merge_status`): the switch may go on.
        let _ = inner.await_merge();
        let (previous, previous_offset) = self.history();
        let refuse = || {
            Error::invalid(format!(
                "cannot switch history mode from {} to {}",
                name(previous, previous_offset),
                name(mode, offset)
            ))
        };
        let allowed = matches!(
            (previous, mode),
            (
                HistoryMode::Archive,
                HistoryMode::Full | HistoryMode::Rolling
            ) | (HistoryMode::Full, HistoryMode::Full | HistoryMode::Rolling)
                | (HistoryMode::Rolling, HistoryMode::Rolling)
        );
        if !allowed {
            return Err(refuse());
        }
        if offset > MAX_HISTORY_OFFSET {
            return Err(Error::invalid(format!(
                "history offset {offset} is above the maximum {MAX_HISTORY_OFFSET}"
            )));
        }
        let parts = inner.parts.read().clone();
        let Some(head_level) = inner.level_of_stored(&parts, head)? else {
            return Err(Error::NotFound(format!("head {} is not stored", hex(head))));
        };
        // The block at `level` on the head's chain.
        let on_chain = |level: i32| -> Result<BlockDescr> {
            let distance = u64::try_from(i64::from(head_level) - i64::from(level))
                .map_err(|_| Error::invalid(format!("level {level} is above the head")))?;
            let hash = inner.resolve(&parts, head, distance)?.ok_or_else(|| {
                Error::Inconsistent(format!(
                    "the block at level {level} below head {} is not stored",
                    hex(head)
                ))
            })?;
            Ok(BlockDescr { hash, level })
        };
        let mut m = inner.manifest.lock();
        let (savepoint, caboose) = match (m.savepoint, m.caboose) {
            (Some(s), Some(c)) => (s, c),
            // A store without marks yet: only the mode changes.
            _ => {
                let mut next = m.clone();
                next.history_mode = mode;
                next.history_offset = offset;
                next.store(inner.fs.as_ref(), &inner.dir)?;
                *m = next;
                drop(m);
                return inner.cemented.gc(mode, offset);
            }
        };
        let lpbl = m.highwatermark.unwrap_or(caboose.level).min(head_level);
        let preserved = (i64::from(lpbl) - i64::from(max_op_ttl)).max(i64::from(caboose.level));
        let preserved = i32::try_from(preserved).unwrap_or(caboose.level);
        let target = offset as usize;

        // Octez's `expected_savepoint`, over the chunks that keep metadata.
        let meta = inner.cemented.metadata_chunks();
        let expected_savepoint = if meta.is_empty() || target >= meta.len() {
            savepoint.level
        } else if target == 0 {
            meta[meta.len() - 1].end.saturating_add(1)
        } else {
            meta[meta.len() - target].start
        };
        // `available_savepoint`: never lowered.
        let new_savepoint_level = preserved.min(expected_savepoint).max(savepoint.level);
        let new_savepoint = if new_savepoint_level == savepoint.level {
            savepoint
        } else {
            on_chain(new_savepoint_level)?
        };
        let new_caboose = match (previous, mode) {
            (HistoryMode::Archive, HistoryMode::Rolling) => new_savepoint,
            (HistoryMode::Archive, _) | (HistoryMode::Full, HistoryMode::Full) => caboose,
            (HistoryMode::Full, _) => {
                // Octez's `expected_caboose`, over every chunk.
                let chunks = inner.cemented.chunks();
                let expected = if chunks.is_empty() || target > chunks.len() {
                    None
                } else if target == 0 {
                    Some(chunks[chunks.len() - 1].end.saturating_add(1))
                } else {
                    Some(chunks[chunks.len() - target].start)
                };
                match expected {
                    Some(e) => {
                        let level = e.min(preserved).max(caboose.level);
                        if level == caboose.level {
                            caboose
                        } else {
                            on_chain(level)?
                        }
                    }
                    None => new_savepoint,
                }
            }
            _ if previous_offset < offset => caboose,
            _ => new_savepoint,
        };
        // The GC below keeps chunks (ROLLING) and metadata (both) only from
        // these levels; marks below them must name blocks the floating
        // store keeps (the preserved ones), else they move up to the
        // lowest block that stays.
        let chunks = inner.cemented.chunks();
        let kept_chunks_from = match (mode, target) {
            (HistoryMode::Full, _) => chunks.first().map(|c| c.start),
            (_, 0) => None,
            _ if target >= chunks.len() => chunks.first().map(|c| c.start),
            _ => Some(chunks[chunks.len() - target].start),
        };
        let kept_metadata_from = match target {
            0 => None,
            _ if target >= chunks.len() => meta.first().map(|c| c.start),
            _ => {
                let from = chunks[chunks.len() - target].start;
                meta.iter().map(|c| c.start).find(|&s| s >= from)
            }
        };
        let stays = |d: BlockDescr, kept_from: Option<i32>| -> Result<BlockDescr> {
            let mut d = d;
            while kept_from.is_none_or(|k| d.level < k)
                && inner.floating_preds(&parts, &d.hash)?.is_none()
                && d.level < head_level
            {
                d = on_chain(d.level + 1)?;
            }
            Ok(d)
        };
        let new_savepoint = stays(new_savepoint, kept_metadata_from)?;
        let new_caboose = stays(new_caboose.min_by_level(new_savepoint), kept_chunks_from)?;
        let mut next = m.clone();
        next.history_mode = mode;
        next.history_offset = offset;
        next.savepoint = Some(new_savepoint);
        next.caboose = Some(new_caboose);
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
        drop(m);
        inner.cemented.gc(mode, offset)
    }
}

impl BlockDescr {
    /// The lower of two blocks by level (`self` on a tie).
    fn min_by_level(self, other: BlockDescr) -> BlockDescr {
        if other.level < self.level {
            other
        } else {
            self
        }
    }
}
