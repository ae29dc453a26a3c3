//! All integration tests, in one binary so that the lab support compiles once.

mod faults;
mod hostile;
mod lab;
mod lint;
mod oc_process;
mod parsers;
mod secrets;
mod support;
mod templates;
