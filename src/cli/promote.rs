//! `promote`: the production stage of the promotion pipeline (`Jenkinsfile.prod`).

use std::path::{Path, PathBuf};

use std::sync::Arc;

use clap::Args;

use super::options::{GlobalOptions, Personality, RetryArgs, SideFlags, go_bool};
use crate::credentials::{CredentialArgs, read_secret_file};
use crate::error::{Error, Result};
use crate::fsutil::{Access, write_atomic};
use crate::promote::{
    DEFAULT_CONFIG, DEFAULT_DEST_CERT_DIR, DEFAULT_DEST_TOKEN_FILE, DEFAULT_SRC_CERT_DIR,
    DEFAULT_SRC_TOKEN_FILE, Given, JenkinsEnv, Promoter, PromotionConfig, SA_USERNAME,
};
use crate::redact::Secret;
use crate::tls::TlsOptions;

pub(super) const LONG_ABOUT: &str =
    "Promote an image from the non-production registry to production.

Copies docker://NON_PROD_REGISTRY/NON_PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT to \
docker://PROD_REGISTRY/PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT: the whole image (every platform of \
a multi-arch index), byte for byte, so the production digest is the non-production digest. \
It is checked after the copy.

Each input is a flag or, when the flag is absent, the environment variable in brackets (the \
production pipeline's parameters). The image name and the tag are required (missing ones, and \
missing token files, are all named in one error) and must follow the distribution spec's \
grammars.

What a promotion may touch is pinned by the production side in the promotion config \
(--config, default /etc/ferry/promotion.yaml: the ConfigMap the production templates mount):

  sourceRegistries: [HOST[:PORT], ...]       # allowed NON_PROD_REGISTRY values
  destinationRegistries: [HOST[:PORT], ...]  # allowed PROD_REGISTRY values
  sourceProjects: [PROJECT, ...]             # allowed NON_PROD_PROJECT_NAME values
  destinationProjects: [PROJECT, ...]        # allowed PROD_PROJECT_NAME values

The first value of each list is the default when the pipeline gives none; any other value is \
refused (exit 1) before a request is sent. Without the file, promote refuses to run. No \
environment variable can move the file: build parameters, which a webhook caller sets, reach \
the pipeline's steps as environment variables.

The trust policy (--policy, default as skopeo's) applies to the non-production image: signatures \
it requires (signedBy: GnuPG simple signing; sigstoreSigned: the .sig attachment where \
registries.d sets use-sigstore-attachments) are verified for the index and each of its images \
before anything is written to production; a refusal is exit 1 and one line naming the \
requirement and the signatures tried. What was accepted is logged and recorded (--record).

Authentication: the non-production token is read from --src-token-file (the Secret mounted in \
the agent pod), the production token from --dest-token-file (the pod's service account); each is \
sent to its registry as the password of user \"serviceaccount\", which OpenShift's registry \
exchanges for a bearer token. Tokens are never printed.

A production tag that already points at another digest is never moved (exit 1, nothing copied) \
unless --allow-overwrite; one that already points at the same digest is left alone (nothing \
copied), except attachments production lacks. Signatures, attestations and SBOMs attached to \
the image (OCI 1.1 referrers, cosign sha256-<hex>.sig/.att/.sbom tags) are copied before the \
tag moves (--referrers=none leaves them behind). --record writes a JSON record of the \
promotion; a one-line summary goes to stdout. --digestfile and --image-url-file write the \
production digest and reference, each alone in its file (OpenShift Pipelines: the Task results \
IMAGE_DIGEST and IMAGE_URL, which Tekton Chains attests).

--attest (beyond skopeo, which signs images but not promotions): after the production tag is \
read back, the promotion record (source and destination references and digests, the digest \
replaced, the signatures verified at the source, the Jenkins job, build number and URL, \
ferry's version, the time) is signed as an in-toto statement (predicate type \
urn:ferry:promotion:v1) in a DSSE envelope with the sigstore private key of \
--sign-by-sigstore-private-key (which signs the production image too, see Signing below), and \
attached to the production digest as cosign attaches attestations: a layer of the \
sha256-<hex>.att tag and, where the registry has the OCI 1.1 referrers API, a referrer. `ferry \
verify-promotion` checks it. --attest without --sign-by-sigstore-private-key is refused before \
anything is copied.";

/// Arguments of `promote`.
#[derive(Debug, Args)]
pub(super) struct PromoteArgs {
    /// Image name, the same in both projects [env: IMAGE_NAME].
    #[arg(long, value_name = "NAME")]
    image_name: Option<String>,
    /// Non-production registry as production reaches it, host[:port]; one of the config's sourceRegistries, default the first [env: NON_PROD_REGISTRY].
    #[arg(long, value_name = "HOST[:PORT]")]
    non_prod_registry: Option<String>,
    /// Production registry, host[:port]; one of the config's destinationRegistries, default the first [env: PROD_REGISTRY].
    #[arg(long, value_name = "HOST[:PORT]")]
    prod_registry: Option<String>,
    /// Non-production project; one of the config's sourceProjects, default the first [env: NON_PROD_PROJECT_NAME].
    #[arg(long, value_name = "PROJECT")]
    non_prod_project: Option<String>,
    /// Production project; one of the config's destinationProjects, default the first [env: PROD_PROJECT_NAME].
    #[arg(long, value_name = "PROJECT")]
    prod_project: Option<String>,
    /// Tag to promote, e.g. the commit the image was built from [env: GIT_COMMIT].
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// The promotion config: the registries and projects a promotion may touch (no environment variable).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,

    /// File holding the non-production service-account token.
    #[arg(long, value_name = "PATH", env = "FERRY_SRC_TOKEN_FILE", default_value = DEFAULT_SRC_TOKEN_FILE)]
    src_token_file: PathBuf,
    /// File holding the production service-account token.
    #[arg(long, value_name = "PATH", env = "FERRY_DEST_TOKEN_FILE", default_value = DEFAULT_DEST_TOKEN_FILE)]
    dest_token_file: PathBuf,
    /// CA certificates (*.crt) for the non-production registry [default: /run/secrets/kubernetes.io/non-production-cluster-token, when it exists].
    #[arg(long, value_name = "DIR", env = "FERRY_SRC_CERT_DIR")]
    src_cert_dir: Option<PathBuf>,
    /// CA certificates (*.crt) for the production registry [default: /var/run/secrets/kubernetes.io/serviceaccount, when it exists].
    #[arg(long, value_name = "DIR", env = "FERRY_DEST_CERT_DIR")]
    dest_cert_dir: Option<PathBuf>,
    /// Verify the non-production registry's certificate (false also allows plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    src_tls_verify: Option<bool>,
    /// Verify the production registry's certificate (false also allows plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_tls_verify: Option<bool>,

    /// Move the production tag even when it points at another digest.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    allow_overwrite: Option<bool>,
    /// Write the promotion record (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Write the production digest to FILE (no newline; a Tekton result: IMAGE_DIGEST).
    #[arg(long, value_name = "FILE")]
    digestfile: Option<PathBuf>,
    /// ferry: write the production reference, REGISTRY/PROJECT/NAME:TAG, to FILE (no newline;
    /// a Tekton result: IMAGE_URL).
    #[arg(long, value_name = "FILE")]
    image_url_file: Option<PathBuf>,
    /// Blob transfers in flight at most (default: adaptive, up to 32 small blobs or 8 large
    /// ones at once).
    #[arg(long, value_name = "N")]
    image_parallel_copies: Option<usize>,
    #[command(flatten)]
    retry: RetryArgs,
    #[command(flatten)]
    referrers: super::referrers::ReferrerArgs,
    #[command(flatten)]
    sign: super::sign_args::SignArgs,
    /// No progress output and no summary.
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    quiet: Option<bool>,

    /// ferry: sign the promotion record and attach it to the production digest (an in-toto
    /// statement in a DSSE envelope, the .att tag and a referrer) with the key of
    /// --sign-by-sigstore-private-key.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    attest: Option<bool>,
}

/// `--attest` needs a sigstore key: refused (a usage error) before the key is read and
/// before any request.
fn check_attest(args: &PromoteArgs) -> Result<bool> {
    let attest = args.attest.unwrap_or(false);
    if attest && args.sign.sign_by_sigstore_private_key.is_none() {
        return Err(Error::usage(
            "promote: --attest needs --sign-by-sigstore-private-key PATH (the production sigstore private key; its passphrase from --sign-passphrase-file or FERRY_SIGN_PASSPHRASE): the attestation is a DSSE envelope signed with a sigstore key",
        ));
    }
    Ok(attest)
}

/// One side: its token and TLS options.
struct Side {
    token: Secret,
    tls: TlsOptions,
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Read a token file; on failure, a line for the "missing inputs" error.
fn token(path: &Path, what: &str, flag: &str) -> std::result::Result<Secret, String> {
    match read_secret_file(path, what) {
        Ok(t) => Ok(t),
        Err(Error::Io { source, .. }) => Err(format!(
            "{what} {} ({flag}): {}",
            path.display(),
            match source.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                _ => source.to_string(),
            }
        )),
        Err(_) => Err(format!("{what} {} ({flag}): empty", path.display())),
    }
}

/// The cert dir: the flag's (must exist), else the default folder when it exists.
fn cert_dir(flag: Option<&PathBuf>, default: &str) -> Option<PathBuf> {
    match flag {
        Some(d) => Some(d.clone()),
        None => Some(PathBuf::from(default)).filter(|d| d.is_dir()),
    }
}

pub(super) async fn run(
    args: PromoteArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    let flags = [
        args.image_name.clone(),
        args.non_prod_registry.clone(),
        args.prod_registry.clone(),
        args.non_prod_project.clone(),
        args.prod_project.clone(),
        args.tag.clone(),
    ];
    // The production side's pins first: without them nothing else is looked at.
    let config = PromotionConfig::load(&args.config)?;
    let attest = check_attest(&args)?;
    let given = Given::resolve(flags, env_value);
    let src_token = token(
        &args.src_token_file,
        "non-production token file",
        "--src-token-file",
    );
    let dst_token = token(
        &args.dest_token_file,
        "production token file",
        "--dest-token-file",
    );
    let (given, src_token, dst_token) = match (given, src_token, dst_token) {
        (Ok(given), Ok(src), Ok(dst)) => (given, src, dst),
        (given, src, dst) => {
            let mut missing = given.err().unwrap_or_default();
            missing.extend(src.err());
            missing.extend(dst.err());
            return Err(Error::usage(format!(
                "promote: missing or empty inputs: {}",
                missing.join(", ")
            )));
        }
    };
    // Every input checked (grammar, then the config's allowed values) before any request.
    let inputs = given.check(&config)?;
    log::debug!(
        "promote: registries and projects allowed by {}",
        config.path.display()
    );
    let (src, dst) = inputs.references()?;
    // Evaluated by the engine after reading the source, before writing anything.
    let policy = global.policy().load()?.map(Arc::new);
    // The keys, once, before any request: a wrong passphrase changes nothing (promote is
    // ferry's verb: ferry's rules, whatever the name it was invoked by).
    let signer = args.sign.load()?;
    // --attest signs the promotion record with the same sigstore key.
    let attest = match (attest, &signer) {
        (true, Some(s)) => s.sigstore_key(),
        _ => None,
    };
    let src_side = Side {
        token: src_token,
        tls: TlsOptions::new(
            args.src_tls_verify,
            cert_dir(args.src_cert_dir.as_ref(), DEFAULT_SRC_CERT_DIR),
            &global.env,
        ),
    };
    let dst_side = Side {
        token: dst_token,
        tls: TlsOptions::new(
            args.dest_tls_verify,
            cert_dir(args.dest_cert_dir.as_ref(), DEFAULT_DEST_CERT_DIR),
            &global.env,
        ),
    };
    let retry = args.retry.policy(personality);
    let client = |side: Side, r: &crate::reference::ImageRef, which: &str, prefix: &str| {
        log::debug!(
            "{which}: {} (token from a file, TLS files from {})",
            r.registry,
            side.tls
                .cert_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the default places".into())
        );
        SideFlags {
            creds: CredentialArgs {
                creds: Some(Secret::new(format!(
                    "{SA_USERNAME}:{}",
                    side.token.expose()
                ))),
                flag_prefix: prefix.to_string(),
                ..CredentialArgs::default()
            },
            tls: side.tls,
            requests_per_second: None,
        }
        .client(&r.registry, &r.repository, retry.clone(), global)
    };
    let src_client = client(src_side, &src, "non-production", "--src-")?;
    let dst_client = client(dst_side, &dst, "production", "--dest-")?;
    let quiet = args.quiet.unwrap_or(false);
    let progress = global.progress(quiet, crate::progress::Style::Ferry);
    let promoter = Promoter {
        src: src_client,
        dst: dst_client,
        allow_overwrite: args.allow_overwrite.unwrap_or(false),
        progress: progress.clone(),
        parallel: args.image_parallel_copies,
        retry: args.retry.policy(personality),
        stall_timeout: global.stall_timeout(),
        attachments: args.referrers.options(personality)?,
        registries_d: Some(global.registries_d()?),
        policy,
        signer,
        attest,
    };
    let result = promoter
        .promote(&src, &dst, JenkinsEnv::from_env(env_value))
        .await;
    progress.finish();
    let (record, report) = result?;
    for v in &report.signatures_verified {
        progress.line(&v.line());
    }
    for s in &report.signatures_made {
        progress.line(&s.line());
    }
    for s in &report.signatures_not_copied {
        progress.line(&format!(
            "Note: a signature of the source was not copied: {s}"
        ));
    }
    if let Some(a) = &record.attestation {
        progress.line(&a.line());
    }
    if let Some(path) = &args.record {
        let json = serde_json::to_string_pretty(&record).expect("record serialises");
        let json = crate::redact::clean(&json) + "\n";
        write_atomic(path, json.as_bytes(), Access::Public, "writing record")?;
    }
    if let Some(path) = &args.digestfile {
        write_atomic(
            path,
            record.destination_digest.as_bytes(),
            Access::Public,
            "writing digest file",
        )?;
    }
    if let Some(path) = &args.image_url_file {
        let url = record.destination.trim_start_matches("docker://");
        write_atomic(
            path,
            url.as_bytes(),
            Access::Public,
            "writing image URL file",
        )?;
    }
    if !quiet {
        println!("{}", record.summary());
    }
    Ok(())
}
