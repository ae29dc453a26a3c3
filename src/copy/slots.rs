//! How many blob transfers run at once: many small ones, fewer large ones, fewest huge ones.
//!
//! Round trips, not bandwidth, bound the copy of many small blobs, so up to
//! [`DEFAULT_COUNT`] run at once. A blob over [`SMALL_BLOB`] weighs [`LARGE_WEIGHT`] of the
//! [`WEIGHT_BUDGET`] (8 at once); one over [`HUGE_BLOB`] weighs [`HUGE_WEIGHT`] (4 at once).
//! Four streams fill a link, more only split it: over a WAN, ten large downloads starting
//! together fill the bottleneck's queue, and some of the registry's TCP senders leave slow
//! start early (CUBIC's HyStart) and crawl for the rest of their blob, which then finishes
//! alone, long after the others (docs/bench.md, scenario (e)). Memory stays bounded by bytes in
//! flight: a small blob (held whole, at most [`SMALL_BLOB`]) and a streamed one (a few chunks)
//! cost about the same.
//!
//! `--image-parallel-copies N` means what it means to skopeo: N blobs at once, whatever their
//! size.

use tokio::sync::{Semaphore, SemaphorePermit};

use super::transfer::SMALL_BLOB;
use crate::error::{Error, Result};

/// Blobs in flight at most, when no `--image-parallel-copies` is given.
pub const DEFAULT_COUNT: usize = 32;
/// The weight all blobs in flight may have together.
pub const WEIGHT_BUDGET: u32 = 32;
/// The weight of a blob larger than [`SMALL_BLOB`] (a small one weighs 1).
pub const LARGE_WEIGHT: u32 = 4;
/// Blobs larger than this weigh [`HUGE_WEIGHT`].
pub const HUGE_BLOB: u64 = 8 * 1024 * 1024;
/// The weight of a blob larger than [`HUGE_BLOB`].
pub const HUGE_WEIGHT: u32 = 8;

/// The bounds, shared by every copy of a command (`sync` runs several images at once).
pub struct Slots {
    count: Semaphore,
    weight: Semaphore,
    /// `--image-parallel-copies` was given: every blob weighs nothing, the count alone bounds.
    counted: bool,
}

/// A blob's place among those in flight; dropped when its transfer ends.
pub struct Slot<'a> {
    _count: SemaphorePermit<'a>,
    _weight: SemaphorePermit<'a>,
}

impl Slots {
    /// Exactly `max` blobs at once (`--image-parallel-copies`), else the adaptive default.
    pub fn new(max: Option<usize>) -> Self {
        Slots {
            count: Semaphore::new(max.unwrap_or(DEFAULT_COUNT).max(1)),
            weight: Semaphore::new(WEIGHT_BUDGET as usize),
            counted: max.is_some(),
        }
    }

    /// The weight of a blob of `size` bytes.
    fn weight(&self, size: u64) -> u32 {
        match size {
            _ if self.counted => 0,
            s if s <= SMALL_BLOB => 1,
            s if s <= HUGE_BLOB => LARGE_WEIGHT,
            _ => HUGE_WEIGHT,
        }
    }

    /// Wait for room for a blob of `size` bytes. Waiters are served in the order they came.
    pub async fn acquire(&self, size: u64) -> Result<Slot<'_>> {
        let closed = |_| Error::usage("the blob transfer bound was closed");
        let count = self.count.acquire().await.map_err(closed)?;
        let weight = self
            .weight
            .acquire_many(self.weight(size))
            .await
            .map_err(closed)?;
        Ok(Slot {
            _count: count,
            _weight: weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(s: &Slots, size: u64) -> Vec<Slot<'_>> {
        let mut held = vec![];
        while let Some(Ok(slot)) = futures_util::FutureExt::now_or_never(s.acquire(size)) {
            held.push(slot);
        }
        held
    }

    #[test]
    fn many_small_fewer_large_fewest_huge() {
        let s = Slots::new(None);
        assert_eq!(fill(&s, 1000).len(), DEFAULT_COUNT);
        assert_eq!(fill(&s, SMALL_BLOB).len(), 32);
        assert_eq!(fill(&s, SMALL_BLOB + 1).len(), 8);
        assert_eq!(fill(&s, HUGE_BLOB).len(), 8);
        assert_eq!(fill(&s, HUGE_BLOB + 1).len(), 4);
        // Four huge ones leave no room for a small one until one of them ends.
        let mut huge = fill(&s, 1 << 30);
        assert_eq!(huge.len(), 4);
        assert!(fill(&s, 1).is_empty());
        huge.pop();
        assert_eq!(fill(&s, 1).len(), HUGE_WEIGHT as usize);
    }

    #[test]
    fn a_given_count_bounds_blobs_of_any_size() {
        for n in [1, 3, 12] {
            let s = Slots::new(Some(n));
            assert_eq!(fill(&s, 1000).len(), n);
            assert_eq!(fill(&s, 1 << 30).len(), n);
        }
    }
}
