//! The block store's manifest: which floating stores are live and in which
//! role, and whether a merge was running. Every change of roles (a merge
//! starting, the final swap) is one atomic replacement of this file (temp,
//! fsync, rename, fsync dir), so a crash leaves the old or the new set of
//! stores, never a mix, and never a state where a flushed block is only in a
//! store that was already deleted.
//!
//! Format: `magic[8] | payload | crc32(payload) u32` with payload
//! `next_id u64 | rw u64 | n_ros u32 | n x ro u64 | merging u8 [ro_tmp u64] |
//! merges_done u64 | last_merge_ms u64 | history_mode u8 | history_offset u32 |
//! genesis descr | savepoint descr | caboose descr | highwatermark opt_i32`
//! (big-endian), where `descr` is `u8 tag [hash[32] level i32 when 1]` and
//! `opt_i32` is `u8 tag [i32 when 1]`.

use std::path::Path;

use crate::block::cemented::HistoryMode;
use crate::block::{HASH_SIZE, Hash};
use crate::error::{Error, Result};
use crate::io::{FileSystem, OpenMode, atomic, frame};

const MAGIC: &[u8; 8] = b"TZSBSM02";
/// File name of the manifest in the store's directory.
pub const FILE: &str = "manifest";

/// A block named by hash and level (Octez's block descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockDescr {
    /// The block's hash.
    pub hash: Hash,
    /// The block's level.
    pub level: i32,
}

/// The persisted state of a block store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The next unused floating store id.
    pub next_id: u64,
    /// The floating store receiving new blocks.
    pub rw: u64,
    /// Read-only floating stores, newest first.
    pub ros: Vec<u64>,
    /// The store a running merge fills (rolled back at open after a crash).
    pub merging: Option<u64>,
    /// Merges completed.
    pub merges_done: u64,
    /// Duration of the last merge in milliseconds.
    pub last_merge_ms: u64,
    /// History mode the store was created with.
    pub history_mode: HistoryMode,
    /// History offset (chunks kept by FULL/ROLLING).
    pub history_offset: u32,
    /// The chain's first block, recorded when it is stored (`None` for a
    /// store that holds no block yet, or whose manifest was rebuilt).
    pub genesis: Option<BlockDescr>,
    /// The lowest block stored with its metadata.
    pub savepoint: Option<BlockDescr>,
    /// The lowest block stored.
    pub caboose: Option<BlockDescr>,
    /// The highest level merged so far (Octez's cementing highwatermark):
    /// above the cemented top when ROLLING 0 cements nothing.
    pub highwatermark: Option<i32>,
}

impl Manifest {
    /// The manifest of a new store.
    pub fn new(history_mode: HistoryMode, history_offset: u32) -> Manifest {
        Manifest {
            next_id: 1,
            rw: 0,
            ros: Vec::new(),
            merging: None,
            merges_done: 0,
            last_merge_ms: 0,
            history_mode,
            history_offset,
            genesis: None,
            savepoint: None,
            caboose: None,
            highwatermark: None,
        }
    }

