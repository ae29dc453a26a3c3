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
//! sharing one bound on blob transfers and one set of [`BlobLocks`] (a blob shared by two
//! images crosses the network once). A tag whose destination already has the digest costs one
//! `HEAD` at the destination (the copy engine's "already present" path).
//!
//! ferry's additions for bulk work ([`shard`], [`journal`], [`image`], [`outcome`]): a shard
//! takes only its part of the list (`--shard I/N`), an image a journal records as done costs
//! one `HEAD`, an image already at the destination a `HEAD` per side, and every image's
//! outcome can be written to a report.

pub mod image;
pub mod journal;
pub mod outcome;
pub mod shard;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use serde::Deserialize;

use crate::copy::transcript::Transcript;
use crate::copy::{BlobLocks, Copier, CopyOptions};
use crate::error::{Error, Result};
use crate::policy::{Policy, PolicyImage};
use crate::progress::{Progress, Style};
use crate::reference::{AnyRef, Digest, ImageRef, Target};
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

#[derive(Deserialize)]
struct YamlRegistry {
    #[serde(default)]
    images: Option<BTreeMap<String, Option<Vec<String>>>>,
    #[serde(default, rename = "images-by-tag-regex")]
    images_by_tag_regex: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "images-by-semver")]
    images_by_semver: Option<BTreeMap<String, String>>,
    #[serde(default)]
    credentials: Option<YamlCredentials>,
    #[serde(default, rename = "tls-verify")]
    tls_verify: Option<bool>,
    #[serde(default, rename = "cert-dir")]
    cert_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct YamlCredentials {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Parse skopeo's sync YAML. Registries and repositories come out sorted by name.
pub fn parse_yaml(text: &str, file: &str) -> Result<Vec<SourceGroup>> {
    let bad = |why: String| Error::usage(format!("sync file {file}: {why}"));
    let doc: BTreeMap<String, YamlRegistry> =
        serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut groups = Vec::new();
    for (registry, cfg) in doc {
        let credentials = match cfg.credentials {
            Some(YamlCredentials {
                username: Some(u),
                password,
            }) if !u.is_empty() => {
                Some((u, crate::redact::Secret::new(password.unwrap_or_default())))
            }
            Some(YamlCredentials {
                password: Some(p), ..
            }) if !p.is_empty() => {
                return Err(bad(format!(
                    "registry {registry}: credentials have a password but no username"
                )));
            }
            _ => None,
        };
        let mut sources = Vec::new();
        for (repo, refs) in cfg.images.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let refs = match refs {
                None => Refs::AllTags,
                Some(r) if r.is_empty() => Refs::AllTags,
                Some(r) => Refs::List(
                    r.iter()
                        .map(|x| parse_target(x))
                        .collect::<std::result::Result<Vec<_>, String>>()
                        .map_err(|e| bad(format!("{registry}/{repo}: {e}")))?,
                ),
            };
            sources.push(Source {
                registry: reg,
                repository,
                refs,
            });
        }
        for (repo, pattern) in cfg.images_by_tag_regex.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let re = regex::Regex::new(&pattern)
                .map_err(|e| bad(format!("{registry}/{repo}: invalid tag regex: {e}")))?;
            sources.push(Source {
                registry: reg,
                repository,
                refs: Refs::TagRegex(re),
            });
        }
        for (repo, constraint) in cfg.images_by_semver.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let c = crate::semver::Constraints::parse(&constraint).map_err(|e| {
                bad(format!(
                    "{registry}/{repo}: invalid semantic version constraint: {e}"
                ))
            })?;
            sources.push(Source {
                registry: reg,
                repository,
                refs: Refs::Semver(c),
            });
        }
        if sources.is_empty() {
            log::warn!("No images specified for registry {registry}");
            continue;
        }
        groups.push(SourceGroup {
            settings: RegistrySettings {
                credentials,
                tls_verify: cfg.tls_verify,
                cert_dir: cfg.cert_dir,
            },
            sources,
        });
    }
    Ok(groups)
}

/// A YAML `images` entry: a digest if it parses as one, else a tag.
fn parse_target(s: &str) -> std::result::Result<Target, String> {
    if let Ok(d) = s.parse::<Digest>() {
        return Ok(Target::Digest(d));
    }
    let probe = format!("localhost/x:{s}");
    match ImageRef::parse(&probe) {
        Ok(r) if r.tag() == Some(s) => Ok(Target::Tag(s.to_string())),
        _ => Err(format!("{s:?} is neither a tag nor a digest")),
    }
}

