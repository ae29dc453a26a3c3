//! Flags shared by several verbs: global flags, per-registry flags (with `src-`/`dest-`
//! prefixes or none), retries, and turning them into registry clients.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::copy::MultiArch;
use crate::credentials::CredentialArgs;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::policy::PolicySource;
use crate::redact::Secret;
use crate::registry::{Client, ClientOptions};
use crate::retry::{RetryPolicy, parse_go_duration};
use crate::tls::TlsOptions;

/// Under which name ferry was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// `ferry`: safer defaults.
    Ferry,
    /// `skopeo` (symlink): skopeo's defaults.
    Skopeo,
}

impl Personality {
    /// From `argv[0]`'s file name.
    pub fn from_argv0() -> Self {
        let arg0 = std::env::args_os().next().unwrap_or_default();
        let name = std::path::Path::new(&arg0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if name == "skopeo" {
            Personality::Skopeo
        } else {
            Personality::Ferry
        }
    }

    /// Whose words progress and logs use.
    pub fn style(self) -> crate::progress::Style {
        match self {
            Personality::Ferry => crate::progress::Style::Ferry,
            Personality::Skopeo => crate::progress::Style::Skopeo,
        }
    }

    /// Default `--retry-times`.
    pub fn default_retries(self) -> u32 {
        match self {
            Personality::Ferry => 3,
            Personality::Skopeo => 0,
        }
    }
}

/// Parse a Go boolean flag value (`true`, `false`, `1`, `0`, `t`, `f`, …).
pub fn go_bool(s: &str) -> std::result::Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!(
            "invalid boolean value {other:?} (expected true or false)"
        )),
    }
}

fn duration(s: &str) -> std::result::Result<Duration, String> {
    parse_go_duration(s)
}

/// Flags accepted before and after every verb.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Enable debug output (never shows secrets).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    pub debug: Option<bool>,
    /// Run without any trust-policy check.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    pub insecure_policy: Option<bool>,
    /// Path to a trust policy file (containers-policy.json).
    #[arg(long, global = true, value_name = "PATH")]
    pub policy: Option<PathBuf>,
    /// Use ARCH instead of the machine's architecture when choosing an image of an index.
    #[arg(long, global = true, value_name = "ARCH")]
    pub override_arch: Option<String>,
    /// Use OS instead of the running OS when choosing an image of an index.
    #[arg(long, global = true, value_name = "OS")]
    pub override_os: Option<String>,
    /// Use VARIANT instead of the running architecture variant when choosing an image.
    #[arg(long, global = true, value_name = "VARIANT")]
    pub override_variant: Option<String>,
    /// Timeout for the whole command (Go duration: 90s, 10m).
    #[arg(long, global = true, value_name = "DURATION", value_parser = duration)]
    pub command_timeout: Option<Duration>,
    /// Directory for temporary files (accepted; ferry streams and writes none).
    #[arg(long, global = true, value_name = "DIR")]
    pub tmpdir: Option<PathBuf>,
    /// Directory of registries.d files: lookaside signature storage, use-sigstore-attachments.
    #[arg(long = "registries.d", global = true, value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
    /// registries.conf path (accepted; ferry does not use it).
    #[arg(
        long = "registries-conf",
        global = true,
        value_name = "PATH",
        hide = true
    )]
    pub registries_conf: Option<PathBuf>,
    /// ferry: a transfer that moves less than 1 KiB in this long is stalled: resumed or retried (default 60s).
    #[arg(long, global = true, value_name = "DURATION", value_parser = duration)]
    pub stall_timeout: Option<Duration>,
    /// A deprecated `--tls-verify` before the verb: the default of every side's own flag.
    #[arg(skip)]
    pub legacy_tls_verify: Option<bool>,
    /// The process environment, read once when the command line is parsed.
    #[arg(skip)]
    pub env: Arc<Environment>,
}

impl GlobalOptions {
    /// `--debug`.
    pub fn debug(&self) -> bool {
        self.debug.unwrap_or(false)
    }

