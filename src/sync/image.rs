//! One image of a sync, as cheaply as the destination allows (the `HEAD` checks below need a
//! registry on the side they ask; images on disk go straight to the copy engine):
//!
//! 1. **Journaled**: an earlier run's journal records it done (same source, same destination):
//!    one `HEAD` at the destination confirms the digest, and that is all — the source is not
//!    asked.
//! 2. **Present**: a `HEAD` per side (at once); the destination already names the digest the
//!    source names, and that digest is what a copy would write (every image of an index is
//!    kept, or the source is not an index): nothing else — no manifest `GET`, which registries
//!    such as Docker Hub count as a pull. When the source carries OpenShift image signatures
//!    (which a copy also brings over), when referrers and attachment tags travel with the
//!    image (the engine adds those the destination lacks, even to an image it has), or a side
//!    does not say the digest, the copy engine decides instead.
//! 3. Otherwise the copy engine copies it ([`Copier::copy`]: its own "already present" check
//!    reads the source manifest).
//!
//! Each outcome is appended to the journal as soon as it is known. The checks of (1) and (2)
//! run for more images at once than copies do (a sync's [`CHECK_WIDTH`] × `--parallel-images`):
//! a `HEAD` costs the registries little, and a list the destination mostly has is mostly
//! checks.

/// How many images are checked at once, per image being copied.
pub const CHECK_WIDTH: usize = 4;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::journal::{Entry, Journal};
use super::outcome::{ImageOutcome, Outcome, Requests};
use crate::copy::{Copier, CopyReport, Counts, MultiArch};
use crate::error::{Error, Result};
use crate::image::{ImageDestination, ImageSource};
use crate::manifest::{DOCKER_MANIFEST_LIST, OCI_INDEX};
use crate::reference::{AnyRef, ImageRef};
use crate::registry::{Client, Scope};

/// The two ends of one image: their references, the copy engine's endpoints, and for a side
/// that is a registry its client (the `HEAD` checks).
pub struct Ends<'a> {
    /// Source and destination references.
    pub refs: (&'a AnyRef, &'a AnyRef),
    /// The copy engine's source and destination.
    pub endpoints: (Arc<dyn ImageSource>, Arc<dyn ImageDestination>),
    /// The source's registry client, when the source is a registry.
    pub src_client: Option<Arc<Client>>,
    /// The destination's registry client, when the destination is a registry.
    pub dst_client: Option<Arc<Client>>,
}

impl Ends<'_> {
    fn src(&self) -> Option<(&Arc<Client>, &ImageRef)> {
        match (self.refs.0, &self.src_client) {
            (AnyRef::Docker(r), Some(c)) => Some((c, r)),
            _ => None,
        }
    }

    fn dst(&self) -> Option<(&Arc<Client>, &ImageRef)> {
        match (self.refs.1, &self.dst_client) {
            (AnyRef::Docker(r), Some(c)) => Some((c, r)),
            _ => None,
        }
    }
}

/// What happened to one image: its report entry, and the copy engine's report when it ran.
pub struct Done {
    /// The report entry.
    pub outcome: ImageOutcome,
    /// The copy engine's report (for the summary line and `--digestfile`).
    pub copy: Option<CopyReport>,
    /// The error, when it failed.
    pub error: Option<Error>,
}

fn is_index(media_type: Option<&str>) -> bool {
    matches!(media_type, Some(OCI_INDEX | DOCKER_MANIFEST_LIST))
}

/// Whether the destination names the `digest` the journal recorded.
async fn confirmed(ends: &Ends<'_>, digest: &str) -> Result<bool> {
    let Some((client, r)) = ends.dst() else {
        return Ok(false);
    };
    let head = client
        .head_manifest(
            &r.repository,
            r.target.as_str(),
            &Scope::push(&r.repository),
        )
        .await?;
    Ok(head
        .and_then(|h| h.digest)
        .is_some_and(|d| d.to_string() == digest))
}

/// The digest both sides name, when a `HEAD` per side shows the image is already there.
async fn present(
    ends: &Ends<'_>,
    mode: MultiArch,
    remove_signatures: bool,
) -> Result<Option<String>> {
    let (Some((sc, s)), Some((dc, d))) = (ends.src(), ends.dst()) else {
        return Ok(None);
    };
    // At the destination, the scope the copy would use: one token serves both.
    let (ss, ds) = (Scope::pull(&s.repository), Scope::push(&d.repository));
    let (sh, dh) = tokio::join!(
        sc.head_manifest(&s.repository, s.target.as_str(), &ss),
        dc.head_manifest(&d.repository, d.target.as_str(), &ds),
    );
    let (Some(sh), Some(dh)) = (sh?, dh?) else {
        return Ok(None);
    };
    let (Some(sd), Some(dd)) = (sh.digest, dh.digest) else {
        return Ok(None);
    };
    if sd != dd {
        return Ok(None);
    }
    // `system` picks one image of an index: the digest written is not the source's.
    if mode == MultiArch::System && is_index(sh.media_type.as_deref()) {
        return Ok(None);
    }
    // Signatures to bring over: the engine looks.
    if !remove_signatures && sc.supports_signatures().await? {
        return Ok(None);
    }
    Ok(Some(sd.to_string()))
}

