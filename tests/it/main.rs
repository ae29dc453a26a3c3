//! All integration tests, in one binary so that the lab support compiles once.

mod copy;
mod e2e;
mod faults;
mod hostile;
mod lab;
mod lint;
mod oc_process;
mod parsers;
mod promote;
mod secrets;
mod support;
mod templates;
mod trigger;
