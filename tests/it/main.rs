//! All integration tests, in one binary so that the lab support compiles once.

// The test binary is not a library: `pub` in its modules only shares lab code between them.
#![allow(unreachable_pub, missing_docs)]

mod agent_image;
mod airgap;
mod attachments;
mod cert_dir;
mod copy;
mod credentials;
mod delete;
mod dropin;
mod e2e;
mod faults;
mod files;
mod hostile;
mod inspect;
mod kit;
mod lab;
mod lint;
mod list_tags;
mod login;
mod lookaside;
mod mirror;
mod oc_process;
mod parsers;
mod progress;
mod promote;
mod proxy;
mod referrers;
mod secrets;
mod signatures;
mod signing;
mod sigstore;
mod skopeo_systemtests;
mod support;
mod sync;
mod sync_scale;
mod tekton;
mod tekton_api;
mod templates;
mod transports_archive;
mod transports_dir;
mod transports_oci;
mod trigger;
mod trust;
mod vendor;
