//! The seam between the copy engine and the places images live: an [`ImageSource`] to read
//! from and an [`ImageDestination`] to write to (as containers/image's `ImageSource` and
//! `ImageDestination`). The engine ([`crate::copy`]) plans the manifest tree, verifies every
//! byte, bounds concurrency and writes the tag last; a transport only moves bytes.
//!
//! Implementations: the registry ([`crate::registry::source`], [`crate::registry::destination`]);
//! the on-disk formats (OCI layout, `dir:`, archives) implement the same traits.
//!
//! What the engine guarantees to a destination:
//! - [`ImageDestination::put_blob`] receives a stream that ends with an error instead of its
//!   last item when the bytes do not have the descriptor's size and digest: a destination
//!   commits a blob only when its stream ended cleanly, and never needs to hash it again.
//! - Manifests are put deepest first, each after the blobs it references, and the one with
//!   [`ManifestRole::Reference`] (the tag) last, then [`ImageDestination::commit`].
//! - Calls may come concurrently (several blobs at once): implementations are `Sync`.
//!
//! What is attached to an image travels with it ([`crate::copy::referrers`]): a source tells
//! the OCI 1.1 referrers of a manifest ([`ImageSource::referrers`]) and its tags (cosign's
//! `sha256-<hex>.sig`/`.att`/`.sbom`, [`ImageSource::tags`]); a destination that
//! [`stores_attachments`](ImageDestination::stores_attachments) takes referrers
//! ([`ImageDestination::put_referrer`], then [`ImageDestination::index_referrers`] where the
//! destination did not index them itself: a registry without the referrers API gets the
//! fallback tag `sha256-<hex>`) and tagged attachments
//! ([`ImageDestination::put_tagged`]), after the manifest they refer to and before the
//! destination reference moves. Every method has a default, so a transport that stores no
//! attachments needs none of them (the engine then names what it left behind).

pub mod read;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::error::{Error, Location, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::Digest;
use crate::signing::{Candidate, Signature};

/// A stream of blob bytes.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// A blob being read from a source.
pub struct BlobRead {
    /// The bytes, from [`BlobRead::offset`] on.
    pub stream: BlobStream,
    /// Where the stream starts: the offset asked for, or 0 when the source cannot start
    /// elsewhere (the engine then skips what it already has).
    pub offset: u64,
    /// The length the source announces for the stream, if it does (checked by the engine).
    pub length: Option<u64>,
}

/// Where a source's blobs can be reused from without moving bytes: a destination on the same
/// registry can mount them from this repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobOrigin {
    /// Registry host as the API reaches it (`host:port`).
    pub host: String,
    /// Repository.
    pub repository: String,
}

/// One entry of a referrers list: a manifest whose `subject` names another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerEntry {
    /// The referrer manifest (media type, digest, size).
    pub descriptor: Descriptor,
    /// Its artifact type as the list gives it (`artifactType`, else its config's media type).
    pub artifact_type: Option<String>,
}

/// One sigstore signature (a layer of a cosign `sha256-<hex>.sig` attachment: media type,
/// payload, annotations), as skopeo copies it invoked as `skopeo` with
/// `use-sigstore-attachments`.
pub use crate::signing::SigstoreSignature;

