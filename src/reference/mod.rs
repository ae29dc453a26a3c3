//! Image references and transports, parsed and normalised as skopeo does.
//!
//! `docker://[host[:port]/]path[:tag|@digest]`: a first component without `.` or `:` that is
//! not `localhost` is a path on `docker.io`; a single-component path on `docker.io` gets
//! `library/`; no tag and no digest means `:latest`. A tag and a digest together are refused,
//! as skopeo's docker transport refuses them.

use std::fmt;

use crate::error::{Error, Result};

mod digest;
pub use digest::{Digest, Hasher};

/// Transports skopeo knows; only `docker` is implemented by ferry.
const KNOWN_TRANSPORTS: &[&str] = &[
    "docker",
    "oci",
    "oci-archive",
    "dir",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
    "sif",
    "tarball",
];

/// The registry that unqualified names live on.
pub const DOCKER_HUB: &str = "docker.io";
/// The API host behind [`DOCKER_HUB`].
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Why a reference, or one part of it, is not valid. Each variant names the part; its text
/// says what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// A digest that is not `algorithm:hex` with a supported algorithm and length.
    #[error("{0}")]
    Digest(String),
    /// A registry host, IPv6 address or port.
    #[error("{0}")]
    Registry(String),
    /// A repository name.
    #[error("{0}")]
    Repository(String),
    /// A tag.
    #[error("{0}")]
    Tag(String),
}

/// Tag or digest of a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `:tag` (`latest` when none was given).
    Tag(String),
    /// `@algorithm:hex`.
    Digest(Digest),
}

impl Target {
    /// What goes in `/v2/<name>/manifests/<here>`.
    pub fn as_str(&self) -> &str {
        match self {
            Target::Tag(t) => t,
            Target::Digest(d) => d.as_str(),
        }
    }
}

/// A parsed, normalised `docker://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (and port) as normalised: `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path: `library/busybox`.
    pub repository: String,
    /// Tag or digest.
    pub target: Target,
}

impl ImageRef {
    /// Parse `docker://…` (the transport prefix is required, as on skopeo's command line).
    pub fn parse_transport(input: &str) -> Result<Self> {
        let err = |reason: String| Error::Reference {
            input: input.to_string(),
            reason,
        };
        let Some((transport, rest)) = input.split_once(':') else {
            return Err(err(
                "expected colon-separated transport:reference, e.g. docker://registry/repo:tag"
                    .into(),
            ));
        };
        if transport != "docker" {
            if KNOWN_TRANSPORTS.contains(&transport) {
                // The on-disk transports are refused here only where a verb needs a registry;
                // docker-daemon: and containers-storage: are refused by name, with what to use.
                crate::transport::LocalRef::parse(input)?;
                return Err(Error::Unsupported(format!(
                    "the {transport}: transport here (this command needs a docker:// reference)"
                )));
            }
            return Err(err(format!(
                "unknown transport {transport:?} (ferry supports docker://, oci:, oci-archive:, dir: and docker-archive:)"
            )));
        }
        let Some(rest) = rest.strip_prefix("//") else {
            return Err(err("a docker reference must start with docker://".into()));
        };
        Self::parse(rest).map_err(|e| match e {
            Error::Reference { reason, .. } => err(reason),
            other => other,
        })
    }

    /// Parse a reference without transport: `[host[:port]/]path[:tag|@digest]`.
    pub fn parse(input: &str) -> Result<Self> {
        let err = |reason: &str| Error::Reference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(err("empty reference"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("contains whitespace or control characters"));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if name.len() > 255 {
            return Err(err("repository name is longer than 255 characters"));
        }
        let (registry, repository) = split_domain(name).map_err(|r| err(&r.to_string()))?;
        validate_repository(&repository).map_err(|r| err(&r.to_string()))?;
        let target = match (tag, digest) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "references with both a tag and a digest are not supported (use one)",
                ));
            }
            (Some(t), None) => {
                validate_tag(t).map_err(|r| err(&r.to_string()))?;
                Target::Tag(t.to_string())
            }
            (None, Some(d)) => {
                Target::Digest(d.parse::<Digest>().map_err(|r| err(&r.to_string()))?)
            }
            (None, None) => Target::Tag("latest".to_string()),
        };
        Ok(ImageRef {
            registry,
            repository,
            target,
        })
    }

    /// `registry/repository` without tag or digest (skopeo's `Name`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        match &self.target {
            Target::Tag(t) => Some(t),
            Target::Digest(_) => None,
        }
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.target {
            Target::Digest(d) => Some(d),
            Target::Tag(_) => None,
        }
    }

    /// The same repository with another target.
    pub fn with_target(&self, target: Target) -> Self {
        ImageRef {
            target,
            ..self.clone()
        }
    }

    /// The host to talk to: `registry-1.docker.io` for `docker.io`, else the registry.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

/// A reference of any transport ferry has: an image in a registry or on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyRef {
    /// `docker://…`
    Docker(ImageRef),
    /// `oci:`, `oci-archive:`, `dir:`, `docker-archive:`
    Local(crate::transport::LocalRef),
}

impl AnyRef {
    /// Parse `transport:reference` for any transport ferry has.
    pub fn parse(input: &str) -> Result<Self> {
        match crate::transport::LocalRef::parse(input)? {
            Some(l) => Ok(AnyRef::Local(l)),
            None => ImageRef::parse_transport(input).map(AnyRef::Docker),
        }
    }
}

impl fmt::Display for AnyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyRef::Docker(r) => write!(f, "docker://{r}"),
            AnyRef::Local(l) => write!(f, "{l}"),
        }
    }
}