    /// `--command-timeout`, `None` when unset or zero.
    pub fn command_timeout(&self) -> Result<Option<Duration>> {
        Ok(self.command_timeout.filter(|d| !d.is_zero()))
    }

    /// `--stall-timeout`, else the default (60 s).
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
            .filter(|d| !d.is_zero())
            .unwrap_or(ClientOptions::default().stall_timeout)
    }

    /// The registries.d configuration (`--registries.d`, else the user's, else the system's).
    pub fn registries_d(&self) -> Result<crate::registries_d::RegistriesD> {
        crate::registries_d::RegistriesD::load(
            self.registries_d.as_deref(),
            self.env.home.as_deref(),
        )
    }

    /// A progress reporter in `style` (`--quiet` when `quiet`), plain lines as often as
    /// `FERRY_PROGRESS_INTERVAL` says.
    pub fn progress(
        &self,
        quiet: bool,
        style: crate::progress::Style,
    ) -> Arc<crate::progress::Progress> {
        crate::progress::Progress::with_interval(
            crate::progress::Mode::detect(quiet),
            style,
            crate::progress::line_interval(self.env.progress_interval.as_deref()),
        )
    }

    /// The trust policy source.
    pub fn policy(&self) -> PolicySource {
        PolicySource {
            path: self.policy.clone(),
            insecure: self.insecure_policy.unwrap_or(false),
            env_path: self.env.containers_policy_json.clone(),
            home: self.env.home.clone(),
        }
    }

    /// The platform used to choose an image from an index.
    pub fn platform(&self) -> crate::platform::Wanted {
        crate::platform::Wanted::current(
            self.override_os.as_deref(),
            self.override_arch.as_deref(),
            self.override_variant.as_deref(),
        )
    }
}

/// `--retry-times` and `--retry-delay`.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Retries after a failed request (default: 3 as ferry, 0 as skopeo; 429 is always honoured).
    #[arg(long, value_name = "N")]
    pub retry_times: Option<u32>,
    /// Fixed delay between retries (Go duration; default: exponential backoff from 0.5s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub retry_delay: Option<Duration>,
}

impl RetryArgs {
    /// The policy for this invocation.
    pub fn policy(&self, personality: Personality) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.retry_times.unwrap_or(personality.default_retries()),
            fixed_delay: self.retry_delay.filter(|d| !d.is_zero()),
        }
    }
}

/// `-a/--all` and `--multi-arch` (copy, sync).
#[derive(Debug, Clone, Args)]
pub struct MultiArchArgs {
    /// Copy all images if the source is a list (same as --multi-arch all).
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    pub all: Option<bool>,
    /// How to handle multi-architecture images: system, all, or index-only.
    #[arg(long, value_name = "MODE", value_parser = clap::value_parser!(MultiArch))]
    pub multi_arch: Option<MultiArch>,
}

impl MultiArchArgs {
    /// The mode: the flags, else the personality's default (`all` as ferry, `system` as skopeo).
    pub fn mode(&self, personality: Personality) -> Result<MultiArch> {
        match (self.all.unwrap_or(false), self.multi_arch) {
            (true, Some(m)) if m != MultiArch::All => Err(Error::usage(
                "--all and --multi-arch cannot be used together with a mode other than all",
            )),
            (true, _) => Ok(MultiArch::All),
            (false, Some(m)) => Ok(m),
            (false, None) => Ok(match personality {
                Personality::Ferry => MultiArch::All,
                Personality::Skopeo => MultiArch::System,
            }),
        }
    }
}

/// Everything one side's flags say, after parsing.
#[derive(Debug, Clone, Default)]
pub struct SideFlags {
    /// Credential inputs.
    pub creds: CredentialArgs,
    /// TLS options.
    pub tls: TlsOptions,
    /// `sync --requests-per-second`: the bound for this side's registries.
    pub requests_per_second: Option<f64>,
}

