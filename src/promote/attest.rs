//! The signed promotion attestation: `ferry promote --attest` writes it, `ferry
//! verify-promotion` checks it.
//!
//! An in-toto Statement v1 whose subject is the production image (by digest) and whose
//! predicate is the promotion record ([`dsse::Promotion`], predicate type
//! [`dsse::PROMOTION_PREDICATE_TYPE`], documented in docs/promote.md), signed as a DSSE
//! envelope with the production sigstore key. It is stored as cosign stores attestations:
//!
//! - a layer of the `sha256-<hex>.att` attachment of the production digest (media type
//!   `application/vnd.dsse.envelope.v1+json`, annotations `dev.cosignproject.cosign/signature`
//!   (empty: the signature is inside the envelope) and `predicateType`), the manifest rebuilt
//!   as containers/image rebuilds `.sig` attachments, earlier attestations kept;
//! - where the registry has the OCI 1.1 referrers API, also as a referrer of the production
//!   digest, as `cosign attest --registry-referrers-mode=oci-1-1` writes one: an OCI image
//!   manifest of artifact type `application/vnd.in-toto+json`, the empty config, the same
//!   layer, `subject` = the production manifest.
//!
//! The attestation is written after the production tag was read back (see
//! [`crate::promote::Promoter::promote`]): the record it signs holds the digest the tag was
//! seen to name, so it states a promotion that happened.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::Record;
use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, ManifestError};
use crate::reference::{Digest, ImageRef};
use crate::registry::referrers::cosign_tag;
use crate::registry::{Client, Scope};
use crate::signing::SigningError;
use crate::signing::dsse::{
    self, DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, ImageAt, PROMOTION_PREDICATE_TYPE, Pipeline,
    Promotion,
};
use crate::signing::keys::{PrivateKey, PublicKey};
use crate::signing::sigstore::attachment_layers;

/// The empty JSON object, the config of a referrer artifact.
const EMPTY_CONFIG: &[u8] = b"{}";
/// Most referrers of one digest looked at for attestations.
const MAX_REFERRERS_READ: usize = 64;

/// The promotion record a statement carries, from `promote`'s record.
pub fn promotion(record: &Record) -> Promotion {
    let plain = |r: &str| r.trim_start_matches("docker://").to_string();
    Promotion {
        source: ImageAt {
            reference: plain(&record.source),
            digest: record.source_digest.clone(),
        },
        destination: ImageAt {
            reference: plain(&record.destination),
            digest: record.destination_digest.clone(),
        },
        replaced: record.replaced_digest.clone(),
        signatures_verified: record
            .signatures_verified
            .iter()
            .map(|v| dsse::VerifiedSignature {
                digest: v.digest.clone(),
                format: v.format.clone(),
                key: v.key.clone(),
                identity: v.identity.clone(),
            })
            .collect(),
        pipeline: Pipeline {
            name: record.jenkins.job_name.clone(),
            build_number: record.jenkins.build_number.clone(),
            build_url: record.jenkins.build_url.clone(),
        },
        ferry_version: record.ferry_version.to_string(),
        time: record.time.clone(),
    }
}

/// Where an attestation was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The `sha256-<hex>.att` tag.
    pub tag: String,
    /// The envelope's digest (the attachment layer).
    pub envelope: Digest,
    /// The referrer manifest, when the registry has the referrers API.
    pub referrer: Option<Digest>,
}

