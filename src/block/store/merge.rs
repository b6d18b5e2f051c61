//! The background merge: floating -> cemented, with the RO / RW / RO_TMP /
//! RW_TMP rotation done through the manifest.
//!
//! Steps, and what a crash at each leaves (repaired at open by rolling the
//! merge back; no flushed block is ever only in a deleted store):
//! 1. (caller's thread) the new ids are reserved in the manifest, a fresh RW
//!    store is created, the old RW is flushed, and the manifest switches
//!    roles: old RW joins the read-only stores, the fresh one receives new
//!    blocks, and the RO_TMP id is recorded.
//! 2. (worker) every entry of the old stores is walked and verified; blocks
//!    above the new top that descend from it are copied, oldest first, into
//!    RO_TMP; then the preserved blocks (the new top and up to `max_op_ttl`
//!    of its ancestors that the old stores hold, Octez's blocks from the
//!    LPBL down to `LPBL - max_op_ttl`) are copied there too, with their
//!    metadata, although they are also cemented; RO_TMP is then flushed.
//!    Damage aborts the merge here, before anything is cemented.
//! 3. (worker) the chain from the new cemented top down to the old one is
//!    cemented, chunk by chunk (each chunk is crash-safe on its own), each
//!    block checked to link to the one below. ROLLING 0 cements nothing (as
//!    in Octez): it keeps only the preserved blocks and what is above them.
//! 4. (worker) the manifest swaps: RO_TMP becomes the only read-only store,
//!    and the new savepoint, caboose and highwatermark are recorded in the
//!    same atomic write. The old stores are deleted once no reader holds
//!    them.
//! 5. (worker) the history mode's GC runs on the cemented store (after the
//!    savepoint and caboose were raised, so they never name a block GC
//!    dropped).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::manifest::{BlockDescr, Manifest};
use super::walk::{self, Ended};
use super::{Inner, Parts, floating_dir, hex, open_floating};
use crate::block::Hash;
use crate::block::cemented::HistoryMode;
use crate::block::entry::EntryRef;
use crate::block::floating::Floating;
use crate::error::{Error, Result};
use crate::io::{MapPromise, Mapped, foreground};
use crate::worker::WorkerPool;

/// Takes the next id whose directory does not exist: a directory no
/// manifest generation accounts for is left alone, never reused.
fn take_free_id(inner: &Inner, m: &mut Manifest) -> Result<u64> {
    loop {
        let id = m.take_id();
        if !inner.fs.exists(&floating_dir(&inner.dir, id))? {
            return Ok(id);
        }
    }
}

