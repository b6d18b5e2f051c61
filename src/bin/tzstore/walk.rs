//! Enumerations several commands share: a key/value store's tree, depth
//! first in name order (iterative: a deep tree costs no stack), and a
//! block store's floating blocks.

use tzstore::Result;
use tzstore::block::Hash;
use tzstore::block::store::BlockStore;
use tzstore::kv::{Kind, Kv};

/// Every key below the root (values and dictionaries, the root excluded),
/// parents before children, siblings in name order.
pub fn kv_tree(kv: &Kv) -> Result<Vec<(String, Kind)>> {
    let mut out = Vec::new();
    // A stack of dictionaries still to list; children are pushed in reverse
    // so that they pop in name order.
    let mut todo: Vec<(String, Kind)> = kv.list("")?.into_iter().rev().collect();
    while let Some((key, kind)) = todo.pop() {
        if kind == Kind::Dictionary {
            for (name, k) in kv.list(&key)?.into_iter().rev() {
                todo.push((format!("{key}/{name}"), k));
            }
        }
        out.push((key, kind));
    }
    Ok(out)
}

/// Hash, level and predecessor of every floating block of `store`, in
/// level order (a block kept by two floating stores is listed once).
pub fn floating_headers(store: &BlockStore) -> Result<Vec<(Hash, i32, Hash)>> {
    let mut out = Vec::new();
    for it in store.floating_iters(false) {
        for e in it {
            let b = e?.block;
            out.push((b.hash, b.level, b.predecessor));
        }
    }
    out.sort_by_key(|b| (b.1, b.0));
    out.dedup_by_key(|b| b.0);
    Ok(out)
}
