//! Stores a small chain in a block store and reads it back.
//! Run: cargo run --release --example chain -- DIR

use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::block::{BlockRef, Hash};

/// Block n's hash: 32 bytes of value n + 1.
fn hash(n: u8) -> Hash {
    [n + 1; 32]
}

fn main() -> Result<(), tzstore::Error> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: chain DIR");
        std::process::exit(2);
    };
    println!("tzstore {}", tzstore::VERSION);
    // Durable, full history.
    let store = BlockStore::open(format!("{dir}/blocks"), BlockStoreOptions::default())?;
    for n in 0..=3u8 {
        // Genesis (its own predecessor) and three blocks.
        let contents = format!("block {n}");
        store.store(&BlockRef {
            hash: &hash(n),
            level: i32::from(n),
            predecessor: &hash(n.saturating_sub(1)),
            contents: contents.as_bytes(),
            metadata: None,
        })?;
    }
    println!("stored levels 0..3");
    for distance in [0, 2] {
        let b = store
            .read(&hash(3), distance, false)?
            .expect("stored above");
        println!(
            "{distance} below the head: level {}, {:?}",
            b.level,
            String::from_utf8_lossy(&b.contents)
        );
    }
    if store.read(&[0x99; 32], 0, false)?.is_none() {
        println!("unknown hash: not found");
    }
    Ok(())
}
