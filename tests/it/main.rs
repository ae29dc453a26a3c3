//! All integration tests, in one binary so that the lab support compiles once.

mod delete;
mod inspect;
mod lab;
mod lint;
mod list_tags;
mod login;
mod oc_process;
mod support;
mod sync;
mod templates;
