//! What is attached to an image travels with it: its OCI 1.1 referrers (manifests whose
//! `subject` names it) and its cosign attachments (`sha256-<hex>.sig`, `.att`, `.sbom` tags),
//! for every manifest copied (the image, and each child of an index), and theirs in turn, at
//! most [`MAX_DEPTH`] levels deep (a signature of an SBOM of the image is depth 2).
//!
//! 1. Discovery ([`discover`]) reads the source only: the referrers of each manifest (the
//!    registry's referrers API, else its fallback tag) and the attachment tags, looked up in
//!    the repository's tag list, which is read once — nothing is probed tag by tag. Every
//!    attached manifest is read by digest and verified; a referrer whose `subject` is not the
//!    manifest it was listed for is refused.
//! 2. What the destination already has is skipped (a tag that names the same digest, a
//!    referrers list that has it), so that a re-run repairs a copy that lost them. A cosign
//!    tag that names another manifest at the destination is never replaced: a `.sig`
//!    attachment gets the source's signatures it lacks added (production's own signatures
//!    stay, and one that lacks nothing is not rewritten); any other attachment is kept and
//!    reported as not copied.
//! 3. After the image's blobs and child manifests, the image manifest is put by digest; then,
//!    level by level, each attachment's blobs, its children (an attachment that is an index),
//!    itself (by digest for a referrer, under its tag for a cosign attachment), and the
//!    fallback index of referrers the destination did not index itself. The destination
//!    reference moves only after all of that: a failure leaves it where it was, and the error
//!    names the attachment.
//!
//! Every attachment is copied byte for byte, so its digest and its `subject` stay valid
//! (a `.sig` merged into the destination's is the one exception: its layers are).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use super::Copier;
use super::transfer::{BlobJob, BlobOutcome};
use crate::error::{Error, Result};
use crate::image::read::read_whole;
use crate::image::{ImageDestination, ImageSource, ManifestRole};
use crate::manifest::{Descriptor, Kind, Manifest};
use crate::reference::Digest;
use crate::signing::sigstore;
use crate::signing::{SigningError, SigstoreSignature};

mod discover;
pub use discover::{Discovery, discover};

/// How deep attachments of attachments are followed.
pub const MAX_DEPTH: usize = 4;
/// cosign's attachment tag suffixes.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// Which attachments travel with an image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentOptions {
    /// Copy OCI 1.1 referrers.
    pub referrers: bool,
    /// cosign tag suffixes to copy (`sig`, `att`, `sbom`).
    pub tag_suffixes: Vec<String>,
    /// Only attachments of these artifact types (empty: all).
    pub artifact_types: Vec<String>,
    /// Levels followed (1: only what is attached to the image itself).
    pub max_depth: usize,
    /// Invoked as `skopeo`: copy sigstore signatures as skopeo does (the source's `.sig`
    /// layers added to a rebuilt `.sig` at the destination, where `registries.d` enables
    /// `use-sigstore-attachments`), instead of attachments byte for byte.
    pub sigstore_signatures: bool,
}

impl AttachmentOptions {
    /// Nothing travels (`--referrers=none`, and skopeo's default).
    pub fn none() -> Self {
        AttachmentOptions::default()
    }

    /// ferry's default: referrers and every cosign attachment, `artifact_types` only if given.
    pub fn all(artifact_types: Vec<String>) -> Self {
        AttachmentOptions {
            referrers: true,
            tag_suffixes: COSIGN_SUFFIXES.iter().map(|s| s.to_string()).collect(),
            artifact_types,
            max_depth: MAX_DEPTH,
            sigstore_signatures: false,
        }
    }

    /// skopeo's default: no attachments; sigstore signatures as skopeo copies them.
    pub fn skopeo() -> Self {
        AttachmentOptions {
            sigstore_signatures: true,
            ..AttachmentOptions::default()
        }
    }

    /// `--remove-signatures`: cosign `.sig` tags stay behind (referrers, which are not only
    /// signatures, still travel).
    pub fn without_signatures(mut self, remove: bool) -> Self {
        if remove {
            self.tag_suffixes.retain(|s| s != "sig");
            self.sigstore_signatures = false;
        }
        self
    }

