//! A registry repository as an [`ImageSource`]: `docker://host/repo:tag`.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt as _;

use super::{Client, Scope};
use crate::error::{Location, Result};
use crate::image::{BlobOrigin, BlobRead, ImageSource, ReferrerEntry, SigstoreSignature};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::{Digest, ImageRef};

/// One image of a registry, read through a shared [`Client`].
pub struct RegistrySource {
    client: Arc<Client>,
    image: ImageRef,
    /// Where simple signatures are read when the registry does not serve them itself.
    lookaside: Option<url::Url>,
    /// `use-sigstore-attachments` for this image (`registries.d`).
    sigstore_attachments: bool,
}

impl RegistrySource {
    /// The image `image` through `client` (a client of `image.registry`).
    pub fn new(client: Arc<Client>, image: ImageRef) -> Self {
        RegistrySource {
            client,
            image,
            lookaside: None,
            sigstore_attachments: false,
        }
    }

    /// Read sigstore signatures from `.sig` attachments (as skopeo, when `registries.d` sets
    /// `use-sigstore-attachments` for the image).
    pub fn with_sigstore_attachments(mut self, on: bool) -> Self {
        self.sigstore_attachments = on;
        self
    }

    /// Read simple signatures from this lookaside location when the registry has no
    /// signature extension (see [`crate::registries_d`]).
    pub fn with_lookaside(mut self, base: Option<url::Url>) -> Self {
        self.lookaside = base;
        self
    }

    /// The client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

#[async_trait]
impl ImageSource for RegistrySource {
    fn name(&self) -> String {
        self.image.to_string()
    }

    fn location(&self) -> Location {
        self.client.location(&self.image.repository)
    }

    async fn manifest(&self) -> Result<Manifest> {
        self.client
            .get_manifest(&self.image.repository, self.image.target.as_str())
            .await
    }

    async fn manifest_by_digest(&self, digest: &Digest) -> Result<Manifest> {
        self.client
            .get_manifest(&self.image.repository, digest.as_str())
            .await
    }

    async fn blob(&self, desc: &Descriptor, offset: u64) -> Result<BlobRead> {
        let dl = self
            .client
            .get_blob(&self.image.repository, &desc.digest, offset)
            .await?;
        let length = dl.response.content_length();
        let op = format!("reading blob {}", desc.digest.short());
        let loc = self.location();
        let stream = dl
            .response
            .bytes_stream()
            .map(move |r| r.map_err(|e| crate::http::network_error(e, &op, &loc)));
        Ok(BlobRead {
            stream: Box::pin(stream),
            offset: dl.offset,
            length,
        })
    }

    fn prefers_whole_small_blobs(&self) -> bool {
        true
    }

    fn blob_origin(&self) -> Option<BlobOrigin> {
        Some(BlobOrigin {
            host: self.client.host().to_string(),
            repository: self.image.repository.clone(),
        })
    }

    async fn supports_signatures(&self) -> Result<bool> {
        Ok(self.client.supports_signatures().await? || self.lookaside.is_some())
    }

    async fn signatures(&self, digest: &Digest) -> Result<Vec<Vec<u8>>> {
        let repo = &self.image.repository;
        if !self.client.supports_signatures().await?
            && let Some(base) = &self.lookaside
        {
            return super::lookaside::read(&self.client, base, digest, &self.location()).await;
        }
        Ok(self
            .client
            .get_signatures(repo, digest, &Scope::pull(repo))
            .await?
            .into_iter()
            .map(|s| s.content)
            .collect())
    }

    async fn has_tag(&self, tag: &str) -> Result<bool> {
        let repo = &self.image.repository;
        Ok(self
            .client
            .head_manifest(repo, tag, &Scope::pull(repo))
            .await?
            .is_some())
    }

    async fn tags(&self) -> Result<Arc<Vec<String>>> {
        self.client.cached_tags(&self.image.repository).await
    }

    async fn tagged_manifest(&self, tag: &str) -> Result<Option<Manifest>> {
        self.client
            .manifest_if_tagged(&self.image.repository, tag)
            .await
    }

    async fn referrers(&self, digest: &Digest, types: &[String]) -> Result<Vec<ReferrerEntry>> {
        let repo = &self.image.repository;
        let scope = Scope::pull(repo);
        // Without the API, the fallback tag is looked up in the tag list (read once).
        let tags = self.client.cached_tags(repo).await?;
        self.client
            .referrers_of(repo, digest, types, &scope, Some(&tags))
            .await
    }

    fn reads_sigstore_attachments(&self) -> bool {
        self.sigstore_attachments
    }

    async fn sigstore_signatures(&self, digest: &Digest) -> Result<Vec<SigstoreSignature>> {
        if !self.sigstore_attachments {
            return Ok(vec![]);
        }
        self.client
            .sigstore_signatures(&self.image.repository, digest)
            .await
    }

    fn request_count(&self) -> u64 {
        self.client.request_count()
    }
}
