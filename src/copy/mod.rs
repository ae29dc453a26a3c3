//! Copying an image: plan the manifest tree, then transfer.
//!
//! 1. Read the source manifest and, at the same time, ask the destination what its tag points
//!    at. If it already holds the manifest ferry would write, stop: "already present".
//! 2. Plan: for an index, `--multi-arch all` takes every child (recursively, at most
//!    [`MAX_INDEX_DEPTH`] levels), `system` one platform's image, `index-only` the index alone.
//! 3. Transfer every distinct blob concurrently (bounded), skipping what the destination has
//!    and mounting across repositories of one registry.
//! 4. Write child manifests by digest, then — last — the top manifest to the tag. A failure at
//!    any earlier point leaves the destination tag where it was.
//!
//! Manifests are written with their original bytes, so digests are kept; layers are never
//! recompressed.

pub mod transfer;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::platform::Wanted;
use crate::progress::{Progress, human_bytes};
use crate::reference::{Digest, ImageRef, Target};
use crate::registry::manifest::{
    Descriptor, Kind, MAX_INDEX_DEPTH, Manifest, is_image_type, is_index_type,
};
use crate::registry::{Client, Scope};
use transfer::{BlobJob, BlobOutcome};

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
    /// Refuse, before copying anything, when the destination tag exists and points at a
    /// different digest (`ferry promote` without `--allow-overwrite`).
    pub refuse_retag: bool,
}

/// Byte and blob counts of a copy.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Everything the copied image references.
    pub total: u64,
    /// Moved from source to destination.
    pub copied: u64,
    /// Already at the destination.
    pub skipped: u64,
    /// Mounted from another repository of the destination registry.
    pub mounted: u64,
}

/// Requests sent to each registry during the copy.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Requests {
    /// To the source registry (pings and token requests included).
    pub source: u64,
    /// To the destination registry (pings and token requests included).
    pub destination: u64,
}

/// What a copy did: written by `--report`, documented in the README.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source reference, normalised.
    pub source: String,
    /// The destination reference, normalised.
    pub destination: String,
    /// Digest of the source's top-level manifest.
    pub source_digest: String,
    /// Digest of the manifest now at the destination (differs from `source_digest` only when
    /// `--multi-arch system` picked one image of an index).
    pub digest: String,
    /// Media type of that manifest.
    pub media_type: String,
    /// True when the destination already had it and nothing was written.
    pub already_present: bool,
    /// Manifests written (children and top).
    pub manifests_written: u64,
    /// Blob counts.
    pub blobs: Counts,
    /// Byte counts.
    pub bytes: Counts,
    /// Requests per registry.
    pub requests: Requests,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// OpenShift image signatures (the registry API extension) added at the destination.
    pub signatures_copied: u64,
    /// Signatures the source has that were not copied.
    pub signatures_not_copied: Vec<String>,
}

impl CopyReport {
    /// The final one-line summary.
    pub fn summary(&self) -> String {
        if self.already_present {
            return format!(
                "{} already present at {} (nothing copied, {:.1} s)",
                self.digest,
                self.destination,
                self.duration_ms as f64 / 1000.0
            );
        }
        let sigs = match self.signatures_copied {
            0 => String::new(),
            n => format!(", {n} signature(s)"),
        };
        format!(
            "Copied {} to {}: {} copied, {} already present, {} mounted{sigs} in {:.1} s",
            self.digest,
            self.destination,
            human_bytes(self.bytes.copied),
            human_bytes(self.bytes.skipped),
            human_bytes(self.bytes.mounted),
            self.duration_ms as f64 / 1000.0
        )
    }
}

/// A planned manifest: itself and, for an index, its planned children.
#[derive(Debug)]
struct Node {
    manifest: Manifest,
    children: Vec<Node>,
}

/// Blobs being transferred by several copies at once (`sync`): the second copy of a blob to
/// the same destination repository waits for the first, then finds it present, so that every
/// blob crosses the network once.
#[derive(Default)]
pub struct BlobLocks {
    locks: BlobLockMap,
    done: std::sync::Mutex<HashSet<BlobKey>>,
}