/// A source of one image (its reference, and anything reachable from it by digest).
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// The reference, as reports name it (`registry/repository:tag`, `oci:PATH:REF`).
    fn name(&self) -> String;

    /// Where it is, for messages (`registry/repository`, or a path).
    fn location(&self) -> Location;

    /// The manifest the reference names, raw bytes kept.
    async fn manifest(&self) -> Result<Manifest>;

    /// A manifest by digest (an index's child), verified against the digest.
    async fn manifest_by_digest(&self, digest: &Digest) -> Result<Manifest>;

    /// Open a blob from `offset` (0 for the whole blob). Transient failures before the first
    /// byte are retried inside; failures while streaming are items of the stream, and the
    /// engine resumes by calling this again with the offset it reached.
    async fn blob(&self, desc: &Descriptor, offset: u64) -> Result<BlobRead>;

    /// Whether reading a small blob whole and keeping it in memory is cheaper than streaming
    /// (a network source: one request). Disk sources stream everything.
    fn prefers_whole_small_blobs(&self) -> bool {
        false
    }

    /// Where blobs can be mounted from, if a destination on the same registry can.
    fn blob_origin(&self) -> Option<BlobOrigin> {
        None
    }

    /// Whether the source can carry simple signatures (OpenShift's signature extension,
    /// `dir:` signature files).
    async fn supports_signatures(&self) -> Result<bool> {
        Ok(false)
    }

    /// The simple signatures of one manifest, each signature's bytes unchanged.
    async fn signatures(&self, _digest: &Digest) -> Result<Vec<Vec<u8>>> {
        Ok(vec![])
    }

    /// Whether the source has a tag (for cosign attachments such as `sha256-<hex>.sig`).
    async fn has_tag(&self, _tag: &str) -> Result<bool> {
        Ok(false)
    }

    /// Every tag of the source's repository, listed once and kept (cosign attachments are
    /// looked up in it instead of probing each `sha256-<hex>.sig` name). Empty when the
    /// source has no tags besides its reference.
    async fn tags(&self) -> Result<std::sync::Arc<Vec<String>>> {
        Ok(std::sync::Arc::new(vec![]))
    }

    /// The manifest a tag of the source's repository names (an attachment tag), raw bytes
    /// kept; `None` when the tag does not exist.
    async fn tagged_manifest(&self, _tag: &str) -> Result<Option<Manifest>> {
        Ok(None)
    }

    /// The OCI 1.1 referrers of a manifest: those whose `subject` is `digest`, restricted to
    /// `artifact_types` when it is not empty (a source may return more; the engine filters
    /// again). A registry answers from its referrers API, else from the fallback tag.
    async fn referrers(
        &self,
        _digest: &Digest,
        _artifact_types: &[String],
    ) -> Result<Vec<ReferrerEntry>> {
        Ok(vec![])
    }

    /// Whether it reads sigstore signatures from `.sig` attachments (`registries.d`'s
    /// `use-sigstore-attachments` for a registry).
    fn reads_sigstore_attachments(&self) -> bool {
        false
    }

    /// The sigstore signatures of a manifest (the layers of its `.sig` attachment), when the
    /// source [`reads_sigstore_attachments`](Self::reads_sigstore_attachments).
    async fn sigstore_signatures(&self, _digest: &Digest) -> Result<Vec<SigstoreSignature>> {
        Ok(vec![])
    }

    /// Every signature of a manifest in either format, as the trust policy reads them
    /// (containers/image's `GetSignaturesWithFormat`): the simple signatures of
    /// [`signatures`](Self::signatures) (`signature N`), then, where the source
    /// [`reads_sigstore_attachments`](Self::reads_sigstore_attachments), the layers of the
    /// `sha256-<hex>.sig` attachment. A stored blob that is no signature is an error.
    async fn policy_signatures(&self, digest: &Digest) -> Result<Vec<Candidate>> {
        let mut out = vec![];
        if self.supports_signatures().await? {
            for (i, blob) in self.signatures(digest).await?.into_iter().enumerate() {
                let sig = Signature::from_blob(&blob).map_err(|reason| Error::Invalid {
                    what: format!("signature {} of {}", i + 1, digest.short()),
                    location: self.location(),
                    reason: reason.to_string(),
                })?;
                out.push(Candidate::new(format!("signature {}", i + 1), sig));
            }
        }
        if self.reads_sigstore_attachments() {
            let tag = crate::signing::sigstore::attachment_tag(digest);
            for (i, s) in self
                .sigstore_signatures(digest)
                .await?
                .into_iter()
                .enumerate()
            {
                out.push(Candidate::new(
                    format!("{tag} layer {}", i + 1),
                    Signature::Sigstore(s),
                ));
            }
        }
        Ok(out)
    }

    /// Requests sent so far (network sources), for reports.
    fn request_count(&self) -> u64 {
        0
    }
}

/// What a destination did instead of receiving a blob's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// It has the blob already.
    Present,
    /// It linked the blob from another repository of its registry.
    Mounted,
    /// Neither: the bytes must be put.
    No,
}