impl SideFlags {
    /// A client for `registry`, credentials resolved for `repository`.
    pub fn client(
        &self,
        registry: &str,
        repository: &str,
        retry: RetryPolicy,
        global: &GlobalOptions,
    ) -> Result<Arc<Client>> {
        let credentials = self.creds.resolve(registry, repository, &global.env)?;
        log::debug!("{registry}: credentials: {}", credentials.describe());
        let flag_prefix = match self.creds.flag_prefix.as_str() {
            "" => "--",
            p => p,
        };
        let mut opts = ClientOptions {
            tls: TlsOptions::new(
                self.tls.verify.or(global.legacy_tls_verify),
                self.tls.cert_dir.clone(),
                &global.env,
            ),
            credentials,
            retry,
            tls_verify_flag: format!("{flag_prefix}tls-verify"),
            max_tag_data: crate::registry::tags::limit_from(global.env.max_tag_data.as_deref())
                .map_err(Error::usage)?,
            requests_per_second: self.requests_per_second,
            ..ClientOptions::default()
        };
        if let Some(s) = global.stall_timeout.filter(|d| !d.is_zero()) {
            opts.stall_timeout = s;
            opts.request_timeout = opts.request_timeout.max(s);
        }
        Client::new(registry, opts)
    }
}

/// Generate a registry-flags struct with a flag-name prefix.
macro_rules! registry_flags {
    ($name:ident, $prefix:literal, $env:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            /// Use USERNAME[:PASSWORD] for accessing the registry.
            #[arg(id = concat!($prefix, "creds"), long = concat!($prefix, "creds"), value_name = "USERNAME[:PASSWORD]")]
            pub creds: Option<String>,
            /// Username for accessing the registry.
            #[arg(id = concat!($prefix, "username"), long = concat!($prefix, "username"), value_name = "USERNAME")]
            pub username: Option<String>,
            /// Password for accessing the registry (prefer the -file form).
            #[arg(id = concat!($prefix, "password"), long = concat!($prefix, "password"), value_name = "PASSWORD")]
            pub password: Option<String>,
            /// A bearer token for accessing the registry (prefer the -file form).
            #[arg(id = concat!($prefix, "registry-token"), long = concat!($prefix, "registry-token"), value_name = "TOKEN")]
            pub registry_token: Option<String>,
            /// Use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry.
            #[arg(id = concat!($prefix, "cert-dir"), long = concat!($prefix, "cert-dir"), value_name = "PATH")]
            pub cert_dir: Option<PathBuf>,
            /// Require HTTPS and verify certificates (false also allows plain HTTP).
            #[arg(id = concat!($prefix, "tls-verify"), long = concat!($prefix, "tls-verify"), num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
            pub tls_verify: Option<bool>,
            /// Access the registry anonymously.
            #[arg(id = concat!($prefix, "no-creds"), long = concat!($prefix, "no-creds"), num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
            pub no_creds: Option<bool>,
            /// Path of the authentication file for this registry.
            #[arg(id = concat!($prefix, "authfile"), long = concat!($prefix, "authfile"), value_name = "PATH")]
            pub authfile: Option<PathBuf>,
            /// ferry: read USERNAME[:PASSWORD] from a file (env: FERRY_…CREDS).
            #[arg(id = concat!($prefix, "creds-file"), long = concat!($prefix, "creds-file"), value_name = "PATH")]
            pub creds_file: Option<PathBuf>,
            /// ferry: read the password from a file.
            #[arg(id = concat!($prefix, "password-file"), long = concat!($prefix, "password-file"), value_name = "PATH")]
            pub password_file: Option<PathBuf>,
            /// ferry: read the bearer token from a file (env: FERRY_…REGISTRY_TOKEN).
            #[arg(id = concat!($prefix, "registry-token-file"), long = concat!($prefix, "registry-token-file"), value_name = "PATH")]
            pub registry_token_file: Option<PathBuf>,
            /// Not supported: docker-daemon transport only.
            #[arg(id = concat!($prefix, "daemon-host"), long = concat!($prefix, "daemon-host"), value_name = "HOST", hide = true)]
            pub daemon_host: Option<String>,
            /// Not supported: oci transport only.
            #[arg(id = concat!($prefix, "shared-blob-dir"), long = concat!($prefix, "shared-blob-dir"), value_name = "DIR", hide = true)]
            pub shared_blob_dir: Option<PathBuf>,
        }

        impl $name {
            /// The parsed flags; `authfile` falls back to the global `--authfile`.
            pub fn side(&self, global_authfile: Option<&PathBuf>) -> Result<SideFlags> {
                let flag = |n: &str| format!("--{}{}", $prefix, n);
                if self.daemon_host.is_some() {
                    return Err(Error::Unsupported(format!("{} (docker-daemon transport)", flag("daemon-host"))));
                }
                if self.shared_blob_dir.is_some() {
                    return Err(Error::Unsupported(format!("{} (oci transport)", flag("shared-blob-dir"))));
                }
                Ok(SideFlags {
                    creds: CredentialArgs {
                        creds: self.creds.clone().map(Secret::new),
                        username: self.username.clone(),
                        password: self.password.clone().map(Secret::new),
                        registry_token: self.registry_token.clone().map(Secret::new),
                        creds_file: self.creds_file.clone(),
                        password_file: self.password_file.clone(),
                        registry_token_file: self.registry_token_file.clone(),
                        no_creds: self.no_creds.unwrap_or(false),
                        authfile: self.authfile.clone().or_else(|| global_authfile.cloned()),
                        flag_prefix: format!("--{}", $prefix),
                        env_prefix: $env.to_string(),
                    },
                    tls: TlsOptions { verify: self.tls_verify, cert_dir: self.cert_dir.clone(), ..TlsOptions::default() },
                    requests_per_second: None,
                })
            }
        }
    };
}

