//! Evaluating `signedBy` and `sigstoreSigned` against the signatures an image has, as
//! containers/image does (`policy_eval_signedby.go`, `policy_eval_sigstore.go`): one accepted
//! signature satisfies the requirement; otherwise the reasons of every rejected one are given.

use super::config::{FulcioConfig, KeySource};
use super::identity::IdentityMatch;
use super::image::PolicyImage;
use crate::signing::fulcio::FulcioTrust;
use crate::signing::keys::PublicKey;
use crate::signing::openpgp::Keyring;
use crate::signing::payload::Payload;
use crate::signing::sigstore::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, MIME_TYPE,
};
use crate::signing::{Candidate, Signature, digest_matches, simple};

/// A signature that satisfied a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The requirement it satisfied (`signedBy`, `sigstoreSigned`).
    pub requirement: &'static str,
    /// `simple signing` or `sigstore`.
    pub format: &'static str,
    /// Where it was found ([`Candidate::origin`]).
    pub origin: String,
    /// The key: a GnuPG fingerprint, a sigstore key id ([`PublicKey::key_id`]) or
    /// `fulcio:<subject e-mail>`.
    pub key: String,
    /// The identity the signature names (`docker-reference`).
    pub identity: String,
}

/// Why a requirement was not satisfied, in skopeo's words: what a signature failed (a
/// signing error's text, a digest or identity that does not match), or the summary of all of
/// them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Reason(String);

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason(s)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Reason(s.to_string())
    }
}

impl From<crate::signing::SigningError> for Reason {
    fn from(e: crate::signing::SigningError) -> Self {
        Reason(e.to_string())
    }
}

impl From<super::config::KeyReadError> for Reason {
    fn from(e: super::config::KeyReadError) -> Self {
        Reason(e.to_string())
    }
}

/// Check the payload's digest and identity (in containers/image's order).
fn check_payload(
    payload: &Payload,
    image: &PolicyImage,
    manifest: &[u8],
    identity: &IdentityMatch,
) -> Result<(), Reason> {
    if !digest_matches(manifest, &payload.manifest_digest) {
        return Err(format!(
            "Signature for digest {} does not match",
            payload.manifest_digest
        )
        .into());
    }
    match identity.accepts(image.docker.as_ref(), &payload.docker_reference) {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "Signature for identity {:?} is not accepted",
            payload.docker_reference
        )
        .into()),
        None => Err(format!(
            "Docker reference match attempted on image {} with no known Docker reference identity",
            image.display
        )
        .into()),
    }
}

