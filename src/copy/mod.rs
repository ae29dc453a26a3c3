//! Copying an image from an [`ImageSource`] to an [`ImageDestination`]: plan the manifest
//! tree, then transfer.
//!
//! 1. Read the source manifest and, at the same time, ask the destination what its reference
//!    names. If it already holds the manifest ferry would write, stop: "already present".
//! 2. Plan: for an index, `--multi-arch all` takes every child (recursively, at most
//!    [`MAX_INDEX_DEPTH`] levels), `system` one platform's image, `index-only` the index alone.
//!    Where the trust policy requires signatures, every planned manifest's are checked now,
//!    before anything is written ([`verify`]).
//! 3. Transfer every distinct blob concurrently (bounded), skipping what the destination has
//!    and mounting across repositories of one registry ([`transfer`]).
//! 4. Write child manifests by digest; when something is attached to the image (OCI 1.1
//!    referrers, cosign attachment tags: [`referrers`]), the top manifest by digest, then the
//!    attachments; then — last — the top manifest to the reference, then commit. A failure at
//!    any earlier point leaves the destination reference where it was. An image already at
//!    the destination still gets the attachments it lacks.
//!
//! Manifests are written with their original bytes, so digests are kept; layers are never
//! recompressed.
//!
//! The steps live in [`plan`] (1–2), [`write`] (3–4, with [`transfer`] for one blob),
//! [`signatures`] (simple signatures, and an image found already present), [`referrers`],
//! [`verify`] and [`sign`].

mod convert;
mod locks;
mod plan;
pub mod referrers;
mod report;
mod sign;
mod signatures;
mod sigstore;
pub mod slots;
pub mod transcript;
pub mod transfer;
pub mod verify;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::{ImageDestination, ImageSource};
use crate::manifest::{Manifest, is_index_type};
use crate::platform::Wanted;
use crate::progress::Progress;
use crate::reference::Digest;
use crate::retry::RetryPolicy;
pub use convert::{Conversion, manifest_format};
pub use locks::BlobLocks;
use plan::collect_children;
pub use referrers::{AttachedCounts, AttachmentOptions};
pub use report::{CopyReport, Counts, Requests};
pub use sign::{MadeSignature, Signer, parse_identity};
pub use slots::Slots;
use transcript::Transcript;
use transfer::BlobJob;
pub use verify::{Gate, VerifiedSignature};

/// How to treat a multi-architecture image (`--multi-arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MultiArch {
    /// One platform's image: the running one or `--override-*`.
    System,
    /// The index and every image in it (digest kept).
    All,
    /// The index alone (its children must already be at the destination).
    IndexOnly,
}

impl std::str::FromStr for MultiArch {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "system" => Ok(MultiArch::System),
            "all" => Ok(MultiArch::All),
            "index-only" => Ok(MultiArch::IndexOnly),
            other => Err(format!(
                "unknown --multi-arch value {other:?} (expected system, all or index-only)"
            )),
        }
    }
}

/// Options of one copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// `--multi-arch`.
    pub multi_arch: MultiArch,
    /// The platform for `system`.
    pub platform: Wanted,
    /// `--remove-signatures`: copy no signature and mention none.
    pub remove_signatures: bool,
    /// Look for a cosign signature tag of the image and mention it (it is not copied: as
    /// skopeo without `use-sigstore-attachments`). `sync` copies `.sig` tags as tags instead.
    pub note_cosign: bool,
    /// Referrers and cosign attachments to copy with the image (see [`referrers`]).
    pub attachments: AttachmentOptions,
    /// Refuse, before copying anything, when the destination tag exists and points at a
    /// different digest (`ferry promote` without `--allow-overwrite`).
    pub refuse_retag: bool,
    /// Retries of a whole blob transfer (each request has its own, in its transport).
    pub retry: RetryPolicy,
    /// Time a blob transfer may go without moving a byte.
    pub stall_timeout: Duration,
    /// Sign what is written (`--sign-by`, `--sign-by-sigstore-private-key`: [`sign`]).
    pub sign: Option<Arc<Signer>>,
}

/// A planned manifest: itself and, for an index, its planned children.
#[derive(Debug)]
struct Node {
    manifest: Manifest,
    children: Vec<Node>,
}

/// Copies images from sources to destinations.
pub struct Copier {
    opts: CopyOptions,
    progress: Arc<Progress>,
    slots: Arc<Slots>,
    blob_locks: Option<Arc<BlobLocks>>,
    conversion: Conversion,
    transcript: Option<Arc<Transcript>>,
    gate: Option<Gate>,
}

