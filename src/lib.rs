//! ferry: promote container images between registries, byte for byte.
//!
//! The binary is a thin shell over this library; every module is one concern:
//! [`cli`] parses skopeo's command line, [`error`] maps failures to exit codes.

pub mod cli;
pub mod error;