/// Validates the request, switches roles, and submits the merge job.
pub(super) fn start(
    inner: &Arc<Inner>,
    pool: &WorkerPool,
    head: &Hash,
    chunk_ends: &[i32],
    max_op_ttl: u32,
) -> Result<()> {
    inner.check_writable()?;
    inner.await_merge()?;
    if chunk_ends.is_empty() {
        return Err(Error::invalid("merge needs at least one chunk end"));
    }
    if chunk_ends.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(format!(
            "chunk ends must be strictly increasing: {chunk_ends:?}"
        )));
    }
    let highest = inner.merged_floor();
    let ends: Vec<i32> = chunk_ends
        .iter()
        .copied()
        .filter(|&e| highest.is_none_or(|h| e > h))
        .collect();
    let Some(&last_end) = ends.last() else {
        // Everything asked for is already cemented: a merge with nothing
        // to do, which ends at once.
        inner.merge_ended(&Ok(()));
        return Ok(());
    };
    let parts = inner.parts.read().clone();
    let Some(head_level) = inner.level_of_stored(&parts, head)? else {
        return Err(Error::NotFound(format!(
            "merge head {} is not stored",
            hex(head)
        )));
    };
    if last_end > head_level {
        return Err(Error::invalid(format!(
            "last chunk end {last_end} is above the head's level {head_level}"
        )));
    }
    let Some(top) = inner.resolve(&parts, head, (head_level - last_end) as u64)? else {
        return Err(Error::Inconsistent(format!(
            "the ancestor of {} at level {last_end} is not stored",
            hex(head)
        )));
    };

    // Step 1: switch roles.
    let (old, ro_tmp_id) = {
        let mut m = inner.manifest.lock();
        let parts = inner.parts.read().clone();
        // The new ids are recorded durably before anything is created
        // under them: a crash in between leaves directories that a manifest
        // generation proves abandoned, which the next open may delete.
        let mut next = m.clone();
        let rw_id = take_free_id(inner, &mut next)?;
        let ro_tmp_id = take_free_id(inner, &mut next)?;
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next.clone();
        let fresh = open_floating(&inner.dir, &inner.opts, rw_id)?;
        parts.rw.flush()?;
        next.ros.insert(0, next.rw);
        next.rw = rw_id;
        next.merging = Some(ro_tmp_id);
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
        let old: Vec<Arc<Floating>> = parts.all().cloned().collect();
        inner.set_parts(Parts {
            rw: fresh,
            ros: old.clone(),
        });
        (old, ro_tmp_id)
    };
    // Stores now go to the fresh read-write store: zeros written ahead of
    // them (on a worker, beside the merge) keep their fsyncs cheap from the
    // first ones on.
    inner.parts.read().rw.prepare_for_durable_appends();

    inner.merging.store(true, Ordering::SeqCst);
    let job_inner = inner.clone();
    let started = Instant::now();
    let handle = pool.submit(move || {
        let target = Target {
            top,
            top_level: last_end,
            ends,
            max_op_ttl,
        };
        let result = run(&job_inner, &target, old, ro_tmp_id, started);
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave a consistent state: forget the half-filled RO_TMP.
                let _ = roll_back(&job_inner, ro_tmp_id);
                Err(e)
            }
        };
        *job_inner.last_merge.lock() = Some(result.clone());
        job_inner.merging.store(false, Ordering::SeqCst);
        job_inner.merge_ended(&result);
        result
    });
    *inner.merge_job.lock() = Some(handle);
    Ok(())
}

/// What a merge was asked to do.
struct Target {
    /// The new cemented top (the head's last preserved block).
    top: Hash,
    top_level: i32,
    /// The chunk ends above what is merged already, ascending.
    ends: Vec<i32>,
    /// Ancestors of `top` kept in the floating store with their metadata.
    max_op_ttl: u32,
}

fn run(
    inner: &Inner,
    target: &Target,
    old: Vec<Arc<Floating>>,
    ro_tmp_id: u64,
    started: Instant,
) -> Result<()> {
    let (top, top_level) = (&target.top, target.top_level);
    let (mode, offset) = {
        let m = inner.manifest.lock();
        (m.history_mode, m.history_offset)
    };
    let write_metadata = match mode {
        HistoryMode::Archive => true,
        HistoryMode::Full | HistoryMode::Rolling => offset > 0,
    };
    let cements = !(mode == HistoryMode::Rolling && offset == 0);
    // Steps 2 and 3. Copying first walks and verifies every entry of the
    // old stores, so damage aborts the merge before anything is cemented
    // (RO_TMP is seen by nobody before the swap); the chain to cement is
    // then found and read through what that walk verified, never through
    // a floating index.
    let ro_tmp = open_floating(&inner.dir, &inner.opts, ro_tmp_id)?;
    let (walked, lowest_preserved) = copy_kept(inner, &old, &ro_tmp, target)?;
    ro_tmp.flush()?;
    let chain = chain_below(inner, &walked, top, top_level)?;
    if cements {
        let first_level = top_level - (chain.len() as i32 - 1);
        cement_chain(
            inner,
            &walked,
            &chain,
            first_level,
            &target.ends,
            write_metadata,
        )?;
    }

    // Step 4: the atomic swap, under the lock `store` waits for: its
    // fsyncs must not wait for a burst of background traffic.
    {
        let _unpaced = foreground::Unpaced::begin();
        let mut m = inner.manifest.lock();
        let parts = inner.parts.read().clone();
        let mut next = m.clone();
        let marks = new_marks(inner, &next, lowest_preserved)?;
        next.savepoint = Some(marks.savepoint);
        next.caboose = Some(marks.caboose);
        next.highwatermark = Some(top_level);
        next.ros = vec![ro_tmp_id];
        next.merging = None;
        next.merges_done += 1;
        next.last_merge_ms = started.elapsed().as_millis() as u64;
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
        inner.set_parts(Parts {
            rw: parts.rw.clone(),
            ros: vec![ro_tmp],
        });
        inner.retired.lock().extend(old);
    }
    inner.reap_retired();

    // Step 5: history-mode GC (after the swap, so a read before the swap
    // still finds every block it found before the merge).
    inner.cemented.gc(mode, offset)
}

