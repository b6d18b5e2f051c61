//! The merged bindings on disk: a base data file `data` and a smaller
//! `delta` above it, so that a merge of the log rewrites the delta, not
//! the whole index (issue 20, point 4).
//!
//! Why two levels. A merge that rewrites every binding costs, per key
//! added, the index size over the log size: adding n keys with a log of
//! L writes about n / (2 L) times each key (100 at 100 M keys, L = 500,000).
//! With a delta of at most D keys, a log merge rewrites the delta (D / 2 on
//! average, so D / (2 L) per key added) and every D keys the base is
//! rewritten with the delta folded in (n / D per key added). The sum is
//! smallest at D = sqrt(2 L n), where each key is written
//! 2 sqrt(n / (2 L)) times: 20 at n = 100 M, 6.3 at 10 M, 2 at 1 M (L =
//! 500,000), each time as a 48-byte entry (hash, key, value) for 40 bytes
//! of key and value, plus the log (1.1). Averaged over a growth from 0 to
//! n (what a benchmark that fills an index measures) the rewrites are two
//! thirds of the marginal figure: about 1.1 + 1.2 x 2/3 x 20 = 17 at 100 M.
//!
//! A find reads at most two files whatever the size: the delta, then the
//! base (after the in-memory log tables). Deeper levels would write less
//! and read more; two keeps a find at one probe plus at most one more.
//!
//! Validity. Each file carries the generation of the logs it contains
//! (every log below it), and a delta the generation of the base it was
//! written on. A base merge takes the generation of the logs it folds in,
//! above every delta's: so a delta at or below the base's generation is
//! stale (a base merge folded it in and a crash came before its unlink),
//! and a delta above it must name that base: one that names another sits
//! on a base that is missing or was replaced, which is damage. The index's
//! data generation is the larger of the two valid ones.

use std::path::Path;
use std::sync::Arc;

use super::data::DataFile;
use crate::error::{Error, Result};
use crate::io::FileSystem;

/// The base file's name.
pub(crate) const DATA: &str = "data";
/// The delta file's name.
pub(crate) const DELTA: &str = "delta";

/// The base and the delta (the empty data when there is none).
#[derive(Clone, Debug)]
pub(crate) struct Levels {
    pub base: Arc<DataFile>,
    pub delta: Arc<DataFile>,
}

impl Levels {
    /// An index with nothing merged yet.
    pub(crate) fn empty(ksize: usize, dsize: usize) -> Levels {
        Levels {
            base: Arc::new(DataFile::empty(ksize, dsize)),
            delta: Arc::new(DataFile::empty(ksize, dsize)),
        }
    }

    /// Opens and verifies both files of `dir` (a missing one is empty); a
    /// stale delta reads as none. Also returns whether a stale delta file
    /// is there (for the read-write open to remove). `Corrupted` when the
    /// delta sits on another base than the one there, or `data` is a delta
    /// (a base names no base: delta files name one, always above 0).
    pub(crate) fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        ksize: usize,
        dsize: usize,
        flags: u32,
    ) -> Result<(Levels, bool)> {
        let base = DataFile::open(fs, &dir.join(DATA), ksize, dsize, flags)?;
        let delta = DataFile::open(fs, &dir.join(DELTA), ksize, dsize, flags)?;
        if base.base_generation() != 0 {
            return Err(Error::corrupted(
                &dir.join(DATA),
                format!(
                    "is a delta (written on data generation {}, offset 60), not a base",
                    base.base_generation()
                ),
            ));
        }
        let stale = delta.generation() != 0 && delta.generation() <= base.generation();
        if !stale && delta.generation() != 0 && delta.base_generation() != base.generation() {
            return Err(Error::corrupted(
                &dir.join(DATA),
                format!(
                    "of generation {} (offset 24), while {DELTA} of generation {} was written on data generation {} (offset 60 of {DELTA}): the base it needs is missing or replaced",
                    base.generation(),
                    delta.generation(),
                    delta.base_generation()
                ),
            ));
        }
        let delta = if stale {
            DataFile::empty(ksize, dsize)
        } else {
            delta
        };
        Ok((
            Levels {
                base: Arc::new(base),
                delta: Arc::new(delta),
            },
            stale,
        ))
    }

    /// The generation of the newest valid file: every log below it is in
    /// the files.
    pub(crate) fn generation(&self) -> u64 {
        self.base.generation().max(self.delta.generation())
    }

    /// Live bindings of both files.
    pub(crate) fn len(&self) -> u64 {
        if self.delta.generation() > self.base.generation() {
            self.delta.live()
        } else {
            self.base.count()
        }
    }

    /// The stored value of `key` (hash `h`): the delta's (possibly a
    /// tombstone), else the base's.
    #[inline]
    pub(crate) fn find(&self, h: u64, key: &[u8]) -> Option<&[u8]> {
        self.delta.find(h, key).or_else(|| self.base.find(h, key))
    }

    /// Whether a merge of `incoming` log bindings should fold everything
    /// into a new base rather than rewrite the delta: when the delta would
    /// outgrow `sqrt(2 L n)` (see the module documentation), `n` the base's
    /// size and `L` the log size; or when the base is no larger than the
    /// delta would become (a small index: the base costs as little to
    /// rewrite, and the delta goes).
    pub(crate) fn base_merge_due(&self, incoming: u64, log_size: u64) -> bool {
        let n = self.base.count();
        let target = (2.0 * log_size as f64 * n as f64).sqrt() as u64;
        let delta = self.delta.count() + incoming;
        delta > target || n <= delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delta_grows_with_the_square_root_of_the_base() {
        // A fresh index merges into the base; a 100 M-key base takes a
        // delta of up to 10 M keys.
        let l = Levels::empty(8, 8);
        assert!(l.base_merge_due(500_000, 500_000));
        assert!(l.base_merge_due(1, 500_000));
        let target = |n: f64| (2.0 * 500_000.0 * n).sqrt();
        assert!((target(100e6) - 1e7).abs() < 1.0);
    }
}
