//! Discovery: what is attached to the copied manifests at the source — their referrers (the
//! referrers API, else the fallback tag) and their cosign attachment tags (looked up in the
//! repository's tag list, read once) — each attached manifest read by digest and verified.
//! Nothing is written here.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::{Attached, AttachmentOptions, Via};
use crate::error::{Error, Result};
use crate::image::ImageSource;
use crate::image::read::child;
use crate::manifest::{Kind, MAX_INDEX_DEPTH, Manifest};
use crate::reference::Digest;
use crate::registry::referrers::cosign_tag;

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Attachments, by depth.
    pub attached: Vec<Attached>,
    /// Referrers the source listed that the artifact-type filter left out.
    pub filtered_referrers: u64,
    /// Attachment tags the filter left out.
    pub filtered_tags: u64,
    /// Whether attachments at the last level were not looked into (depth bound).
    pub truncated: bool,
    /// Referrers a fallback index lists that the source does not have (deleted since).
    pub missing: Vec<String>,
}

/// Find what is attached to `subjects` at the source (see the module doc).
pub async fn discover(
    src: &dyn ImageSource,
    subjects: &[Digest],
    opts: &AttachmentOptions,
) -> Result<Discovery> {
    let mut out = Discovery::default();
    if !opts.enabled() {
        return Ok(out);
    }
    let tags: Arc<Vec<String>> = if opts.tag_suffixes.is_empty() {
        Arc::new(vec![])
    } else {
        src.tags().await?
    };
    let tags: HashSet<&str> = tags.iter().map(String::as_str).collect();
    let mut followed: HashSet<Digest> = subjects.iter().cloned().collect();
    let mut listed: HashSet<(Digest, Via)> = HashSet::new();
    let mut level: Vec<Digest> = subjects.to_vec();
    for depth in 1..=opts.max_depth {
        if level.is_empty() {
            break;
        }
        let found: Vec<Found> = futures_util::stream::iter(level)
            .map(|subject| attached_to(src, subject, depth, opts, &tags))
            .buffered(8)
            .try_collect()
            .await?;
        let mut next = vec![];
        for f in found {
            out.filtered_referrers += f.filtered_referrers;
            out.filtered_tags += f.filtered_tags;
            out.missing.extend(f.missing);
            for a in f.attached {
                if !listed.insert((a.manifest.digest.clone(), a.via.clone())) {
                    continue;
                }
                if followed.insert(a.manifest.digest.clone()) {
                    next.push(a.manifest.digest.clone());
                }
                out.attached.push(a);
            }
        }
        if depth == opts.max_depth && !next.is_empty() {
            out.truncated = true;
            log::info!(
                "not looking for attachments deeper than {} levels ({} manifest(s) at the last level)",
                opts.max_depth,
                next.len()
            );
        }
        level = next;
    }
    Ok(out)
}

/// What is attached to one manifest.
#[derive(Default)]
struct Found {
    attached: Vec<Attached>,
    filtered_referrers: u64,
    filtered_tags: u64,
    missing: Vec<String>,
}

/// What is attached to one manifest: its referrers and its attachment tags; the counts of
/// those the filter left out.
async fn attached_to(
    src: &dyn ImageSource,
    subject: Digest,
    depth: usize,
    opts: &AttachmentOptions,
    tags: &HashSet<&str>,
) -> Result<Found> {
    let mut found = Found::default();
    let out = &mut found.attached;
    if opts.referrers {
        for e in src.referrers(&subject, &opts.artifact_types).await? {
            let listed_type: Vec<String> = e.artifact_type.iter().cloned().collect();
            if !opts.wants(&listed_type) {
                found.filtered_referrers += 1;
                continue;
            }
            let m = match child(src, &e.descriptor).await {
                Ok(m) => m,
                // A fallback index can outlive a referrer deleted since: nothing to copy.
                Err(Error::NotFound { .. }) => {
                    let note = format!(
                        "referrer {} of {} (listed, but not in the source repository)",
                        e.descriptor.digest,
                        subject.short()
                    );
                    log::warn!("{note}");
                    found.missing.push(note);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let info = m.artifact().map_err(|reason| Error::Invalid {
                what: format!("referrer {} of {}", m.digest, subject.short()),
                location: src.location(),
                reason: reason.to_string(),
            })?;
            let points_at = info.subject.as_ref().map(|s| &s.digest);
            if points_at != Some(&subject) {
                return Err(Error::Invalid {
                    what: format!("referrer {} of {}", m.digest, subject.short()),
                    location: src.location(),
                    reason: match points_at {
                        Some(d) => format!("its subject is {d}, not the manifest it is listed for"),
                        None => "it has no subject".into(),
                    },
                });
            }
            let children = index_children(src, &m).await?;
            out.push(Attached {
                artifact_type: e.artifact_type.or(info.artifact_type),
                manifest: m,
                subject: subject.clone(),
                via: Via::Referrer,
                depth,
                children,
                merge: false,
            });
        }
    }
    for suffix in &opts.tag_suffixes {
        let tag = cosign_tag(&subject, suffix);
        if !tags.contains(tag.as_str()) {
            continue;
        }
        // Gone since the tags were listed: nothing to copy.
        let Some(m) = src.tagged_manifest(&tag).await? else {
            continue;
        };
        if !opts.wants(&m.content_types()) {
            found.filtered_tags += 1;
            continue;
        }
        let children = index_children(src, &m).await?;
        out.push(Attached {
            artifact_type: m.artifact().ok().and_then(|a| a.artifact_type),
            manifest: m,
            subject: subject.clone(),
            via: Via::Tag(tag),
            depth,
            children,
            merge: false,
        });
    }
    Ok(found)
}

/// The children of an attachment that is an index (recursively), deepest first.
async fn index_children(src: &dyn ImageSource, m: &Manifest) -> Result<Vec<Manifest>> {
    let mut out = vec![];
    let mut level = vec![m.clone()];
    for _ in 0..=MAX_INDEX_DEPTH {
        let mut next = vec![];
        for parent in &level {
            if let Kind::Index { manifests } = &parent.kind {
                for d in manifests {
                    next.push(child(src, d).await?);
                }
            }
        }
        if next.is_empty() {
            out.reverse();
            return Ok(out);
        }
        out.extend(next.iter().cloned());
        level = next;
    }
    Err(Error::Invalid {
        what: format!("attached index {}", m.digest),
        location: src.location(),
        reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
    })
}
