//! `ferry promote`: the production stage of the promotion pipeline as one command.
//!
//! Inputs come from flags or, when a flag is absent, from the pipeline's environment
//! ([`inputs`]); the registries and projects a promotion may touch are pinned by the
//! production side's promotion config ([`config`]), checked before any request is sent;
//! tokens come from files mounted in the agent pod. The image
//! `NON_PROD_REGISTRY/NON_PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT` is copied, whole (every
//! platform of an index, digest kept), to `PROD_REGISTRY/PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT`.
//!
//! - A production tag that already points at another digest is never moved unless
//!   `--allow-overwrite`: the copy engine refuses before it copies anything.
//! - A production tag that already points at the same digest is a no-op (nothing is written).
//! - Afterwards the production tag is read back (`HEAD`) and must name the source's digest.
//! - A [`Record`] of what happened can be written as JSON.
//! - With `--attest`, the record is signed and attached to the production digest as an
//!   in-toto statement in a DSSE envelope ([`attest`]), right after the read-back.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::copy::{
    AttachedCounts, AttachmentOptions, Copier, CopyOptions, CopyReport, Counts, MultiArch,
};
use crate::error::{Error, Result};
use crate::platform::Wanted;
use crate::progress::{Progress, human_bytes};
use crate::reference::{Digest, ImageRef};
use crate::registry::{Client, Scope};

pub mod attest;
pub mod config;
pub mod inputs;

pub use config::{DEFAULT_CONFIG, Pinned, PromotionConfig};
pub use inputs::{Given, INPUTS, Input, Inputs};

/// Where OpenShift mounts the non-production token Secret in the agent pod (the pod template's
/// volume); the Secret's `token` key.
pub const DEFAULT_SRC_TOKEN_FILE: &str =
    "/run/secrets/kubernetes.io/non-production-cluster-token/token";
/// The same Secret's folder: its optional `ca.crt` is the CA of the non-production route.
pub const DEFAULT_SRC_CERT_DIR: &str = "/run/secrets/kubernetes.io/non-production-cluster-token";
/// The pod's own service-account token (pushes to the production registry).
pub const DEFAULT_DEST_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The pod's service-account folder: `service-ca.crt` is the CA of the internal registry.
pub const DEFAULT_DEST_CERT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The user name sent with a service-account token (OpenShift's registry accepts any).
pub const SA_USERNAME: &str = "serviceaccount";

/// Who started the promotion, from Jenkins' environment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct JenkinsEnv {
    /// `BUILD_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
    /// `JOB_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// `BUILD_NUMBER`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_number: Option<String>,
}

impl JenkinsEnv {
    /// Read `BUILD_URL`, `JOB_NAME`, `BUILD_NUMBER` (blank ones are left out; a URL loses any
    /// user-info).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        JenkinsEnv {
            build_url: get("BUILD_URL").map(|u| match url::Url::parse(&u) {
                Ok(parsed) => crate::redact::url(&parsed),
                Err(_) => u,
            }),
            job_name: get("JOB_NAME"),
            build_number: get("BUILD_NUMBER"),
        }
    }
}

