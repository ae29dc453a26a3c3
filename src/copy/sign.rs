//! Signing the copied image (`--sign-by`, `--sign-by-sigstore-private-key`), as skopeo 1.18
//! (containers/image's `copy/sign.go`) signs it:
//!
//! - what is signed: every manifest the copy writes — the image; for `--multi-arch system` on
//!   an index, the one image chosen; for an index copied whole, each image copied and the
//!   index itself (containers/image signs each instance in `copySingleImage` and the list in
//!   `copyMultipleImages`); for `index-only`, the index;
//! - as what: the destination's Docker reference, or `--sign-identity`;
//! - where: simple signatures where the destination stores them (OpenShift's signature API,
//!   else the `registries.d` lookaside (staging) location, `file://` only; `dir:`'s
//!   `signature-N` files); sigstore signatures in the `sha256-<hex>.sig` attachment where
//!   `registries.d` sets `use-sigstore-attachments` (as ferry: always), `dir:`'s files.
//!
//! ferry differs in when, not in what: the signatures are made after planning and before
//! anything is written (a key gpg does not have, or a passphrase it refuses, fails with the
//! destination untouched), checked against what the destination can store before anything
//! is written (skopeo finds out after writing the image), and written before the destination
//! reference moves — the tag moves last.

use std::sync::Arc;

use serde::Serialize;

use super::plan::collect_children;
use super::{Copier, CopyReport, Ends, Node};
use crate::error::{Error, Result};
use crate::image::ManifestRole;
use crate::manifest::Manifest;
use crate::policy::identity::DockerName;
use crate::redact::Secret;
use crate::reference::Digest;
use crate::signing::keys::PrivateKey;
use crate::signing::{Signature, SigstoreSignature, simple};

/// containers/image's progress messages of its two signers.
const SIMPLE_MESSAGE: &str = "Signing image using simple signing";
const SIGSTORE_MESSAGE: &str = "Signing image using a sigstore signature";

/// The keys a copy signs with, loaded (and a sigstore key decrypted) once, before anything
/// is copied. Holds secrets: its `Debug` names the keys only.
pub struct Signer {
    gpg: Option<GpgKey>,
    sigstore: Option<SigstoreKey>,
    identity: Option<DockerName>,
    attach_always: bool,
}

/// A GnuPG key of the user's keyring (`GNUPGHOME`) and the passphrase for it, if given.
struct GpgKey {
    fingerprint: String,
    passphrase: Option<Secret>,
}

/// A decrypted sigstore private key and its public key's id.
struct SigstoreKey {
    key: Arc<PrivateKey>,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("gpg", &self.gpg.as_ref().map(|g| &g.fingerprint))
            .field("sigstore", &self.sigstore.as_ref().map(|s| &s.key_id))
            .field("identity", &self.identity.as_ref().map(|i| i.to_string()))
            .field("attach_always", &self.attach_always)
            .finish()
    }
}

impl Signer {
    /// A signer; `None` without a key. `identity`: `--sign-identity` (a fully specified,
    /// normalised reference; see [`parse_identity`]). `attach_always`: write sigstore
    /// signatures to the `.sig` attachment even where `registries.d` does not set
    /// `use-sigstore-attachments` (ferry; skopeo refuses).
    pub fn new(
        gpg: Option<(String, Option<Secret>)>,
        sigstore: Option<PrivateKey>,
        identity: Option<DockerName>,
        attach_always: bool,
    ) -> Option<Self> {
        if gpg.is_none() && sigstore.is_none() {
            return None;
        }
        Some(Signer {
            gpg: gpg.map(|(fingerprint, passphrase)| GpgKey {
                fingerprint,
                passphrase,
            }),
            sigstore: sigstore.map(|k| SigstoreKey {
                key_id: k.public().key_id(),
                key: Arc::new(k),
            }),
            identity,
            attach_always,
        })
    }

    /// The decrypted sigstore key (`--sign-by-sigstore-private-key`), to sign something else
    /// with it (the promotion attestation).
    pub fn sigstore_key(&self) -> Option<Arc<PrivateKey>> {
        self.sigstore.as_ref().map(|s| s.key.clone())
    }

    /// The GnuPG fingerprint of `--sign-by`.
    pub fn gpg_fingerprint(&self) -> Option<&str> {
        self.gpg.as_ref().map(|g| g.fingerprint.as_str())
    }

    /// `--sign-identity`, if given.
    pub fn identity(&self) -> Option<String> {
        self.identity.as_ref().map(|i| i.to_string())
    }

