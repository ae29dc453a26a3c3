//! Blobs being transferred by several copies at once (`sync`): the second copy of a blob to
//! the same destination waits for the first, then finds it present, so that every blob
//! crosses the network once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::reference::Digest;

/// A destination's blob scope ([`crate::image::ImageDestination::blob_scope`]) and a digest.
type BlobKey = (String, Digest);

/// Shared by the copies of one `sync`.
#[derive(Default)]
pub struct BlobLocks {
    locks: Mutex<HashMap<BlobKey, Arc<tokio::sync::Mutex<()>>>>,
    done: Mutex<HashSet<BlobKey>>,
}

impl BlobLocks {
    /// Wait until no other copy is moving this blob to this destination.
    pub async fn lock(&self, scope: &str, digest: &Digest) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.locks.lock().expect("blob lock map poisoned");
            map.entry((scope.to_string(), digest.clone()))
                .or_default()
                .clone()
        };
        m.lock_owned().await
    }

    /// Whether another copy already put the blob there.
    pub fn done(&self, scope: &str, digest: &Digest) -> bool {
        self.done
            .lock()
            .expect("blob set poisoned")
            .contains(&(scope.to_string(), digest.clone()))
    }

    /// Record that the blob is there.
    pub fn mark_done(&self, scope: &str, digest: &Digest) {
        self.done
            .lock()
            .expect("blob set poisoned")
            .insert((scope.to_string(), digest.clone()));
    }
}
