//! The `meta` file: the sizes and flags an index was created with, so that a
//! reopen with other sizes is refused instead of misreading every entry.
//! Layout: `magic[8] | key_size u32 | value_size u32 | flags u32 |
//! crc32(bytes 0..20) u32`, little-endian, written once atomically.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{FileSystem, OpenMode, atomic};

const MAGIC: &[u8; 8] = b"TZSIDXM1";
const LEN: usize = 24;

/// What `meta` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub key_size: u32,
    pub value_size: u32,
    pub flags: u32,
}

impl Meta {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.key_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.value_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        let crc = crc32fast::hash(&b[..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Reads `path`; `Ok(None)` if it does not exist.
pub(crate) fn read(fs: &dyn FileSystem, path: &Path) -> Result<Option<Meta>> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut b = [0u8; LEN];
    if file.len()? != LEN as u64 {
        return Err(Error::corrupted(
            path,
            "index meta file has the wrong length",
        ));
    }
    file.read_exact_at(&mut b, 0)?;
    if &b[..8] != MAGIC || crc32fast::hash(&b[..20]).to_le_bytes() != b[20..24] {
        return Err(Error::corrupted(path, "index meta file fails its checksum"));
    }
    let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    Ok(Some(Meta {
        key_size: u(8),
        value_size: u(12),
        flags: u(16),
    }))
}

/// Writes `path` atomically and durably.
pub(crate) fn write(fs: &dyn FileSystem, path: &Path, meta: &Meta) -> Result<()> {
    atomic::replace(fs, path, &meta.encode())
}
