//! The plan of a copy: what the destination reference would name, whether the destination
//! already has it (or has something else under the tag), and the tree of manifests to write
//! with the blobs they need.

use std::collections::HashSet;

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::{Copier, Ends, MultiArch, Node};
use crate::error::{Error, Result};
use crate::image::read::{child, platform_image};
use crate::manifest::{Descriptor, Kind, MAX_INDEX_DEPTH, Manifest, is_image_type, is_index_type};
use crate::reference::Digest;

impl Copier {
    /// The digest and media type of what goes to the destination reference, when the top
    /// manifest alone tells (`None` when a nested index must be read first).
    pub(super) fn target_of(&self, top: &Manifest) -> Option<(Digest, String)> {
        match (&top.kind, self.opts.multi_arch) {
            (Kind::Image { .. }, _)
            | (Kind::Index { .. }, MultiArch::All | MultiArch::IndexOnly) => {
                Some((top.digest.clone(), top.media_type.clone()))
            }
            (Kind::Index { manifests }, MultiArch::System) => {
                match self.opts.platform.choose(manifests) {
                    Some(d) if is_image_type(&d.media_type) => {
                        Some((d.digest.clone(), d.media_type.clone()))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Refuse a destination digest reference that does not match, and (for promotions) a tag
    /// that would move to another digest.
    pub(super) fn check_destination(
        &self,
        ends: &Ends<'_>,
        digest: &Digest,
        existing: Option<&Digest>,
    ) -> Result<()> {
        if let Some(want) = ends.dst.reference_digest()
            && &want != digest
        {
            return Err(Error::usage(format!(
                "destination {} names digest {want}, but the image to write has digest {digest}",
                ends.dst.name()
            )));
        }
        if self.opts.refuse_retag
            && let Some(old) = existing
            && old != digest
        {
            return Err(Error::Refused(format!(
                "{} already points at {old}, not at {digest} (the digest of {}); refusing to move the tag",
                ends.dst.name(),
                ends.src.name()
            )));
        }
        Ok(())
    }

    /// Read the manifests the multi-arch mode needs: under `system`, the one image.
    pub(super) async fn plan(&self, ends: &Ends<'_>, top: Manifest, depth: usize) -> Result<Node> {
        let one_image = !ends.dst.capabilities().indexes;
        if one_image && top.is_index() && self.opts.multi_arch != MultiArch::System {
            log::info!(
                "{} holds one image: copying the {} image of the index",
                ends.dst.name(),
                self.opts.platform
            );
        }
        if self.opts.multi_arch == MultiArch::System || one_image {
            let image = platform_image(ends.src.as_ref(), top, &self.opts.platform).await?;
            return Ok(Node {
                manifest: image.manifest,
                children: vec![],
            });
        }
        self.plan_tree(ends, top, depth).await
    }

    /// `all` and `index-only`: the index and (for `all`) every child, recursively.
    pub(super) async fn plan_tree(
        &self,
        ends: &Ends<'_>,
        manifest: Manifest,
        depth: usize,
    ) -> Result<Node> {
        if depth > MAX_INDEX_DEPTH {
            return Err(Error::Invalid {
                what: format!("manifest {}", manifest.digest),
                location: ends.src.location(),
                reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
            });
        }
        let wanted: Vec<Descriptor> = match (&manifest.kind, self.opts.multi_arch) {
            (Kind::Index { manifests }, MultiArch::All) => manifests.clone(),
            _ => vec![],
        };
        for d in &wanted {
            if !d.media_type.is_empty()
                && !is_index_type(&d.media_type)
                && !is_image_type(&d.media_type)
            {
                return Err(Error::Unsupported(format!(
                    "copying index entry {} of media type {:?}",
                    d.digest, d.media_type
                )));
            }
        }
        let children: Vec<Node> = futures_util::stream::iter(wanted)
            .map(|d| async move {
                let m = child(ends.src.as_ref(), &d).await?;
                // As skopeo (which would have to rewrite the index, and so change its digest,
                // refused under --preserve-digests): an entry must name its manifest's type.
                if !d.media_type.is_empty() && d.media_type != m.media_type {
                    return Err(Error::Invalid {
                        what: format!("index entry {}", d.digest),
                        location: ends.src.location(),
                        reason: format!(
                            "the index declares media type {:?}, the manifest itself is {:?}",
                            d.media_type, m.media_type
                        ),
                    });
                }
                Box::pin(self.plan_tree(ends, m, depth + 1)).await
            })
            .buffered(8)
            .try_collect()
            .await?;
        Ok(Node { manifest, children })
    }
}

pub(super) fn collect_blobs(node: &Node, out: &mut Vec<Descriptor>, seen: &mut HashSet<Digest>) {
    for b in node.manifest.blobs() {
        if seen.insert(b.digest.clone()) {
            out.push(b.clone());
        }
    }
    for c in &node.children {
        collect_blobs(c, out, seen);
    }
}

/// Children grouped by depth (level 0 = direct children of the root).
pub(super) fn collect_children<'a>(
    node: &'a Node,
    depth: usize,
    levels: &mut Vec<Vec<&'a Manifest>>,
) {
    for c in &node.children {
        if levels.len() <= depth {
            levels.push(vec![]);
        }
        levels[depth].push(&c.manifest);
        collect_children(c, depth + 1, levels);
    }
}