/// Step 3: cements `chain` (the hashes of levels `first_level..`) in the
/// chunks that `ends` delimit, one block in memory at a time. Each block is
/// checked to be the one the chain names (the read checks hash and CRC) and
/// to link to the block below it, so a damaged predecessor list in an index
/// cannot cement a wrong chain.
fn cement_chain(
    inner: &Inner,
    walked: &Walked,
    chain: &[Hash],
    first_level: i32,
    ends: &[i32],
    write_metadata: bool,
) -> Result<()> {
    let mut below = match inner.cemented.highest_level() {
        Some(h) if h + 1 == first_level => inner.cemented.hash_of(h)?,
        _ => None,
    };
    let mut start = first_level;
    for &end in ends {
        if end < start {
            continue;
        }
        let mut w = inner
            .cemented
            .begin_chunk(start, end, write_metadata, true)?;
        for l in start..=end {
            let h = &chain[(l - first_level) as usize];
            let e = walked.entry(h)?;
            let b = &e.block;
            if b.level != l || below.is_some_and(|p| p != *b.predecessor) {
                return Err(Error::Inconsistent(format!(
                    "block {} at level {} does not link to the cemented block below it",
                    hex(h),
                    b.level
                )));
            }
            w.push_with_context(b, &e.context)?;
            below = Some(*b.hash);
        }
        w.commit()?;
        start = end + 1;
    }
    Ok(())
}