/// Destination registry, repository and digest of a blob.
type BlobKey = (String, String, Digest);

/// Per destination registry, repository and digest: the lock of its transfer.
type BlobLockMap = std::sync::Mutex<HashMap<BlobKey, Arc<tokio::sync::Mutex<()>>>>;

impl BlobLocks {
    fn key(dst: &Client, repo: &str, digest: &Digest) -> BlobKey {
        (dst.registry().to_string(), repo.to_string(), digest.clone())
    }

    async fn lock(
        &self,
        dst: &Client,
        repo: &str,
        digest: &Digest,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.locks.lock().expect("blob lock map poisoned");
            map.entry(Self::key(dst, repo, digest)).or_default().clone()
        };
        m.lock_owned().await
    }

    /// Whether another copy already put the blob in the repository.
    fn done(&self, dst: &Client, repo: &str, digest: &Digest) -> bool {
        self.done
            .lock()
            .expect("blob set poisoned")
            .contains(&Self::key(dst, repo, digest))
    }

    fn mark_done(&self, dst: &Client, repo: &str, digest: &Digest) {
        self.done
            .lock()
            .expect("blob set poisoned")
            .insert(Self::key(dst, repo, digest));
    }
}

/// Copies images from one registry to another (or within one).
pub struct Copier {
    src: Arc<Client>,
    dst: Arc<Client>,
    opts: CopyOptions,
    progress: Arc<Progress>,
    slots: Arc<Semaphore>,
    blob_locks: Option<Arc<BlobLocks>>,
}

impl Copier {
    /// A copier; `slots` bounds blob transfers in flight (shared across copies in `sync`).
    pub fn new(
        src: Arc<Client>,
        dst: Arc<Client>,
        opts: CopyOptions,
        progress: Arc<Progress>,
        slots: Arc<Semaphore>,
    ) -> Self {
        Copier {
            src,
            dst,
            opts,
            progress,
            slots,
            blob_locks: None,
        }
    }

    /// Share blob transfers with other copiers (see [`BlobLocks`]).
    pub fn with_blob_locks(mut self, locks: Arc<BlobLocks>) -> Self {
        self.blob_locks = Some(locks);
        self
    }

    /// The scope every destination request uses, so that one token serves the whole copy.
    fn dst_scope(&self, src: &ImageRef, dst: &ImageRef) -> Scope {
        let s = Scope::push(&dst.repository);
        if self.src.same_registry(&self.dst) && src.repository != dst.repository {
            s.and_pull(&src.repository)
        } else {
            s
        }
    }

