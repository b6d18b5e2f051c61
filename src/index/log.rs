//! The append-only logs `log.<generation>`.
//!
//! Layout: a 32-byte header `magic[8] | generation u64 | key_size u32 |
//! value_size u32 | flags u32 | crc32(bytes 0..28) u32` (the value size on
//! disk and the index's flags: a log alone says how to read it), then entries
//! `key | value | crc32(generation u64 | offset u64 | key | value) u32`,
//! little-endian. The checksum binds each entry to its place: an entry
//! moved, duplicated or copied from another log fails it, so a damaged log
//! never replays its entries in another order (a tombstone before the
//! binding it removed).
//!
//! Entries are fixed-size, so a crash can only leave an *incomplete* last
//! entry (a torn tail: cut off by the read-write open, ignored by read-only
//! instances, which may also be reading a write in progress). A whole entry
//! that fails its CRC, or a garbled header in front of entries, is damage:
//! `Corrupted` naming the file and the offset, and nothing is cut. A log is
//! created whole (its header written and fsynced under a temporary name,
//! then renamed), so a log shorter than its header, or with a garbled one,
//! is damage too: a crash can never leave one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, OpenMode};

const MAGIC: &[u8; 8] = b"TZSIDXL2";
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
        // A directory named like a log is listed too: opening it is then
        // `Corrupted`, where skipping it would silently drop a log.
        .filter_map(|e| parse_name(&e.name))
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

fn header(generation: u64, ksize: usize, vsize: usize, flags: u32) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    h[16..20].copy_from_slice(&(ksize as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(vsize as u32).to_le_bytes());
    h[24..28].copy_from_slice(&flags.to_le_bytes());
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
        flags: u32,
    ) -> Result<LogWriter> {
        let path = dir.join(name(generation));
        let tmp = crate::io::atomic::tmp_path(&path)?;
        let file = fs.open(&tmp, OpenMode::Truncate)?;
        file.write_all_at(&header(generation, ksize, vsize, flags), 0)?;
        file.sync()?;
        fs.rename(&tmp, &path)?;
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
        let at = self.end + self.buf.len() as u64;
        let crc = entry_crc(self.generation, at, key, value);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(&crc.to_le_bytes());
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

/// Bytes of one entry, `key | value | crc`.
pub(crate) fn entry_size(ksize: usize, vsize: usize) -> usize {
    ksize + vsize + 4
}

/// The checksum of the entry `key | value` at offset `at` of the log of
/// `generation`.
pub(crate) fn entry_crc(generation: u64, at: u64, key: &[u8], value: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(&at.to_le_bytes());
    h.update(key);
    h.update(value);
    h.finalize()
}

/// The `key | value` of the whole entry `e` (of `kv_len + 4` bytes), read
/// at offset `at` of the log of `generation`, if its checksum matches.
pub(crate) fn checked_entry(e: &[u8], kv_len: usize, generation: u64, at: u64) -> Option<&[u8]> {
    let (kv, crc) = e.split_at_checked(kv_len)?;
    (crc == entry_crc(generation, at, kv, &[]).to_le_bytes()).then_some(kv)
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

/// What the first `HEADER` bytes of a log say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderState {
    /// The header this index writes for this generation.
    Valid,
    /// A whole, checksummed log header of another generation or sizes.
    Foreign,
    /// Not a log header (zeroed, garbled).
    Garbled,
}

/// Decodes a log header: `(generation, key_size, value_size, flags)` if
/// `h` is a whole header with its magic and checksum.
pub(crate) fn decode_header(h: &[u8]) -> Option<(u64, u32, u32, u32)> {
    let h = h.get(..HEADER as usize)?;
    if &h[..8] != MAGIC || crc32fast::hash(&h[..28]).to_le_bytes() != h[28..32] {
        return None;
    }
    let g = u64::from_le_bytes(h[8..16].try_into().ok()?);
    let k = u32::from_le_bytes(h[16..20].try_into().ok()?);
    let v = u32::from_le_bytes(h[20..24].try_into().ok()?);
    let f = u32::from_le_bytes(h[24..28].try_into().ok()?);
    Some((g, k, v, f))
}

/// Classifies the header `h` of the log of `generation`.
pub(crate) fn header_state(
    h: &[u8],
    generation: u64,
    ksize: usize,
    vsize: usize,
    flags: u32,
) -> HeaderState {
    if h == header(generation, ksize, vsize, flags) {
        HeaderState::Valid
    } else if decode_header(h).is_some() {
        HeaderState::Foreign
    } else {
        HeaderState::Garbled
    }
}

/// Calls `visit(offset, entry)` for each whole entry of `file` from `from`
/// to `len` (offsets past the header), reading in large chunks.
fn for_each_entry(
    file: &dyn FileHandle,
    from: u64,
    len: u64,
    esize: usize,
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let per_chunk = (READ_CHUNK / esize).max(1) * esize;
    let mut buf = vec![0u8; per_chunk];
    let mut pos = from;
    while len.saturating_sub(pos) >= esize as u64 {
        let want = usize::try_from(len - pos)
            .unwrap_or(per_chunk)
            .min(per_chunk)
            / esize
            * esize;
        file.read_exact_at(&mut buf[..want], pos)?;
        for e in buf[..want].chunks_exact(esize) {
            visit(pos, e)?;
            pos += esize as u64;
        }
    }
    Ok(pos)
}

/// Calls `apply(key, value)` for each entry of `file` starting at `from`
/// (0 to start with the header check). An incomplete last entry is a torn
/// tail (`torn`, not applied); a whole entry failing its checksum or a
/// garbled header with entries after it is `Corrupted` naming the offset.
pub(crate) fn replay(
    file: &dyn FileHandle,
    generation: u64,
    ksize: usize,
    vsize: usize,
    flags: u32,
    from: u64,
    mut apply: impl FnMut(&[u8], &[u8]),
) -> Result<Replayed> {
    let len = file.len()?;
    let mut pos = from;
    if pos < HEADER {
        if len < HEADER {
            return Err(Error::corrupted(
                file.path(),
                format!("log of {len} bytes at offset 0 is shorter than its {HEADER}-byte header"),
            ));
        }
        let mut h = [0u8; HEADER as usize];
        file.read_exact_at(&mut h, 0)?;
        match header_state(&h, generation, ksize, vsize, flags) {
            HeaderState::Valid => {}
            HeaderState::Foreign => {
                return Err(Error::corrupted(
                    file.path(),
                    "log header at offset 0 does not match the index (generation or sizes)",
                ));
            }
            HeaderState::Garbled => {
                return Err(Error::corrupted(
                    file.path(),
                    format!(
                        "log header at offset 0 is damaged, with {} bytes of entries after it",
                        len - HEADER
                    ),
                ));
            }
        }
        pos = HEADER;
    }
    let esize = entry_size(ksize, vsize);
    let end = for_each_entry(file, pos, len, esize, |at, e| {
        let Some(kv) = checked_entry(e, ksize + vsize, generation, at) else {
            return Err(Error::corrupted(
                file.path(),
                format!(
                    "log entry {} at offset {at} fails its checksum",
                    (at - HEADER) / esize as u64
                ),
            ));
        };
        apply(&kv[..ksize], &kv[ksize..]);
        Ok(())
    })?;
    Ok(Replayed {
        end,
        torn: end < len,
    })
}

/// Offsets of damaged entries a [`scan`] keeps.
const FIRST_BAD: usize = 4;

/// What [`scan`] found in one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub header: HeaderState,
    /// Whole entries that pass their checksum.
    pub good: u64,
    /// Whole entries that fail their checksum.
    pub bad: u64,
    /// The offsets of the first few of them (memory stays bounded
    /// whatever the file's size).
    pub first_bad: Vec<u64>,
    /// Bytes of an incomplete last entry (or of a header shorter than whole).
    pub tail: u64,
}

