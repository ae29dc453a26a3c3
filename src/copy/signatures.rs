//! Simple signatures and attachments of an image the copy finds already at the destination,
//! and the source's simple signatures read before anything is written and added after the
//! manifests they sign (compared by content, as skopeo compares them).

use super::{Copier, CopyReport, Ends, MultiArch, SourceSignatures};
use crate::error::Result;
use crate::manifest::{Kind, Manifest};
use crate::reference::Digest;

impl Copier {
    /// The image is already at the destination; its signatures may not be (as skopeo, which
    /// copies them again on every copy).
    pub(super) async fn present_signatures(
        &self,
        ends: &Ends<'_>,
        digest: &Digest,
        report: &mut CopyReport,
    ) -> Result<()> {
        let sigs = self
            .read_signatures(ends, std::slice::from_ref(digest))
            .await?;
        let sigstore = self
            .read_sigstore(ends.src.as_ref(), std::slice::from_ref(digest))
            .await?;
        self.write_signatures(ends, sigs, report).await?;
        self.write_sigstore(ends.dst.as_ref(), sigstore, report)
            .await
    }

    /// The manifests whose attachments matter when the destination has the image already:
    /// the one at the reference and, for an index copied whole, its children.
    pub(super) fn present_subjects(&self, top: &Manifest, digest: &Digest) -> Vec<Digest> {
        let mut out = vec![digest.clone()];
        if let (Kind::Index { manifests }, MultiArch::All) = (&top.kind, self.opts.multi_arch)
            && &top.digest == digest
        {
            out.extend(manifests.iter().map(|d| d.digest.clone()));
        }
        out
    }

    /// The image is at the destination: add the attachments it lacks there.
    pub(super) async fn repair(
        &self,
        ends: &Ends<'_>,
        subjects: &[Digest],
        report: &mut CopyReport,
    ) -> Result<()> {
        if !self.opts.attachments.enabled() {
            return Ok(());
        }
        let todo = self
            .attachments(ends.src.as_ref(), ends.dst.as_ref(), subjects, report)
            .await?;
        report.attached_not_copied.extend(todo.not_copied);
        if todo.missing.is_empty() {
            return Ok(());
        }
        self.write_attachments(ends.src, ends.dst, &todo.missing, report)
            .await?;
        ends.dst.commit().await
    }

    /// The source's simple signatures of these manifests, unless `--remove-signatures`.
    pub(super) async fn read_signatures(
        &self,
        ends: &Ends<'_>,
        digests: &[Digest],
    ) -> Result<SourceSignatures> {
        if self.opts.remove_signatures || !ends.src.supports_signatures().await? {
            return Ok(vec![]);
        }
        let reads = digests.iter().map(|d| ends.src.signatures(d));
        let mut out = vec![];
        for (d, sigs) in digests
            .iter()
            .zip(futures_util::future::try_join_all(reads).await?)
        {
            if !sigs.is_empty() {
                out.push((d.clone(), sigs));
            }
        }
        Ok(out)
    }

    /// Add the signatures the destination does not have yet (compared by content, as
    /// skopeo). A destination that stores none gets none: they are reported as not copied
    /// (skopeo files them in its local lookaside directory instead).
    pub(super) async fn write_signatures(
        &self,
        ends: &Ends<'_>,
        sigs: SourceSignatures,
        report: &mut CopyReport,
    ) -> Result<()> {
        if sigs.is_empty() {
            return Ok(());
        }
        if !ends.dst.supports_signatures().await? {
            for (d, s) in &sigs {
                report.signatures_not_copied.push(format!(
                    "{} simple signature(s) of {} (the destination does not store signatures, and registries.d configures no lookaside storage for it)",
                    s.len(),
                    d.short()
                ));
            }
            return Ok(());
        }
        for (d, wanted) in sigs {
            let have = ends.dst.signatures(&d).await?;
            for content in wanted {
                if have.contains(&content) {
                    continue;
                }
                ends.dst.put_signature(&d, &content).await?;
                report.signatures_copied += 1;
            }
        }
        Ok(())
    }
}