    /// Copy `src` to `dst`.
    pub async fn copy(&self, src: &ImageRef, dst: &ImageRef) -> Result<CopyReport> {
        let started = Instant::now();
        let (src_req0, dst_req0) = (self.src.request_count(), self.dst.request_count());
        let dst_scope = self.dst_scope(src, dst);
        // Read the source and look at the destination at the same time.
        let dst_ref = dst.target.as_str().to_string();
        let (top, existing) = tokio::join!(
            self.src.get_manifest(&src.repository, src.target.as_str()),
            self.dst
                .head_manifest(&dst.repository, &dst_ref, &dst_scope),
        );
        let top = top?;
        let existing = existing?;
        let existing_digest = existing.as_ref().and_then(|h| h.digest.clone());
        let source_digest = top.digest.clone();
        let new_report = |digest: &Digest, media_type: &str| CopyReport {
            source: src.to_string(),
            destination: dst.to_string(),
            source_digest: source_digest.to_string(),
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            already_present: false,
            manifests_written: 0,
            blobs: Counts::default(),
            bytes: Counts::default(),
            requests: Requests::default(),
            duration_ms: 0,
            signatures_copied: 0,
            signatures_not_copied: vec![],
        };
        // What goes to the destination tag is often known from the top manifest alone: then
        // an image that is already there costs nothing more.
        let quick = self.target_of(&top);
        if let Some((digest, media_type)) = &quick {
            self.check_destination(src, dst, digest, existing_digest.as_ref())?;
            if existing_digest.as_ref() == Some(digest) {
                let mut report = new_report(digest, media_type);
                report.already_present = true;
                self.present_signatures(src, dst, &dst_scope, digest, &mut report)
                    .await?;
                return Ok(self.finish(report, started, src_req0, dst_req0));
            }
        }
        // Planning reads child manifests at the source; meanwhile, find out whether the
        // destination repository exists at all (then no blob needs looking for).
        let (root, dst_exists) = tokio::join!(
            self.plan(src, top, 0),
            self.dst.repository_exists(&dst.repository, &dst_scope)
        );
        let root = self.select(src, root?).await?;
        self.check_destination(src, dst, &root.manifest.digest, existing_digest.as_ref())?;
        let mut report = new_report(&root.manifest.digest, &root.manifest.media_type);
        let existing_digest = existing_digest.as_ref();
        // Signatures are read before anything is written, so that a failure to read them
        // leaves the destination as it was; they are written after the manifests they sign.
        let mut digests = vec![root.manifest.digest.clone()];
        let mut levels = vec![];
        collect_children(&root, 0, &mut levels);
        digests.extend(levels.iter().flatten().map(|m| m.digest.clone()));
        if existing_digest == Some(&root.manifest.digest) {
            report.already_present = true;
            self.present_signatures(src, dst, &dst_scope, &digests[0], &mut report)
                .await?;
        } else {
            let cosign = (self.opts.note_cosign && !self.opts.remove_signatures).then(|| {
                let src_client = self.src.clone();
                let repo = src.repository.clone();
                let digest = source_digest.clone();
                tokio::spawn(async move { cosign_signature(&src_client, &repo, &digest).await })
            });
            let sigs = self.read_signatures(src, &digests).await?;
            let dst_new = dst_exists == Some(false);
            self.transfer(src, dst, &dst_scope, dst_new, &root, &mut report)
                .await?;
            self.write_signatures(dst, &dst_scope, sigs, &mut report)
                .await?;
            if let Some(h) = cosign
                && let Ok(Some(note)) = h.await
            {
                report.signatures_not_copied.push(note);
            }
        }
        Ok(self.finish(report, started, src_req0, dst_req0))
    }

    /// The image is already at the destination; its signatures may not be (as skopeo, which
    /// copies them again on every copy).
    async fn present_signatures(
        &self,
        src: &ImageRef,
        dst: &ImageRef,
        scope: &Scope,
        digest: &Digest,
        report: &mut CopyReport,
    ) -> Result<()> {
        let sigs = self
            .read_signatures(src, std::slice::from_ref(digest))
            .await?;
        self.write_signatures(dst, scope, sigs, report).await
    }

    /// The source's OpenShift image signatures of these manifests, when the source serves
    /// the signature extension and `--remove-signatures` was not given.
    async fn read_signatures(
        &self,
        src: &ImageRef,
        digests: &[Digest],
    ) -> Result<SourceSignatures> {
        if self.opts.remove_signatures || !self.src.supports_signatures().await? {
            return Ok(vec![]);
        }
        let scope = Scope::pull(&src.repository);
        let reads = digests
            .iter()
            .map(|d| self.src.get_signatures(&src.repository, d, &scope));
        let mut out = vec![];
        for (d, sigs) in digests
            .iter()
            .zip(futures_util::future::try_join_all(reads).await?)
        {
            if !sigs.is_empty() {
                out.push((d.clone(), sigs.into_iter().map(|s| s.content).collect()));
            }
        }
        Ok(out)
    }

    /// Add the signatures the destination does not have yet (compared by content, as
    /// skopeo). A destination without the extension gets none: they are reported as not
    /// copied (skopeo files them in its local lookaside directory instead).
    async fn write_signatures(
        &self,
        dst: &ImageRef,
        scope: &Scope,
        sigs: SourceSignatures,
        report: &mut CopyReport,
    ) -> Result<()> {
        if sigs.is_empty() {
            return Ok(());
        }
        if !self.dst.supports_signatures().await? {
            for (d, s) in &sigs {
                report.signatures_not_copied.push(format!(
                    "{} OpenShift image signature(s) of {} (the destination registry does not store signatures)",
                    s.len(),
                    d.short()
                ));
            }
            return Ok(());
        }
        for (d, wanted) in sigs {
            let have = self.dst.get_signatures(&dst.repository, &d, scope).await?;
            for content in wanted {
                if have.iter().any(|h| h.content == content) {
                    continue;
                }
                self.dst
                    .put_signature(&dst.repository, &d, &content, scope)
                    .await?;
                report.signatures_copied += 1;
            }
        }
        Ok(())
    }

