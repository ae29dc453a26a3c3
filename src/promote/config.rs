//! The promotion config: what a promotion may touch, pinned by the production side.
//!
//! The production templates put `promotion.yaml` in a ConfigMap that the agent pod mounts at
//! `/etc/ferry` ([`DEFAULT_CONFIG`]); `ferry promote --config FILE` points elsewhere (a flag
//! only: build parameters, which the webhook sets, reach `sh` steps as environment variables,
//! so no environment variable may move it).
//!
//! ```yaml
//! sourceRegistries: [nonprod-registry.apps.example.com]                   # NON_PROD_REGISTRY
//! destinationRegistries: [image-registry.openshift-image-registry.svc:5000] # PROD_REGISTRY
//! sourceProjects: [myapp-nonprod]                                          # NON_PROD_PROJECT_NAME
//! destinationProjects: [myapp-prod]                                        # PROD_PROJECT_NAME
//! ```
//!
//! Every key is required and every list non-empty: the allowed values, the first being the
//! default when the pipeline gives none. Unknown keys are an error; registries must be
//! `host[:port]` (no scheme, no path), projects Kubernetes namespace names. A missing file is an
//! error: secure by default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Where the production templates mount the config.
pub const DEFAULT_CONFIG: &str = "/etc/ferry/promotion.yaml";

/// The four things a promotion touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinned {
    /// `sourceRegistries`: `NON_PROD_REGISTRY`.
    SourceRegistry,
    /// `destinationRegistries`: `PROD_REGISTRY`.
    DestinationRegistry,
    /// `sourceProjects`: `NON_PROD_PROJECT_NAME`.
    SourceProject,
    /// `destinationProjects`: `PROD_PROJECT_NAME`.
    DestinationProject,
}

impl Pinned {
    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Pinned::SourceRegistry => "sourceRegistries",
            Pinned::DestinationRegistry => "destinationRegistries",
            Pinned::SourceProject => "sourceProjects",
            Pinned::DestinationProject => "destinationProjects",
        }
    }

    fn is_registry(self) -> bool {
        matches!(self, Pinned::SourceRegistry | Pinned::DestinationRegistry)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Raw {
    source_registries: Option<Vec<String>>,
    destination_registries: Option<Vec<String>>,
    source_projects: Option<Vec<String>>,
    destination_projects: Option<Vec<String>>,
}

/// A loaded, validated promotion config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionConfig {
    /// The file it came from (named in every refusal).
    pub path: PathBuf,
    source_registries: Vec<String>,
    destination_registries: Vec<String>,
    source_projects: Vec<String>,
    destination_projects: Vec<String>,
}

impl PromotionConfig {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::usage(format!(
                    "promote: the promotion config {} does not exist: the production side must install it (promotion.yaml in the ConfigMap of templates/prod-pipeline.yaml, which the pod template of templates/agent.yaml mounts at /etc/ferry; see docs/promote.md), or name it with --config FILE",
                    path.display()
                ))
            } else {
                Error::io("promote: reading the promotion config", path, e)
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate the text of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |why: String| {
            Error::usage(format!(
                "promote: promotion config {}: {why}",
                path.display()
            ))
        };
        let raw: Raw = serde_yaml::from_str(text).map_err(|e| bad(one_line(&e.to_string())))?;
        let take = |v: Option<Vec<String>>, which: Pinned| -> Result<Vec<String>> {
            let v = v.ok_or_else(|| bad(format!("{} is missing", which.key())))?;
            if v.is_empty() {
                return Err(bad(format!("{} is empty", which.key())));
            }
            for value in &v {
                let check = if which.is_registry() {
                    check_registry(value)
                } else {
                    check_project(value)
                };
                check.map_err(|why| bad(format!("{}: {value:?} {why}", which.key())))?;
            }
            Ok(v)
        };
        Ok(PromotionConfig {
            path: path.to_path_buf(),
            source_registries: take(raw.source_registries, Pinned::SourceRegistry)?,
            destination_registries: take(raw.destination_registries, Pinned::DestinationRegistry)?,
            source_projects: take(raw.source_projects, Pinned::SourceProject)?,
            destination_projects: take(raw.destination_projects, Pinned::DestinationProject)?,
        })
    }

    /// The allowed values (never empty; the first is the default).
    pub fn allowed(&self, which: Pinned) -> &[String] {
        match which {
            Pinned::SourceRegistry => &self.source_registries,
            Pinned::DestinationRegistry => &self.destination_registries,
            Pinned::SourceProject => &self.source_projects,
            Pinned::DestinationProject => &self.destination_projects,
        }
    }

    /// `value` if the config allows it, the default when the pipeline gave none; otherwise the
    /// refusal, naming the value, where it came from (`input`) and the config file.
    pub fn pick(&self, which: Pinned, value: Option<&str>, input: &str) -> Result<String> {
        let allowed = self.allowed(which);
        match value {
            None => Ok(allowed[0].clone()),
            Some(v) if allowed.iter().any(|a| a == v) => Ok(v.to_string()),
            Some(v) => Err(Error::Refused(format!(
                "promote: {input} {v:?} is not allowed: {} of the promotion config {} allows only {}",
                which.key(),
                self.path.display(),
                allowed.join(", ")
            ))),
        }
    }
}

