//! The frozen logs of a running merge, read from their files.
//!
//! A full log table is frozen and merged into a new data file while a new
//! table fills. Until the new data file is published, reads must still find
//! the frozen bindings; keeping the frozen table for that would hold two
//! log tables in memory whenever writes outpace the merge. So the merge
//! first builds this view, and the frozen table is dropped: the frozen
//! logs' files are mapped (their pages are page cache, which the kernel may
//! evict and reread) and each distinct key costs one packed `u64`, sorted
//! by hash: the order the merge writes in, so the merge needs no other
//! sort. A small fan-out table on the top hash bits makes a lookup one
//! bucket scan.

use std::sync::Arc;

use super::hash::key_hash;
use super::log::{self, HEADER};
use crate::error::{Error, Result};
use crate::io::anon::AnonVec;
use crate::io::{FileHandle, MapPromise, Mapped};

/// The bindings of one or more frozen logs (later entries win), sorted by
/// `(hash, key)`.
pub(crate) struct FrozenLogs {
    maps: Vec<Mapped>,
    paths: Vec<std::path::PathBuf>,
    /// Each log's generation (from its header), which its entries'
    /// checksums cover.
    gens: Vec<u64>,
    /// Entry number at which each log starts, then the total.
    starts: Vec<u64>,
    /// `hash & !idx_mask | entry number`, one per distinct key, ordered by
    /// full hash then key. Only the first `len` are used.
    order: AnonVec<u64>,
    len: usize,
    idx_mask: u64,
    /// `fan[b]..fan[b + 1]` are the positions in `order` whose hash has the
    /// top bits `b`.
    fan: AnonVec<u32>,
    fan_bits: u32,
    ksize: usize,
    vsize: usize,
}

impl std::fmt::Debug for FrozenLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FrozenLogs({} keys in {} logs)",
            self.len,
            self.maps.len()
        )
    }
}

impl FrozenLogs {
    /// Maps `logs` (oldest first; whole entries only, as written by this
    /// process and fsynced) and sorts their bindings. A checksum mismatch
    /// or a partial entry is `Corrupted`.
    pub(crate) fn build(
        logs: &[Arc<dyn FileHandle>],
        ksize: usize,
        vsize: usize,
    ) -> Result<FrozenLogs> {
        let esize = log::entry_size(ksize, vsize) as u64;
        let mut maps = Vec::with_capacity(logs.len());
        let mut gens = Vec::with_capacity(logs.len());
        let mut starts = vec![0u64];
        for log in logs {
            // A frozen log is full and fsynced: nothing appends to it
            // again, and a merge only removes it.
            let map = log.map(MapPromise::IMMUTABLE)?;
            let body = (map.len() as u64).saturating_sub(HEADER);
            if (map.len() as u64) < HEADER || body % esize != 0 {
                return Err(Error::corrupted(
                    log.path(),
                    format!(
                        "frozen log of {} bytes is not a header plus whole {esize}-byte entries (offset {})",
                        map.len(),
                        map.len() as u64 - body % esize
                    ),
                ));
            }
            let total = starts.last().copied().unwrap_or(0) + body / esize;
            starts.push(total);
            let mut g = [0u8; 8];
            g.copy_from_slice(map.get(8..16).unwrap_or(&[0; 8]));
            gens.push(u64::from_le_bytes(g));
            maps.push(map);
        }
        let n = starts.last().copied().unwrap_or(0) as usize;
        let idx_bits = u64::BITS - (n.max(2) as u64 - 1).leading_zeros();
        let idx_mask = (1u64 << idx_bits) - 1;
        let mut view = FrozenLogs {
            maps,
            paths: logs.iter().map(|l| l.path().to_path_buf()).collect(),
            gens,
            starts,
            order: AnonVec::zeroed(n),
            len: n,
            idx_mask,
            fan: AnonVec::zeroed(2),
            fan_bits: 0,
            ksize,
            vsize,
        };
        for i in 0..n {
            let kv = view.checked_record(i as u64)?;
            view.order[i] = (key_hash(&kv[..ksize]) & !idx_mask) | i as u64;
        }
        view.order.sort_unstable();
        view.resolve_ties();
        view.build_fan(idx_bits);
        Ok(view)
    }

