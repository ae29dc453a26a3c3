//! `copy`: skopeo's flags, ferry's engine.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::layers::LayerFlags;
use super::options::{
    DestFlags, GlobalOptions, MultiArchArgs, Personality, RetryArgs, SrcFlags, go_bool,
};
use crate::copy::transcript::Transcript;
use crate::copy::{Copier, CopyOptions, Gate};
use crate::error::{Error, Result};
use crate::fsutil::{Access, write_atomic};
use crate::image::{ImageDestination, ImageSource};
use crate::policy::PolicyImage;
use crate::reference::{AnyRef, ImageRef};

pub(super) const LONG_ABOUT: &str = "Copy an image between registries and skopeo's on-disk \
formats, byte for byte.

Blobs stream from source to destination, are verified against their digests on the way, \
copied concurrently, skipped when the destination has them, and mounted when both \
repositories are on one registry. The tag is written last: a failure leaves it where it was.

Transports: docker://, oci:PATH[:NAME] (an OCI layout; several images share it, each blob \
stored once), oci-archive:FILE[:NAME], dir:PATH, docker-archive:FILE[:NAME:TAG] (the `docker \
save` format; --additional-tag adds tags). Reading a source, @N picks the Nth image of a \
layout or archive. On disk nothing half-written is visible: files are written to temporary \
names, checked and renamed, index.json changes last under a lock, archives are renamed into \
place; reading checks every blob and manifest against its digest, and archives are read in \
place, never extracted.

Layers are kept as they are (as with --preserve-digests, always) unless a format requires a \
change or a flag asks for one: a docker-archive holds uncompressed layers (they are \
decompressed), a docker-archive's layers are gzip-compressed when pushed (as skopeo does), \
--dest-compress/--dest-decompress for dir:, --dest-compress-format gzip|zstd, -f oci|v2s2. \
The summary then says which layers changed (their digests change).

Default --multi-arch: `all` as ferry (the index digest is kept), `system` as skopeo.

As ferry, what is attached to the image travels with it, before the tag moves: its OCI 1.1 \
referrers (the referrers API, else the fallback tag sha256-<hex>) and cosign attachment tags \
(sha256-<hex>.sig, .att, .sbom), for the image, each image of an index, and each attachment \
in turn (4 levels), byte for byte; a destination without the referrers API gets the fallback \
tag. An image already there still gets what it lacks. --referrers=none leaves them behind; \
--referrers-artifact-type T copies only those of type T. As skopeo: no referrers, and .sig \
signatures only where registries.d sets use-sigstore-attachments (rebuilt as skopeo does). \
Simple signatures in lookaside storage (registries.d) are copied as skopeo copies them.

