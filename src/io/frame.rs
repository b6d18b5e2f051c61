//! CRC-32 framing: `len u32 | payload | crc32(len|payload) u32`, big-endian.
//! Used for every record that must be recognised as whole or torn.

use crate::error::Result;

/// Bytes added around a payload.
pub const OVERHEAD: usize = 8;

/// CRC-32 (crc32fast, IEEE) of the concatenation of `parts`.
pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Appends the framed `payload` to `out`.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) -> Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        crate::Error::invalid(format!("record of {} bytes exceeds 4 GiB", payload.len()))
    })?;
    let len_be = len.to_be_bytes();
    out.extend_from_slice(&len_be);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc(&[&len_be, payload]).to_be_bytes());
    Ok(())
}

/// A framed copy of `payload`.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
    encode_into(&mut out, payload)?;
    Ok(out)
}

/// What was found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole record: its payload and the bytes it occupied.
    Record(&'a [u8], usize),
    /// The buffer ends before the record does (a torn tail).
    Incomplete,
    /// The record is whole but its checksum does not match.
    BadChecksum,
}

/// Decodes the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < OVERHEAD {
        return Decoded::Incomplete;
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let Some(total) = len.checked_add(OVERHEAD) else {
        return Decoded::BadChecksum;
    };
    if buf.len() < total {
        return Decoded::Incomplete;
    }
    let payload = &buf[4..4 + len];
    let stored = u32::from_be_bytes([buf[4 + len], buf[5 + len], buf[6 + len], buf[7 + len]]);
    if crc(&[&buf[..4], payload]) != stored {
        return Decoded::BadChecksum;
    }
    Decoded::Record(payload, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let rec = encode(b"hello").unwrap();
        assert_eq!(decode(&rec), Decoded::Record(b"hello", rec.len()));
        assert_eq!(decode(&rec[..rec.len() - 1]), Decoded::Incomplete);
        let mut bad = rec.clone();
        bad[5] ^= 1;
        assert_eq!(decode(&bad), Decoded::BadChecksum);
        let empty = encode(b"").unwrap();
        assert_eq!(decode(&empty), Decoded::Record(b"", 8));
    }
}
