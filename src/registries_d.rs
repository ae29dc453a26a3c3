//! `registries.d` (containers-registries.d(5)), as skopeo reads it: where simple signatures
//! of a registry's images are kept outside the registry (lookaside storage), and whether
//! sigstore signatures are read and written as `sha256-<hex>.sig` attachments.
//!
//! The directory is `--registries.d`, else `~/.config/containers/registries.d` when it
//! exists, else `/etc/containers/registries.d`. Every `*.yaml` file in it is read; a scope
//! (`default-docker`, or a `docker` namespace) defined twice is an error. A reference is
//! matched by its full name with tag or digest, then its repository and each parent
//! namespace up to the host, then wildcard domains (`*.example.com`), then `default-docker`:
//! for each setting, the first scope that sets it wins.
//!
//! Lookaside URLs: `lookaside` (or the older `sigstore`) to read, and to write when no
//! `lookaside-staging` (`sigstore-staging`) is set; without any, `/var/lib/containers/sigstore`
//! for root and `~/.local/share/containers/sigstore` otherwise. A signature of manifest
//! `sha256:<hex>` of repository `ns/app` is `<base>/ns/app@sha256=<hex>/signature-<n>`,
//! `n` counting from 1 to the first missing one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::reference::{Digest, ImageRef};

/// The system-wide directory.
pub const SYSTEM_DIR: &str = "/etc/containers/registries.d";
/// The per-user directory, under `$HOME`.
pub const USER_DIR: &str = ".config/containers/registries.d";
/// The default lookaside directory for root.
pub const ROOT_LOOKASIDE: &str = "/var/lib/containers/sigstore";
/// The default lookaside directory for other users, under `$HOME`.
pub const USER_LOOKASIDE: &str = ".local/share/containers/sigstore";
/// The most signatures read from one lookaside location (as skopeo).
pub const MAX_LOOKASIDE_SIGNATURES: usize = 128;

/// The settings of one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Namespace {
    /// Read (and write, without a staging location).
    #[serde(default)]
    pub lookaside: Option<String>,
    /// Write only.
    #[serde(default, rename = "lookaside-staging")]
    pub lookaside_staging: Option<String>,
    /// `lookaside`'s older name.
    #[serde(default)]
    pub sigstore: Option<String>,
    /// `lookaside-staging`'s older name.
    #[serde(default, rename = "sigstore-staging")]
    pub sigstore_staging: Option<String>,
    /// Read and write sigstore signatures as `sha256-<hex>.sig` attachments.
    #[serde(default, rename = "use-sigstore-attachments")]
    pub use_sigstore_attachments: Option<bool>,
}

impl Namespace {
    fn top_level(&self, write: bool) -> Option<&str> {
        fn nonempty(s: &Option<String>) -> Option<&str> {
            s.as_deref().filter(|s| !s.is_empty())
        }
        let staging = if write {
            nonempty(&self.lookaside_staging).or(nonempty(&self.sigstore_staging))
        } else {
            None
        };
        staging
            .or(nonempty(&self.lookaside))
            .or(nonempty(&self.sigstore))
    }
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default, rename = "default-docker")]
    default_docker: Option<Namespace>,
    #[serde(default)]
    docker: Option<BTreeMap<String, Namespace>>,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesD {
    /// `default-docker`.
    pub default_docker: Option<Namespace>,
    /// `docker`: scope → settings.
    pub docker: BTreeMap<String, Namespace>,
    /// `$HOME`, for the default lookaside of a user other than root.
    home: Option<PathBuf>,
    /// Whether the process runs as root.
    root: bool,
    /// Write simple signatures to the default lookaside directory when none is configured
    /// (skopeo does; ferry only when invoked as `skopeo` and signing: see
    /// [`RegistriesD::writing_to_default_lookaside`]).
    write_default: bool,
}

