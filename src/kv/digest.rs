//! `digest` and `last_modified`.
//!
//! **Digest encoding.** The digest of a value is the SHA-256 of its bytes
//! (what `sha256sum` prints). The digest of a dictionary is the SHA-256 of
//!
//! ```text
//! "TZSKVDIR"                                  8 ASCII bytes (domain tag)
//! for each visible entry, sorted by name bytes:
//!     u32 big-endian   length of the name in bytes
//!     name             UTF-8 bytes
//!     u8               kind: 1 = value, 2 = dictionary
//!     [u8; 32]         the entry's digest (recursively)
//! ```
//!
//! The tag keeps an empty dictionary from sharing the digest of an empty
//! value. Reserved (`.tzs*`) and foreign entries are not part of it, so two
//! stores holding the same keys and values have the same root digest.
//!
//! **Time.** `last_modified` is `(days, picoseconds)` since the Unix epoch,
//! as Ptime's `d_ps` span: `days` may be negative, `0 <= picoseconds <
//! 86_400 * 10^12`. A value's time is its file's mtime (nanosecond
//! precision); a dictionary's is the latest mtime of its direct entries (one
//! level deep), or its directory's own mtime when it is empty.

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::io::beneath::Dir;
use crate::kv::Kind;
use crate::kv::key::Key;
use crate::kv::tree::{At, Tree, kind_of};

const DIR_TAG: &[u8; 8] = b"TZSKVDIR";
const PS_PER_NS: u64 = 1_000;
const PS_PER_S: u64 = 1_000_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `(days, picoseconds)` of a `(seconds, nanoseconds)` Unix time.
pub fn days_ps(sec: i64, nsec: i64) -> (i64, u64) {
    let days = sec.div_euclid(SECONDS_PER_DAY);
    let rem = sec.rem_euclid(SECONDS_PER_DAY) as u64;
    let ns = nsec.clamp(0, 999_999_999) as u64;
    (days, rem * PS_PER_S + ns * PS_PER_NS)
}

impl Tree {
    /// `last_modified` of `key` (see the module doc).
    pub(crate) fn last_modified(&self, key: &Key) -> Result<(i64, u64)> {
        let st = if key.is_root() {
            self.root
                .stat()
                .map_err(|e| self.err("last_modified", key, e))?
        } else {
            self.stat(key, "last_modified")?.1
        };
        if kind_of(&st, key)? == Kind::Value {
            return Ok(days_ps(st.mtime_sec, st.mtime_nsec));
        }
        let dir = self.open_dict(key, "last_modified")?;
        let mut latest = (st.mtime_sec, st.mtime_nsec);
        let mut any = false;
        for (name, _) in self.entries(&dir, key, "last_modified")? {
            match dir.stat_at(&name) {
                Ok(e) => {
                    let t = (e.mtime_sec, e.mtime_nsec);
                    if !any || t > latest {
                        latest = t;
                    }
                    any = true;
                }
                // Removed since the listing: not an entry any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err("last_modified", key, e)),
            }
        }
        Ok(days_ps(latest.0, latest.1))
    }

    /// `digest` of `key` (see the module doc for the encoding).
    pub(crate) fn digest(&self, key: &Key) -> Result<[u8; 32]> {
        match self.kind(key)? {
            None => Err(crate::Error::NotFound(format!("digest {key}: not found"))),
            Some(Kind::Value) => {
                let dir = self.parent(key, "digest")?;
                self.value_digest(&dir, key)
            }
            Some(Kind::Dictionary) => {
                let dir = self.open_dict(key, "digest")?;
                self.dict_digest(dir, key)
            }
        }
    }

    fn value_digest(&self, parent: &Dir, key: &Key) -> Result<[u8; 32]> {
        let file = parent
            .open_read(key.basename())
            .map_err(|e| self.err("digest", key, e))?;
        // Opened non-blocking; only a regular file is read (the entry may
        // have been replaced since it was listed).
        let st = file.stat().map_err(|e| self.err("digest", key, e))?;
        if kind_of(&st, key)? != Kind::Value {
            return Err(crate::Error::ValueExpected(format!(
                "digest {key}: a dictionary, not a value"
            )));
        }
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        loop {
            let n = match file.read_at(&mut buf, at) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err("digest", key, e)),
            };
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            at += n as u64;
        }
        Ok(h.finalize().into())
    }

    /// The digest of the dictionary `dir` at `key`, walked depth first with
    /// an explicit stack (one open descriptor per level): a deep tree costs
    /// no call stack, and one deeper than
    /// [`MAX_DEPTH`](crate::kv::key::MAX_DEPTH) below the root is
    /// `InvalidArgument`.
    fn dict_digest(&self, dir: At<'_>, key: &Key) -> Result<[u8; 32]> {
        struct Level<'a> {
            dir: At<'a>,
            key: Key,
            entries: std::vec::IntoIter<(String, Kind)>,
            h: Sha256,
        }
        fn level<'a>(tree: &Tree, dir: At<'a>, key: Key) -> Result<Level<'a>> {
            let entries = tree.entries(&dir, &key, "digest")?.into_iter();
            let mut h = Sha256::new();
            h.update(DIR_TAG);
            Ok(Level {
                dir,
                key,
                entries,
                h,
            })
        }
        let mut stack = vec![level(self, dir, key.clone())?];
        while let Some(top) = stack.last_mut() {
            match top.entries.next() {
                Some((name, Kind::Value)) => {
                    let child = top.key.child(&name).map_err(|e| too_deep(key, e))?;
                    let d = self.value_digest(&top.dir, &child)?;
                    feed(&mut top.h, &name, Kind::Value, &d);
                }
                Some((name, Kind::Dictionary)) => {
                    let child = top.key.child(&name).map_err(|e| too_deep(key, e))?;
                    let sub = top
                        .dir
                        .open_dir(&name)
                        .map_err(|e| self.err("digest", &child, e))?;
                    let next = level(self, At::Sub(sub), child)?;
                    stack.push(next);
                }
                None => {
                    let Some(done) = stack.pop() else { break };
                    let d: [u8; 32] = done.h.finalize().into();
                    match stack.last_mut() {
                        Some(parent) => {
                            feed(&mut parent.h, done.key.basename(), Kind::Dictionary, &d)
                        }
                        None => return Ok(d),
                    }
                }
            }
        }
        Err(crate::Error::Inconsistent(format!(
            "digest {key}: walk ended without a result"
        )))
    }
}

/// Adds one entry to a dictionary's hash (see the module doc).
fn feed(h: &mut Sha256, name: &str, kind: Kind, digest: &[u8; 32]) {
    h.update((name.len() as u32).to_be_bytes());
    h.update(name.as_bytes());
    h.update([kind as u8]);
    h.update(digest);
}

fn too_deep(key: &Key, e: crate::Error) -> crate::Error {
    crate::Error::invalid(format!(
        "digest {key}: the tree below is deeper than keys may be ({})",
        e.message()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_ps_splits_and_handles_negative_times() {
        assert_eq!(days_ps(0, 0), (0, 0));
        assert_eq!(days_ps(86_401, 5), (1, PS_PER_S + 5_000));
        assert_eq!(days_ps(-1, 0), (-1, 86_399 * PS_PER_S));
    }
}