registry_flags!(
    SrcFlags,
    "src-",
    "FERRY_SRC_",
    "Flags for the source registry."
);
registry_flags!(
    DestFlags,
    "dest-",
    "FERRY_DEST_",
    "Flags for the destination registry."
);
registry_flags!(
    RegistryFlags,
    "",
    "FERRY_",
    "Flags for the registry of a single-image command."
);

impl RegistryFlags {
    /// A client for `registry/repository` from these flags (single-image verbs).
    pub fn client(
        &self,
        registry: &str,
        repository: &str,
        retry: &RetryArgs,
        personality: Personality,
        global: &GlobalOptions,
    ) -> Result<Arc<Client>> {
        self.side(None)?
            .client(registry, repository, retry.policy(personality), global)
    }
}

/// A deprecated `--tls-verify` of `copy` or `sync` (both sides, unless a side's own flag is
/// given), with skopeo's warning.
pub fn deprecated_tls_verify(value: Option<bool>, src: &mut SideFlags, dst: &mut SideFlags) {
    if value.is_some() {
        log::warn!(
            "'--tls-verify' is deprecated, instead use: --src-tls-verify, --dest-tls-verify"
        );
        src.tls.verify = src.tls.verify.or(value);
        dst.tls.verify = dst.tls.verify.or(value);
    }
}

/// Set up logging on stderr: ferry's own messages at info (debug with `--debug`); other
/// crates at warn, whatever `RUST_LOG` says, so that no library prints request headers.
/// Invoked as `skopeo`, every line is in skopeo's (logrus's) `time=… level=… msg=…` form.
pub fn init_logging(debug: bool, personality: Personality) {
    use std::io::Write as _;
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Warn)
        .filter_module("ferry", level)
        .format(move |f, record| {
            // Whatever a line quotes (a server's answer), no secret leaves through it.
            let text = crate::redact::clean(&record.args().to_string());
            match (personality, record.level()) {
                (Personality::Skopeo, l) => writeln!(
                    f,
                    "{}",
                    crate::logrus::line(crate::logrus::level(l), &text, &[])
                ),
                (Personality::Ferry, log::Level::Info) => writeln!(f, "{text}"),
                (Personality::Ferry, l) => {
                    writeln!(f, "{}: {text}", l.as_str().to_lowercase())
                }
            }
        })
        .target(env_logger::Target::Stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn go_bools() {
        assert_eq!(go_bool("false"), Ok(false));
        assert_eq!(go_bool("T"), Ok(true));
        assert!(go_bool("yes").is_err());
    }
}
