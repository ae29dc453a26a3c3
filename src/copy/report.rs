//! What a copy did: counts, requests, the `--report` JSON and the summary line.

use serde::Serialize;

use super::referrers::AttachedCounts;
use crate::progress::human_bytes;

/// Byte and blob counts of a copy.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Everything the copied image references.
    pub total: u64,
    /// Moved from source to destination.
    pub copied: u64,
    /// Already at the destination.
    pub skipped: u64,
    /// Mounted from another repository of the destination registry.
    pub mounted: u64,
}

/// Requests sent to each side during the copy.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Requests {
    /// To the source registry (pings and token requests included).
    pub source: u64,
    /// To the destination registry (pings and token requests included).
    pub destination: u64,
}

/// What a copy did: written by `--report`, documented in the README.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source reference, normalised.
    pub source: String,
    /// The destination reference, normalised.
    pub destination: String,
    /// Digest of the source's top-level manifest.
    pub source_digest: String,
    /// Digest of the manifest now at the destination (differs from `source_digest` only when
    /// `--multi-arch system` picked one image of an index).
    pub digest: String,
    /// Media type of that manifest.
    pub media_type: String,
    /// True when the destination already had it and nothing was written.
    pub already_present: bool,
    /// Manifests written (children and top).
    pub manifests_written: u64,
    /// Blob counts.
    pub blobs: Counts,
    /// Byte counts.
    pub bytes: Counts,
    /// Requests per registry.
    pub requests: Requests,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// OpenShift image signatures (the registry API extension) added at the destination.
    pub signatures_copied: u64,
    /// Signatures the source has that were not copied.
    pub signatures_not_copied: Vec<String>,
    /// OCI 1.1 referrers (of the image, its children, and theirs).
    pub referrers: AttachedCounts,
    /// cosign attachment tags (`sha256-<hex>.sig`, `.att`, `.sbom`).
    pub attachments: AttachedCounts,
    /// Referrers and attachments found that were not copied, and why.
    pub attached_not_copied: Vec<String>,
    /// Layers changed on the way (decompressed for a `docker-archive:`, compressed as asked):
    /// `<what> <old digest> -> <new digest>`; their digests, and the manifest's, changed.
    pub layers_changed: Vec<String>,
    /// Signatures the trust policy required and accepted, per manifest copied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures_verified: Vec<super::VerifiedSignature>,
    /// Signatures this copy made and stored (`--sign-by`, `--sign-by-sigstore-private-key`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures_made: Vec<super::MadeSignature>,
}

impl CopyReport {
    /// A report of nothing done yet.
    pub fn new(source: String, destination: String, source_digest: String) -> Self {
        CopyReport {
            source,
            destination,
            source_digest,
            digest: String::new(),
            media_type: String::new(),
            already_present: false,
            manifests_written: 0,
            blobs: Counts::default(),
            bytes: Counts::default(),
            requests: Requests::default(),
            duration_ms: 0,
            signatures_copied: 0,
            signatures_not_copied: vec![],
            referrers: AttachedCounts::default(),
            attachments: AttachedCounts::default(),
            attached_not_copied: vec![],
            layers_changed: vec![],
            signatures_verified: vec![],
            signatures_made: vec![],
        }
    }

    /// `, 2 referrer(s), 1 attachment tag(s)` for what was attached and copied.
    fn attached_text(&self) -> String {
        let mut s = String::new();
        if self.referrers.copied > 0 {
            s.push_str(&format!(", {} referrer(s)", self.referrers.copied));
        }
        if self.attachments.copied > 0 {
            s.push_str(&format!(", {} attachment tag(s)", self.attachments.copied));
        }
        s
    }

    /// `2 attached already there, 1 left out by the filter`, or nothing.
    fn attached_others(&self) -> String {
        let present = self.referrers.already_present + self.attachments.already_present;
        let skipped = self.referrers.skipped_by_filter + self.attachments.skipped_by_filter;
        let mut parts = vec![];
        if present > 0 {
            parts.push(format!("{present} referrer(s)/attachment(s) already there"));
        }
        if skipped > 0 {
            parts.push(format!("{skipped} skipped by --referrers-artifact-type"));
        }
        parts.join(", ")
    }

    /// Count one blob's outcome.
    pub fn count(&mut self, size: u64, o: crate::copy::transfer::BlobOutcome) {
        use crate::copy::transfer::BlobOutcome;
        let (b, n) = match o {
            BlobOutcome::Present => (&mut self.blobs.skipped, &mut self.bytes.skipped),
            BlobOutcome::Mounted => (&mut self.blobs.mounted, &mut self.bytes.mounted),
            BlobOutcome::Copied => (&mut self.blobs.copied, &mut self.bytes.copied),
        };
        *b += 1;
        *n += size;
    }

    /// What happened to every blob of the plan.
    pub fn count_blobs(
        &mut self,
        blobs: &[(
            crate::manifest::Descriptor,
            crate::copy::transfer::BlobOutcome,
        )],
    ) {
        self.blobs.total = blobs.len() as u64;
        self.bytes.total = blobs.iter().map(|(d, _)| d.size).sum();
        for (d, o) in blobs {
            self.count(d.size, *o);
        }
    }

    /// The final one-line summary.
    pub fn summary(&self) -> String {
        let others = self.attached_others();
        if self.already_present {
            let attached = self.attached_text();
            if !attached.is_empty() {
                let others = if others.is_empty() {
                    String::new()
                } else {
                    format!(" ({others})")
                };
                return format!(
                    "{} already present at {}; added what it lacked{attached}{others} in {:.1} s",
                    self.digest,
                    self.destination,
                    self.duration_ms as f64 / 1000.0
                );
            }
            let others = if others.is_empty() {
                String::new()
            } else {
                format!(", {others}")
            };
            return format!(
                "{} already present at {} (nothing copied{others}, {:.1} s)",
                self.digest,
                self.destination,
                self.duration_ms as f64 / 1000.0
            );
        }
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" ({others})")
        };
        let sigs = match self.signatures_copied {
            0 => String::new(),
            n => format!(", {n} signature(s)"),
        };
        let mut changed = String::new();
        for verb in ["decompressed", "compressed", "recompressed"] {
            let n = self
                .layers_changed
                .iter()
                .filter(|l| l.starts_with(&format!("{verb} ")))
                .count();
            if n > 0 {
                changed.push_str(&format!(", {n} layer(s) {verb} (digests changed)"));
            }
        }
        let attached = self.attached_text();
        format!(
            "Copied {} to {}: {} copied, {} already present, {} mounted{sigs}{changed}{attached}{others} in {:.1} s",
            self.digest,
            self.destination,
            human_bytes(self.bytes.copied),
            human_bytes(self.bytes.skipped),
            human_bytes(self.bytes.mounted),
            self.duration_ms as f64 / 1000.0
        )
    }
}
