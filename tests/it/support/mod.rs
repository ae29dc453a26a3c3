//! The test lab: real registries, token server, TLS material and image fixtures.
//!
//! Everything here is test support shared by every integration test (one test binary, see
//! `tests/it/main.rs`). The lab never uses ferry's library code: registries are the real
//! `docker-registry` (CNCF distribution 2.8), fixtures are seeded with `skopeo`, and the lab's own
//! HTTP checks use a plain `reqwest` client.
//!
//! ```ignore
//! use crate::support::{fixtures::*, Registry, RegistryOptions, Side, Tls};
//! let src = Registry::start(RegistryOptions { tls: Tls::Ca, ..Default::default() });
//! let dst = Registry::start(RegistryOptions::default());
//! let img = ImageSpec::oci().layers(&[1024, 4096]).build();
//! img.seed(&src, "ns/app:v1");
//! support::skopeo().arg("copy").args(src.tls_args(Side::Src)).args(dst.tls_args(Side::Dest))
//!     .arg(src.docker_ref("ns/app:v1")).arg(dst.docker_ref("ns/app:v1")).run().assert_success();
//! assert_eq!(dst.manifest_digest("ns/app", "v1").as_deref(), Some(img.digest.as_str()));
//! ```
//!
//! Processes started by the lab get `PR_SET_PDEATHSIG(SIGKILL)`. Linux delivers it when the
//! *thread* that spawned the child ends, so a `Registry` must be started by the test that owns
//! it (do not park one in a `static` shared between tests).

// Not every test file uses every helper of the lab.
#![allow(dead_code, unused_imports)]

pub mod connect_proxy;
pub mod disk;
pub mod eventlistener;
pub mod faults;
pub mod fixtures;
mod http;
pub mod kube;
pub mod pki;
pub mod pod;
pub mod referrers;
mod registry;
mod request_log;
pub mod setup;
pub mod signatures;
pub mod tekton;
mod token;
mod tools;
mod wait;
pub mod webhook;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub use registry::{
    Auth, LoggedRequest, Manifest, Mark, Registry, RegistryOptions, RequestKind, Side, Tls,
};
pub use token::{
    Grant, REGISTRY_TOKEN_LEEWAY, TokenAuthConfig, TokenFields, TokenRequest, TokenServer,
    TokenServerOptions, jwt_claims,
};
pub use tools::{Output, Sandbox, Tool, ferry, ferry_as_skopeo, skopeo, skopeo_current};
pub use wait::{HANG_GUARD, wait_until};

/// The User-Agent of the lab's own HTTP requests; they are left out of [`Registry::requests`].
pub const LAB_USER_AGENT: &str = "ferry-lab/1";

/// `"sha256:<hex>"` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The tokio runtime the lab's HTTP client runs on (the token servers have their own).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ferry-lab-http")
            .enable_all()
            .build()
            .expect("building the lab's tokio runtime")
    });
    &RT
}

/// Make the child die with SIGKILL when the spawning thread (the test) goes away, so that no
/// registry or tool outlives a test process that crashed or was killed.
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Install a process-wide rustls crypto provider before the lab builds an HTTP client (the
/// crate enables rustls' ring backend, the dev-dependencies aws-lc-rs: with both, rustls
/// cannot pick one by itself).
pub(crate) fn crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A fresh random hex string of `bytes` random bytes (for nonces, passwords, ids).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fastrand::fill(&mut buf);
    hex::encode(buf)
}
