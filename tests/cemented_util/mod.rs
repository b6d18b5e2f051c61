//! Chains of test blocks for the cemented store's tests.
#![allow(dead_code)]

use tzstore::block::{Block, BlockRef, Hash};

/// The hash of the block at `level` of chain `seed`.
pub fn hash(seed: u64, level: i32) -> Hash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&seed.to_be_bytes());
    h[8..12].copy_from_slice(&level.to_be_bytes());
    for (i, b) in h[12..].iter_mut().enumerate() {
        *b = (level as u8).wrapping_mul(31).wrapping_add(i as u8) ^ (seed as u8);
    }
    h
}

/// Block `level` of chain `seed`; its sizes and metadata vary with `salt`.
pub fn block(seed: u64, level: i32, salt: u64) -> Block {
    let x = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (level as u64);
    let clen = (x % 300) as usize;
    let contents = (0..clen).map(|i| (i as u64 ^ x) as u8).collect();
    let metadata = match x % 4 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            (0..(x % 2000) as usize)
                .map(|i| (i / 7) as u8 ^ level as u8)
                .collect(),
        ),
    };
    Block {
        hash: hash(seed, level),
        level,
        predecessor: hash(seed, level - 1),
        contents,
        metadata,
    }
}

/// Blocks `start..=end` of chain `seed`.
pub fn chain(seed: u64, start: i32, end: i32, salt: u64) -> Vec<Block> {
    (start..=end).map(|l| block(seed, l, salt)).collect()
}

/// Borrowed views for `cement`.
pub fn refs(blocks: &[Block]) -> Vec<BlockRef<'_>> {
    blocks.iter().map(Block::as_ref).collect()
}

/// `b` without its metadata.
pub fn pruned(b: &Block) -> Block {
    Block {
        metadata: None,
        ..b.clone()
    }
}