/// Sign `promotion` with `key` and attach it to the production image `dst` at its digest.
pub async fn attach(
    client: &Client,
    dst: &ImageRef,
    key: &PrivateKey,
    promotion: &Promotion,
) -> Result<Written> {
    let repo = &dst.repository;
    let digest: Digest =
        promotion
            .destination
            .digest
            .parse()
            .map_err(|e: crate::reference::ReferenceError| Error::Invalid {
                what: "production digest".into(),
                location: client.location(repo),
                reason: e.to_string(),
            })?;
    let name = format!("{}/{}", dst.registry, dst.repository);
    let envelope = dsse::sign_promotion(key, &name, promotion)?;
    let layer = dsse::attestation(&envelope, PROMOTION_PREDICATE_TYPE);
    let envelope_digest = Digest::sha256(&layer.payload);
    let scope = Scope::push(repo);
    client
        .put_cosign_layers(
            repo,
            &digest,
            "att",
            std::slice::from_ref(&layer),
            &scope,
            false,
        )
        .await?;
    let tag = cosign_tag(&digest, "att");
    log::debug!(
        "{}/{repo}: attestation layer {envelope_digest} in {tag}",
        dst.registry
    );
    let referrer = match client.api_referrers(repo, &digest, &[], &scope).await? {
        None => {
            log::debug!(
                "{}: no referrers API; the attestation is in {tag} only",
                dst.registry
            );
            None
        }
        Some(_) => {
            let subject = client.get_manifest(repo, digest.as_str()).await?;
            client
                .ensure_blob(repo, Bytes::from_static(EMPTY_CONFIG), &scope)
                .await?;
            let referrer = referrer_manifest(
                &subject,
                &layer.payload,
                &layer.annotations,
                &promotion.time,
            )
            .map_err(|reason| Error::Invalid {
                what: "promotion attestation referrer".into(),
                location: client.location(repo),
                reason: reason.to_string(),
            })?;
            if !client.put_referrer(repo, &digest, &referrer).await? {
                // A registry that lists referrers but did not index this one: keep the
                // fallback tag up to date as well, as the distribution spec asks of clients.
                client
                    .merge_fallback(repo, &digest, std::slice::from_ref(&referrer))
                    .await?;
            }
            Some(referrer.digest)
        }
    };
    Ok(Written {
        tag,
        envelope: envelope_digest,
        referrer,
    })
}

/// The referrer manifest of an attestation, as cosign's `WriteAttestationsReferrer` writes
/// it. The envelope blob is uploaded by [`Client::put_cosign_layers`] before.
fn referrer_manifest(
    subject: &Manifest,
    envelope: &[u8],
    annotations: &BTreeMap<String, String>,
    time: &str,
) -> std::result::Result<Manifest, ManifestError> {
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "artifactType": IN_TOTO_PAYLOAD_TYPE,
        "config": {
            "mediaType": manifest::OCI_EMPTY,
            "digest": Digest::sha256(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [{
            "mediaType": DSSE_MEDIA_TYPE,
            "digest": Digest::sha256(envelope).to_string(),
            "size": envelope.len(),
            "annotations": annotations,
        }],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest.to_string(),
            "size": subject.bytes.len(),
        },
        "annotations": {"org.opencontainers.image.created": time},
    });
    let bytes = Bytes::from(serde_json::to_vec(&doc).expect("JSON"));
    manifest::parse(bytes, Some(manifest::OCI_MANIFEST))
}

/// A DSSE envelope found attached to an image; nothing in it is trusted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where: `sha256-….att layer 1`, `referrer sha256:… layer 1`.
    pub origin: String,
    /// The envelope's bytes.
    pub envelope: Bytes,
}

