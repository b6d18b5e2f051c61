//! The `meta` file: the sizes and flags an index was created with, so that a
//! reopen with other sizes is refused instead of misreading every entry, and
//! the generation of the data file last published, so that a missing or
//! older `data` is seen as damage instead of read as an emptier index.
//!
//! Layout (format 2): `magic[8] | key_size u32 | value_size u32 | flags u32
//! | data_generation u64 | crc32(bytes 0..28) u32`, little-endian, replaced
//! atomically. `data_generation` is a lower bound: a crash between a merge's
//! rename of `data` and the update of `meta` leaves `data` one generation
//! ahead, which the next read-write open records.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{FileSystem, OpenMode, atomic};

const MAGIC: &[u8; 8] = b"TZSIDXM2";
/// Format 1 (no data generation), written before issue #15.
const MAGIC_V1: &[u8; 8] = b"TZSIDXM1";
pub(crate) const LEN: usize = 32;

/// What `meta` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub key_size: u32,
    pub value_size: u32,
    pub flags: u32,
    /// Generation of the last data file published (0: none yet).
    pub data_generation: u64,
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&self.key_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.value_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.flags.to_le_bytes());
        b[20..28].copy_from_slice(&self.data_generation.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Same sizes and flags (the generation may differ).
    pub(crate) fn same_shape(&self, other: &Meta) -> bool {
        (self.key_size, self.value_size, self.flags)
            == (other.key_size, other.value_size, other.flags)
    }

    /// Decodes the bytes of a meta file; the error says what is wrong.
    pub(crate) fn decode(b: &[u8]) -> std::result::Result<Meta, String> {
        if b.len() != LEN {
            return Err(format!(
                "index meta file is {} bytes, not {LEN} (offset 0)",
                b.len()
            ));
        }
        if &b[..8] == MAGIC_V1 {
            return Err("index meta file of format 1, not readable by this version".into());
        }
        if &b[..8] != MAGIC || crc32fast::hash(&b[..28]).to_le_bytes() != b[28..32] {
            return Err("index meta file at offset 0 fails its checksum".into());
        }
        let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut g = [0u8; 8];
        g.copy_from_slice(&b[20..28]);
        Ok(Meta {
            key_size: u(8),
            value_size: u(12),
            flags: u(16),
            data_generation: u64::from_le_bytes(g),
        })
    }
}

/// Reads `path`; `Ok(None)` if it does not exist.
pub(crate) fn read(fs: &dyn FileSystem, path: &Path) -> Result<Option<Meta>> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(f) => f,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.len()?;
    if len != LEN as u64 {
        return Err(Error::corrupted(
            path,
            format!("index meta file is {len} bytes, not {LEN} (offset 0)"),
        ));
    }
    let mut b = [0u8; LEN];
    file.read_exact_at(&mut b, 0)?;
    Meta::decode(&b)
        .map(Some)
        .map_err(|m| Error::corrupted(path, m))
}

/// Writes `path` atomically and durably.
pub(crate) fn write(fs: &dyn FileSystem, path: &Path, meta: &Meta) -> Result<()> {
    atomic::replace(fs, path, &meta.encode())
}
