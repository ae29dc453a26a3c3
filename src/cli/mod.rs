//! Command line: skopeo's verbs and flags, parsed with clap, plus ferry's own commands.
//!
//! Global flags are accepted before and after the verb (`ferry --debug copy …` and
//! `ferry copy --debug …`), as skopeo accepts them. Boolean flags take Go's forms:
//! `--tls-verify`, `--tls-verify=false`, `--tls-verify=0`. Invoked under the name `skopeo`
//! (a symlink), ferry keeps skopeo's defaults: one platform of a multi-arch image, no retries.
//!
//! Every error ends here: one line on stderr, and the exit code of
//! [`crate::error::Error::exit_code`] (a usage error exits 1, as skopeo's do — 2 means
//! "image not found").
//!
//! Where skopeo releases differ, ferry follows [`SKOPEO_RELEASE`] (the differences from
//! Debian 12's skopeo 1.9.3 are listed in `--help` and the README).

mod copy;
mod delete;
mod inspect;
mod layers;
mod legacy;
mod list_tags;
mod login;
mod manifest_digest;
pub mod options;
mod promote;
mod referrers;
mod scale;
mod sign_args;
mod signing;
mod sync;
mod tree;
mod trigger;
mod unsupported;
mod verify_promotion;

use std::time::Duration;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::error::{EXIT_ERROR, EXIT_OK, Error, Result};
pub use options::{GlobalOptions, Personality};

/// The skopeo release whose behaviour ferry follows where releases differ (and which
/// `skopeo --version` names when ferry is invoked as `skopeo`).
pub const SKOPEO_RELEASE: &str = "1.18.0";

const ABOUT: &str = "Copy container images between registries and skopeo's on-disk formats, \
byte for byte.

A drop-in for skopeo: the same verbs, flags and transports (docker://, oci:, oci-archive:, \
dir:, docker-archive:), the same digests, the same exit codes (0 ok, 1 error, 2 image not \
found). Layers and manifests pass through unchanged — so the digest that reaches the \
destination is the digest of the source (as `skopeo copy --preserve-digests`) — unless a \
format requires a change (a docker-archive holds uncompressed layers) or a flag asks for one \
(--dest-compress-format, -f); the summary then says which layers changed.

Invoked as `ferry`, `copy` takes the whole multi-arch index (`--multi-arch all`, digest kept) \
and retries transient failures 3 times; invoked as `skopeo` (a symlink), it keeps skopeo's \
defaults: the current platform's image and no retries, and prints what skopeo prints: \
`copy`'s progress lines on stdout (`Getting image source signatures`, `Copying blob …`, \
`Writing manifest to image destination`, …), logs on stderr in skopeo's `time=… level=… \
msg=…` form, `--version` as `skopeo version 1.18.0 (ferry X.Y.Z)`.

