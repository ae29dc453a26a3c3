//! The signed payload both signature formats share (containers/image `docs/containers-signature.5.md`):
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"reg/repo:tag"},
//!              "image":{"docker-manifest-digest":"sha256:…"},
//!              "type":"atomic container signature"},
//!  "optional":{"creator":"…","timestamp":1700000000}}
//! ```
//!
//! Simple signing uses the type `atomic container signature`, sigstore `cosign container image
//! signature`. `critical` must have exactly these fields; `optional` may have others (ignored),
//! and for sigstore may be `null` (as cosign writes it).

use super::error::SigningError;
use super::json::{Strict, exact_fields, go_marshal};
use crate::reference::Digest;

/// The type of a simple-signing payload.
pub const SIMPLE_TYPE: &str = "atomic container signature";
/// The type of a sigstore (cosign) payload.
pub const SIGSTORE_TYPE: &str = "cosign container image signature";

/// What a payload says, not yet trusted: the caller decides whether to believe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: Digest,
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `optional.creator`.
    pub creator: Option<String>,
    /// `optional.timestamp` (seconds since the epoch).
    pub timestamp: Option<i64>,
}

impl Payload {
    /// A new payload for `digest` as `reference`, created now by ferry.
    pub fn new(digest: Digest, reference: &str) -> Self {
        Payload {
            manifest_digest: digest,
            docker_reference: reference.to_string(),
            creator: Some(format!("ferry {}", env!("CARGO_PKG_VERSION"))),
            timestamp: Some(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            ),
        }
    }

    /// The bytes to sign, as containers/image marshals them (Go's sorted keys).
    pub fn to_bytes(&self, kind: &str) -> Vec<u8> {
        let mut optional = serde_json::Map::new();
        if let Some(c) = &self.creator {
            optional.insert("creator".into(), c.clone().into());
        }
        if let Some(t) = self.timestamp {
            optional.insert("timestamp".into(), t.into());
        }
        go_marshal(&serde_json::json!({
            "critical": {
                "type": kind,
                "image": {"docker-manifest-digest": self.manifest_digest.as_str()},
                "identity": {"docker-reference": self.docker_reference},
            },
            "optional": optional,
        }))
    }

    /// Parse a payload of type `kind`, as strictly as containers/image does.
    pub fn parse(bytes: &[u8], kind: &str) -> Result<Self, SigningError> {
        let doc = Strict::parse(bytes)?;
        let [critical, optional] = exact_fields(
            doc.object("signature")?,
            ["critical", "optional"],
            "signature",
        )?;
        let mut creator = None;
        let mut timestamp = None;
        let optional_null = kind == SIGSTORE_TYPE && *optional == Strict::Null;
        if !optional_null {
            for (k, v) in optional.object("optional")? {
                match k.as_str() {
                    "creator" => creator = Some(v.string("optional.creator")?.to_string()),
                    "timestamp" => {
                        timestamp = Some(v.int64("optional.timestamp").map_err(|_| {
                            SigningError::malformed("Field optional.timestamp is not an integer")
                        })?);
                    }
                    _ => {}
                }
            }
        }
        let [t, image, identity] = exact_fields(
            critical.object("critical")?,
            ["type", "image", "identity"],
            "critical",
        )?;
        let t = t.string("critical.type")?;
        if t != kind {
            return Err(SigningError::malformed(format!(
                "Unrecognized signature type {t}"
            )));
        }
        let [digest] = exact_fields(
            image.object("critical.image")?,
            ["docker-manifest-digest"],
            "critical.image",
        )?;
        let digest = digest.string("docker-manifest-digest")?;
        let manifest_digest = digest.parse::<Digest>().map_err(|e| {
            SigningError::malformed(format!(
                "invalid docker-manifest-digest value {digest:?}: {e}"
            ))
        })?;
        let [reference] = exact_fields(
            identity.object("critical.identity")?,
            ["docker-reference"],
            "critical.identity",
        )?;
        Ok(Payload {
            manifest_digest,
            docker_reference: reference.string("docker-reference")?.to_string(),
            creator,
            timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::sha256(b"m")
    }

    #[test]
    fn bytes_as_containers_image_writes_them() {
        let p = Payload {
            manifest_digest: digest(),
            docker_reference: "reg.example/ns/app:v1".into(),
            creator: Some("ferry 0.1.0".into()),
            timestamp: Some(1_700_000_000),
        };
        let b = p.to_bytes(SIGSTORE_TYPE);
        assert_eq!(
            String::from_utf8(b.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"reg.example/ns/app:v1"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":{{"creator":"ferry 0.1.0","timestamp":1700000000}}}}"#,
                digest()
            )
        );
        assert_eq!(Payload::parse(&b, SIGSTORE_TYPE).unwrap(), p);
        assert_eq!(
            Payload::parse(&b, SIMPLE_TYPE).unwrap_err(),
            SigningError::Malformed(format!("Unrecognized signature type {SIGSTORE_TYPE}"))
        );
    }

    #[test]
    fn strict_parsing() {
        let d = digest();
        let ok = format!(
            r#"{{"critical":{{"type":"atomic container signature","image":{{"docker-manifest-digest":"{d}"}},"identity":{{"docker-reference":"r/x:1"}}}},"optional":{{"other":[1]}}}}"#
        );
        let p = Payload::parse(ok.as_bytes(), SIMPLE_TYPE).unwrap();
        assert_eq!(p.docker_reference, "r/x:1");
        assert_eq!(p.creator, None);
        for bad in [
            ok.replace(r#""optional""#, r#""extra":1,"optional""#),
            ok.replace(r#""type":"#, r#""type":"x","type":"#),
            ok.replace(r#"{"other":[1]}"#, r#"{"timestamp":1.5}"#),
            ok.replace(r#""docker-reference":"r/x:1""#, r#""docker-reference":1"#),
            ok.replace(&d.to_string(), "sha256:abc"),
            ok.replace(r#"{"other":[1]}"#, "null"),
        ] {
            assert!(
                Payload::parse(bad.as_bytes(), SIMPLE_TYPE).is_err(),
                "{bad}"
            );
        }
        // cosign writes `"optional": null`
        let cosign = ok
            .replace(SIMPLE_TYPE, SIGSTORE_TYPE)
            .replace(r#"{"other":[1]}"#, "null");
        assert!(Payload::parse(cosign.as_bytes(), SIGSTORE_TYPE).is_ok());
    }
}
