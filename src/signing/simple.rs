//! Simple signing ("atomic" signatures, containers-signature(5)): the payload of
//! [`super::payload`] with type `atomic container signature`, signed with OpenPGP.
//!
//! skopeo makes them with `copy --sign-by FINGERPRINT` and `standalone-sign`, and finds them
//! in OpenShift's signature API, in lookaside storage (`registries.d`) and in `dir:` images.

use super::error::SigningError;
use super::manifest_digest;
use super::openpgp::{Keyring, gpg_sign};
use super::payload::{Payload, SIMPLE_TYPE};
use crate::error::Result;
use crate::redact::Secret;

/// Sign `manifest` as `reference` with the GnuPG key `fingerprint` (the `gpg` program, the
/// user's `GNUPGHOME`), as skopeo's `standalone-sign` and `copy --sign-by` do.
pub fn sign(
    manifest: &[u8],
    reference: &str,
    fingerprint: &str,
    passphrase: Option<&Secret>,
) -> Result<Vec<u8>> {
    let payload = Payload::new(manifest_digest(manifest)?, reference).to_bytes(SIMPLE_TYPE);
    gpg_sign(&payload, fingerprint, passphrase)
}

/// Verify a simple signature with `keyring`: the (now trusted) payload and the primary
/// fingerprint of the key that made it. The caller checks digest and identity.
pub fn verify(keyring: &Keyring, signature: &[u8]) -> Result<(Payload, String), SigningError> {
    let (contents, fingerprint) = keyring.verify(signature)?;
    let payload = Payload::parse(&contents, SIMPLE_TYPE)?;
    Ok((payload, fingerprint))
}
