//! Manifests: media types, parsing and validation. The raw bytes are always kept; ferry never
//! re-serialises a manifest it copies.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::reference::Digest;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 (unsupported).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1, signed (unsupported).
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The empty descriptor's media type (OCI 1.1): the config of an artifact that has none.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Docker foreign (non-distributable) layer.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The `Accept` header for manifest requests: every type ferry can copy.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest ferry accepts (as containers/image: 4 MiB).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
/// How deep indexes may nest.
pub const MAX_INDEX_DEPTH: usize = 8;

/// Whether a media type is an index (OCI index or Docker manifest list).
pub fn is_index_type(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// Whether a media type is a single-image manifest.
pub fn is_image_type(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// A human name for a manifest media type, for messages.
pub fn type_name(mt: &str) -> &'static str {
    match mt {
        DOCKER_MANIFEST => "Docker v2 schema 2 manifest",
        DOCKER_MANIFEST_LIST => "Docker manifest list",
        OCI_MANIFEST => "OCI image manifest",
        OCI_INDEX => "OCI image index",
        _ => "manifest",
    }
}

/// A platform, as in an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Platform {
    /// CPU architecture (`amd64`).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// Variant (`v7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version.
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// For index entries: the platform.
    pub platform: Option<Platform>,
    /// External URLs (non-distributable layers).
    pub urls: Vec<String>,
}

impl Descriptor {
    /// Whether the layer is non-distributable (foreign) and not copied, as skopeo does.
    pub fn is_foreign(&self) -> bool {
        !self.urls.is_empty()
            && (self.media_type == DOCKER_FOREIGN_LAYER
                || self.media_type.contains(".nondistributable."))
    }
}

/// What a manifest is: one image, or an index of manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An image: config and layers.
    Image {
        /// The config blob.
        config: Descriptor,
        /// The layers, in order.
        layers: Vec<Descriptor>,
    },
    /// An index / manifest list.
    Index {
        /// Child manifests.
        manifests: Vec<Descriptor>,
    },
}

/// A manifest: its exact bytes, their digest, its media type, and what it references.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The exact bytes, as received.
    pub bytes: Bytes,
    /// sha256 of the bytes.
    pub digest: Digest,
    /// The media type (from the document, else the response's Content-Type).
    pub media_type: String,
    /// What it references.
    pub kind: Kind,
}

impl Manifest {
    /// Every blob this manifest references directly (config first), foreign layers excluded.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.kind {
            Kind::Image { config, layers } => std::iter::once(config)
                .chain(layers.iter().filter(|l| !l.is_foreign()))
                .collect(),
            Kind::Index { .. } => vec![],
        }
    }

    /// Whether this is an index.
    pub fn is_index(&self) -> bool {
        matches!(self.kind, Kind::Index { .. })
    }
}

/// What OCI 1.1 says about a manifest as an artifact: read from its bytes on demand (the
/// parsed [`Manifest`] keeps only what copying needs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// `artifactType`, else (for an image manifest) the config's media type, as the referrers
    /// API describes a manifest.
    pub artifact_type: Option<String>,
    /// `subject`: the manifest this one refers to.
    pub subject: Option<Descriptor>,
    /// `annotations`, as they are.
    pub annotations: Option<serde_json::Map<String, Value>>,
}

/// Why a manifest (or a descriptor in it) is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_SIZE`].
    #[error("manifest is {0} bytes, more than the 4 MiB limit")]
    TooLarge(usize),
    /// Not JSON at all.
    #[error("manifest is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Docker's schema 1, which ferry does not read.
    #[error("Docker schema 1 manifests are not supported")]
    Schema1,
    /// A media type that is neither an image manifest nor an index.
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    /// JSON whose shape is not a valid manifest or descriptor; the text says where.
    #[error("{0}")]
    Malformed(String),
}

fn malformed(why: impl Into<String>) -> ManifestError {
    ManifestError::Malformed(why.into())
}

impl Manifest {
    /// Its artifact type, subject and annotations (a malformed `subject` is an error).
    pub fn artifact(&self) -> Result<ArtifactInfo, ManifestError> {
        let doc: Value = serde_json::from_slice(&self.bytes).map_err(ManifestError::Json)?;
        let declared = doc
            .get("artifactType")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let artifact_type = declared.or_else(|| match &self.kind {
            Kind::Image { config, .. } if !config.media_type.is_empty() => {
                Some(config.media_type.clone())
            }
            _ => None,
        });
        let subject = match doc.get("subject") {
            None | Some(Value::Null) => None,
            Some(s) => Some(descriptor(s, "subject")?),
        };
        let annotations = doc
            .get("annotations")
            .and_then(Value::as_object)
            .filter(|a| !a.is_empty())
            .cloned();
        Ok(ArtifactInfo {
            artifact_type,
            subject,
            annotations,
        })
    }

