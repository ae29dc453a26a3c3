//! Image signatures: verifying them as skopeo verifies, making them as skopeo makes them.
//!
//! - [`simple`]: simple signing (an OpenPGP-signed JSON payload), with [`openpgp`] — rPGP to
//!   verify, the `gpg` program to sign;
//! - [`sigstore`]: cosign-style signatures and their `sha256-<hex>.sig` attachment, with
//!   [`keys`] (key files, cosign's encrypted private key), [`rekor`] and [`fulcio`] (offline
//!   checks of keyless signatures);
//! - [`payload`]: the payload both formats sign; [`json`]: JSON as containers/image reads
//!   and writes it;
//! - [`dsse`]: DSSE envelopes and in-toto statements (the promotion attestation).
//!
//! Deciding whether an image is acceptable is [`crate::policy`]'s job: it takes the
//! candidate signatures the engine gathered ([`Candidate`]) and checks them against the
//! requirements of containers-policy.json(5).

pub mod dsse;
pub mod error;
pub mod fulcio;
pub mod json;
pub mod keys;
pub mod openpgp;
pub mod payload;
pub mod rekor;
pub mod sigstore;
pub mod simple;

use crate::error::{Error, Result};
use crate::reference::Digest;
pub use error::SigningError;
pub use sigstore::SigstoreSignature;

/// A signature in either format, as found; nothing in it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// A simple-signing signature: the OpenPGP message bytes.
    Simple(Vec<u8>),
    /// A sigstore signature: payload, MIME type and annotations.
    Sigstore(SigstoreSignature),
}

/// The blob prefix of a sigstore signature in `signature-N` files.
const SIGSTORE_BLOB_PREFIX: &[u8] = b"\x00sigstore-json\n";

impl Signature {
    /// Read a signature blob as containers/image stores them in `dir:` images and lookaside
    /// storage (`signature-1`, `signature-2`, …): an OpenPGP message as it is, or a zero
    /// byte, the format name, a newline and the format's data.
    pub fn from_blob(blob: &[u8]) -> std::result::Result<Self, SigningError> {
        match blob.first() {
            None => Err(SigningError::malformed("empty signature blob")),
            Some(0xA0..=0xA3 | 0xC8 | 0x90..=0x92 | 0x3d | 0xC4 | 0x88..=0x8B | 0xC2) => {
                Ok(Signature::Simple(blob.to_vec()))
            }
            Some(0) => {
                let rest = &blob[1..];
                let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                    return Err(SigningError::malformed(
                        "invalid signature format, missing newline",
                    ));
                };
                let (format, data) = (&rest[..nl], &rest[nl + 1..]);
                if let Some(b) = format.iter().find(|&&b| !(32..0x7f).contains(&b)) {
                    return Err(SigningError::malformed(format!(
                        "invalid signature format, non-ASCII byte {b:#x}"
                    )));
                }
                match format {
                    b"simple-signing" => Ok(Signature::Simple(data.to_vec())),
                    b"sigstore-json" => {
                        Ok(Signature::Sigstore(SigstoreSignature::from_json(data)?))
                    }
                    other => Err(SigningError::malformed(format!(
                        "unrecognized signature format {:?}",
                        String::from_utf8_lossy(other)
                    ))),
                }
            }
            Some(b) => Err(SigningError::malformed(format!(
                "unrecognized signature format, starting with binary {b:#x}"
            ))),
        }
    }

    /// The blob containers/image writes for this signature.
    pub fn to_blob(&self) -> Vec<u8> {
        match self {
            Signature::Simple(b) => b.clone(),
            Signature::Sigstore(s) => {
                let mut out = SIGSTORE_BLOB_PREFIX.to_vec();
                out.extend_from_slice(&s.to_json());
                out
            }
        }
    }

    /// `simple signing` or `sigstore`, for messages.
    pub fn format_name(&self) -> &'static str {
        match self {
            Signature::Simple(_) => "simple signing",
            Signature::Sigstore(_) => "sigstore",
        }
    }
}

/// A signature the engine found, and where (for messages: `OpenShift signature API #1`,
/// `sha256-….sig layer 2`, `signature-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where it was found.
    pub origin: String,
    /// The signature.
    pub signature: Signature,
}

