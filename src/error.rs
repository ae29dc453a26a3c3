//! The library's error type and the one place where errors become exit codes.
//!
//! Exit codes follow current skopeo:
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | any error (bad input, network, authentication, registry refusal, digest mismatch, …) |
//! | 2    | the image to read (its manifest) does not exist — never a destination's answer |
//!
//! Every message is one line that names what failed, where (registry and repository), and,
//! for registry answers, the HTTP status and the registry's error code and message. Messages
//! never contain secrets: URLs pass through [`crate::redact`], and authorization material is
//! never formatted into an error.

use std::time::Duration;

use thiserror::Error;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for any error other than "image not found".
pub const EXIT_ERROR: i32 = 1;
/// Exit code when the image (its manifest) does not exist.
pub const EXIT_NOT_FOUND: i32 = 2;

/// Where a registry operation happened: used in every registry-related message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Registry host as the user wrote it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`), empty for registry-wide operations.
    pub repository: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.repository.is_empty() {
            write!(f, "{}", self.registry)
        } else {
            write!(f, "{}/{}", self.registry, self.repository)
        }
    }
}

/// The error code and message a registry put in its JSON error body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMessage {
    /// Distribution error code, e.g. `MANIFEST_UNKNOWN`, `DENIED`.
    pub code: Option<String>,
    /// Human-readable message from the registry.
    pub message: Option<String>,
}

impl std::fmt::Display for RegistryMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}"),
            (Some(c), None) => write!(f, ": {c}"),
            (None, Some(m)) => write!(f, ": {m}"),
            (None, None) => Ok(()),
        }
    }
}

/// Everything that can go wrong, grouped by what the user must do about it.
#[derive(Debug, Error)]
pub enum Error {
    /// The command line or an input file is wrong.
    #[error("{0}")]
    Usage(String),

    /// TLS could not be set up: a cert dir, a CA or client certificate that cannot be used.
    #[error("{0}")]
    Tls(String),

    /// `--command-timeout` ran out.
    #[error("command timed out after {0}")]
    Timeout(String),

    /// A `docker-credential-*` helper answered with something that is not its protocol.
    #[error("credential helper {program} {reason}")]
    CredentialHelper {
        /// The helper program.
        program: String,
        /// What was wrong with its answer.
        reason: String,
    },

    /// The production pipeline's trigger (BuildConfig webhook, EventListener) was not
    /// accepted; the text says what the server answered.
    #[error("{0}")]
    Trigger(String),

    /// No image of an index matches the platform asked for.
    #[error("{0}")]
    Platform(String),

    /// An image reference could not be parsed.
    #[error("invalid image reference {input:?}: {reason}")]
    Reference {
        /// What the user wrote.
        input: String,
        /// Why it is not a valid reference.
        reason: String,
    },

    /// Something ferry does not do yet; never silently ignored.
    #[error("{0} is not supported yet")]
    Unsupported(String),

    /// The image or manifest does not exist (exit code 2).
    #[error("{what} not found in {location}{detail}")]
    NotFound {
        /// What was looked for: `manifest latest`, `manifest sha256:…`.
        what: String,
        /// Where.
        location: Location,
        /// The registry's message, if any.
        detail: RegistryMessage,
    },

    /// A registry answered with an HTTP error.
    #[error("{op} at {location}: HTTP {status}{detail}")]
    Registry {
        /// What ferry was doing (`reading manifest latest`, `uploading blob sha256:…`).
        op: String,
        /// Where.
        location: Location,
        /// The HTTP status.
        status: u16,
        /// The registry's error code and message.
        detail: RegistryMessage,
        /// `Retry-After`, when the registry sent one.
        retry_after: Option<Duration>,
    },

    /// Credentials were refused, missing, or the token endpoint failed.
    #[error("authentication to {location} failed: {reason}")]
    Auth {
        /// Where.
        location: Location,
        /// Why (never contains the secret).
        reason: String,
    },

    /// A connection-level failure: refused, reset, TLS handshake, DNS, premature EOF.
    #[error("{op} at {location}: {reason}")]
    Network {
        /// What ferry was doing.
        op: String,
        /// Where.
        location: Location,
        /// The cause chain, one line.
        reason: String,
        /// Whether retrying can help (resets, EOF, timeouts) or not (certificate errors).
        transient: bool,
    },

    /// Bytes did not match the digest they were supposed to have.
    #[error("digest mismatch for {what} from {location}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was verified (`blob sha256:…`, `manifest latest`).
        what: String,
        /// Where it came from.
        location: Location,
        /// The digest it should have had.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },

    /// A manifest or other registry document is malformed or unacceptable.
    #[error("invalid {what} from {location}: {reason}")]
    Invalid {
        /// What was being parsed.
        what: String,
        /// Where it came from.
        location: Location,
        /// What is wrong with it.
        reason: String,
    },

    /// The trust policy refused the image.
    #[error("{0}")]
    Policy(String),

    /// A signature or key could not be made, read or checked (signing, key files, the
    /// standalone verbs). A policy's rejection of an image is [`Error::Policy`].
    #[error("{0}")]
    Signing(String),

    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What ferry was doing with it (`reading credentials file`).
        what: String,
        /// The path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// ferry refused to do something that would lose or hide data (e.g. re-point a tag).
    #[error("{0}")]
    Refused(String),

    /// Several images failed in a multi-image operation (sync); each was already reported.
    #[error("{0}")]
    Aggregate(String),

    /// Copying something attached to an image (a referrer, a cosign attachment) failed; the
    /// destination reference was not moved.
    #[error("{what}: {source}")]
    Attachment {
        /// Which one (`copying referrer sha256:… (application/spdx+json) of sha256:…`).
        what: String,
        /// Why.
        source: Box<Error>,
    },

    /// A transient failure retried as often as the policy allows. Never retried again by an
    /// outer loop, so retries do not nest (see [`crate::retry::Schedule::give_up`]).
    #[error("{source} (gave up after {retries} {})", if *retries == 1 { "retry" } else { "retries" })]
    GaveUp {
        /// Retries made.
        retries: u32,
        /// The last failure.
        source: Box<Error>,
    },
}

impl Error {
    /// The process exit code for this error: 2 for a missing image, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound { .. } => EXIT_NOT_FOUND,
            Error::GaveUp { source, .. } => source.exit_code(),
            _ => EXIT_ERROR,
        }
    }

    /// Whether the operation that produced this error may succeed if tried again.
    ///
    /// Transient: connection resets, premature EOF, timeouts, HTTP 408, 429, 500, 502, 503,
    /// 504. Never transient: 4xx answers (other than 408/429), authentication refusals,
    /// digest mismatches, invalid documents, certificate errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { transient, .. } => *transient,
            Error::Registry { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The delay a registry asked for with `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// HTTP status of a registry answer, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { status, .. } => Some(*status),
            Error::GaveUp { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Shorthand for a usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// Shorthand for an I/O error on a path.
    pub fn io(
        what: impl Into<String>,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            what: what.into(),
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
