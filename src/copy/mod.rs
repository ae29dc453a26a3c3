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

mod convert;
mod locks;
pub mod referrers;
mod report;
mod sign;
mod sigstore;
pub mod slots;
pub mod transcript;
pub mod transfer;
pub mod verify;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::read::{child, platform_image};
use crate::image::{ImageDestination, ImageSource, ManifestRole};
use crate::manifest::{Descriptor, Kind, MAX_INDEX_DEPTH, Manifest, is_image_type, is_index_type};
use crate::platform::Wanted;
use crate::progress::Progress;
use crate::reference::Digest;
use crate::retry::RetryPolicy;
pub use convert::{Conversion, manifest_format};
pub use locks::BlobLocks;
pub use referrers::{AttachedCounts, AttachmentOptions};
pub use report::{CopyReport, Counts, Requests};
pub use sign::{MadeSignature, Signer, parse_identity};
pub use slots::Slots;
use transcript::Transcript;
use transfer::{BlobJob, BlobOutcome};
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
            let todo = self
                .attachments(src.as_ref(), dst.as_ref(), &digests, &mut report)
                .await?;
            report.attached_not_copied.extend(todo.not_copied);
            self.say(|| transcript::start(&root, &sigs));
            self.transfer(
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

    /// The image is already at the destination; its signatures may not be (as skopeo, which
    /// copies them again on every copy).
    async fn present_signatures(
        &self,
        ends: &Ends<'_>,
        digest: &Digest,
        report: &mut CopyReport,
    ) -> Result<()> {
        let sigs = self
            .read_signatures(ends, std::slice::from_ref(digest))
            .await?;
        let sigstore = self
            .read_sigstore(ends.src.as_ref(), std::slice::from_ref(digest))
            .await?;
        self.write_signatures(ends, sigs, report).await?;
        self.write_sigstore(ends.dst.as_ref(), sigstore, report)
            .await
    }

    /// The manifests whose attachments matter when the destination has the image already:
    /// the one at the reference and, for an index copied whole, its children.
    fn present_subjects(&self, top: &Manifest, digest: &Digest) -> Vec<Digest> {
        let mut out = vec![digest.clone()];
        if let (Kind::Index { manifests }, MultiArch::All) = (&top.kind, self.opts.multi_arch)
            && &top.digest == digest
        {
            out.extend(manifests.iter().map(|d| d.digest.clone()));
        }
        out
    }

    /// The image is at the destination: add the attachments it lacks there.
    async fn repair(
        &self,
        ends: &Ends<'_>,
        subjects: &[Digest],
        report: &mut CopyReport,
    ) -> Result<()> {
        if !self.opts.attachments.enabled() {
            return Ok(());
        }
        let todo = self
            .attachments(ends.src.as_ref(), ends.dst.as_ref(), subjects, report)
            .await?;
        report.attached_not_copied.extend(todo.not_copied);
        if todo.missing.is_empty() {
            return Ok(());
        }
        self.write_attachments(ends.src, ends.dst, &todo.missing, report)
            .await?;
        ends.dst.commit().await
    }

    /// The source's simple signatures of these manifests, unless `--remove-signatures`.
    async fn read_signatures(
        &self,
        ends: &Ends<'_>,
        digests: &[Digest],
    ) -> Result<SourceSignatures> {
        if self.opts.remove_signatures || !ends.src.supports_signatures().await? {
            return Ok(vec![]);
        }
        let reads = digests.iter().map(|d| ends.src.signatures(d));
        let mut out = vec![];
        for (d, sigs) in digests
            .iter()
            .zip(futures_util::future::try_join_all(reads).await?)
        {
            if !sigs.is_empty() {
                out.push((d.clone(), sigs));
            }
        }
        Ok(out)
    }

    /// Add the signatures the destination does not have yet (compared by content, as
    /// skopeo). A destination that stores none gets none: they are reported as not copied
    /// (skopeo files them in its local lookaside directory instead).
    async fn write_signatures(
        &self,
        ends: &Ends<'_>,
        sigs: SourceSignatures,
        report: &mut CopyReport,
    ) -> Result<()> {
        if sigs.is_empty() {
            return Ok(());
        }
        if !ends.dst.supports_signatures().await? {
            for (d, s) in &sigs {
                report.signatures_not_copied.push(format!(
                    "{} simple signature(s) of {} (the destination does not store signatures, and registries.d configures no lookaside storage for it)",
                    s.len(),
                    d.short()
                ));
            }
            return Ok(());
        }
        for (d, wanted) in sigs {
            let have = ends.dst.signatures(&d).await?;
            for content in wanted {
                if have.contains(&content) {
                    continue;
                }
                ends.dst.put_signature(&d, &content).await?;
                report.signatures_copied += 1;
            }
        }
        Ok(())
    }

    /// The digest and media type of what goes to the destination reference, when the top
    /// manifest alone tells (`None` when a nested index must be read first).
    fn target_of(&self, top: &Manifest) -> Option<(Digest, String)> {
        match (&top.kind, self.opts.multi_arch) {
            (Kind::Image { .. }, _)
            | (Kind::Index { .. }, MultiArch::All | MultiArch::IndexOnly) => {
                Some((top.digest.clone(), top.media_type.clone()))
            }
            (Kind::Index { manifests }, MultiArch::System) => {
                match self.opts.platform.choose(manifests) {
                    Some(d) if is_image_type(&d.media_type) => {
                        Some((d.digest.clone(), d.media_type.clone()))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Refuse a destination digest reference that does not match, and (for promotions) a tag
    /// that would move to another digest.
    fn check_destination(
        &self,
        ends: &Ends<'_>,
        digest: &Digest,
        existing: Option<&Digest>,
    ) -> Result<()> {
        if let Some(want) = ends.dst.reference_digest()
            && &want != digest
        {
            return Err(Error::usage(format!(
                "destination {} names digest {want}, but the image to write has digest {digest}",
                ends.dst.name()
            )));
        }
        if self.opts.refuse_retag
            && let Some(old) = existing
            && old != digest
        {
            return Err(Error::Refused(format!(
                "{} already points at {old}, not at {digest} (the digest of {}); refusing to move the tag",
                ends.dst.name(),
                ends.src.name()
            )));
        }
        Ok(())
    }

    /// Read the manifests the multi-arch mode needs: under `system`, the one image.
    async fn plan(&self, ends: &Ends<'_>, top: Manifest, depth: usize) -> Result<Node> {
        let one_image = !ends.dst.capabilities().indexes;
        if one_image && top.is_index() && self.opts.multi_arch != MultiArch::System {
            log::info!(
                "{} holds one image: copying the {} image of the index",
                ends.dst.name(),
                self.opts.platform
            );
        }
        if self.opts.multi_arch == MultiArch::System || one_image {
            let image = platform_image(ends.src.as_ref(), top, &self.opts.platform).await?;
            return Ok(Node {
                manifest: image.manifest,
                children: vec![],
            });
        }
        self.plan_tree(ends, top, depth).await
    }

    /// `all` and `index-only`: the index and (for `all`) every child, recursively.
    async fn plan_tree(&self, ends: &Ends<'_>, manifest: Manifest, depth: usize) -> Result<Node> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::Invalid {
                what: format!("manifest {}", manifest.digest),
                location: ends.src.location(),
                reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
            });
        }
        let wanted: Vec<Descriptor> = match (&manifest.kind, self.opts.multi_arch) {
            (Kind::Index { manifests }, MultiArch::All) => manifests.clone(),
            _ => vec![],
        };
        for d in &wanted {
            if !d.media_type.is_empty()
                && !is_index_type(&d.media_type)
                && !is_image_type(&d.media_type)
            {
                return Err(Error::Unsupported(format!(
                    "copying index entry {} of media type {:?}",
                    d.digest, d.media_type
                )));
            }
        }
        let children: Vec<Node> = futures_util::stream::iter(wanted)
            .map(|d| async move {
                let m = child(ends.src.as_ref(), &d).await?;
                // As skopeo (which would have to rewrite the index, and so change its digest,
                // refused under --preserve-digests): an entry must name its manifest's type.
                if !d.media_type.is_empty() && d.media_type != m.media_type {
                    return Err(Error::Invalid {
                        what: format!("index entry {}", d.digest),
                        location: ends.src.location(),
                        reason: format!(
                            "the index declares media type {:?}, the manifest itself is {:?}",
                            d.media_type, m.media_type
                        ),
                    });
                }
                Box::pin(self.plan_tree(ends, m, depth + 1)).await
            })
            .buffered(8)
            .try_collect()
            .await?;
        Ok(Node { manifest, children })
    }

    async fn transfer(
        &self,
        ends: &Ends<'_>,
        root: &Node,
        sigs: &SourceSignatures,
        attached: &[referrers::Attached],
        new: Option<&sign::NewSignatures>,
        report: &mut CopyReport,
    ) -> Result<()> {
        // Every distinct blob of every image in the plan.
        let mut blobs: Vec<Descriptor> = Vec::new();
        collect_blobs(root, &mut blobs, &mut HashSet::new());
        let total: u64 = blobs.iter().map(|b| b.size).sum();
        report.blobs.total = blobs.len() as u64;
        report.bytes.total = total;
        self.progress.add_total(total, blobs.len() as u64);
        let job = Arc::new(self.blob_job(ends));
        let scope = ends.dst.blob_scope();
        let outcomes: Vec<(Descriptor, BlobOutcome)> = futures_util::stream::iter(blobs)
            .map(|d| {
                let (job, scope) = (job.clone(), &scope);
                async move {
                    let o = self.blob(&job, scope, &d).await?;
                    Ok::<_, Error>((d, o))
                }
            })
            .buffer_unordered(usize::MAX >> 1)
            .try_collect()
            .await?;
        for (d, o) in &outcomes {
            report.count(d.size, *o);
        }
        // Children by digest, deepest first; the top manifest last, to the reference.
        let creating = new.map(|n| n.creating.as_slice()).unwrap_or_default();
        self.say(|| transcript::children(root, sigs, creating));
        let mut levels: Vec<Vec<&Manifest>> = Vec::new();
        collect_children(root, 0, &mut levels);
        let mut written = HashSet::new();
        for level in levels.iter().rev() {
            let todo: Vec<&Manifest> = level
                .iter()
                .copied()
                .filter(|m| written.insert(m.digest.clone()))
                .collect();
            futures_util::stream::iter(todo)
                .map(|m| ends.dst.put_manifest(m, ManifestRole::ByDigest))
                .buffer_unordered(8)
                .try_for_each(|()| {
                    report.manifests_written += 1;
                    async { Ok(()) }
                })
                .await?;
        }
        // What is attached to the image goes after it and before the reference moves.
        if !attached.is_empty() {
            ends.dst
                .put_manifest(&root.manifest, ManifestRole::ByDigest)
                .await?;
            self.write_attachments(ends.src, ends.dst, attached, report)
                .await?;
        }
        // Signatures made by this copy, before the reference moves.
        if let Some(new) = new {
            self.store_signatures(ends, &root.manifest, !attached.is_empty(), new, report)
                .await?;
        }
        self.say(|| transcript::manifest(&root.manifest));
        ends.dst
            .put_manifest(&root.manifest, ManifestRole::Reference)
            .await?;
        report.manifests_written += 1;
        ends.dst.commit().await
    }

    /// One blob, under the shared bound, once per destination across the copies of a sync.
    async fn blob(&self, job: &BlobJob, scope: &str, d: &Descriptor) -> Result<BlobOutcome> {
        let locks = self.blob_locks.as_deref();
        let _shared = match locks {
            Some(l) => Some(l.lock(scope, &d.digest).await),
            None => None,
        };
        let o = if locks.is_some_and(|l| l.done(scope, &d.digest)) {
            BlobOutcome::Present
        } else {
            let _slot = self.slots.acquire(d.size).await?;
            job.run(d).await?
        };
        if let Some(l) = locks {
            l.mark_done(scope, &d.digest);
        }
        let how = match o {
            BlobOutcome::Present => "already present".to_string(),
            BlobOutcome::Mounted => match &job.origin {
                Some(o) => format!("mounted from {}", o.repository),
                None => "mounted".to_string(),
            },
            BlobOutcome::Copied => "copied".to_string(),
        };
        self.progress
            .blob_done(&d.digest, d.size, &how, o == BlobOutcome::Copied);
        Ok(o)
    }
}

fn collect_blobs(node: &Node, out: &mut Vec<Descriptor>, seen: &mut HashSet<Digest>) {
    for b in node.manifest.blobs() {
        if seen.insert(b.digest.clone()) {
            out.push(b.clone());
        }
    }
    for c in &node.children {
        collect_blobs(c, out, seen);
    }
}

/// Children grouped by depth (level 0 = direct children of the root).
fn collect_children<'a>(node: &'a Node, depth: usize, levels: &mut Vec<Vec<&'a Manifest>>) {
    for c in &node.children {
        if levels.len() <= depth {
            levels.push(vec![]);
        }
        levels[depth].push(&c.manifest);
        collect_children(c, depth + 1, levels);
    }
}

/// Simple signatures read from the source, per manifest digest.
type SourceSignatures = Vec<(Digest, Vec<Vec<u8>>)>;
