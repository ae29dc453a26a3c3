//! Why a signature, key or signed document could not be made, read or checked.
//!
//! Each variant names the class of the failure and carries the message as skopeo's
//! containers/image words it (tests compare these texts): the `Display` output is that message
//! and nothing else. The crate's [`crate::error::Error`] takes one as [`Error::Signing`] with
//! the same text.

use crate::error::Error;

/// What went wrong in [`crate::signing`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// A key that cannot be read, decrypted or encoded: a PEM or OpenPGP public key, an
    /// encrypted private key file, a key type ferry does not use.
    #[error("{0}")]
    Key(String),

    /// A document that is not what it must be: strict JSON, a signature payload or blob, a
    /// DSSE envelope or in-toto statement, a sigstore attachment manifest or config. The text
    /// says which document and what is wrong with it.
    #[error("{0}")]
    Malformed(String),

    /// A signature that does not verify with the keys given, a signed statement that does
    /// not match what it must be about, or no signature or attestation that does.
    #[error("{0}")]
    Verification(String),

    /// A Fulcio certificate (or its chain, or the CA certificates trusted) that cannot be read
    /// or does not satisfy the policy: chain, validity, OIDC issuer, e-mail address.
    #[error("{0}")]
    Certificate(String),

    /// A Rekor signed entry timestamp (the bundle annotation) that is malformed, whose
    /// signature does not verify, or whose entry does not match the signature.
    #[error("{0}")]
    Rekor(String),
}

impl SigningError {
    /// A [`SigningError::Key`].
    pub(crate) fn key(msg: impl Into<String>) -> Self {
        SigningError::Key(msg.into())
    }

    /// A [`SigningError::Malformed`].
    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        SigningError::Malformed(msg.into())
    }

    /// A [`SigningError::Verification`].
    pub(crate) fn verification(msg: impl Into<String>) -> Self {
        SigningError::Verification(msg.into())
    }

    /// A [`SigningError::Certificate`].
    pub(crate) fn certificate(msg: impl Into<String>) -> Self {
        SigningError::Certificate(msg.into())
    }

    /// A [`SigningError::Rekor`].
    pub(crate) fn rekor(msg: impl Into<String>) -> Self {
        SigningError::Rekor(msg.into())
    }

    /// The same message as a [`SigningError::Rekor`]: a part of a Rekor bundle that a generic
    /// reader (strict JSON) refused.
    pub(crate) fn in_rekor(self) -> Self {
        SigningError::Rekor(self.to_string())
    }
}

impl From<SigningError> for Error {
    fn from(e: SigningError) -> Self {
        Error::Signing(e.to_string())
    }
}
