//! Parsing containers-policy.json(5) as strictly as containers/image
//! (`signature/policy_config.go`, `policy_config_sigstore.go`): unknown or duplicated keys,
//! empty requirement lists, several key sources where one is allowed, or an invalid
//! `signedIdentity` make the whole file invalid.

use std::path::PathBuf;

use super::identity::{DockerName, IdentityMatch, valid_remap_prefix};
use crate::signing::json::{Strict, exact_fields, field};

/// Scopes of one transport and their requirements, in file order.
pub type Scopes = Vec<(String, Vec<Requirement>)>;

/// A policy file's contents.
#[derive(Debug, Clone)]
pub struct PolicyDoc {
    /// `default`.
    pub default: Vec<Requirement>,
    /// `transports`: transport name → scope → requirements, in file order.
    pub transports: Vec<(String, Scopes)>,
}

/// Where key material comes from (`…Path`, `…Paths`, `…Data`, `…Datas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// One file.
    Path(PathBuf),
    /// Several files.
    Paths(Vec<PathBuf>),
    /// Inline (base64 in the JSON).
    Data(Vec<u8>),
    /// Several inline values.
    Datas(Vec<Vec<u8>>),
}

impl KeySource {
    /// The contents of every source (files are read now, as containers/image reads them at
    /// each check).
    pub fn load(&self) -> Result<Vec<Vec<u8>>, String> {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
        match self {
            KeySource::Path(p) => Ok(vec![read(p)?]),
            KeySource::Paths(ps) => ps.iter().map(read).collect(),
            KeySource::Data(d) => Ok(vec![d.clone()]),
            KeySource::Datas(d) => Ok(d.clone()),
        }
    }
}

/// The `fulcio` section of `sigstoreSigned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulcioConfig {
    /// `caPath` or `caData`.
    pub ca: KeySource,
    /// `oidcIssuer`.
    pub oidc_issuer: String,
    /// `subjectEmail`.
    pub subject_email: String,
}

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `insecureAcceptAnything`.
    InsecureAcceptAnything,
    /// `reject`.
    Reject,
    /// `signedBy`: a simple signature by one of the keys.
    SignedBy {
        /// `keyType` (only `GPGKeys` is implemented, as in containers/image).
        key_type: String,
        /// The keys.
        keys: KeySource,
        /// `signedIdentity`.
        identity: IdentityMatch,
    },
    /// `signedBaseLayer` (never satisfied, as in containers/image).
    SignedBaseLayer,
    /// `sigstoreSigned`: a sigstore signature by one of the keys or a Fulcio certificate.
    SigstoreSigned {
        /// `keyPath`/`keyPaths`/`keyData`/`keyDatas` (exclusive with `fulcio`).
        keys: Option<KeySource>,
        /// `fulcio`.
        fulcio: Option<FulcioConfig>,
        /// `rekorPublicKey…`: the Rekor keys, when a SET is required.
        rekor: Option<KeySource>,
        /// `signedIdentity`.
        identity: IdentityMatch,
    },
}

impl Requirement {
    /// The policy's name of the requirement.
    pub fn name(&self) -> &'static str {
        match self {
            Requirement::InsecureAcceptAnything => "insecureAcceptAnything",
            Requirement::Reject => "reject",
            Requirement::SignedBy { .. } => "signedBy",
            Requirement::SignedBaseLayer => "signedBaseLayer",
            Requirement::SigstoreSigned { .. } => "sigstoreSigned",
        }
    }
}

/// Parse a policy file's bytes.
pub fn parse(bytes: &[u8]) -> Result<PolicyDoc, String> {
    let doc = Strict::parse(bytes)?;
    let fields = doc.object("policy")?;
    for (k, _) in fields {
        if k != "default" && k != "transports" {
            return Err(format!("Unknown key {k:?}"));
        }
    }
    let default = match field(fields, "default") {
        Some(Strict::Null) | None => return Err("Default policy is missing".into()),
        Some(v) => requirements(v)?,
    };
    let mut transports = vec![];
    if let Some(t) = field(fields, "transports").filter(|t| **t != Strict::Null) {
        for (name, scopes) in t.object("transports")? {
            let mut out = vec![];
            for (scope, reqs) in scopes.object(&format!("transport {name:?}"))? {
                out.push((scope.clone(), requirements(reqs)?));
            }
            transports.push((name.clone(), out));
        }
    }
    Ok(PolicyDoc {
        default,
        transports,
    })
}

fn requirements(v: &Strict) -> Result<Vec<Requirement>, String> {
    let Strict::Array(items) = v else {
        return Err(format!("requirements: array expected, got {}", v.kind()));
    };
    if items.is_empty() {
        return Err("List of verification policy requirements must not be empty".into());
    }
    items.iter().map(requirement).collect()
}

