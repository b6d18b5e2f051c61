//! Keys: validated lists of path segments.
//!
//! A key string is split on `/` and empty segments are dropped (Mirage_kv's
//! `Key.v`), so `"/a//b/"` is `a/b` and `""` or `"/"` is the root. Each
//! segment must be 1..=255 bytes of UTF-8 without NUL, must not be `.` or
//! `..`, and must not start with `.tzs` (reserved for the store's own files).
//! Anything else is `InvalidArgument`, so a valid key only ever names a
//! path strictly below the root, one plain name per level. A key has at
//! most [`MAX_DEPTH`] segments.

use std::fmt;

use crate::error::{Error, Result};

/// Longest segment in bytes (`NAME_MAX` on Linux).
pub const MAX_SEGMENT: usize = 255;

/// Most segments in a key: bounds every walk down the tree (one descriptor
/// per level), far above what a key/value layout needs.
pub const MAX_DEPTH: usize = 256;

/// Prefix of the names the store keeps for itself (journal, lock, temporary
/// files). Such entries are never listed and never accepted in a key.
pub const RESERVED_PREFIX: &str = ".tzs";

/// A validated key; the empty key is the root dictionary. Keys compare
/// segment-wise; equality and hashing use the joined path alone (it
/// determines the segments, which never contain `/`).
#[derive(Debug, Clone, PartialOrd, Ord, Default)]
pub struct Key {
    segs: Vec<String>,
    /// The segments joined by `/` (the path below the root), kept so that
    /// hot paths resolve a key without rebuilding it.
    path: String,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.path == other.path
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.path.hash(h)
    }
}

/// Checks one segment; `Ok` means it names a plain entry below its parent.
pub fn check_segment(seg: &str) -> Result<()> {
    if seg.is_empty() {
        return Err(Error::invalid("empty key segment"));
    }
    if seg.len() > MAX_SEGMENT {
        return Err(Error::invalid(format!(
            "key segment of {} bytes exceeds {MAX_SEGMENT}",
            seg.len()
        )));
    }
    if seg.contains('\0') || seg.contains('/') {
        return Err(Error::invalid(format!(
            "key segment {seg:?} contains NUL or '/'"
        )));
    }
    if seg == "." || seg == ".." {
        return Err(Error::invalid(format!(
            "key segment {seg:?} is not allowed"
        )));
    }
    if is_reserved(seg) {
        return Err(Error::invalid(format!(
            "key segment {seg:?} is reserved (names starting with {RESERVED_PREFIX})"
        )));
    }
    Ok(())
}

/// True for names the store keeps for itself.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

impl Key {
    /// Parses and validates a key string.
    pub fn parse(s: &str) -> Result<Key> {
        let mut segs = Vec::new();
        for seg in s.split('/').filter(|s| !s.is_empty()) {
            check_segment(seg)
                .map_err(|e| Error::invalid(format!("key {s:?}: {}", e.message())))?;
            if segs.len() == MAX_DEPTH {
                return Err(Error::invalid(format!(
                    "key of more than {MAX_DEPTH} segments (starting {:?})",
                    s.chars().take(64).collect::<String>()
                )));
            }
            segs.push(seg.to_string());
        }
        Ok(Key::from_segs(segs))
    }

    fn from_segs(segs: Vec<String>) -> Key {
        let path = segs.join("/");
        Key { segs, path }
    }

    /// The relative path below the root (`""` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The root dictionary.
    pub fn root() -> Key {
        Key::default()
    }

    /// True for the root.
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[String] {
        &self.segs
    }

    /// The parent key (the root's parent is the root).
    pub fn parent(&self) -> Key {
        let mut segs = self.segs.clone();
        segs.pop();
        Key::from_segs(segs)
    }

    /// The parent's path below the root (`""` for a top-level key or the
    /// root), without building the parent key.
    pub fn parent_path(&self) -> &str {
        let cut = self.path.len() - self.basename().len();
        &self.path[..cut.saturating_sub(1)]
    }

    /// The paths of the ancestors, deepest first, ending with the root's
    /// `""` (none for the root itself), without building keys.
    pub fn ancestor_paths(&self) -> impl Iterator<Item = &str> {
        let p = self.path.as_str();
        let root = (!p.is_empty()).then_some("");
        p.match_indices('/')
            .rev()
            .map(move |(i, _)| &p[..i])
            .chain(root)
    }

    /// The last segment (`""` for the root).
    pub fn basename(&self) -> &str {
        self.segs.last().map(String::as_str).unwrap_or("")
    }

    /// `self/seg`; `seg` must be a valid segment and `self` shallower than
    /// [`MAX_DEPTH`].
    pub fn child(&self, seg: &str) -> Result<Key> {
        check_segment(seg)?;
        if self.segs.len() >= MAX_DEPTH {
            return Err(Error::invalid(format!(
                "{self}/{seg}: more than {MAX_DEPTH} segments"
            )));
        }
        let mut segs = self.segs.clone();
        segs.push(seg.to_string());
        Ok(Key::from_segs(segs))
    }

    /// True when `self` is `other` or one of its ancestors (segment-wise, so
    /// `a` is a prefix of `a/b` but not of `ab`).
    pub fn is_prefix_of(&self, other: &Key) -> bool {
        other.segs.len() >= self.segs.len() && other.segs[..self.segs.len()] == self.segs[..]
    }

    /// Number of segments.
    pub fn depth(&self) -> usize {
        self.segs.len()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segs.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segs {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_drops_empty_segments() {
        assert_eq!(Key::parse("//a//b/").unwrap(), Key::parse("a/b").unwrap());
        assert!(Key::parse("").unwrap().is_root());
        assert!(Key::parse("/").unwrap().is_root());
        assert_eq!(Key::parse("a/b").unwrap().to_string(), "/a/b");
        assert_eq!(Key::parse("a/bc/d").unwrap().parent_path(), "a/bc");
        assert_eq!(Key::parse("a").unwrap().parent_path(), "");
        assert_eq!(Key::root().parent_path(), "");
        let k = Key::parse("a/bc/d").unwrap();
        assert_eq!(k.ancestor_paths().collect::<Vec<_>>(), ["a/bc", "a", ""]);
        assert_eq!(Key::root().ancestor_paths().count(), 0);
    }

    #[test]
    fn bad_segments_are_rejected() {
        for k in [
            "..",
            "a/../b",
            ".",
            "a/./b",
            "a\0b",
            ".tzs-journal",
            "x/.tzsfoo",
        ] {
            assert!(
                matches!(Key::parse(k), Err(Error::InvalidArgument(_))),
                "{k:?}"
            );
        }
        assert!(Key::parse(&"x".repeat(255)).is_ok());
        assert!(Key::parse(&"x".repeat(256)).is_err());
        assert!(Key::parse(".tz").is_ok());
        let deepest = vec!["a"; MAX_DEPTH].join("/");
        let k = Key::parse(&deepest).unwrap();
        assert_eq!(k.depth(), MAX_DEPTH);
        assert!(matches!(k.child("b"), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            Key::parse(&format!("{deepest}/b")),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn prefix_is_segment_wise() {
        let a = Key::parse("a").unwrap();
        assert!(a.is_prefix_of(&Key::parse("a/b").unwrap()));
        assert!(a.is_prefix_of(&a));
        assert!(!a.is_prefix_of(&Key::parse("ab").unwrap()));
        assert!(Key::root().is_prefix_of(&a));
    }
}