    /// Whether anything is looked for.
    pub fn enabled(&self) -> bool {
        self.max_depth > 0 && (self.referrers || !self.tag_suffixes.is_empty())
    }

    fn wants(&self, types: &[String]) -> bool {
        self.artifact_types.is_empty() || types.iter().any(|t| self.artifact_types.contains(t))
    }
}

/// How an attachment is found and stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// An OCI 1.1 referrer (its `subject` names the manifest).
    Referrer,
    /// A cosign attachment under this tag.
    Tag(String),
}

/// A manifest attached to another.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The attached manifest, bytes kept.
    pub manifest: Manifest,
    /// The manifest it is attached to.
    pub subject: Digest,
    /// How.
    pub via: Via,
    /// 1 for what is attached to a copied manifest, 2 for what is attached to that, …
    pub depth: usize,
    /// Its artifact type (`artifactType`, else its config's media type).
    pub artifact_type: Option<String>,
    /// For an attachment that is an index: its children, deepest first.
    pub children: Vec<Manifest>,
    /// A `.sig` attachment whose tag at the destination names another manifest (signatures
    /// added there since, e.g. production's own): its signatures are added to the
    /// destination's attachment instead of replacing it.
    pub merge: bool,
}

impl Attached {
    /// `referrer sha256:… (type) of sha256:…` / `attachment sha256-….sig (sha256:…)`.
    pub fn describe(&self) -> String {
        match &self.via {
            Via::Referrer => format!(
                "referrer {} ({}) of {}",
                self.manifest.digest,
                self.artifact_type.as_deref().unwrap_or("no artifact type"),
                self.subject.short()
            ),
            Via::Tag(t) => format!("attachment {t} ({})", self.manifest.digest.short()),
        }
    }

    /// Every distinct blob of the attachment and its children.
    fn blobs(&self) -> Vec<Descriptor> {
        let mut seen = HashSet::new();
        self.children
            .iter()
            .chain(std::iter::once(&self.manifest))
            .flat_map(|m| m.blobs())
            .filter(|b| seen.insert(b.digest.clone()))
            .cloned()
            .collect()
    }
}

/// Counts of one kind of attachment, for `--report`, the promotion record and the summary.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AttachedCounts {
    /// Written to the destination.
    pub copied: u64,
    /// The destination had them already.
    pub already_present: u64,
    /// Left out by `--referrers-artifact-type`.
    pub skipped_by_filter: u64,
}

impl AttachedCounts {
    /// Add another copy's counts.
    pub fn add(&mut self, other: &AttachedCounts) {
        self.copied += other.copied;
        self.already_present += other.already_present;
        self.skipped_by_filter += other.skipped_by_filter;
    }

    /// `; <what>: 1 copied, 2 already present, 0 skipped by filter`, or nothing when all are 0.
    pub fn describe(&self, what: &str) -> String {
        if self.copied + self.already_present + self.skipped_by_filter == 0 {
            return String::new();
        }
        format!(
            "; {what}: {} copied, {} already present, {} skipped by filter",
            self.copied, self.already_present, self.skipped_by_filter
        )
    }
}

/// What the destination has of an attachment.
enum Here {
    /// Nothing: copy it.
    Absent,
    /// The same manifest.
    Same,
    /// Another manifest under the same cosign tag.
    Other(Digest),
}

/// The signatures in a `.sig` attachment read from the source: its layers as
/// [`sigstore::attachment_layers`] reads them, each payload blob read and checked.
async fn signatures_of(
    src: &dyn ImageSource,
    a: &Attached,
    stall: std::time::Duration,
) -> Result<Vec<SigstoreSignature>> {
    let Kind::Image { layers, .. } = &a.manifest.kind else {
        return Ok(vec![]);
    };
    let invalid = |reason: SigningError| Error::Invalid {
        what: a.describe(),
        location: src.location(),
        reason: reason.to_string(),
    };
    let parsed = sigstore::attachment_layers(&a.manifest.bytes).map_err(invalid)?;
    let mut out = vec![];
    for (d, layer) in layers.iter().zip(parsed) {
        let payload = read_whole(src, d, sigstore::MAX_PAYLOAD, stall).await?;
        out.push(layer.signature(payload.to_vec()).map_err(invalid)?);
    }
    Ok(out)
}