impl RegistriesD {
    /// Read the directory skopeo would read (see the module doc); `home` is `$HOME`.
    pub fn load(dir: Option<&Path>, home: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => match home.map(|h| h.join(USER_DIR)).filter(|p| p.exists()) {
                Some(user) => user,
                None => PathBuf::from(SYSTEM_DIR),
            },
        };
        let mut merged = RegistriesD {
            home: home.map(Path::to_path_buf),
            root: effective_uid_is_root(),
            ..RegistriesD::default()
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(merged),
            Err(e) => return Err(Error::io("reading registries.d directory", &dir, e)),
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        names.sort();
        let mut from: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in names {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("reading registries.d file", &path, e)),
            };
            merged.merge(&text, &path, &mut from)?;
        }
        Ok(merged)
    }

    /// Add one file's scopes (`from`: where each scope came from, for the duplicate error).
    fn merge(
        &mut self,
        text: &str,
        path: &Path,
        from: &mut BTreeMap<String, PathBuf>,
    ) -> Result<()> {
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str(text)
                .map_err(|e| Error::usage(format!("parsing {}: {e}", path.display())))?
        };
        let dup = |what: String, first: &Path| {
            Error::usage(format!(
                "Error parsing signature storage configuration: {what} defined both in {:?} and {:?}",
                first.display().to_string(),
                path.display().to_string()
            ))
        };
        if let Some(d) = file.default_docker {
            if let Some(first) = from.get("\0default") {
                return Err(dup("\"default-docker\"".into(), first));
            }
            from.insert("\0default".into(), path.to_path_buf());
            self.default_docker = Some(d);
        }
        for (scope, ns) in file.docker.unwrap_or_default() {
            if let Some(first) = from.get(&scope) {
                return Err(dup(format!("\"docker\" namespace {scope:?}"), first));
            }
            from.insert(scope.clone(), path.to_path_buf());
            self.docker.insert(scope, ns);
        }
        Ok(())
    }

    /// The configuration from a YAML text (tests).
    pub fn parse(text: &str) -> Result<Self> {
        let mut c = RegistriesD::default();
        c.merge(text, Path::new("registries.d"), &mut BTreeMap::new())?;
        Ok(c)
    }

    /// The scopes a reference is looked up in, most specific first, then `default-docker`.
    fn scopes<'a>(&'a self, image: &ImageRef) -> impl Iterator<Item = &'a Namespace> {
        let mut names = vec![image.to_string()];
        let mut name = image.name();
        loop {
            names.push(name.clone());
            match name.rfind('/') {
                Some(i) => name.truncate(i),
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or("").to_string();
        while let Some(i) = host.find('.') {
            host = host[i + 1..].to_string();
            names.push(format!("*.{host}"));
        }
        names
            .into_iter()
            .filter_map(|n| self.docker.get(&n))
            .chain(self.default_docker.iter())
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// Whether sigstore signatures of `image` are read and written as attachments.
    pub fn use_sigstore_attachments(&self, image: &ImageRef) -> bool {
        self.scopes(image)
            .find_map(|ns| ns.use_sigstore_attachments)
            .unwrap_or(false)
    }

    /// Write to the default lookaside directory when no scope names a location, as skopeo
    /// does (see [`configured_lookaside`](Self::configured_lookaside)).
    pub fn writing_to_default_lookaside(mut self) -> Self {
        self.write_default = true;
        self
    }

    /// The lookaside base of `image`'s repository configured for it, to read or to write;
    /// `None` when no scope names one (to write: unless
    /// [`writing_to_default_lookaside`](Self::writing_to_default_lookaside)).
    pub fn configured_lookaside(&self, image: &ImageRef, write: bool) -> Result<Option<Url>> {
        if !(write && self.write_default)
            && self.scopes(image).all(|ns| ns.top_level(write).is_none())
        {
            return Ok(None);
        }
        self.lookaside(image, write).map(Some)
    }

    /// The lookaside base of `image`'s repository, to read or to write (the default
    /// directory when none is configured).
    pub fn lookaside(&self, image: &ImageRef, write: bool) -> Result<Url> {
        let top = self.scopes(image).find_map(|ns| ns.top_level(write));
        let mut base = match top {
            Some(t) => Url::parse(t)
                .map_err(|e| Error::usage(format!("Invalid signature storage URL {t}: {e}")))?,
            None => {
                let dir = match (&self.home, self.root) {
                    (Some(h), false) => h.join(USER_LOOKASIDE),
                    _ => PathBuf::from(ROOT_LOOKASIDE),
                };
                Url::from_file_path(&dir).map_err(|()| {
                    Error::usage(format!("invalid lookaside directory {}", dir.display()))
                })?
            }
        };
        let path = format!("{}/{}", base.path().trim_end_matches('/'), image.repository);
        base.set_path(&path);
        Ok(base)
    }
}

/// Whether the default lookaside is root's: the effective user is root, unless
/// `_CONTAINERS_ROOTLESS_UID` names another (as containers/image's `GetRootlessEUID`).
fn effective_uid_is_root() -> bool {
    match std::env::var("_CONTAINERS_ROOTLESS_UID") {
        Ok(uid) if !uid.is_empty() => uid.trim() == "0",
        _ => rustix::process::geteuid().is_root(),
    }
}

/// The URL of signature `index` (0-based) of `digest` under a lookaside base.
pub fn signature_url(base: &Url, digest: &Digest, index: usize) -> Url {
    let mut u = base.clone();
    let path = format!(
        "{}@{}={}/signature-{}",
        base.path(),
        digest.algorithm(),
        digest.hex(),
        index + 1
    );
    u.set_path(&path);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn scopes_as_containers_image_matches_them() {
        let c = RegistriesD::parse(
            r#"
default-docker:
  lookaside: file:///var/default
docker:
  r.example.com:5000/ns:
    lookaside: https://sigs.example.com/ns
    lookaside-staging: file:///srv/staging
    use-sigstore-attachments: true
  r.example.com:5000/ns/app:v1:
    use-sigstore-attachments: false
  "*.example.com":
    sigstore: file:///wild
"#,
        )
        .unwrap();
        let app = img("r.example.com:5000/ns/app:v2");
        assert!(c.use_sigstore_attachments(&app));
        assert!(!c.use_sigstore_attachments(&img("r.example.com:5000/ns/app:v1")));
        assert!(!c.use_sigstore_attachments(&img("other.io/x:1")));
        assert_eq!(
            c.lookaside(&app, false).unwrap().as_str(),
            "https://sigs.example.com/ns/ns/app"
        );
        assert_eq!(
            c.lookaside(&app, true).unwrap().as_str(),
            "file:///srv/staging/ns/app"
        );
        assert_eq!(
            c.lookaside(&img("q.example.com/a/b:1"), true)
                .unwrap()
                .as_str(),
            "file:///wild/a/b"
        );
        assert_eq!(
            c.lookaside(&img("other.io/x:1"), false).unwrap().as_str(),
            "file:///var/default/x"
        );
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(
            signature_url(&c.lookaside(&app, true).unwrap(), &d, 0).as_str(),
            format!(
                "file:///srv/staging/ns/app@sha256={}/signature-1",
                "a".repeat(64)
            )
        );
    }

    #[test]
    fn duplicates_and_garbage_are_errors() {
        let mut c = RegistriesD::default();
        let mut from = BTreeMap::new();
        c.merge("docker:\n  a.io: {}\n", Path::new("1.yaml"), &mut from)
            .unwrap();
        assert!(
            c.merge("docker:\n  a.io: {}\n", Path::new("2.yaml"), &mut from)
                .is_err()
        );
        assert!(RegistriesD::parse("docker: [1]").is_err());
        assert_eq!(RegistriesD::parse("").unwrap(), RegistriesD::default());
    }
}