/// The promotion record (`--record FILE`), documented in `docs/promote.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// ferry's version.
    pub ferry_version: &'static str,
    /// When the promotion finished, UTC, RFC 3339.
    pub time: String,
    /// `docker://NON_PROD_REGISTRY/NON_PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT`.
    pub source: String,
    /// `docker://PROD_REGISTRY/PROD_PROJECT_NAME/IMAGE_NAME:GIT_COMMIT`.
    pub destination: String,
    /// Digest of the source's manifest (index, for a multi-arch image).
    pub source_digest: String,
    /// Digest the production tag points at, read back after the copy (equal to `source_digest`).
    pub destination_digest: String,
    /// Media type of that manifest.
    pub media_type: String,
    /// True when production already had the image under the tag and nothing was written.
    pub already_present: bool,
    /// With `--allow-overwrite`: the digest the production tag pointed at before, if another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_digest: Option<String>,
    /// Bytes: everything the image references, copied, already in production, mounted.
    pub bytes: Counts,
    /// Blob counts, the same way.
    pub blobs: Counts,
    /// OpenShift image signatures added in production (copied from non-production).
    pub signatures_copied: u64,
    /// OCI 1.1 referrers (signatures, attestations, SBOMs) copied, already there, filtered out.
    pub referrers: AttachedCounts,
    /// cosign attachment tags (`sha256-<hex>.sig`, `.att`, `.sbom`), the same way.
    pub attachments: AttachedCounts,
    /// Wall time of the promotion, milliseconds.
    pub duration_ms: u64,
    /// The source's signatures the trust policy required and accepted (key, identity, where
    /// found), per manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures_verified: Vec<crate::copy::VerifiedSignature>,
    /// The signatures this promotion made at production (`--sign-by`,
    /// `--sign-by-sigstore-private-key`): manifest, format, key, identity.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures_made: Vec<crate::copy::MadeSignature>,
    /// Jenkins' `BUILD_URL`, `JOB_NAME`, `BUILD_NUMBER`, when set.
    #[serde(flatten)]
    pub jenkins: JenkinsEnv,
    /// With `--attest`: where the signed promotion attestation was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<AttestationRecord>,
}

/// Where `--attest` wrote the promotion attestation (in the record).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttestationRecord {
    /// The cosign attachment tag, `sha256-<hex>.att`.
    pub tag: String,
    /// Digest of the DSSE envelope (the attachment's layer).
    pub envelope_digest: String,
    /// The referrer manifest's digest, when the registry has the referrers API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The predicate type.
    pub predicate_type: &'static str,
}

impl AttestationRecord {
    /// `Promotion attestation written: sha256-….att (envelope sha256:…, PREDICATE), referrer
    /// sha256:…`.
    pub fn line(&self) -> String {
        let referrer = match &self.referrer {
            Some(d) => format!(", referrer {d}"),
            None => String::new(),
        };
        format!(
            "Promotion attestation written: {} (envelope {}, {}){referrer}",
            self.tag, self.envelope_digest, self.predicate_type
        )
    }
}

impl Record {
    /// The one-line summary printed on stdout.
    pub fn summary(&self) -> String {
        let secs = self.duration_ms as f64 / 1000.0;
        let mut attached = String::new();
        if self.referrers.copied > 0 {
            attached.push_str(&format!(", {} referrer(s)", self.referrers.copied));
        }
        if self.attachments.copied > 0 {
            attached.push_str(&format!(", {} attachment tag(s)", self.attachments.copied));
        }
        if self.already_present && !attached.is_empty() {
            return format!(
                "Already promoted: {} is {}; added what it lacked{attached} in {secs:.1} s",
                self.destination.trim_start_matches("docker://"),
                self.destination_digest
            );
        }
        if self.already_present {
            return format!(
                "Already promoted: {} is {} (nothing copied, {secs:.1} s)",
                self.destination.trim_start_matches("docker://"),
                self.destination_digest
            );
        }
        let replaced = match &self.replaced_digest {
            Some(d) => format!(", replacing {d}"),
            None => String::new(),
        };
        format!(
            "Promoted {} to {} as {}{replaced}: {} copied, {} already present, {} mounted{attached} in {secs:.1} s",
            self.source.trim_start_matches("docker://"),
            self.destination.trim_start_matches("docker://"),
            self.destination_digest,
            human_bytes(self.bytes.copied),
            human_bytes(self.bytes.skipped),
            human_bytes(self.bytes.mounted),
        )
    }
}

