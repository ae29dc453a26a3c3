//! What happened to each image of a sync: the lines of the journal (`--journal`) and the
//! entries of the report (`--report`), both documented in `docs/scale.md`.

use serde::{Deserialize, Serialize};

use crate::copy::Counts;
pub use crate::copy::Requests;
use crate::error::Result;
use crate::fsutil::{Access, write_atomic};

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Copied (something was written at the destination).
    Copied,
    /// The destination already had it: nothing was written.
    Present,
    /// A journal of an earlier run records it done and the destination confirmed the digest
    /// (one request): nothing else was done.
    Journaled,
    /// It failed (`error` says why).
    Failed,
}

impl Outcome {
    /// The image is at the destination.
    pub fn done(self) -> bool {
        self != Outcome::Failed
    }
}

/// One image's entry in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ImageOutcome {
    /// `docker://registry/repository:tag` (or the repository, when listing its tags failed).
    pub source: String,
    /// `docker://…` at the destination (absent when listing the source's tags failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// The manifest digest now at the destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Bytes the image references, moved, already there, mounted.
    pub bytes: Counts,
    /// Requests sent for it.
    pub requests: Requests,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Why it failed (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Images copied.
    pub copied: u64,
    /// Images already there.
    pub present: u64,
    /// Images skipped thanks to the journal.
    pub journaled: u64,
    /// Images (or repositories) that failed.
    pub failed: u64,
}

/// The report file (`--report FILE`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// ferry's version.
    pub ferry_version: &'static str,
    /// When the sync ended, UTC, RFC 3339.
    pub time: String,
    /// `INDEX/COUNT`, when sharded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// `repository` or `image`, when sharded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_by: Option<&'static str>,
    /// Counts by outcome (this shard).
    pub summary: Summary,
    /// Requests of the whole run per side, pings and token requests included.
    pub requests: Requests,
    /// Wall time of the run, milliseconds.
    pub duration_ms: u64,
    /// Every image of this shard, in plan order.
    pub images: Vec<ImageOutcome>,
}

impl Report {
    /// Count the outcomes of `images` into `summary`.
    pub fn tally(images: &[ImageOutcome]) -> Summary {
        let mut s = Summary::default();
        for i in images {
            match i.outcome {
                Outcome::Copied => s.copied += 1,
                Outcome::Present => s.present += 1,
                Outcome::Journaled => s.journaled += 1,
                Outcome::Failed => s.failed += 1,
            }
        }
        s
    }

    /// Write the report as JSON, atomically.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a report serialises");
        let json = crate::redact::clean(&json) + "\n";
        write_atomic(path, json.as_bytes(), Access::Public, "writing report")
    }
}
