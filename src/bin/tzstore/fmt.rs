//! Formatting shared by every command: hex both ways, integers with
//! thousands separators, sizes, and the size of a store on disk (one
//! function, so that `demo` and `info` state the same measure).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tzstore::{Error, Result};

/// Lower-case hex of all of `bytes` (hashes are never shortened).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses hex (upper or lower case, an optional `0x`); `what` names the
/// argument in the error.
pub fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>> {
    let t = s.strip_prefix("0x").unwrap_or(s);
    if t.len() % 2 != 0 {
        return Err(Error::invalid(format!(
            "{what} {s:?} is not hex: odd number of digits ({})",
            t.len()
        )));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            t.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| {
                    Error::invalid(format!("{what} {s:?} is not hex (at character {i})"))
                })
        })
        .collect()
}

/// A 32-byte block hash from 64 hex digits.
pub fn parse_hash(s: &str) -> Result<[u8; 32]> {
    let v = parse_hex("block hash", s)?;
    v.as_slice().try_into().map_err(|_| {
        Error::invalid(format!(
            "block hash {s:?} has {} bytes, a block hash has 32 (64 hex digits)",
            v.len()
        ))
    })
}

/// `54172` -> `54,172`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An events-per-second rate as an integer with separators.
pub fn rate(count: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    thousands((count as f64 / secs).round() as u64)
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A bytes-per-second rate as a whole number of its unit (`166 MiB/s`).
pub fn bytes_rate(per_sec: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = per_sec as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{} {}/s", thousands(v.round() as u64), UNITS[u])
}

/// What a store occupies: the sum of its files' sizes and the space the
/// file system allocated for them (what `du` shows; less than the sizes
/// for sparse files, more for preallocated ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Sum of the files' lengths.
    pub bytes: u64,
    /// Sum of the blocks allocated to them.
    pub allocated: u64,
    /// Regular files counted.
    pub files: u64,
}

impl DiskUsage {
    /// The one line `info` and `demo` print.
    pub fn line(&self) -> String {
        format!(
            "{} in {} files ({} allocated)",
            human_bytes(self.bytes),
            thousands(self.files),
            human_bytes(self.allocated)
        )
    }
}

/// Walks `path` (a file or a directory, links not followed) and sums what
/// its files occupy. Files that vanish during the walk (a writer's merge
/// deleting them) are skipped.
pub fn disk_usage(path: &Path) -> Result<DiskUsage> {
    let mut usage = DiskUsage::default();
    let mut todo = vec![path.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && p != path => continue,
            Err(e) => return Err(Error::io("stat", &p, e)),
        };
        if m.is_dir() {
            let rd = match std::fs::read_dir(&p) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("list", &p, e)),
            };
            for e in rd {
                let e = e.map_err(|e| Error::io("list", &p, e))?;
                todo.push(e.path());
            }
        } else if m.is_file() {
            usage.bytes += m.len();
            usage.allocated += m.blocks() * 512;
            usage.files += 1;
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_rates_are_integers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(54_172), "54,172");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(541_727, 10.0), "54,173");
        assert_eq!(bytes_rate(174_168_473), "166 MiB/s");
        assert_eq!(bytes_rate(512), "512 B/s");
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(parse_hex("k", "0x00ff10").ok(), Some(vec![0, 255, 16]));
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        assert!(parse_hex("k", "abc").is_err());
        assert!(parse_hex("k", "zz").is_err());
        assert!(parse_hash("00").is_err());
    }
}
