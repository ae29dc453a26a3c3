//! Moving one blob from the source registry to the destination.
//!
//! Order of preference: the destination already has it (HEAD) → nothing to do; both
//! repositories are on the same registry → mount it (no byte moves); otherwise stream it.
//! Blobs up to [`SMALL_BLOB`] are read whole, verified, and sent in one `PUT`. Larger ones
//! stream straight from the source `GET` into a `PATCH` of the upload session, hashed on the
//! way; nothing is buffered beyond the chunk in flight. If the source connection breaks (reset,
//! premature EOF, stall: less than 1 KiB within the stall timeout), the `PATCH` is closed with the bytes received so far and the
//! download resumes with `Range` where the last one stopped. The upload is committed (`PUT
//! ?digest=`) only after the received bytes hash to the expected digest and have the expected
//! size; a mismatch cancels the upload and is never retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::Digest;
use crate::registry::blob::UploadStart;
use crate::registry::manifest::Descriptor;
use crate::registry::{Client, Scope};

/// Blobs up to this size are read whole and uploaded with one request.
pub const SMALL_BLOB: u64 = 1024 * 1024;
/// How many times one download may resume after an interruption (each must make progress).
pub const MAX_RESUMES: u32 = 5;

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The destination already had it.
    Present,
    /// Mounted from the source repository (same registry).
    Mounted,
    /// Bytes were copied.
    Copied,
}

/// Everything a blob transfer needs.
pub struct BlobJob {
    /// Source registry.
    pub src: Arc<Client>,
    /// Source repository.
    pub src_repo: String,
    /// Destination registry.
    pub dst: Arc<Client>,
    /// Destination repository.
    pub dst_repo: String,
    /// Scope for destination requests.
    pub dst_scope: Scope,
    /// Whether to try mounting from the source repository.
    pub mount: Arc<AtomicBool>,
    /// The destination repository did not exist when the copy started: no blob can be found
    /// in it, so none is looked for.
    pub dst_new: bool,
    /// Progress output.
    pub progress: Arc<Progress>,
}

