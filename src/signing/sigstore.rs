//! Sigstore (cosign) signatures of container images, as skopeo makes, stores and reads them.
//!
//! A signature is a payload (the JSON of [`super::payload`], type `cosign container image
//! signature`), its MIME type `application/vnd.dev.cosign.simplesigning.v1+json`, and
//! annotations: `dev.cosignproject.cosign/signature` (base64 of the signature over the
//! payload) and, for keyless signing, `dev.sigstore.cosign/certificate`,
//! `dev.sigstore.cosign/chain` and `dev.sigstore.cosign/bundle` (the Rekor SET).
//!
//! In a registry the signatures of manifest `sha256:H` live in the OCI image manifest tagged
//! `sha256-H.sig`: one layer per signature (media type = MIME type, blob = payload, layer
//! annotations = signature annotations), and a config whose `rootfs.diff_ids` lists the
//! layers. [`attachment_layers`] reads such a manifest, [`add_to_attachment`] adds signatures
//! to one (or makes one), as containers/image's `putSignaturesToSigstoreAttachments` does.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::SigningError;
use super::keys::{PrivateKey, PublicKey};
use super::payload::{Payload, SIGSTORE_TYPE};
use crate::reference::Digest;

/// The MIME type (layer media type) of a sigstore signature.
pub const MIME_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation: base64 of the signature over the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation: the Rekor signed entry timestamp (a JSON "bundle").
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// Annotation: the Fulcio certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Annotation: the Fulcio intermediate chain (PEM).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// OCI media types of the attachment.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Largest payload ferry reads from an attachment layer.
pub const MAX_PAYLOAD: u64 = 4 << 20;
/// Most layers ferry reads from one attachment manifest.
pub const MAX_LAYERS: usize = 128;

/// One sigstore signature; nothing in it is trusted until verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigstoreSignature {
    /// MIME type (the attachment layer's media type).
    #[serde(rename = "mimeType")]
    pub mime_type: String,
    /// The signed payload bytes.
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    /// The layer's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

impl SigstoreSignature {
    /// Sign `manifest` as `reference` with `key`, as `skopeo copy
    /// --sign-by-sigstore-private-key` does (no Rekor upload: one annotation).
    pub fn sign(key: &PrivateKey, manifest: &[u8], reference: &str) -> Self {
        let payload = Payload::new(Digest::sha256(manifest), reference).to_bytes(SIGSTORE_TYPE);
        let sig = key.sign(&payload);
        let mut annotations = BTreeMap::new();
        annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        );
        SigstoreSignature {
            mime_type: MIME_TYPE.to_string(),
            payload,
            annotations,
        }
    }

    /// The JSON containers/image keeps in a `signature-N` file after `\0sigstore-json\n`.
    pub fn to_json(&self) -> Vec<u8> {
        super::json::go_marshal(self)
    }

    /// Parse that JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SigningError> {
        serde_json::from_slice(bytes)
            .map_err(|e| SigningError::malformed(format!("invalid sigstore signature: {e}")))
    }

    /// The base64 signature annotation, if present.
    pub fn signature_annotation(&self) -> Option<&str> {
        self.annotations
            .get(SIGNATURE_ANNOTATION)
            .map(String::as_str)
    }

    /// Verify the signature with any of `keys` and parse the payload (untrusted content,
    /// cryptographically verified): the caller still checks digest and identity.
    pub fn verify_with_keys(&self, keys: &[PublicKey]) -> Result<(Payload, usize), SigningError> {
        let b64 = self.signature_annotation().ok_or_else(|| {
            SigningError::malformed(format!("missing {SIGNATURE_ANNOTATION} annotation"))
        })?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| SigningError::malformed(format!("base64 decoding: {e}")))?;
        if keys.is_empty() {
            return Err(SigningError::verification(
                "no public key to verify the sigstore payload",
            ));
        }
        let mut failures = vec![];
        let mut matched = None;
        for (i, k) in keys.iter().enumerate() {
            match k.verify(&self.payload, &sig) {
                Ok(()) => {
                    matched = Some(i);
                    break;
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        let Some(index) = matched else {
            return Err(SigningError::verification(failures.join(", ")));
        };
        let payload = Payload::parse(&self.payload, SIGSTORE_TYPE)?;
        Ok((payload, index))
    }
}

/// The tag of the signature attachment of `digest`: `sha256-<hex>.sig`.
pub fn attachment_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.hex())
}