/// The endpoints of one copy.
struct Ends<'a> {
    src: &'a Arc<dyn ImageSource>,
    dst: &'a Arc<dyn ImageDestination>,
}

impl Copier {
    /// A copier; `slots` bounds blob transfers in flight (shared across copies in `sync`).
    pub fn new(opts: CopyOptions, progress: Arc<Progress>, slots: Arc<Slots>) -> Self {
        Copier {
            opts,
            progress,
            slots,
            blob_locks: None,
            conversion: Conversion::default(),
            transcript: None,
            gate: None,
        }
    }

    /// Change layers or manifests on the way as asked (see [`crate::convert`]); what a
    /// destination requires (a `docker-archive:`) is done anyway.
    pub fn with_conversion(mut self, conversion: Conversion) -> Self {
        self.conversion = conversion;
        self
    }

    /// Whether the image may change on the way to this destination (then "already present"
    /// cannot be decided from the source's digest).
    fn may_convert(&self, ends: &Ends<'_>) -> bool {
        let caps = ends.dst.capabilities();
        self.conversion.desired != crate::convert::Desired::Preserve
            || self.conversion.options.manifest_format.is_some()
            || caps.layer_compression != crate::image::LayerCompression::Preserve
            || !caps.manifest_types.is_empty()
    }

    /// The job that moves blobs between these endpoints.
    fn blob_job(&self, ends: &Ends<'_>) -> BlobJob {
        BlobJob {
            src: ends.src.clone(),
            dst: ends.dst.clone(),
            origin: ends.src.blob_origin(),
            retry: self.opts.retry.clone(),
            stall: self.opts.stall_timeout,
            progress: self.progress.clone(),
        }
    }

    /// Report the copy as `skopeo copy` does (see [`transcript`]).
    pub fn with_transcript(mut self, transcript: Arc<Transcript>) -> Self {
        self.transcript = Some(transcript);
        self
    }

    /// skopeo's lines, if this copy reports them.
    fn say(&self, lines: impl FnOnce() -> Vec<String>) {
        match &self.transcript {
            Some(t) if t.is_buffered() => t.keep(lines()),
            Some(_) => self.progress.report(&lines()),
            None => {}
        }
    }

    /// Share blob transfers with other copiers (see [`BlobLocks`]).
    pub fn with_blob_locks(mut self, locks: Arc<BlobLocks>) -> Self {
        self.blob_locks = Some(locks);
        self
    }