/// Attachments split by what the destination has.
pub(super) struct Todo {
    pub(super) missing: Vec<Attached>,
    pub(super) not_copied: Vec<String>,
}

impl Copier {
    /// What is attached to `subjects` at the source, described for the report: for an image
    /// that changes on the way (its digest with it), whose attachments would refer to
    /// nothing at the destination.
    pub(super) async fn attached_descriptions(
        &self,
        src: &dyn ImageSource,
        subjects: &[Digest],
    ) -> Result<Vec<String>> {
        let found = discover(src, subjects, &self.opts.attachments).await?;
        Ok(found
            .missing
            .into_iter()
            .chain(found.attached.iter().map(Attached::describe))
            .collect())
    }

    /// Look for attachments of `subjects` at the source and sort out what the destination
    /// lacks; counts go to the report.
    pub(super) async fn attachments(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        subjects: &[Digest],
        report: &mut super::CopyReport,
    ) -> Result<Todo> {
        let found = discover(src, subjects, &self.opts.attachments).await?;
        report.referrers.skipped_by_filter += found.filtered_referrers;
        report.attachments.skipped_by_filter += found.filtered_tags;
        let mut todo = Todo {
            missing: vec![],
            not_copied: found.missing.clone(),
        };
        if found.attached.is_empty() {
            return Ok(todo);
        }
        if !dst.stores_attachments() {
            todo.not_copied.extend(
                found
                    .attached
                    .iter()
                    .map(|a| format!("{} (the destination stores none)", a.describe())),
            );
            return Ok(todo);
        }
        // Referrers the destination lists, per subject; tags it has.
        let subjects: Vec<Digest> = {
            let mut seen = HashSet::new();
            found
                .attached
                .iter()
                .filter(|a| a.via == Via::Referrer && seen.insert(a.subject.clone()))
                .map(|a| a.subject.clone())
                .collect()
        };
        let listed: Vec<(Digest, Vec<Digest>)> = futures_util::stream::iter(subjects)
            .map(|s| async move { dst.listed_referrers(&s).await.map(|l| (s, l)) })
            .buffered(8)
            .try_collect()
            .await?;
        let listed: BTreeMap<Digest, HashSet<Digest>> = listed
            .into_iter()
            .map(|(s, l)| (s, l.into_iter().collect()))
            .collect();
        let present: Vec<Here> = futures_util::stream::iter(&found.attached)
            .map(|a| {
                let listed = &listed;
                async move {
                    match &a.via {
                        // A fallback index may list a manifest deleted since.
                        Via::Referrer => Ok(
                            if listed
                                .get(&a.subject)
                                .is_some_and(|l| l.contains(&a.manifest.digest))
                                && dst.has_manifest(&a.manifest.digest).await?
                            {
                                Here::Same
                            } else {
                                Here::Absent
                            },
                        ),
                        Via::Tag(t) => Ok(match dst.tag_digest(t).await? {
                            None => Here::Absent,
                            Some(d) if d == a.manifest.digest => Here::Same,
                            Some(d) => Here::Other(d),
                        }),
                    }
                }
            })
            .buffered(8)
            .try_collect::<Vec<Here>>()
            .await
            .map_err(|e: Error| e)?;
        for (mut a, here) in found.attached.into_iter().zip(present) {
            match here {
                Here::Same => match a.via {
                    Via::Referrer => report.referrers.already_present += 1,
                    Via::Tag(_) => report.attachments.already_present += 1,
                },
                Here::Absent => todo.missing.push(a),
                // Never replace what the destination holds under a cosign tag: signatures
                // are merged in, any other attachment is kept as it is and reported.
                Here::Other(d) => match &a.via {
                    Via::Tag(t) if t.ends_with(".sig") => {
                        a.merge = true;
                        todo.missing.push(a);
                    }
                    _ => todo.not_copied.push(format!(
                        "{} (the destination's tag names {d}: kept, not replaced)",
                        a.describe()
                    )),
                },
            }
        }
        Ok(todo)
    }

