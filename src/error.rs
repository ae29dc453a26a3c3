//! The library's error type and the one place where errors become exit codes.
//!
//! Exit codes follow current skopeo: 0 success, 1 any error, 2 image not found.

use thiserror::Error;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for any error other than "image not found".
pub const EXIT_ERROR: i32 = 1;
/// Exit code when the image (or manifest) does not exist.
pub const EXIT_NOT_FOUND: i32 = 2;

/// Everything that can go wrong, grouped by what the user must do about it.
#[derive(Debug, Error)]
pub enum Error {
    /// The command line or an input file is wrong.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_ERROR,
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