/// The report entry of an image that failed before anything was tried (no client).
pub fn failed(src: &AnyRef, dst: &AnyRef, e: &Error) -> ImageOutcome {
    ImageOutcome {
        source: src.to_string(),
        destination: Some(dst.to_string()),
        outcome: Outcome::Failed,
        digest: None,
        bytes: Counts::default(),
        requests: Requests::default(),
        duration_ms: 0,
        error: Some(crate::redact::clean(&e.to_string())),
    }
}

/// The progress line of an image the copy engine was not needed for.
pub fn summary(o: &ImageOutcome) -> String {
    let what = match o.outcome {
        Outcome::Journaled => "Already present (the journal's, confirmed)",
        _ => "Already present",
    };
    format!(
        "{what}: {} is {} ({} requests)",
        o.destination
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches("docker://"),
        o.digest.as_deref().unwrap_or_default(),
        o.requests.source + o.requests.destination
    )
}

/// Sync one image. `probe`: decide "already present" with a `HEAD` per side (the multi-arch
/// mode, and whether signatures are left behind); `None`: the copy engine decides. The copy
/// itself waits for one of the `copies` permits: checks run wider than copies.
pub async fn sync_one(
    ends: Ends<'_>,
    copier: Copier,
    journal: Option<&Journal>,
    probe: Option<(MultiArch, bool)>,
    copies: &tokio::sync::Semaphore,
) -> Done {
    let started = Instant::now();
    let (source_end, destination_end) = (ends.endpoints.0.clone(), ends.endpoints.1.clone());
    let (s0, d0) = (source_end.request_count(), destination_end.request_count());
    let source = ends.refs.0.to_string();
    let destination = ends.refs.1.to_string();
    let finish =
        |outcome: Outcome, digest: Option<String>, bytes: Counts, error: Option<&Error>| {
            ImageOutcome {
                source: source.clone(),
                destination: Some(destination.clone()),
                outcome,
                digest,
                bytes,
                requests: Requests {
                    source: source_end.request_count() - s0,
                    destination: destination_end.request_count() - d0,
                },
                duration_ms: started.elapsed().as_millis() as u64,
                error: error.map(|e| crate::redact::clean(&e.to_string())),
            }
        };
    let result: Result<(Outcome, String, Counts, Option<CopyReport>)> = async {
        if let Some(digest) = journal.and_then(|j| j.done(&source, &destination))
            && confirmed(&ends, digest).await?
        {
            return Ok((
                Outcome::Journaled,
                digest.to_string(),
                Counts::default(),
                None,
            ));
        }
        if let Some((mode, remove_signatures)) = probe
            && let Some(digest) = present(&ends, mode, remove_signatures).await?
        {
            return Ok((Outcome::Present, digest, Counts::default(), None));
        }
        let _permit = copies.acquire().await.expect("the copy permits stay open");
        let report = copier
            .copy(source_end.clone(), destination_end.clone())
            .await?;
        let outcome = if report.already_present {
            Outcome::Present
        } else {
            Outcome::Copied
        };
        Ok((
            outcome,
            report.digest.clone(),
            report.bytes.clone(),
            Some(report),
        ))
    }
    .await;
    let (outcome, copy, error) = match result {
        Ok((outcome, digest, bytes, copy)) => {
            (finish(outcome, Some(digest), bytes, None), copy, None)
        }
        Err(e) => (
            finish(Outcome::Failed, None, Counts::default(), Some(&e)),
            None,
            Some(e),
        ),
    };
    if let Some(j) = journal {
        let entry = Entry {
            source: outcome.source.clone(),
            destination: destination.clone(),
            digest: outcome.digest.clone().unwrap_or_default(),
            outcome: outcome.outcome,
            bytes: outcome.bytes.copied,
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        if let Err(e) = j.record(&entry) {
            log::warn!("{e}: the journal misses {}", outcome.source);
        }
    }
    Done {
        outcome,
        copy,
        error,
    }
}
