//! The trust policy (containers-policy.json(5)), read and evaluated as skopeo does.
//!
//! The file: `--policy FILE`, else `$CONTAINERS_POLICY_JSON`, else
//! `~/.config/containers/policy.json`, else `/etc/containers/policy.json`; none is an error
//! unless `--insecure-policy`. It is parsed as strictly as containers/image parses it
//! ([`config`]). The most specific scope of the image's transport applies ([`image`]: for
//! `docker://`, `host/ns/repo:tag` or `@digest`, `host/ns/repo`, `host/ns`, `host`,
//! `*.domain` wildcards; for `dir:`/`oci:`, the path and its parents), then the transport's
//! `""`, else `default`; every requirement of it must be satisfied:
//!
//! - `insecureAcceptAnything`: always; `reject`: never; `signedBaseLayer`: never (not
//!   implemented, as in containers/image);
//! - `signedBy` (`GPGKeys`): one simple signature by one of the keys, for this manifest's
//!   digest, naming an identity `signedIdentity` accepts ([`identity`]);
//! - `sigstoreSigned`: one sigstore signature by one of the keys (with a Rekor SET when
//!   Rekor keys are given), or by a Fulcio certificate for the policy's issuer and e-mail
//!   with a Rekor SET — checked offline ([`eval`]).
//!
//! [`Policy::verify_image`] is what the copy engine calls (`crate::copy`'s `verify`) with
//! each manifest it is about to copy and the signatures it gathered for it, before it writes
//! anything; [`Policy::needs_signatures_for`] tells it whether to gather any.

pub mod config;
pub mod eval;
pub mod identity;
pub mod image;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::signing::{Candidate, Signature};
pub use config::{PolicyDoc, Requirement};
pub use eval::Accepted;
pub use image::PolicyImage;

/// Where the policy comes from.
#[derive(Debug, Clone, Default)]
pub struct PolicySource {
    /// `--policy`.
    pub path: Option<PathBuf>,
    /// `--insecure-policy`.
    pub insecure: bool,
    /// `$CONTAINERS_POLICY_JSON`, the policy when `--policy` is not given.
    pub env_path: Option<PathBuf>,
    /// `$HOME`, for `~/.config/containers/policy.json`.
    pub home: Option<PathBuf>,
}

/// A loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    path: PathBuf,
    doc: PolicyDoc,
}

/// What [`Policy::verify`] found: the scope that applied, and for each signature
/// requirement the signature that satisfied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `docker scope "…"`, `docker transport default` or `default`.
    pub scope: String,
    /// One entry per `signedBy`/`sigstoreSigned` requirement.
    pub accepted: Vec<Accepted>,
}

impl PolicySource {
    /// Load the policy, or `None` with `--insecure-policy`.
    pub fn load(&self) -> Result<Option<Policy>> {
        if self.insecure {
            return Ok(None);
        }
        let path = match &self.path {
            Some(p) => p.clone(),
            None => self.default_path().ok_or_else(|| {
                Error::Policy(
                    "no trust policy found (looked for $CONTAINERS_POLICY_JSON, ~/.config/containers/policy.json, /etc/containers/policy.json): pass --policy FILE or --insecure-policy".into(),
                )
            })?,
        };
        Policy::read(&path).map(Some)
    }

    /// `$CONTAINERS_POLICY_JSON`, else `~/.config/containers/policy.json`, else
    /// `/etc/containers/policy.json`, whichever exists first.
    fn default_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.env_path {
            return Some(p.clone());
        }
        if let Some(home) = &self.home {
            let p = home.join(".config/containers/policy.json");
            if p.is_file() {
                return Some(p);
            }
        }
        let p = PathBuf::from("/etc/containers/policy.json");
        p.is_file().then_some(p)
    }
}

