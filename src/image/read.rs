//! Reading from an image source the same way everywhere: an index's children (checked
//! against their entries), the one image of an index that a platform selects (`--multi-arch
//! system`, `inspect`), a blob read whole and verified, and the errors for blob bytes that do
//! not fit their descriptor.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;

use crate::error::{Error, Location, Result};
use crate::image::ImageSource;
use crate::manifest::{DOCKER_MANIFEST_LIST, Descriptor, Kind, MAX_INDEX_DEPTH, Manifest};
use crate::platform::Wanted;

/// A single-image manifest with its config and layers at hand.
#[derive(Debug, Clone)]
pub struct SingleImage {
    /// The manifest, bytes kept.
    pub manifest: Manifest,
    /// Its config blob.
    pub config: Descriptor,
    /// Its layers.
    pub layers: Vec<Descriptor>,
}

impl SingleImage {
    /// `Some` when `m` is an image manifest, `None` for an index.
    pub fn from_manifest(m: Manifest) -> Option<Self> {
        match &m.kind {
            Kind::Image { config, layers } => Some(SingleImage {
                config: config.clone(),
                layers: layers.clone(),
                manifest: m,
            }),
            Kind::Index { .. } => None,
        }
    }
}

/// Read an index entry's manifest, checking it against what the entry declares.
pub async fn child(src: &dyn ImageSource, d: &Descriptor) -> Result<Manifest> {
    let child = src.manifest_by_digest(&d.digest).await?;
    if child.bytes.len() as u64 != d.size {
        return Err(Error::Invalid {
            what: format!("manifest {}", d.digest),
            location: src.location(),
            reason: format!(
                "it is {} bytes, the index declares {}",
                child.bytes.len(),
                d.size
            ),
        });
    }
    Ok(child)
}

/// The image `wanted` selects: `top` itself, or the platform's image of an index (through
/// nested indexes, at most [`MAX_INDEX_DEPTH`] deep).
pub async fn platform_image(
    src: &dyn ImageSource,
    top: Manifest,
    wanted: &Wanted,
) -> Result<SingleImage> {
    let mut current = top;
    for _ in 0..=MAX_INDEX_DEPTH {
        let chosen = match &current.kind {
            Kind::Image { .. } => break,
            Kind::Index { manifests } => wanted
                .choose(manifests)
                .cloned()
                .ok_or_else(|| no_instance(src, &current, manifests, wanted))?,
        };
        log::debug!("{}: chose {} for {wanted}", src.name(), chosen.digest);
        current = child(src, &chosen).await?;
    }
    let digest = current.digest.clone();
    SingleImage::from_manifest(current).ok_or_else(|| Error::Invalid {
        what: format!("image index {digest}"),
        location: src.location(),
        reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
    })
}

/// No image of the index is for `wanted`: skopeo 1.18's words (containers/image's, which
/// scripts match), then what the index has.
fn no_instance(
    src: &dyn ImageSource,
    index: &Manifest,
    entries: &[Descriptor],
    wanted: &Wanted,
) -> Error {
    let list = if index.media_type == DOCKER_MANIFEST_LIST {
        "manifest list"
    } else {
        "image index"
    };
    let have: Vec<String> = entries
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match p.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    Error::Platform(format!(
        "choosing image instance: no image found in {list} for {wanted} ({} {} has {}; choose one with --override-os/--override-arch/--override-variant, or copy them all with --multi-arch all)",
        src.name(),
        index.digest,
        if have.is_empty() {
            "no platforms".to_string()
        } else {
            have.join(", ")
        }
    ))
}

/// Read a blob whole (a config, a small layer), at most `limit` bytes, verified against its
/// descriptor's size and digest. A chunk that takes longer than `stall` fails it (transient).
pub async fn read_whole(
    src: &dyn ImageSource,
    desc: &Descriptor,
    limit: u64,
    stall: Duration,
) -> Result<Bytes> {
    let loc = src.location();
    if desc.size > limit {
        return Err(Error::Invalid {
            what: format!("blob {}", desc.digest.short()),
            location: loc,
            reason: format!(
                "it is {} bytes, more than the {limit}-byte limit",
                desc.size
            ),
        });
    }
    let read = src.blob(desc, 0).await?;
    check_length(read.length, read.offset, desc, &loc)?;
    let mut stream = read.stream;
    let mut buf = BytesMut::with_capacity(desc.size as usize);
    let mut watch = crate::http::StallWatch::new(stall);
    loop {
        match tokio::time::timeout_at(watch.deadline(), stream.next()).await {
            Err(_) => return Err(stalled(desc, &loc, stall)),
            Ok(None) => break,
            Ok(Some(chunk)) => {
                let chunk = chunk?;
                if buf.len() as u64 + chunk.len() as u64 > desc.size {
                    return Err(too_many(desc, &loc));
                }
                watch.record(chunk.len());
                buf.extend_from_slice(&chunk);
            }
        }
    }
    if buf.len() as u64 != desc.size {
        return Err(short_blob(desc, buf.len() as u64, &loc));
    }
    if let Some(actual) = desc.digest.verify(&buf) {
        return Err(mismatch(desc, &loc, actual.to_string()));
    }
    Ok(buf.freeze())
}

/// No byte of a blob arrived for `stall` (transient: resumed or retried).
pub fn stalled(desc: &Descriptor, loc: &Location, stall: Duration) -> Error {
    Error::Network {
        op: format!("reading blob {}", desc.digest.short()),
        location: loc.clone(),
        reason: crate::http::stalled_text(stall),
        transient: true,
    }
}

/// A blob's bytes hash to `actual`, not to its digest (never retried).
pub fn mismatch(desc: &Descriptor, loc: &Location, actual: String) -> Error {
    Error::DigestMismatch {
        what: format!("blob {}", desc.digest.short()),
        location: loc.clone(),
        expected: desc.digest.to_string(),
        actual,
    }
}

/// More bytes than the descriptor declares.
pub fn too_many(desc: &Descriptor, loc: &Location) -> Error {
    Error::Invalid {
        what: format!("blob {}", desc.digest.short()),
        location: loc.clone(),
        reason: format!(
            "the source sent more than the {} bytes the manifest declares",
            desc.size
        ),
    }
}

/// Fewer bytes than the descriptor declares.
pub fn short_blob(desc: &Descriptor, got: u64, loc: &Location) -> Error {
    Error::Invalid {
        what: format!("blob {}", desc.digest.short()),
        location: loc.clone(),
        reason: format!(
            "the source sent {got} bytes, the manifest declares {}",
            desc.size
        ),
    }
}

/// Refuse a read whose announced length does not fit the descriptor.
pub fn check_length(
    length: Option<u64>,
    offset: u64,
    desc: &Descriptor,
    loc: &Location,
) -> Result<()> {
    if let Some(len) = length
        && offset.saturating_add(len) != desc.size
    {
        return Err(Error::Invalid {
            what: format!("blob {}", desc.digest.short()),
            location: loc.clone(),
            reason: format!(
                "the source announces {len} bytes from offset {offset}, the manifest declares {}",
                desc.size
            ),
        });
    }
    Ok(())
}
