//! `sync`: copy whole repositories (or chosen tags) from registries to a registry.
//!
//! Sources are a repository or an image (`--src docker`), or a YAML file (`--src yaml`) in
//! skopeo's format:
//!
//! ```yaml
//! registry.example.com:
//!   images:
//!     ns/app: []            # every tag
//!     ns/tool: [v1, "sha256:…"]
//!   images-by-tag-regex:
//!     ns/lib: ^v1\.[0-9]+$
//!   images-by-semver:
//!     ns/base: ">= 3.17, < 4"
//!   credentials: {username: u, password: p}
//!   tls-verify: false
//!   cert-dir: /etc/certs
//! ```
//!
//! Sources and destinations on disk (`--src dir|oci`, `--dest dir|oci`) are in
//! [`crate::sync_disk`]. Destinations are named as skopeo names them: `DEST/<last path component of the source
//! repository>:<tag>` (or, with `--scoped`, `DEST/<source registry>/<source repository>:<tag>`),
//! then `--append-suffix` appended to the tag.
//!
//! Unlike skopeo, images are copied concurrently: at most `images_in_flight` at a time, all
//! sharing one bound on blob transfers and one set of [`BlobLocks`](crate::copy::BlobLocks) (a blob shared by two
//! images crosses the network once). A tag whose destination already has the digest costs one
//! `HEAD` at the destination (the copy engine's "already present" path).
//!
//! ferry's additions for bulk work ([`shard`], [`journal`], [`image`], [`outcome`]): a shard
//! takes only its part of the list (`--shard I/N`), an image a journal records as done costs
//! one `HEAD`, an image already at the destination a `HEAD` per side, and every image's
//! outcome can be written to a report.

mod execute;
pub mod image;
pub mod journal;
pub mod outcome;
pub mod shard;
mod yaml;

pub(crate) use execute::execute;
pub use yaml::{destination, docker_source, parse_yaml};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::copy::CopyOptions;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::{AnyRef, ImageRef, Target};
use crate::registry::Client;
use crate::sync_disk::DestKind;

/// Which references of a repository to copy.
#[derive(Debug, Clone)]
pub enum Refs {
    /// Every tag the registry lists.
    AllTags,
    /// These tags or digests.
    List(Vec<Target>),
    /// Tags matching the regular expression (unanchored, as Go's `MatchString`).
    TagRegex(regex::Regex),
    /// Tags that are semantic versions satisfying the constraint (`images-by-semver`).
    Semver(crate::semver::Constraints),
}

/// One source repository.
#[derive(Debug, Clone)]
pub struct Source {
    /// Registry host.
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// What to copy from it.
    pub refs: Refs,
}

/// Per-registry settings of a YAML source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `credentials: {username, password}`.
    pub credentials: Option<(String, crate::redact::Secret)>,
    /// `tls-verify` (unset: the command line's `--src-tls-verify`).
    pub tls_verify: Option<bool>,
    /// `cert-dir` (unset: the command line's `--src-cert-dir`).
    pub cert_dir: Option<PathBuf>,
}

/// Sources that share settings: the `--src docker` argument, or one registry of a YAML file.
#[derive(Debug, Clone)]
pub struct SourceGroup {
    /// The registry's settings.
    pub settings: RegistrySettings,
    /// Its repositories.
    pub sources: Vec<Source>,
}

