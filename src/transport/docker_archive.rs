//! `docker-archive:FILE[:NAME:TAG|:@N]`: the `docker save` format, as skopeo reads and
//! writes it (containers/image `docker/internal/tarfile`).
//!
//! Reading ([`DockerArchiveSource`]): `manifest.json` lists images (`Config`, `RepoTags`,
//! `Layers`); the image is the one tagged NAME:TAG, the Nth, or the only one. As skopeo,
//! ferry presents it as a Docker v2 schema 2 manifest generated from the config (byte for
//! byte the one skopeo generates, so digests match): layers uncompressed, each named by its
//! `diff_id`. Layer files stored compressed are decompressed on the way. Entries are read in
//! place; links are followed inside the archive only.
//!
//! Writing: [`super::docker_archive_write`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use super::files;
use super::oci_archive::TarStore;
use super::tar;
use crate::compress::{self, Detected};
use crate::error::{Error, Location, Result};
use crate::gojson::{self, Obj};
use crate::image::{BlobRead, ImageSource};
use crate::manifest::{self, DOCKER_MANIFEST, Descriptor, Manifest};
use crate::reference::{Digest, ImageRef};

/// The config media type of a Docker image.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The layer media type skopeo's docker-archive source declares: the gzip one, although it
/// serves the layers uncompressed (containers/image uses `DockerV2Schema2LayerMediaType`;
/// the copy then detects the compression from the bytes). Kept, so that digests match.
pub const DOCKER_ARCHIVE_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest `manifest.json` read (containers/image: 20 MiB).
const MAX_TAR_MANIFEST: u64 = 20 * 1024 * 1024;
/// The largest config read (containers/image: 4 MiB).
pub(crate) const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// One image of `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
struct Item {
    #[serde(rename = "Config", default)]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct ConfigRootFs {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// A layer of the source image: where it is and its uncompressed size.
struct Layer {
    entry: tar::Entry,
    compression: Detected,
    size: u64,
}

/// An image in a `docker-archive:` file.
pub struct DockerArchiveSource {
    store: TarStore,
    label: String,
    config: Bytes,
    config_digest: Digest,
    layers: HashMap<Digest, Layer>,
    manifest: Manifest,
}

fn read_items(store: &TarStore) -> Result<Vec<Item>> {
    let bad = |reason: String| Error::Invalid {
        what: "archive".into(),
        location: store.location_of(),
        reason,
    };
    let e = store
        .entry("manifest.json")?
        .ok_or_else(|| bad("it has no manifest.json".into()))?;
    let bytes = store.read(e, MAX_TAR_MANIFEST)?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest.json: {e}")))
}

/// The tags in an archive, as `list-tags docker-archive:FILE` prints them: every image's
/// `RepoTags` in order, `@N` for an image without any.
pub async fn list_tags(path: &Path) -> Result<Vec<String>> {
    let store = TarStore::open_as(path, "docker-archive").await?;
    let mut out = vec![];
    for (i, item) in read_items(&store)?.iter().enumerate() {
        let tags = item.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            out.push(format!("@{i}"));
        }
        for t in tags {
            ImageRef::parse(&t).map_err(|e| Error::Invalid {
                what: "archive".into(),
                location: store.location_of(),
                reason: format!("invalid tag {t:?} in manifest.json item @{i}: {e}"),
            })?;
            out.push(t);
        }
    }
    Ok(out)
}

impl TarStore {
    fn location_of(&self) -> Location {
        super::oci_layout::Store::location(self)
    }
}

impl DockerArchiveSource {
    /// Find the image (by tag, position, or the only one) in the archive at `path`.
    pub async fn open(path: &Path, tag: Option<ImageRef>, position: Option<usize>) -> Result<Self> {
        let store = TarStore::open_as(path, "docker-archive").await?;
        files::blocking(move || Self::open_store(store, tag, position)).await
    }