    /// Write the missing attachments (see the module doc), level by level; the subjects are
    /// at the destination already.
    pub(super) async fn write_attachments(
        &self,
        src: &Arc<dyn ImageSource>,
        dst: &Arc<dyn ImageDestination>,
        todo: &[Attached],
        report: &mut super::CopyReport,
    ) -> Result<()> {
        let max = todo.iter().map(|a| a.depth).max().unwrap_or(0);
        let job = Arc::new(BlobJob {
            src: src.clone(),
            dst: dst.clone(),
            origin: src.blob_origin(),
            retry: self.opts.retry.clone(),
            stall: self.opts.stall_timeout,
            progress: self.progress.clone(),
        });
        let scope = dst.blob_scope();
        for depth in 1..=max {
            let level: Vec<&Attached> = todo.iter().filter(|a| a.depth == depth).collect();
            // Blobs first, each once (attachments share the empty config, for one), a failure
            // named after the first attachment that needs the blob.
            let mut blobs: Vec<(Descriptor, &Attached)> = vec![];
            let mut seen = HashSet::new();
            for a in level.iter().filter(|a| !a.merge) {
                for b in a.blobs() {
                    if seen.insert(b.digest.clone()) {
                        blobs.push((b, a));
                    }
                }
            }
            self.progress
                .add_total(blobs.iter().map(|(b, _)| b.size).sum(), blobs.len() as u64);
            futures_util::stream::iter(blobs)
                .map(|(d, a)| {
                    let (job, scope) = (&job, &scope);
                    async move {
                        self.blob(job, scope, &d)
                            .await
                            .map(|_: BlobOutcome| ())
                            .map_err(|e| Error::Attachment {
                                what: format!("copying {}", a.describe()),
                                source: Box::new(e),
                            })
                    }
                })
                .buffer_unordered(8)
                .try_collect::<Vec<()>>()
                .await?;
            let indexed: Vec<bool> = futures_util::stream::iter(level.iter().copied())
                .map(|a| async move {
                    self.write_one(src.as_ref(), dst.as_ref(), a)
                        .await
                        .map_err(|e| Error::Attachment {
                            what: format!("copying {}", a.describe()),
                            source: Box::new(e),
                        })
                })
                .buffered(8)
                .try_collect()
                .await?;
            // Referrers the destination did not index itself: its fallback index, once per
            // subject.
            let mut unindexed: BTreeMap<Digest, Vec<Manifest>> = BTreeMap::new();
            for (a, ok) in level.iter().zip(&indexed) {
                match &a.via {
                    Via::Referrer => {
                        report.referrers.copied += 1;
                        if !ok {
                            unindexed
                                .entry(a.subject.clone())
                                .or_default()
                                .push(a.manifest.clone());
                        }
                    }
                    Via::Tag(_) => report.attachments.copied += 1,
                }
            }
            for (subject, list) in unindexed {
                dst.index_referrers(&subject, &list)
                    .await
                    .map_err(|e| Error::Attachment {
                        what: format!(
                            "adding {} referrer(s) of {} to the fallback tag {}",
                            list.len(),
                            subject.short(),
                            crate::registry::referrers::fallback_tag(&subject)
                        ),
                        source: Box::new(e),
                    })?;
            }
        }
        Ok(())
    }

    /// One attachment, its blobs put: its children, itself. `true` when the destination
    /// indexed it (a referrer) or it needs no index (a tag).
    async fn write_one(
        &self,
        src: &dyn ImageSource,
        dst: &dyn ImageDestination,
        a: &Attached,
    ) -> Result<bool> {
        if a.merge {
            let signatures = signatures_of(src, a, self.opts.stall_timeout).await?;
            dst.put_sigstore_signatures_always(&a.subject, &signatures)
                .await?;
            return Ok(true);
        }
        for c in &a.children {
            dst.put_manifest(c, ManifestRole::ByDigest).await?;
        }
        match &a.via {
            Via::Referrer => dst.put_referrer(&a.subject, &a.manifest).await,
            Via::Tag(t) => dst.put_tagged(&a.manifest, t).await.map(|()| true),
        }
    }
}