/// Step 2: walks every entry of the old stores, oldest store first (so a
/// block's predecessor is seen before it), verifying each, and copies into
/// `ro_tmp`, in an order where a predecessor comes before its successor:
/// when the walk reaches the new top, the preserved blocks (see
/// [`copy_preserved`]); then the blocks above the top that descend from
/// it. Returns the walk and the lowest preserved block. Any damaged entry,
/// or a file that disagrees with its index's count, aborts the merge:
/// dropping what follows it would lose blocks.
fn copy_kept(
    inner: &Inner,
    old: &[Arc<Floating>],
    ro_tmp: &Floating,
    target: &Target,
) -> Result<(Walked, BlockDescr)> {
    let (top, top_level) = (&target.top, target.top_level);
    let mut visited: HashSet<Hash> = HashSet::from([*top]);
    let mut walked = Walked::default();
    let mut lowest_preserved = None;
    let mut preserved: HashSet<Hash> = HashSet::new();
    // Floating copies of cemented blocks (the last merge's preserved
    // blocks): those not preserved again are dropped, so their cemented
    // copies are checked first (below).
    let cemented_top = inner.cemented.highest_level();
    let mut duplicates: Vec<Hash> = Vec::new();
    for store in old.iter().rev() {
        let path = walk::file_of(store.dir());
        let file = walk::open(inner.fs.as_ref(), store.dir())?;
        let end = store.size_bytes();
        // Immutable below `end`: the store is read-only since step 1, and
        // only its own handle could cut the file (the zeros ahead of its
        // data, at drop), which `WalkedFile` holds until the map is gone.
        let map = file.map(MapPromise::IMMUTABLE)?;
        let n = walked.files.len();
        let mut count = 0u64;
        let mut above: Vec<u64> = Vec::new();
        let mut top_at: Option<u64> = None;
        let ended = walk::walk(&map[..], end, false, |offset, e| {
            count += 1;
            let b = &e.block;
            walked.at.entry(*b.hash).or_insert(Seen {
                file: n,
                offset,
                level: b.level,
                pred: (!e.preds().is_empty()).then_some(*b.predecessor),
            });
            if cemented_top.is_some_and(|c| b.level <= c) {
                duplicates.push(*b.hash);
            }
            if b.hash == top {
                top_at.get_or_insert(offset);
            } else if b.level > top_level {
                above.push(offset);
            }
            Ok(())
        })?;
        match ended {
            Ended::Clean => {}
            Ended::TornAt(o) => {
                return Err(walk::damage_error(&path, o, "entry cut short"));
            }
            Ended::DamagedAt(o, why) => return Err(walk::damage_error(&path, o, &why)),
        }
        if count != store.len() {
            return Err(Error::corrupted(
                &path,
                format!("{count} entries in the file but {} indexed", store.len()),
            ));
        }
        walked.files.push(WalkedFile {
            map,
            end,
            _store: store.clone(),
        });
        // The copies, in file order: the preserved blocks when the walk
        // reached the top (its ancestors are all seen by then), and the
        // blocks above it that descend from it.
        let mut copies = above.into_iter().peekable();
        let mut copy_above = |walked: &Walked, until: u64| -> Result<()> {
            while let Some(offset) = copies.next_if(|&o| o < until) {
                let e = walked.entry_at(n, offset)?;
                let b = &e.block;
                if visited.contains(b.predecessor) && visited.insert(*b.hash) {
                    ro_tmp.append_with_context(b, &e.context, e.preds(), false)?;
                }
            }
            Ok(())
        };
        if let Some(at) = top_at.filter(|_| lowest_preserved.is_none()) {
            copy_above(&walked, at)?;
            let (lowest, hashes) = copy_preserved(&walked, ro_tmp, top, target.max_op_ttl)?;
            lowest_preserved = Some(lowest);
            preserved.extend(hashes);
        }
        copy_above(&walked, u64::MAX)?;
    }
    let lowest = lowest_preserved.ok_or_else(|| {
        Error::Inconsistent(format!(
            "merge top {} is not in the floating stores",
            hex(top)
        ))
    })?;
    for h in duplicates.iter().filter(|h| !preserved.contains(*h)) {
        check_cemented_copy(inner, &walked, h)?;
    }
    Ok((walked, lowest))
}

/// Before the merge drops the floating copy of cemented block `h`: its
/// cemented copy must read back as the same block (with the same metadata
/// where the chunk keeps metadata), else the merge aborts with the error
/// and the floating copy stays (damage must not cost intact data).
fn check_cemented_copy(inner: &Inner, walked: &Walked, h: &Hash) -> Result<()> {
    let floating = walked.entry(h)?;
    let cemented = match inner.cemented.read_by_hash(h, true)? {
        Some(b) => b,
        // Dropped from the cemented store by its history mode: the floating
        // copy goes by the same policy.
        None => return Ok(()),
    };
    let f = &floating.block;
    let same = cemented.contents == f.contents
        && cemented.level == f.level
        && cemented.predecessor == *f.predecessor
        && (cemented.metadata.is_none() || cemented.metadata.as_deref() == f.metadata);
    if !same {
        return Err(Error::Inconsistent(format!(
            "the cemented copy of block {} at level {} differs from its floating copy; the merge keeps the floating one",
            hex(h),
            f.level
        )));
    }
    Ok(())
}