    /// Within runs sharing the packed top bits (a key written more than
    /// once, or rarely two keys): orders by full hash then key, and keeps
    /// only the last entry of each key. Compacts `order` to `len`.
    fn resolve_ties(&mut self) {
        let n = self.len;
        let mask = self.idx_mask;
        let mut kept = 0;
        let mut start = 0;
        let mut run = Vec::new();
        while start < n {
            let top = self.order[start] & !mask;
            let mut end = start + 1;
            while end < n && self.order[end] & !mask == top {
                end += 1;
            }
            if end - start == 1 {
                self.order[kept] = self.order[start];
                kept += 1;
            } else {
                run.clear();
                run.extend_from_slice(&self.order[start..end]);
                // Equal keys end up adjacent, oldest first.
                run.sort_unstable_by(|&a, &b| {
                    let (ka, kb) = (self.key_of(a), self.key_of(b));
                    (key_hash(ka), ka, a & mask).cmp(&(key_hash(kb), kb, b & mask))
                });
                for (i, &p) in run.iter().enumerate() {
                    let newest = run
                        .get(i + 1)
                        .is_none_or(|&q| self.key_of(q) != self.key_of(p));
                    if newest {
                        self.order[kept] = p;
                        kept += 1;
                    }
                }
            }
            start = end;
        }
        self.len = kept;
        // Many rewrites of the same keys leave much of the array unused:
        // give it back.
        if kept < n - n / 4 {
            let mut compact = AnonVec::zeroed(kept);
            compact.copy_from_slice(&self.order[..kept]);
            self.order = compact;
        }
    }

    fn build_fan(&mut self, idx_bits: u32) {
        // About four keys per bucket, using only hash bits the packing kept.
        let want = (u64::BITS - (self.len as u64 / 4).max(1).leading_zeros()).saturating_sub(1);
        let fan_bits = want.min(u64::BITS - idx_bits).min(24);
        let buckets = 1usize << fan_bits;
        let mut fan = AnonVec::<u32>::zeroed(buckets + 1);
        let mut j = 0usize;
        for (b, slot) in fan.iter_mut().enumerate() {
            while j < self.len && self.bucket(self.order[j], fan_bits) < b {
                j += 1;
            }
            *slot = j as u32;
        }
        self.fan = fan;
        self.fan_bits = fan_bits;
    }

    #[inline]
    fn bucket(&self, h: u64, fan_bits: u32) -> usize {
        h.checked_shr(u64::BITS - fan_bits).unwrap_or(0) as usize
    }

    /// The log holding entry `i`, and its offset there.
    #[inline]
    fn locate(&self, i: u64) -> (usize, usize) {
        let file = if self.maps.len() == 1 {
            0
        } else {
            self.starts.partition_point(|&s| s <= i).saturating_sub(1)
        };
        let esize = log::entry_size(self.ksize, self.vsize) as u64;
        let first = self.starts.get(file).copied().unwrap_or(0);
        (file, (HEADER + (i - first) * esize) as usize)
    }

    /// Entry `i` of the logs as `key | value` if it passes its checksum,
    /// else `Corrupted` naming its log and offset.
    fn checked_record(&self, i: u64) -> Result<&[u8]> {
        let kv_len = self.ksize + self.vsize;
        let (file, off) = self.locate(i);
        let g = self.gens.get(file).copied().unwrap_or(0);
        log::checked_entry(self.record(i), kv_len, g, off as u64).ok_or_else(|| {
            let path = self.paths.get(file).map(|p| p.as_path());
            Error::corrupted(
                path.unwrap_or(std::path::Path::new("log")),
                format!("frozen log entry at offset {off} fails its checksum"),
            )
        })
    }

    /// The `j`-th binding in `(hash, key)` order, its checksum verified
    /// again (the merge copies nothing it has not verified).
    pub(crate) fn checked_entry(&self, j: usize) -> Result<(&[u8], &[u8])> {
        let Some(&p) = self.order.get(j).filter(|_| j < self.len) else {
            return Err(Error::corrupted(
                self.paths
                    .first()
                    .map_or(std::path::Path::new("log"), |p| p),
                format!("frozen binding {j} out of range"),
            ));
        };
        Ok(self.checked_record(p & self.idx_mask)?.split_at(self.ksize))
    }

    /// Entry `i` of the logs, `key | value | crc`.
    #[inline]
    fn record(&self, i: u64) -> &[u8] {
        let (file, off) = self.locate(i);
        let esize = log::entry_size(self.ksize, self.vsize);
        self.maps
            .get(file)
            .and_then(|m| m.get(off..off + esize))
            .unwrap_or(&[])
    }

