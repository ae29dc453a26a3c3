//! Invoked as `skopeo`: sigstore signatures (the layers of cosign `.sig` attachments) copied as
//! skopeo copies them, where `registries.d` enables `use-sigstore-attachments` — read before
//! anything is written, added after the manifests they sign (see
//! [`crate::registry::sigstore`] for how a registry rebuilds the attachment).

use super::Copier;
use crate::error::Result;
use crate::image::{ImageDestination, ImageSource, SigstoreSignature};
use crate::reference::Digest;

/// Sigstore signatures read from the source, per manifest digest.
pub(super) type Sigstore = Vec<(Digest, Vec<SigstoreSignature>)>;

impl Copier {
    /// Invoked as `skopeo`: the sigstore signatures of these manifests, read before anything
    /// is written (as skopeo reads signatures first).
    pub(super) async fn read_sigstore(
        &self,
        src: &dyn ImageSource,
        digests: &[Digest],
    ) -> Result<Sigstore> {
        if !self.opts.attachments.sigstore_signatures || !src.reads_sigstore_attachments() {
            return Ok(vec![]);
        }
        let mut out = vec![];
        for d in digests {
            let sigs = src.sigstore_signatures(d).await?;
            if !sigs.is_empty() {
                out.push((d.clone(), sigs));
            }
        }
        Ok(out)
    }

    /// Add them at the destination after the manifests they sign (as skopeo).
    pub(super) async fn write_sigstore(
        &self,
        dst: &dyn ImageDestination,
        sigs: Sigstore,
        report: &mut super::CopyReport,
    ) -> Result<()> {
        for (d, list) in sigs {
            report.signatures_copied += dst.put_sigstore_signatures(&d, &list).await?;
        }
        Ok(())
    }
}