/// Reads a whole log without stopping at damage: `keep(key, value)` for
/// each entry that passes its checksum (whatever the header says).
pub(crate) fn scan(
    file: &dyn FileHandle,
    generation: u64,
    ksize: usize,
    vsize: usize,
    flags: u32,
    mut keep: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<Scanned> {
    let len = file.len()?;
    if len < HEADER {
        return Ok(Scanned {
            header: HeaderState::Garbled,
            good: 0,
            bad: 0,
            first_bad: Vec::new(),
            tail: len,
        });
    }
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)?;
    let mut s = Scanned {
        header: header_state(&h, generation, ksize, vsize, flags),
        good: 0,
        bad: 0,
        first_bad: Vec::new(),
        tail: 0,
    };
    let esize = entry_size(ksize, vsize);
    let end = for_each_entry(file, HEADER, len, esize, |at, e| {
        match checked_entry(e, ksize + vsize, generation, at) {
            Some(kv) => {
                s.good += 1;
                keep(&kv[..ksize], &kv[ksize..])?;
            }
            None => {
                s.bad += 1;
                if s.first_bad.len() < FIRST_BAD {
                    s.first_bad.push(at);
                }
            }
        }
        Ok(())
    })?;
    s.tail = len - end;
    Ok(s)
}

/// Writes a fresh log of `generation` at `path` entry by entry (the
/// repaired form of a damaged log), buffering a bounded amount.
pub(crate) struct LogCopy {
    file: Arc<dyn FileHandle>,
    generation: u64,
    end: u64,
    buf: Vec<u8>,
}

impl LogCopy {
    /// Creates `path` (truncating it) with the header of `generation`.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        path: &Path,
        generation: u64,
        ksize: usize,
        vsize: usize,
        flags: u32,
    ) -> Result<LogCopy> {
        let file = fs.open(path, OpenMode::Truncate)?;
        let mut buf = Vec::with_capacity(BUFFER);
        buf.extend_from_slice(&header(generation, ksize, vsize, flags));
        Ok(LogCopy {
            file,
            generation,
            end: 0,
            buf,
        })
    }

    /// Appends one entry, its checksum computed again.
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let at = self.end + self.buf.len() as u64;
        let crc = entry_crc(self.generation, at, key, value);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        if self.buf.len() >= BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<()> {
        self.file.write_all_at(&self.buf, self.end)?;
        self.end += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the rest and fsyncs.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    #[test]
    fn append_replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let mut w = LogWriter::create(&fs, dir.path(), 3, 4, 2, 0).unwrap();
        for i in 0u32..100 {
            w.append(&i.to_le_bytes(), &[i as u8, 1]).unwrap();
        }
        w.sync().unwrap();
        let f = open(&fs, dir.path(), 3, true).unwrap();
        let mut n = 0;
        let r = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r.torn), (100, false));
        // A torn final entry is ignored.
        f.set_len(r.end - 3).unwrap();
        let mut n = 0;
        let r2 = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r2.torn), (99, true));
        // Incremental replay from an offset.
        let mut n = 0;
        replay(f.as_ref(), 3, 4, 2, 0, HEADER + 10 * 10, |_, _| n += 1).unwrap();
        assert_eq!(n, 89);
        assert_eq!(parse_name("log.12"), Some(12));
        assert_eq!(parse_name("log.x"), None);
    }
}
