//! A registry repository as an [`ImageSource`]: `docker://host/repo:tag`.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt as _;

use super::{Client, Scope};
use crate::error::{Location, Result};
use crate::image::{BlobOrigin, BlobRead, ImageSource};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::{Digest, ImageRef};

/// One image of a registry, read through a shared [`Client`].
pub struct RegistrySource {
    client: Arc<Client>,
    image: ImageRef,
}

impl RegistrySource {
    /// The image `image` through `client` (a client of `image.registry`).
    pub fn new(client: Arc<Client>, image: ImageRef) -> Self {
        RegistrySource { client, image }
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
        self.client.supports_signatures().await
    }

    async fn signatures(&self, digest: &Digest) -> Result<Vec<Vec<u8>>> {
        let repo = &self.image.repository;
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

    fn request_count(&self) -> u64 {
        self.client.request_count()
    }
}
