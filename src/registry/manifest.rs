//! Manifest requests: read (verified against a digest reference), check (`HEAD`), write (the
//! exact bytes), delete.

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use super::errors::{status_error, unreachable_success};
use super::transport::{Body, Request};
use super::{Client, Scope};
use crate::error::{Error, Location, RegistryMessage, Result};
use crate::http::content_type;
use crate::manifest::{self, Manifest};
use crate::reference::Digest;

/// What a manifest HEAD found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`.
    pub digest: Option<Digest>,
    /// `Content-Type`.
    pub media_type: Option<String>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

impl Client {
    /// `GET /v2/<repo>/manifests/<reference>`: the manifest, parsed, bytes kept. When
    /// `reference` is a digest, the bytes are verified against it.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let loc = self.location(repo);
        let op = format!("reading manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let answer = self
            .send_read(
                Request {
                    method: Method::GET,
                    url,
                    scope: &Scope::pull(repo),
                    headers: h,
                    body: Body::Empty,
                    op: &op,
                    repo,
                },
                manifest::MAX_MANIFEST_SIZE,
                &format!("manifest {reference}"),
            )
            .await?;
        let answer = match answer {
            Ok(a) => a,
            Err(resp) => {
                return Err(self
                    .found(resp, &op, format!("manifest {reference}"), &loc)
                    .await
                    .err()
                    .unwrap_or_else(|| unreachable_success(&op, &loc)));
            }
        };
        let ct = answer.content_type();
        let bytes = answer.body;
        if let Ok(d) = reference.parse::<Digest>()
            && let Some(actual) = d.verify(&bytes)
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference}"),
                location: loc,
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        manifest::parse(bytes, ct.as_deref()).map_err(|reason| Error::Invalid {
            what: format!("manifest {reference}"),
            location: loc,
            reason: reason.to_string(),
        })
    }

    /// The response if it succeeded; a 404 becomes [`Error::NotFound`] for `what` (exit
    /// code 2), anything else an [`Error::Registry`].
    async fn found(
        &self,
        resp: reqwest::Response,
        op: &str,
        what: String,
        loc: &Location,
    ) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        match status_error(resp, op, loc).await {
            Error::Registry { detail, .. } if status == StatusCode::NOT_FOUND => {
                Err(Error::NotFound {
                    what,
                    location: loc.clone(),
                    detail,
                })
            }
            e => Err(e),
        }
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<ManifestHead>> {
        let loc = self.location(repo);
        let op = format!("checking manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
        let resp = self
            .send_small(Request {
                method: Method::HEAD,
                url,
                scope,
                headers: h,
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(resp, &op, &loc).await);
        }
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        Ok(Some(ManifestHead {
            digest,
            media_type: content_type(&resp),
            size: resp.content_length(),
        }))
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the exact bytes; the digest the registry
    /// reports is checked against the bytes' digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, m: &Manifest) -> Result<()> {
        self.put_manifest_headers(repo, reference, m)
            .await
            .map(|_| ())
    }

    /// [`put_manifest`](Self::put_manifest), returning the answer's headers (a registry with
    /// the OCI 1.1 referrers API sends `OCI-Subject` for a manifest with a `subject`).
    pub async fn put_manifest_headers(
        &self,
        repo: &str,
        reference: &str,
        m: &Manifest,
    ) -> Result<HeaderMap> {
        let loc = self.location(repo);
        let op = format!("writing manifest {reference}");
        let url = self.url(&format!("{repo}/manifests/{reference}")).await?;
        let ct: &'static str = match m.media_type.as_str() {
            manifest::OCI_INDEX => manifest::OCI_INDEX,
            manifest::OCI_MANIFEST => manifest::OCI_MANIFEST,
            manifest::DOCKER_MANIFEST => manifest::DOCKER_MANIFEST,
            manifest::DOCKER_MANIFEST_LIST => manifest::DOCKER_MANIFEST_LIST,
            other => {
                return Err(Error::Unsupported(format!(
                    "writing a manifest of media type {other:?}"
                )));
            }
        };
        let resp = self
            .send_small(Request {
                method: Method::PUT,
                url,
                scope: &Scope::push(repo),
                headers: HeaderMap::new(),
                body: Body::Bytes(m.bytes.clone(), ct),
                op: &op,
                repo,
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let e = status_error(resp, &op, &loc).await;
            if matches!(status.as_u16(), 400 | 415) {
                let detail = match &e {
                    Error::Registry { detail, .. } => detail.to_string(),
                    _ => String::new(),
                };
                let hint = if m.is_index() {
                    " (a registry that takes no multi-arch images, like OpenShift 3.11's, needs --multi-arch system)"
                } else if m.media_type == manifest::OCI_MANIFEST {
                    " (a registry that takes no OCI manifests, like OpenShift 3.11's, cannot store this image unchanged)"
                } else {
                    ""
                };
                return Err(Error::Invalid {
                    what: format!(
                        "write of {} {}",
                        manifest::type_name(&m.media_type),
                        m.digest
                    ),
                    location: loc,
                    reason: format!(
                        "the registry refused it (HTTP {}{detail}){hint}",
                        status.as_u16()
                    ),
                });
            }
            return Err(e);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != m.digest.as_str()
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference} as stored"),
                location: loc,
                expected: m.digest.to_string(),
                actual: d.to_string(),
            });
        }
        Ok(resp.headers().clone())
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("deleting manifest {digest}");
        let url = self.url(&format!("{repo}/manifests/{digest}")).await?;
        let resp = self
            .send_small(Request {
                method: Method::DELETE,
                url,
                scope: &Scope::delete(repo),
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => self
                .found(resp, &op, format!("manifest {digest}"), &loc)
                .await
                .map(|_| ()),
            StatusCode::METHOD_NOT_ALLOWED => {
                let e = status_error(resp, &op, &loc).await;
                Err(Error::Registry {
                    op: format!("{op} (the registry has deletes disabled)"),
                    location: loc,
                    status: 405,
                    detail: match e {
                        Error::Registry { detail, .. } => detail,
                        _ => RegistryMessage::default(),
                    },
                    retry_after: None,
                })
            }
            _ => Err(status_error(resp, &op, &loc).await),
        }
    }
}
