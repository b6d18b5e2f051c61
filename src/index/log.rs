//! The append-only logs `log.<generation>`.
//!
//! Layout: a 32-byte header `magic[8] | generation u64 | key_size u32 |
//! value_size u32 | flags u32 | crc32(bytes 0..28) u32` (the value size on
//! disk and the index's flags: a log alone says how to read it), two 16-byte
//! *synced-end slots* `synced_end u64 | closed bit 31, seq bits 0..31 u32 |
//! crc32(bytes 0..12) u32`,
//! then entries
//! `key | value | crc32(generation u64 | offset u64 | key | value) u32`,
//! little-endian. The checksum binds each entry to its place: an entry
//! moved, duplicated or copied from another log fails it, so a damaged log
//! never replays its entries in another order (a tombstone before the
//! binding it removed).
//!
//! The slots tell an unsynced tail from damage. After each fsync of the log
//! returns, the end it covered is written into the slot with the older
//! sequence number (not fsynced: the next fsync, or the one a clean close
//! adds, makes it durable; a torn slot write leaves the other slot). At
//! open, the valid slot with the higher sequence number gives the synced
//! end `S`: an invalid entry at or past `S` is a tail a crash or power cut
//! left (entries written after the last fsync may reach the disk in any
//! order), cut off by the read-write open and ignored by read-only
//! instances (which may also be reading a write in progress); an invalid
//! or incomplete entry before `S`, or a log shorter than `S`, is damage:
//! `Corrupted` naming the file and the offset, and nothing is cut. A slot
//! that fails its checksum is damage evidence too: the log is then read
//! strictly (only an incomplete last entry may be a tail). A clean close
//! marks the slot *closed*: bytes past a closed log's end are damage too,
//! since no writer appended after it. A garbled header
//! in front of entries is damage. A log is
//! created whole (its header written and fsynced under a temporary name,
//! then renamed), so a log shorter than its header, or with a garbled one,
//! is damage too: a crash can never leave one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{FileHandle, FileSystem, OpenMode};

const MAGIC: &[u8; 8] = b"TZSIDXL3";
/// Bytes of the checksummed header.
const HEAD: usize = 32;
/// Bytes of one synced-end slot.
const SLOT: usize = 16;
/// Where entries start: the header and the two slots.
pub(crate) const HEADER: u64 = (HEAD + 2 * SLOT) as u64;
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

fn header(generation: u64, ksize: usize, vsize: usize, flags: u32) -> [u8; HEAD] {
    let mut h = [0u8; HEAD];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    h[16..20].copy_from_slice(&(ksize as u32).to_le_bytes());
    h[20..24].copy_from_slice(&(vsize as u32).to_le_bytes());
    h[24..28].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The top bit of a slot's sequence word: the log was closed cleanly.
const CLOSED: u32 = 1 << 31;

fn slot(synced: u64, seq: u32, closed: bool) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..8].copy_from_slice(&synced.to_le_bytes());
    let word = (seq & !CLOSED) | if closed { CLOSED } else { 0 };
    b[8..12].copy_from_slice(&word.to_le_bytes());
    let crc = crc32fast::hash(&b[..12]);
    b[12..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The header and the slots of a new log whose entries are synced up to
/// `synced`: sequence number 1, in slot 1 (sequence `q` goes to slot
/// `q % 2`, so each write replaces the older slot).
fn prefix(generation: u64, ksize: usize, vsize: usize, flags: u32, synced: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER as usize);
    b.extend_from_slice(&header(generation, ksize, vsize, flags));
    b.extend_from_slice(&[0u8; SLOT]);
    b.extend_from_slice(&slot(synced, 1, false));
    b
}

/// What the two slots of a log say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Synced {
    /// The synced end of the newer valid slot, that slot's sequence, and
    /// whether it was written by a clean close.
    Up(u64, u32, bool),
    /// A slot fails its checksum, or none was ever written: read strictly.
    Unknown,
}

