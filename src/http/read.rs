//! Reading a body whole, bounded in size, with a stall floor: fewer than [`STALL_FLOOR`]
//! bytes within the stall window is a stall, whether nothing comes or a trickle.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{self, HeaderMap};

/// Why reading a body failed.
#[derive(Debug)]
pub enum ReadError {
    /// More bytes than allowed.
    TooLarge,
    /// No byte arrived within the stall timeout.
    Stalled(Duration),
    /// The connection failed.
    Http(reqwest::Error),
}

/// The fewest bytes a body must move within each stall window ([`ClientOptions::stall_timeout`])
/// not to count as stalled: a body that trickles a few bytes a second is as stuck as a silent
/// one.
pub const STALL_FLOOR: u64 = 1024;

/// Watches a body for stalls: fewer than [`STALL_FLOOR`] bytes within a window is a stall.
#[derive(Debug, Clone)]
pub struct StallWatch {
    window: Duration,
    start: tokio::time::Instant,
    bytes: u64,
}

impl StallWatch {
    /// A watch whose first window starts now.
    pub fn new(window: Duration) -> Self {
        StallWatch {
            window,
            start: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    /// When the current window ends: the next bytes must arrive before it.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.start + self.window
    }

    /// Count `n` bytes received. True when they complete the floor (a new window starts).
    pub fn record(&mut self, n: usize) -> bool {
        self.bytes += n as u64;
        if self.bytes >= STALL_FLOOR {
            self.start = tokio::time::Instant::now();
            self.bytes = 0;
            true
        } else {
            false
        }
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The words for a stall of `window`.
pub fn stalled_text(window: Duration) -> String {
    format!(
        "less than {STALL_FLOOR} bytes in {} s (stalled)",
        window.as_secs()
    )
}

/// Read a whole body, at most `limit` bytes, failing as stalled when fewer than
/// [`STALL_FLOOR`] bytes arrive within `stall`.
pub async fn read_limited(
    resp: reqwest::Response,
    limit: usize,
    stall: Duration,
) -> Result<Bytes, ReadError> {
    let mut stream = resp.bytes_stream();
    let mut buf = bytes::BytesMut::new();
    let mut watch = StallWatch::new(stall);
    loop {
        match tokio::time::timeout_at(watch.deadline(), stream.next()).await {
            Err(_) => return Err(ReadError::Stalled(stall)),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(ReadError::Http(e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                watch.record(chunk.len());
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

/// The response's media type (parameters stripped).
pub fn content_type(resp: &reqwest::Response) -> Option<String> {
    media_type(resp.headers())
}

/// The `Content-Type` of these headers, parameters stripped.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
}
