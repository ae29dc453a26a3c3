//! Blob requests: existence checks, downloads (with `Range` to resume), uploads (a monolithic
//! `PUT`, streamed or whole) and cross-repository mounts.

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use super::{Body, Client, Request, Scope, Timeout, status_error};
use crate::error::{Error, Location, Result};
use crate::reference::Digest;

/// What starting an upload gave.
#[derive(Debug)]
pub enum UploadStart {
    /// The blob was mounted from another repository: nothing to upload.
    Mounted,
    /// An upload session, at this URL.
    Session(Url),
}

/// A blob download in progress.
pub struct Download {
    /// The response; its body is the blob from `offset` on.
    pub response: reqwest::Response,
    /// Where the body starts: the requested offset if the registry honoured `Range`, else 0.
    pub offset: u64,
}

impl Client {
    /// `HEAD /v2/<repo>/blobs/<digest>`: the blob's size if the repository has it.
    pub async fn head_blob(
        &self,
        repo: &str,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<Option<u64>> {
        let op = format!("checking blob {}", digest.short());
        let url = self.url(&format!("{repo}/blobs/{digest}")).await?;
        let resp = self
            .send_small(Request {
                method: Method::HEAD,
                url,
                scope,
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(resp, &op, &self.location(repo)).await),
        }
    }

    /// `GET /v2/<repo>/blobs/<digest>`, from `offset` on when it is not 0 (the registry may
    /// ignore `Range`: see [`Download::offset`]). Retries until response headers arrive;
    /// the body is the caller's to read, with its own stall timeout.
    pub async fn get_blob(&self, repo: &str, digest: &Digest, offset: u64) -> Result<Download> {
        let loc = self.location(repo);
        let op = format!("reading blob {}", digest.short());
        let url = self.url(&format!("{repo}/blobs/{digest}")).await?;
        let mut h = HeaderMap::new();
        if offset > 0 {
            h.insert(
                header::RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("valid header"),
            );
        }
        let resp = self
            .send(
                Request {
                    method: Method::GET,
                    url,
                    scope: &Scope::pull(repo),
                    headers: h,
                    body: Body::Empty,
                    op: &op,
                    repo,
                },
                Timeout::Headers(self.stall_timeout()),
            )
            .await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = resp
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(Error::Invalid {
                        what: format!("ranged answer for blob {}", digest.short()),
                        location: loc,
                        reason: format!(
                            "asked for bytes from {offset}, the Content-Range starts at {start:?}"
                        ),
                    });
                }
                Ok(Download {
                    response: resp,
                    offset,
                })
            }
            StatusCode::OK => Ok(Download {
                response: resp,
                offset: 0,
            }),
            StatusCode::NOT_FOUND => {
                let e = status_error(resp, &op, &loc).await;
                Err(match e {
                    Error::Registry { detail, .. } => Error::Registry {
                        op: format!("{op}: the blob is missing"),
                        location: loc,
                        status: 404,
                        detail,
                        retry_after: None,
                    },
                    other => other,
                })
            }
            _ => Err(status_error(resp, &op, &loc).await),
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`, optionally trying to mount `digest` from `from`
    /// (same registry). A refused mount falls back to a plain upload session.
    pub async fn start_upload(
        &self,
        repo: &str,
        mount: Option<(&Digest, &str)>,
        scope: &Scope,
    ) -> Result<UploadStart> {
        let loc = self.location(repo);
        let mut url = self.url(&format!("{repo}/blobs/uploads/")).await?;
        let op = match mount {
            Some((d, from)) => {
                url.query_pairs_mut()
                    .append_pair("mount", d.as_str())
                    .append_pair("from", from);
                format!("mounting blob {} from {from}", d.short())
            }
            None => "starting a blob upload".to_string(),
        };
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self
            .send_small(Request {
                method: Method::POST,
                url,
                scope,
                headers: h,
                body: Body::Empty,
                op: &op,
                repo,
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => Ok(UploadStart::Mounted),
            StatusCode::ACCEPTED => {
                let location = location_header(&resp).ok_or_else(|| Error::Invalid {
                    what: "upload session".into(),
                    location: loc.clone(),
                    reason: "the registry answered 202 without a Location".into(),
                })?;
                Ok(UploadStart::Session(self.resolve(&location).await?))
            }
            _ => Err(status_error(resp, &op, &loc).await),
        }
    }

    /// `PUT <session>?digest=…` with the whole blob streamed as the body (`Content-Length`
    /// its size): a monolithic upload, one request where `PATCH` + `PUT` take two. One
    /// attempt (a stream cannot be re-sent). A stream that ends with an error (its bytes
    /// wrong or short) aborts the body before its last byte, so the registry commits nothing;
    /// the registry checks the digest as well.
    pub async fn put_upload_stream(
        &self,
        session: &Url,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
        scope: &Scope,
        repo: &str,
    ) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("uploading blob {}", digest.short());
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        // An upload session on another scheme, host or port gets no credentials.
        let auth = if self.is_own(&url).await? {
            self.prepare(scope, repo).await?
        } else {
            None
        };
        let mut req = self
            .http()
            .request(Method::PUT, url.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size)
            .body(body);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.count_request();
        let resp = req
            .send()
            .await
            .map_err(|e| self.network_error(e, &op, &loc))?;
        log::debug!(
            "PUT {} -> {}",
            crate::redact::url(&url),
            resp.status().as_u16()
        );
        if resp.status().is_success() {
            return stored_as(&resp, digest, loc);
        }
        let mut e = status_error(resp, &op, &loc).await;
        if let Error::Registry { status: 401, .. } = e {
            // The token expired during the upload: the blob is retried with a fresh one.
            e = Error::Network {
                op,
                location: loc,
                reason: "the registry asked to authenticate again (HTTP 401)".into(),
                transient: true,
            };
        }
        Err(e)
    }

    /// `PUT <session>?digest=…`, with the last bytes (or none) — commits the blob.
    pub async fn finish_upload(
        &self,
        session: &Url,
        digest: &Digest,
        body: Option<Bytes>,
        scope: &Scope,
        repo: &str,
    ) -> Result<()> {
        let loc = self.location(repo);
        let op = format!("uploading blob {}", digest.short());
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let body = match body {
            Some(b) => Body::Bytes(b, "application/octet-stream"),
            None => Body::Empty,
        };
        let mut h = HeaderMap::new();
        if matches!(body, Body::Empty) {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        let resp = self
            .send(
                Request {
                    method: Method::PUT,
                    url,
                    scope,
                    headers: h,
                    body,
                    op: &op,
                    repo,
                },
                Timeout::Headers(self.stall_timeout()),
            )
            .await?;
        if resp.status().is_success() {
            return stored_as(&resp, digest, loc);
        }
        Err(status_error(resp, &op, &loc).await)
    }

    /// `DELETE` an upload session, best effort (after a failure).
    pub async fn cancel_upload(&self, session: &Url, scope: &Scope, repo: &str) {
        let r = self
            .send_small(Request {
                method: Method::DELETE,
                url: session.clone(),
                scope,
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: "cancelling an upload",
                repo,
            })
            .await;
        if let Err(e) = r {
            log::debug!("cancelling upload session failed: {e}");
        }
    }
}

fn location_header(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A committed upload's `Docker-Content-Digest`, when the registry sends one, must be the
/// digest asked for.
fn stored_as(resp: &reqwest::Response, digest: &Digest, location: Location) -> Result<()> {
    match resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        Some(d) if d != digest.as_str() => Err(Error::DigestMismatch {
            what: format!("blob {} as stored", digest.short()),
            location,
            expected: digest.to_string(),
            actual: d.to_string(),
        }),
        _ => Ok(()),
    }
}
