//! The one error type of the Rust core. Each variant maps to exactly one C
//! status (`tzs_status`), so the C layer converts without losing meaning.

use std::fmt;
use std::path::Path;

/// Result alias used by every fallible core function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The one status table: every status's number, its name (the C constant
/// without `TZS_`) and, for failures, the [`Error`] variant and its
/// description. From it come the enum, `code`, `kind_name`, `message`,
/// `from_code` and [`STATUSES`], which the C layer (`tzs_status_name`,
/// `status_of`) and the tests of the header and of the bindings' status
/// lists (`tests/status_table.rs`, `scripts/check-status-lists.py`) use.
/// Numbers are stable and append-only. The C constants themselves are
/// written out in `src/ffi/types.rs` for cbindgen (which cannot expand
/// macros); `tests/status_table.rs` checks that they match this table.
macro_rules! status_table {
    (
        $ok_code:literal $ok_name:literal;
        $( $(#[doc = $doc:literal])* $code:literal $name:literal
            $variant:ident $( ($payload:ty) )? $( = $fixed:literal )?; )*
    ) => {
        /// Every failure the core can report. Variants carry a
        /// human-readable message that names the path or key concerned.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Error {
            $( $(#[doc = $doc])* $variant $( ($payload) )?, )*
        }

        /// Every status as `(number, name without TZS_)`, in number order.
        pub const STATUSES: &[(u32, &str)] = &[($ok_code, $ok_name), $( ($code, $name), )*];

        /// `"TZS_<NAME>"` of a status number, as a static C string.
        pub fn status_c_name(code: u32) -> Option<&'static std::ffi::CStr> {
            const fn c(s: &'static str) -> &'static std::ffi::CStr {
                match std::ffi::CStr::from_bytes_with_nul(s.as_bytes()) {
                    Ok(c) => c,
                    Err(_) => panic!("a status name holds a NUL"),
                }
            }
            match code {
                $ok_code => Some(const { c(concat!("TZS_", $ok_name, "\0")) }),
                $( $code => Some(const { c(concat!("TZS_", $name, "\0")) }), )*
                _ => None,
            }
        }

        impl Error {
            /// The C status number of this error (`tzs_status`).
            pub fn code(&self) -> u32 {
                match self {
                    $( Error::$variant { .. } => $code, )*
                }
            }

            /// The variant's name, as the C status name without the `TZS_`
            /// prefix.
            pub fn kind_name(&self) -> &'static str {
                match self {
                    $( Error::$variant { .. } => $name, )*
                }
            }

            /// The message without the kind.
            pub fn message(&self) -> &str {
                match self {
                    $( Error::$variant { .. } =>
                        status_row!(message self, $variant $( ($payload) )? $( = $fixed )?), )*
                }
            }

            /// The error a status number stands for, with `message`; `None`
            /// for success and for numbers that are not statuses.
            pub fn from_code(code: u32, message: String) -> Option<Error> {
                match code {
                    $( $code => Some(status_row!(make message, $variant $( ($payload) )?)), )*
                    _ => None,
                }
            }
        }
    };
}

/// One row's part of [`status_table`]: a variant with a message payload or
/// a unit variant with a fixed message.
macro_rules! status_row {
    (message $e:ident, $variant:ident ($payload:ty)) => {
        if let Error::$variant(m) = $e {
            m.as_str()
        } else {
            ""
        }
    };
    (message $e:ident, $variant:ident = $fixed:literal) => {
        $fixed
    };
    (make $m:ident, $variant:ident ($payload:ty)) => {
        Error::$variant($m)
    };
    (make $m:ident, $variant:ident) => {{
        drop($m);
        Error::$variant
    }};
}

status_table! {
    0 "OK";
    /// The key, value or file asked for does not exist.
    1 "NOT_FOUND" NotFound(String);
    /// An iterator reached its end (used by the C layer's iterators).
    2 "DONE" Done = "iteration finished";
    /// The caller passed an argument the operation cannot accept.
    3 "INVALID_ARGUMENT" InvalidArgument(String);
    /// An operating-system I/O error, with the path and the OS error text.
    4 "IO" Io(String);
    /// On-disk data failed a checksum or structural check.
    5 "CORRUPTED" Corrupted(String);
    /// A write was attempted through a read-only handle.
    6 "READ_ONLY" ReadOnly(String);
    /// Another read-write instance holds the store's lock file.
    7 "LOCKED" Locked(String);
    /// A batch conflicts with changes made since it began.
    8 "CONFLICT" Conflict(String);
    /// A batch conflicted more often than its retry budget allows.
    9 "TOO_MANY_RETRIES" TooManyRetries(String);
    /// A value was expected but a dictionary was found (kv).
    10 "VALUE_EXPECTED" ValueExpected(String);
    /// A dictionary was expected but a value was found (kv).
    11 "DICTIONARY_EXPECTED" DictionaryExpected(String);
    /// The destination key already exists (kv).
    12 "KEY_EXISTS" KeyExists(String);
    /// The device is full (ENOSPC, EDQUOT).
    13 "NO_SPACE" NoSpace(String);
    /// Data handed to the store breaks one of its invariants.
    14 "INCONSISTENT" Inconsistent(String);
    /// The handle was closed.
    15 "CLOSED" Closed(String);
    /// A panic was caught at the C boundary.
    16 "PANIC" Panic(String);
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The one error text of every front end (C++, OCaml, Go, the CLI):
        // the C status name, then the message.
        write!(f, "TZS_{}: {}", self.kind_name(), self.message())
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
