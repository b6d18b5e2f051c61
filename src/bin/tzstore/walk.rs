//! Enumerations several commands share: a key/value store's tree, depth
//! first in name order (iterative: a deep tree costs no stack).

use tzstore::Result;
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
