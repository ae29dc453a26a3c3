//! How many blob transfers run at once: many small ones, few large ones.
//!
//! Round trips, not bandwidth, bound the copy of many small blobs, so up to
//! [`DEFAULT_COUNT`] run at once; a large blob weighs [`LARGE_WEIGHT`] of the
//! [`WEIGHT_BUDGET`], so at most 8 large ones stream at once. Memory stays bounded by bytes in
//! flight: a small blob (held whole, at most [`SMALL_BLOB`]) and a streamed one (a few
//! chunks) cost about the same. `--image-parallel-copies N` caps the count at N.

use tokio::sync::{Semaphore, SemaphorePermit};

use super::transfer::SMALL_BLOB;
use crate::error::{Error, Result};

/// Blobs in flight at most, when no `--image-parallel-copies` is given.
pub const DEFAULT_COUNT: usize = 32;
/// The weight all blobs in flight may have together.
pub const WEIGHT_BUDGET: u32 = 32;
/// The weight of a blob larger than [`SMALL_BLOB`] (a small one weighs 1).
pub const LARGE_WEIGHT: u32 = 4;

/// The bounds, shared by every copy of a command (`sync` runs several images at once).
pub struct Slots {
    count: Semaphore,
    weight: Semaphore,
}

/// A blob's place among those in flight; dropped when its transfer ends.
pub struct Slot<'a> {
    _count: SemaphorePermit<'a>,
    _weight: SemaphorePermit<'a>,
}

impl Slots {
    /// At most `max` blobs at once (`--image-parallel-copies`), else the adaptive default.
    pub fn new(max: Option<usize>) -> Self {
        Slots {
            count: Semaphore::new(max.unwrap_or(DEFAULT_COUNT).max(1)),
            weight: Semaphore::new(WEIGHT_BUDGET as usize),
        }
    }

    /// Wait for room for a blob of `size` bytes.
    pub async fn acquire(&self, size: u64) -> Result<Slot<'_>> {
        let weight = if size <= SMALL_BLOB { 1 } else { LARGE_WEIGHT };
        let closed = |_| Error::usage("the blob transfer bound was closed");
        let count = self.count.acquire().await.map_err(closed)?;
        let weight = self.weight.acquire_many(weight).await.map_err(closed)?;
        Ok(Slot {
            _count: count,
            _weight: weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn many_small_few_large() {
        let s = Slots::new(None);
        let mut small = vec![];
        for _ in 0..DEFAULT_COUNT {
            small.push(s.acquire(1000).await.unwrap());
        }
        assert!(s.count.try_acquire().is_err(), "more than the count");
        drop(small);
        let mut large = vec![];
        for _ in 0..(WEIGHT_BUDGET / LARGE_WEIGHT) {
            large.push(s.acquire(SMALL_BLOB + 1).await.unwrap());
        }
        assert!(s.weight.try_acquire().is_err(), "more than the weight");
        drop(large);
        let capped = Slots::new(Some(3));
        let _held: Vec<_> = futures_util::future::join_all((0..3).map(|_| capped.acquire(1))).await;
        assert!(capped.count.try_acquire().is_err());
    }
}