/// Copies `top` and up to `max_op_ttl` of its ancestors that the walk has
/// seen (the longest available suffix), oldest first, into `ro_tmp` with
/// their metadata; returns the lowest one and every hash copied. Ancestors
/// come before `top` in the walk, so all that the old stores hold are seen
/// by then.
fn copy_preserved(
    walked: &Walked,
    ro_tmp: &Floating,
    top: &Hash,
    max_op_ttl: u32,
) -> Result<(BlockDescr, Vec<Hash>)> {
    let mut hashes = vec![*top];
    while hashes.len() <= max_op_ttl as usize {
        let below = hashes
            .last()
            .and_then(|h| walked.at.get(h))
            .and_then(|s| s.pred);
        match below {
            Some(p) if walked.at.contains_key(&p) && !hashes.contains(&p) => hashes.push(p),
            _ => break,
        }
    }
    let mut lowest = None;
    for h in hashes.iter().rev() {
        let e = walked.entry(h)?;
        lowest.get_or_insert(BlockDescr {
            hash: *e.block.hash,
            level: e.block.level,
        });
        ro_tmp.append_with_context(&e.block, &e.context, e.preds(), false)?;
    }
    let lowest = lowest
        .ok_or_else(|| Error::Inconsistent(format!("merge top {} is not stored", hex(top))))?;
    Ok((lowest, hashes))
}

/// True if a cemented chunk holding `level` keeps its metadata.
fn kept_with_metadata(inner: &Inner, level: i32) -> bool {
    inner
        .cemented
        .metadata_chunks()
        .iter()
        .any(|c| c.start <= level && level <= c.end)
}

/// The first block of the lowest chunk with metadata above `level`, or
/// `min` (the lowest preserved block) if there is none below it.
fn lowest_with_metadata_above(inner: &Inner, level: i32, min: BlockDescr) -> Result<BlockDescr> {
    let start = inner
        .cemented
        .metadata_chunks()
        .iter()
        .map(|c| c.start)
        .find(|&s| s > level && s < min.level);
    match start {
        None => Ok(min),
        Some(start) => {
            let hash = inner.cemented.hash_of(start)?.ok_or_else(|| {
                Error::Inconsistent(format!(
                    "the new savepoint at level {start} is not cemented"
                ))
            })?;
            Ok(BlockDescr { hash, level: start })
        }
    }
}

/// The savepoint and caboose after a merge.
struct Marks {
    savepoint: BlockDescr,
    caboose: BlockDescr,
}

/// The new savepoint and caboose, by Octez's rules (`compute_new_savepoint`
/// and `compute_new_caboose`): ARCHIVE keeps both; FULL and ROLLING move
/// the savepoint to the lowest preserved block (offset 0) or to the first
/// block of the `offset`-th newest chunk, never above the lowest preserved
/// block and never down; only ROLLING moves the caboose. Called after
/// cementing, so the chunk list includes the new chunks.
fn new_marks(inner: &Inner, m: &Manifest, lowest_preserved: BlockDescr) -> Result<Marks> {
    let min = lowest_preserved;
    let savepoint = m.savepoint.unwrap_or(min);
    let caboose = m.caboose.unwrap_or(min);
    let offset = m.history_offset as usize;
    let savepoint = match m.history_mode {
        HistoryMode::Archive => savepoint,
        _ if savepoint.level >= min.level => savepoint,
        _ if offset == 0 => min,
        _ => {
            let chunks = inner.cemented.chunks();
            match chunks.len().checked_sub(offset).map(|i| chunks[i].start) {
                // Too few chunks to shift it yet: it stays, unless neither
                // a chunk with metadata nor the new floating store holds
                // it any more (after a ROLLING 0 period, say). Octez then
                // drags it to the lowest preserved block; it moves here to
                // the lowest block that still has metadata, which is
                // never above that.
                None if kept_with_metadata(inner, savepoint.level) => savepoint,
                None => lowest_with_metadata_above(inner, savepoint.level, min)?,
                Some(shifted) if savepoint.level >= shifted => savepoint,
                Some(shifted) if shifted >= min.level => min,
                Some(shifted) => {
                    let hash = inner.cemented.hash_of(shifted)?.ok_or_else(|| {
                        Error::Inconsistent(format!(
                            "the new savepoint at level {shifted} is not cemented"
                        ))
                    })?;
                    BlockDescr {
                        hash,
                        level: shifted,
                    }
                }
            }
        }
    };
    let caboose = match m.history_mode {
        HistoryMode::Rolling if caboose.level < min.level => {
            if min.level < savepoint.level || offset == 0 {
                min
            } else {
                savepoint
            }
        }
        _ => caboose,
    };
    Ok(Marks { savepoint, caboose })
}

