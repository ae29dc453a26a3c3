//! What `skopeo copy` prints about a copy (containers/image's report writer, skopeo 1.18,
//! stdout, stdout not a terminal), for ferry invoked as `skopeo`:
//!
//! ```text
//! Getting image source signatures
//! Copying blob sha256:…                 (each layer)
//! Copying config sha256:…
//! Writing manifest to image destination
//! ```
//!
//! plus `Checking if image destination supports signatures` and `Storing signatures` when the
//! image has signatures (1.9.3 prints `Storing signatures` always). For a whole index:
//! `Getting image list signatures`, `Copying N images generated from M images in list`, then
//! per image `Copying image sha256:… (i/N)` and the lines above, then `Writing manifest list
//! to image destination` and `Storing list signatures`.
//!
//! ferry copies the blobs of every image of an index at once and writes the manifests after
//! them, so the lines come in skopeo's order but at ferry's moments: the blob lines of a
//! single image when its transfers start, each image's block of an index just before its
//! manifest is written. An image the destination already has is not copied again (skopeo's
//! `copy` would): ferry then says so with containers/image's own line for that case,
//! `Skipping: image already present at destination` (what `skopeo sync` prints).

use std::sync::Mutex;

use super::{Node, SourceSignatures};
use crate::manifest::{Kind, Manifest};
use crate::reference::Digest;

/// Where the lines go: straight to stdout, or kept (per image of a `sync`) until the copy
/// ends.
#[derive(Debug, Default)]
pub struct Transcript {
    buffered: bool,
    lines: Mutex<Vec<String>>,
}

impl Transcript {
    /// Lines printed as they come.
    pub fn immediate() -> Self {
        Transcript::default()
    }

    /// Lines kept until [`take`](Self::take).
    pub fn buffered() -> Self {
        Transcript {
            buffered: true,
            lines: Mutex::new(Vec::new()),
        }
    }

    /// Whether lines are kept.
    pub fn is_buffered(&self) -> bool {
        self.buffered
    }

    /// Keep lines (buffered transcripts).
    pub fn keep(&self, lines: Vec<String>) {
        self.lines.lock().expect("transcript lock").extend(lines);
    }

    /// The lines kept so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().expect("transcript lock"))
    }
}

fn has_signatures(sigs: &SourceSignatures, d: &Digest) -> bool {
    sigs.iter().any(|(x, s)| x == d && !s.is_empty())
}

/// Before anything is transferred.
pub(super) fn start(root: &Node, sigs: &SourceSignatures) -> Vec<String> {
    let m = &root.manifest;
    let mut out = vec![];
    match &m.kind {
        Kind::Index { manifests } => {
            out.push("Getting image list signatures".to_string());
            if has_signatures(sigs, &m.digest) {
                out.push("Checking if image destination supports signatures".to_string());
            }
            out.push(format!(
                "Copying {} images generated from {} images in list",
                root.children.len(),
                manifests.len()
            ));
        }
        Kind::Image { layers, .. } => {
            out.push("Getting image source signatures".to_string());
            if has_signatures(sigs, &m.digest) {
                out.push("Checking if image destination supports signatures".to_string());
            }
            out.extend(
                layers
                    .iter()
                    .filter(|l| !l.is_foreign())
                    .map(|l| format!("Copying blob {}", l.digest)),
            );
        }
    }
    out
}

/// Before the child manifests are written: each child's block, in index order. `creating`:
/// the `Creating signature: …` lines of a signing copy.
pub(super) fn children(root: &Node, sigs: &SourceSignatures, creating: &[String]) -> Vec<String> {
    let n = root.children.len();
    let mut out = vec![];
    for (i, c) in root.children.iter().enumerate() {
        out.push(format!(
            "Copying image {} ({}/{n})",
            c.manifest.digest,
            i + 1
        ));
        out.extend(start(c, sigs));
        out.extend(children(c, sigs, creating));
        out.extend(manifest(&c.manifest));
        if !c.manifest.is_index() {
            out.extend(creating.iter().cloned());
            if has_signatures(sigs, &c.manifest.digest) || !creating.is_empty() {
                out.push("Storing signatures".to_string());
            }
        }
    }
    out
}

/// Just before `m` is written (an image's config line, then the manifest line).
pub(super) fn manifest(m: &Manifest) -> Vec<String> {
    match &m.kind {
        Kind::Index { .. } => vec!["Writing manifest list to image destination".to_string()],
        Kind::Image { config, .. } => vec![
            format!("Copying config {}", config.digest),
            "Writing manifest to image destination".to_string(),
        ],
    }
}

/// After the top manifest (and signatures) are written.
pub(super) fn end(root: &Node, sigs: &SourceSignatures, creating: &[String]) -> Vec<String> {
    let mut out: Vec<String> = creating.to_vec();
    if root.manifest.is_index() {
        out.push("Storing list signatures".to_string());
    } else if has_signatures(sigs, &root.manifest.digest) || !creating.is_empty() {
        out.push("Storing signatures".to_string());
    }
    out
}

/// An image already at the destination signed again (skopeo copies it again and signs it).
pub(super) fn signed(root: &Node, creating: &[String]) -> Vec<String> {
    end(root, &vec![], creating)
}

/// The destination already holds the image (an index when `list`): nothing is copied.
pub(super) fn already_present(list: bool) -> Vec<String> {
    vec![
        if list {
            "Getting image list signatures"
        } else {
            "Getting image source signatures"
        }
        .to_string(),
        "Skipping: image already present at destination".to_string(),
    ]
}
