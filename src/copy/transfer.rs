//! Moving one blob from an image source to an image destination.
//!
//! Order of preference: the destination has it or can mount it
//! ([`ImageDestination::try_reuse_blob`]) → nothing moves. Otherwise, from a network source,
//! blobs up to [`SMALL_BLOB`] are read whole, verified, and handed over in one piece; larger
//! ones (and every blob of a disk source) stream through [`verified`], which hashes and counts
//! them on the way and ends with an error instead of its last item when the size or digest is
//! wrong, so that the destination never commits wrong bytes. An interrupted download (a reset,
//! a premature end, a stall: fewer than [`STALL_FLOOR`](crate::http::STALL_FLOOR) bytes
//! within the stall timeout, a trickle included) resumes from where it stopped (`Range` on a registry) inside that stream, so the destination sees
//! one continuous upload. A destination that stops taking bytes for longer than the stall
//! timeout is given up on ([`watchdog`]) and the blob is retried from the start. Mismatches
//! are never retried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::error::{Error, Location, Result};
use crate::http::StallWatch;
use crate::image::read::{check_length, mismatch, read_whole, short_blob, stalled, too_many};
use crate::image::{
    BlobData, BlobOrigin, BlobRead, BlobStream, ImageDestination, ImageSource, Reuse,
};
use crate::manifest::Descriptor;
use crate::progress::Progress;
use crate::reference::Hasher;
use crate::retry::RetryPolicy;

/// Blobs up to this size are read whole from a network source and uploaded in one request.
pub const SMALL_BLOB: u64 = crate::registry::destination::SMALL_BLOB;
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
    /// Where blobs come from.
    pub src: Arc<dyn ImageSource>,
    /// Where they go.
    pub dst: Arc<dyn ImageDestination>,
    /// The source's mount hint, asked once.
    pub origin: Option<BlobOrigin>,
    /// Retries of a whole blob transfer.
    pub retry: RetryPolicy,
    /// Time a transfer may go without moving a byte.
    pub stall: Duration,
    /// Progress output.
    pub progress: Arc<Progress>,
}

impl BlobJob {
    /// Copy one blob, retrying transient failures as the policy allows.
    pub async fn run(&self, desc: &Descriptor) -> Result<BlobOutcome> {
        crate::retry::run(
            &self.retry,
            &format!("blob {}", desc.digest.short()),
            || async {
                let sent = Arc::new(AtomicU64::new(0));
                let r = self.once(desc, &sent).await;
                if r.is_err() {
                    self.progress
                        .blob_rewind(&desc.digest, sent.load(Ordering::Relaxed));
                }
                r
            },
        )
        .await
    }

    async fn once(&self, desc: &Descriptor, sent: &Arc<AtomicU64>) -> Result<BlobOutcome> {
        match self.dst.try_reuse_blob(desc, self.origin.as_ref()).await? {
            Reuse::Present => return Ok(BlobOutcome::Present),
            Reuse::Mounted => return Ok(BlobOutcome::Mounted),
            Reuse::No => {}
        }
        self.progress.blob_start(&desc.digest, desc.size);
        // The destination gets ready (an upload session) while the source starts sending.
        if desc.size <= SMALL_BLOB && self.src.prefers_whole_small_blobs() {
            let (ready, bytes) = tokio::join!(
                self.dst.prepare_blob(desc),
                read_whole(self.src.as_ref(), desc, SMALL_BLOB, self.stall)
            );
            ready?;
            let bytes = bytes?;
            sent.store(bytes.len() as u64, Ordering::Relaxed);
            self.progress.blob_bytes(&desc.digest, bytes.len() as u64);
            self.dst.put_blob(desc, BlobData::Whole(bytes)).await?;
        } else {
            let tap = Arc::new(Tap {
                started: Instant::now(),
                last_ms: AtomicU64::new(0),
                sent: sent.clone(),
                error: Mutex::new(None),
            });
            let (ready, first) = tokio::join!(self.dst.prepare_blob(desc), self.src.blob(desc, 0));
            ready?;
            let stream = verified(
                first?,
                self.src.clone(),
                desc.clone(),
                self.stall,
                tap.clone(),
                self.progress.clone(),
            )?;
            let put = self.dst.put_blob(desc, BlobData::Stream(stream));
            let result = watchdog(put, &tap, self.stall, desc, &self.dst.location()).await;
            // The stream's own failure is the cause of whatever the destination made of it.
            if let Some(e) = tap.error.lock().expect("tap error").take() {
                return Err(e);
            }
            result?;
        }
        Ok(BlobOutcome::Copied)
    }
}