/// `registry` + `repo` as one repository name (normalised, no tag or digest).
fn split_repository(registry: &str, repo: &str) -> Result<(String, String)> {
    let (r, explicit) = parse_name(&format!("{registry}/{repo}"))?;
    if explicit {
        return Err(Error::usage(format!(
            "{registry}/{repo} names an image, not a repository"
        )));
    }
    Ok((r.registry, r.repository))
}

/// Parse `[host/]path[:tag|@digest]` (an optional `docker://` is allowed); whether a tag or a
/// digest was written.
fn parse_name(input: &str) -> Result<(ImageRef, bool)> {
    let rest = input.strip_prefix("docker://").unwrap_or(input);
    let r = ImageRef::parse(rest)?;
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    let explicit = rest[last..].contains(':') || rest.contains('@');
    Ok((r, explicit))
}

/// The `--src docker` argument: a repository (every tag) or one image.
pub fn docker_source(input: &str) -> Result<SourceGroup> {
    let (r, explicit) = parse_name(input)?;
    let refs = if explicit {
        Refs::List(vec![r.target.clone()])
    } else {
        Refs::AllTags
    };
    Ok(SourceGroup {
        settings: RegistrySettings::default(),
        sources: vec![Source {
            registry: r.registry,
            repository: r.repository,
            refs,
        }],
    })
}

