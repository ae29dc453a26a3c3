//! `signedIdentity`: which identities (`docker-reference` values) a signature may name for an
//! image, as containers/image matches them (`signature/policy_reference_match.go`).
//!
//! References are compared in their normalised form (`docker.io/library/busybox:latest`);
//! "name only" references (no tag, no digest) never match where an exact reference is needed.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::Error;
use crate::reference::{Digest, ImageRef, ReferenceError, Target};

/// Why a docker reference in a policy or a signature cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The digest after `@` is not a valid digest.
    #[error(transparent)]
    Digest(#[from] ReferenceError),
    /// The name (and tag) is not a valid image reference.
    #[error(transparent)]
    Reference(Box<Error>),
    /// A reference that must be in normalised form (`docker.io/library/busybox:1`) is not.
    #[error("reference {0:?} is not in its normalised form")]
    NotCanonical(String),
}

/// A docker reference as `reference.ParseNormalizedNamed` parses it: a normalised name and an
/// optional tag and digest (both may be present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerName {
    /// `registry/repository`, normalised.
    pub name: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest, if any.
    pub digest: Option<Digest>,
}

impl DockerName {
    /// Parse and normalise (`busybox` is `docker.io/library/busybox`).
    pub fn parse_normalized(s: &str) -> Result<Self, IdentityError> {
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(name_tag[last_slash + i + 1..].to_string()),
            ),
            None => (name_tag, None),
        };
        let checked = match &tag {
            Some(t) => format!("{name}:{t}"),
            None => name.to_string(),
        };
        let r = ImageRef::parse(&checked).map_err(|e| IdentityError::Reference(Box::new(e)))?;
        Ok(DockerName {
            name: format!("{}/{}", r.registry, r.repository),
            tag,
            digest,
        })
    }

    /// Parse a reference that must already be in normalised form (`reference.ParseNamed`).
    pub fn parse_canonical(s: &str) -> Result<Self, IdentityError> {
        let n = Self::parse_normalized(s)?;
        if n.to_string() != s {
            return Err(IdentityError::NotCanonical(s.to_string()));
        }
        Ok(n)
    }

    /// The reference of an image ferry reads.
    pub fn from_image(image: &ImageRef) -> Self {
        let (tag, digest) = match &image.target {
            Target::Tag(t) => (Some(t.clone()), None),
            Target::Digest(d) => (None, Some(d.clone())),
        };
        DockerName {
            name: image.name(),
            tag,
            digest,
        }
    }

    /// Neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
}

impl fmt::Display for DockerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A `signedIdentity` of a policy requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityMatch {
    /// `matchExact`: the signature names exactly the image's reference (tag or digest).
    MatchExact,
    /// `matchRepoDigestOrExact` (the default): exactly the tagged reference; for a reference
    /// by digest, any reference of the same repository.
    MatchRepoDigestOrExact,
    /// `matchRepository`: any reference of the same repository.
    MatchRepository,
    /// `exactReference`: exactly this reference, whatever the image's.
    ExactReference(String),
    /// `exactRepository`: any reference of this repository.
    ExactRepository(String),
    /// `remapIdentity`: the image's reference with `prefix` replaced by `signed_prefix`, then
    /// as `matchRepoDigestOrExact`.
    RemapIdentity {
        /// `prefix`.
        prefix: String,
        /// `signedPrefix`.
        signed_prefix: String,
    },
}