/// The host that serves the registry API for a registry name.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Tag(t) => write!(f, "{}/{}:{}", self.registry, self.repository, t),
            Target::Digest(d) => write!(f, "{}/{}@{}", self.registry, self.repository, d),
        }
    }
}

/// Split `name` into registry and repository, applying docker.io normalisation.
fn split_domain(name: &str) -> std::result::Result<(String, String), ReferenceError> {
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            validate_domain(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        domain
    };
    let rest = if domain == DOCKER_HUB && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest
    };
    Ok((domain, rest))
}

/// Check a registry `host[:port]` (or `[IPv6]:port`) against the reference grammar's domain.
pub fn validate_domain(domain: &str) -> std::result::Result<(), ReferenceError> {
    let bad = |why: String| ReferenceError::Registry(why);
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        // [IPv6]:port
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("unterminated IPv6 address in registry".into()))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad(format!("invalid IPv6 address {h:?} in registry")))?;
        match after.strip_prefix(':') {
            Some(p) => ("", Some(p)),
            None if after.is_empty() => ("", None),
            None => return Err(bad(format!("invalid registry {domain:?}"))),
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    for comp in host.split('.').filter(|_| !host.is_empty()) {
        let ok = !comp.is_empty()
            && comp.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !comp.starts_with('-')
            && !comp.ends_with('-');
        if !ok {
            return Err(bad(format!("invalid registry host {host:?}")));
        }
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("invalid registry port {p:?}")));
        }
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => {}
            _ => return Err(bad(format!("registry port {p} is out of range (1-65535)"))),
        }
    }
    Ok(())
}

fn validate_repository(repo: &str) -> std::result::Result<(), ReferenceError> {
    let bad = |why: String| ReferenceError::Repository(why);
    if repo.is_empty() {
        return Err(bad("empty repository name".into()));
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase".into()));
    }
    for comp in repo.split('/') {
        if !valid_path_component(comp) {
            return Err(bad(format!(
                "invalid repository path component {comp:?} (lowercase letters, digits and single separators . _ __ - only)"
            )));
        }
    }
    Ok(())
}

/// One repository path component, as the distribution spec's grammar has it:
/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A tag, as the distribution spec's grammar has it: `[\w][\w.-]{0,127}`.
pub fn validate_tag(tag: &str) -> std::result::Result<(), ReferenceError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = match chars.next() {
        Some(c) if word(c) => tag.len() <= 128 && chars.all(|c| word(c) || c == '.' || c == '-'),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag(format!(
            "invalid tag {tag:?} (1-128 characters of letters, digits, _ . -, not starting with . or -)"
        )))
    }
}

/// Parse a `docker://host/repo` repository reference for `list-tags` (no tag or digest allowed).
pub fn parse_repository(input: &str) -> Result<(String, String)> {
    let r = ImageRef::parse_transport(input)?;
    let explicit = {
        let rest = input.trim_start_matches("docker://");
        let last = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        rest[last..].contains(':') || rest.contains('@')
    };
    if explicit {
        return Err(Error::Reference {
            input: input.to_string(),
            reason: "a repository name is expected here, without tag or digest".into(),
        });
    }
    Ok((r.registry, r.repository))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImageRef {
        ImageRef::parse_transport(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalises_like_skopeo() {
        assert_eq!(
            p("docker://busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            p("docker://library/busybox:1").to_string(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            p("docker://index.docker.io/foo/bar").to_string(),
            "docker.io/foo/bar:latest"
        );
        assert_eq!(
            p("docker://localhost/foo").to_string(),
            "localhost/foo:latest"
        );
        assert_eq!(
            p("docker://localhost:5000/a/b/c:v1.2").to_string(),
            "localhost:5000/a/b/c:v1.2"
        );
        assert_eq!(p("docker://quay.io/x").to_string(), "quay.io/x:latest");
        assert_eq!(p("docker://user/repo").repository, "user/repo");
        let d = format!("docker://127.0.0.1:5000/ns/app@sha256:{}", "a".repeat(64));
        assert_eq!(p(&d).digest().unwrap().hex(), "a".repeat(64));
        assert_eq!(p("docker://docker.io/busybox").api_host(), DOCKER_HUB_API);
    }

    #[test]
    fn refuses_bad_references() {
        let h = "a".repeat(64);
        for bad in [
            "docker://",
            "docker:// busybox",
            "docker://busy box",
            "docker://example.com/Upper/case",
            "docker://example.com/app:tag@sha256:".to_string().as_str(),
            &format!("docker://example.com/app:tag@sha256:{h}"),
            "docker://example.com/app@md5:abc",
            "docker://example.com/app@sha256:abc",
            &format!("docker://example.com/app@sha256:{}", "A".repeat(64)),
            "docker://example.com:99999/app",
            "docker://example.com:0/app",
            "docker://example.com:/app",
            "docker://example.com/app:.bad",
            "docker://example.com/a//b",
            "docker://example.com/-a",
            "docker:busybox",
            "busybox",
            "foo://bar",
        ] {
            assert!(
                ImageRef::parse_transport(bad).is_err(),
                "{bad} should be refused"
            );
        }
        assert!(matches!(
            ImageRef::parse_transport("oci:/tmp/x"),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn path_components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "0x"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "A", "a.-b"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn repository_only() {
        assert_eq!(
            parse_repository("docker://127.0.0.1:5000/ns/app").unwrap(),
            ("127.0.0.1:5000".into(), "ns/app".into())
        );
        assert!(parse_repository("docker://127.0.0.1:5000/ns/app:v1").is_err());
    }
}