    /// Media types that describe what this manifest carries, for `--referrers-artifact-type`:
    /// its artifact type (above), its config's and its layers' media types.
    pub fn content_types(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .artifact()
            .ok()
            .and_then(|a| a.artifact_type)
            .into_iter()
            .collect();
        if let Kind::Image { config, layers } = &self.kind {
            out.extend(
                std::iter::once(config)
                    .chain(layers)
                    .map(|d| d.media_type.clone()),
            );
        }
        out.retain(|t| !t.is_empty());
        out.dedup();
        out
    }
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<Value>,
    digest: Option<Value>,
    size: Option<Value>,
    #[serde(default)]
    platform: Option<Value>,
    #[serde(default)]
    urls: Option<Value>,
}

/// Parse and validate manifest bytes.
///
/// `content_type` is the response's `Content-Type` (parameters stripped). The document's
/// `mediaType` wins when present, but must not contradict a manifest `Content-Type` or the
/// document's shape; OCI allows it to be absent, then the `Content-Type` or the shape decides.
pub fn parse(bytes: Bytes, content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge(bytes.len()));
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(ManifestError::Json)?;
    let obj = doc
        .as_object()
        .ok_or_else(|| malformed("manifest is not a JSON object"))?;
    let declared = match obj.get("mediaType") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(malformed("manifest mediaType is not a string")),
    };
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    let schema = obj.get("schemaVersion").and_then(Value::as_i64);
    if declared.is_some_and(|d| d == DOCKER_MANIFEST_V1 || d == DOCKER_MANIFEST_V1_SIGNED)
        || content_type.is_some_and(|c| c == DOCKER_MANIFEST_V1 || c == DOCKER_MANIFEST_V1_SIGNED)
        || schema == Some(1)
    {
        return Err(ManifestError::Schema1);
    }
    if schema != Some(2) {
        return Err(malformed("manifest schemaVersion is not 2"));
    }
    let has_manifests = obj.contains_key("manifests");
    let has_layers = obj.contains_key("layers") || obj.contains_key("config");
    if has_manifests && has_layers {
        return Err(malformed(
            "manifest has both \"manifests\" and \"layers\"/\"config\"",
        ));
    }
    let known = |t: &str| is_index_type(t) || is_image_type(t);
    if let (Some(d), Some(c)) = (declared, content_type)
        && known(c)
        && d != c
    {
        return Err(malformed(format!(
            "manifest mediaType {d:?} contradicts the response's Content-Type {c:?}"
        )));
    }
    let media_type = match declared {
        Some(d) => d.to_string(),
        None => match content_type {
            Some(c) if known(c) => c.to_string(),
            _ if has_manifests => OCI_INDEX.to_string(),
            _ => OCI_MANIFEST.to_string(),
        },
    };
    if !known(&media_type) {
        return Err(ManifestError::MediaType(media_type));
    }
    let kind = if is_index_type(&media_type) {
        if has_layers {
            return Err(malformed(format!(
                "a {} has \"layers\"/\"config\"",
                type_name(&media_type)
            )));
        }
        let list = obj.get("manifests").ok_or_else(|| {
            malformed(format!("a {} has no \"manifests\"", type_name(&media_type)))
        })?;
        let manifests = descriptors(list, "manifests")?;
        for m in &manifests {
            if !m.media_type.is_empty() && !known(&m.media_type) {
                // Artifacts in an index are copied as manifests only if they are manifests.
                log::debug!("index entry {} has media type {}", m.digest, m.media_type);
            }
        }
        Kind::Index { manifests }
    } else {
        if has_manifests {
            return Err(malformed(format!(
                "a {} has \"manifests\"",
                type_name(&media_type)
            )));
        }
        let config = obj
            .get("config")
            .ok_or_else(|| malformed(format!("a {} has no \"config\"", type_name(&media_type))))?;
        let config = descriptor(config, "config")?;
        let layers = match obj.get("layers") {
            Some(l) => descriptors(l, "layers")?,
            None => {
                return Err(malformed(format!(
                    "a {} has no \"layers\"",
                    type_name(&media_type)
                )));
            }
        };
        Kind::Image { config, layers }
    };
    let digest = Digest::sha256(&bytes);
    Ok(Manifest {
        bytes,
        digest,
        media_type,
        kind,
    })
}

fn descriptors(v: &Value, field: &str) -> Result<Vec<Descriptor>, ManifestError> {
    let arr = v
        .as_array()
        .ok_or_else(|| malformed(format!("\"{field}\" is not a list")))?;
    arr.iter()
        .enumerate()
        .map(|(i, d)| descriptor(d, &format!("{field}[{i}]")))
        .collect()
}