/// A layer of an attachment manifest: the engine fetches `digest` (at most `size`, which is
/// at most [`MAX_PAYLOAD`]) and calls [`AttachmentLayer::signature`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentLayer {
    /// Media type (the signature's MIME type).
    pub media_type: String,
    /// Digest of the payload blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The signature annotations.
    pub annotations: BTreeMap<String, String>,
}

impl AttachmentLayer {
    /// The signature, once the payload blob was read (its digest and size are checked).
    pub fn signature(&self, payload: Vec<u8>) -> Result<SigstoreSignature, SigningError> {
        if payload.len() as u64 != self.size {
            return Err(SigningError::malformed(format!(
                "signature payload {} is {} bytes, the attachment declares {}",
                self.digest,
                payload.len(),
                self.size
            )));
        }
        if let Some(actual) = self.digest.verify(&payload) {
            return Err(SigningError::malformed(format!(
                "signature payload {} has digest {actual}",
                self.digest
            )));
        }
        Ok(SigstoreSignature {
            mime_type: self.media_type.clone(),
            payload,
            annotations: self.annotations.clone(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OciManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    media_type: String,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    artifact_type: String,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// The OCI image config of an attachment, with the fields Go's `imgspecv1.Image` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OciConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default = "empty_object")]
    config: serde_json::Value,
    #[serde(default)]
    rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RootFs {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    diff_ids: Vec<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn parse_manifest(bytes: &[u8]) -> Result<OciManifest, SigningError> {
    let m: OciManifest = serde_json::from_slice(bytes).map_err(|e| {
        SigningError::malformed(format!("invalid sigstore attachment manifest: {e}"))
    })?;
    if !m.media_type.is_empty() && m.media_type != OCI_MANIFEST {
        return Err(SigningError::malformed(format!(
            "unexpected MIME type for sigstore attachment manifest: {:?}",
            m.media_type
        )));
    }
    Ok(m)
}

/// The signature layers of an attachment manifest (other layers are left out, as skopeo
/// leaves them out of verification).
pub fn attachment_layers(manifest: &[u8]) -> Result<Vec<AttachmentLayer>, SigningError> {
    let m = parse_manifest(manifest)?;
    if m.layers.len() > MAX_LAYERS {
        return Err(SigningError::malformed(format!(
            "sigstore attachment has {} layers, more than {MAX_LAYERS}",
            m.layers.len()
        )));
    }
    let mut out = vec![];
    for l in m.layers {
        let digest: Digest = l.digest.parse().map_err(|e| {
            SigningError::malformed(format!("invalid layer in sigstore attachment: {e}"))
        })?;
        if l.size < 0 || l.size as u64 > MAX_PAYLOAD {
            return Err(SigningError::malformed(format!(
                "sigstore attachment layer {digest} has size {}, at most {MAX_PAYLOAD} is read",
                l.size
            )));
        }
        out.push(AttachmentLayer {
            media_type: l.media_type,
            digest,
            size: l.size as u64,
            annotations: l.annotations,
        });
    }
    Ok(out)
}

/// What to write to add signatures to an attachment: the blobs (payloads, then the config),
/// then `manifest` to the tag [`attachment_tag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentUpdate {
    /// Blobs to upload first (their digests are in the manifest).
    pub blobs: Vec<(Digest, Vec<u8>)>,
    /// The new manifest (media type `application/vnd.oci.image.manifest.v1+json`).
    pub manifest: Vec<u8>,
}

/// Add `signatures` to the attachment `existing` (its manifest and config bytes, `None` when
/// the tag does not exist). `None` when every signature is already there (same media type,
/// payload and annotations), as skopeo compares them.
pub fn add_to_attachment(
    existing: Option<(&[u8], &[u8])>,
    signatures: &[SigstoreSignature],
) -> Result<Option<AttachmentUpdate>, SigningError> {
    let (mut manifest, mut config) = match existing {
        Some((m, c)) => {
            let m = parse_manifest(m)?;
            let c: OciConfig = serde_json::from_slice(c).map_err(|e| {
                SigningError::malformed(format!("parsing sigstore attachment config: {e}"))
            })?;
            (m, c)
        }
        None => (
            OciManifest {
                schema_version: 2,
                media_type: OCI_MANIFEST.into(),
                artifact_type: String::new(),
                config: Descriptor {
                    media_type: OCI_CONFIG.into(),
                    digest: String::new(),
                    size: 0,
                    annotations: BTreeMap::new(),
                },
                layers: vec![],
                subject: None,
                annotations: BTreeMap::new(),
            },
            OciConfig {
                created: None,
                author: None,
                architecture: String::new(),
                os: String::new(),
                config: empty_object(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: vec![],
                },
                history: None,
            },
        ),
    };
    let mut blobs = vec![];
    for s in signatures {
        let digest = Digest::sha256(&s.payload);
        let present = manifest.layers.iter().any(|l| {
            l.media_type == s.mime_type
                && l.size == s.payload.len() as i64
                && l.digest == digest.as_str()
                && l.annotations == s.annotations
        });
        if present {
            continue;
        }
        manifest.layers.push(Descriptor {
            media_type: s.mime_type.clone(),
            digest: digest.to_string(),
            size: s.payload.len() as i64,
            annotations: s.annotations.clone(),
        });
        config.rootfs.diff_ids.push(digest.to_string());
        blobs.push((digest, s.payload.clone()));
    }
    if blobs.is_empty() {
        return Ok(None);
    }
    let config_bytes = go_struct(&config);
    let config_digest = Digest::sha256(&config_bytes);
    manifest.config = Descriptor {
        media_type: OCI_CONFIG.into(),
        digest: config_digest.to_string(),
        size: config_bytes.len() as i64,
        annotations: BTreeMap::new(),
    };
    blobs.push((config_digest, config_bytes));
    Ok(Some(AttachmentUpdate {
        blobs,
        manifest: go_struct(&manifest),
    }))
}

/// A struct as Go's `json.Marshal` writes it: fields in declaration order, HTML escaped.
fn go_struct<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_string(v)
        .expect("serializable")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let key = PrivateKey::generate_p256();
        let manifest = br#"{"schemaVersion":2}"#;
        let s = SigstoreSignature::sign(&key, manifest, "reg.example/app:v1");
        assert_eq!(s.mime_type, MIME_TYPE);
        let (p, i) = s.verify_with_keys(&[key.public()]).unwrap();
        assert_eq!(i, 0);
        assert_eq!(p.manifest_digest, Digest::sha256(manifest));
        assert_eq!(p.docker_reference, "reg.example/app:v1");
        let mut t = s.clone();
        t.payload[10] ^= 1;
        assert!(t.verify_with_keys(&[key.public()]).is_err());
        let other = PrivateKey::generate_p256();
        assert!(s.verify_with_keys(&[other.public()]).is_err());
        let (_, i) = s.verify_with_keys(&[other.public(), key.public()]).unwrap();
        assert_eq!(i, 1);
        let back = SigstoreSignature::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn attachment_round_trip() {
        let key = PrivateKey::generate_p256();
        let a = SigstoreSignature::sign(&key, b"m1", "r/a:1");
        let b = SigstoreSignature::sign(&key, b"m1", "r/a:2");
        let first = add_to_attachment(None, std::slice::from_ref(&a))
            .unwrap()
            .unwrap();
        assert_eq!(first.blobs.len(), 2);
        let layers = attachment_layers(&first.manifest).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].signature(a.payload.clone()).unwrap(), a);
        assert!(layers[0].signature(b"x".to_vec()).is_err());
        let config = &first.blobs[1].1;
        assert!(
            String::from_utf8_lossy(config).starts_with(r#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:"#),
            "{}",
            String::from_utf8_lossy(config)
        );
        // The same signature again changes nothing; another one is appended.
        assert!(
            add_to_attachment(Some((&first.manifest, config)), std::slice::from_ref(&a))
                .unwrap()
                .is_none()
        );
        let second = add_to_attachment(Some((&first.manifest, config)), &[a, b.clone()])
            .unwrap()
            .unwrap();
        let layers = attachment_layers(&second.manifest).unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[1].signature(b.payload.clone()).unwrap(), b);
        assert!(attachment_layers(b"{").is_err());
        assert_eq!(
            attachment_tag(&Digest::sha256(b"m1")),
            format!("sha256-{}.sig", Digest::sha256(b"m1").hex())
        );
    }
}