    fn finish(
        &self,
        mut report: CopyReport,
        started: Instant,
        src_req0: u64,
        dst_req0: u64,
    ) -> CopyReport {
        report.requests = Requests {
            source: self.src.request_count() - src_req0,
            destination: self.dst.request_count() - dst_req0,
        };
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// The digest and media type of what goes to the destination tag, when the top manifest
    /// alone tells (`None` when a nested index must be read first).
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
        src: &ImageRef,
        dst: &ImageRef,
        digest: &Digest,
        existing: Option<&Digest>,
    ) -> Result<()> {
        if let Target::Digest(want) = &dst.target
            && want != digest
        {
            return Err(Error::usage(format!(
                "destination {dst} names digest {want}, but the image to write has digest {digest}"
            )));
        }
        if self.opts.refuse_retag
            && let Some(old) = existing
            && old != digest
        {
            return Err(Error::Refused(format!(
                "{dst} already points at {old}, not at {digest} (the digest of {src}); refusing to move the tag"
            )));
        }
        Ok(())
    }

    /// Read the children an index needs under the multi-arch mode.
    async fn plan(&self, src: &ImageRef, manifest: Manifest, depth: usize) -> Result<Node> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::Invalid {
                what: format!("manifest {}", manifest.digest),
                location: self.src.location(&src.repository),
                reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
            });
        }
        let Kind::Index { manifests } = &manifest.kind else {
            return Ok(Node {
                manifest,
                children: vec![],
            });
        };
        let wanted: Vec<Descriptor> = match self.opts.multi_arch {
            MultiArch::IndexOnly => vec![],
            MultiArch::All => manifests.clone(),
            MultiArch::System => match self.opts.platform.choose(manifests) {
                Some(d) => vec![d.clone()],
                None => {
                    return Err(Error::Invalid {
                        what: format!("image index {}", manifest.digest),
                        location: self.src.location(&src.repository),
                        reason: format!("no image in it for {}", self.opts.platform),
                    });
                }
            },
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
                let child = self
                    .src
                    .get_manifest(&src.repository, d.digest.as_str())
                    .await?;
                if child.bytes.len() as u64 != d.size {
                    return Err(Error::Invalid {
                        what: format!("manifest {}", d.digest),
                        location: self.src.location(&src.repository),
                        reason: format!(
                            "it is {} bytes, the index declares {}",
                            child.bytes.len(),
                            d.size
                        ),
                    });
                }
                // As skopeo (which would have to rewrite the index, and so change its digest,
                // refused under --preserve-digests): an entry must name its manifest's type.
                if !d.media_type.is_empty() && d.media_type != child.media_type {
                    return Err(Error::Invalid {
                        what: format!("index entry {}", d.digest),
                        location: self.src.location(&src.repository),
                        reason: format!(
                            "the index declares media type {:?}, the manifest itself is {:?}",
                            d.media_type, child.media_type
                        ),
                    });
                }
                Box::pin(self.plan(src, child, depth + 1)).await
            })
            .buffered(8)
            .try_collect()
            .await?;
        Ok(Node { manifest, children })
    }

    /// Under `system`, the image that goes to the destination is the chosen child.
    async fn select(&self, src: &ImageRef, mut node: Node) -> Result<Node> {
        while self.opts.multi_arch == MultiArch::System && node.manifest.is_index() {
            let chosen = node.children.pop().expect("system plan has one child");
            log::debug!(
                "{src}: chose {} for {}",
                chosen.manifest.digest,
                self.opts.platform
            );
            node = chosen;
        }
        Ok(node)
    }

    async fn transfer(
        &self,
        src: &ImageRef,
        dst: &ImageRef,
        dst_scope: &Scope,
        dst_new: bool,
        root: &Node,
        report: &mut CopyReport,
    ) -> Result<()> {
        // Every distinct blob of every image in the plan.
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut seen = HashSet::new();
        collect_blobs(root, &mut blobs, &mut seen);
        let total: u64 = blobs.iter().map(|b| b.size).sum();
        report.blobs.total = blobs.len() as u64;
        report.bytes.total = total;
        self.progress.add_total(total, blobs.len() as u64);
        let job = Arc::new(BlobJob {
            src: self.src.clone(),
            src_repo: src.repository.clone(),
            dst: self.dst.clone(),
            dst_repo: dst.repository.clone(),
            dst_scope: dst_scope.clone(),
            mount: Arc::new(AtomicBool::new(self.src.same_registry(&self.dst))),
            dst_new,
            progress: self.progress.clone(),
        });
        let outcomes: Vec<(Descriptor, BlobOutcome)> = futures_util::stream::iter(blobs)
            .map(|d| {
                let job = job.clone();
                let slots = self.slots.clone();
                let locks = self.blob_locks.clone();
                async move {
                    let _shared = match &locks {
                        Some(l) => Some(l.lock(&job.dst, &job.dst_repo, &d.digest).await),
                        None => None,
                    };
                    let o = match &locks {
                        Some(l) if l.done(&job.dst, &job.dst_repo, &d.digest) => {
                            BlobOutcome::Present
                        }
                        _ => {
                            let _permit = slots.acquire_owned().await.expect("semaphore open");
                            job.run(&d).await?
                        }
                    };
                    if let Some(l) = &locks {
                        l.mark_done(&job.dst, &job.dst_repo, &d.digest);
                    }
                    let how = match o {
                        BlobOutcome::Present => "already present".to_string(),
                        BlobOutcome::Mounted => format!("mounted from {}", job.src_repo),
                        BlobOutcome::Copied => "copied".to_string(),
                    };
                    job.progress
                        .blob_done(&d.digest, d.size, &how, o == BlobOutcome::Copied);
                    Ok::<_, Error>((d, o))
                }
            })
            .buffer_unordered(usize::MAX >> 1)
            .try_collect()
            .await?;
        for (d, o) in &outcomes {
            let (b, n) = match o {
                BlobOutcome::Present => (&mut report.blobs.skipped, &mut report.bytes.skipped),
                BlobOutcome::Mounted => (&mut report.blobs.mounted, &mut report.bytes.mounted),
                BlobOutcome::Copied => (&mut report.blobs.copied, &mut report.bytes.copied),
            };
            *b += 1;
            *n += d.size;
        }
        // Children by digest, deepest first; the top manifest last, to the tag.
        let mut levels: Vec<Vec<&Manifest>> = Vec::new();
        collect_children(root, 0, &mut levels);
        let mut written = HashMap::new();
        for level in levels.iter().rev() {
            let todo: Vec<&Manifest> = level
                .iter()
                .copied()
                .filter(|m| written.insert(m.digest.clone(), ()).is_none())
                .collect();
            futures_util::stream::iter(todo)
                .map(|m| async move {
                    self.dst
                        .put_manifest(&dst.repository, m.digest.as_str(), m)
                        .await?;
                    Ok::<u64, Error>(1)
                })
                .buffer_unordered(8)
                .try_for_each(|n| {
                    report.manifests_written += n;
                    async { Ok(()) }
                })
                .await?;
        }
        self.dst
            .put_manifest(&dst.repository, dst.target.as_str(), &root.manifest)
            .await?;
        report.manifests_written += 1;
        Ok(())
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

/// A cosign signature tag of the image, which ferry (as skopeo by default) does not copy.
async fn cosign_signature(src: &Client, repo: &str, digest: &Digest) -> Option<String> {
    let tag = format!("{}-{}.sig", digest.algorithm(), digest.hex());
    match src.head_manifest(repo, &tag, &Scope::pull(repo)).await {
        Ok(Some(_)) => Some(format!("cosign signature {tag}")),
        _ => None,
    }
}

/// OpenShift image signatures read from the source, per manifest digest.
type SourceSignatures = Vec<(Digest, Vec<Vec<u8>>)>;
