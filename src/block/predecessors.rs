//! Predecessor lists (Octez `Block_store.compute_predecessors`): the i-th
//! entry of a block's list is its 2^i-th ancestor, up to 12 entries, so the
//! ancestor at any distance is found in O(log distance) lookups.

use super::{Hash, MAX_PREDECESSORS};
use crate::error::Result;

/// Computes the predecessor list of a block whose direct predecessor is
/// `pred`. `nth(h, i)` returns entry `i` of block `h`'s own list (`None` when
/// `h` is unknown or its list is shorter). Entry `d` is `nth(entry[d-1], d-1)`
/// (the 2^(d-1)-th ancestor of the 2^(d-1)-th ancestor); the list stops at
/// the first miss, as in Octez. At most 11 lookups per block.
pub fn compute(
    pred: &Hash,
    mut nth: impl FnMut(&Hash, usize) -> Result<Option<Hash>>,
) -> Result<Vec<Hash>> {
    let mut list = Vec::with_capacity(MAX_PREDECESSORS);
    list.push(*pred);
    for d in 1..MAX_PREDECESSORS {
        match nth(&list[d - 1], d - 1)? {
            Some(h) => list.push(h),
            None => break,
        }
    }
    Ok(list)
}

/// The ancestor `distance` blocks below `hash` (0 = `hash` itself), walking
/// predecessor lists: each step jumps by the largest power of two the current
/// block's list allows. `preds(h)` returns `h`'s list, or `None` when `h` is
/// unknown. Returns `None` when the walk runs past the known history (a
/// distance beyond genesis or into pruned history).
pub fn ancestor(
    hash: &Hash,
    distance: u64,
    mut preds: impl FnMut(&Hash) -> Result<Option<Vec<Hash>>>,
) -> Result<Option<Hash>> {
    let mut current = *hash;
    let mut left = distance;
    while left > 0 {
        let Some(list) = preds(&current)? else {
            return Ok(None);
        };
        let Some(step) = largest_step(left, list.len()) else {
            return Ok(None);
        };
        if list[step] == current {
            // Genesis is its own predecessor: there is nothing below it.
            return Ok(None);
        }
        current = list[step];
        left -= 1u64 << step;
    }
    Ok(Some(current))
}

/// The largest `p < len` with `2^p <= left`.
fn largest_step(left: u64, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let p = 63 - left.leading_zeros() as usize;
    Some(p.min(len - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn h(n: u32) -> Hash {
        let mut x = [0u8; 32];
        x[..4].copy_from_slice(&n.to_be_bytes());
        x[31] = 1;
        x
    }

    /// A linear chain 0..n with lists computed incrementally.
    fn chain(n: u32) -> HashMap<Hash, Vec<Hash>> {
        let mut lists: HashMap<Hash, Vec<Hash>> = HashMap::new();
        for level in 1..n {
            let list = compute(&h(level - 1), |x, i| {
                Ok(lists.get(x).and_then(|l| l.get(i).copied()))
            })
            .unwrap();
            lists.insert(h(level), list);
        }
        lists
    }

    #[test]
    fn lists_hold_power_of_two_ancestors() {
        let lists = chain(5000);
        for level in [1u32, 2, 3, 4, 5, 100, 2048, 2049, 4999] {
            let list = &lists[&h(level)];
            let expect: Vec<Hash> = (0..12)
                .map(|i| 1u32 << i)
                .take_while(|&d| d <= level)
                .map(|d| h(level - d))
                .collect();
            assert_eq!(list, &expect, "level {level}");
        }
    }

    #[test]
    fn ancestor_matches_naive_walk() {
        let lists = chain(3000);
        for level in [0u32, 1, 7, 1000, 2999] {
            for d in [0u64, 1, 2, 3, 5, 64, 999, 1000, 2047, 2048, 2999, 3000] {
                let got = ancestor(&h(level), d, |x| Ok(lists.get(x).cloned())).unwrap();
                let want = (d <= level as u64).then(|| h(level - d as u32));
                assert_eq!(got, want, "level {level} distance {d}");
            }
        }
    }
}