/// Parse one descriptor (`field` names it in messages).
pub fn descriptor(v: &Value, field: &str) -> Result<Descriptor, ManifestError> {
    let raw: RawDescriptor = serde_json::from_value(v.clone())
        .map_err(|e| malformed(format!("\"{field}\" is not a descriptor: {e}")))?;
    let media_type = match raw.media_type {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => return Err(malformed(format!("\"{field}.mediaType\" is not a string"))),
    };
    let digest = match raw.digest {
        Some(Value::String(s)) => s
            .parse::<Digest>()
            .map_err(|e| malformed(format!("\"{field}.digest\": {e}")))?,
        Some(_) => return Err(malformed(format!("\"{field}.digest\" is not a string"))),
        None => return Err(malformed(format!("\"{field}\" has no digest"))),
    };
    let size = match raw.size {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| malformed(format!("\"{field}.size\" is not a non-negative integer")))?,
        Some(_) => return Err(malformed(format!("\"{field}.size\" is not a number"))),
        None => return Err(malformed(format!("\"{field}\" has no size"))),
    };
    let platform = match raw.platform {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            serde_json::from_value::<Platform>(p)
                .map_err(|e| malformed(format!("\"{field}.platform\": {e}")))?,
        ),
    };
    let urls = match raw.urls {
        None | Some(Value::Null) => vec![],
        Some(u) => serde_json::from_value::<Vec<String>>(u)
            .map_err(|e| malformed(format!("\"{field}.urls\": {e}")))?,
    };
    Ok(Descriptor {
        media_type,
        digest,
        size,
        platform,
        urls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(mt: Option<&str>) -> String {
        let mt = mt
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":10}}]}}"#,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn parses_oci_without_media_type() {
        let m = parse(Bytes::from(image(None)), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.blobs().len(), 2);
        let m = parse(Bytes::from(image(None)), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.digest, Digest::sha256(image(None).as_bytes()));
    }

    #[test]
    fn refuses_contradictions_and_garbage() {
        assert!(
            parse(
                Bytes::from(image(Some(OCI_MANIFEST))),
                Some(DOCKER_MANIFEST)
            )
            .is_err()
        );
        assert!(parse(Bytes::from(image(Some(OCI_INDEX))), None).is_err());
        assert!(parse(Bytes::from_static(b"not json"), None).is_err());
        assert!(parse(Bytes::from_static(b"[]"), None).is_err());
        assert!(parse(Bytes::from_static(br#"{"schemaVersion":1}"#), None).is_err());
        assert!(parse(Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#), None).is_err());
        let bad_digest = image(None).replace(&d('b'), "sha256:xyz");
        assert!(parse(Bytes::from(bad_digest), None).is_err());
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert!(parse(Bytes::from(big), None).is_err());
        let neg = image(None).replace("\"size\":10", "\"size\":-1");
        assert!(parse(Bytes::from(neg), None).is_err());
    }

    #[test]
    fn artifacts_are_manifests() {
        let sig = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","config":{{"mediaType":"{OCI_EMPTY}","digest":"{}","size":2,"data":"e30="}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{}","size":10,"annotations":{{"dev.cosignproject.cosign/signature":"MEUC"}}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":500}},"annotations":{{"org.opencontainers.image.created":"2025-01-01T00:00:00Z"}}}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let m = parse(Bytes::from(sig), Some(OCI_MANIFEST)).unwrap();
        let a = m.artifact().unwrap();
        assert_eq!(
            a.artifact_type.as_deref(),
            Some("application/vnd.dev.cosign.artifact.sig.v1+json")
        );
        assert_eq!(a.subject.unwrap().digest.to_string(), d('c'));
        assert!(
            a.annotations
                .unwrap()
                .contains_key("org.opencontainers.image.created")
        );
        assert!(
            m.content_types()
                .contains(&"application/vnd.dev.cosign.simplesigning.v1+json".to_string())
        );
        // Without artifactType, the config's media type stands for it.
        let m = parse(Bytes::from(image(None)), None).unwrap();
        assert_eq!(
            m.artifact().unwrap().artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        let bad = image(None).replace("\"layers\"", "\"subject\":{\"digest\":\"x\"},\"layers\"");
        assert!(parse(Bytes::from(bad), None).unwrap().artifact().is_err());
    }

    #[test]
    fn parses_index() {
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#,
            d('c')
        );
        let m = parse(Bytes::from(idx), Some(OCI_INDEX)).unwrap();
        let Kind::Index { manifests } = &m.kind else {
            panic!()
        };
        assert_eq!(
            manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
    }
}
