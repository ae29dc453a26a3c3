//! All integration tests, in one binary so that the lab support compiles once.

mod copy;
mod e2e;
mod lab;
mod lint;
mod oc_process;
mod promote;
mod support;
mod templates;
mod trigger;
