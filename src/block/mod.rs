//! Blocks as the library sees them, their on-disk record, predecessor lists,
//! and the block stores built on them.

pub mod cemented;
pub mod entry;
pub mod floating;
mod places;
mod prealloc;
pub mod predecessors;
pub mod reader;
pub mod record;
pub mod store;

pub use record::{Block, BlockRef};

/// Size in bytes of a block hash.
pub const HASH_SIZE: usize = 32;

/// A block hash.
pub type Hash = [u8; HASH_SIZE];

/// The maximum length of a predecessor list (ancestors at 1, 2, 4, …, 2048).
pub const MAX_PREDECESSORS: usize = 12;

/// A hash in full hex, for messages (a shortened one need not be unique).
pub(crate) fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}