impl Candidate {
    /// A candidate.
    pub fn new(origin: impl Into<String>, signature: Signature) -> Self {
        Candidate {
            origin: origin.into(),
            signature,
        }
    }
}

/// The URL of signature number `index` (from 1) of manifest `digest` in lookaside storage
/// (`registries.d`'s `lookaside`/`sigstore`, or `lookaside-staging` to write), as
/// containers/image builds it: `<base>/<repository path>@<algorithm>=<hex>/signature-<index>`,
/// e.g. `file:///var/lib/containers/sigstore/team/app@sha256=0123…/signature-1`. Readers
/// fetch 1, 2, … until the first one that does not exist.
pub fn lookaside_url(base: &url::Url, repository: &str, digest: &Digest, index: usize) -> url::Url {
    let mut u = base.clone();
    let path = format!(
        "{}/{repository}@{}={}/signature-{index}",
        base.path().trim_end_matches('/'),
        digest.algorithm(),
        digest.hex()
    );
    u.set_path(&path);
    u
}

/// The digest skopeo signs for manifest bytes: SHA-256 of the bytes (a signed Docker schema 1
/// manifest, whose digest excludes its JWS signatures, is refused).
pub fn manifest_digest(manifest: &[u8]) -> Result<Digest> {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(manifest)
        && m.get("schemaVersion").and_then(serde_json::Value::as_i64) == Some(1)
        && m.contains_key("signatures")
    {
        return Err(Error::Unsupported(
            "signing a signed Docker schema 1 manifest".into(),
        ));
    }
    Ok(Digest::sha256(manifest))
}

/// Whether `manifest` has the digest `digest` (in that digest's algorithm).
pub fn digest_matches(manifest: &[u8], digest: &Digest) -> bool {
    matches!(digest.algorithm(), "sha256" | "sha384" | "sha512")
        && digest.verify(manifest).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob prefix of a simple signature in the new format (the old one has none).
    const SIMPLE_BLOB_PREFIX: &[u8] = b"\x00simple-signing\n";

    #[test]
    fn blobs_as_containers_image_stores_them() {
        let simple = Signature::from_blob(b"\xa3\x01rest").unwrap();
        assert_eq!(simple, Signature::Simple(b"\xa3\x01rest".to_vec()));
        assert_eq!(simple.to_blob(), b"\xa3\x01rest");
        let key = keys::PrivateKey::generate_p256();
        let s = Signature::Sigstore(SigstoreSignature::sign(&key, b"m", "r/x:1"));
        let blob = s.to_blob();
        assert!(blob.starts_with(SIGSTORE_BLOB_PREFIX));
        assert_eq!(Signature::from_blob(&blob).unwrap(), s);
        let mut new_simple = SIMPLE_BLOB_PREFIX.to_vec();
        new_simple.extend_from_slice(b"\xa3x");
        assert_eq!(
            Signature::from_blob(&new_simple).unwrap(),
            Signature::Simple(b"\xa3x".to_vec())
        );
        for bad in [&b""[..], b"{", b"\x00nonl", b"\x00other\n{}", b"\x00\x01\n"] {
            assert!(Signature::from_blob(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lookaside_urls() {
        let d = Digest::sha256(b"m");
        let base = url::Url::parse("file:///var/lib/containers/sigstore").unwrap();
        assert_eq!(
            lookaside_url(&base, "team/app", &d, 2).as_str(),
            format!(
                "file:///var/lib/containers/sigstore/team/app@sha256={}/signature-2",
                d.hex()
            )
        );
        let base = url::Url::parse("https://sigs.example/store/").unwrap();
        assert_eq!(
            lookaside_url(&base, "a", &d, 1).as_str(),
            format!(
                "https://sigs.example/store/a@sha256={}/signature-1",
                d.hex()
            )
        );
    }

    #[test]
    fn digests() {
        let d = manifest_digest(b"{}").unwrap();
        assert!(digest_matches(b"{}", &d));
        assert!(!digest_matches(b"{} ", &d));
        assert!(manifest_digest(br#"{"schemaVersion":1,"signatures":[]}"#).is_err());
    }
}
