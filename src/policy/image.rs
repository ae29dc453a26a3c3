//! The image a policy is evaluated for, as containers/image's `ImageReference` presents it to
//! the policy: a transport, a scope identity and its namespaces (most specific first), and the
//! Docker reference `signedIdentity` compares signatures with — when the transport has one.
//!
//! | transport | identity | namespaces | Docker reference |
//! |---|---|---|---|
//! | `docker` | `host/repo:tag` or `@digest` | `host/repo`, `host/ns`, `host`, `*.domain`… | the reference |
//! | `dir` | the absolute path, symlinks resolved | its parent directories (not `/`) | none |
//! | `oci`, `oci-archive` | `PATH:NAME` (or `PATH`) | `PATH` (with a name), its parents | none |
//! | `docker-archive` | none (only the transport's `""` scope applies) | none | `NAME:TAG` if given |

use std::path::Path;

use crate::reference::{AnyRef, ImageRef};
use crate::transport::{LocalRef, Selector, Transport};

/// An image as the trust policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyImage {
    /// The transport's name (`docker`, `dir`, `oci`, …): which `transports` entry applies.
    pub transport: &'static str,
    /// Scopes from the most specific (the identity) to the least; the transport's `""` and
    /// the global `default` follow them.
    pub scopes: Vec<String>,
    /// The Docker reference signatures are compared with (`signedIdentity`), if any.
    pub docker: Option<ImageRef>,
    /// How messages name it (`docker://host/repo:tag`, `dir:/path`).
    pub display: String,
}

impl PolicyImage {
    /// A `docker://` image.
    pub fn docker(image: &ImageRef) -> Self {
        PolicyImage {
            transport: "docker",
            scopes: docker_scopes(image),
            docker: Some(image.clone()),
            display: format!("docker://{image}"),
        }
    }

    /// Any image ferry reads.
    pub fn of(r: &AnyRef) -> Self {
        match r {
            AnyRef::Docker(d) => Self::docker(d),
            AnyRef::Local(l) => Self::local(l),
        }
    }

    /// An image of an on-disk transport.
    pub fn local(r: &LocalRef) -> Self {
        let path = resolve(&r.path);
        let mut scopes = vec![];
        let mut docker = None;
        match (r.transport, &r.selector) {
            (Transport::DockerArchive, sel) => {
                if let Selector::Tag(t) = sel {
                    docker = Some(t.clone());
                }
            }
            (Transport::Dir, _) => {
                scopes.push(path.clone());
                scopes.extend(parents(&path));
            }
            (Transport::Oci | Transport::OciArchive, Selector::Name(n)) => {
                scopes.push(format!("{path}:{n}"));
                scopes.push(path.clone());
                scopes.extend(parents(&path));
            }
            (Transport::Oci | Transport::OciArchive, _) => {
                scopes.push(path.clone());
                scopes.extend(parents(&path));
            }
        }
        PolicyImage {
            transport: r.transport.name(),
            scopes,
            docker,
            display: r.to_string(),
        }
    }
}

/// The path made absolute with symlinks resolved (as containers/image's
/// `ResolvePathToFullyExplicit`; a path that does not exist resolves through its parent).
fn resolve(p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Ok(c) = std::fs::canonicalize(&abs) {
        return c.display().to_string();
    }
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|c| c.join(name))
            .unwrap_or(abs.clone())
            .display()
            .to_string(),
        _ => abs.display().to_string(),
    }
}

/// `/a/b/c` → `/a/b`, `/a` (never `/`).
fn parents(path: &str) -> Vec<String> {
    let mut out = vec![];
    let mut p = path;
    while let Some(i) = p.rfind('/').filter(|&i| i > 0) {
        p = &p[..i];
        out.push(p.to_string());
    }
    out
}

/// Scopes from most to least specific, as containers-policy.json(5) lists them for docker.
fn docker_scopes(image: &ImageRef) -> Vec<String> {
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
mod tests {
    use super::*;

    #[test]
    fn local_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let img = base.join("img");
        std::fs::create_dir(&img).unwrap();
        let r = AnyRef::parse(&format!("dir:{}", img.display())).unwrap();
        let p = PolicyImage::of(&r);
        assert_eq!(p.transport, "dir");
        assert_eq!(p.scopes[0], img.display().to_string());
        assert_eq!(p.scopes[1], base.display().to_string());
        assert!(p.scopes.iter().all(|s| s != "/"));
        assert_eq!(p.docker, None);
        let r = AnyRef::parse(&format!("oci:{}:app", img.display())).unwrap();
        let p = PolicyImage::of(&r);
        assert_eq!(p.transport, "oci");
        assert_eq!(
            &p.scopes[..2],
            &[format!("{}:app", img.display()), img.display().to_string()]
        );
        let r = AnyRef::parse(&format!("docker-archive:{}/a.tar:x/y:1", base.display())).unwrap();
        let p = PolicyImage::of(&r);
        assert!(p.scopes.is_empty());
        assert_eq!(p.docker.unwrap().to_string(), "docker.io/x/y:1");
        assert_eq!(parents("/a/b/c"), vec!["/a/b", "/a"]);
    }
}
