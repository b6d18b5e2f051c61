//! `check_consistency`: every chunk, block, metadata entry and index entry,
//! against each other (Octez `check_indexes_consistency`).

use super::Cemented;
use crate::block::hex;
use crate::block::{HASH_SIZE, Hash};
use crate::error::{Error, Result};

pub(super) fn run(store: &Cemented, genesis: Option<&Hash>) -> Result<()> {
    let t = store.snapshot();
    let bad = |what: String| {
        Err(Error::Inconsistent(format!(
            "{}: {what}",
            store.dir.display()
        )))
    };
    let mut prev: Option<(i32, Hash)> = None;
    for c in &t.chunks {
        let r = c.range();
        c.check_shape()?;
        if t.meta(r.start).is_none() {
            super::missing_zip(&t, c)?;
        }
        if let Some((pl, _)) = prev {
            if i64::from(pl) + 1 != i64::from(r.start) {
                return bad(format!("chunk {r} does not follow level {pl}"));
            }
        }
        for level in r.start..=r.end {
            let b = c.parse_rechecked(level)?;
            if let Some((_, ph)) = &prev {
                if b.predecessor != ph && Some(b.hash) != genesis {
                    return bad(format!(
                        "block {} at level {level} has predecessor {}, not the block below it {}",
                        hex(b.hash),
                        hex(b.predecessor),
                        hex(ph)
                    ));
                }
            }
            let mut l = [0u8; 4];
            if !store.h2l.find_into(b.hash, &mut l)? {
                return bad(format!(
                    "block {} at level {level} is not in hash_to_level",
                    hex(b.hash)
                ));
            }
            if i32::from_be_bytes(l) != level {
                return bad(format!(
                    "hash_to_level maps block {} to level {}, not {level}",
                    hex(b.hash),
                    i32::from_be_bytes(l)
                ));
            }
            let mut h = [0u8; HASH_SIZE];
            if !store.l2h.find_into(&level.to_be_bytes(), &mut h)? {
                return bad(format!("level {level} is not in level_to_hash"));
            }
            if &h != b.hash {
                return bad(format!(
                    "level_to_hash maps level {level} to {}, not {}",
                    hex(&h),
                    hex(b.hash)
                ));
            }
            prev = Some((level, *b.hash));
        }
    }
    for m in &t.meta {
        if t.chunk(m.range().start).map(|c| c.range()) != Some(m.range()) {
            return bad(format!("metadata {} has no chunk", m.range()));
        }
        m.verify()?;
    }
    Ok(())
}