    /// skopeo's `Creating signature: …` lines, one per signer.
    pub(super) fn creating_lines(&self) -> Vec<String> {
        let mut msgs = vec![];
        if self.gpg.is_some() {
            msgs.push(SIMPLE_MESSAGE);
        }
        if self.sigstore.is_some() {
            msgs.push(SIGSTORE_MESSAGE);
        }
        if msgs.len() == 1 {
            return vec![format!("Creating signature: {}", msgs[0])];
        }
        msgs.iter()
            .enumerate()
            .map(|(i, m)| format!("Creating signature {}: {m}", i + 1))
            .collect()
    }
}

/// `--sign-identity` as containers/image's `reference.ParseNamed` reads it (normalised form
/// only), with a tag or a digest.
pub fn parse_identity(s: &str) -> Result<DockerName> {
    let n = DockerName::parse_normalized(s)
        .map_err(|e| Error::usage(format!("Could not parse --sign-identity: {e}")))?;
    if n.to_string() != s {
        return Err(Error::usage(
            "Could not parse --sign-identity: repository name must be canonical",
        ));
    }
    if n.is_name_only() {
        return Err(Error::usage(format!(
            "Sign identity must be a fully specified reference {s}"
        )));
    }
    Ok(n)
}

/// A signature a copy made, for reports and the promotion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MadeSignature {
    /// The manifest it signs.
    pub digest: String,
    /// `simple signing` or `sigstore`.
    pub format: String,
    /// The key: the GnuPG fingerprint, or the sigstore public key's id.
    pub key: String,
    /// The identity it names.
    pub identity: String,
}

impl MadeSignature {
    /// `Signed sha256:… as r/app:1 (sigstore, key …)`, for logs.
    pub fn line(&self) -> String {
        format!(
            "Signed {} as {} ({}, key {})",
            self.digest, self.identity, self.format, self.key
        )
    }
}

/// The signatures made for one copy, not yet stored.
#[derive(Debug, Default)]
pub(super) struct NewSignatures {
    simple: Vec<(Digest, Vec<u8>)>,
    sigstore: Vec<(Digest, SigstoreSignature)>,
    made: Vec<MadeSignature>,
    /// skopeo's `Creating signature: …` lines.
    pub(super) creating: Vec<String>,
}

impl Copier {
    /// Make the signatures of every manifest of the plan this copy writes (see
    /// [`sign`](self)), after checking that the destination can store them — before
    /// anything is written. `None` when not signing.
    pub(super) async fn make_signatures(
        &self,
        ends: &Ends<'_>,
        root: &Node,
    ) -> Result<Option<NewSignatures>> {
        let Some(signer) = self.opts.sign.clone() else {
            return Ok(None);
        };
        let dst = ends.dst;
        let identity = match &signer.identity {
            Some(i) => i.to_string(),
            None => dst.docker_reference().ok_or_else(|| {
                Error::Signing(format!(
                    "Cannot determine canonical Docker reference for destination {}",
                    dst.name()
                ))
            })?,
        };
        let registry = dst.stores_attachments();
        let stores_simple = dst.supports_signatures().await?;
        if signer.gpg.is_some() && !stores_simple {
            return Err(Error::Signing(if registry {
                format!(
                    "writing signatures: {} has no signature API and registries.d configures no lookaside-staging (file://) for it: there is nowhere to store a simple signature (skopeo would write it to its local default lookaside directory)",
                    dst.name()
                )
            } else {
                format!(
                    "writing signatures: {} does not store signatures",
                    dst.name()
                )
            }));
        }
        if signer.sigstore.is_some() {
            if registry && !signer.attach_always && !dst.writes_sigstore_attachments() {
                // skopeo's words (skopeo says so after writing the image).
                return Err(Error::Signing(format!(
                    "writing signatures: writing sigstore attachments is disabled by configuration (registries.d sets no use-sigstore-attachments for {})",
                    dst.name()
                )));
            }
            if !registry && !stores_simple {
                return Err(Error::Signing(format!(
                    "writing signatures: {} does not store signatures",
                    dst.name()
                )));
            }
        }
        // Every manifest the copy writes, the top one last (as containers/image signs them).
        let mut manifests: Vec<Manifest> = vec![];
        let mut levels = vec![];
        collect_children(root, 0, &mut levels);
        for level in levels.iter().rev() {
            for m in level {
                if !manifests.iter().any(|x| x.digest == m.digest) {
                    manifests.push((*m).clone());
                }
            }
        }
        manifests.push(root.manifest.clone());
        let id = identity.clone();
        let s = signer.clone();
        let mut out = tokio::task::spawn_blocking(move || sign_all(&s, &manifests, &id))
            .await
            .map_err(|e| Error::Signing(format!("creating signature: {e}")))??;
        out.creating = signer.creating_lines();
        Ok(Some(out))
    }

