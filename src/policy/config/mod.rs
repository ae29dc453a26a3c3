//! Parsing containers-policy.json(5) as strictly as containers/image
//! (`signature/policy_config.go`, `policy_config_sigstore.go`): unknown or duplicated keys,
//! empty requirement lists, several key sources where one is allowed, or an invalid
//! `signedIdentity` make the whole file invalid.

use std::path::PathBuf;

use super::identity::{DockerName, IdentityError, IdentityMatch, valid_remap_prefix};
use crate::signing::json::{Strict, exact_fields, field};

/// Why a policy file is refused as a whole (containers/image's words, which skopeo prints).
#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    /// Not JSON, or JSON of the wrong shape (a duplicated, unknown or missing key, a value of
    /// the wrong type); the text says where.
    #[error("{0}")]
    Json(String),
    /// A key the policy, a requirement or `fulcio` does not have.
    #[error("Unknown key {0:?}")]
    UnknownKey(String),
    /// A required part is absent or empty (`default`, a requirement list, a list of keys, a
    /// `fulcio` field); the text says which.
    #[error("{0}")]
    Missing(String),
    /// Key material given by no source, or by several where one is allowed; the text says
    /// which keys.
    #[error("{0}")]
    KeySources(&'static str),
    /// A requirement `type` containers/image does not know.
    #[error("Unknown policy requirement type {0:?}")]
    UnknownRequirement(String),
    /// A `keyType` of `signedBy` containers/image does not know.
    #[error("Unrecognized keyType value {0:?}")]
    UnknownKeyType(String),
    /// A `signedIdentity` `type` containers/image does not know.
    #[error("Unknown policy reference match type {0:?}")]
    UnknownMatch(String),
    /// `dockerReference` or `dockerRepository` of a `signedIdentity` is not a reference.
    #[error("Invalid format of {field} {value:?}: {source}")]
    InvalidReference {
        /// `dockerReference` or `dockerRepository`.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is not a reference.
        source: IdentityError,
    },
    /// An `exactReference` without a tag or digest.
    #[error("dockerReference {0:?} contains neither a tag nor digest")]
    NameOnly(String),
    /// A `remapIdentity` prefix that is not a valid prefix.
    #[error("prefix {0:?} is not valid")]
    InvalidPrefix(String),
}

/// The strict JSON reader's report, as a [`PolicyConfigError::Json`].
fn json(e: impl std::fmt::Display) -> PolicyConfigError {
    PolicyConfigError::Json(e.to_string())
}