Trust policy (--policy, --insecure-policy, containers-policy.json(5)): checked for the source \
before anything is written, as skopeo checks it: signatures a \
signedBy or sigstoreSigned requirement needs are looked for where skopeo looks (OpenShift's \
signature API, registries.d lookaside storage, .sig attachments where registries.d sets \
use-sigstore-attachments, dir: signature files) and verified for the image and, for an index \
copied whole, each of its images; a refusal is exit 1, one `Source image rejected: …` line \
naming the requirement and the signatures tried, the destination untouched.

Output: as ferry, progress on stderr and one summary line on stdout; as skopeo, skopeo 1.18's \
lines on stdout (`Getting image source signatures`, `Copying blob …`, `Copying config …`, \
`Writing manifest to image destination`, …) and nothing else; -q silences progress.

Secrets can come from files or the environment instead of argv: --src-creds-file, \
--src-registry-token-file, --src-password-file, FERRY_SRC_CREDS, FERRY_SRC_REGISTRY_TOKEN \
(and the same for --dest-/FERRY_DEST_). A flag wins over a file, a file over the environment.";

/// Arguments of `copy`.
#[derive(Debug, Args)]
pub(super) struct CopyArgs {
    /// Source image: docker://…, oci:PATH[:NAME|:@N], oci-archive:FILE[:NAME|:@N], dir:PATH,
    /// docker-archive:FILE[:NAME:TAG|:@N].
    #[arg(value_name = "SOURCE-IMAGE")]
    source: String,
    /// Destination image: docker://[HOST[:PORT]/]PATH[:TAG|@DIGEST], oci:PATH[:NAME],
    /// oci-archive:FILE[:NAME], dir:PATH, docker-archive:FILE[:NAME:TAG].
    #[arg(value_name = "DESTINATION-IMAGE")]
    destination: String,

    #[command(flatten)]
    src: SrcFlags,
    #[command(flatten)]
    dest: DestFlags,

    /// Path of the authentication file for both registries (default: containers-auth.json lookup).
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Deprecated (as in skopeo): --src-tls-verify and --dest-tls-verify at once.
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,

    #[command(flatten)]
    multi_arch: MultiArchArgs,
    #[command(flatten)]
    referrers: super::referrers::ReferrerArgs,
    /// Preserve digests of images and lists (ferry always does).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    preserve_digests: Option<bool>,
    /// Write the digest of the pushed image to this file (no trailing newline).
    #[arg(long, value_name = "PATH")]
    digestfile: Option<PathBuf>,
    #[command(flatten)]
    retry: RetryArgs,
    /// Suppress progress output.
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    quiet: Option<bool>,
    /// Maximum number of blobs copied at the same time (default: adaptive, the largest first:
    /// up to 32 blobs of at most 1 MiB, 8 of at most 8 MiB, 4 larger ones; N given: N of any size).
    #[arg(long, value_name = "N")]
    image_parallel_copies: Option<usize>,
    /// Accepted: ferry always knows digests before uploading.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_precompute_digests: Option<bool>,
    /// Do not copy signatures (and say nothing of those left behind).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    remove_signatures: Option<bool>,
    /// ferry: write a JSON report of the copy to this file.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    #[command(flatten)]
    layers: LayerFlags,
    /// Additional tags (NAME:TAG) recorded in a docker-archive destination (repeatable).
    #[arg(long, value_name = "NAME:TAG")]
    additional_tag: Vec<String>,

    #[command(flatten)]
    sign: super::sign_args::SignArgs,

    // skopeo flags ferry refuses by name.
    #[arg(long, hide = true)]
    encrypt_layer: Option<String>,
    #[arg(long, hide = true)]
    encryption_key: Option<String>,
    #[arg(long, hide = true)]
    decryption_key: Option<String>,
}

impl CopyArgs {
    fn refuse_unsupported(&self) -> Result<()> {
        let refused: [(&str, bool, &str); 3] = [
            (
                "--encrypt-layer",
                self.encrypt_layer.is_some(),
                "encryption",
            ),
            (
                "--encryption-key",
                self.encryption_key.is_some(),
                "encryption",
            ),
            (
                "--decryption-key",
                self.decryption_key.is_some(),
                "decryption",
            ),
        ];
        for (flag, given, what) in refused {
            if given {
                return Err(Error::Unsupported(format!("{flag} ({what})")));
            }
        }
        if self.preserve_digests == Some(false) {
            log::debug!(
                "--preserve-digests=false: ferry never changes layers, digests are kept anyway"
            );
        }
        Ok(())
    }
}

pub(super) async fn run(
    args: CopyArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    args.refuse_unsupported()?;
    let src = AnyRef::parse(&args.source)?;
    let dst = AnyRef::parse(&args.destination)?;
    // The keys, once, before any request: a wrong passphrase changes nothing.
    let signer = args.sign.load_as(personality)?;
    let multi_arch = args.multi_arch.mode(personality)?;
    // The trust policy is evaluated by the engine, before it writes anything.
    let gate = global
        .policy()
        .load()?
        .map(|p| Gate::new(Arc::new(p), PolicyImage::of(&src)));
    if args.image_parallel_copies == Some(0) {
        return Err(Error::usage("--image-parallel-copies must be at least 1"));
    }
    let transport = |r: &AnyRef| match r {
        AnyRef::Docker(_) => None,
        AnyRef::Local(l) => Some(l.transport),
    };
    let conversion = args.layers.conversion(transport(&src), transport(&dst))?;
    let additional_tags = args
        .additional_tag
        .iter()
        .map(|t| additional_tag(t))
        .collect::<Result<Vec<_>>>()?;
    let retry = args.retry.policy(personality);
    let mut src_side = args.src.side(args.authfile.as_ref())?;
    let mut dst_side = args.dest.side(args.authfile.as_ref())?;
    super::options::deprecated_tls_verify(args.tls_verify, &mut src_side, &mut dst_side);
    let registries_d = super::sign_args::registries_d_for(global, personality, signer.as_ref())?;
    let rd = Some(&registries_d);
    let (source, destination) = match (&src, &dst) {
        (AnyRef::Docker(s), AnyRef::Docker(d)) => {
            let sc = src_side.client(&s.registry, &s.repository, retry.clone(), global)?;
            let dc = dst_side.client(&d.registry, &d.repository, retry, global)?;
            crate::registry::endpoints_with(sc, s, dc, d, rd)
        }
        _ => {
            let source: Arc<dyn ImageSource> = match &src {
                AnyRef::Docker(s) => {
                    let c = src_side.client(&s.registry, &s.repository, retry.clone(), global)?;
                    Arc::new(crate::registry::source_with(c, s, rd))
                }
                AnyRef::Local(l) => l.source().await?,
            };
            let destination: Arc<dyn ImageDestination> = match &dst {
                AnyRef::Docker(d) => {
                    let c = dst_side.client(&d.registry, &d.repository, retry, global)?;
                    Arc::new(crate::registry::destination_with(c, d, None, rd))
                }
                AnyRef::Local(l) => l.destination(&additional_tags).await?,
            };
            (source, destination)
        }
    };
    let quiet = args.quiet.unwrap_or(false);
    let progress = global.progress(quiet, personality.style());
    let opts = CopyOptions {
        multi_arch,
        platform: global.platform(),
        remove_signatures: args.remove_signatures.unwrap_or(false),
        note_cosign: true,
        attachments: args
            .referrers
            .options(personality)?
            .without_signatures(args.remove_signatures.unwrap_or(false)),
        refuse_retag: false,
        retry: args.retry.policy(personality),
        stall_timeout: global.stall_timeout(),
        sign: signer,
    };
    let mut copier = Copier::new(
        opts,
        progress.clone(),
        Arc::new(crate::copy::Slots::new(args.image_parallel_copies)),
    )
    .with_conversion(conversion)
    .with_policy(gate);
    if personality == Personality::Skopeo {
        copier = copier.with_transcript(Arc::new(Transcript::immediate()));
    }
    let result = copier.copy(source, destination).await;
    progress.finish();
    let report = result?;
    if personality == Personality::Ferry {
        for v in &report.signatures_verified {
            progress.line(&v.line());
        }
        for s in &report.signatures_made {
            progress.line(&s.line());
        }
    }
    for l in &report.layers_changed {
        progress.line(&format!("Note: layer {l} (its digest changed)"));
    }
    for s in &report.signatures_not_copied {
        progress.line(&format!(
            "Note: a signature of the source was not copied: {s}"
        ));
    }
    for s in &report.attached_not_copied {
        progress.line(&format!("Note: not copied: {s}"));
    }
    if let Some(path) = &args.digestfile {
        write_atomic(
            path,
            report.digest.as_bytes(),
            Access::Public,
            "writing digest file",
        )?;
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).expect("report serialises");
        let json = crate::redact::clean(&json);
        write_atomic(path, json.as_bytes(), Access::Public, "writing report")?;
    }
    // As skopeo, stdout carries skopeo's lines only.
    if !quiet && personality == Personality::Ferry {
        println!("{}", report.summary());
    }
    Ok(())
}

/// An `--additional-tag`: a tagged name (`docker.io/library/` added as skopeo adds it).
fn additional_tag(t: &str) -> Result<ImageRef> {
    let r = ImageRef::parse(t)?;
    if r.digest().is_some() {
        return Err(Error::usage(format!(
            "--additional-tag {t}: a tag is needed, not a digest"
        )));
    }
    Ok(r)
}