/// What a streamed transfer shares with the engine: when a byte last moved, how many moved,
/// and the stream's own failure. Touched per chunk only through atomics.
struct Tap {
    started: Instant,
    last_ms: AtomicU64,
    sent: Arc<AtomicU64>,
    error: Mutex<Option<Error>>,
}

impl Tap {
    fn touch(&self) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Keep `e` for the engine; the destination gets a stand-in that says the source failed.
    fn fail(&self, e: Error, desc: &Descriptor, loc: &Location) -> Error {
        *self.error.lock().expect("tap error") = Some(e);
        Error::Network {
            op: format!("reading blob {}", desc.digest.short()),
            location: loc.clone(),
            reason: "the source stream failed".into(),
            transient: false,
        }
    }
}

/// Per-stream state, owned by the stream.
struct Reader {
    src: Arc<dyn ImageSource>,
    desc: Descriptor,
    loc: Location,
    stall: Duration,
    tap: Arc<Tap>,
    progress: Arc<Progress>,
    inner: Option<BlobStream>,
    /// Fewer than a floor of bytes within the stall timeout is a stall.
    watch: StallWatch,
    /// Bytes of the blob received so far.
    count: u64,
    /// `count` when the current download started (a resume must make progress).
    opened_at: u64,
    /// Bytes of the current download to drop (a source that could not start at `count`).
    skip: u64,
    resumes: u32,
    hasher: Option<Hasher>,
    /// The digest was checked (when the last byte came in).
    verified: bool,
    done: bool,
}

/// The source's bytes, hashed and counted, resumed after interruptions, ending with an error
/// when their size or digest is wrong.
fn verified(
    first: BlobRead,
    src: Arc<dyn ImageSource>,
    desc: Descriptor,
    stall: Duration,
    tap: Arc<Tap>,
    progress: Arc<Progress>,
) -> Result<BlobStream> {
    let loc = src.location();
    let mut reader = Reader {
        hasher: Hasher::for_digest(&desc.digest),
        src,
        desc,
        loc,
        stall,
        tap,
        progress,
        inner: None,
        watch: StallWatch::new(stall),
        count: 0,
        opened_at: 0,
        skip: 0,
        resumes: 0,
        verified: false,
        done: false,
    };
    reader.opened(first)?;
    Ok(Box::pin(futures_util::stream::unfold(
        reader,
        |mut r| async move {
            if r.done {
                return None;
            }
            match r.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), r)),
                Ok(None) => None,
                Err(e) => {
                    r.done = true;
                    let stand_in = r.tap.fail(e, &r.desc, &r.loc);
                    Some((Err(stand_in), r))
                }
            }
        },
    )))
}

