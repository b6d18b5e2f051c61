//! The one error type of the Rust core. Each variant maps to exactly one C
//! status (`tzs_status`), so the C layer converts without losing meaning.

use std::fmt;
use std::path::Path;

/// Result alias used by every fallible core function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the core can report. Variants carry a human-readable message
/// that names the path or key concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The key, value or file asked for does not exist.
    NotFound(String),
    /// An iterator reached its end (used by the C layer's iterators).
    Done,
    /// The caller passed an argument the operation cannot accept.
    InvalidArgument(String),
    /// An operating-system I/O error, with the path and the OS error text.
    Io(String),
    /// On-disk data failed a checksum or structural check.
    Corrupted(String),
    /// A write was attempted through a read-only handle.
    ReadOnly(String),
    /// Another read-write instance holds the store's lock file.
    Locked(String),
    /// A batch conflicts with changes made since it began.
    Conflict(String),
    /// A batch conflicted more often than its retry budget allows.
    TooManyRetries(String),
    /// A value was expected but a dictionary was found (kv).
    ValueExpected(String),
    /// A dictionary was expected but a value was found (kv).
    DictionaryExpected(String),
    /// The destination key already exists (kv).
    KeyExists(String),
    /// The device is full (ENOSPC, EDQUOT).
    NoSpace(String),
    /// Data handed to the store breaks one of its invariants.
    Inconsistent(String),
    /// The handle was closed.
    Closed(String),
    /// A panic was caught at the C boundary.
    Panic(String),
}

impl Error {
    /// Wraps an OS error, mapping ENOSPC/EDQUOT to [`Error::NoSpace`] and
    /// ENOTDIR to [`Error::DictionaryExpected`] is left to callers that know
    /// the key (kv); here only the space errors are special.
    pub fn io(what: &str, path: &Path, err: std::io::Error) -> Error {
        let msg = format!("{what} {}: {err}", path.display());
        match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace(msg),
            _ => Error::Io(msg),
        }
    }

    /// Shorthand for a corruption report on `path`.
    pub fn corrupted(path: &Path, detail: impl fmt::Display) -> Error {
        Error::Corrupted(format!("{}: {detail}", path.display()))
    }

    /// Shorthand for an invalid-argument report.
    pub fn invalid(detail: impl Into<String>) -> Error {
        Error::InvalidArgument(detail.into())
    }

    /// The variant's name, as the C status name without the `TZS_` prefix.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NOT_FOUND",
            Error::Done => "DONE",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Io(_) => "IO",
            Error::Corrupted(_) => "CORRUPTED",
            Error::ReadOnly(_) => "READ_ONLY",
            Error::Locked(_) => "LOCKED",
            Error::Conflict(_) => "CONFLICT",
            Error::TooManyRetries(_) => "TOO_MANY_RETRIES",
            Error::ValueExpected(_) => "VALUE_EXPECTED",
            Error::DictionaryExpected(_) => "DICTIONARY_EXPECTED",
            Error::KeyExists(_) => "KEY_EXISTS",
            Error::NoSpace(_) => "NO_SPACE",
            Error::Inconsistent(_) => "INCONSISTENT",
            Error::Closed(_) => "CLOSED",
            Error::Panic(_) => "PANIC",
        }
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Done => "iteration finished",
            Error::NotFound(m)
            | Error::InvalidArgument(m)
            | Error::Io(m)
            | Error::Corrupted(m)
            | Error::ReadOnly(m)
            | Error::Locked(m)
            | Error::Conflict(m)
            | Error::TooManyRetries(m)
            | Error::ValueExpected(m)
            | Error::DictionaryExpected(m)
            | Error::KeyExists(m)
            | Error::NoSpace(m)
            | Error::Inconsistent(m)
            | Error::Closed(m)
            | Error::Panic(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind_name(), self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_no_space() {
        let e = Error::io(
            "write",
            Path::new("/x"),
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, Error::NoSpace(ref m) if m.contains("/x")));
        let e = Error::io(
            "write",
            Path::new("/y"),
            std::io::Error::from_raw_os_error(libc::EIO),
        );
        assert!(matches!(e, Error::Io(ref m) if m.contains("/y")));
    }
}