/// A registry as `host[:port]`: no scheme, no path, a host that references recognise as one.
pub fn check_registry(v: &str) -> std::result::Result<(), String> {
    if v.contains("://") {
        return Err("must be a registry host[:port], not a URL".into());
    }
    if v.contains('/') {
        return Err("must be a registry host[:port] without a path".into());
    }
    crate::reference::validate_domain(v).map_err(|e| e.to_string())?;
    let host = v.rsplit_once(':').map_or(v, |(h, _)| h);
    if !(v.contains(['.', ':']) || host == "localhost") {
        return Err(
            "is not a registry host: it needs a dot or a port (registry.example.com, host:5000) or must be localhost"
                .into(),
        );
    }
    Ok(())
}

/// A project: a Kubernetes namespace name (RFC 1123 label: lower-case letters, digits and
/// `-`, starting and ending with a letter or digit, at most 63 characters).
pub fn check_project(v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("is not a project name (a Kubernetes namespace: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)".into())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
# comment
sourceRegistries: [nonprod-registry.apps.example.com]
destinationRegistries: [image-registry.openshift-image-registry.svc:5000, localhost:5000]
sourceProjects: [myapp-nonprod, other-dev]
destinationProjects: [myapp-prod]
";

    fn parse(text: &str) -> Result<PromotionConfig> {
        PromotionConfig::parse(text, Path::new("/etc/ferry/promotion.yaml"))
    }

    #[test]
    fn parses_and_picks() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.pick(Pinned::DestinationRegistry, None, "PROD_REGISTRY")
                .unwrap(),
            "image-registry.openshift-image-registry.svc:5000"
        );
        assert_eq!(
            c.pick(Pinned::SourceProject, Some("other-dev"), "X")
                .unwrap(),
            "other-dev"
        );
        let e = c
            .pick(
                Pinned::DestinationRegistry,
                Some("evil.example.com"),
                "PROD_REGISTRY (--prod-registry)",
            )
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let e = e.to_string();
        assert!(
            e.contains("PROD_REGISTRY (--prod-registry) \"evil.example.com\" is not allowed")
                && e.contains(
                    "destinationRegistries of the promotion config /etc/ferry/promotion.yaml"
                ),
            "{e}"
        );
        // Exact values only: no case folding, no trailing dot, no prefix match.
        for near in [
            "Image-registry.openshift-image-registry.svc:5000",
            "image-registry.openshift-image-registry.svc:5000.",
            "image-registry.openshift-image-registry.svc",
        ] {
            assert!(
                c.pick(Pinned::DestinationRegistry, Some(near), "P")
                    .is_err()
            );
        }
    }

    #[test]
    fn refuses_bad_configs() {
        for (text, needle) in [
            (
                "sourceRegistries: [a.io]\n",
                "destinationRegistries is missing",
            ),
            (
                "sourceRegistries: [a.io]\ndestinationRegistries: []\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "destinationRegistries is empty",
            ),
            (&format!("{GOOD}extra: 1\n"), "unknown field `extra`"),
            (
                "sourceRegistries: [https://a.io]\ndestinationRegistries: [b.io]\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "not a URL",
            ),
            (
                "sourceRegistries: [registry]\ndestinationRegistries: [b.io]\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "needs a dot or a port",
            ),
            (
                "sourceRegistries: [a.io:99999]\ndestinationRegistries: [b.io]\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "out of range",
            ),
            (
                "sourceRegistries: [a.io]\ndestinationRegistries: [b.io/x]\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "without a path",
            ),
            (
                "sourceRegistries: [a.io]\ndestinationRegistries: [b.io]\nsourceProjects: [Team_A]\ndestinationProjects: [b]\n",
                "is not a project name",
            ),
            (
                "sourceRegistries: a.io\ndestinationRegistries: [b.io]\nsourceProjects: [a]\ndestinationProjects: [b]\n",
                "sourceRegistries",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with("promote: promotion config /etc/ferry/promotion.yaml: ")
                    && e.contains(needle),
                "{text:?}: {e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_missing_file_says_what_to_install() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("promotion.yaml");
        let e = PromotionConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string())
                && e.contains("templates/prod-pipeline.yaml")
                && e.contains("docs/promote.md"),
            "{e}"
        );
    }
}
