//! The trust policy (containers-policy.json(5)), read as skopeo reads it.
//!
//! The file: `--policy FILE`, else `$CONTAINERS_POLICY_JSON`, else
//! `~/.config/containers/policy.json`, else `/etc/containers/policy.json`; none is an error
//! unless `--insecure-policy`. For a `docker://` image the most specific scope of the `docker`
//! transport applies (`host/ns/repo:tag` or `@digest`, `host/ns/repo`, `host/ns`, `host`,
//! `*.domain` wildcards, then the transport's `""`), else `default`. Every requirement that
//! applies must be `insecureAcceptAnything`: `reject` refuses the image, and signature
//! requirements (`signedBy`, `sigstoreSigned`) are refused as not supported yet — never
//! skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::reference::ImageRef;

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
    doc: Value,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("reading trust policy", path, e))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            Error::Policy(format!(
                "trust policy {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        if !doc.get("default").is_some_and(Value::is_array) {
            return Err(Error::Policy(format!(
                "trust policy {} has no \"default\" list of requirements",
                path.display()
            )));
        }
        Ok(Policy {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// Parse a policy from text (tests).
    pub fn parse(text: &str) -> Result<Self> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| Error::Policy(format!("invalid policy: {e}")))?;
        Ok(Policy {
            path: PathBuf::from("<inline>"),
            doc,
        })
    }

    /// The requirements that apply to a `docker://` image, and the scope that matched.
    fn requirements(&self, image: &ImageRef) -> (String, &Value) {
        if let Some(scopes) = self
            .doc
            .pointer("/transports/docker")
            .and_then(Value::as_object)
        {
            for scope in candidate_scopes(image) {
                if let Some(reqs) = scopes.get(&scope) {
                    return (format!("docker scope {scope:?}"), reqs);
                }
            }
            if let Some(reqs) = scopes.get("") {
                return ("docker transport default".into(), reqs);
            }
        }
        (
            "default".into(),
            self.doc.get("default").unwrap_or(&Value::Null),
        )
    }

    /// Whether the policy lets ferry copy `image` without verifying signatures.
    pub fn check(&self, image: &ImageRef) -> Result<()> {
        let (scope, reqs) = self.requirements(image);
        let list = reqs.as_array().ok_or_else(|| {
            Error::Policy(format!(
                "trust policy {}: requirements for {scope} are not a list",
                self.path.display()
            ))
        })?;
        if list.is_empty() {
            return Err(Error::Policy(format!(
                "trust policy {}: the requirements for {scope} are empty, which is invalid",
                self.path.display()
            )));
        }
        for r in list {
            match r.get("type").and_then(Value::as_str) {
                Some("insecureAcceptAnything") => {}
                Some("reject") => {
                    return Err(Error::Policy(format!(
                        "source image docker://{image} is rejected by the trust policy {} ({scope})",
                        self.path.display()
                    )));
                }
                Some(t @ ("signedBy" | "sigstoreSigned" | "signedBaseLayer")) => {
                    return Err(Error::Policy(format!(
                        "the trust policy {} requires signatures ({t}) for docker://{image} ({scope}); verifying signatures is not supported yet, so ferry refuses to copy (use a policy with insecureAcceptAnything for this scope, or --insecure-policy)",
                        self.path.display()
                    )));
                }
                Some(other) => {
                    return Err(Error::Policy(format!(
                        "trust policy {}: unknown requirement type {other:?} for {scope}",
                        self.path.display()
                    )));
                }
                None => {
                    return Err(Error::Policy(format!(
                        "trust policy {}: a requirement for {scope} has no type",
                        self.path.display()
                    )));
                }
            }
        }
        Ok(())
    }
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
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn most_specific_scope_wins() {
        let p = Policy::parse(
            r#"{"default":[{"type":"reject"}],
                "transports":{"docker":{
                  "reg.example.com/team":[{"type":"insecureAcceptAnything"}],
                  "reg.example.com/team/signed":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}],
                  "*.corp.example":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
        .unwrap();
        assert!(p.check(&img("reg.example.com/team/app:1")).is_ok());
        let e = p
            .check(&img("reg.example.com/team/signed:1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("signedBy") && e.contains("not supported yet"),
            "{e}"
        );
        assert!(
            p.check(&img("other.io/x"))
                .unwrap_err()
                .to_string()
                .contains("rejected")
        );
        assert!(p.check(&img("a.b.corp.example/x")).is_ok());
    }

    #[test]
    fn transport_default_then_global_default() {
        let p = Policy::parse(
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"":[{"type":"reject"}]}}}"#,
        )
        .unwrap();
        assert!(p.check(&img("r.io/x")).is_err());
        let p = Policy::parse(r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
        assert!(p.check(&img("r.io/x")).is_ok());
    }
}