/// Where the merge's walk found each block of the old stores.
#[derive(Default)]
struct Walked {
    /// The stores' blocks files, mapped.
    files: Vec<WalkedFile>,
    at: HashMap<Hash, Seen>,
}

/// One old store's blocks file, mapped, and the end of its entries. The
/// fields drop in order: the map before the store handle it keeps alive.
struct WalkedFile {
    map: Mapped,
    end: u64,
    _store: Arc<Floating>,
}

/// A verified entry of the old stores.
struct Seen {
    file: usize,
    offset: u64,
    level: i32,
    /// `None` for genesis (stored without predecessors).
    pred: Option<Hash>,
}

impl Walked {
    /// The entry of block `h` (block, predecessor list, context hash),
    /// verified again and borrowed from the map (the files are read-only
    /// stores by now, so it is the entry the walk verified).
    fn entry(&self, h: &Hash) -> Result<EntryRef<'_>> {
        let seen = self.at.get(h).ok_or_else(|| {
            Error::Inconsistent(format!("block {} is not in the floating stores", hex(h)))
        })?;
        let e = self.entry_at(seen.file, seen.offset)?;
        if e.block.hash != h {
            return Err(self.changed(seen.file, seen.offset));
        }
        Ok(e)
    }

    /// The verified entry at `offset` of file `n`.
    fn entry_at(&self, n: usize, offset: u64) -> Result<EntryRef<'_>> {
        let f = self
            .files
            .get(n)
            .ok_or_else(|| Error::Inconsistent(format!("merge: no walked file {n}")))?;
        match walk::entry_in(&f.map, offset, f.end) {
            walk::At::Entry(e) => Ok(e),
            _ => Err(self.changed(n, offset)),
        }
    }

    fn changed(&self, n: usize, offset: u64) -> Error {
        let path = self.files.get(n).map(|f| walk::file_of(f._store.dir()));
        walk::damage_error(
            path.as_deref().unwrap_or(std::path::Path::new("?")),
            offset,
            "entry changed during the merge",
        )
    }
}

/// The hashes to cement, from the current cemented top (exclusive) up to
/// `top`, oldest first, following the predecessors of verified entries.
fn chain_below(inner: &Inner, walked: &Walked, top: &Hash, top_level: i32) -> Result<Vec<Hash>> {
    let floor = inner.merged_floor();
    let mut chain: Vec<Hash> = Vec::new();
    let mut current = *top;
    let mut level = top_level;
    while floor.is_none_or(|f| level > f) {
        let seen = walked.at.get(&current).ok_or_else(|| {
            Error::Inconsistent(format!(
                "block {} at level {level} to cement is not in the floating stores",
                hex(&current)
            ))
        })?;
        if seen.level != level {
            return Err(Error::Inconsistent(format!(
                "block {} has level {} where level {level} was expected",
                hex(&current),
                seen.level
            )));
        }
        chain.push(current);
        let Some(pred) = seen.pred else {
            break; // genesis
        };
        current = pred;
        level -= 1;
    }
    chain.reverse();
    Ok(chain)
}

/// Undoes a failed merge: the RO_TMP store is forgotten and deleted; the
/// stores it was copied from stay read-only stores.
fn roll_back(inner: &Inner, ro_tmp_id: u64) -> Result<()> {
    let _unpaced = foreground::Unpaced::begin();
    let mut m = inner.manifest.lock();
    if m.merging == Some(ro_tmp_id) {
        let mut next = m.clone();
        next.merging = None;
        next.store(inner.fs.as_ref(), &inner.dir)?;
        *m = next;
    }
    inner
        .fs
        .remove_dir_all(&floating_dir(&inner.dir, ro_tmp_id))
}
