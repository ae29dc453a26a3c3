//! Writing a planned copy: every distinct blob concurrently (bounded by [`super::Slots`]),
//! child manifests by digest, what is attached to the image, signatures, and — last — the
//! top manifest to the reference, then commit.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::plan::{collect_blobs, collect_children};
use super::transfer::{BlobJob, BlobOutcome};
use super::{Copier, CopyReport, Ends, Node, SourceSignatures, referrers, sign, transcript};
use crate::error::{Error, Result};
use crate::image::ManifestRole;
use crate::manifest::{Descriptor, Manifest};

impl Copier {
    /// Every distinct blob of every image in the plan, concurrently (the bound is the
    /// shared [`super::Slots`]); what happened to each, for the report.
    pub(super) async fn copy_blobs(
        &self,
        ends: &Ends<'_>,
        root: &Node,
    ) -> Result<Vec<(Descriptor, BlobOutcome)>> {
        let mut blobs: Vec<Descriptor> = Vec::new();
        collect_blobs(root, &mut blobs, &mut HashSet::new());
        // Largest first: the streams end close together instead of one large blob, started
        // last, finishing alone (the classic longest-first rule; waiters get slots in order).
        blobs.sort_by_key(|b| std::cmp::Reverse(b.size));
        let total: u64 = blobs.iter().map(|b| b.size).sum();
        self.progress.add_total(total, blobs.len() as u64);
        let job = Arc::new(self.blob_job(ends));
        let scope = ends.dst.blob_scope();
        futures_util::stream::iter(blobs)
            .map(|d| {
                let (job, scope) = (job.clone(), &scope);
                async move {
                    let o = self.blob(&job, scope, &d).await?;
                    Ok::<_, Error>((d, o))
                }
            })
            .buffer_unordered(usize::MAX >> 1)
            .try_collect()
            .await
    }

    /// After [`Self::copy_blobs`]: the child manifests, what is attached, new signatures and
    /// — last — the top manifest to the reference, then commit.
    pub(super) async fn write_manifests(
        &self,
        ends: &Ends<'_>,
        root: &Node,
        sigs: &SourceSignatures,
        attached: &[referrers::Attached],
        new: Option<&sign::NewSignatures>,
        report: &mut CopyReport,
    ) -> Result<()> {
        // Children by digest, deepest first; the top manifest last, to the reference.
        let creating = new.map(|n| n.creating.as_slice()).unwrap_or_default();
        self.say(|| transcript::children(root, sigs, creating));
        let mut levels: Vec<Vec<&Manifest>> = Vec::new();
        collect_children(root, 0, &mut levels);
        let mut written = HashSet::new();
        for level in levels.iter().rev() {
            let todo: Vec<&Manifest> = level
                .iter()
                .copied()
                .filter(|m| written.insert(m.digest.clone()))
                .collect();
            futures_util::stream::iter(todo)
                .map(|m| ends.dst.put_manifest(m, ManifestRole::ByDigest))
                .buffer_unordered(8)
                .try_for_each(|()| {
                    report.manifests_written += 1;
                    async { Ok(()) }
                })
                .await?;
        }
        // What is attached to the image goes after it and before the reference moves.
        if !attached.is_empty() {
            ends.dst
                .put_manifest(&root.manifest, ManifestRole::ByDigest)
                .await?;
            self.write_attachments(ends.src, ends.dst, attached, report)
                .await?;
        }
        // Signatures made by this copy, before the reference moves.
        if let Some(new) = new {
            self.store_signatures(ends, &root.manifest, !attached.is_empty(), new, report)
                .await?;
        }
        self.say(|| transcript::manifest(&root.manifest));
        ends.dst
            .put_manifest(&root.manifest, ManifestRole::Reference)
            .await?;
        report.manifests_written += 1;
        ends.dst.commit().await
    }

    /// One blob, under the shared bound, once per destination across the copies of a sync.
    pub(super) async fn blob(
        &self,
        job: &BlobJob,
        scope: &str,
        d: &Descriptor,
    ) -> Result<BlobOutcome> {
        let locks = self.blob_locks.as_deref();
        let _shared = match locks {
            Some(l) => Some(l.lock(scope, &d.digest).await),
            None => None,
        };
        let o = if locks.is_some_and(|l| l.done(scope, &d.digest)) {
            BlobOutcome::Present
        } else {
            let _slot = self.slots.acquire(d.size).await?;
            job.run(d).await?
        };
        if let Some(l) = locks {
            l.mark_done(scope, &d.digest);
        }
        let how = match o {
            BlobOutcome::Present => "already present".to_string(),
            BlobOutcome::Mounted => match &job.origin {
                Some(o) => format!("mounted from {}", o.repository),
                None => "mounted".to_string(),
            },
            BlobOutcome::Copied => "copied".to_string(),
        };
        self.progress
            .blob_done(&d.digest, d.size, &how, o == BlobOutcome::Copied);
        Ok(o)
    }
}
