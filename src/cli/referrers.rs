//! `--referrers` and `--referrers-artifact-type` (copy, sync, promote): what is attached to an
//! image travels with it (see [`crate::copy::referrers`]).

use clap::Args;

use super::options::Personality;
use crate::copy::AttachmentOptions;
use crate::error::{Error, Result};

/// The flags.
#[derive(Debug, Clone, Args)]
pub(super) struct ReferrerArgs {
    /// ferry: copy what is attached to the image — OCI 1.1 referrers and cosign
    /// sha256-<hex>.sig/.att/.sbom tags, and what is attached to those — before the tag
    /// moves: `all` (default as ferry) or `none` (default as skopeo).
    #[arg(long, value_name = "WHICH", value_parser = ["all", "none"])]
    referrers: Option<String>,
    /// ferry: copy only referrers and attachments of this artifact type (repeatable).
    #[arg(long = "referrers-artifact-type", value_name = "TYPE")]
    artifact_types: Vec<String>,
}

impl ReferrerArgs {
    /// The options: ferry copies everything attached unless told otherwise; skopeo nothing.
    pub(super) fn options(&self, personality: Personality) -> Result<AttachmentOptions> {
        let on = match self.referrers.as_deref() {
            Some("all") => true,
            Some(_) => false,
            None => personality == Personality::Ferry,
        };
        if !on {
            if !self.artifact_types.is_empty() {
                return Err(Error::usage(
                    "--referrers-artifact-type needs --referrers=all (invoked as skopeo, it is off by default)",
                ));
            }
            return Ok(match personality {
                // skopeo copies sigstore signatures where registries.d enables them.
                Personality::Skopeo => AttachmentOptions::skopeo(),
                Personality::Ferry => AttachmentOptions::none(),
            });
        }
        if let Some(t) = self.artifact_types.iter().find(|t| t.trim().is_empty()) {
            return Err(Error::usage(format!(
                "--referrers-artifact-type {t:?} is not a media type"
            )));
        }
        Ok(AttachmentOptions::all(self.artifact_types.clone()))
    }
}
