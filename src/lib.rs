//! ferry: promote container images between registries, byte for byte.
//!
//! The binary is a thin shell over this library. Each module is one concern:
//!
//! - [`cli`]: skopeo-compatible verbs and flags;
//! - [`reference`]: image references and transports;
//! - [`manifest`]: manifest media types, parsing and validation (raw bytes kept);
//! - [`image`]: the seam between the copy engine and transports (image sources and destinations);
//! - [`registries_d`]: `registries.d`: lookaside signature storage, sigstore attachments;
//! - [`transport`]: skopeo's on-disk transports (`oci:`, `oci-archive:`, `dir:`, `docker-archive:`);
//! - [`convert`]: the layer and manifest changes a format or a flag asks for, planned as skopeo plans them;
//! - [`compress`]: streamed gzip and zstd for the layer changes a format or a flag asks for;
//! - [`registry`]: the OCI distribution client (auth challenges, token cache, blobs, manifests, tags);
//! - [`login`]: changing the primary auth file for `login`/`logout`;
//! - [`credentials`]: credentials from flags, files, the environment and auth files;
//! - [`tls`]: cert dirs and verification;
//! - [`http`]: bounded body reads with a stall floor, transport errors classified by type, origins;
//! - [`inspect`]: skopeo's inspect output, Go's JSON and `fmt` rendering, the `--format` subset;
//! - [`copy`]: planning the manifest tree, then streaming, verified, concurrent transfer;
//! - [`sync`]: `sync`'s sources (repository, YAML), destination naming, concurrent copies;
//! - [`retry`]: what is retried and how;
//! - [`ratelimit`]: pacing requests per registry (`--requests-per-second`, `RateLimit` headers);
//! - [`progress`]: bars and plain progress lines; [`logrus`]: skopeo's log line format;
//! - [`policy`], [`platform`]: trust policy and platform choice as skopeo does them;
//! - [`promote`]: `ferry promote`, the production stage as one command;
//! - [`webhook`]: `ferry trigger`, OpenShift's generic BuildConfig webhook;
//! - [`eventlistener`]: `ferry trigger --event-listener`, a Tekton Triggers EventListener;
//! - [`redact`]: keeping secrets out of output;
//! - [`fsutil`]: writing files atomically, never through a planted link;
//! - [`error`]: typed errors and the one mapping to exit codes.

// Errors carry their context (operation, registry, repository, status, registry message) by
// value; they are on the cold path, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod compress;
pub mod convert;
pub mod copy;
pub mod credentials;
pub mod environment;
pub mod error;
pub mod eventlistener;
pub mod fsutil;
pub(crate) mod gojson;
pub mod http;
pub mod image;
pub mod inspect;
pub mod login;
pub mod logrus;
pub mod manifest;
pub mod platform;
pub mod policy;
pub mod progress;
pub mod promote;
pub mod ratelimit;
pub mod redact;
pub mod reference;
pub mod registries_d;
pub mod registry;
pub mod retry;
pub mod semver;
pub mod signing;
pub mod sync;
pub mod sync_disk;
pub mod tls;
pub mod transport;
pub mod webhook;
