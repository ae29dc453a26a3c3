//! DSSE envelopes (Dead Simple Signing Envelope v1) holding in-toto Statements (v1): the
//! signed promotion attestation of `ferry promote --attest`, stored as cosign stores
//! attestations (a layer of the `sha256-<hex>.att` attachment, media type
//! `application/vnd.dsse.envelope.v1+json`; see [`attestation`]).
//!
//! The signature covers the DSSE pre-authentication encoding
//! `DSSEv1 <len(type)> <type> <len(body)> <body>`, made with a sigstore key ([`super::keys`]).
//! The predicate type and fields are documented in docs/promote.md.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::SigningError;
use super::keys::{PrivateKey, PublicKey};
use super::sigstore::{SIGNATURE_ANNOTATION, SigstoreSignature};
use crate::reference::Digest;

/// The payload type of an in-toto statement in DSSE.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of ferry's promotion record.
pub const PROMOTION_PREDICATE_TYPE: &str = "urn:ferry:promotion:v1";
/// Media type of a DSSE envelope layer in a cosign attestation.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Largest envelope ferry reads.
pub const MAX_ENVELOPE: usize = 4 << 20;

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `payloadType`.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the payload.
    pub payload: String,
    /// Signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key id (ferry writes the key's [`PublicKey::key_id`]).
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the signature over the PAE.
    pub sig: String,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Sign `payload` of `payload_type` with `key`.
    pub fn sign(key: &PrivateKey, payload_type: &str, payload: &[u8]) -> Self {
        let b64 = &base64::engine::general_purpose::STANDARD;
        Envelope {
            payload_type: payload_type.to_string(),
            payload: b64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key.public().key_id(),
                sig: b64.encode(key.sign(&pae(payload_type, payload))),
            }],
        }
    }

    /// The envelope's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializable")
    }

    /// Parse an envelope and verify one of its signatures with one of `keys`: the payload
    /// type and payload.
    pub fn verify(bytes: &[u8], keys: &[PublicKey]) -> Result<(String, Vec<u8>), SigningError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(SigningError::malformed(format!(
                "DSSE envelope is larger than {MAX_ENVELOPE} bytes"
            )));
        }
        let env: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| SigningError::malformed(format!("invalid DSSE envelope: {e}")))?;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let payload = b64
            .decode(&env.payload)
            .map_err(|e| SigningError::malformed(format!("invalid DSSE payload: {e}")))?;
        let signed = pae(&env.payload_type, &payload);
        for s in &env.signatures {
            let Ok(sig) = b64.decode(&s.sig) else {
                continue;
            };
            if keys.iter().any(|k| k.verify(&signed, &sig).is_ok()) {
                return Ok((env.payload_type, payload));
            }
        }
        Err(SigningError::verification(
            "the DSSE envelope has no signature by the given key",
        ))
    }
}

/// The subject of a statement: an image by name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `registry/repository`.
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// An image subject.
    pub fn image(name: &str, digest: &Digest) -> Self {
        Subject {
            name: name.to_string(),
            digest: BTreeMap::from([(digest.algorithm().to_string(), digest.hex().to_string())]),
        }
    }
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement<P> {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub kind: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: P,
}

/// An image reference and digest in the promotion predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAt {
    /// The reference, normalised (`registry/repository:tag`).
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
}

/// A signature verified at the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedSignature {
    /// The manifest it signs (the image's, or for an index, the index's or one child's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// `simple signing` or `sigstore`.
    pub format: String,
    /// GnuPG fingerprint, or the sigstore key id (`sha256:` + 16 hex digits of the key's
    /// SubjectPublicKeyInfo digest), or the Fulcio subject e-mail.
    pub key: String,
    /// The identity the signature names (`docker-reference`).
    pub identity: String,
}

/// The pipeline run that promoted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Job or pipeline name (`JOB_NAME`).
    pub name: Option<String>,
    /// Build number (`BUILD_NUMBER`).
    pub build_number: Option<String>,
    /// Build URL (`BUILD_URL`).
    pub build_url: Option<String>,
}

/// The predicate of [`PROMOTION_PREDICATE_TYPE`]: the promotion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// The non-production image that was promoted.
    pub source: ImageAt,
    /// The production image written (the statement's subject).
    pub destination: ImageAt,
    /// The digest the destination tag pointed at before, if any.
    pub replaced: Option<String>,
    /// Signatures verified at the source under the trust policy.
    pub signatures_verified: Vec<VerifiedSignature>,
    /// The pipeline run.
    pub pipeline: Pipeline,
    /// ferry's version.
    pub ferry_version: String,
    /// When (RFC 3339, UTC, seconds).
    pub time: String,
}

