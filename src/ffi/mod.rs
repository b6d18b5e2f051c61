//! The C layer: argument checks, the panic boundary, handles, errors and
//! buffers. It holds no store logic; each file wraps one core module.

#![allow(non_camel_case_types)]

pub mod args;
pub mod block;
pub mod block_chain;
pub mod block_context;
pub mod block_store;
pub mod boundary;
pub mod cemented;
pub mod chunk_writer;
pub mod common;
pub mod error;
pub mod floating;
pub mod gc;
pub mod index;
pub mod indexed_file;
pub mod kv;
pub mod reader;
pub mod singleton;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;

use crate::error::Result;
use crate::options::OpenOptions;
use types::{TZS_NO_FSYNC, TZS_READONLY};

/// The rest of a `tzs_<store>_check` export once its path is borrowed:
/// allows only `TZS_NO_FSYNC`, runs the store's check without a handle,
/// and hands the report to C (see [`args::report_out`]).
pub(crate) fn check_export(
    what: &str,
    path: &str,
    flags: u32,
    repair: bool,
    report: Option<&mut types::tzs_bytes>,
    check: impl FnOnce(&str, &OpenOptions, bool) -> Result<crate::check::CheckReport>,
) -> Result<()> {
    let opts = open_options(flags, TZS_NO_FSYNC, what)?;
    let found = check(path, &opts, repair)?;
    args::report_out(found, report)
}

/// Checks `flags` against `allowed` and builds the common open options.
pub(crate) fn open_options(flags: u32, allowed: u32, what: &str) -> Result<OpenOptions> {
    args::flags(flags, allowed, what)?;
    let mut opts = OpenOptions::default();
    if flags & TZS_NO_FSYNC != 0 {
        opts = opts.no_fsync();
    }
    opts.read_only = flags & TZS_READONLY != 0;
    Ok(opts)
}