    /// Takes a fresh floating store id.
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Every floating store id the manifest refers to.
    pub fn live_ids(&self) -> Vec<u64> {
        let mut ids = vec![self.rw];
        ids.extend(&self.ros);
        ids.extend(self.merging);
        ids
    }

    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + 8 * self.ros.len());
        p.extend_from_slice(&self.next_id.to_be_bytes());
        p.extend_from_slice(&self.rw.to_be_bytes());
        p.extend_from_slice(&(self.ros.len() as u32).to_be_bytes());
        for id in &self.ros {
            p.extend_from_slice(&id.to_be_bytes());
        }
        match self.merging {
            Some(id) => {
                p.push(1);
                p.extend_from_slice(&id.to_be_bytes());
            }
            None => p.push(0),
        }
        p.extend_from_slice(&self.merges_done.to_be_bytes());
        p.extend_from_slice(&self.last_merge_ms.to_be_bytes());
        p.push(mode_tag(self.history_mode));
        p.extend_from_slice(&self.history_offset.to_be_bytes());
        for d in [self.genesis, self.savepoint, self.caboose] {
            match d {
                Some(d) => {
                    p.push(1);
                    p.extend_from_slice(&d.hash);
                    p.extend_from_slice(&d.level.to_be_bytes());
                }
                None => p.push(0),
            }
        }
        match self.highwatermark {
            Some(l) => {
                p.push(1);
                p.extend_from_slice(&l.to_be_bytes());
            }
            None => p.push(0),
        }
        let mut out = Vec::with_capacity(p.len() + 12);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&p);
        out.extend_from_slice(&frame::crc(&[&p]).to_be_bytes());
        out
    }

    fn decode(buf: &[u8], path: &Path) -> Result<Manifest> {
        let bad = |what: &str| Error::corrupted(path, format!("block store manifest: {what}"));
        if buf.len() < MAGIC.len() + 4 || &buf[..8] != MAGIC {
            return Err(bad("bad magic or too short"));
        }
        let p = &buf[8..buf.len() - 4];
        let crc = u32::from_be_bytes([
            buf[buf.len() - 4],
            buf[buf.len() - 3],
            buf[buf.len() - 2],
            buf[buf.len() - 1],
        ]);
        if frame::crc(&[p]) != crc {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Reader { buf: p, at: 0 };
        let next_id = r.u64().ok_or_else(|| bad("truncated"))?;
        let rw = r.u64().ok_or_else(|| bad("truncated"))?;
        let n = r.u32().ok_or_else(|| bad("truncated"))? as usize;
        // Bounded by the bytes that are there before anything is reserved.
        if n > (p.len() - r.at) / 8 {
            return Err(bad(&format!("{n} stores do not fit in the manifest")));
        }
        let mut ros = Vec::with_capacity(n);
        for _ in 0..n {
            ros.push(r.u64().ok_or_else(|| bad("truncated"))?);
        }
        let merging = match r.u8().ok_or_else(|| bad("truncated"))? {
            0 => None,
            1 => Some(r.u64().ok_or_else(|| bad("truncated"))?),
            _ => return Err(bad("bad merge tag")),
        };
        let merges_done = r.u64().ok_or_else(|| bad("truncated"))?;
        let last_merge_ms = r.u64().ok_or_else(|| bad("truncated"))?;
        let history_mode = mode_of(r.u8().ok_or_else(|| bad("truncated"))?)
            .ok_or_else(|| bad("bad history mode"))?;
        let history_offset = r.u32().ok_or_else(|| bad("truncated"))?;
        let mut descr = || -> Result<Option<BlockDescr>> {
            match r.u8().ok_or_else(|| bad("truncated"))? {
                0 => Ok(None),
                1 => {
                    let hash = r.take::<HASH_SIZE>().ok_or_else(|| bad("truncated"))?;
                    let level = r.i32().ok_or_else(|| bad("truncated"))?;
                    Ok(Some(BlockDescr { hash, level }))
                }
                _ => Err(bad("bad block descriptor tag")),
            }
        };
        let genesis = descr()?;
        let savepoint = descr()?;
        let caboose = descr()?;
        let highwatermark = match r.u8().ok_or_else(|| bad("truncated"))? {
            0 => None,
            1 => Some(r.i32().ok_or_else(|| bad("truncated"))?),
            _ => return Err(bad("bad highwatermark tag")),
        };
        if r.at != p.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(Manifest {
            next_id,
            rw,
            ros,
            merging,
            merges_done,
            last_merge_ms,
            history_mode,
            history_offset,
            genesis,
            savepoint,
            caboose,
            highwatermark,
        })
    }

    /// Reads the manifest in `dir`; `None` if there is none (a new store).
    pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(FILE);
        let file = match fs.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.len()?;
        if len > 64 << 20 {
            return Err(Error::corrupted(&path, "block store manifest is too large"));
        }
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, 0)?;
        Manifest::decode(&buf, &path).map(Some)
    }

    /// Replaces the manifest in `dir` atomically and durably.
    pub fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        atomic::replace(fs, &dir.join(FILE), &self.encode())
    }
}

/// The C/persisted tag of a history mode.
pub fn mode_tag(m: HistoryMode) -> u8 {
    match m {
        HistoryMode::Archive => 0,
        HistoryMode::Full => 1,
        HistoryMode::Rolling => 2,
    }
}

/// The history mode of a tag.
pub fn mode_of(tag: u8) -> Option<HistoryMode> {
    match tag {
        0 => Some(HistoryMode::Archive),
        1 => Some(HistoryMode::Full),
        2 => Some(HistoryMode::Rolling),
        _ => None,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.buf.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut m = Manifest::new(HistoryMode::Rolling, 3);
        m.ros = vec![5, 2];
        m.merging = Some(7);
        m.merges_done = 9;
        m.genesis = Some(BlockDescr {
            hash: [1; 32],
            level: 0,
        });
        m.savepoint = Some(BlockDescr {
            hash: [2; 32],
            level: 178,
        });
        m.highwatermark = Some(179);
        let enc = m.encode();
        assert_eq!(Manifest::decode(&enc, Path::new("m")).unwrap(), m);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 4;
            assert!(
                Manifest::decode(&bad, Path::new("m")).is_err(),
                "flip at {i}"
            );
        }
    }
}