Where skopeo releases differ, ferry follows skopeo 1.18, not Debian 12's skopeo 1.9.3: exit \
code 2 for a missing image (1.9.3: 1); inspect's LayersData and the `json` template function; \
`Storing signatures` printed only when there are signatures and `Copying N images generated \
from M images in list` (1.9.3: always, and `Copying N of M images in list`); messages worded \
as 1.18 words them (`no image found in image index for architecture \"arm64\", …`); the \
flags 1.18 added (--retry-delay, --image-parallel-copies, sync's --digestfile and \
--append-suffix). Deprecated spellings skopeo still accepts work: --screds/--dcreds, \
--tls-verify on copy and sync, and a --tls-verify before the verb.";

const ENVIRONMENT: &str = "Environment:
  FERRY_SRC_CREDS, FERRY_DEST_CREDS, FERRY_CREDS        USER:PASSWORD, so that no secret is in argv
  FERRY_SRC_REGISTRY_TOKEN, FERRY_DEST_REGISTRY_TOKEN,
  FERRY_REGISTRY_TOKEN                                  bearer tokens, likewise
  REGISTRY_AUTH_FILE                                    the auth file (as skopeo)
  FERRY_PROGRESS_INTERVAL                               seconds between progress lines in logs (10)
  FERRY_MAX_TAG_DATA                                    memory a repository's tag list may take
                                                        (list-tags, sync, inspect; 64MiB)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY                     proxies (as skopeo)
  FERRY_SIGN_PASSPHRASE                                 passphrase of the signing key (copy, sync, promote
                                                        --sign-by*), when no --sign-passphrase-file
  GNUPGHOME                                             GnuPG home of standalone-sign/-verify and
                                                        --sign-by (as skopeo)
A flag wins over its -file form, which wins over the environment.";

/// ferry's command line.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "Copy container images between registries and disk, byte for byte", long_about = ABOUT, after_long_help = ENVIRONMENT)]
#[command(disable_version_flag = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOptions,

    /// Print version information.
    #[arg(short = 'v', long = "version", visible_short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Deprecated (as in skopeo): the default of every verb's --tls-verify.
    #[arg(long = "tls-verify", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = options::go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy an image: registries (docker://), oci:, oci-archive:, dir:, docker-archive:.
    #[command(long_about = copy::LONG_ABOUT, after_long_help = sign_args::SIGNING_HELP)]
    Copy(Box<copy::CopyArgs>),
    /// Inspect an image: skopeo's JSON, the raw manifest, the config, or a Go template.
    #[command(long_about = inspect::LONG_ABOUT)]
    Inspect(Box<inspect::InspectArgs>),
    /// List the tags of a repository (docker://HOST/PATH).
    ListTags(Box<list_tags::ListTagsArgs>),
    /// Delete an image's manifest from a registry (by its digest).
    Delete(Box<delete::DeleteArgs>),
    /// Print the digest of a manifest file.
    ManifestDigest(manifest_digest::ManifestDigestArgs),
    /// Log in to a registry: check the credentials, then store them in the auth file.
    Login(Box<login::LoginArgs>),
    /// Remove a registry's credentials from the auth file.
    Logout(login::LogoutArgs),
    /// Copy whole repositories (or the images a YAML file lists) to a registry.
    #[command(long_about = sync::LONG_ABOUT, after_long_help = scale::ABOUT)]
    Sync(Box<sync::SyncArgs>),
    /// ferry: promote an image from the non-production registry to production.
    #[command(long_about = promote::LONG_ABOUT, after_long_help = sign_args::SIGNING_HELP)]
    Promote(Box<promote::PromoteArgs>),
    /// ferry: verify an image's signed promotion attestation (promote --attest) and print it.
    #[command(long_about = verify_promotion::LONG_ABOUT)]
    VerifyPromotion(Box<verify_promotion::VerifyPromotionArgs>),
    /// ferry: show an image's manifest tree with its referrers, signatures, attestations, SBOMs.
    #[command(long_about = tree::LONG_ABOUT)]
    Tree(Box<tree::TreeArgs>),
    /// ferry: start a BuildConfig's build through OpenShift's generic webhook.
    #[command(long_about = trigger::LONG_ABOUT)]
    Trigger(Box<trigger::TriggerArgs>),
    /// Create a signature using local files (GnuPG simple signing).
    #[command(long_about = signing::SIGN_ABOUT)]
    StandaloneSign(signing::StandaloneSignArgs),
    /// Verify a signature using local files (GnuPG simple signing).
    #[command(long_about = signing::VERIFY_ABOUT)]
    StandaloneVerify(signing::StandaloneVerifyArgs),
    /// Generate a sigstore public/private key pair.
    #[command(long_about = signing::KEYGEN_ABOUT)]
    GenerateSigstoreKey(signing::GenerateKeyArgs),
    #[command(flatten)]
    Unsupported(unsupported::Verb),
}

/// Run the command line and return the process exit code.
pub fn main() -> i32 {
    let personality = Personality::from_argv0();
    let mut cmd = legacy::spellings(Cli::command());
    if personality == Personality::Skopeo {
        cmd = cmd
            .name("skopeo")
            .bin_name("skopeo")
            .version(skopeo_version());
    }
    let matches = match cmd.try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return EXIT_ERROR;
        }
    };
    cli.global.env = std::sync::Arc::new(crate::environment::Environment::capture());
    options::init_logging(cli.global.debug(), personality);
    if cli.tls_verify.is_some() {
        log::warn!("'--tls-verify' is deprecated, please set this on the specific subcommand");
        cli.global.legacy_tls_verify = cli.tls_verify;
    }
    match run(cli, personality) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("Error: {}", crate::redact::clean(&e.to_string()));
            e.exit_code()
        }
    }
}

fn run(cli: Cli, personality: Personality) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", "-", e))?;
    let timeout = cli.global.command_timeout()?;
    rt.block_on(async move {
        let fut = async {
            match cli.command {
                Command::Copy(args) => copy::run(*args, &cli.global, personality).await,
                Command::Inspect(args) => inspect::run(*args, &cli.global, personality).await,
                Command::ListTags(args) => list_tags::run(*args, &cli.global, personality).await,
                Command::Delete(args) => delete::run(*args, &cli.global, personality).await,
                Command::ManifestDigest(args) => manifest_digest::run(args),
                Command::Login(args) => login::login(*args, &cli.global, personality).await,
                Command::Logout(args) => login::logout(args, &cli.global.env),
                Command::Sync(args) => sync::run(*args, &cli.global, personality).await,
                Command::Promote(args) => promote::run(*args, &cli.global, personality).await,
                Command::Tree(args) => tree::run(*args, &cli.global, personality).await,
                Command::VerifyPromotion(args) => {
                    verify_promotion::run(*args, &cli.global, personality).await
                }
                Command::Trigger(args) => trigger::run(*args, &cli.global.env).await,
                Command::StandaloneSign(args) => signing::standalone_sign(args),
                Command::StandaloneVerify(args) => signing::standalone_verify(args),
                Command::GenerateSigstoreKey(args) => signing::generate_sigstore_key(args),
                Command::Unsupported(verb) => verb.run(),
            }
        };
        match timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout(fmt_duration(t))),
            },
            None => fut.await,
        }
    })
}

/// `--version` invoked as `skopeo`: the skopeo release ferry follows, then ferry itself, so
/// that scripts parsing `skopeo version X.Y.Z` keep working.
fn skopeo_version() -> String {
    format!(
        "version {SKOPEO_RELEASE} (ferry {})",
        env!("CARGO_PKG_VERSION")
    )
}

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