/// How a destination wants layers compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayerCompression {
    /// As they come (ferry's default everywhere a format allows it).
    #[default]
    Preserve,
    /// Uncompressed (a `docker-archive:` for `docker load`).
    Decompress,
}

/// What a destination accepts.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The manifest media types it can store; empty means any that ferry copies.
    pub manifest_types: Vec<&'static str>,
    /// Whether it stores indexes (false: one image only, `--multi-arch system` is needed).
    pub indexes: bool,
    /// How it wants layers.
    pub layer_compression: LayerCompression,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            manifest_types: vec![],
            indexes: true,
            layer_compression: LayerCompression::Preserve,
        }
    }
}

/// Which manifest slot a [`ImageDestination::put_manifest`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestRole {
    /// A manifest stored by its digest only (an index's child, a referrer).
    ByDigest,
    /// The manifest the destination reference names: the tag. Written last.
    Reference,
}

/// What the destination reference currently names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Its digest, when the destination tells.
    pub digest: Option<Digest>,
    /// Its media type, when the destination tells.
    pub media_type: Option<String>,
}

/// A destination for one image (its reference, and manifests by digest).
#[async_trait]
pub trait ImageDestination: Send + Sync {
    /// The reference, as reports name it.
    fn name(&self) -> String;

    /// Where it is, for messages.
    fn location(&self) -> Location;

    /// The digest the destination reference names, when it names one (`…@sha256:…`): the
    /// image written there must have it.
    fn reference_digest(&self) -> Option<Digest> {
        None
    }

    /// What it accepts.
    fn capabilities(&self) -> Capabilities;

    /// A key naming the place blobs are stored (registry and repository, or a layout's
    /// directory): copies running at once into the same key share blob transfers.
    fn blob_scope(&self) -> String;

    /// What the destination reference names now (`None`: nothing).
    async fn existing(&self) -> Result<Option<Existing>>;

    /// Learn what makes later calls cheaper (e.g. that a repository does not exist yet, so no
    /// blob needs looking for). Run while the engine plans; failures are not errors.
    async fn prepare(&self) {}

    /// Avoid moving a blob's bytes if possible: it is present, or can be mounted from
    /// `origin`. A destination that answers [`Reuse::No`] may keep state (an upload session
    /// opened by a failed mount) for the [`put_blob`](Self::put_blob) of the same digest.
    async fn try_reuse_blob(&self, desc: &Descriptor, origin: Option<&BlobOrigin>)
    -> Result<Reuse>;

    /// Get ready to receive a blob's bytes (open an upload session) while the engine starts
    /// reading them from the source. Called only after [`try_reuse_blob`](Self::try_reuse_blob)
    /// said [`Reuse::No`], and followed by [`put_blob`](Self::put_blob) for the same blob.
    async fn prepare_blob(&self, _desc: &Descriptor) -> Result<()> {
        Ok(())
    }

    /// Store a blob: its bytes whole (already verified) or as a stream (see the module's
    /// guarantees). Called only after [`try_reuse_blob`](Self::try_reuse_blob) said
    /// [`Reuse::No`] for the same descriptor.
    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()>;

    /// Store a blob whose digest and size are known only when its stream ends (a layer
    /// compressed or decompressed on the way): the destination hashes it while storing it
    /// and returns both. `Ok(None)`: not supported here; the engine then computes them in a
    /// first pass and uses [`put_blob`](Self::put_blob).
    async fn put_blob_computed(
        &self,
        _media_type: &str,
        _stream: BlobStream,
    ) -> Result<Option<(Digest, u64)>> {
        Ok(None)
    }

    /// Store a manifest's exact bytes, by digest or under the destination reference.
    async fn put_manifest(&self, manifest: &Manifest, role: ManifestRole) -> Result<()>;

    /// Whether it stores simple signatures (asked once per copy, before any is read).
    async fn supports_signatures(&self) -> Result<bool> {
        Ok(false)
    }