impl BlobJob {
    /// Copy one blob, retrying transient failures as the policy allows.
    pub async fn run(&self, desc: &Descriptor) -> Result<BlobOutcome> {
        let mut schedule = self.src.retry_policy().schedule();
        loop {
            let mut sent = 0u64;
            match self.once(desc, &mut sent).await {
                Ok(o) => return Ok(o),
                Err(e) => {
                    self.progress.blob_rewind(&desc.digest, sent);
                    match schedule.next_delay(&e) {
                        Some(d) => {
                            log::info!(
                                "{e}; retrying blob {} in {:.1}s",
                                desc.digest.short(),
                                d.as_secs_f64()
                            );
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(schedule.give_up(e)),
                    }
                }
            }
        }
    }

    async fn once(&self, desc: &Descriptor, sent: &mut u64) -> Result<BlobOutcome> {
        let session = match self.try_mount(desc).await? {
            Some(UploadStart::Mounted) => return Ok(BlobOutcome::Mounted),
            // The mount fell back to an upload session: the blob is not in the source
            // repository, but the destination may still have it.
            Some(UploadStart::Session(u)) => {
                if self.present(desc).await? {
                    self.dst
                        .cancel_upload(&u, &self.dst_scope, &self.dst_repo)
                        .await;
                    return Ok(BlobOutcome::Present);
                }
                u
            }
            None => {
                if self.present(desc).await? {
                    return Ok(BlobOutcome::Present);
                }
                match self
                    .dst
                    .start_upload(&self.dst_repo, None, &Scope::push(&self.dst_repo))
                    .await?
                {
                    UploadStart::Session(u) => u,
                    UploadStart::Mounted => return Ok(BlobOutcome::Mounted),
                }
            }
        };
        self.progress.blob_start(&desc.digest, desc.size);
        let result = if desc.size <= SMALL_BLOB {
            self.small(desc, &session, sent).await
        } else {
            self.stream(desc, session.clone(), sent).await
        };
        if let Err(e) = &result
            && !e.is_transient()
        {
            self.dst
                .cancel_upload(&session, &self.dst_scope, &self.dst_repo)
                .await;
        }
        result.map(|()| BlobOutcome::Copied)
    }

    /// Whether the destination repository has the blob.
    async fn present(&self, desc: &Descriptor) -> Result<bool> {
        if self.dst_new {
            return Ok(false);
        }
        Ok(self
            .dst
            .head_blob(&self.dst_repo, &desc.digest, &self.dst_scope)
            .await?
            .is_some())
    }

    /// Mount the blob from the source repository when both are on one registry. A mount
    /// answers 201 whether it linked the blob or the destination had it already, so it is
    /// tried before looking: one round trip per blob. `None` when mounting is not possible
    /// (another registry, the same repository, or the registry refused mounts).
    async fn try_mount(&self, desc: &Descriptor) -> Result<Option<UploadStart>> {
        if !self.mount.load(Ordering::Relaxed) || self.src_repo == self.dst_repo {
            return Ok(None);
        }
        match self
            .dst
            .start_upload(
                &self.dst_repo,
                Some((&desc.digest, &self.src_repo)),
                &self.dst_scope,
            )
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
                self.mount.store(false, Ordering::Relaxed);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Read a small blob whole, verify it, upload it in one `PUT`.
    async fn small(&self, desc: &Descriptor, session: &url::Url, sent: &mut u64) -> Result<()> {
        let dl = self.src.get_blob(&self.src_repo, &desc.digest, 0).await?;
        let loc = self.src.location(&self.src_repo);
        let what = format!("blob {}", desc.digest.short());
        check_length(&dl.response, 0, desc, &loc)?;
        let body = crate::registry::read_limited(
            dl.response,
            desc.size as usize,
            self.src.stall_timeout(),
        )
        .await
        .map_err(|e| match e {
            crate::registry::ReadError::TooLarge => too_many(desc, &loc),
            other => crate::registry::network_error_msg(other, &format!("reading {what}"), &loc),
        })?;
        *sent = body.len() as u64;
        self.progress.blob_bytes(&desc.digest, *sent);
        if body.len() as u64 != desc.size {
            return Err(short_blob(desc, body.len() as u64, &loc));
        }
        if let Some(actual) = desc.digest.verify(&body) {
            return Err(Error::DigestMismatch {
                what,
                location: loc,
                expected: desc.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        self.dst
            .finish_upload(
                session,
                &desc.digest,
                Some(body),
                &Scope::push(&self.dst_repo),
                &self.dst_repo,
            )
            .await
    }

    /// Stream a large blob, resuming the download after interruptions.
    async fn stream(&self, desc: &Descriptor, mut session: url::Url, sent: &mut u64) -> Result<()> {
        let loc = self.src.location(&self.src_repo);
        let what = format!("blob {}", desc.digest.short());
        let stall = self.src.stall_timeout().max(self.dst.stall_timeout());
        let state = Arc::new(Mutex::new(StreamState {
            hasher: Some(Hasher::for_digest(&desc.digest).ok_or_else(|| {
                Error::Unsupported(format!(
                    "blob digest algorithm {:?}",
                    desc.digest.algorithm()
                ))
            })?),
            count: 0,
            error: None,
            last_progress: Instant::now(),
        }));
        let mut resumes = 0;
        loop {
            let offset = state.lock().expect("stream state").count;
            let dl = self
                .src
                .get_blob(&self.src_repo, &desc.digest, offset)
                .await?;
            check_length(&dl.response, dl.offset, desc, &loc)?;
            let skip = offset - dl.offset;
            state.lock().expect("stream state").last_progress = Instant::now();
            let body = tap(
                dl.response.bytes_stream(),
                state.clone(),
                skip,
                desc.clone(),
                self.src.stall_timeout(),
                self.progress.clone(),
                loc.clone(),
            );
            let op = format!("uploading {what}");
            let push = Scope::push(&self.dst_repo);
            let patch = self.dst.patch_upload(
                &session,
                reqwest::Body::wrap_stream(body),
                &push,
                &self.dst_repo,
                &op,
            );
            let patched = watchdog(
                patch,
                state.clone(),
                stall,
                &op,
                &self.dst.location(&self.dst_repo),
            )
            .await;
            *sent = state.lock().expect("stream state").count;
            let (next, reported) = patched?;
            session = next;
            let (count, error) = {
                let mut st = state.lock().expect("stream state");
                (st.count, st.error.take())
            };
            *sent = count;
            // distribution answers `Range: 0-0` both for one byte and for an empty upload
            // (a PATCH whose source sent nothing before failing).
            if let Some(r) = reported
                && r != count
                && !(count == 0 && r == 1)
            {
                return Err(Error::Network {
                    op,
                    location: self.dst.location(&self.dst_repo),
                    reason: format!(
                        "the registry holds {r} bytes of the upload, ferry sent {count}"
                    ),
                    transient: true,
                });
            }
            if let Some(err) = error {
                if err.is_transient() && count > offset && resumes < MAX_RESUMES {
                    resumes += 1;
                    log::info!("{err}; resuming {what} at byte {count}");
                    continue;
                }
                return Err(err);
            }
            if count != desc.size {
                return Err(short_blob(desc, count, &loc));
            }
            let hasher = state
                .lock()
                .expect("stream state")
                .hasher
                .take()
                .expect("hasher present");
            let actual = hasher.finish();
            if actual != desc.digest {
                return Err(Error::DigestMismatch {
                    what,
                    location: loc,
                    expected: desc.digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            return self
                .dst
                .finish_upload(
                    &session,
                    &desc.digest,
                    None,
                    &Scope::push(&self.dst_repo),
                    &self.dst_repo,
                )
                .await;
        }
    }
}

fn too_many(desc: &Descriptor, loc: &crate::error::Location) -> Error {
    Error::Invalid {
        what: format!("blob {}", desc.digest.short()),
        location: loc.clone(),
        reason: format!(
            "the registry sent more than the {} bytes the manifest declares",
            desc.size
        ),
    }
}

fn short_blob(desc: &Descriptor, got: u64, loc: &crate::error::Location) -> Error {
    Error::Invalid {
        what: format!("blob {}", desc.digest.short()),
        location: loc.clone(),
        reason: format!(
            "the registry sent {got} bytes, the manifest declares {}",
            desc.size
        ),
    }
}

/// Refuse a download whose announced length does not fit the descriptor.
fn check_length(
    resp: &reqwest::Response,
    offset: u64,
    desc: &Descriptor,
    loc: &crate::error::Location,
) -> Result<()> {
    if let Some(len) = resp.content_length()
        && offset.saturating_add(len) != desc.size
    {
        return Err(Error::Invalid {
            what: format!("blob {}", desc.digest.short()),
            location: loc.clone(),
            reason: format!(
                "the registry announces {} bytes from offset {offset}, the manifest declares {}",
                len, desc.size
            ),
        });
    }
    Ok(())
}

/// A running hash for the digest's algorithm.
enum Hasher {
    Sha256(Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn for_digest(d: &Digest) -> Option<Self> {
        match d.algorithm() {
            "sha256" => Some(Hasher::Sha256(Sha256::new())),
            "sha384" => Some(Hasher::Sha384(sha2::Sha384::new())),
            "sha512" => Some(Hasher::Sha512(sha2::Sha512::new())),
            _ => None,
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        format!("{alg}:{hex}").parse().expect("valid digest")
    }
}

struct StreamState {
    hasher: Option<Hasher>,
    count: u64,
    error: Option<Error>,
    last_progress: Instant,
}

/// The source body, hashed and counted on its way to the upload. A source failure ends the
/// stream cleanly (so the bytes so far are kept by the upload session) and is recorded.
fn tap(
    source: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    state: Arc<Mutex<StreamState>>,
    skip: u64,
    desc: Descriptor,
    stall: Duration,
    progress: Arc<Progress>,
    loc: crate::error::Location,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let source = Box::pin(source);
    // Fewer than STALL_FLOOR bytes within `stall` is a stall, whether nothing comes or a trickle.
    let watch = crate::registry::StallWatch::new(stall);
    futures_util::stream::unfold(
        (source, skip, watch),
        move |(mut source, mut skip, mut watch)| {
            let state = state.clone();
            let progress = progress.clone();
            let desc = desc.clone();
            let loc = loc.clone();
            async move {
                loop {
                    let item = tokio::time::timeout_at(watch.deadline(), source.next()).await;
                    let fail = |e: Error| {
                        state.lock().expect("stream state").error = Some(e);
                    };
                    let mut chunk = match item {
                        Err(_) => {
                            fail(Error::Network {
                                op: format!("reading blob {}", desc.digest.short()),
                                location: loc.clone(),
                                reason: crate::registry::stalled_text(stall),
                                transient: true,
                            });
                            return None;
                        }
                        Ok(None) => return None,
                        Ok(Some(Err(e))) => {
                            fail(crate::registry::network_error(
                                e,
                                &format!("reading blob {}", desc.digest.short()),
                                &loc,
                            ));
                            return None;
                        }
                        Ok(Some(Ok(c))) => c,
                    };
                    if skip > 0 {
                        let n = (skip as usize).min(chunk.len());
                        skip -= n as u64;
                        chunk = chunk.slice(n..);
                        if chunk.is_empty() {
                            // Bytes skipped still moved: they count against a stall.
                            if watch.record(n) {
                                state.lock().expect("stream state").last_progress = Instant::now();
                            }
                            continue;
                        }
                        if watch.record(n) {
                            state.lock().expect("stream state").last_progress = Instant::now();
                        }
                    }
                    let mut st = state.lock().expect("stream state");
                    if st.count + chunk.len() as u64 > desc.size {
                        st.error = Some(too_many(&desc, &loc));
                        return None;
                    }
                    st.count += chunk.len() as u64;
                    if watch.record(chunk.len()) {
                        st.last_progress = Instant::now();
                    }
                    if let Some(h) = st.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    drop(st);
                    progress.blob_bytes(&desc.digest, chunk.len() as u64);
                    return Some((Ok(chunk), (source, skip, watch)));
                }
            }
        },
    )
}

/// Run an upload, failing it when no byte has moved for `stall`.
async fn watchdog<T>(
    fut: impl std::future::Future<Output = Result<T>>,
    state: Arc<Mutex<StreamState>>,
    stall: Duration,
    op: &str,
    loc: &crate::error::Location,
) -> Result<T> {
    tokio::pin!(fut);
    let tick = (stall / 4).max(Duration::from_millis(50));
    // The source side ends its stream after `stall` without data (and resumes); give it the
    // chance to do so before declaring the destination stalled.
    let stall = stall + stall / 2;
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = tokio::time::sleep(tick) => {
                let idle = state.lock().expect("stream state").last_progress.elapsed();
                if idle > stall {
                    return Err(Error::Network {
                        op: op.to_string(),
                        location: loc.clone(),
                        reason: format!("no progress for {} s (stalled)", stall.as_secs()),
                        transient: true,
                    });
                }
            }
        }
    }
}