/// How to promote.
pub struct Promoter {
    /// Client of the non-production registry.
    pub src: Arc<Client>,
    /// Client of the production registry.
    pub dst: Arc<Client>,
    /// `--allow-overwrite`.
    pub allow_overwrite: bool,
    /// Progress output.
    pub progress: Arc<Progress>,
    /// Blob transfers in flight at most (`None`: adaptive).
    pub parallel: Option<usize>,
    /// Retries of a whole blob transfer.
    pub retry: crate::retry::RetryPolicy,
    /// Time a blob transfer may go without moving a byte.
    pub stall_timeout: std::time::Duration,
    /// What is attached to the image travels with it (`--referrers`).
    pub attachments: AttachmentOptions,
    /// Lookaside signature storage (`registries.d`).
    pub registries_d: Option<crate::registries_d::RegistriesD>,
    /// The trust policy the source image must satisfy (`None`: `--insecure-policy`).
    pub policy: Option<Arc<crate::policy::Policy>>,
    /// Sign the production image (loaded before anything is copied).
    pub signer: Option<Arc<crate::copy::Signer>>,
    /// `--attest`: the key that signs the promotion attestation (the signer's sigstore key).
    pub attest: Option<Arc<crate::signing::keys::PrivateKey>>,
}

impl Promoter {
    /// Copy `src` to `dst` as described in the module doc and return the record.
    pub async fn promote(
        &self,
        src: &ImageRef,
        dst: &ImageRef,
        jenkins: JenkinsEnv,
    ) -> Result<(Record, CopyReport)> {
        let started = Instant::now();
        let scope = Scope::push(&dst.repository);
        let tag = dst.target.as_str().to_string();
        // Only to record what an allowed overwrite replaced.
        let before = if self.allow_overwrite {
            self.dst
                .head_manifest(&dst.repository, &tag, &scope)
                .await?
                .and_then(|h| h.digest)
        } else {
            None
        };
        let copier =
            Copier::new(
                CopyOptions {
                    multi_arch: MultiArch::All,
                    platform: Wanted::current(None, None, None),
                    remove_signatures: false,
                    note_cosign: true,
                    attachments: self.attachments.clone(),
                    refuse_retag: !self.allow_overwrite,
                    retry: self.retry.clone(),
                    stall_timeout: self.stall_timeout,
                    sign: self.signer.clone(),
                },
                self.progress.clone(),
                Arc::new(crate::copy::Slots::new(self.parallel)),
            )
            .with_policy(self.policy.as_ref().map(|p| {
                crate::copy::Gate::new(p.clone(), crate::policy::PolicyImage::docker(src))
            }));
        let (source, destination) = crate::registry::endpoints_with(
            self.src.clone(),
            src,
            self.dst.clone(),
            dst,
            self.registries_d.as_ref(),
        );
        let report = match copier.copy(source, destination).await {
            Ok(r) => r,
            Err(Error::Refused(m)) => {
                return Err(Error::Refused(format!(
                    "{m} (a production tag is never re-pointed by accident: pass --allow-overwrite to move it)"
                )));
            }
            Err(e) => return Err(e),
        };
        let expected: Digest =
            report
                .source_digest
                .parse()
                .map_err(|e: crate::reference::ReferenceError| Error::Invalid {
                    what: "source digest".into(),
                    location: self.src.location(&src.repository),
                    reason: e.to_string(),
                })?;
        let actual = self.read_back(dst, &tag, &scope).await?;
        if actual != expected {
            return Err(Error::DigestMismatch {
                what: format!("production tag {tag} after the copy"),
                location: self.dst.location(&dst.repository),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let mut record = Record {
            ferry_version: env!("CARGO_PKG_VERSION"),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            source: format!("docker://{src}"),
            destination: format!("docker://{dst}"),
            source_digest: report.source_digest.clone(),
            destination_digest: actual.to_string(),
            media_type: report.media_type.clone(),
            already_present: report.already_present,
            replaced_digest: before.filter(|b| b != &expected).map(|d| d.to_string()),
            bytes: report.bytes.clone(),
            blobs: report.blobs.clone(),
            signatures_copied: report.signatures_copied,
            referrers: report.referrers.clone(),
            attachments: report.attachments.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            signatures_verified: report.signatures_verified.clone(),
            signatures_made: report.signatures_made.clone(),
            jenkins,
            attestation: None,
        };
        // After the read-back, not before the tag moves: the copy engine moves the tag as the
        // last step of the copy and has no hook before it, and the statement records the
        // digest the production tag was seen to name. A failure here leaves the image
        // promoted without its attestation; running the promotion again (nothing copied)
        // writes it.
        if let Some(key) = &self.attest {
            let written = attest::attach(&self.dst, dst, key, &attest::promotion(&record))
                .await
                .map_err(|e| Error::Attachment {
                    what: format!(
                        "writing the promotion attestation of {dst} (the image was promoted: the tag names {actual})"
                    ),
                    source: Box::new(e),
                })?;
            record.attestation = Some(AttestationRecord {
                tag: written.tag,
                envelope_digest: written.envelope.to_string(),
                referrer: written.referrer.map(|d| d.to_string()),
                predicate_type: crate::signing::dsse::PROMOTION_PREDICATE_TYPE,
            });
        }
        record.duration_ms = started.elapsed().as_millis() as u64;
        Ok((record, report))
    }

    /// The digest the production tag points at now (`HEAD`; a `GET` when the registry sends no
    /// `Docker-Content-Digest`). A tag the registry accepted and then cannot produce is an error
    /// of the destination (exit 1): exit 2 means only that the source image does not exist.
    async fn read_back(&self, dst: &ImageRef, tag: &str, scope: &Scope) -> Result<Digest> {
        let vanished = || {
            Error::Invalid {
            what: format!("production tag {tag}"),
            location: self.dst.location(&dst.repository),
            reason: "the registry accepted the copy but does not have the tag when it is read back (HTTP 404)".into(),
        }
        };
        let head = self.dst.head_manifest(&dst.repository, tag, scope).await?;
        match head {
            None => Err(vanished()),
            Some(h) => match h.digest {
                Some(d) => Ok(d),
                None => match self.dst.get_manifest(&dst.repository, tag).await {
                    Ok(m) => Ok(m.digest),
                    Err(Error::NotFound { .. }) => Err(vanished()),
                    Err(e) => Err(e),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn jenkins_env_and_record_json() {
        let j = JenkinsEnv::from_env(env_of(&[
            ("BUILD_URL", "https://u:p@jenkins.example.com/job/prod/7/"),
            ("BUILD_NUMBER", "7"),
            ("JOB_NAME", ""),
        ]));
        assert_eq!(
            j.build_url.as_deref(),
            Some("https://jenkins.example.com/job/prod/7/")
        );
        assert_eq!(j.job_name, None);
        let r = Record {
            ferry_version: "0",
            time: "2025-01-01T00:00:00Z".into(),
            source: "docker://a.io/x/app:1".into(),
            destination: "docker://b.io/y/app:1".into(),
            source_digest: "sha256:aa".into(),
            destination_digest: "sha256:aa".into(),
            media_type: "m".into(),
            already_present: true,
            replaced_digest: None,
            bytes: Counts::default(),
            blobs: Counts::default(),
            signatures_copied: 0,
            referrers: AttachedCounts::default(),
            attachments: AttachedCounts::default(),
            duration_ms: 1200,
            signatures_verified: vec![],
            signatures_made: vec![],
            jenkins: j,
            attestation: None,
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["build_number"], "7");
        assert!(
            v.get("job_name").is_none()
                && v.get("replaced_digest").is_none()
                && v.get("signatures_verified").is_none()
                && v.get("signatures_made").is_none()
        );
        assert_eq!(
            r.summary(),
            "Already promoted: b.io/y/app:1 is sha256:aa (nothing copied, 1.2 s)"
        );
    }
}
