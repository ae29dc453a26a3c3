//! All integration tests, in one binary so that the lab support compiles once.

mod copy;
mod credentials;
mod delete;
mod e2e;
mod faults;
mod files;
mod hostile;
mod inspect;
mod lab;
mod lint;
mod list_tags;
mod login;
mod oc_process;
mod parsers;
mod progress;
mod promote;
mod proxy;
mod secrets;
mod signatures;
mod support;
mod sync;
mod templates;
mod trigger;
mod trust;