    /// The simple signatures of a manifest the destination has, for de-duplication.
    async fn signatures(&self, _digest: &Digest) -> Result<Vec<Vec<u8>>> {
        Ok(vec![])
    }

    /// Add one simple signature of a manifest already written.
    async fn put_signature(&self, _digest: &Digest, _content: &[u8]) -> Result<()> {
        Err(crate::error::Error::Unsupported(
            "storing signatures at this destination".into(),
        ))
    }

    /// Whether it stores OCI 1.1 referrers and attachment tags (the methods below).
    fn stores_attachments(&self) -> bool {
        false
    }

    /// Whether it has a manifest by digest (an attachment already copied).
    async fn has_manifest(&self, _digest: &Digest) -> Result<bool> {
        Ok(false)
    }

    /// The digest a tag of the destination repository names (cosign attachment tags);
    /// `None` when the tag does not exist.
    async fn tag_digest(&self, _tag: &str) -> Result<Option<Digest>> {
        Ok(None)
    }

    /// The referrers of `subject` the destination lists already (its referrers API, or the
    /// fallback tag), by digest.
    async fn listed_referrers(&self, _subject: &Digest) -> Result<Vec<Digest>> {
        Ok(vec![])
    }

    /// Store one referrer of `subject` (a manifest whose `subject` names it; its blobs and
    /// children already put) by digest. `true` when the destination indexes it itself (a
    /// registry's referrers API: `OCI-Subject` in the answer); otherwise the engine then
    /// calls [`index_referrers`](Self::index_referrers).
    async fn put_referrer(&self, _subject: &Digest, _referrer: &Manifest) -> Result<bool> {
        Err(crate::error::Error::Unsupported(
            "storing referrers at this destination".into(),
        ))
    }

    /// Make referrers of `subject` that the destination did not index itself discoverable:
    /// a registry adds them to the fallback index tagged `sha256-<hex>`, merged with the
    /// entries already there, none dropped.
    async fn index_referrers(&self, _subject: &Digest, _referrers: &[Manifest]) -> Result<()> {
        Ok(())
    }

    /// Store a manifest under a tag of the destination repository other than its reference
    /// (a cosign attachment, `sha256-<hex>.sig`).
    async fn put_tagged(&self, _manifest: &Manifest, _tag: &str) -> Result<()> {
        Err(crate::error::Error::Unsupported(
            "storing attachment tags at this destination".into(),
        ))
    }

    /// The Docker reference it names, the identity a signature made for it names by default
    /// (registries; `None` elsewhere, as containers/image's `DockerReference()`).
    fn docker_reference(&self) -> Option<String> {
        None
    }

    /// Whether `registries.d` sets `use-sigstore-attachments` for it (registries).
    fn writes_sigstore_attachments(&self) -> bool {
        false
    }

    /// Add sigstore signatures this copy made to the `.sig` attachment whatever `registries.d`
    /// says (ferry's `--sign-by-sigstore-private-key`); the number added.
    async fn put_sigstore_signatures_always(
        &self,
        digest: &Digest,
        signatures: &[SigstoreSignature],
    ) -> Result<u64> {
        self.put_sigstore_signatures(digest, signatures).await
    }

    /// Add the sigstore signatures a manifest's `.sig` attachment lacks, as skopeo does
    /// (rebuilding the attachment); the number added.
    async fn put_sigstore_signatures(
        &self,
        _digest: &Digest,
        _signatures: &[SigstoreSignature],
    ) -> Result<u64> {
        Err(crate::error::Error::Unsupported(
            "storing sigstore signatures at this destination".into(),
        ))
    }

    /// Make everything put so far visible (write an archive, an index file). Called once,
    /// after the manifest with [`ManifestRole::Reference`]. Registries need nothing.
    async fn commit(&self) -> Result<()> {
        Ok(())
    }

    /// Requests sent so far (network destinations), for reports.
    fn request_count(&self) -> u64 {
        0
    }
}

/// A blob's bytes on their way to a destination.
pub enum BlobData {
    /// All of them, verified (small blobs from a network source).
    Whole(Bytes),
    /// A stream (see the module's guarantees).
    Stream(BlobStream),
}
