//! All integration tests, in one binary so that the lab support compiles once.

mod lint;
mod oc_process;
mod support;
mod templates;