/// A key file of a [`KeySource`] that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {}: {source}", path.display())]
pub struct KeyReadError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

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
    pub fn load(&self) -> Result<Vec<Vec<u8>>, KeyReadError> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| KeyReadError {
                path: p.clone(),
                source,
            })
        };
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
pub fn parse(bytes: &[u8]) -> Result<PolicyDoc, PolicyConfigError> {
    let doc = Strict::parse(bytes).map_err(json)?;
    let fields = doc.object("policy").map_err(json)?;
    for (k, _) in fields {
        if k != "default" && k != "transports" {
            return Err(PolicyConfigError::UnknownKey(k.clone()));
        }
    }
    let default = match field(fields, "default") {
        Some(Strict::Null) | None => {
            return Err(PolicyConfigError::Missing(
                "Default policy is missing".into(),
            ));
        }
        Some(v) => requirements(v)?,
    };
    let mut transports = vec![];
    if let Some(t) = field(fields, "transports").filter(|t| **t != Strict::Null) {
        for (name, scopes) in t.object("transports").map_err(json)? {
            let mut out = vec![];
            for (scope, reqs) in scopes
                .object(&format!("transport {name:?}"))
                .map_err(json)?
            {
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

fn requirements(v: &Strict) -> Result<Vec<Requirement>, PolicyConfigError> {
    let Strict::Array(items) = v else {
        return Err(json(format_args!(
            "requirements: array expected, got {}",
            v.kind()
        )));
    };
    if items.is_empty() {
        return Err(PolicyConfigError::Missing(
            "List of verification policy requirements must not be empty".into(),
        ));
    }
    items.iter().map(requirement).collect()
}

fn requirement(v: &Strict) -> Result<Requirement, PolicyConfigError> {
    let fields = v.object("requirement").map_err(json)?;
    let t = field(fields, "type")
        .map(|t| t.string("type"))
        .transpose()
        .map_err(json)?
        .unwrap_or("");
    match t {
        "insecureAcceptAnything" => {
            exact_fields(fields, ["type"], t).map_err(json)?;
            Ok(Requirement::InsecureAcceptAnything)
        }
        "reject" => {
            exact_fields(fields, ["type"], t).map_err(json)?;
            Ok(Requirement::Reject)
        }
        "signedBaseLayer" => {
            let [_, identity] =
                exact_fields(fields, ["type", "baseLayerIdentity"], t).map_err(json)?;
            identity_match(identity)?;
            Ok(Requirement::SignedBaseLayer)
        }
        "signedBy" => signed_by(fields),
        "sigstoreSigned" => sigstore_signed(fields),
        other => Err(PolicyConfigError::UnknownRequirement(other.to_string())),
    }
}

fn only_known(fields: &[(String, Strict)], known: &[&str]) -> Result<(), PolicyConfigError> {
    match fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(PolicyConfigError::UnknownKey(k.clone())),
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
) -> Result<Vec<KeySource>, PolicyConfigError> {
    let mut out = vec![];
    if let Some(v) = field(fields, path) {
        let p = v.string(path).map_err(json)?;
        if !p.is_empty() {
            out.push(KeySource::Path(p.into()));
        }
    }
    if let Some(v) = field(fields, paths) {
        let ps = v.strings(paths).map_err(json)?;
        if ps.is_empty() {
            return Err(PolicyConfigError::Missing(format!(
                "{paths:?} contains no entries"
            )));
        }
        out.push(KeySource::Paths(
            ps.into_iter().map(PathBuf::from).collect(),
        ));
    }
    if let Some(v) = field(fields, data) {
        out.push(KeySource::Data(v.bytes(data).map_err(json)?));
    }
    if let Some(name) = datas
        && let Some(v) = field(fields, name)
    {
        let Strict::Array(items) = v else {
            return Err(json(format_args!("{name}: array expected")));
        };
        if items.is_empty() {
            return Err(PolicyConfigError::Missing(format!(
                "{name:?} contains no entries"
            )));
        }
        out.push(KeySource::Datas(
            items
                .iter()
                .map(|i| i.bytes(name))
                .collect::<Result<_, _>>()
                .map_err(json)?,
        ));
    }
    Ok(out)
}

fn signed_identity(fields: &[(String, Strict)]) -> Result<IdentityMatch, PolicyConfigError> {
    match field(fields, "signedIdentity") {
        None | Some(Strict::Null) => Ok(IdentityMatch::MatchRepoDigestOrExact),
        Some(v) => identity_match(v),
    }
}

fn signed_by(fields: &[(String, Strict)]) -> Result<Requirement, PolicyConfigError> {
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
        .transpose()
        .map_err(json)?
        .unwrap_or("");
    if ![
        "GPGKeys",
        "signedByGPGKeys",
        "X509Certificates",
        "signedByX509CAs",
    ]
    .contains(&key_type)
    {
        return Err(PolicyConfigError::UnknownKeyType(key_type.to_string()));
    }
    let identity = signed_identity(fields)?;
    let mut sources = key_sources(fields, "keyPath", "keyPaths", "keyData", None)?;
    if sources.len() != 1 {
        return Err(PolicyConfigError::KeySources(
            "Exactly one of keyPath, keyPaths and keyData must be specified",
        ));
    }
    Ok(Requirement::SignedBy {
        key_type: key_type.to_string(),
        keys: sources.remove(0),
        identity,
    })
}

fn sigstore_signed(fields: &[(String, Strict)]) -> Result<Requirement, PolicyConfigError> {
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
        return Err(PolicyConfigError::KeySources(
            "exactly one of keyPath, keyPaths, keyData, keyDatas and fulcio must be specified",
        ));
    }
    let mut rekor = key_sources(
        fields,
        "rekorPublicKeyPath",
        "rekorPublicKeyPaths",
        "rekorPublicKeyData",
        Some("rekorPublicKeyDatas"),
    )?;
    if rekor.len() > 1 {
        return Err(PolicyConfigError::KeySources(
            "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas can be used simultaneously",
        ));
    }
    if fulcio.is_some() && rekor.is_empty() {
        return Err(PolicyConfigError::KeySources(
            "At least one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas must be specified if fulcio is used",
        ));
    }
    Ok(Requirement::SigstoreSigned {
        keys: keys.pop(),
        fulcio,
        rekor: rekor.pop(),
        identity,
    })
}

fn fulcio(v: &Strict) -> Result<FulcioConfig, PolicyConfigError> {
    let fields = v.object("fulcio").map_err(json)?;
    only_known(fields, &["caPath", "caData", "oidcIssuer", "subjectEmail"])?;
    let mut ca = key_sources(fields, "caPath", "-", "caData", None)?;
    match ca.len() {
        0 => {
            return Err(PolicyConfigError::KeySources(
                "At least one of caPath and caData must be specified",
            ));
        }
        1 => {}
        _ => {
            return Err(PolicyConfigError::KeySources(
                "caPath and caData cannot be used simultaneously",
            ));
        }
    }
    let text = |k: &str| -> Result<String, PolicyConfigError> {
        let s = field(fields, k)
            .map(|v| v.string(k))
            .transpose()
            .map_err(json)?
            .unwrap_or("");
        if s.is_empty() {
            return Err(PolicyConfigError::Missing(format!("{k} not specified")));
        }
        Ok(s.to_string())
    };
    Ok(FulcioConfig {
        ca: ca.remove(0),
        oidc_issuer: text("oidcIssuer")?,
        subject_email: text("subjectEmail")?,
    })
}

fn identity_match(v: &Strict) -> Result<IdentityMatch, PolicyConfigError> {
    let fields = v.object("signedIdentity").map_err(json)?;
    let t = field(fields, "type")
        .map(|t| t.string("type"))
        .transpose()
        .map_err(json)?
        .unwrap_or("");
    Ok(match t {
        "matchExact" => {
            exact_fields(fields, ["type"], t).map_err(json)?;
            IdentityMatch::MatchExact
        }
        "matchRepoDigestOrExact" => {
            exact_fields(fields, ["type"], t).map_err(json)?;
            IdentityMatch::MatchRepoDigestOrExact
        }
        "matchRepository" => {
            exact_fields(fields, ["type"], t).map_err(json)?;
            IdentityMatch::MatchRepository
        }
        "exactReference" => {
            let [_, r] = exact_fields(fields, ["type", "dockerReference"], t).map_err(json)?;
            let r = r.string("dockerReference").map_err(json)?;
            let n = DockerName::parse_normalized(r).map_err(|source| {
                PolicyConfigError::InvalidReference {
                    field: "dockerReference",
                    value: r.to_string(),
                    source,
                }
            })?;
            if n.is_name_only() {
                return Err(PolicyConfigError::NameOnly(r.to_string()));
            }
            IdentityMatch::ExactReference(r.to_string())
        }
        "exactRepository" => {
            let [_, r] = exact_fields(fields, ["type", "dockerRepository"], t).map_err(json)?;
            let r = r.string("dockerRepository").map_err(json)?;
            DockerName::parse_normalized(r).map_err(|source| {
                PolicyConfigError::InvalidReference {
                    field: "dockerRepository",
                    value: r.to_string(),
                    source,
                }
            })?;
            IdentityMatch::ExactRepository(r.to_string())
        }
        "remapIdentity" => {
            let [_, p, s] =
                exact_fields(fields, ["type", "prefix", "signedPrefix"], t).map_err(json)?;
            let (p, s) = (
                p.string("prefix").map_err(json)?,
                s.string("signedPrefix").map_err(json)?,
            );
            for x in [p, s] {
                if !valid_remap_prefix(x) {
                    return Err(PolicyConfigError::InvalidPrefix(x.to_string()));
                }
            }
            IdentityMatch::RemapIdentity {
                prefix: p.to_string(),
                signed_prefix: s.to_string(),
            }
        }
        other => return Err(PolicyConfigError::UnknownMatch(other.to_string())),
    })
}

#[cfg(test)]
mod tests;