impl IdentityMatch {
    /// The policy name of this match.
    pub fn name(&self) -> &'static str {
        match self {
            IdentityMatch::MatchExact => "matchExact",
            IdentityMatch::MatchRepoDigestOrExact => "matchRepoDigestOrExact",
            IdentityMatch::MatchRepository => "matchRepository",
            IdentityMatch::ExactReference(_) => "exactReference",
            IdentityMatch::ExactRepository(_) => "exactRepository",
            IdentityMatch::RemapIdentity { .. } => "remapIdentity",
        }
    }

    /// Whether a signature naming `signed` is acceptable for `image`.
    pub fn matches(&self, image: &ImageRef, signed: &str) -> bool {
        self.accepts(Some(image), signed).unwrap_or(false)
    }

    /// Whether a signature naming `signed` is acceptable for an image whose Docker reference
    /// is `image` (`None`: its transport has none, as `dir:`); `None` when this match needs
    /// the image's reference and there is none (only `exactReference` and `exactRepository`
    /// do without).
    pub fn accepts(&self, image: Option<&ImageRef>, signed: &str) -> Option<bool> {
        let Ok(sig) = DockerName::parse_normalized(signed) else {
            return match (self, image) {
                (IdentityMatch::ExactReference(_) | IdentityMatch::ExactRepository(_), _)
                | (_, Some(_)) => Some(false),
                _ => None,
            };
        };
        let intended = match (self, image) {
            (IdentityMatch::ExactReference(_) | IdentityMatch::ExactRepository(_), _) => {
                DockerName {
                    name: String::new(),
                    tag: None,
                    digest: None,
                }
            }
            (_, Some(image)) => DockerName::from_image(image),
            (_, None) => return None,
        };
        Some(match self {
            IdentityMatch::MatchExact => {
                !intended.is_name_only()
                    && !sig.is_name_only()
                    && sig.to_string() == intended.to_string()
            }
            IdentityMatch::MatchRepoDigestOrExact => repo_digest_or_exact(&intended, &sig),
            IdentityMatch::MatchRepository => sig.name == intended.name,
            IdentityMatch::ExactReference(r) => match DockerName::parse_normalized(r) {
                Ok(want) => {
                    !want.is_name_only()
                        && !sig.is_name_only()
                        && sig.to_string() == want.to_string()
                }
                Err(_) => false,
            },
            IdentityMatch::ExactRepository(r) => {
                DockerName::parse_normalized(r).is_ok_and(|want| sig.name == want.name)
            }
            IdentityMatch::RemapIdentity {
                prefix,
                signed_prefix,
            } => match remap(&intended, prefix, signed_prefix) {
                Some(remapped) => repo_digest_or_exact(&remapped, &sig),
                None => false,
            },
        })
    }
}

fn repo_digest_or_exact(intended: &DockerName, sig: &DockerName) -> bool {
    if sig.is_name_only() {
        return false;
    }
    if intended.tag.is_some() {
        sig.to_string() == intended.to_string()
    } else if intended.digest.is_some() {
        // The manifest's digest is checked against the signature's separately.
        sig.name == intended.name
    } else {
        false
    }
}

/// `remapReferencePrefix`: `None` when the rewritten reference is invalid.
fn remap(r: &DockerName, prefix: &str, signed_prefix: &str) -> Option<DockerName> {
    let name = &r.name;
    let matches = match name.len().cmp(&prefix.len()) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => name == prefix,
        std::cmp::Ordering::Greater => {
            name.starts_with(prefix) && name.as_bytes()[prefix.len()] == b'/'
        }
    };
    if !matches {
        return Some(r.clone());
    }
    let rewritten = r.to_string().replacen(prefix, signed_prefix, 1);
    DockerName::parse_canonical(&rewritten).ok()
}

const DOMAIN: &str = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?";
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";