/// Go's `path.Join` for the slash-separated names skopeo joins.
fn path_join(a: &str, b: &str) -> String {
    let joined = format!("{a}/{b}");
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Where skopeo's sync puts `src` under `dest`: `path.Join(dest, suffix) + append_suffix`, the
/// suffix being the source reference (`host/repo:tag`) or, unless scoped, its last component.
pub fn destination(
    src: &ImageRef,
    dest: &str,
    scoped: bool,
    append_suffix: &str,
) -> Result<ImageRef> {
    let full = src.to_string();
    let suffix = if scoped {
        full.as_str()
    } else {
        full.rsplit('/').next().unwrap_or(&full)
    };
    let dest = dest.strip_prefix("docker://").unwrap_or(dest);
    let name = format!("{}{append_suffix}", path_join(dest, suffix));
    ImageRef::parse(&name).map_err(|e| match e {
        Error::Reference { input, reason } => Error::Reference {
            input,
            reason: format!("cannot be the destination of {src}: {reason}"),
        },
        other => other,
    })
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
    policy: Option<&Arc<Policy>>,
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

/// Copy the planned images, concurrently.
pub(crate) async fn execute(
    groups: &[SourceGroup],
    jobs: Vec<Job>,
    opts: &SyncOptions,
    clients: &Clients<'_>,
    progress: Arc<Progress>,
    policy: Option<&Arc<Policy>>,
    mut report: SyncReport,
) -> Result<SyncReport> {
    let total = jobs.len();
    if let Some(sh) = &opts.shard {
        let by = match sh.by {
            shard::ShardBy::Repository => "repositories",
            shard::ShardBy::Image => "images",
        };
        log::info!("Shard {sh} (by {by}): {total} image(s) of the list");
    }
    // skopeo's words and fields: `msg="Would have copied image ref 1/2" from=… to=…`.
    let from_to = |j: &Job| [("from", j.src.to_string()), ("to", j.dst.to_string())];
    let say = |level, msg: &str, fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        progress.log(level, msg, &fields);
    };
    if opts.dry_run {
        for (i, j) in jobs.iter().enumerate() {
            let msg = format!("Would have copied image ref {}/{total}", i + 1);
            say(log::Level::Info, &msg, &from_to(j));
        }
        report.copied = total as u64;
        return Ok(report);
    }
    let slots = Arc::new(crate::copy::Slots::new(opts.blob_slots));
    let locks = Arc::new(BlobLocks::default());
    // `images_in_flight` bounds the copies; the cheap checks before them run wider.
    let copies = &tokio::sync::Semaphore::new(opts.images_in_flight.max(1));
    // The `HEAD` per side decides "present" only when nothing else travels with the image:
    // referrers and attachment tags the destination lacks are added by the engine even to an
    // image it has, so with them (ferry's default) the engine decides.
    let probe = opts.probe && !opts.copy.attachments.enabled();
    let width = if probe || opts.journal.is_some() {
        opts.images_in_flight.max(1) * image::CHECK_WIDTH
    } else {
        opts.images_in_flight.max(1)
    };
    let clients = &clients;
    let mut outcomes: Vec<Option<outcome::ImageOutcome>> = vec![None; total];
    let mut first_error = None;
    {
        let mut stream = futures_util::stream::iter(jobs.iter().enumerate())
            .map(|(i, j)| {
                let slots = slots.clone();
                let locks = locks.clone();
                let progress = progress.clone();
                // As skopeo, each image's copy lines, kept until it is done (images are copied
                // concurrently; skopeo copies one after the other).
                let transcript =
                    (progress.style() == Style::Skopeo).then(|| Arc::new(Transcript::buffered()));
                async move {
                    let r = async {
                        let msg = format!("Copying image ref {}/{total}", i + 1);
                        say(log::Level::Info, &msg, &from_to(j));
                        let endpoints = crate::sync_disk::endpoints(
                            groups,
                            j,
                            clients,
                            opts.registries_d.as_deref(),
                        )
                        .await?;
                        let src_client = match &j.src {
                            AnyRef::Docker(s) => Some(clients.get(groups, Some(j.group), s)?),
                            AnyRef::Local(_) => None,
                        };
                        let dst_client = match &j.dst {
                            AnyRef::Docker(d) => Some(clients.get(groups, None, d)?),
                            AnyRef::Local(_) => None,
                        };
                        let mut copier = Copier::new(opts.copy.clone(), progress.clone(), slots)
                            .with_blob_locks(locks)
                            .with_conversion(opts.conversion.clone())
                            .with_policy(policy.map(|p| {
                                crate::copy::Gate::new(p.clone(), PolicyImage::of(&j.src))
                            }));
                        if let Some(t) = &transcript {
                            copier = copier.with_transcript(t.clone());
                        }
                        let ends = image::Ends {
                            refs: (&j.src, &j.dst),
                            endpoints,
                            src_client,
                            dst_client,
                        };
                        Ok(image::sync_one(
                            ends,
                            copier,
                            opts.journal.as_deref(),
                            probe.then_some((opts.copy.multi_arch, opts.copy.remove_signatures)),
                            copies,
                        )
                        .await)
                    }
                    .await;
                    if let Some(t) = transcript {
                        progress.report(&t.take());
                    }
                    (i, r)
                }
            })
            .buffer_unordered(width);
        while let Some((i, r)) = stream.next().await {
            // A client that could not be made fails the image as a copy would.
            let r = r.and_then(|done: image::Done| {
                let error = done.error;
                outcomes[i] = Some(done.outcome);
                match error {
                    Some(e) => Err(e),
                    None => Ok((done.copy, outcomes[i].clone().expect("just set"))),
                }
            });
            match r {
                Ok((rep, out)) => {
                    if progress.style() == Style::Ferry {
                        match &rep {
                            Some(rep) => {
                                for v in &rep.signatures_verified {
                                    progress.line(&v.line());
                                }
                                progress.line(&rep.summary());
                                for n in &rep.signatures_not_copied {
                                    progress.line(&format!(
                                        "Note: a signature of the source was not copied: {n}"
                                    ));
                                }
                                for s in &rep.attached_not_copied {
                                    progress.line(&format!("Note: not copied: {s}"));
                                }
                            }
                            None => progress.line(&image::summary(&out)),
                        }
                    }
                    if let Some(rep) = &rep {
                        report.referrers.add(&rep.referrers);
                        report.attachments.add(&rep.attachments);
                    }
                    match out.outcome {
                        outcome::Outcome::Copied => report.copied += 1,
                        outcome::Outcome::Journaled => {
                            report.already_present += 1;
                            report.journaled += 1;
                        }
                        _ => report.already_present += 1,
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    // skopeo: `logrus.WithError(err).Errorf("Error copying ref %q", …)`.
                    let msg = format!("Error copying ref \"{}\"", jobs[i].src);
                    say(log::Level::Error, &msg, &[("error", e.to_string())]);
                    if outcomes[i].is_none() {
                        outcomes[i] = Some(image::failed(&jobs[i].src, &jobs[i].dst, &e));
                    }
                    if !opts.keep_going {
                        first_error = Some(e);
                        break;
                    }
                }
            }
        }
    }
    report.digests = jobs
        .iter()
        .zip(&outcomes)
        .filter_map(|(j, o)| {
            let o = o.as_ref().filter(|o| o.outcome.done())?;
            Some((o.digest.clone()?, j.dst.clone()))
        })
        .collect();
    report.images.extend(outcomes.into_iter().flatten());
    for ((source, ..), c) in clients.cache.lock().expect("client cache").iter() {
        if *source {
            report.requests.source += c.request_count();
        } else {
            report.requests.destination += c.request_count();
        }
    }
    report.aborted = first_error;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn destinations_as_skopeo_names_them() {
        let src = img("127.0.0.1:5931/ns/app:v1");
        assert_eq!(
            destination(&src, "127.0.0.1:5000/mirror", false, "")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/mirror/app:v1"
        );
        assert_eq!(
            destination(&src, "127.0.0.1:5000/one/two/", false, "-prod")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/one/two/app:v1-prod"
        );
        // skopeo refuses this too: a host with a port is not a valid path component.
        assert!(destination(&src, "127.0.0.1:5000/scoped", true, "").is_err());
        let hub = img("quay.io/team/tool:1.0");
        assert_eq!(
            destination(&hub, "r.io:5000/m", true, "")
                .unwrap()
                .to_string(),
            "r.io:5000/m/quay.io/team/tool:1.0"
        );
        let d = format!("r.io/ns/app@sha256:{}", "a".repeat(64));
        assert_eq!(
            destination(&img(&d), "r.io:5000/m", false, "")
                .unwrap()
                .to_string(),
            format!("r.io:5000/m/app@sha256:{}", "a".repeat(64))
        );
        assert_eq!(path_join("a/b/", "./c"), "a/b/c");
    }

    #[test]
    fn docker_sources() {
        let g = docker_source("127.0.0.1:5931/ns/app").unwrap();
        assert!(matches!(g.sources[0].refs, Refs::AllTags));
        let g = docker_source("docker://127.0.0.1:5931/ns/app:v1").unwrap();
        assert!(
            matches!(&g.sources[0].refs, Refs::List(t) if t == &vec![Target::Tag("v1".into())])
        );
        assert_eq!(
            docker_source("busybox").unwrap().sources[0].repository,
            "library/busybox"
        );
        assert!(docker_source("r.io/Bad").is_err());
    }

    #[test]
    fn yaml_sources() {
        let text = format!(
            r#"
b.io:5000:
  images:
    ns/app: []
    ns/tool:
      - v1
      - "sha256:{h}"
    ns/none:
  images-by-tag-regex:
    ns/lib: ^v1\.[0-9]+$
  credentials:
    username: u
    password: p:w
  tls-verify: false
  cert-dir: /certs
a.io:
  images:
    x: [latest]
empty.io: {{}}
"#,
            h = "c".repeat(64)
        );
        let groups = parse_yaml(&text, "s.yaml").unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].sources[0].registry, "a.io");
        let b = &groups[1];
        assert_eq!(b.settings.tls_verify, Some(false));
        assert_eq!(
            b.settings.cert_dir.as_deref(),
            Some(std::path::Path::new("/certs"))
        );
        assert_eq!(b.settings.credentials.as_ref().unwrap().0, "u");
        assert_eq!(b.settings.credentials.as_ref().unwrap().1.expose(), "p:w");
        let names: Vec<&str> = b.sources.iter().map(|s| s.repository.as_str()).collect();
        assert_eq!(names, ["ns/app", "ns/none", "ns/tool", "ns/lib"]);
        assert!(matches!(b.sources[0].refs, Refs::AllTags));
        assert!(matches!(b.sources[1].refs, Refs::AllTags));
        match &b.sources[2].refs {
            Refs::List(t) => {
                assert_eq!(t[0], Target::Tag("v1".into()));
                assert!(matches!(t[1], Target::Digest(_)));
            }
            other => panic!("{other:?}"),
        }
        match &b.sources[3].refs {
            Refs::TagRegex(re) => {
                assert!(re.is_match("v1.2"));
                assert!(!re.is_match("v1.2-rc"));
                assert!(!re.is_match("v10"));
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "a.io: [1]",
            "a.io:\n  images:\n    x: [\"bad tag\"]",
            "a.io:\n  images-by-tag-regex:\n    x: \"(\"",
            "a.io:\n  images:\n    x:v1: []",
            "a.io:\n  images-by-semver:\n    x: \">>1\"",
        ] {
            assert!(parse_yaml(bad, "s.yaml").is_err(), "{bad}");
        }
    }

    #[test]
    fn unanchored_regex_as_go() {
        // Go's MatchString finds a match anywhere, as Regex::is_match does.
        let re = regex::Regex::new("rc").unwrap();
        assert!(re.is_match("v1-rc1"));
    }
}