    /// Copy the image `src` names to the reference `dst` names.
    pub async fn copy(
        &self,
        src: Arc<dyn ImageSource>,
        dst: Arc<dyn ImageDestination>,
    ) -> Result<CopyReport> {
        let started = Instant::now();
        let (src_req0, dst_req0) = (src.request_count(), dst.request_count());
        let ends = Ends {
            src: &src,
            dst: &dst,
        };
        // The trust policy: a rejection (`reject`) fails before any request; signatures it
        // requires are checked after planning, before anything is written.
        let verify = self.policy_needs_signatures()?;
        // Read the source and look at the destination at the same time.
        let (top, existing) = tokio::join!(src.manifest(), dst.existing());
        let top = top?;
        let existing_digest = existing?.and_then(|e| e.digest);
        let mut report = CopyReport::new(src.name(), dst.name(), top.digest.to_string());
        let finish = |mut report: CopyReport| {
            report.requests = Requests {
                source: src.request_count() - src_req0,
                destination: dst.request_count() - dst_req0,
            };
            report.duration_ms = started.elapsed().as_millis() as u64;
            Ok(report)
        };
        // What goes to the destination reference is often known from the top manifest
        // alone: then an image that is already there costs nothing more.
        let may_convert = self.may_convert(&ends);
        let signing = self.opts.sign.is_some();
        if let Some((digest, media_type)) = self
            .target_of(&top)
            .filter(|_| !may_convert && !verify && !signing)
        {
            self.check_destination(&ends, &digest, existing_digest.as_ref())?;
            if existing_digest.as_ref() == Some(&digest) {
                self.say(|| transcript::already_present(is_index_type(&media_type)));
                report.digest = digest.to_string();
                report.media_type = media_type;
                report.already_present = true;
                self.present_signatures(&ends, &digest, &mut report).await?;
                let subjects = self.present_subjects(&top, &digest);
                self.repair(&ends, &subjects, &mut report).await?;
                return finish(report);
            }
        }
        // Planning reads child manifests at the source; meanwhile the destination learns what
        // makes its blob checks cheaper.
        let (root, ()) = tokio::join!(self.plan(&ends, top, 0), dst.prepare());
        let root = root?;
        // Before anything is written (and whether or not the image is there already).
        if verify {
            report.signatures_verified = self.verify_plan(src.as_ref(), &root).await?;
        }
        let converting = may_convert && self.changes(&ends, &root)?;
        if !converting {
            self.check_destination(&ends, &root.manifest.digest, existing_digest.as_ref())?;
        }
        report.digest = root.manifest.digest.to_string();
        report.media_type = root.manifest.media_type.clone();
        if converting && signing {
            return Err(Error::Refused(format!(
                "not signing {}: its layers or manifest would change on the way, and ferry signs only images it copies unchanged",
                src.name()
            )));
        }
        // Made now, before anything is written: a key that cannot sign changes nothing.
        let new = self.make_signatures(&ends, &root).await?;
        let creating = new.as_ref().map(|n| n.creating.clone()).unwrap_or_default();
        // Signatures are read before anything is written, so that a failure to read them
        // leaves the destination as it was; they are written after the manifests they sign.
        let mut digests = vec![root.manifest.digest.clone()];
        let mut levels = vec![];
        collect_children(&root, 0, &mut levels);
        digests.extend(levels.iter().flatten().map(|m| m.digest.clone()));
        if !converting && existing_digest.as_ref() == Some(&root.manifest.digest) {
            self.say(|| transcript::already_present(root.manifest.is_index()));
            report.already_present = true;
            self.present_signatures(&ends, &digests[0], &mut report)
                .await?;
            // The attachments it lacks first: a `.sig` tag rewritten from the source's would
            // lose a signature added before it.
            self.repair(&ends, &digests, &mut report).await?;
            if let Some(new) = &new {
                self.store_signatures(&ends, &root.manifest, true, new, &mut report)
                    .await?;
                self.say(|| transcript::signed(&root, &creating));
            }
            return finish(report);
        }
        let copies_sig = self
            .opts
            .attachments
            .tag_suffixes
            .iter()
            .any(|s| s == "sig")
            || (self.opts.attachments.sigstore_signatures && src.reads_sigstore_attachments());
        let cosign = async {
            if !self.opts.note_cosign || self.opts.remove_signatures || copies_sig {
                return None;
            }
            let d = &digests[0];
            let tag = format!("{}-{}.sig", d.algorithm(), d.hex());
            match src.has_tag(&tag).await {
                Ok(true) => Some(format!("cosign signature {tag}")),
                _ => None,
            }
        };
        let copy = async {
            let sigs = self.read_signatures(&ends, &digests).await?;
            let sigstore = self.read_sigstore(src.as_ref(), &digests).await?;
            if converting {
                if !sigs.is_empty() || !sigstore.is_empty() {
                    return Err(Error::Refused(format!(
                        "copying {} would change its layers or manifest, which would invalidate its signatures (use --remove-signatures to copy it without them)",
                        src.name()
                    )));
                }
                // Referrers and attachments name the original digests: they would refer to
                // nothing at the destination.
                for a in self.attached_descriptions(src.as_ref(), &digests).await? {
                    report.attached_not_copied.push(format!(
                        "{a} (the image changed on the way, its digest with it)"
                    ));
                }
                self.say(|| transcript::start(&root, &sigs));
                let top = self.transfer_converted(&ends, &root, &mut report).await?;
                report.digest = top.digest.to_string();
                report.media_type = top.media_type;
                self.say(|| transcript::end(&root, &sigs, &[]));
                return Ok(());
            }
            self.say(|| transcript::start(&root, &sigs));
            // What is attached to the image is looked for while its blobs stream: it is
            // needed only before the reference moves (one to three round trips fewer before
            // the first byte over a WAN). A failure stops the blobs; nothing is tagged.
            let (todo, blobs) = tokio::try_join!(
                self.attachments(src.as_ref(), dst.as_ref(), &digests, &mut report),
                self.copy_blobs(&ends, &root),
            )?;
            report.attached_not_copied.extend(todo.not_copied);
            report.count_blobs(&blobs);
            self.write_manifests(
                &ends,
                &root,
                &sigs,
                &todo.missing,
                new.as_ref(),
                &mut report,
            )
            .await?;
            let end = transcript::end(&root, &sigs, &creating);
            self.write_signatures(&ends, sigs, &mut report).await?;
            self.write_sigstore(dst.as_ref(), sigstore, &mut report)
                .await?;
            self.say(|| end);
            Ok::<_, Error>(())
        };
        let (copied, note) = tokio::join!(copy, cosign);
        copied?;
        report.signatures_not_copied.extend(note);
        finish(report)
    }
}

/// Simple signatures read from the source, per manifest digest.
type SourceSignatures = Vec<(Digest, Vec<Vec<u8>>)>;
