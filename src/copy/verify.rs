//! The trust policy at the copy (containers-policy.json(5)), as skopeo applies it: before
//! anything is written at the destination.
//!
//! A policy that rejects the image (`reject`, `signedBaseLayer`) fails at once, before any
//! request (skopeo reads the manifest first; the verdict is the same). One that
//! requires signatures (`signedBy`, `sigstoreSigned`) is evaluated for every manifest the
//! copy will write, as containers/image's `copySingleImage` and `copyMultipleImages` do: the
//! image; for `--multi-arch system` on an index, the one image chosen (not the index); for an
//! index copied whole, the index and each image in it. Each manifest's candidate signatures
//! come from the source ([`ImageSource::policy_signatures`]): OpenShift's signature API or
//! `registries.d` lookaside storage (`file://`, `http(s)://`) for simple signing, the
//! `sha256-<hex>.sig` attachment where `registries.d` sets `use-sigstore-attachments`, the
//! `signature-N` files of a `dir:` image. One failure fails the copy with one line naming
//! the requirement, the image and manifest, and the signatures tried; nothing has been
//! written by then (an image already at the destination is checked all the same).

use std::sync::Arc;

use serde::Serialize;

use super::plan::collect_children;
use super::{Copier, Node};
use crate::error::{Error, Result};
use crate::image::ImageSource;
use crate::manifest::Manifest;
use crate::policy::{Policy, PolicyImage};

/// The policy and the source image it is evaluated for.
#[derive(Debug, Clone)]
pub struct Gate {
    policy: Arc<Policy>,
    image: PolicyImage,
}

/// A signature the policy accepted, for reports (and the promotion record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedSignature {
    /// The manifest it signs.
    pub digest: String,
    /// The requirement it satisfied (`signedBy`, `sigstoreSigned`).
    pub requirement: String,
    /// `simple signing` or `sigstore`.
    pub format: String,
    /// Where it was found (`signature 1`, `sha256-….sig layer 1`, `signature-1`).
    pub origin: String,
    /// The key: a GnuPG fingerprint, a sigstore key id or `fulcio:<e-mail>`.
    pub key: String,
    /// The identity it names.
    pub identity: String,
}

impl VerifiedSignature {
    /// `Signature verified: signedBy (simple signing, key 0123…) names r/app:1, for
    /// sha256:… (signature 1)`, for logs.
    pub fn line(&self) -> String {
        format!(
            "Signature verified: {} ({}, key {}) names {}, for {} ({})",
            self.requirement, self.format, self.key, self.identity, self.digest, self.origin
        )
    }
}

impl Gate {
    /// The policy for a source image.
    pub fn new(policy: Arc<Policy>, image: PolicyImage) -> Self {
        Gate { policy, image }
    }

    /// Fail when the policy rejects the image outright; whether signatures must be checked.
    pub fn precheck(&self) -> Result<bool> {
        self.policy.needs_signatures_for(&self.image)
    }
}

impl Copier {
    /// Evaluate the policy for the source of this copy (see [`verify`](self)).
    pub fn with_policy(mut self, gate: Option<Gate>) -> Self {
        self.gate = gate;
        self
    }

    /// Whether the policy needs signatures checked (rejecting outright fails here).
    pub(super) fn policy_needs_signatures(&self) -> Result<bool> {
        match &self.gate {
            Some(g) => g.precheck(),
            None => Ok(false),
        }
    }

    /// Check every manifest of the plan that will be written: the root and its children.
    pub(super) async fn verify_plan(
        &self,
        src: &dyn ImageSource,
        root: &Node,
    ) -> Result<Vec<VerifiedSignature>> {
        let Some(gate) = &self.gate else {
            return Ok(vec![]);
        };
        let mut manifests: Vec<&Manifest> = vec![&root.manifest];
        let mut levels = vec![];
        collect_children(root, 0, &mut levels);
        manifests.extend(levels.into_iter().flatten());
        let checks = manifests.iter().map(|m| verify_one(gate, src, m));
        let verified = futures_util::future::try_join_all(checks).await?;
        Ok(verified.into_iter().flatten().collect())
    }
}

/// One manifest: its signatures gathered, the policy evaluated.
async fn verify_one(
    gate: &Gate,
    src: &dyn ImageSource,
    m: &Manifest,
) -> Result<Vec<VerifiedSignature>> {
    let candidates = src.policy_signatures(&m.digest).await?;
    let verified = gate
        .policy
        .verify_image(&gate.image, &m.bytes, &candidates)
        .map_err(|e| match e {
            Error::Policy(msg)
                if gate.image.transport == "docker"
                    && gate.policy.wants_sigstore(&gate.image)
                    && !src.reads_sigstore_attachments() =>
            {
                Error::Policy(format!(
                    "{msg} (sigstore signatures are read from sha256-<hex>.sig attachments where registries.d sets use-sigstore-attachments: true for the registry)"
                ))
            }
            other => other,
        })?;
    Ok(verified
        .accepted
        .into_iter()
        .map(|a| VerifiedSignature {
            digest: m.digest.to_string(),
            requirement: a.requirement.to_string(),
            format: a.format.to_string(),
            origin: a.origin,
            key: a.key,
            identity: a.identity,
        })
        .collect())
}
