//! `sync`: skopeo's flags over [`crate::sync`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::layers::LayerFlags;
use super::options::{
    DestFlags, GlobalOptions, MultiArchArgs, Personality, RetryArgs, SideFlags, SrcFlags, go_bool,
};
use crate::copy::CopyOptions;
use crate::error::{Error, Result};
use crate::fsutil::{Access, write_atomic};
use crate::redact::Secret;
use crate::registry::Client;
use crate::retry::RetryPolicy;
use crate::sync::{self, RegistrySettings, SyncOptions};
use crate::sync_disk::{self, DestKind};
use crate::transport::Transport;

pub(super) const LONG_ABOUT: &str = "Copy every image of a repository (or the images a YAML \
file lists) to a registry or to disk, and back.

--src docker SOURCE: a repository (every tag) or one image, `registry/path[:tag]`; \
--src yaml SOURCE: skopeo's sync YAML (images, images-by-tag-regex, images-by-semver, \
credentials, tls-verify, cert-dir); --src dir SOURCE: every dir: image below SOURCE. \
--dest docker DESTINATION: `registry/path`; each image goes to \
DESTINATION/<last path component>:<tag> (with --scoped, DESTINATION/<source registry>/<path>:<tag>), \
--append-suffix appended to the tag; --dest dir DESTINATION: one dir: directory per image, \
named the same way (an existing one is refused, as skopeo refuses it).

The trust policy (--policy) is checked for each image as `copy` checks it, before anything of \
that image is written; a refused image fails the sync as any copy failure does.

--sign-by, --sign-by-sigstore-private-key and --sign-passphrase-file sign every image copied \
(and every image already there, as skopeo copies and signs it again) as `copy` signs one (see \
`copy --help`), each as its own destination reference (--sign-identity is refused, as skopeo's \
sync has no such flag); the key is loaded once, before the first image.

ferry's additions: --dest oci DESTINATION writes every image into one OCI layout, named \
<last path component>:<tag> (with --scoped, <source registry>/<path>:<tag>), each blob stored \
once and an image already there costing nothing; --src oci SOURCE reads every named image of a \
layout, its name taking the place of the path. The air-gap round trip: \
`sync --src docker --dest dir --scoped REG/REPO /media/usb`, carry the disk, then \
`sync --src dir --dest docker --scoped /media/usb REG2/MIRROR` (or the same with oci) — the \
same digests on both sides, simple signatures carried as dir:'s signature-N files.

Unlike skopeo, images are copied concurrently (--parallel-images, default 4) and share one \
bound on blob transfers (--image-parallel-copies, default adaptive as in copy); a tag whose destination already \
has the same digest costs one request. The last line sums up: copied, already present, failed.

Default: as ferry, every image of a multi-arch index (digests kept); as skopeo, the current \
platform's image unless -a.

As ferry, each image's signatures, attestations and SBOMs (OCI 1.1 referrers, cosign \
sha256-<hex>.sig/.att/.sbom tags) travel with it, as in `copy` (--referrers, \
--referrers-artifact-type); attachment tags are not synced as images of their own. The \
source's tags are listed once per repository.

Output: as ferry, a line per image on stderr and the summary on stdout; as skopeo, skopeo's: each \
image's copy lines on stdout (printed when the image is done), and `Copying image ref N/M` / \
`Would have copied image ref N/M` (with from=\"docker://…\" to=\"docker://…\") and `Synced N \
images from M sources` as log lines on stderr.";

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub(super) struct SyncArgs {
    /// Source: `registry/path[:tag]` (--src docker), a YAML file (--src yaml), a directory
    /// (--src dir) or an OCI layout (--src oci).
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Destination: `registry/path` (--dest docker), a directory (--dest dir) or an OCI
    /// layout (--dest oci).
    #[arg(value_name = "DESTINATION")]
    destination: String,
    /// Source transport: docker, yaml, dir or oci (ferry).
    #[arg(short = 's', long = "src", value_name = "TRANSPORT")]
    src_transport: Option<String>,
    /// Destination transport: docker, dir or oci (ferry).
    #[arg(short = 'd', long = "dest", value_name = "TRANSPORT")]
    dest_transport: Option<String>,

    #[command(flatten)]
    src: SrcFlags,
    #[command(flatten)]
    dest: DestFlags,
    /// Path of the authentication file for both registries.
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Deprecated (as in skopeo): --src-tls-verify and --dest-tls-verify at once.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,

    #[command(flatten)]
    multi_arch: MultiArchArgs,
    #[command(flatten)]
    referrers: super::referrers::ReferrerArgs,
    /// Preserve digests (ferry always does).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    preserve_digests: Option<bool>,
    /// Do not copy OpenShift image signatures (cosign `.sig` tags are copied as tags).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    remove_signatures: Option<bool>,
    /// Put images under DESTINATION/<source registry>/<source path>.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    scoped: Option<bool>,
    /// Append this to every destination tag.
    #[arg(
        long,
        value_name = "SUFFIX",
        default_value = "",
        allow_hyphen_values = true
    )]
    append_suffix: String,
    /// Write `<digest> <destination>` for each image to this file, one per line.
    #[arg(long, value_name = "PATH")]
    digestfile: Option<PathBuf>,
    /// List what would be copied, copy nothing.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dry_run: Option<bool>,
    /// Go on after an image fails (the command still fails at the end).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    keep_going: Option<bool>,
    #[command(flatten)]
    retry: RetryArgs,
    /// Suppress progress output (the summary is still printed).
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    quiet: Option<bool>,
    /// ferry: images copied at the same time (default 4).
    #[arg(long, value_name = "N")]
    parallel_images: Option<usize>,
    /// Blobs copied at the same time, across all images (default: adaptive, the largest first:
    /// up to 32 blobs of at most 1 MiB, 8 of at most 8 MiB, 4 larger ones; N given: N of any size).
    #[arg(long, value_name = "N")]
    image_parallel_copies: Option<usize>,
    #[command(flatten)]
    scale: super::scale::ScaleArgs,

    #[command(flatten)]
    layers: LayerFlags,

    #[command(flatten)]
    sign: super::sign_args::SignArgs,
}

