//! A registry repository as an [`ImageDestination`].
//!
//! Blobs: a mount from the source repository is tried first when both are on this registry
//! (one round trip, whether it links the blob or finds it present); otherwise a `HEAD`, unless
//! the repository did not exist when the copy started. Bytes go up in one `PUT ?digest=` after
//! the `POST` that opens the upload session (a monolithic upload, the fewest requests every
//! registry accepts): blobs up to [`SMALL_BLOB`] read whole, larger ones streamed as the body,
//! which ends before its last byte unless the engine's stream ended cleanly (its size and
//! digest checked), so that nothing wrong is committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use url::Url;

use super::blob::UploadStart;
use super::{Client, Scope};
use crate::error::{Error, Location, Result};
use crate::image::{
    BlobData, BlobOrigin, BlobStream, Capabilities, Existing, ImageDestination, ManifestRole,
    Reuse, SigstoreSignature,
};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::{Digest, ImageRef, Target};

/// Blobs up to this size are sent in one request.
pub const SMALL_BLOB: u64 = 1024 * 1024;

const UNKNOWN: u8 = 0;
const EXISTS: u8 = 1;
const NEW: u8 = 2;

/// One image reference of a registry, written through a shared [`Client`].
pub struct RegistryDestination {
    client: Arc<Client>,
    image: ImageRef,
    /// The repository blobs may be mounted from (same registry, another repository).
    mount_from: Option<String>,
    /// Every request of the copy uses this scope, so that one token serves it all.
    scope: Scope,
    mount_ok: AtomicBool,
    repo_state: AtomicU8,
    /// Upload sessions opened by mounts that fell back to an upload.
    pending: Mutex<HashMap<Digest, Url>>,
    /// Where simple signatures go when the registry does not store them itself.
    lookaside: Option<Url>,
    /// `use-sigstore-attachments` for this image (`registries.d`).
    sigstore_attachments: bool,
}

impl RegistryDestination {
    /// The reference `image` through `client`; blobs are mounted from `origin` when it is a
    /// repository of the same registry.
    pub fn new(client: Arc<Client>, image: ImageRef, origin: Option<&BlobOrigin>) -> Self {
        let mount_from = origin
            .filter(|o| o.host == client.host() && o.repository != image.repository)
            .map(|o| o.repository.clone());
        let mut scope = Scope::push(&image.repository);
        if let Some(from) = &mount_from {
            scope = scope.and_pull(from);
        }
        RegistryDestination {
            client,
            image,
            mount_ok: AtomicBool::new(mount_from.is_some()),
            mount_from,
            scope,
            repo_state: AtomicU8::new(UNKNOWN),
            pending: Mutex::new(HashMap::new()),
            lookaside: None,
            sigstore_attachments: false,
        }
    }

    /// Write sigstore signatures to `.sig` attachments (as skopeo, when `registries.d` sets
    /// `use-sigstore-attachments` for the image).
    pub fn with_sigstore_attachments(mut self, on: bool) -> Self {
        self.sigstore_attachments = on;
        self
    }

    /// Write simple signatures to this lookaside location (a configured `lookaside-staging`
    /// or `lookaside`) when the registry has no signature extension.
    pub fn with_lookaside(mut self, base: Option<Url>) -> Self {
        self.lookaside = base;
        self
    }

    fn repo(&self) -> &str {
        &self.image.repository
    }

    /// Whether the repository has the blob (`false` without asking when it did not exist).
    async fn present(&self, desc: &Descriptor) -> Result<bool> {
        if self.repo_state.load(Ordering::Relaxed) == NEW {
            return Ok(false);
        }
        Ok(self
            .client
            .head_blob(self.repo(), &desc.digest, &self.scope)
            .await?
            .is_some())
    }

