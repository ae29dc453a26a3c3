//! HTTP plumbing shared by every client ferry runs (the registry client, the webhook call):
//! reading bounded bodies with a stall floor ([`read`]), turning transport failures into
//! one-line errors classified by their types ([`errors`]), and telling whether two URLs are
//! the same origin ([`origin`]), which decides where credentials may go, and connection
//! pools shared by every client of one host ([`pool`]).

pub mod errors;
pub mod origin;
pub mod pool;
pub mod read;

pub use errors::{chain, network_error, network_error_msg, network_error_with};
pub use origin::{origin_text, same_origin};
pub use read::{
    ReadError, STALL_FLOOR, StallWatch, content_type, media_type, read_limited, stalled_text,
};
