//! A linear chain for the block-store tests: the hash of the block at each
//! level, the block itself (contents `block <level>`, metadata `metadata
//! <level>`), and store options without fsync and with small index logs.
#![allow(dead_code)]

use tzstore::OpenOptions;
use tzstore::block::cemented::HistoryMode;
use tzstore::block::store::BlockStoreOptions;
use tzstore::block::{Block, Hash};

/// The hash of the chain's block at `level`.
pub fn hash_of(level: i32) -> Hash {
    let mut h = [0x9E; 32];
    h[..4].copy_from_slice(&level.to_be_bytes());
    h
}

/// The chain's block at `level` (genesis, level 0, is its own predecessor).
pub fn block(level: i32) -> Block {
    Block {
        hash: hash_of(level),
        level,
        predecessor: hash_of((level - 1).max(0)),
        contents: format!("block {level}").into_bytes(),
        metadata: Some(format!("metadata {level}").into_bytes()),
    }
}

/// Read-write options of a store in `mode` keeping `offset` chunks.
pub fn options(mode: HistoryMode, offset: u32) -> BlockStoreOptions {
    BlockStoreOptions {
        open: OpenOptions::read_write().no_fsync(),
        history_mode: mode,
        history_offset: offset,
        index_log_size: 32,
        ..BlockStoreOptions::default()
    }
}

/// `opts` for a read-only handle.
pub fn read_only(mut opts: BlockStoreOptions) -> BlockStoreOptions {
    opts.open.read_only = true;
    opts
}