/// The DSSE envelopes attached to `digest` in `repo`: the layers of its `.att` attachment,
/// then those of its referrers of artifact type `application/vnd.in-toto+json` (the API, else
/// the fallback tag).
pub async fn find(client: &Client, repo: &str, digest: &Digest) -> Result<Vec<Found>> {
    let mut out = vec![];
    let tag = cosign_tag(digest, "att");
    for (i, l) in client
        .cosign_layers(repo, digest, "att")
        .await?
        .into_iter()
        .enumerate()
    {
        if l.mime_type == DSSE_MEDIA_TYPE {
            out.push(Found {
                origin: format!("{tag} layer {}", i + 1),
                envelope: Bytes::from(l.payload),
            });
        }
    }
    let types = [IN_TOTO_PAYLOAD_TYPE.to_string()];
    let entries = client
        .referrers_of(repo, digest, &types, &Scope::pull(repo), None)
        .await?;
    for e in entries
        .into_iter()
        .filter(|e| e.artifact_type.as_deref() == Some(IN_TOTO_PAYLOAD_TYPE))
        .take(MAX_REFERRERS_READ)
    {
        let m = client
            .get_manifest(repo, e.descriptor.digest.as_str())
            .await?;
        let layers = attachment_layers(&m.bytes).map_err(|reason| Error::Invalid {
            what: format!("referrer {}", m.digest),
            location: client.location(repo),
            reason: reason.to_string(),
        })?;
        for (i, l) in layers.into_iter().enumerate() {
            if l.media_type == DSSE_MEDIA_TYPE {
                out.push(Found {
                    origin: format!("referrer {} layer {}", m.digest, i + 1),
                    envelope: client.small_blob(repo, &l.digest, l.size).await?,
                });
            }
        }
    }
    Ok(out)
}

/// A promotion attestation that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The record.
    pub promotion: Promotion,
    /// Where the same envelope was found (the `.att` layer, the referrer).
    pub origins: Vec<String>,
    /// The key ids the envelope names.
    pub key_ids: Vec<String>,
}