    /// Store the signatures made: after the manifests they sign, before the destination
    /// reference moves. A registry gets the top manifest by digest first (OpenShift's
    /// signature API signs images it has).
    pub(super) async fn store_signatures(
        &self,
        ends: &Ends<'_>,
        root: &Manifest,
        root_written: bool,
        new: &NewSignatures,
        report: &mut CopyReport,
    ) -> Result<()> {
        let dst = ends.dst;
        let registry = dst.stores_attachments();
        if registry && !root_written {
            dst.put_manifest(root, ManifestRole::ByDigest).await?;
        }
        let fail = |e: Error| Error::Signing(format!("writing signatures: {e}"));
        for (d, content) in &new.simple {
            dst.put_signature(d, content).await.map_err(fail)?;
        }
        let attach_always = self.opts.sign.as_ref().is_some_and(|s| s.attach_always);
        for run in new.sigstore.chunk_by(|a, b| a.0 == b.0) {
            let d = &run[0].0;
            let list: Vec<SigstoreSignature> = run.iter().map(|(_, s)| s.clone()).collect();
            if registry {
                let put = if attach_always {
                    dst.put_sigstore_signatures_always(d, &list).await
                } else {
                    dst.put_sigstore_signatures(d, &list).await
                };
                put.map_err(fail)?;
            } else {
                for s in list {
                    dst.put_signature(d, &Signature::Sigstore(s).to_blob())
                        .await
                        .map_err(fail)?;
                }
            }
        }
        report.signatures_made.extend(new.made.iter().cloned());
        Ok(())
    }
}

/// Sign each manifest with each key (blocking: gpg runs as a program).
fn sign_all(signer: &Signer, manifests: &[Manifest], identity: &str) -> Result<NewSignatures> {
    let mut out = NewSignatures::default();
    let several = signer.gpg.is_some() && signer.sigstore.is_some();
    for m in manifests {
        if let Some(g) = &signer.gpg {
            let sig = simple::sign(&m.bytes, identity, &g.fingerprint, g.passphrase.as_ref())
                .map_err(|e| {
                    // gpg's own words, once.
                    let e = e.to_string();
                    let e = e.strip_prefix("Error creating signature: ").unwrap_or(&e);
                    Error::Signing(format!(
                        "creating signature{}: {e}",
                        if several { " 1" } else { "" }
                    ))
                })?;
            out.simple.push((m.digest.clone(), sig));
            out.made.push(MadeSignature {
                digest: m.digest.to_string(),
                format: "simple signing".into(),
                key: g.fingerprint.clone(),
                identity: identity.to_string(),
            });
        }
        if let Some(k) = &signer.sigstore {
            let sig = SigstoreSignature::sign(&k.key, &m.bytes, identity);
            out.sigstore.push((m.digest.clone(), sig));
            out.made.push(MadeSignature {
                digest: m.digest.to_string(),
                format: "sigstore".into(),
                key: k.key_id.clone(),
                identity: identity.to_string(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_as_containers_image_parses_them() {
        let ok = parse_identity("registry.example.com/team/app:1.0").unwrap();
        assert_eq!(ok.to_string(), "registry.example.com/team/app:1.0");
        assert!(parse_identity("docker.io/library/busybox:latest").is_ok());
        // Not in normalised form.
        let e = parse_identity("busybox:latest").unwrap_err().to_string();
        assert!(e.contains("repository name must be canonical"), "{e}");
        // Neither tag nor digest.
        let e = parse_identity("registry.example.com/team/app")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Sign identity must be a fully specified reference"),
            "{e}"
        );
        assert!(parse_identity("Registry.example.com/UPPER:1").is_err());
    }

    #[test]
    fn progress_lines_and_debug_without_secrets() {
        let key = PrivateKey::generate_p256();
        let both = Signer::new(
            Some(("ABCD".into(), Some(Secret::new("hunter2".to_string())))),
            Some(key),
            None,
            true,
        )
        .unwrap();
        assert_eq!(
            both.creating_lines(),
            [
                "Creating signature 1: Signing image using simple signing",
                "Creating signature 2: Signing image using a sigstore signature"
            ]
        );
        assert!(!format!("{both:?}").contains("hunter2"));
        assert!(both.sigstore_key().is_some());
        let one = Signer::new(Some(("ABCD".into(), None)), None, None, false).unwrap();
        assert_eq!(
            one.creating_lines(),
            ["Creating signature: Signing image using simple signing"]
        );
        assert!(Signer::new(None, None, None, true).is_none());
    }
}