/// Options of one sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// For each copy.
    pub copy: CopyOptions,
    /// Images copied at the same time.
    pub images_in_flight: usize,
    /// Blob transfers in flight at most, across all images (`None`: adaptive).
    pub blob_slots: Option<usize>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--keep-going`.
    pub keep_going: bool,
    /// `--scoped`.
    pub scoped: bool,
    /// `--dest`: a registry, `dir:` directories, or one OCI layout.
    pub dest_kind: DestKind,
    /// Layer and manifest changes asked for (`-f`, `--dest-compress*`).
    pub conversion: crate::copy::Conversion,
    /// `--append-suffix`.
    pub append_suffix: String,
    /// Lookaside signature storage and sigstore attachments (`registries.d`).
    pub registries_d: Option<Arc<crate::registries_d::RegistriesD>>,
    /// `--shard` / `--shard-count`: only this shard's part of the list.
    pub shard: Option<shard::Shard>,
    /// `--journal`: skip what an earlier run finished, record what this one does.
    pub journal: Option<Arc<journal::Journal>>,
    /// Decide "already present" with a `HEAD` per side (ferry); as skopeo, the copy engine
    /// decides, with its copy lines.
    pub probe: bool,
}

/// Makes (and caches) clients; the command line decides credentials and TLS.
pub trait ClientSource: Send + Sync {
    /// A client for a source repository of `group`.
    fn source(
        &self,
        group: &RegistrySettings,
        registry: &str,
        repository: &str,
    ) -> Result<Arc<Client>>;
    /// A client for a destination repository.
    fn destination(&self, registry: &str, repository: &str) -> Result<Arc<Client>>;
}

/// One image to copy.
#[derive(Debug, Clone)]
pub struct Job {
    /// Source image.
    pub src: AnyRef,
    /// Destination image.
    pub dst: AnyRef,
    /// Index of its group (registry settings of a YAML source).
    pub group: usize,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Images that were copied.
    pub copied: u64,
    /// Images the destination already had.
    pub already_present: u64,
    /// Images (or repositories whose tags could not be listed) that failed.
    pub failed: u64,
    /// Number of source groups.
    pub sources: usize,
    /// For `--digestfile`: `(digest, destination)` of each image now at the destination, in
    /// plan order.
    pub digests: Vec<(String, AnyRef)>,
    /// OCI 1.1 referrers, over every image.
    pub referrers: crate::copy::AttachedCounts,
    /// cosign attachment tags, over every image.
    pub attachments: crate::copy::AttachedCounts,
    /// Of the images already present, those an earlier run's journal recorded.
    pub journaled: u64,
    /// Every image's outcome (and each repository whose tags could not be listed), in plan
    /// order, for `--report`.
    pub images: Vec<outcome::ImageOutcome>,
    /// Requests of the whole sync, per side.
    pub requests: outcome::Requests,
    /// The error that stopped the sync (without `--keep-going`); the report still holds what
    /// was done before it.
    pub aborted: Option<Error>,
}

impl SyncReport {
    /// The closing line.
    pub fn summary(&self, dry_run: bool) -> String {
        if dry_run {
            return self.skopeo_summary(true);
        }
        let journaled = match self.journaled {
            0 => String::new(),
            n => format!(" ({n} confirmed from the journal)"),
        };
        let attached = format!(
            "{}{}",
            self.referrers.describe("referrers"),
            self.attachments.describe("attachment tags")
        );
        format!(
            "{}: {} copied, {} already present{journaled}, {} failed{attached}",
            self.skopeo_summary(false),
            self.copied,
            self.already_present,
            self.failed
        )
    }

    /// skopeo's words: `Synced N images from M sources` (or `Would have synced …`).
    pub fn skopeo_summary(&self, dry_run: bool) -> String {
        let n = self.copied + self.already_present;
        let verb = if dry_run {
            "Would have synced"
        } else {
            "Synced"
        };
        format!("{verb} {n} images from {} sources", self.sources)
    }
}

/// Side (source?), group, registry, repository.
pub(crate) type ClientKey = (bool, usize, String, String);

/// A client cache keyed by side, group, registry and repository, around a [`ClientSource`].
pub(crate) struct Clients<'a> {
    pub(crate) make: &'a dyn ClientSource,
    pub(crate) cache: Mutex<HashMap<ClientKey, Arc<Client>>>,
}

impl Clients<'_> {
    pub(crate) fn get(
        &self,
        groups: &[SourceGroup],
        src: Option<usize>,
        r: &ImageRef,
    ) -> Result<Arc<Client>> {
        let key = (
            src.is_some(),
            src.unwrap_or(0),
            r.registry.clone(),
            r.repository.clone(),
        );
        if let Some(c) = self.cache.lock().expect("client cache").get(&key) {
            return Ok(c.clone());
        }
        let c = match src {
            Some(g) => self
                .make
                .source(&groups[g].settings, &r.registry, &r.repository)?,
            None => self.make.destination(&r.registry, &r.repository)?,
        };
        self.cache
            .lock()
            .expect("client cache")
            .insert(key, c.clone());
        Ok(c)
    }
}

/// List the images of every source (listing tags where needed) and name their destinations.
/// A repository whose tags cannot be listed fails the sync, or, with `keep_going`, is counted
/// as failed and skipped.
async fn plan(
    groups: &[SourceGroup],
    dest: &str,
    opts: &SyncOptions,
    clients: &Clients<'_>,
    report: &mut SyncReport,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for (gi, group) in groups.iter().enumerate() {
        for s in &group.sources {
            let repo = ImageRef {
                registry: s.registry.clone(),
                repository: s.repository.clone(),
                target: Target::Tag("latest".into()),
            };
            // The destination repository is the shard key: decided before listing any tag
            // (into `dir`/`oci`, the source repository).
            let dest_repo = match opts.dest_kind {
                DestKind::Docker => {
                    let r = destination(&repo, dest, opts.scoped, &opts.append_suffix)?;
                    format!("{}/{}", r.registry, r.repository)
                }
                _ => format!("{}/{}", repo.registry, repo.repository),
            };
            if let Some(sh) = &opts.shard
                && sh.decides_by_repository()
                && !sh.owns(&dest_repo, "")
            {
                continue;
            }
            let targets: Vec<Target> = match &s.refs {
                Refs::List(t) => t.clone(),
                Refs::AllTags | Refs::TagRegex(_) | Refs::Semver(_) => {
                    log::debug!("Getting tags of {}", repo.name());
                    // Read once per repository: the copies look attachment tags up in it.
                    let listed = async {
                        clients
                            .get(groups, Some(gi), &repo)?
                            .cached_tags(&s.repository)
                            .await
                            .map(|t| t.as_ref().clone())
                    }
                    .await;
                    let tags = match listed {
                        Ok(t) => t,
                        Err(e) if opts.keep_going => {
                            log::error!("Error listing the tags of {}: {e}", repo.name());
                            report.failed += 1;
                            report.images.push(outcome::ImageOutcome {
                                source: format!("docker://{}", repo.name()),
                                destination: None,
                                outcome: outcome::Outcome::Failed,
                                digest: None,
                                bytes: crate::copy::Counts::default(),
                                requests: outcome::Requests::default(),
                                duration_ms: 0,
                                error: Some(crate::redact::clean(&format!(
                                    "listing the tags: {e}"
                                ))),
                            });
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let tags: Vec<String> = match &s.refs {
                        Refs::TagRegex(re) => tags.into_iter().filter(|t| re.is_match(t)).collect(),
                        Refs::Semver(c) => tags.into_iter().filter(|t| c.matches_tag(t)).collect(),
                        _ => tags,
                    };
                    // Attachment tags travel with the images they are attached to, into a
                    // registry; `dir` and `oci` destinations keep them as images of their own
                    // (tags, as skopeo syncs them), so that the air-gapped side gets them.
                    let with_images =
                        opts.copy.attachments.enabled() && opts.dest_kind == DestKind::Docker;
                    let tags = match with_images {
                        true => crate::registry::referrers::without_attachment_tags(tags),
                        false => tags,
                    };
                    if tags.is_empty() {
                        log::warn!("No refs to sync found in {}", repo.name());
                    }
                    tags.into_iter().map(Target::Tag).collect()
                }
            };
            for t in targets {
                let src = repo.with_target(t);
                let dst = match opts.dest_kind {
                    DestKind::Docker => {
                        AnyRef::Docker(destination(&src, dest, opts.scoped, &opts.append_suffix)?)
                    }
                    kind => crate::sync_disk::destination(
                        &src.to_string(),
                        dest,
                        kind,
                        opts.scoped,
                        &opts.append_suffix,
                    )?,
                };
                if let Some(sh) = &opts.shard
                    && !sh.owns(&dest_repo, &shard_key(&dst))
                {
                    continue;
                }
                jobs.push(Job {
                    src: AnyRef::Docker(src),
                    dst,
                    group: gi,
                });
            }
        }
    }
    Ok(jobs)
}

/// The key an image is sharded by: its destination reference (without `docker://`).
fn shard_key(dst: &AnyRef) -> String {
    match dst {
        AnyRef::Docker(r) => r.to_string(),
        AnyRef::Local(l) => l.to_string(),
    }
}

/// Run a sync to `dest` (`registry/path`).
pub async fn run(
    groups: &[SourceGroup],
    dest: &str,
    opts: &SyncOptions,
    make: &dyn ClientSource,
    progress: Arc<Progress>,
    policy: Option<&Arc<crate::policy::Policy>>,
) -> Result<SyncReport> {
    let clients = Clients {
        make,
        cache: Mutex::new(HashMap::new()),
    };
    let mut report = SyncReport {
        sources: groups.len(),
        ..SyncReport::default()
    };
    let jobs = plan(groups, dest, opts, &clients, &mut report).await?;
    execute(groups, jobs, opts, &clients, progress, policy, report).await
}