/// Check the envelopes `found` for `digest` with `keys`: the newest valid promotion
/// statement about `digest` (whose source digest is `source`, when given). The error says,
/// for each envelope, why it was refused.
pub fn verify(
    found: &[Found],
    keys: &[PublicKey],
    digest: &Digest,
    source: Option<&Digest>,
) -> std::result::Result<Verified, SigningError> {
    if found.is_empty() {
        return Err(SigningError::verification(format!(
            "no promotion attestation is attached to {digest} (no DSSE envelope in {} or in its referrers)",
            cosign_tag(digest, "att")
        )));
    }
    let mut good: Vec<(Bytes, Verified)> = vec![];
    let mut refused = vec![];
    for f in found {
        if let Some((_, v)) = good.iter_mut().find(|(b, _)| *b == f.envelope) {
            v.origins.push(f.origin.clone());
            continue;
        }
        match dsse::verify_promotion(&f.envelope, keys, digest) {
            Ok(p) => {
                if let Some(want) = source
                    && p.source.digest != want.as_str()
                {
                    refused.push(format!(
                        "{}: the promotion it records is from source digest {}, not {want}",
                        f.origin, p.source.digest
                    ));
                    continue;
                }
                let key_ids = serde_json::from_slice::<dsse::Envelope>(&f.envelope)
                    .map(|e| e.signatures.into_iter().map(|s| s.keyid).collect())
                    .unwrap_or_default();
                good.push((
                    f.envelope.clone(),
                    Verified {
                        promotion: p,
                        origins: vec![f.origin.clone()],
                        key_ids,
                    },
                ));
            }
            Err(e) => refused.push(format!("{}: {e}", f.origin)),
        }
    }
    // RFC 3339 UTC times of one format sort as strings.
    good.sort_by(|a, b| a.1.promotion.time.cmp(&b.1.promotion.time));
    match good.pop() {
        Some((_, v)) => Ok(v),
        None => Err(SigningError::verification(format!(
            "no valid promotion attestation for {digest}: {}",
            refused.join("; ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::{AttachedCounts, Counts};
    use crate::promote::JenkinsEnv;

    fn record(digest: &Digest) -> Record {
        Record {
            ferry_version: "1.2.3",
            time: "2026-01-01T00:00:00Z".into(),
            source: "docker://np.example/dev/app:abc".into(),
            destination: "docker://prod.example/prod/app:abc".into(),
            source_digest: digest.to_string(),
            destination_digest: digest.to_string(),
            media_type: manifest::OCI_MANIFEST.into(),
            already_present: false,
            replaced_digest: Some(Digest::sha256(b"old").to_string()),
            bytes: Counts::default(),
            blobs: Counts::default(),
            signatures_copied: 0,
            referrers: AttachedCounts::default(),
            attachments: AttachedCounts::default(),
            duration_ms: 1,
            signatures_verified: vec![crate::copy::VerifiedSignature {
                digest: digest.to_string(),
                requirement: "sigstoreSigned".into(),
                format: "sigstore".into(),
                origin: "sha256-….sig layer 1".into(),
                key: "sha256:0123456789abcdef".into(),
                identity: "np.example/dev/app:abc".into(),
            }],
            signatures_made: vec![],
            jenkins: JenkinsEnv {
                build_url: Some("https://jenkins.example/job/prod/7/".into()),
                job_name: Some("prod".into()),
                build_number: Some("7".into()),
            },
            attestation: None,
        }
    }

    #[test]
    fn record_to_predicate_and_back() {
        let d = Digest::sha256(b"manifest");
        let p = promotion(&record(&d));
        assert_eq!(p.source.reference, "np.example/dev/app:abc");
        assert_eq!(p.destination.digest, d.as_str());
        assert_eq!(p.replaced, Some(Digest::sha256(b"old").to_string()));
        assert_eq!(p.signatures_verified[0].key, "sha256:0123456789abcdef");
        assert_eq!(p.pipeline.build_number.as_deref(), Some("7"));
        let key = PrivateKey::generate_p256();
        let env = dsse::sign_promotion(&key, "prod.example/prod/app", &p).unwrap();
        let found = |origin: &str, e: &dsse::Envelope| Found {
            origin: origin.into(),
            envelope: Bytes::from(e.to_json()),
        };
        let both = [found("att", &env), found("ref", &env)];
        let v = verify(&both, &[key.public()], &d, Some(&d)).unwrap();
        assert_eq!(v.promotion, p);
        assert_eq!(v.origins, ["att", "ref"]);
        assert_eq!(v.key_ids, [key.public().key_id()]);
        let e = verify(&both, &[key.public()], &d, Some(&Digest::sha256(b"x"))).unwrap_err();
        assert!(
            matches!(&e, SigningError::Verification(m) if m.contains("from source digest")),
            "{e}"
        );
        let e = verify(&both, &[key.public()], &Digest::sha256(b"x"), None).unwrap_err();
        assert!(
            matches!(&e, SigningError::Verification(m) if m.contains("not about")),
            "{e}"
        );
        let e = verify(&[], &[key.public()], &d, None).unwrap_err();
        assert!(
            matches!(&e, SigningError::Verification(m) if m.contains("no promotion attestation")),
            "{e}"
        );
        // The newest of two valid ones.
        let mut later = p;
        later.time = "2026-02-01T00:00:00Z".into();
        let env2 = dsse::sign_promotion(&key, "prod.example/prod/app", &later).unwrap();
        let v = verify(
            &[found("new", &env2), found("old", &env)],
            &[key.public()],
            &d,
            None,
        )
        .unwrap();
        assert_eq!(v.promotion.time, later.time);
    }

    #[test]
    fn referrer_as_cosign_writes_it() {
        let subject = manifest::parse(
            Bytes::from_static(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#,
            ),
            None,
        )
        .unwrap();
        let ann = BTreeMap::from([("predicateType".to_string(), "t".to_string())]);
        let m = referrer_manifest(&subject, b"{\"x\":1}", &ann, "2026-01-01T00:00:00Z").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["artifactType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(v["config"]["mediaType"], manifest::OCI_EMPTY);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["layers"][0]["mediaType"], DSSE_MEDIA_TYPE);
        assert_eq!(v["layers"][0]["annotations"]["predicateType"], "t");
        assert_eq!(v["subject"]["digest"], subject.digest.as_str());
        assert_eq!(v["subject"]["size"], subject.bytes.len());
    }
}
