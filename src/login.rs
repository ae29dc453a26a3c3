//! The primary auth file, read, changed and written back for `login` and `logout`.
//!
//! The file is containers-auth.json(5): `{"auths": {"registry[/repo]": {"auth": base64(user:pass)}}}`.
//! Every other entry, every other field of an entry and every other top-level key
//! (`credHelpers`, …) is kept as it was. The file is written as skopeo writes it (Go's
//! `json.MarshalIndent` with a tab, keys sorted), to a temporary file in the same directory
//! that is renamed over the old one, so a reader never sees half a file; its mode is 0600, and
//! a missing directory is created with mode 0700.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::credentials::encode_auth;
use crate::error::{Error, Result};
use crate::redact::Secret;

/// An auth file loaded for changing.
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl AuthFile {
    /// Load `path`; a missing or empty file is an empty document.
    pub fn load(path: &Path) -> Result<AuthFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("reading auth file", path, e)),
        };
        let doc = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(Error::usage(format!(
                        "auth file {} is not a JSON object",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(Error::usage(format!(
                        "auth file {} is not valid JSON: {e}",
                        path.display()
                    )));
                }
            }
        };
        if doc
            .get("auths")
            .is_some_and(|a| !a.is_object() && !a.is_null())
        {
            return Err(Error::usage(format!(
                "auth file {}: \"auths\" is not an object",
                path.display()
            )));
        }
        Ok(AuthFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let slot = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot.as_object_mut().expect("just made an object")
    }

    /// Store `username`/`password` under `key`, keeping the entry's other fields.
    pub fn set(&mut self, key: &str, username: &str, password: &Secret) {
        let entry = self
            .auths_mut()
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let obj = entry.as_object_mut().expect("just made an object");
        obj.insert(
            "auth".into(),
            Value::String(encode_auth(username, password)),
        );
        // A stale identity token would be used instead of the new password by some clients.
        obj.remove("identitytoken");
    }

    /// Remove the entry for `key`; whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            Some(a) => a.remove(key).is_some(),
            None => false,
        }
    }

    /// Remove every entry of `auths` (other top-level keys stay).
    pub fn remove_all(&mut self) {
        self.doc.insert("auths".into(), Value::Object(Map::new()));
    }

    /// The file's text, as skopeo writes it.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let f = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
        serde::Serialize::serialize(&self.doc, &mut ser).expect("serialising to memory");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Write the file atomically ([`crate::fsutil::write_atomic`]: a temporary file in the same
    /// directory, then a rename), mode 0600; a missing directory is created with mode 0700.
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        let dir = crate::fsutil::parent_dir(&self.path);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("creating the directory of auth file", &dir, e))?;
        crate::fsutil::write_atomic(
            &self.path,
            self.render().as_bytes(),
            crate::fsutil::Access::Private,
            "writing auth file",
        )
    }
}

/// The auth-file key for what the user typed after `login`/`logout`: `registry[/repo]`, with a
/// `http(s)://` prefix and trailing slashes removed. Returns `(key, registry)`.
pub fn credentials_key(input: &str) -> Result<(String, String)> {
    let trimmed = input
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if trimmed.starts_with("docker://") || trimmed.contains("://") {
        return Err(Error::usage(format!(
            "{input:?}: give a registry (host[:port][/path]), not a transport reference"
        )));
    }
    if trimmed.is_empty() {
        return Err(Error::usage("a registry is required"));
    }
    let (host, path) = match trimmed.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (trimmed, None),
    };
    let registry = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    // Validate through the reference parser: host, and path components if any.
    let probe = match path {
        Some(p) => format!("{registry}/{p}"),
        None => format!("{registry}/probe"),
    };
    let parsed = crate::reference::ImageRef::parse(&probe)
        .map_err(|e| Error::usage(format!("{input:?} is not a registry or repository: {e}")))?;
    if parsed.registry != registry || probe.contains(['@']) || path.is_some_and(|p| p.contains(':'))
    {
        return Err(Error::usage(format!(
            "{input:?} is not a registry or repository (host[:port][/path], no tag or digest)"
        )));
    }
    let key = match path {
        Some(p) => format!("{registry}/{p}"),
        None => registry.to_string(),
    };
    Ok((key, registry.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            credentials_key("r.io:5000").unwrap(),
            ("r.io:5000".into(), "r.io:5000".into())
        );
        assert_eq!(
            credentials_key("https://r.io/ns/app/").unwrap(),
            ("r.io/ns/app".into(), "r.io".into())
        );
        assert_eq!(credentials_key("index.docker.io").unwrap().0, "docker.io");
        for bad in [
            "",
            "docker://r.io",
            "r.io/app:v1",
            "r.io/app@sha256:x",
            "r.io/UP",
        ] {
            assert!(credentials_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn read_modify_write_keeps_everything_else() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        let mut f = AuthFile::load(&path).unwrap();
        f.set("r.io", "alice", &Secret::new("pw"));
        f.save().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(
            &path,
            r#"{"auths":{"other.io":{"auth":"eDp5","email":"x"},"r.io":{"auth":"old","identitytoken":"t"}},"credHelpers":{"gcr.io":"gcloud"},"unknown":[1]}"#,
        )
        .unwrap();
        let mut f = AuthFile::load(&path).unwrap();
        f.set("r.io", "bob", &Secret::new("s:3"));
        f.set("new.io/ns", "carol", &Secret::new("x"));
        f.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["auths"]["other.io"]["email"], "x");
        assert_eq!(
            v["auths"]["r.io"]["auth"],
            encode_auth("bob", &Secret::new("s:3"))
        );
        assert!(v["auths"]["r.io"].get("identitytoken").is_none());
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["unknown"][0], 1);
        assert!(
            text.starts_with("{\n\t\"auths\": {\n\t\t\"new.io/ns\""),
            "{text}"
        );
        assert!(!text.ends_with('\n'));
        let mut f = AuthFile::load(&path).unwrap();
        assert!(f.remove("r.io"));
        assert!(!f.remove("r.io"));
        f.remove_all();
        f.save().unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["auths"], serde_json::json!({}));
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        std::fs::write(&path, "[]").unwrap();
        assert!(AuthFile::load(&path).is_err());
    }
}