/// skopeo's summary of the rejections.
fn summary(rejections: Vec<(String, Reason)>, none: Reason) -> Reason {
    Reason(match rejections.len() {
        0 => return none,
        1 => {
            let (origin, r) = &rejections[0];
            format!("{r} ({origin})")
        }
        _ => format!(
            "None of the signatures were accepted, reasons: {}",
            rejections
                .iter()
                .map(|(o, r)| format!("{r} ({o})"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    })
}

/// `signedBy`.
pub fn signed_by(
    key_type: &str,
    keys: &KeySource,
    identity: &IdentityMatch,
    image: &PolicyImage,
    manifest: &[u8],
    candidates: &[Candidate],
) -> Result<Accepted, Reason> {
    let keyring = if key_type == "GPGKeys" {
        keys.load()
            .map_err(Reason::from)
            .and_then(|blobs| Keyring::from_blobs(&blobs).map_err(Reason::from))
            .and_then(|k| {
                if k.is_empty() {
                    Err("No public keys imported".into())
                } else {
                    Ok(k)
                }
            })
    } else {
        Err(format!("Unimplemented \"keyType\" value {key_type:?}").into())
    };
    let mut rejections = vec![];
    for c in candidates {
        let Signature::Simple(blob) = &c.signature else {
            continue;
        };
        let result = keyring.clone().and_then(|keyring| {
            let (payload, fingerprint) = simple::verify(&keyring, blob)?;
            check_payload(&payload, image, manifest, identity)?;
            Ok(Accepted {
                requirement: "signedBy",
                format: "simple signing",
                origin: c.origin.clone(),
                key: fingerprint,
                identity: payload.docker_reference,
            })
        });
        match result {
            Ok(a) => return Ok(a),
            Err(r) => rejections.push((c.origin.clone(), r)),
        }
    }
    Err(summary(
        rejections,
        "A signature was required, but no signature exists".into(),
    ))
}

/// What a `sigstoreSigned` requirement trusts, read once per check.
struct TrustRoot {
    keys: Option<Vec<PublicKey>>,
    fulcio: Option<FulcioTrust>,
    rekor: Option<Vec<PublicKey>>,
}

fn trust_root(
    keys: Option<&KeySource>,
    fulcio: Option<&FulcioConfig>,
    rekor: Option<&KeySource>,
) -> Result<TrustRoot, Reason> {
    let parse_all = |src: &KeySource, what: &str| -> Result<Vec<PublicKey>, Reason> {
        src.load()?
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                PublicKey::from_pem(pem)
                    .map_err(|e| Reason(format!("parsing {what} {}: {e}", i + 1)))
            })
            .collect()
    };
    let keys = keys.map(|k| parse_all(k, "public key")).transpose()?;
    let rekor = rekor
        .map(|k| parse_all(k, "Rekor public key"))
        .transpose()?;
    if let Some(r) = &rekor {
        for (i, k) in r.iter().enumerate() {
            if !matches!(k, PublicKey::P256(_) | PublicKey::P384(_)) {
                return Err(format!("Rekor public key {} is not using ECDSA", i + 1).into());
            }
        }
    }
    let fulcio = match fulcio {
        Some(f) => {
            let ca = f.ca.load()?;
            Some(FulcioTrust::new(
                &ca.concat(),
                &f.oidc_issuer,
                &f.subject_email,
            )?)
        }
        None => None,
    };
    Ok(TrustRoot {
        keys,
        fulcio,
        rekor,
    })
}

/// `sigstoreSigned`.
pub fn sigstore_signed(
    keys: Option<&KeySource>,
    fulcio: Option<&FulcioConfig>,
    rekor: Option<&KeySource>,
    identity: &IdentityMatch,
    image: &PolicyImage,
    manifest: &[u8],
    candidates: &[Candidate],
) -> Result<Accepted, Reason> {
    let root = trust_root(keys, fulcio, rekor);
    let mut rejections = vec![];
    let (mut non_sigstore, mut non_signature) = (0, 0);
    for c in candidates {
        let Signature::Sigstore(sig) = &c.signature else {
            non_sigstore += 1;
            continue;
        };
        if sig.mime_type != MIME_TYPE {
            non_signature += 1;
            continue;
        }
        let result = root.as_ref().map_err(Clone::clone).and_then(|root| {
            let annotation = |k: &str| {
                sig.annotations
                    .get(k)
                    .ok_or_else(|| format!("missing {k} annotation"))
            };
            let b64 = sig.signature_annotation().ok_or_else(|| {
                format!(
                    "missing {} annotation",
                    crate::signing::sigstore::SIGNATURE_ANNOTATION
                )
            })?;
            let (candidates_keys, key_name): (Vec<PublicKey>, Option<String>) =
                match (&root.keys, &root.fulcio) {
                    (Some(keys), None) => match &root.rekor {
                        Some(rekor) => {
                            let set = annotation(BUNDLE_ANNOTATION)?;
                            let mut failures = vec![];
                            let mut found = None;
                            for k in keys {
                                match crate::signing::rekor::verify_set(
                                    rekor,
                                    set.as_bytes(),
                                    k.to_pem().as_bytes(),
                                    b64,
                                    &sig.payload,
                                ) {
                                    Ok(_) => {
                                        found = Some(k.clone());
                                        break;
                                    }
                                    Err(e) => failures.push(e.to_string()),
                                }
                            }
                            match found {
                                Some(k) => (vec![k], None),
                                None => {
                                    return Err(format!(
                                        "No public key verified against the RekorSET: {}",
                                        failures.join(", ")
                                    )
                                    .into());
                                }
                            }
                        }
                        None => (keys.clone(), None),
                    },
                    (None, Some(fulcio)) => {
                        let rekor = root.rekor.as_ref().ok_or(
                        "Internal inconsistency: Fulcio CA specified without a Rekor public key",
                    )?;
                        let set = annotation(BUNDLE_ANNOTATION)?;
                        let cert = annotation(CERTIFICATE_ANNOTATION)?;
                        let chain = sig
                            .annotations
                            .get(CHAIN_ANNOTATION)
                            .map(String::as_str)
                            .unwrap_or("");
                        let time = crate::signing::rekor::verify_set(
                            rekor,
                            set.as_bytes(),
                            cert.as_bytes(),
                            b64,
                            &sig.payload,
                        )?;
                        let key = fulcio.verify(cert.as_bytes(), chain.as_bytes(), time)?;
                        (vec![key], Some(format!("fulcio:{}", fulcio.subject_email)))
                    }
                    _ => {
                        return Err(
                            "Internal inconsistency: not exactly one of public keys and Fulcio"
                                .into(),
                        );
                    }
                };
            let (payload, index) = sig.verify_with_keys(&candidates_keys)?;
            check_payload(&payload, image, manifest, identity)?;
            Ok(Accepted {
                requirement: "sigstoreSigned",
                format: "sigstore",
                origin: c.origin.clone(),
                key: key_name.unwrap_or_else(|| candidates_keys[index].key_id()),
                identity: payload.docker_reference,
            })
        });
        match result {
            Ok(a) => return Ok(a),
            Err(r) => rejections.push((c.origin.clone(), r)),
        }
    }
    let none = if non_sigstore == 0 && non_signature == 0 {
        "A signature was required, but no signature exists".into()
    } else {
        format!(
            "A signature was required, but no signature exists ({non_sigstore} non-sigstore signatures, {non_signature} sigstore non-signature attachments)"
        )
    };
    Err(summary(rejections, none.into()))
}
