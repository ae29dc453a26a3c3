//! Rekor signed entry timestamps (SETs), checked offline as containers/image checks them
//! (`signature/internal/rekor_set.go`): no request to Rekor.
//!
//! The `dev.sigstore.cosign/bundle` annotation holds `{"SignedEntryTimestamp": base64,
//! "Payload": {"body": base64, "integratedTime": n, "logIndex": n, "logID": "…"}}`. The SET
//! is an ECDSA signature by the Rekor key over SHA-256 of the RFC 8785 (JCS) canonical form of
//! `Payload`; `body` is a `hashedrekord` 0.0.1 entry naming the public key or certificate
//! (PEM), the signature and the SHA-256 of the signed payload — all three must be the
//! signature's own.

use base64::Engine as _;
use ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::Digest as _;

use super::error::SigningError;
use super::json::{Strict, exact_fields};
use super::keys::PublicKey;

/// Verify `set` (the bundle annotation) with any of `rekor_keys` (ECDSA), for a signature
/// made by `key_or_cert_pem` (a PEM public key or certificate) whose base64 annotation is
/// `signature_b64` over `payload`. Returns the entry's `integratedTime` (seconds).
pub fn verify_set(
    rekor_keys: &[PublicKey],
    set: &[u8],
    key_or_cert_pem: &[u8],
    signature_b64: &str,
    payload: &[u8],
) -> Result<i64, SigningError> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let doc =
        Strict::parse(set).map_err(|e| SigningError::rekor(format!("invalid Rekor SET: {e}")))?;
    let [set_sig, set_payload] = exact_fields(
        doc.object("Rekor SET").map_err(SigningError::in_rekor)?,
        ["SignedEntryTimestamp", "Payload"],
        "Rekor SET",
    )
    .map_err(SigningError::in_rekor)?;
    let set_sig = set_sig
        .bytes("SignedEntryTimestamp")
        .map_err(SigningError::in_rekor)?;
    let canonical = serde_json_canonicalizer::to_vec(&to_value(set_payload))
        .map_err(|e| SigningError::rekor(format!("canonicalizing Rekor SET JSON: {e}")))?;
    let hash = sha2::Sha256::digest(&canonical);
    let matched = rekor_keys.iter().any(|k| match k {
        PublicKey::P256(v) => p256::ecdsa::Signature::from_der(&set_sig)
            .is_ok_and(|s| v.verify_prehash(&hash, &s).is_ok()),
        PublicKey::P384(v) => p384::ecdsa::Signature::from_der(&set_sig)
            .is_ok_and(|s| v.verify_prehash(&hash, &s).is_ok()),
        _ => false,
    });
    if !matched {
        return Err(SigningError::rekor(
            "cryptographic signature verification of Rekor SET failed",
        ));
    }
    // Read what was verified: the canonical bytes, not the delivered representation.
    let verified = Strict::parse(&canonical).map_err(SigningError::in_rekor)?;
    let [body, integrated, _index, _log_id] = exact_fields(
        verified
            .object("Rekor SET payload")
            .map_err(SigningError::in_rekor)?,
        ["body", "integratedTime", "logIndex", "logID"],
        "Rekor SET payload",
    )
    .map_err(SigningError::in_rekor)?;
    let integrated = integrated
        .int64("integratedTime")
        .map_err(SigningError::in_rekor)?;
    _index.int64("logIndex").map_err(SigningError::in_rekor)?;
    _log_id.string("logID").map_err(SigningError::in_rekor)?;
    let body = body.bytes("body").map_err(SigningError::in_rekor)?;
    let entry: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        SigningError::rekor(format!("decoding the body of a Rekor SET payload: {e}"))
    })?;
    if entry.get("kind").and_then(|v| v.as_str()) != Some("hashedrekord") {
        return Err(SigningError::rekor(
            "the Rekor SET payload is not a hashedrekord entry",
        ));
    }
    match entry.get("apiVersion").and_then(|v| v.as_str()) {
        Some("0.0.1") => {}
        None => return Err(SigningError::rekor("missing Rekor SET Payload API version")),
        Some(v) => {
            return Err(SigningError::rekor(format!(
                "unsupported Rekor SET Payload hashedrekord version {v:?}"
            )));
        }
    }
    let spec = entry.get("spec").cloned().unwrap_or_default();
    let text = |p: &str| spec.pointer(p).and_then(|v| v.as_str());
    // The key or certificate.
    let rekor_key = text("/signature/publicKey/content").ok_or_else(|| {
        SigningError::rekor(r#"Missing "signature.publicKey" field in hashedrekord"#)
    })?;
    let rekor_key = b64
        .decode(rekor_key)
        .map_err(|e| SigningError::rekor(format!("invalid publicKey in Rekor SET: {e}")))?;
    let rekor_der = single_pem(&rekor_key)
        .ok_or_else(|| SigningError::rekor("publicKey in Rekor SET is not in PEM format"))?;
    let ours = single_pem(key_or_cert_pem).ok_or_else(|| {
        SigningError::rekor(
            "public key or cert to be matched against publicKey in Rekor SET is not in PEM format",
        )
    })?;
    if rekor_der != ours {
        return Err(SigningError::rekor("publicKey in Rekor SET does not match"));
    }
    // The signature.
    let rekor_sig = text("/signature/content")
        .ok_or_else(|| SigningError::rekor(r#"Missing "signature" field in hashedrekord"#))?;
    let rekor_sig = b64
        .decode(rekor_sig)
        .map_err(|e| SigningError::rekor(format!("invalid signature in Rekor SET: {e}")))?;
    let sig = b64
        .decode(signature_b64)
        .map_err(|e| SigningError::rekor(format!("decoding signature base64: {e}")))?;
    if rekor_sig != sig {
        return Err(SigningError::rekor("signature in Rekor SET does not match"));
    }
    // The payload's hash.
    match text("/data/hash/algorithm") {
        Some("sha256") => {}
        Some(a) => {
            return Err(SigningError::rekor(format!(
                r#"Unexpected "data.hash.algorithm" value {a:?}"#
            )));
        }
        None => {
            return Err(SigningError::rekor(
                r#"Missing "data.hash.algorithm" field in hashedrekord"#,
            ));
        }
    }
    let value = text("/data/hash/value")
        .ok_or_else(|| SigningError::rekor(r#"Missing "data.hash.value" field in hashedrekord"#))?;
    let value = hex::decode(value).map_err(|e| {
        SigningError::rekor(format!(
            r#"Invalid "data.hash.value" field in hashedrekord: {e}"#
        ))
    })?;
    if value != sha2::Sha256::digest(payload).as_slice() {
        return Err(SigningError::rekor("payload in Rekor SET does not match"));
    }
    Ok(integrated)
}

/// The DER of a PEM text holding exactly one block and nothing after it.
fn single_pem(bytes: &[u8]) -> Option<Vec<u8>> {
    let blocks = pem::parse_many(bytes).ok()?;
    match blocks.as_slice() {
        [one] => Some(one.contents().to_vec()),
        _ => None,
    }
}

fn to_value(s: &Strict) -> serde_json::Value {
    use serde_json::Value;
    match s {
        Strict::Null => Value::Null,
        Strict::Bool(b) => Value::Bool(*b),
        Strict::Number(n) => Value::Number(n.clone()),
        Strict::String(s) => Value::String(s.clone()),
        Strict::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Strict::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

/// Build the bundle annotation a Rekor with `rekor_key` would have produced for this
/// signature (tests: ferry never uploads to Rekor).
#[cfg(test)]
pub(crate) fn make_set(
    rekor_key: &p256::ecdsa::SigningKey,
    key_or_cert_pem: &[u8],
    signature_b64: &str,
    payload: &[u8],
    integrated_time: i64,
) -> Vec<u8> {
    use ecdsa::signature::hazmat::PrehashSigner as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let entry = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(payload))}},
            "signature": {"content": signature_b64, "publicKey": {"content": b64.encode(key_or_cert_pem)}},
        },
    });
    let set_payload = serde_json::json!({
        "body": b64.encode(serde_json::to_vec(&entry).expect("json")),
        "integratedTime": integrated_time,
        "logIndex": 1,
        "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
    });
    let canonical = serde_json_canonicalizer::to_vec(&set_payload).expect("json");
    let sig: p256::ecdsa::Signature = rekor_key
        .sign_prehash(&sha2::Sha256::digest(&canonical))
        .expect("signing");
    serde_json::to_vec(&serde_json::json!({
        "SignedEntryTimestamp": b64.encode(sig.to_der().as_bytes()),
        "Payload": set_payload,
    }))
    .expect("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_verifies_and_every_part_is_bound() {
        let rekor = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let rekor_pub = PublicKey::P256(*rekor.verifying_key());
        let signer = super::super::keys::PrivateKey::generate_p256();
        let pem = signer.public().to_pem();
        let payload = b"payload";
        let sig = b64(&signer.sign(payload));
        let set = make_set(&rekor, pem.as_bytes(), &sig, payload, 1_700_000_000);
        assert_eq!(
            verify_set(
                std::slice::from_ref(&rekor_pub),
                &set,
                pem.as_bytes(),
                &sig,
                payload
            ),
            Ok(1_700_000_000)
        );
        // Another Rekor key, payload, signature or key: refused.
        let other = PublicKey::P256(
            *p256::ecdsa::SigningKey::random(&mut rand_core::OsRng).verifying_key(),
        );
        assert!(verify_set(&[other], &set, pem.as_bytes(), &sig, payload).is_err());
        let e = verify_set(
            std::slice::from_ref(&rekor_pub),
            &set,
            pem.as_bytes(),
            &sig,
            b"payloaD",
        )
        .unwrap_err();
        assert_eq!(
            e,
            SigningError::Rekor("payload in Rekor SET does not match".into())
        );
        let sig2 = b64(&signer.sign(b"x"));
        assert!(
            verify_set(
                std::slice::from_ref(&rekor_pub),
                &set,
                pem.as_bytes(),
                &sig2,
                payload
            )
            .is_err()
        );
        let pem2 = super::super::keys::PrivateKey::generate_p256()
            .public()
            .to_pem();
        assert!(
            verify_set(
                std::slice::from_ref(&rekor_pub),
                &set,
                pem2.as_bytes(),
                &sig,
                payload
            )
            .is_err()
        );
        // A tampered SET (integratedTime changed): the SET signature fails.
        let t = String::from_utf8(set)
            .unwrap()
            .replace("1700000000", "1700000001");
        let e = verify_set(&[rekor_pub], t.as_bytes(), pem.as_bytes(), &sig, payload).unwrap_err();
        assert_eq!(
            e,
            SigningError::Rekor("cryptographic signature verification of Rekor SET failed".into())
        );
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}
