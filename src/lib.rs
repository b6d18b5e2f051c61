//! tzstore: crash-safe storage for blockchain nodes, with a C ABI.
//!
//! The Rust core (this crate's public modules other than [`ffi`]) is a set of
//! synchronous stores returning [`Result`]. The C layer in [`ffi`] converts
//! arguments and results and adds no logic.
//!
//! Each store's type documents its use with an example:
//! [`singleton::Singleton`], [`index::Index`], [`indexed_file::IndexedFile`],
//! [`block::floating::Floating`], [`block::cemented::Cemented`],
//! [`block::store::BlockStore`] (the store a node uses) and [`kv`] (the
//! key/value store, [`kv::Kv`]). The design and the on-disk formats are
//! described in `docs/design.md` and `docs/formats.md` in the repository.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod block;
pub mod check;
pub mod error;
pub mod ffi;
mod gc_filter_thread;
pub mod index;
pub mod indexed_file;
pub mod io;
pub mod kv;
pub mod options;
mod published;
pub mod singleton;
mod store_dir;
mod unsynced;
mod verified_once;
pub mod worker;

pub use error::{Error, Result};
pub use options::OpenOptions;

/// The library version (from Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
