//! `.tzs-generation`: the write counter and the journal's end as applied.
//!
//! ```text
//! u64 generation | u64 journal end | crc32(the 16 bytes before)   (big-endian)
//! ```
//!
//! An empty file is a store never written: generation 0, and no journal
//! record can exist yet (a read-write open writes this file before any
//! commit), so an empty or missing file beside a non-empty journal is
//! damage. The file is rewritten whole, in one 20-byte write at offset 0,
//! by every writer under the store lock (see `mod.rs`). It is not synced
//! on each write: the counter only orders live writers and batches, and the
//! journal's end only says which records a live writer must roll forward
//! and which were acknowledged (a record before it that fails to read back
//! is damage, not a torn tail; see `journal.rs`). The end is synced before
//! the journal is emptied, so that it never claims more than the journal
//! holds after a crash. Any other size, or a checksum mismatch, is damage,
//! except at a read-write open beside a journal whose records all read back
//! whole: a power cut can tear the unsynced rewrite, and then the file is
//! rewritten (see `Inner::recover_generation` in `mod.rs`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::beneath::FileAt;
use crate::io::frame;

/// File name in the root.
pub(crate) const GENERATION: &str = ".tzs-generation";
/// Size of a written file.
pub const SIZE: usize = 20;
/// Reads of a file that failed its checksum before it counts as damaged: a
/// reader outside the lock may see a rewrite half done.
const READ_TRIES: u32 = 4;

/// What `.tzs-generation` holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// Bumped by every writer before it changes anything.
    pub generation: u64,
    /// The journal's end as last applied.
    pub journal_end: u64,
}

/// The file's bytes for `s`.
pub fn encode(s: State) -> [u8; SIZE] {
    let mut b = [0u8; SIZE];
    b[..8].copy_from_slice(&s.generation.to_be_bytes());
    b[8..16].copy_from_slice(&s.journal_end.to_be_bytes());
    let crc = frame::crc(&[&b[..16]]);
    b[16..].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes the whole file (`None` when empty); `Err` says what is wrong
/// (at which offset).
pub fn decode(bytes: &[u8]) -> std::result::Result<Option<State>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() != SIZE {
        return Err(format!(
            "{} bytes instead of {SIZE} (offset {})",
            bytes.len(),
            bytes.len().min(SIZE)
        ));
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    let generation = u64::from_be_bytes(word);
    word.copy_from_slice(&bytes[8..16]);
    let journal_end = u64::from_be_bytes(word);
    let stored = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    if frame::crc(&[&bytes[..16]]) != stored {
        return Err("checksum mismatch at offset 16".into());
    }
    Ok(Some(State {
        generation,
        journal_end,
    }))
}

/// Reads and decodes the file open as `file` (at `path`); `None` when it is
/// empty. A file that does not decode is read again a few times first (a
/// concurrent rewrite).
pub fn read(file: &FileAt, path: &Path) -> Result<Option<State>> {
    let mut tries = 0;
    loop {
        // One byte more than a valid file, to see a longer one.
        let mut b = [0u8; SIZE + 1];
        let mut n = 0;
        while n < b.len() {
            match file.read_at(&mut b[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", path, e)),
            }
        }
        match decode(&b[..n]) {
            Ok(s) => return Ok(s),
            Err(why) if tries + 1 >= READ_TRIES => {
                return Err(Error::corrupted(path, why));
            }
            Err(_) => {
                tries += 1;
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let s = State {
            generation: 7,
            journal_end: 1234,
        };
        let b = encode(s);
        assert_eq!(decode(&b), Ok(Some(s)));
        assert_eq!(decode(&[]), Ok(None));
        for i in 0..SIZE * 8 {
            let mut d = b;
            d[i / 8] ^= 1 << (i % 8);
            assert!(decode(&d).is_err(), "bit {i}");
        }
        assert!(decode(&b[..16]).is_err());
        assert!(decode(&[0u8; SIZE]).is_err());
    }
}