/// Whether `s` is a valid `prefix`/`signedPrefix` of `remapIdentity`: a registry host, or a
/// repository name that starts with one.
pub fn valid_remap_prefix(s: &str) -> bool {
    static DOMAIN_RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{DOMAIN}$")).expect("regex"));
    static DOMAIN_PREFIX_RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{DOMAIN}/")).expect("regex"));
    static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            "^(?:{DOMAIN}/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$"
        ))
        .expect("regex")
    });
    DOMAIN_RE.is_match(s) || (NAME_RE.is_match(s) && DOMAIN_PREFIX_RE.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn docker_names_as_go_parses_them() {
        let n = DockerName::parse_normalized("busybox").unwrap();
        assert_eq!(n.to_string(), "docker.io/library/busybox");
        assert!(n.is_name_only());
        let d = format!("sha256:{}", "a".repeat(64));
        let n = DockerName::parse_normalized(&format!("reg:5000/a/b:v1@{d}")).unwrap();
        assert_eq!(n.to_string(), format!("reg:5000/a/b:v1@{d}"));
        assert!(DockerName::parse_normalized("Reg/UPPER").is_err());
        assert!(DockerName::parse_canonical("busybox:1").is_err());
        assert!(DockerName::parse_canonical("docker.io/library/busybox:1").is_ok());
    }

    #[test]
    fn identities() {
        let d = format!("sha256:{}", "b".repeat(64));
        let tagged = img("reg.example/ns/app:v1");
        let by_digest = img(&format!("reg.example/ns/app@{d}"));
        use IdentityMatch::*;
        // matchRepoDigestOrExact
        assert!(MatchRepoDigestOrExact.matches(&tagged, "reg.example/ns/app:v1"));
        assert!(!MatchRepoDigestOrExact.matches(&tagged, "reg.example/ns/app:v2"));
        assert!(!MatchRepoDigestOrExact.matches(&tagged, "reg.example/ns/app"));
        assert!(MatchRepoDigestOrExact.matches(&by_digest, "reg.example/ns/app:anything"));
        assert!(!MatchRepoDigestOrExact.matches(&by_digest, "reg.example/ns/other:v1"));
        // matchExact
        assert!(MatchExact.matches(&tagged, "reg.example/ns/app:v1"));
        assert!(!MatchExact.matches(&by_digest, "reg.example/ns/app:v1"));
        assert!(MatchExact.matches(&by_digest, &format!("reg.example/ns/app@{d}")));
        // matchRepository
        assert!(MatchRepository.matches(&tagged, "reg.example/ns/app:other"));
        assert!(MatchRepository.matches(&tagged, "reg.example/ns/app"));
        assert!(!MatchRepository.matches(&tagged, "reg.example/ns/app2:v1"));
        // exactReference / exactRepository ignore the image's own reference
        let er = ExactReference("docker.io/library/busybox:1".into());
        assert!(er.matches(&tagged, "busybox:1"));
        assert!(!er.matches(&tagged, "busybox:2"));
        let erepo = ExactRepository("quay.io/team/app".into());
        assert!(erepo.matches(&tagged, "quay.io/team/app:x"));
        assert!(!erepo.matches(&tagged, "quay.io/team/app2:x"));
        // remapIdentity: the production mirror accepts the non-production signature
        let remap = RemapIdentity {
            prefix: "prod.example/ns".into(),
            signed_prefix: "nonprod.example/team".into(),
        };
        assert!(remap.matches(
            &img("prod.example/ns/app:v1"),
            "nonprod.example/team/app:v1"
        ));
        assert!(!remap.matches(&img("prod.example/ns/app:v1"), "prod.example/ns/app:v1"));
        assert!(!remap.matches(
            &img("prod.example/nsx/app:v1"),
            "nonprod.example/team/app:v1"
        ));
        // not matching the prefix: as matchRepoDigestOrExact
        assert!(remap.matches(&img("other.example/app:v1"), "other.example/app:v1"));
        // garbage never matches
        assert!(!MatchRepository.matches(&tagged, "Not A Reference"));
    }

    #[test]
    fn remap_prefixes() {
        for ok in [
            "docker.io",
            "reg:5000",
            "reg.example/ns",
            "docker.io/library",
            "[::1]:5000/x",
        ] {
            assert!(valid_remap_prefix(ok), "{ok}");
        }
        for bad in ["", "reg.example/", "reg.example/NS", "-bad", "a//b"] {
            assert!(!valid_remap_prefix(bad), "{bad}");
        }
    }
}
