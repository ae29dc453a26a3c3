//! All integration tests, in one binary so that the lab support compiles once.

mod lab;
mod lint;
mod oc_process;
mod support;
mod templates;