    fn open_store(store: TarStore, tag: Option<ImageRef>, position: Option<usize>) -> Result<Self> {
        let loc = store.location_of();
        let bad = |reason: String| Error::Invalid {
            what: "archive".into(),
            location: loc.clone(),
            reason,
        };
        let items = read_items(&store)?;
        let item = match (&tag, position) {
            (Some(want), _) => {
                let mut found = None;
                'items: for (i, item) in items.iter().enumerate() {
                    for t in item.repo_tags.iter().flatten() {
                        let parsed = ImageRef::parse(t).map_err(|e| {
                            bad(format!("invalid tag {t:?} in manifest.json item @{i}: {e}"))
                        })?;
                        if parsed == *want {
                            found = Some(item);
                            break 'items;
                        }
                    }
                }
                found.ok_or_else(|| Error::NotFound {
                    what: format!("tag {want}"),
                    location: loc.clone(),
                    detail: Default::default(),
                })?
            }
            (None, Some(i)) => items.get(i).ok_or_else(|| {
                Error::usage(format!(
                    "invalid source index @{i}: {loc} has only {} images",
                    items.len()
                ))
            })?,
            (None, None) if items.len() == 1 => &items[0],
            (None, None) => {
                return Err(Error::usage(format!(
                    "{loc} holds {} images: choose one (docker-archive:FILE:NAME:TAG or :@INDEX)",
                    items.len()
                )));
            }
        };
        let ce = store
            .entry(&item.config)?
            .ok_or_else(|| bad(format!("config {} is missing", item.config)))?;
        let config = store.read(ce, MAX_CONFIG)?;
        let parsed: ConfigRootFs = serde_json::from_slice(&config)
            .map_err(|e| bad(format!("config {}: {e}", item.config)))?;
        let diff_ids = parsed
            .rootfs
            .ok_or_else(|| bad(format!("config {} has no rootfs", item.config)))?
            .diff_ids
            .iter()
            .map(|d| d.parse::<Digest>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("config {}: diff_ids: {e}", item.config)))?;
        if diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "inconsistent layer count: {} in manifest.json, {} in the config",
                item.layers.len(),
                diff_ids.len()
            )));
        }
        let mut layers: HashMap<Digest, Layer> = HashMap::new();
        let mut paths = HashSet::new();
        for (d, p) in diff_ids.iter().zip(&item.layers) {
            if layers.contains_key(d) {
                continue;
            }
            let p = tar::clean(p);
            if !paths.insert(p.clone()) {
                return Err(bad(format!(
                    "layer file {p} is used for two different diff_ids"
                )));
            }
            let entry = store
                .entry(&p)?
                .ok_or_else(|| bad(format!("layer file {p} is missing")))?
                .clone();
            let (compression, size) = layer_size(store.file_path(), &entry)?;
            layers.insert(
                d.clone(),
                Layer {
                    entry,
                    compression,
                    size,
                },
            );
        }
        let config_digest = Digest::sha256(&config);
        let manifest_json = Obj::new()
            .int("schemaVersion", 2)
            .str("mediaType", DOCKER_MANIFEST)
            .raw(
                "config",
                &Obj::new()
                    .str("mediaType", DOCKER_CONFIG)
                    .int("size", config.len() as i64)
                    .str("digest", config_digest.as_str())
                    .end(),
            )
            .raw(
                "layers",
                &gojson::array(
                    &diff_ids
                        .iter()
                        .map(|d| {
                            Obj::new()
                                .str("mediaType", DOCKER_ARCHIVE_LAYER)
                                .int("size", layers[d].size as i64)
                                .str("digest", d.as_str())
                                .end()
                        })
                        .collect::<Vec<_>>(),
                ),
            )
            .end();
        let manifest = manifest::parse(Bytes::from(manifest_json), Some(DOCKER_MANIFEST))
            .map_err(|e| bad(e.to_string()))?;
        let label = match (&tag, position) {
            (Some(t), _) => format!("{loc}:{t}"),
            (None, Some(i)) => format!("{loc}:@{i}"),
            (None, None) => loc.to_string(),
        };
        Ok(DockerArchiveSource {
            store,
            label,
            config: Bytes::from(config),
            config_digest,
            layers,
            manifest,
        })
    }
}