    /// Try a mount; `None` when mounting is not possible here.
    async fn mount(&self, desc: &Descriptor, from: &str) -> Result<Option<UploadStart>> {
        match self
            .client
            .start_upload(self.repo(), Some((&desc.digest, from)), &self.scope)
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(
                e @ (Error::Auth { .. }
                | Error::Registry {
                    status: 401 | 403 | 404 | 405,
                    ..
                }),
            ) => {
                log::debug!("mounting is not possible ({e}); uploading instead");
                self.mount_ok.store(false, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn session(&self, digest: &Digest) -> Result<Url> {
        let pending = self.pending.lock().expect("pending uploads").remove(digest);
        if let Some(u) = pending {
            return Ok(u);
        }
        match self
            .client
            .start_upload(self.repo(), None, &Scope::push(self.repo()))
            .await?
        {
            UploadStart::Session(u) => Ok(u),
            UploadStart::Mounted => Err(Error::Invalid {
                what: "upload session".into(),
                location: self.location(),
                reason: "the registry answered 201 to a plain upload request".into(),
            }),
        }
    }

    async fn upload(&self, desc: &Descriptor, session: &Url, data: BlobData) -> Result<()> {
        let push = Scope::push(self.repo());
        let whole = match data {
            BlobData::Whole(b) => Some(b),
            // A small blob costs one request less as a monolithic PUT; the engine's stream
            // ends with an error if its bytes are wrong, so collecting it verifies them.
            BlobData::Stream(s) if desc.size <= SMALL_BLOB => Some(collect(s, desc.size).await?),
            BlobData::Stream(s) => {
                let body = s.map(|item| item.map_err(std::io::Error::other));
                return self
                    .client
                    .put_upload_stream(
                        session,
                        &desc.digest,
                        desc.size,
                        reqwest::Body::wrap_stream(body),
                        &push,
                        self.repo(),
                    )
                    .await;
            }
        };
        self.client
            .finish_upload(session, &desc.digest, whole, &push, self.repo())
            .await
    }
}

async fn collect(mut s: BlobStream, size: u64) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(size as usize);
    while let Some(chunk) = s.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}

#[async_trait]
impl ImageDestination for RegistryDestination {
    fn name(&self) -> String {
        self.image.to_string()
    }

    fn location(&self) -> Location {
        self.client.location(self.repo())
    }

    fn reference_digest(&self) -> Option<Digest> {
        match &self.image.target {
            Target::Digest(d) => Some(d.clone()),
            Target::Tag(_) => None,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn blob_scope(&self) -> String {
        format!("docker://{}/{}", self.client.host(), self.repo())
    }

    async fn existing(&self) -> Result<Option<Existing>> {
        Ok(self
            .client
            .head_manifest(self.repo(), self.image.target.as_str(), &self.scope)
            .await?
            .map(|h| Existing {
                digest: h.digest,
                media_type: h.media_type,
            }))
    }

    async fn prepare(&self) {
        // Called once the image is probably not there (unless a signature check, signing or a
        // conversion needs the plan first): uploads follow, each wanting a connection.
        self.client.warm_up(super::WARM_CONNECTIONS);
        let state = match self
            .client
            .repository_exists(self.repo(), &self.scope)
            .await
        {
            Some(false) => NEW,
            Some(true) => EXISTS,
            None => UNKNOWN,
        };
        self.repo_state.store(state, Ordering::Relaxed);
    }

    async fn try_reuse_blob(
        &self,
        desc: &Descriptor,
        origin: Option<&BlobOrigin>,
    ) -> Result<Reuse> {
        let from = self
            .mount_from
            .as_deref()
            .filter(|f| origin.is_some_and(|o| o.repository == *f))
            .filter(|_| self.mount_ok.load(Ordering::Relaxed));
        if let Some(from) = from {
            match self.mount(desc, from).await? {
                Some(UploadStart::Mounted) => return Ok(Reuse::Mounted),
                // The mount fell back to an upload session: the blob is not in the source
                // repository, but this one may still have it.
                Some(UploadStart::Session(u)) => {
                    if self.present(desc).await? {
                        self.client
                            .cancel_upload(&u, &self.scope, self.repo())
                            .await;
                        return Ok(Reuse::Present);
                    }
                    self.pending
                        .lock()
                        .expect("pending uploads")
                        .insert(desc.digest.clone(), u);
                    return Ok(Reuse::No);
                }
                None => {}
            }
        }
        Ok(if self.present(desc).await? {
            Reuse::Present
        } else {
            Reuse::No
        })
    }

    async fn prepare_blob(&self, desc: &Descriptor) -> Result<()> {
        if self
            .pending
            .lock()
            .expect("pending uploads")
            .contains_key(&desc.digest)
        {
            return Ok(());
        }
        let session = self.session(&desc.digest).await?;
        self.pending
            .lock()
            .expect("pending uploads")
            .insert(desc.digest.clone(), session);
        Ok(())
    }

    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()> {
        let session = self.session(&desc.digest).await?;
        let result = self.upload(desc, &session, data).await;
        if let Err(e) = &result
            && !e.is_transient()
        {
            self.client
                .cancel_upload(&session, &self.scope, self.repo())
                .await;
        }
        result
    }

    async fn put_manifest(&self, manifest: &Manifest, role: ManifestRole) -> Result<()> {
        let reference = match role {
            ManifestRole::ByDigest => manifest.digest.as_str(),
            ManifestRole::Reference => self.image.target.as_str(),
        };
        self.client
            .put_manifest(self.repo(), reference, manifest)
            .await
    }

    async fn supports_signatures(&self) -> Result<bool> {
        Ok(self.client.supports_signatures().await? || self.lookaside.is_some())
    }

    async fn signatures(&self, digest: &Digest) -> Result<Vec<Vec<u8>>> {
        if !self.client.supports_signatures().await?
            && let Some(base) = &self.lookaside
        {
            if base.scheme() != "file" {
                return Ok(vec![]);
            }
            return super::lookaside::read(&self.client, base, digest, &self.location()).await;
        }
        Ok(self
            .client
            .get_signatures(self.repo(), digest, &self.scope)
            .await?
            .into_iter()
            .map(|s| s.content)
            .collect())
    }

    async fn put_signature(&self, digest: &Digest, content: &[u8]) -> Result<()> {
        if !self.client.supports_signatures().await?
            && let Some(base) = &self.lookaside
        {
            return super::lookaside::add(base, digest, content, &self.location()).await;
        }
        self.client
            .put_signature(self.repo(), digest, content, &self.scope)
            .await
    }

    fn stores_attachments(&self) -> bool {
        true
    }

    async fn has_manifest(&self, digest: &Digest) -> Result<bool> {
        if self.repo_state.load(Ordering::Relaxed) == NEW {
            return Ok(false);
        }
        Ok(self
            .client
            .head_manifest(self.repo(), digest.as_str(), &self.scope)
            .await?
            .is_some())
    }

    async fn tag_digest(&self, tag: &str) -> Result<Option<Digest>> {
        if self.repo_state.load(Ordering::Relaxed) == NEW {
            return Ok(None);
        }
        match self
            .client
            .head_manifest(self.repo(), tag, &self.scope)
            .await?
        {
            None => Ok(None),
            Some(h) => match h.digest {
                Some(d) => Ok(Some(d)),
                None => Ok(self
                    .client
                    .manifest_if_tagged(self.repo(), tag)
                    .await?
                    .map(|m| m.digest)),
            },
        }
    }

    async fn listed_referrers(&self, subject: &Digest) -> Result<Vec<Digest>> {
        if self.repo_state.load(Ordering::Relaxed) == NEW {
            return Ok(vec![]);
        }
        Ok(self
            .client
            .referrers_of(self.repo(), subject, &[], &self.scope, None)
            .await?
            .into_iter()
            .map(|e| e.descriptor.digest)
            .collect())
    }

    async fn put_referrer(&self, subject: &Digest, referrer: &Manifest) -> Result<bool> {
        self.client
            .put_referrer(self.repo(), subject, referrer)
            .await
    }

    async fn index_referrers(&self, subject: &Digest, referrers: &[Manifest]) -> Result<()> {
        self.client
            .merge_fallback(self.repo(), subject, referrers)
            .await
    }

    async fn put_tagged(&self, manifest: &Manifest, tag: &str) -> Result<()> {
        self.client.put_manifest(self.repo(), tag, manifest).await
    }

    fn docker_reference(&self) -> Option<String> {
        Some(self.image.to_string())
    }

    fn writes_sigstore_attachments(&self) -> bool {
        self.sigstore_attachments
    }

    async fn put_sigstore_signatures_always(
        &self,
        digest: &Digest,
        signatures: &[SigstoreSignature],
    ) -> Result<u64> {
        self.client
            .put_sigstore_signatures(self.repo(), digest, signatures, &self.scope, false)
            .await
    }

    async fn put_sigstore_signatures(
        &self,
        digest: &Digest,
        signatures: &[SigstoreSignature],
    ) -> Result<u64> {
        if !self.sigstore_attachments {
            // skopeo's words.
            return Err(Error::usage(format!(
                "writing sigstore attachments is disabled by configuration (registries.d, for {})",
                self.name()
            )));
        }
        self.client
            .put_sigstore_signatures(self.repo(), digest, signatures, &self.scope, true)
            .await
    }

    fn request_count(&self) -> u64 {
        self.client.request_count()
    }
}