impl Reader {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.inner.is_none() {
                self.open().await?;
            }
            let inner = self.inner.as_mut().expect("opened");
            let item = match tokio::time::timeout_at(self.watch.deadline(), inner.next()).await {
                Err(_) => Err(stalled(&self.desc, &self.loc, self.stall)),
                Ok(None) => return self.end().map(|()| None),
                Ok(Some(item)) => item,
            };
            let mut chunk = match item {
                Ok(c) => c,
                Err(e) => {
                    if e.is_transient() && self.count > self.opened_at && self.resumes < MAX_RESUMES
                    {
                        self.resumes += 1;
                        log::info!(
                            "{e}; resuming blob {} at byte {}",
                            self.desc.digest.short(),
                            self.count
                        );
                        self.inner = None;
                        continue;
                    }
                    return Err(e);
                }
            };
            // Bytes skipped still moved: they count against a stall.
            if self.watch.record(chunk.len()) {
                self.tap.touch();
            }
            if self.skip > 0 {
                let n = (self.skip as usize).min(chunk.len());
                self.skip -= n as u64;
                chunk = chunk.slice(n..);
            }
            if chunk.is_empty() {
                continue;
            }
            if self.count + chunk.len() as u64 > self.desc.size {
                return Err(too_many(&self.desc, &self.loc));
            }
            self.count += chunk.len() as u64;
            if let Some(h) = self.hasher.as_mut() {
                h.update(&chunk);
            }
            // The last chunk goes out only with the right digest: a destination never gets
            // all the bytes of a wrong blob, whatever framing its upload uses.
            if self.count == self.desc.size {
                self.verify_digest()?;
            }
            self.tap.sent.store(self.count, Ordering::Relaxed);
            self.progress
                .blob_bytes(&self.desc.digest, chunk.len() as u64);
            return Ok(Some(chunk));
        }
    }

    async fn open(&mut self) -> Result<()> {
        let read = self.src.blob(&self.desc, self.count).await?;
        self.opened(read)
    }

    /// Take a download that starts at `read.offset`, at most where the blob has got to.
    fn opened(&mut self, read: BlobRead) -> Result<()> {
        check_length(read.length, read.offset, &self.desc, &self.loc)?;
        if read.offset > self.count {
            return Err(Error::Invalid {
                what: format!("blob {}", self.desc.digest.short()),
                location: self.loc.clone(),
                reason: format!(
                    "asked for bytes from {}, the source started at {}",
                    self.count, read.offset
                ),
            });
        }
        self.skip = self.count - read.offset;
        self.opened_at = self.count;
        self.inner = Some(read.stream);
        self.watch = StallWatch::new(self.stall);
        self.tap.touch();
        Ok(())
    }

    /// The source ended: the bytes must be complete and hash to the digest.
    fn end(&mut self) -> Result<()> {
        self.done = true;
        if self.count != self.desc.size {
            return Err(short_blob(&self.desc, self.count, &self.loc));
        }
        if self.verified {
            return Ok(());
        }
        self.verify_digest()
    }

    /// All `desc.size` bytes are in: their digest must be the descriptor's.
    fn verify_digest(&mut self) -> Result<()> {
        let hasher = self.hasher.take().ok_or_else(|| {
            Error::Unsupported(format!(
                "blob digest algorithm {:?}",
                self.desc.digest.algorithm()
            ))
        })?;
        let actual = hasher.finish();
        if actual != self.desc.digest {
            return Err(mismatch(&self.desc, &self.loc, actual.to_string()));
        }
        self.verified = true;
        Ok(())
    }
}

/// Run a destination's `put_blob`, failing it when no byte has moved for longer than the
/// source side's own stall timeout (which resumes the download first).
async fn watchdog(
    fut: impl std::future::Future<Output = Result<()>>,
    tap: &Tap,
    stall: Duration,
    desc: &Descriptor,
    loc: &Location,
) -> Result<()> {
    tokio::pin!(fut);
    let tick = (stall / 4).max(Duration::from_millis(50));
    let limit = stall + stall / 2;
    loop {
        tokio::select! {
            r = &mut fut => return r,
            _ = tokio::time::sleep(tick) => {
                if tap.idle() > limit {
                    return Err(Error::Network {
                        op: format!("uploading blob {}", desc.digest.short()),
                        location: loc.clone(),
                        reason: format!("no progress for {} s (stalled)", limit.as_secs()),
                        transient: true,
                    });
                }
            }
        }
    }
}
