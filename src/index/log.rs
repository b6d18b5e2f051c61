//! The append-only logs `log.<generation>`.
//!
//! Layout: a 32-byte header `magic[8] | generation u64 | key_size u32 |
//! value_size u32 | reserved u32 | crc32(bytes 0..28) u32`, then entries
//! `key | value | crc32(key | value) u32`, little-endian. The first entry that
//! is incomplete or fails its CRC ends the log: it is a tail torn by a crash
//! (cut off by the read-write open, ignored by read-only instances, which may
//! also be reading a write in progress).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, OpenMode};

const MAGIC: &[u8; 8] = b"TZSIDXL1";
pub(crate) const HEADER: u64 = 32;
/// Unflushed entries are written out once this many bytes are buffered.
const BUFFER: usize = 1 << 20;
/// Bytes read per `pread` when replaying.
const READ_CHUNK: usize = 1 << 20;

/// The file name of the log of `generation`.
pub(crate) fn name(generation: u64) -> String {
    format!("log.{generation}")
}

/// The generation of a log file name, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let g = name.strip_prefix("log.")?;
    if g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    g.parse().ok()
}

/// Generations of the logs in `dir`, ascending.
pub(crate) fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let mut gens: Vec<u64> = fs
        .read_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| parse_name(&e.name))
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

fn header(generation: u64, ksize: usize, vsize: usize) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    h[16..20].copy_from_slice(&(ksize as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(vsize as u32).to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends entries to one log, buffering until `write_out`/`sync`.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: Arc<dyn FileHandle>,
    generation: u64,
    /// Bytes of the file written so far (the next write goes there).
    end: u64,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Creates (or truncates) `log.<generation>` holding only its header,
    /// durably: the file and its directory entry are fsynced.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        generation: u64,
        ksize: usize,
        vsize: usize,
    ) -> Result<LogWriter> {
        let path = dir.join(name(generation));
        let file = fs.open(&path, OpenMode::Truncate)?;
        file.write_all_at(&header(generation, ksize, vsize), 0)?;
        file.sync()?;
        fs.sync_dir(dir)?;
        Ok(LogWriter {
            file,
            generation,
            end: HEADER,
            buf: Vec::new(),
        })
    }

    /// Continues an existing log whose valid entries end at `end`, cutting
    /// off anything after (a torn tail).
    pub(crate) fn resume(
        file: Arc<dyn FileHandle>,
        generation: u64,
        end: u64,
    ) -> Result<LogWriter> {
        if file.len()? != end {
            file.set_len(end)?;
            file.sync()?;
        }
        Ok(LogWriter {
            file,
            generation,
            end,
            buf: Vec::new(),
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn file(&self) -> &Arc<dyn FileHandle> {
        &self.file
    }

    /// Buffers one entry.
    pub(crate) fn append(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut h = crc32fast::Hasher::new();
        h.update(key);
        h.update(value);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(&h.finalize().to_le_bytes());
        if self.buf.len() >= BUFFER {
            if let Err(e) = self.write_out() {
                // The caller reports this entry as not added: it must not be
                // written later either. The earlier ones stay buffered.
                self.buf
                    .truncate(self.buf.len() - (key.len() + value.len() + 4));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Writes the buffered entries to the file (no fsync). On failure the
    /// file is cut back so that no partial entry stays in front of later ones.
    pub(crate) fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&self.buf, self.end) {
            let _ = self.file.set_len(self.end);
            return Err(e);
        }
        self.end += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes out and fsyncs: everything appended so far is durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync()
    }
}

/// Bytes of one entry, `key | value | crc32(key | value)`.
pub(crate) fn entry_size(ksize: usize, vsize: usize) -> usize {
    ksize + vsize + 4
}

/// The `key | value` of the whole entry `e` (of `kv_len + 4` bytes) if its
/// checksum matches.
pub(crate) fn checked_entry(e: &[u8], kv_len: usize) -> Option<&[u8]> {
    let (kv, crc) = e.split_at_checked(kv_len)?;
    (crc == crc32fast::hash(kv).to_le_bytes()).then_some(kv)
}

/// Where a replay stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Offset just past the last whole, valid entry (or 0 if the header is
    /// not whole yet).
    pub end: u64,
    /// True if bytes after `end` were ignored (torn or damaged tail).
    pub torn: bool,
}

/// Opens `log.<generation>` in `dir` for reading.
pub(crate) fn open(
    fs: &dyn FileSystem,
    dir: &Path,
    generation: u64,
    write: bool,
) -> Result<Arc<dyn FileHandle>> {
    let mode = if write {
        OpenMode::ReadWrite
    } else {
        OpenMode::Read
    };
    fs.open(&path(dir, generation), mode)
}

pub(crate) fn path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(name(generation))
}

/// Calls `apply(key, value)` for each valid entry of `file` starting at
/// `from` (0 to start with the header check). Stops at the first torn or
/// damaged entry.
pub(crate) fn replay(
    file: &dyn FileHandle,
    generation: u64,
    ksize: usize,
    vsize: usize,
    from: u64,
    mut apply: impl FnMut(&[u8], &[u8]),
) -> Result<Replayed> {
    let len = file.len()?;
    let mut pos = from;
    if pos < HEADER {
        if len < HEADER {
            return Ok(Replayed {
                end: 0,
                torn: len > 0,
            });
        }
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0)?;
        if h != header(generation, ksize, vsize) {
            let crc_ok = crc32fast::hash(&h[..28]).to_le_bytes() == h[28..32];
            if crc_ok && &h[..8] == MAGIC {
                return Err(Error::corrupted(
                    file.path(),
                    "log header does not match the index (generation or sizes)",
                ));
            }
            // A header torn by a crash right after creation: no entries.
            return Ok(Replayed { end: 0, torn: true });
        }
        pos = HEADER;
    }
    let esize = entry_size(ksize, vsize);
    let per_chunk = (READ_CHUNK / esize).max(1) * esize;
    let mut buf = vec![0u8; per_chunk];
    while pos < len {
        let want = ((len - pos) as usize).min(per_chunk);
        let got = file.read_at(&mut buf[..want], pos)?;
        let whole = got / esize * esize;
        for e in buf[..whole].chunks_exact(esize) {
            let Some(kv) = checked_entry(e, ksize + vsize) else {
                return Ok(Replayed {
                    end: pos,
                    torn: true,
                });
            };
            apply(&kv[..ksize], &kv[ksize..]);
            pos += esize as u64;
        }
        if whole < want || got < want {
            break;
        }
    }
    Ok(Replayed {
        end: pos,
        torn: pos < len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    #[test]
    fn append_replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let mut w = LogWriter::create(&fs, dir.path(), 3, 4, 2).unwrap();
        for i in 0u32..100 {
            w.append(&i.to_le_bytes(), &[i as u8, 1]).unwrap();
        }
        w.sync().unwrap();
        let f = open(&fs, dir.path(), 3, true).unwrap();
        let mut n = 0;
        let r = replay(f.as_ref(), 3, 4, 2, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r.torn), (100, false));
        // A torn final entry is ignored.
        f.set_len(r.end - 3).unwrap();
        let mut n = 0;
        let r2 = replay(f.as_ref(), 3, 4, 2, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r2.torn), (99, true));
        // Incremental replay from an offset.
        let mut n = 0;
        replay(f.as_ref(), 3, 4, 2, HEADER + 10 * 10, |_, _| n += 1).unwrap();
        assert_eq!(n, 89);
        assert_eq!(parse_name("log.12"), Some(12));
        assert_eq!(parse_name("log.x"), None);
    }
}
