//! `ferry verify-promotion IMAGE --key PUB`: check the signed promotion attestation that
//! `ferry promote --attest` attached to an image, and print the promotion it records.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::options::{GlobalOptions, Personality, RegistryFlags, RetryArgs};
use crate::error::{Error, Result};
use crate::image::ImageSource as _;
use crate::promote::attest;
use crate::reference::{Digest, ImageRef};
use crate::registry::source::RegistrySource;
use crate::signing::dsse::{PROMOTION_PREDICATE_TYPE, Promotion};
use crate::signing::keys::PublicKey;

pub(super) const LONG_ABOUT: &str = "Verify an image's signed promotion attestation.

ferry only: skopeo has no such verb (it verifies image signatures, not promotions). Reads the \
promotion attestations attached to IMAGE's digest — DSSE envelopes in the cosign attachment \
tag sha256-<hex>.att and in referrers of artifact type application/vnd.in-toto+json (the OCI \
1.1 referrers API, else the fallback tag), as `ferry promote --attest` writes them — and \
accepts one when its signature verifies with a --key, its in-toto statement has predicate type \
urn:ferry:promotion:v1, its subject and the record's destination digest are IMAGE's digest, \
and (with --source-digest) the record's source digest is D. The newest accepted record is \
printed (--format text or json).

Exit codes: 0 verified; 1 no attestation, or none that verifies (tampered, another key, about \
another digest, from another source digest) — one line says why for each one tried; 2 the \
image does not exist.";

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `verify-promotion`.
#[derive(Debug, Args)]
pub(super) struct VerifyPromotionArgs {
    /// The production image: docker://HOST[:PORT]/PATH[:TAG|@DIGEST] (docker:// may be left out).
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Public key (PEM) of the production signing key; repeatable, any one may verify.
    #[arg(long, value_name = "PUB", required = true)]
    key: Vec<PathBuf>,
    /// Require the record's source digest to be D.
    #[arg(long, value_name = "D")]
    source_digest: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    retry: RetryArgs,
}

pub(super) async fn run(
    args: VerifyPromotionArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    let input = if args.image.contains("://") {
        args.image.clone()
    } else {
        format!("docker://{}", args.image)
    };
    let image = ImageRef::parse_transport(&input)?;
    let source_digest: Option<Digest> = args
        .source_digest
        .as_deref()
        .map(|d| {
            d.parse().map_err(|e: crate::reference::ReferenceError| {
                Error::usage(format!("verify-promotion: --source-digest {d:?}: {e}"))
            })
        })
        .transpose()?;
    let mut keys = vec![];
    for p in &args.key {
        let pem = std::fs::read(p).map_err(|e| Error::io("reading public key", p, e))?;
        keys.push(PublicKey::from_pem(&pem).map_err(|e| {
            Error::usage(format!("verify-promotion: public key {}: {e}", p.display()))
        })?);
    }
    let client = args.registry.client(
        &image.registry,
        &image.repository,
        &args.retry,
        personality,
        global,
    )?;
    let source = RegistrySource::new(client.clone(), image.clone());
    let digest = source.manifest().await?.digest;
    let found = attest::find(&client, &image.repository, &digest).await?;
    let verified = attest::verify(&found, &keys, &digest, source_digest.as_ref())
        .map_err(|e| Error::Signing(format!("verify-promotion: {image}: {e}")))?;
    let text = match args.format {
        Format::Json => {
            let v = json!({
                "image": image.to_string(),
                "digest": digest.to_string(),
                "predicateType": PROMOTION_PREDICATE_TYPE,
                "keyIds": verified.key_ids,
                "foundIn": verified.origins,
                "predicate": verified.promotion,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).expect("JSON"))
        }
        Format::Text => text(&image, &digest, &verified),
    };
    super::inspect::write_stdout(text.as_bytes())
}

fn text(image: &ImageRef, digest: &Digest, v: &attest::Verified) -> String {
    let p: &Promotion = &v.promotion;
    let mut out = format!("Promotion attestation verified for {image} ({digest})\n");
    let mut field = |k: &str, val: &str| out.push_str(&format!("  {k:<13} {val}\n"));
    field("key:", &v.key_ids.join(", "));
    field("found in:", &v.origins.join(", "));
    field(
        "source:",
        &format!("{} {}", p.source.reference, p.source.digest),
    );
    field(
        "destination:",
        &format!("{} {}", p.destination.reference, p.destination.digest),
    );
    field("replaced:", p.replaced.as_deref().unwrap_or("nothing"));
    let pipeline = [
        p.pipeline.name.clone(),
        p.pipeline.build_number.as_ref().map(|n| format!("#{n}")),
        p.pipeline.build_url.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    field(
        "pipeline:",
        if pipeline.is_empty() { "-" } else { &pipeline },
    );
    field("ferry:", &p.ferry_version);
    field("time:", &p.time);
    if p.signatures_verified.is_empty() {
        field("signatures:", "none verified at the source");
    } else {
        for s in &p.signatures_verified {
            field(
                "signature:",
                &format!(
                    "{} key {} names {} (for {})",
                    s.format, s.key, s.identity, s.digest
                ),
            );
        }
    }
    out
}