fn requirement(v: &Strict) -> Result<Requirement, String> {
    let fields = v.object("requirement")?;
    let t = field(fields, "type")
        .map(|t| t.string("type"))
        .transpose()?
        .unwrap_or("");
    match t {
        "insecureAcceptAnything" => {
            exact_fields(fields, ["type"], t)?;
            Ok(Requirement::InsecureAcceptAnything)
        }
        "reject" => {
            exact_fields(fields, ["type"], t)?;
            Ok(Requirement::Reject)
        }
        "signedBaseLayer" => {
            let [_, identity] = exact_fields(fields, ["type", "baseLayerIdentity"], t)?;
            identity_match(identity)?;
            Ok(Requirement::SignedBaseLayer)
        }
        "signedBy" => signed_by(fields),
        "sigstoreSigned" => sigstore_signed(fields),
        other => Err(format!("Unknown policy requirement type {other:?}")),
    }
}

fn only_known(fields: &[(String, Strict)], known: &[&str]) -> Result<(), String> {
    match fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("Unknown key {k:?}")),
        None => Ok(()),
    }
}

/// Each `(key, kind)` present: the sources given, in order; `path`s must be non-empty.
fn key_sources(
    fields: &[(String, Strict)],
    path: &str,
    paths: &str,
    data: &str,
    datas: Option<&str>,
) -> Result<Vec<KeySource>, String> {
    let mut out = vec![];
    if let Some(v) = field(fields, path) {
        let p = v.string(path)?;
        if !p.is_empty() {
            out.push(KeySource::Path(p.into()));
        }
    }
    if let Some(v) = field(fields, paths) {
        let ps = v.strings(paths)?;
        if ps.is_empty() {
            return Err(format!("{paths:?} contains no entries"));
        }
        out.push(KeySource::Paths(
            ps.into_iter().map(PathBuf::from).collect(),
        ));
    }
    if let Some(v) = field(fields, data) {
        out.push(KeySource::Data(v.bytes(data)?));
    }
    if let Some(name) = datas
        && let Some(v) = field(fields, name)
    {
        let Strict::Array(items) = v else {
            return Err(format!("{name}: array expected"));
        };
        if items.is_empty() {
            return Err(format!("{name:?} contains no entries"));
        }
        out.push(KeySource::Datas(
            items
                .iter()
                .map(|i| i.bytes(name))
                .collect::<Result<_, _>>()?,
        ));
    }
    Ok(out)
}

fn signed_identity(fields: &[(String, Strict)]) -> Result<IdentityMatch, String> {
    match field(fields, "signedIdentity") {
        None | Some(Strict::Null) => Ok(IdentityMatch::MatchRepoDigestOrExact),
        Some(v) => identity_match(v),
    }
}

fn signed_by(fields: &[(String, Strict)]) -> Result<Requirement, String> {
    only_known(
        fields,
        &[
            "type",
            "keyType",
            "keyPath",
            "keyPaths",
            "keyData",
            "signedIdentity",
        ],
    )?;
    let key_type = field(fields, "keyType")
        .map(|v| v.string("keyType"))
        .transpose()?
        .unwrap_or("");
    if ![
        "GPGKeys",
        "signedByGPGKeys",
        "X509Certificates",
        "signedByX509CAs",
    ]
    .contains(&key_type)
    {
        return Err(format!("Unrecognized keyType value {key_type:?}"));
    }
    let identity = signed_identity(fields)?;
    let mut sources = key_sources(fields, "keyPath", "keyPaths", "keyData", None)?;
    if sources.len() != 1 {
        return Err("Exactly one of keyPath, keyPaths and keyData must be specified".into());
    }
    Ok(Requirement::SignedBy {
        key_type: key_type.to_string(),
        keys: sources.remove(0),
        identity,
    })
}

fn sigstore_signed(fields: &[(String, Strict)]) -> Result<Requirement, String> {
    only_known(
        fields,
        &[
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "keyDatas",
            "fulcio",
            "rekorPublicKeyPath",
            "rekorPublicKeyPaths",
            "rekorPublicKeyData",
            "rekorPublicKeyDatas",
            "signedIdentity",
        ],
    )?;
    let identity = signed_identity(fields)?;
    let mut keys = key_sources(fields, "keyPath", "keyPaths", "keyData", Some("keyDatas"))?;
    let fulcio = field(fields, "fulcio").map(fulcio).transpose()?;
    if keys.len() + usize::from(fulcio.is_some()) != 1 {
        return Err(
            "exactly one of keyPath, keyPaths, keyData, keyDatas and fulcio must be specified"
                .into(),
        );
    }
    let mut rekor = key_sources(
        fields,
        "rekorPublicKeyPath",
        "rekorPublicKeyPaths",
        "rekorPublicKeyData",
        Some("rekorPublicKeyDatas"),
    )?;
    if rekor.len() > 1 {
        return Err("at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used simultaneously".into());
    }
    if fulcio.is_some() && rekor.is_empty() {
        return Err("At least one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas must be specified if fulcio is used".into());
    }
    Ok(Requirement::SigstoreSigned {
        keys: keys.pop(),
        fulcio,
        rekor: rekor.pop(),
        identity,
    })
}