impl Policy {
    /// Read and parse a policy file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading trust policy", path, e))?;
        let doc = config::parse(&bytes).map_err(|e| {
            Error::Policy(format!(
                "invalid policy in {:?}: {e}",
                path.display().to_string()
            ))
        })?;
        Ok(Policy {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Parse a policy from text (tests).
    pub fn parse(text: &str) -> Result<Self> {
        let doc = config::parse(text.as_bytes())
            .map_err(|e| Error::Policy(format!("invalid policy: {e}")))?;
        Ok(Policy {
            path: PathBuf::from("<inline>"),
            doc,
        })
    }

    /// The requirements that apply to a `docker://` image, and the scope that matched.
    pub fn requirements(&self, image: &ImageRef) -> (String, &[Requirement]) {
        self.requirements_for(&PolicyImage::docker(image))
    }

    /// The requirements that apply to an image of any transport: its transport's most
    /// specific scope, else that transport's `""`, else `default`; and the scope that matched.
    pub fn requirements_for(&self, image: &PolicyImage) -> (String, &[Requirement]) {
        if let Some((_, scopes)) = self
            .doc
            .transports
            .iter()
            .find(|(t, _)| t == image.transport)
        {
            let find = |name: &str| scopes.iter().find(|(s, _)| s == name).map(|(_, r)| r);
            for scope in &image.scopes {
                if let Some(reqs) = find(scope) {
                    return (format!("{} scope {scope:?}", image.transport), reqs);
                }
            }
            if let Some(reqs) = find("") {
                return (format!("{} transport default", image.transport), reqs);
            }
        }
        ("default".into(), &self.doc.default)
    }

    /// `Running image docker://… is rejected by policy.`, with where.
    fn rejected(&self, image: &PolicyImage, scope: &str) -> Error {
        Error::Policy(format!(
            "Source image rejected: Running image {} is rejected by policy. (trust policy {}, {scope})",
            image.display,
            self.path.display()
        ))
    }

    /// Whether a `docker://` image needs signatures checked (see [`Self::needs_signatures_for`]).
    pub fn needs_signatures(&self, image: &ImageRef) -> Result<bool> {
        self.needs_signatures_for(&PolicyImage::docker(image))
    }

    /// Whether `image` needs signatures checked: `false` when every requirement that applies
    /// is `insecureAcceptAnything`; an error when the policy rejects it outright (`reject`,
    /// `signedBaseLayer`), before anything is read.
    pub fn needs_signatures_for(&self, image: &PolicyImage) -> Result<bool> {
        let (scope, reqs) = self.requirements_for(image);
        let mut needs = false;
        for r in reqs {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => return Err(self.rejected(image, &scope)),
                Requirement::SignedBaseLayer => {
                    return Err(Error::Policy(format!(
                        "Source image rejected: signedBaseLayer not implemented yet! ({}, trust policy {}, {scope})",
                        image.display,
                        self.path.display()
                    )));
                }
                Requirement::SignedBy { .. } | Requirement::SigstoreSigned { .. } => needs = true,
            }
        }
        Ok(needs)
    }

    /// Whether a requirement that applies to `image` is `sigstoreSigned`.
    pub fn wants_sigstore(&self, image: &PolicyImage) -> bool {
        let (_, reqs) = self.requirements_for(image);
        reqs.iter()
            .any(|r| matches!(r, Requirement::SigstoreSigned { .. }))
    }

    /// [`Self::verify_image`] for a `docker://` image.
    pub fn verify(
        &self,
        image: &ImageRef,
        manifest: &[u8],
        candidates: &[Candidate],
    ) -> Result<Verified> {
        self.verify_image(&PolicyImage::docker(image), manifest, candidates)
    }

    /// Evaluate the policy for `image` (the reference the user gave) whose manifest is
    /// `manifest` (the exact bytes about to be copied), with the signatures found for that
    /// manifest's digest. Every requirement must be satisfied, in order, as skopeo's
    /// `IsRunningImageAllowed`; the error is one line: skopeo's reason after
    /// `Source image rejected:`, then which requirement of which scope failed for which
    /// image and manifest, and the signatures tried (how many, where, which keys).
    pub fn verify_image(
        &self,
        image: &PolicyImage,
        manifest: &[u8],
        candidates: &[Candidate],
    ) -> Result<Verified> {
        let (scope, reqs) = self.requirements_for(image);
        let mut accepted = vec![];
        for (i, r) in reqs.iter().enumerate() {
            let result = match r {
                Requirement::InsecureAcceptAnything => continue,
                Requirement::Reject => return Err(self.rejected(image, &scope)),
                Requirement::SignedBaseLayer => Err("signedBaseLayer not implemented yet!".into()),
                Requirement::SignedBy {
                    key_type,
                    keys,
                    identity,
                } => eval::signed_by(key_type, keys, identity, image, manifest, candidates),
                Requirement::SigstoreSigned {
                    keys,
                    fulcio,
                    rekor,
                    identity,
                } => eval::sigstore_signed(
                    keys.as_ref(),
                    fulcio.as_ref(),
                    rekor.as_ref(),
                    identity,
                    image,
                    manifest,
                    candidates,
                ),
            };
            match result {
                Ok(a) => accepted.push(a),
                Err(reason) => {
                    return Err(Error::Policy(format!(
                        "Source image rejected: {reason} [{} (manifest {}): requirement {} ({}) of {scope} in {}; {}]",
                        image.display,
                        crate::reference::Digest::sha256(manifest),
                        i + 1,
                        r.name(),
                        self.path.display(),
                        tried(candidates)
                    )));
                }
            }
        }
        Ok(Verified { scope, accepted })
    }
}

/// "2 signatures tried: signature-1 (simple signing, key 0123…), …" for messages.
fn tried(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "no signatures found".into();
    }
    let list: Vec<String> = candidates
        .iter()
        .map(|c| {
            let key = match &c.signature {
                Signature::Simple(b) => crate::signing::openpgp::issuer(b)
                    .map(|k| format!(", key {k}"))
                    .unwrap_or_default(),
                Signature::Sigstore(s)
                    if s.annotations
                        .contains_key(crate::signing::sigstore::CERTIFICATE_ANNOTATION) =>
                {
                    ", with a certificate".to_string()
                }
                Signature::Sigstore(_) => String::new(),
            };
            format!("{} ({}{key})", c.origin, c.signature.format_name())
        })
        .collect();
    let n = candidates.len();
    format!(
        "{n} signature{} tried: {}",
        if n == 1 { "" } else { "s" },
        list.join(", ")
    )
}

#[cfg(test)]
mod tests;