    #[inline]
    fn key_of(&self, packed: u64) -> &[u8] {
        self.record(packed & self.idx_mask)
            .get(..self.ksize)
            .unwrap_or(&[])
    }

    /// Number of distinct keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The `j`-th binding in `(hash, key)` order, as `(key, value)`.
    #[inline]
    pub(crate) fn entry(&self, j: usize) -> Option<(&[u8], &[u8])> {
        if j >= self.len {
            return None;
        }
        let rec = self.record(self.order[j] & self.idx_mask);
        let kv = rec.get(..self.ksize + self.vsize)?;
        Some(kv.split_at(self.ksize))
    }

    /// The stored value of `key` (whose hash is `h`).
    #[inline]
    pub(crate) fn get(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        let b = self.bucket(h, self.fan_bits);
        let lo = *self.fan.get(b)? as usize;
        let hi = *self.fan.get(b + 1)? as usize;
        let top = h & !self.idx_mask;
        for j in lo..hi {
            let p = self.order[j];
            if p & !self.idx_mask > top {
                break;
            }
            if p & !self.idx_mask == top {
                let rec = self.record(p & self.idx_mask);
                if rec.get(..self.ksize) == Some(key) {
                    return rec.get(self.ksize..self.ksize + self.vsize);
                }
            }
        }
        None
    }
}

/// Writes `entries` as log `generation` in `dir` and opens it (tests).
#[cfg(test)]
pub(crate) fn log_of(
    fs: &crate::io::StdFs,
    dir: &std::path::Path,
    generation: u64,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> Arc<dyn FileHandle> {
    use super::log::{self, LogWriter};
    let (k, v) = entries.first().map_or((8, 2), |(k, v)| (k.len(), v.len()));
    let mut w = LogWriter::create(fs, dir, generation, k, v, 0).expect("create log");
    for (key, value) in entries {
        w.append(key, value).expect("append");
    }
    w.sync().expect("sync");
    log::open(fs, dir, generation, false).expect("open log")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FileSystem, StdFs};

    fn key(i: u32) -> Vec<u8> {
        u64::from(i % 1000).to_le_bytes().to_vec()
    }

    #[test]
    fn later_entries_win_across_logs_and_order_is_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = StdFs::new(false);
        // 3,000 writes of 1,000 keys over two logs: the last write wins.
        let first: Vec<_> = (0..2000u32).map(|i| (key(i), vec![1, i as u8])).collect();
        let second: Vec<_> = (2000..3000u32)
            .map(|i| (key(i), vec![2, i as u8]))
            .collect();
        let logs = [
            log_of(&fs, dir.path(), 1, &first),
            log_of(&fs, dir.path(), 2, &second),
        ];
        let f = FrozenLogs::build(&logs, 8, 2).expect("build");
        assert_eq!(f.len(), 1000);
        for i in 2000..3000u32 {
            let k = key(i);
            assert_eq!(f.get(key_hash(&k), &k), Some(&[2, i as u8][..]));
        }
        let absent = 5000u64.to_le_bytes();
        assert_eq!(f.get(key_hash(&absent), &absent), None);
        let hashes: Vec<u64> = (0..f.len())
            .map(|j| key_hash(f.entry(j).expect("entry").0))
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] < w[1]));
        assert!(f.entry(f.len()).is_none());
        // Rewrites left three quarters of the entries unused: compacted.
        assert_eq!(f.order.len(), 1000);
    }

    #[test]
    fn damaged_logs_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = StdFs::new(false);
        let entries: Vec<_> = (0..10u32).map(|i| (key(i), vec![1, 2])).collect();
        let log = log_of(&fs, dir.path(), 1, &entries);
        let path = log.path().to_path_buf();
        drop(log);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[HEADER as usize + 3] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        let open = |p: &std::path::Path| fs.open(p, crate::io::OpenMode::Read).expect("open");
        assert!(matches!(
            FrozenLogs::build(&[open(&path)], 8, 2),
            Err(Error::Corrupted(_))
        ));
        bytes.pop();
        std::fs::write(&path, &bytes).expect("write");
        assert!(matches!(
            FrozenLogs::build(&[open(&path)], 8, 2),
            Err(Error::Corrupted(_))
        ));
    }
}
