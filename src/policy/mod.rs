//! The trust policy (containers-policy.json(5)), read and evaluated as skopeo does.
//!
//! The file: `--policy FILE`, else `$CONTAINERS_POLICY_JSON`, else
//! `~/.config/containers/policy.json`, else `/etc/containers/policy.json`; none is an error
//! unless `--insecure-policy`. It is parsed as strictly as containers/image parses it
//! ([`config`]). For a `docker://` image the most specific scope of the `docker` transport
//! applies (`host/ns/repo:tag` or `@digest`, `host/ns/repo`, `host/ns`, `host`, `*.domain`
//! wildcards, then the transport's `""`), else `default`; every requirement of it must be
//! satisfied:
//!
//! - `insecureAcceptAnything`: always; `reject`: never; `signedBaseLayer`: never (not
//!   implemented, as in containers/image);
//! - `signedBy` (`GPGKeys`): one simple signature by one of the keys, for this manifest's
//!   digest, naming an identity `signedIdentity` accepts ([`identity`]);
//! - `sigstoreSigned`: one sigstore signature by one of the keys (with a Rekor SET when
//!   Rekor keys are given), or by a Fulcio certificate for the policy's issuer and e-mail
//!   with a Rekor SET — checked offline ([`eval`]).
//!
//! [`Policy::verify`] is what the copy engine calls with the manifest it is about to copy and
//! the signatures it gathered; [`Policy::check`] is the check for callers that gather none.

pub mod config;
pub mod eval;
pub mod identity;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::signing::Candidate;
pub use config::{PolicyDoc, Requirement};
pub use eval::Accepted;
/// Where the policy comes from.
#[derive(Debug, Clone, Default)]
pub struct PolicySource {
    /// `--policy`.
    pub path: Option<PathBuf>,
    /// `--insecure-policy`.
    pub insecure: bool,
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
            None => default_path().ok_or_else(|| {
                Error::Policy(
                    "no trust policy found (looked for $CONTAINERS_POLICY_JSON, ~/.config/containers/policy.json, /etc/containers/policy.json): pass --policy FILE or --insecure-policy".into(),
                )
            })?,
        };
        Policy::read(&path).map(Some)
    }
}

fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CONTAINERS_POLICY_JSON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".config/containers/policy.json");
        if p.is_file() {
            return Some(p);
        }
    }
    let p = PathBuf::from("/etc/containers/policy.json");
    p.is_file().then_some(p)
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
        if let Some((_, scopes)) = self.doc.transports.iter().find(|(t, _)| t == "docker") {
            let find = |name: &str| scopes.iter().find(|(s, _)| s == name).map(|(_, r)| r);
            for scope in candidate_scopes(image) {
                if let Some(reqs) = find(&scope) {
                    return (format!("docker scope {scope:?}"), reqs);
                }
            }
            if let Some(reqs) = find("") {
                return ("docker transport default".into(), reqs);
            }
        }
        ("default".into(), &self.doc.default)
    }

    /// `Running image docker://… is rejected by policy.`, with where.
    fn rejected(&self, image: &ImageRef, scope: &str) -> Error {
        Error::Policy(format!(
            "Source image rejected: Running image docker://{image} is rejected by policy. (trust policy {}, {scope})",
            self.path.display()
        ))
    }

    /// Whether `image` needs signatures checked: `false` when every requirement that applies
    /// is `insecureAcceptAnything`; an error when the policy rejects it outright.
    pub fn needs_signatures(&self, image: &ImageRef) -> Result<bool> {
        let (scope, reqs) = self.requirements(image);
        let mut needs = false;
        for r in reqs {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => return Err(self.rejected(image, &scope)),
                Requirement::SignedBaseLayer => {
                    return Err(Error::Policy(format!(
                        "Source image rejected: signedBaseLayer not implemented yet! (docker://{image}, trust policy {}, {scope})",
                        self.path.display()
                    )));
                }
                Requirement::SignedBy { .. } | Requirement::SigstoreSigned { .. } => needs = true,
            }
        }
        Ok(needs)
    }

    /// The check for callers that do not gather signatures: the policy must accept `image`
    /// without any (a signature requirement is refused by name, never skipped).
    pub fn check(&self, image: &ImageRef) -> Result<()> {
        if self.needs_signatures(image)? {
            let (scope, reqs) = self.requirements(image);
            let names: Vec<&str> = reqs
                .iter()
                .filter(|r| !matches!(r, Requirement::InsecureAcceptAnything))
                .map(Requirement::name)
                .collect();
            return Err(Error::Policy(format!(
                "the trust policy {} requires signatures ({}) for docker://{image} ({scope}); verifying signatures here is not supported yet, so ferry refuses to copy (use a policy with insecureAcceptAnything for this scope, or --insecure-policy)",
                self.path.display(),
                names.join(", ")
            )));
        }
        Ok(())
    }

    /// Evaluate the policy for `image` (the reference the user gave) whose manifest is
    /// `manifest` (the exact bytes about to be copied), with the signatures found for that
    /// manifest's digest. Every requirement must be satisfied, in order, as skopeo's
    /// `IsRunningImageAllowed`; the error is one line: skopeo's reason after
    /// `Source image rejected:`, then which requirement of which scope failed for which
    /// image, and the signatures tried.
    pub fn verify(
        &self,
        image: &ImageRef,
        manifest: &[u8],
        candidates: &[Candidate],
    ) -> Result<Verified> {
        let (scope, reqs) = self.requirements(image);
        let mut accepted = vec![];
        for (i, r) in reqs.iter().enumerate() {
            let result = match r {
                Requirement::InsecureAcceptAnything => continue,
                Requirement::Reject => return Err(self.rejected(image, &scope)),
                Requirement::SignedBaseLayer => {
                    Err("signedBaseLayer not implemented yet!".to_string())
                }
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
                        "Source image rejected: {reason} [docker://{image}: requirement {} ({}) of {scope} in {}; {}]",
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

/// "signatures tried: …" for messages.
fn tried(candidates: &[Candidate]) -> String {
    if candidates.is_empty() {
        return "no signatures found".into();
    }
    let list: Vec<String> = candidates
        .iter()
        .map(|c| format!("{} ({})", c.origin, c.signature.format_name()))
        .collect();
    format!("signatures tried: {}", list.join(", "))
}

/// Scopes from most to least specific, as containers-policy.json(5) lists them for docker.
fn candidate_scopes(image: &ImageRef) -> Vec<String> {
    let mut out = vec![image.to_string()];
    let mut name = image.name();
    loop {
        out.push(name.clone());
        match name.rfind('/') {
            Some(i) => name.truncate(i),
            None => break,
        }
    }
    // Wildcards: *.example.com matches sub.example.com (host without port).
    let host = image.registry.split(':').next().unwrap_or("");
    let mut parts: Vec<&str> = host.split('.').collect();
    while parts.len() > 1 {
        parts.remove(0);
        out.push(format!("*.{}", parts.join(".")));
    }
    out
}

#[cfg(test)]
mod tests;