/// The signed statement of a promotion: a DSSE envelope over the in-toto statement whose
/// subject is the destination image.
pub fn sign_promotion(
    key: &PrivateKey,
    destination_name: &str,
    promotion: &Promotion,
) -> Result<Envelope, SigningError> {
    let digest: Digest = promotion
        .destination
        .digest
        .parse()
        .map_err(|e| SigningError::malformed(format!("destination digest: {e}")))?;
    let statement = Statement {
        kind: STATEMENT_TYPE.to_string(),
        subject: vec![Subject::image(destination_name, &digest)],
        predicate_type: PROMOTION_PREDICATE_TYPE.to_string(),
        predicate: promotion.clone(),
    };
    let payload = serde_json::to_vec(&statement).expect("serializable");
    Ok(Envelope::sign(key, IN_TOTO_PAYLOAD_TYPE, &payload))
}

/// Verify a promotion envelope with `keys` and that its statement is about `digest`: the
/// promotion record.
pub fn verify_promotion(
    bytes: &[u8],
    keys: &[PublicKey],
    digest: &Digest,
) -> Result<Promotion, SigningError> {
    let (payload_type, payload) = Envelope::verify(bytes, keys)?;
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(SigningError::malformed(format!(
            "unexpected DSSE payload type {payload_type:?}"
        )));
    }
    let st: Statement<Promotion> = serde_json::from_slice(&payload)
        .map_err(|e| SigningError::malformed(format!("invalid promotion statement: {e}")))?;
    if st.kind != STATEMENT_TYPE || st.predicate_type != PROMOTION_PREDICATE_TYPE {
        return Err(SigningError::malformed(format!(
            "not a ferry promotion statement ({} / {})",
            st.kind, st.predicate_type
        )));
    }
    let about = st
        .subject
        .iter()
        .any(|s| s.digest.get(digest.algorithm()).map(String::as_str) == Some(digest.hex()));
    if !about || st.predicate.destination.digest != digest.as_str() {
        return Err(SigningError::verification(format!(
            "the promotion statement is not about {digest}"
        )));
    }
    Ok(st.predicate)
}

/// The tag of the attestation attachment of `digest`: `sha256-<hex>.att`.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("{}-{}.att", digest.algorithm(), digest.hex())
}

/// The envelope as a layer of the `.att` attachment, as cosign writes attestations (pass it
/// to [`super::sigstore::add_to_attachment`]).
pub fn attestation(envelope: &Envelope, predicate_type: &str) -> SigstoreSignature {
    SigstoreSignature {
        mime_type: DSSE_MEDIA_TYPE.to_string(),
        payload: envelope.to_json(),
        annotations: BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_string(), String::new()),
            ("predicateType".to_string(), predicate_type.to_string()),
        ]),
    }
}

/// Now, as the record's `time`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promotion(digest: &Digest) -> Promotion {
        Promotion {
            source: ImageAt {
                reference: "nonprod/app:abc".into(),
                digest: digest.to_string(),
            },
            destination: ImageAt {
                reference: "prod/app:abc".into(),
                digest: digest.to_string(),
            },
            replaced: None,
            signatures_verified: vec![VerifiedSignature {
                digest: digest.to_string(),
                format: "sigstore".into(),
                key: "sha256:0123456789abcdef".into(),
                identity: "nonprod/app:abc".into(),
            }],
            pipeline: Pipeline {
                name: Some("prod".into()),
                build_number: Some("7".into()),
                build_url: None,
            },
            ferry_version: env!("CARGO_PKG_VERSION").into(),
            time: now_rfc3339(),
        }
    }

    #[test]
    fn pae_as_the_spec_writes_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn promotion_signed_and_checked() {
        let key = PrivateKey::generate_p256();
        let d = Digest::sha256(b"manifest");
        let p = promotion(&d);
        let env = sign_promotion(&key, "prod/app", &p).unwrap();
        let bytes = env.to_json();
        assert_eq!(verify_promotion(&bytes, &[key.public()], &d).unwrap(), p);
        // Another digest, another key, a tampered payload: refused.
        let e = verify_promotion(&bytes, &[key.public()], &Digest::sha256(b"x")).unwrap_err();
        assert_eq!(
            e,
            SigningError::Verification(format!(
                "the promotion statement is not about {}",
                Digest::sha256(b"x")
            ))
        );
        assert!(verify_promotion(&bytes, &[PrivateKey::generate_p256().public()], &d).is_err());
        let mut t = env.clone();
        let b64 = &base64::engine::general_purpose::STANDARD;
        let mut payload = b64.decode(&t.payload).unwrap();
        let i = payload.len() / 2;
        payload[i] ^= 1;
        t.payload = b64.encode(payload);
        assert!(verify_promotion(&t.to_json(), &[key.public()], &d).is_err());
        let layer = attestation(&env, PROMOTION_PREDICATE_TYPE);
        assert_eq!(layer.mime_type, DSSE_MEDIA_TYPE);
        assert_eq!(attestation_tag(&d), format!("sha256-{}.att", d.hex()));
    }
}
