//! skopeo verbs ferry does not have yet: they answer as unsupported flags do ("… is not
//! supported yet", exit 1), whatever their arguments, instead of clap's "unrecognized
//! subcommand". Hidden from `--help`, as most of them are in skopeo.
//!
//! `standalone-sign`, `standalone-verify` and `generate-sigstore-key` are not here: they
//! belong to signing.

use clap::{Args, Subcommand};

use crate::error::{Error, Result};

/// Whatever follows the verb.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub(super) struct Rest {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

/// The verbs of skopeo 1.18 that ferry lacks.
#[derive(Debug, Subcommand)]
pub(super) enum Verb {
    /// skopeo's deprecated `layers` (in favor of `copy`).
    #[command(hide = true)]
    Layers(Rest),
    /// skopeo's image proxy for containers-image-proxy clients.
    #[command(hide = true)]
    ExperimentalImageProxy(Rest),
    /// skopeo's signature dump.
    #[command(hide = true)]
    UntrustedSignatureDumpWithoutVerification(Rest),
    /// cobra's shell completion scripts.
    #[command(hide = true)]
    Completion(Rest),
}

impl Verb {
    /// Refuse by name.
    pub(super) fn run(&self) -> Result<()> {
        let what = match self {
            Verb::Layers(_) => {
                "the `layers` command (deprecated in skopeo in favor of `copy`)".to_string()
            }
            Verb::ExperimentalImageProxy(_) => {
                "the `experimental-image-proxy` command (skopeo's image proxy)".to_string()
            }
            Verb::UntrustedSignatureDumpWithoutVerification(_) => {
                "the `untrusted-signature-dump-without-verification` command".to_string()
            }
            Verb::Completion(_) => {
                "the `completion` command (shell completion scripts)".to_string()
            }
        };
        Err(Error::Unsupported(what))
    }
}
