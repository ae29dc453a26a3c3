//! `sync`'s flags for bulk work (ferry's additions): shards, journal, report, request pacing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::Args;

use crate::error::{Error, Result};
use crate::sync::journal::Journal;
use crate::sync::outcome::Report;
use crate::sync::shard::{COMPLETION_INDEX_ENV, Shard, ShardBy};
use crate::sync::{SyncReport, shard};

pub(super) const ABOUT: &str = "ferry's additions for bulk work: --shard INDEX/COUNT (or \
--shard-count COUNT with the index from JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job sets \
it) copies only that shard's part of the list: whole destination repositories (or single \
images, --shard-by image) chosen by rendezvous hashing, so that the shards together copy every \
image once. --journal FILE records each image as it finishes (JSON lines); a run given the same \
journal skips what it records as done once the destination confirms the digest (one HEAD). \
--report FILE writes every image's outcome (JSON). An image already at the destination costs a \
HEAD per side. --requests-per-second N paces the requests to each registry; RateLimit-Remaining: \
0 with RateLimit-Reset pauses them until the reset. See docs/scale.md.";

/// Shards, journal, report, pacing.
#[derive(Debug, Args)]
pub(super) struct ScaleArgs {
    /// ferry: copy only shard INDEX of COUNT of the list (0-based), e.g. 1/4.
    #[arg(long, value_name = "INDEX/COUNT", conflicts_with = "shard_count")]
    shard: Option<String>,
    /// ferry: COUNT shards, this one's index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    #[arg(long, value_name = "COUNT")]
    shard_count: Option<u32>,
    /// ferry: what a shard takes whole: repository (default) or image.
    #[arg(long, value_name = "BY", value_parser = clap::value_parser!(ShardBy))]
    shard_by: Option<ShardBy>,
    /// ferry: record each image as it finishes in FILE (JSON lines), and skip what FILE
    /// records as done once the destination confirms it.
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// ferry: write every image's outcome to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// ferry: at most N requests per second to each registry (0: no bound).
    #[arg(long, value_name = "N")]
    requests_per_second: Option<f64>,
}

impl ScaleArgs {
    /// The shard, from `--shard` or `--shard-count` and `JOB_COMPLETION_INDEX`.
    pub(super) fn shard(&self) -> Result<Option<Shard>> {
        let by = self.shard_by.unwrap_or_default();
        match (&self.shard, self.shard_count) {
            (Some(s), _) => Shard::parse(s, by).map(Some),
            (None, Some(n)) => {
                let index = std::env::var(COMPLETION_INDEX_ENV).ok();
                Shard::from_completion_index(n, index.as_deref(), by).map(Some)
            }
            (None, None) if self.shard_by.is_some() => Err(Error::usage(
                "--shard-by needs --shard INDEX/COUNT or --shard-count COUNT",
            )),
            (None, None) => Ok(None),
        }
    }

    /// The journal, opened (not in a dry run).
    pub(super) fn journal(&self, dry_run: bool) -> Result<Option<Arc<Journal>>> {
        match &self.journal {
            Some(p) if !dry_run => Journal::open(p).map(|j| Some(Arc::new(j))),
            _ => Ok(None),
        }
    }

    /// `--requests-per-second`, checked (0: none).
    pub(super) fn requests_per_second(&self) -> Result<Option<f64>> {
        match self.requests_per_second {
            None | Some(0.0) => Ok(None),
            Some(r) if r.is_finite() && r > 0.0 => Ok(Some(r)),
            Some(r) => Err(Error::usage(format!(
                "--requests-per-second {r}: expected a number above 0 (or 0 for no bound)"
            ))),
        }
    }

    /// Write `--report`, if asked (not in a dry run).
    pub(super) fn write_report(
        &self,
        report: &SyncReport,
        shard: Option<&Shard>,
        started: Instant,
        dry_run: bool,
    ) -> Result<()> {
        let Some(path) = self.report.as_ref().filter(|_| !dry_run) else {
            return Ok(());
        };
        Report {
            ferry_version: env!("CARGO_PKG_VERSION"),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            shard: shard.map(ToString::to_string),
            shard_by: shard.map(|s| match s.by {
                shard::ShardBy::Repository => "repository",
                shard::ShardBy::Image => "image",
            }),
            summary: Report::tally(&report.images),
            requests: report.requests.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            images: report.images.clone(),
        }
        .write(path)
    }
}