/// Decodes the slots (bytes `HEAD..HEADER` of a log).
pub(crate) fn synced_of(slots: &[u8]) -> Synced {
    let mut best: Option<(u64, u32, bool)> = None;
    for b in slots.chunks_exact(SLOT).take(2) {
        if b.iter().all(|&x| x == 0) {
            continue;
        }
        if crc32fast::hash(&b[..12]).to_le_bytes() != b[12..16] {
            return Synced::Unknown;
        }
        let mut e = [0u8; 8];
        e.copy_from_slice(&b[..8]);
        let mut q = [0u8; 4];
        q.copy_from_slice(&b[8..12]);
        let word = u32::from_le_bytes(q);
        let (end, seq, closed) = (u64::from_le_bytes(e), word & !CLOSED, word & CLOSED != 0);
        if best.is_none_or(|(_, s, _)| seq > s) {
            best = Some((end, seq, closed));
        }
    }
    match best {
        Some((end, seq, closed)) if end >= HEADER => Synced::Up(end, seq, closed),
        _ => Synced::Unknown,
    }
}

/// Appends entries to one log, buffering until `write_out`/`sync`.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: Arc<dyn FileHandle>,
    generation: u64,
    /// Bytes of the file written so far (the next write goes there).
    end: u64,
    /// The sequence number of the last slot written.
    seq: u32,
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
        file.write_all_at(&prefix(generation, ksize, vsize, flags, HEADER), 0)?;
        file.sync()?;
        fs.rename(&tmp, &path)?;
        fs.sync_dir(dir)?;
        Ok(LogWriter {
            file,
            generation,
            end: HEADER,
            seq: 1,
            buf: Vec::new(),
        })
    }

    /// Continues an existing log whose valid entries end at `end`, cutting
    /// off anything after (a tail a crash left), fsyncing what is kept (it
    /// may have survived only a process crash) and recording that end in a
    /// slot. `seq` is the sequence number of the log's newer slot.
    pub(crate) fn resume(
        file: Arc<dyn FileHandle>,
        generation: u64,
        end: u64,
        seq: u32,
    ) -> Result<LogWriter> {
        if file.len()? != end {
            file.set_len(end)?;
        }
        file.sync()?;
        let mut w = LogWriter {
            file,
            generation,
            end,
            seq,
            buf: Vec::new(),
        };
        w.write_slot(false)?;
        Ok(w)
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

    /// Writes out and fsyncs: everything appended so far is durable. The
    /// synced end is then recorded in a slot (durable at the next fsync).
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync()?;
        self.write_slot(false)
    }

    /// [`LogWriter::sync`], then the slot made durable too: for a log that
    /// receives no more entries (frozen, or at a clean close), so that its
    /// slot names its whole length and any damage to it is detected.
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync()?;
        self.write_slot(true)?;
        self.file.sync()
    }

    /// Records `end` (synced) in the slot with the older sequence number.
    fn write_slot(&mut self, closed: bool) -> Result<()> {
        self.seq = put_slot(self.file.as_ref(), self.end, self.seq, closed)?;
        Ok(())
    }
}

/// Writes `synced` into the slot of the sequence number after `seq` (the
/// older of the two slots); returns that sequence number.
fn put_slot(file: &dyn FileHandle, synced: u64, seq: u32, closed: bool) -> Result<u32> {
    let seq = next_seq(seq);
    let at = HEAD as u64 + u64::from(seq % 2) * SLOT as u64;
    file.write_all_at(&slot(synced, seq, closed), at)?;
    Ok(seq)
}

/// Seals a log that receives no more entries (a frozen log, at a clean
/// close): fsyncs it, names its whole length in a slot, and fsyncs the slot.
pub(crate) fn seal_file(file: &dyn FileHandle) -> Result<()> {
    let len = file.len()?;
    if len < HEADER {
        return Ok(());
    }
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)?;
    let seq = match synced_of(&h[HEAD..]) {
        Synced::Up(end, _, true) if end == len => return file.sync(),
        Synced::Up(_, seq, _) => seq,
        Synced::Unknown => 0,
    };
    file.sync()?;
    put_slot(file, len, seq, true)?;
    file.sync()
}