/// A layer file's compression and uncompressed size (decompressing it to count, as skopeo).
fn layer_size(archive: &Path, e: &tar::Entry) -> Result<(Detected, u64)> {
    use std::io::Read as _;
    let mut f = tar::open_entry(archive, e)?.take(e.size);
    let mut magic = [0u8; 6];
    let n = compress::read_up_to(&mut f, &mut magic)
        .map_err(|err| Error::io("reading archive", archive, err))?;
    let detected = compress::detect(&magic[..n]);
    let alg = match detected {
        Detected::None => return Ok((detected, e.size)),
        Detected::Gzip => compress::Algorithm::Gzip,
        Detected::Zstd => compress::Algorithm::Zstd,
        other => {
            return Err(Error::Unsupported(format!(
                "{other:?}-compressed layers in a docker-archive"
            )));
        }
    };
    let f = tar::open_entry(archive, e)?.take(e.size);
    let mut dec: Box<dyn std::io::Read> = match alg {
        compress::Algorithm::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        compress::Algorithm::Zstd => Box::new(
            zstd::stream::read::Decoder::new(f)
                .map_err(|err| Error::io("decompressing a layer of", archive, err))?,
        ),
    };
    let size = std::io::copy(&mut dec, &mut std::io::sink())
        .map_err(|err| Error::io("decompressing a layer of", archive, err))?;
    Ok((detected, size))
}

#[async_trait]
impl ImageSource for DockerArchiveSource {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn location(&self) -> Location {
        self.store.location_of()
    }

    async fn manifest(&self) -> Result<Manifest> {
        Ok(self.manifest.clone())
    }

    async fn manifest_by_digest(&self, digest: &Digest) -> Result<Manifest> {
        if *digest == self.manifest.digest {
            return Ok(self.manifest.clone());
        }
        Err(Error::NotFound {
            what: format!("manifest {}", digest.short()),
            location: self.location(),
            detail: Default::default(),
        })
    }

    async fn blob(&self, desc: &Descriptor, offset: u64) -> Result<BlobRead> {
        use std::io::{Seek as _, SeekFrom};
        if desc.digest == self.config_digest {
            let off = (offset as usize).min(self.config.len());
            let rest = self.config.slice(off..);
            return Ok(BlobRead {
                length: Some(rest.len() as u64),
                stream: Box::pin(futures_util::stream::iter([Ok(rest)])),
                offset: off as u64,
            });
        }
        let layer = self
            .layers
            .get(&desc.digest)
            .ok_or_else(|| Error::NotFound {
                what: format!("blob {}", desc.digest.short()),
                location: self.location(),
                detail: Default::default(),
            })?;
        let mut f = tar::open_entry(self.store.file_path(), &layer.entry)?;
        let alg = match layer.compression {
            Detected::Gzip => compress::Algorithm::Gzip,
            Detected::Zstd => compress::Algorithm::Zstd,
            _ => {
                let off = offset.min(layer.entry.size);
                f.seek(SeekFrom::Current(off as i64))
                    .map_err(|e| Error::io("reading archive", self.store.file_path(), e))?;
                return Ok(BlobRead {
                    stream: files::file_stream(f, layer.entry.size - off),
                    offset: off,
                    length: Some(layer.entry.size - off),
                });
            }
        };
        let raw = files::file_stream(f, layer.entry.size);
        Ok(BlobRead {
            stream: compress::transform(
                raw,
                compress::Op::Decompress(alg),
                format!("layer {}", desc.digest.short()),
            ),
            offset: 0,
            length: Some(layer.size),
        })
    }
}