/// Clients for sync: the command line's flags, overridden per registry by the YAML file.
struct FlagClients<'a> {
    src: SideFlags,
    dst: SideFlags,
    retry: RetryPolicy,
    global: &'a GlobalOptions,
}

impl sync::ClientSource for FlagClients<'_> {
    fn source(
        &self,
        group: &RegistrySettings,
        registry: &str,
        repository: &str,
    ) -> Result<Arc<Client>> {
        let mut side = self.src.clone();
        if let Some((user, pass)) = &group.credentials {
            side.creds = crate::credentials::CredentialArgs {
                creds: Some(Secret::new(format!("{user}:{}", pass.expose()))),
                flag_prefix: "sync file credentials of ".into(),
                ..crate::credentials::CredentialArgs::default()
            };
        }
        if group.tls_verify.is_some() {
            side.tls.verify = group.tls_verify;
        }
        if group.cert_dir.is_some() {
            side.tls.cert_dir = group.cert_dir.clone();
        }
        side.client(registry, repository, self.retry.clone(), self.global)
    }

    fn destination(&self, registry: &str, repository: &str) -> Result<Arc<Client>> {
        self.dst
            .client(registry, repository, self.retry.clone(), self.global)
    }
}

pub(super) async fn run(
    args: SyncArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    // The keys, once, before anything else: a wrong passphrase changes nothing.
    if args
        .sign
        .sign_identity
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(Error::usage(
            "sync signs each image as its own destination reference: --sign-identity is not accepted",
        ));
    }
    let signer = args.sign.load_as(personality)?;
    let registries_d = super::sign_args::registries_d_for(global, personality, signer.as_ref())?;
    let src_transport = args.src_transport.as_deref().ok_or_else(|| {
        Error::usage("A source transport must be specified (--src docker, dir, oci or yaml)")
    })?;
    let dest_transport = args.dest_transport.as_deref().ok_or_else(|| {
        Error::usage("A destination transport must be specified (--dest docker, dir or oci)")
    })?;
    let dest_kind = match dest_transport {
        "docker" => DestKind::Docker,
        "dir" => DestKind::Dir,
        "oci" => DestKind::Oci,
        other => {
            return Err(Error::usage(format!(
                "{other:?} is not a valid destination transport"
            )));
        }
    };
    if src_transport == "dir" && dest_kind == DestKind::Dir {
        return Err(Error::usage(
            "sync from 'dir' to 'dir' not implemented, consider using rsync instead",
        ));
    }
    let (groups, disk) = match src_transport {
        "docker" => (vec![sync::docker_source(&args.source)?], None),
        "yaml" => {
            let text = std::fs::read_to_string(&args.source)
                .map_err(|e| Error::io("reading sync file", &args.source, e))?;
            (sync::parse_yaml(&text, &args.source)?, None)
        }
        "dir" => (
            vec![],
            Some(sync_disk::dir_images(Path::new(&args.source))?),
        ),
        "oci" => (
            vec![],
            Some(sync_disk::oci_images(Path::new(&args.source))?),
        ),
        other => {
            return Err(Error::usage(format!(
                "{other:?} is not a valid source transport"
            )));
        }
    };
    let transport_of = |t: &str| match t {
        "dir" => Some(Transport::Dir),
        "oci" => Some(Transport::Oci),
        _ => None,
    };
    let conversion = args
        .layers
        .conversion(transport_of(src_transport), transport_of(dest_transport))?;
    let parallel_images = args.parallel_images.unwrap_or(4);
    let blob_slots = args.image_parallel_copies;
    if parallel_images == 0 || blob_slots == Some(0) {
        return Err(Error::usage(
            "--parallel-images and --image-parallel-copies must be at least 1",
        ));
    }
    let opts = SyncOptions {
        copy: CopyOptions {
            multi_arch: args.multi_arch.mode(personality)?,
            platform: global.platform(),
            remove_signatures: args.remove_signatures.unwrap_or(false),
            // sync copies cosign `.sig` tags like any other tag.
            note_cosign: false,
            attachments: args
                .referrers
                .options(personality)?
                .without_signatures(args.remove_signatures.unwrap_or(false)),
            refuse_retag: false,
            retry: args.retry.policy(personality),
            stall_timeout: global.stall_timeout(),
            sign: signer,
        },
        images_in_flight: parallel_images,
        blob_slots,
        dry_run: args.dry_run.unwrap_or(false),
        keep_going: args.keep_going.unwrap_or(false),
        scoped: args.scoped.unwrap_or(false),
        append_suffix: args.append_suffix.clone(),
        registries_d: Some(Arc::new(registries_d)),
        dest_kind,
        conversion,
        shard: args.scale.shard()?,
        journal: args.scale.journal(args.dry_run.unwrap_or(false))?,
        probe: personality == Personality::Ferry,
    };
    let started = std::time::Instant::now();
    let _ = args.preserve_digests;
    let mut src_side = args.src.side(args.authfile.as_ref())?;
    let mut dst_side = args.dest.side(args.authfile.as_ref())?;
    let rps = args.scale.requests_per_second()?;
    src_side.requests_per_second = rps;
    dst_side.requests_per_second = rps;
    super::options::deprecated_tls_verify(args.tls_verify, &mut src_side, &mut dst_side);
    let clients = FlagClients {
        src: src_side,
        dst: dst_side,
        retry: args.retry.policy(personality),
        global,
    };
    // Evaluated for each image by the engine, before it writes anything of it.
    let policy = global.policy().load()?.map(Arc::new);
    // As skopeo, the digest file is created (empty) before copying, and not in a dry run.
    let digest_file = match (&args.digestfile, opts.dry_run) {
        (Some(p), false) => {
            write_atomic(p, b"", Access::Public, "creating digest file")?;
            Some(p)
        }
        _ => None,
    };
    if opts.dry_run {
        log::warn!("Running in dry-run mode");
    }
    let progress = global.progress(args.quiet.unwrap_or(false), personality.style());
    let result = match disk {
        None => {
            sync::run(
                &groups,
                &args.destination,
                &opts,
                &clients,
                progress.clone(),
                policy.as_ref(),
            )
            .await
        }
        Some(images) => {
            sync_disk::run(
                images,
                &args.destination,
                &opts,
                &clients,
                progress.clone(),
                policy.as_ref(),
            )
            .await
        }
    };
    progress.finish();
    let mut report = result?;
    args.scale
        .write_report(&report, opts.shard.as_ref(), started, opts.dry_run)?;
    if let Some(e) = report.aborted.take() {
        return Err(e);
    }
    if let Some(p) = digest_file {
        let mut text = String::new();
        for (digest, dst) in &report.digests {
            text.push_str(&format!("{digest} {dst}\n"));
        }
        write_atomic(p, text.as_bytes(), Access::Public, "writing digest file")?;
    }
    match personality {
        Personality::Ferry => println!("{}", report.summary(opts.dry_run)),
        // skopeo logs its summary (stderr); ferry's counts follow as fields.
        Personality::Skopeo => {
            let (copied, present, failed) = (
                report.copied.to_string(),
                report.already_present.to_string(),
                report.failed.to_string(),
            );
            let fields: &[(&str, &str)] = if opts.dry_run {
                &[]
            } else {
                &[
                    ("copied", &copied),
                    ("already_present", &present),
                    ("failed", &failed),
                ]
            };
            // Printed even with -q, as ferry's summary is.
            let msg = report.skopeo_summary(opts.dry_run);
            eprintln!("{}", crate::logrus::line("info", &msg, fields));
        }
    }
    if report.failed > 0 {
        return Err(Error::Aggregate(
            "Sync failed due to previous reported error(s) for one or more images".into(),
        ));
    }
    Ok(())
}
