//! All integration tests, in one binary so that the lab support compiles once.

mod lab;
mod support;