fn fulcio(v: &Strict) -> Result<FulcioConfig, String> {
    let fields = v.object("fulcio")?;
    only_known(fields, &["caPath", "caData", "oidcIssuer", "subjectEmail"])?;
    let mut ca = key_sources(fields, "caPath", "-", "caData", None)?;
    match ca.len() {
        0 => return Err("At least one of caPath and caData must be specified".into()),
        1 => {}
        _ => return Err("caPath and caData cannot be used simultaneously".into()),
    }
    let text = |k: &str| -> Result<String, String> {
        let s = field(fields, k)
            .map(|v| v.string(k))
            .transpose()?
            .unwrap_or("");
        if s.is_empty() {
            return Err(format!("{k} not specified"));
        }
        Ok(s.to_string())
    };
    Ok(FulcioConfig {
        ca: ca.remove(0),
        oidc_issuer: text("oidcIssuer")?,
        subject_email: text("subjectEmail")?,
    })
}

fn identity_match(v: &Strict) -> Result<IdentityMatch, String> {
    let fields = v.object("signedIdentity")?;
    let t = field(fields, "type")
        .map(|t| t.string("type"))
        .transpose()?
        .unwrap_or("");
    Ok(match t {
        "matchExact" => {
            exact_fields(fields, ["type"], t)?;
            IdentityMatch::MatchExact
        }
        "matchRepoDigestOrExact" => {
            exact_fields(fields, ["type"], t)?;
            IdentityMatch::MatchRepoDigestOrExact
        }
        "matchRepository" => {
            exact_fields(fields, ["type"], t)?;
            IdentityMatch::MatchRepository
        }
        "exactReference" => {
            let [_, r] = exact_fields(fields, ["type", "dockerReference"], t)?;
            let r = r.string("dockerReference")?;
            let n = DockerName::parse_normalized(r)
                .map_err(|e| format!("Invalid format of dockerReference {r:?}: {e}"))?;
            if n.is_name_only() {
                return Err(format!(
                    "dockerReference {r:?} contains neither a tag nor digest"
                ));
            }
            IdentityMatch::ExactReference(r.to_string())
        }
        "exactRepository" => {
            let [_, r] = exact_fields(fields, ["type", "dockerRepository"], t)?;
            let r = r.string("dockerRepository")?;
            DockerName::parse_normalized(r)
                .map_err(|e| format!("Invalid format of dockerRepository {r:?}: {e}"))?;
            IdentityMatch::ExactRepository(r.to_string())
        }
        "remapIdentity" => {
            let [_, p, s] = exact_fields(fields, ["type", "prefix", "signedPrefix"], t)?;
            let (p, s) = (p.string("prefix")?, s.string("signedPrefix")?);
            for x in [p, s] {
                if !valid_remap_prefix(x) {
                    return Err(format!("prefix {x:?} is not valid"));
                }
            }
            IdentityMatch::RemapIdentity {
                prefix: p.to_string(),
                signed_prefix: s.to_string(),
            }
        }
        other => return Err(format!("Unknown policy reference match type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_policies() {
        let p = parse(br#"{"default":[{"type":"reject"}],"transports":{"docker":{
            "r.example/a":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"matchRepository"}}],
            "r.example/b":[{"type":"sigstoreSigned","keyData":"AAAA"}],
            "r.example/c":[{"type":"sigstoreSigned","fulcio":{"caPath":"/ca","oidcIssuer":"https://i","subjectEmail":"a@b"},"rekorPublicKeyPath":"/r",
                 "signedIdentity":{"type":"remapIdentity","prefix":"r.example/c","signedPrefix":"n.example/c"}}]}}}"#).unwrap();
        assert_eq!(p.default, vec![Requirement::Reject]);
        let scopes = &p.transports[0].1;
        assert!(matches!(
            &scopes[0].1[0],
            Requirement::SignedBy {
                identity: IdentityMatch::MatchRepository,
                keys: KeySource::Path(_),
                ..
            }
        ));
        assert!(
            matches!(&scopes[1].1[0], Requirement::SigstoreSigned { keys: Some(KeySource::Data(d)), identity: IdentityMatch::MatchRepoDigestOrExact, .. } if d == &[0, 0, 0])
        );
        assert!(matches!(
            &scopes[2].1[0],
            Requirement::SigstoreSigned {
                fulcio: Some(_),
                rekor: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn invalid_policies_are_refused_whole() {
        for bad in [
            r#"{}"#,
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"reject"}],"other":1}"#,
            r#"{"default":[{"type":"reject","x":1}]}"#,
            r#"{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}"#,
            r#"{"default":[{"type":"nope"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"bad","keyPath":"/k"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","keyData":"AA=="}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"exactReference","dockerReference":"busybox"}}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"remapIdentity","prefix":"a/","signedPrefix":"b"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned"}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/k","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyPath":"/r","rekorPublicKeyData":"AA=="}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPaths":[]}]}"#,
            r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"x":[]}}}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