/// The sequence number after `seq` (never 0, never the closed bit).
fn next_seq(seq: u32) -> u32 {
    match (seq + 1) & !CLOSED {
        0 => 1,
        s => s,
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
    /// True if bytes after `end` were ignored (a tail a crash left).
    pub torn: bool,
    /// The sequence number of the log's newer slot (0 if none is valid).
    pub seq: u32,
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
    if len < HEADER {
        return Err(Error::corrupted(
            file.path(),
            format!("log of {len} bytes at offset 0 is shorter than its {HEADER}-byte header"),
        ));
    }
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)?;
    // Measured after the slots were read: a writer fsyncs entries before
    // it names them in a slot, so a read-only instance reading a live log
    // sees at least the synced end its slots name.
    let len = file.len()?;
    if from < HEADER {
        match header_state(&h[..HEAD], generation, ksize, vsize, flags) {
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
    }
    let synced = synced_of(&h[HEAD..]);
    let seq = match synced {
        Synced::Up(end, seq, closed) => {
            if len < end {
                return Err(Error::corrupted(
                    file.path(),
                    format!("log of {len} bytes is shorter than the {end} bytes it had fsynced"),
                ));
            }
            if closed && len > end {
                return Err(Error::corrupted(
                    file.path(),
                    format!(
                        "log continues past offset {end}, where it was closed cleanly ({len} bytes)"
                    ),
                ));
            }
            seq
        }
        Synced::Unknown => 0,
    };
    let esize = entry_size(ksize, vsize);
    let pos = from.max(HEADER);
    let mut invalid = None;
    let whole_end = for_each_entry(file, pos, len, esize, |at, e| {
        if invalid.is_some() {
            return Ok(());
        }
        match checked_entry(e, ksize + vsize, generation, at) {
            Some(kv) => apply(&kv[..ksize], &kv[ksize..]),
            None => invalid = Some(at),
        }
        Ok(())
    })?;
    let end = invalid.unwrap_or(whole_end);
    // Everything from `end` on is a tail if it starts at or past the synced
    // end: bytes no fsync had covered.
    let tail_allowed = match synced {
        Synced::Up(s, _, _) => end >= s,
        // Strict: only an incomplete last entry.
        Synced::Unknown => invalid.is_none(),
    };
    if end < len && !tail_allowed {
        let what = match invalid {
            Some(at) => format!(
                "log entry {} at offset {at} fails its checksum",
                (at - HEADER) / esize as u64
            ),
            None => format!("log ends inside the entry at offset {end}"),
        };
        let why = match synced {
            Synced::Up(s, _, _) => format!("{what}, before the {s} bytes the log had fsynced"),
            Synced::Unknown => format!("{what} (the log's synced-end slots are damaged)"),
        };
        return Err(Error::corrupted(file.path(), why));
    }
    Ok(Replayed {
        end,
        torn: end < len,
        seq,
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
    /// Bytes of the tail a read-write open cuts: an incomplete last entry,
    /// or what follows an invalid entry at or past the synced end (or a
    /// header shorter than whole).
    pub tail: u64,
    /// The synced end the slots name, when the log is shorter than it.
    pub short_of: Option<u64>,
    /// The end of a log closed cleanly, when bytes follow it.
    pub past_close: Option<u64>,
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
            short_of: None,
            past_close: None,
        });
    }
    let mut h = [0u8; HEADER as usize];
    file.read_exact_at(&mut h, 0)?;
    // After the slots, as in `replay`.
    let len = file.len()?;
    let synced = synced_of(&h[HEAD..]);
    let mut s = Scanned {
        header: header_state(&h[..HEAD], generation, ksize, vsize, flags),
        good: 0,
        bad: 0,
        first_bad: Vec::new(),
        tail: 0,
        short_of: match synced {
            Synced::Up(end, _, _) if len < end => Some(end),
            _ => None,
        },
        past_close: match synced {
            Synced::Up(end, _, true) if len > end => Some(end),
            _ => None,
        },
    };
    let esize = entry_size(ksize, vsize);
    // An invalid entry at or past the synced end starts the tail the open
    // cuts (as `replay` does): nothing from there on counts.
    let mut tail_from = None;
    let end = for_each_entry(file, HEADER, len, esize, |at, e| {
        if tail_from.is_some() {
            return Ok(());
        }
        match checked_entry(e, ksize + vsize, generation, at) {
            Some(kv) => {
                s.good += 1;
                keep(&kv[..ksize], &kv[ksize..])?;
            }
            None if matches!(synced, Synced::Up(end, _, false) if at >= end) => {
                tail_from = Some(at)
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
    s.tail = len - tail_from.unwrap_or(end);
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
        buf.extend_from_slice(&prefix(generation, ksize, vsize, flags, HEADER));
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

    /// Writes the rest, names the whole copy as synced in a slot (the copy
    /// is used only once this fsync returned), and fsyncs.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.write_out()?;
        // The prefix holds sequence number 1.
        put_slot(self.file.as_ref(), self.end, 1, true)?;
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
        assert_eq!((n, r.torn, r.seq), (100, false, 2));
        let synced = r.end;
        let esize = entry_size(4, 2) as u64;
        // Entries written after the fsync: a torn one is a tail, and so is
        // a lost (zeroed) one before intact ones, as a power cut leaves them.
        for i in 100u32..103 {
            w.append(&i.to_le_bytes(), &[i as u8, 1]).unwrap();
        }
        w.write_out().unwrap();
        f.set_len(synced + 3 * esize - 3).unwrap();
        let mut n = 0;
        let r2 = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r2.end, r2.torn), (102, synced + 2 * esize, true));
        f.write_all_at(&vec![0u8; esize as usize], synced).unwrap();
        let mut n = 0;
        let r3 = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| n += 1).unwrap();
        assert_eq!((n, r3.end, r3.torn), (100, synced, true));
        // Before the synced end, the same is damage.
        f.write_all_at(&vec![0u8; esize as usize], synced - esize)
            .unwrap();
        let e = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| ()).unwrap_err();
        assert!(e.to_string().contains("fsynced"), "{e}");
        f.set_len(synced - 3).unwrap();
        let e = replay(f.as_ref(), 3, 4, 2, 0, 0, |_, _| ()).unwrap_err();
        assert!(e.to_string().contains("shorter than the"), "{e}");
        // Incremental replay from an offset.
        w.sync().unwrap();
        let mut n = 0;
        f.set_len(synced - esize).unwrap();
        let mut w = LogWriter::resume(f.clone(), 3, synced - esize, 2).unwrap();
        w.append(&99u32.to_le_bytes(), &[99, 1]).unwrap();
        w.sync().unwrap();
        replay(f.as_ref(), 3, 4, 2, 0, HEADER + 10 * esize, |_, _| n += 1).unwrap();
        assert_eq!(n, 90);
        assert_eq!(parse_name("log.12"), Some(12));
        assert_eq!(parse_name("log.x"), None);
    }

    #[test]
    fn slots_alternate_and_a_damaged_slot_makes_the_log_strict() {
        let dir = tempfile::tempdir().unwrap();
        let fs = StdFs::new(false);
        let mut w = LogWriter::create(&fs, dir.path(), 1, 4, 2, 0).unwrap();
        let f = w.file().clone();
        let mut prev = None;
        for i in 0u32..5 {
            w.append(&i.to_le_bytes(), &[1, 1]).unwrap();
            w.sync().unwrap();
            let mut h = [0u8; HEADER as usize];
            f.read_exact_at(&mut h, 0).unwrap();
            let now = synced_of(&h[HEAD..]);
            assert_eq!(
                now,
                Synced::Up(
                    HEADER + u64::from(i + 1) * entry_size(4, 2) as u64,
                    i + 2,
                    false
                )
            );
            assert_ne!(Some(now), prev);
            prev = Some(now);
        }
        // One garbled slot: an invalid whole entry is damage even past the
        // other slot's end (only an incomplete last entry is a tail).
        f.write_all_at(&[0xAB], HEAD as u64 + 3).unwrap();
        let mut h = [0u8; HEADER as usize];
        f.read_exact_at(&mut h, 0).unwrap();
        assert_eq!(synced_of(&h[HEAD..]), Synced::Unknown);
        w.append(&9u32.to_le_bytes(), &[1, 1]).unwrap();
        w.write_out().unwrap();
        let esize = entry_size(4, 2) as u64;
        let end = f.len().unwrap();
        f.write_all_at(&[0u8; 4], end - 4).unwrap();
        assert!(replay(f.as_ref(), 1, 4, 2, 0, 0, |_, _| ()).is_err());
        f.set_len(end - 3).unwrap();
        let r = replay(f.as_ref(), 1, 4, 2, 0, 0, |_, _| ()).unwrap();
        assert_eq!((r.end, r.torn, r.seq), (end - esize, true, 0));
    }
}
