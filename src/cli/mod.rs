//! Command line: skopeo-compatible verbs and flags, parsed with clap.

use clap::Parser;

use crate::error::{EXIT_ERROR, EXIT_OK};

/// Copy container images between registries, byte for byte. A drop-in for skopeo's registry verbs.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
pub struct Cli {}

/// Run the command line and return the process exit code.
pub fn main() -> i32 {
    match Cli::try_parse() {
        Ok(_) => EXIT_OK,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            code
        }
    }
}
