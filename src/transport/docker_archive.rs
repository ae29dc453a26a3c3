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
//! Writing ([`DockerArchiveDestination`]): what `docker load` accepts and what skopeo writes,
//! byte for byte: `<hex>.tar` per layer (uncompressed), `<hex>.json` for the config, the
//! legacy `<id>/{layer.tar,VERSION,json}` entries, `manifest.json` and `repositories`, every
//! header as Go's `archive/tar` writes it (mode 0444, time 0). As skopeo, an existing
//! non-empty FILE is refused. Blobs are staged in a hidden directory next to FILE and the
//! archive is written under a temporary name, then renamed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;

use super::files::{self, Expect};
use super::oci_archive::{TarStore, write_archive};
use super::oci_layout::location;
use super::tar;
use crate::compress::{self, Detected};
use crate::error::{Error, Location, Result};
use crate::gojson::{self, Obj};
use crate::image::{
    BlobData, BlobOrigin, BlobRead, BlobStream, Capabilities, Existing, ImageDestination,
    ImageSource, LayerCompression, ManifestRole, Reuse,
};
use crate::manifest::{self, DOCKER_MANIFEST, Descriptor, Kind, Manifest};
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
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

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
        let manifest =
            manifest::parse(Bytes::from(manifest_json), Some(DOCKER_MANIFEST)).map_err(bad)?;
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

#[derive(Default)]
struct Pending {
    /// Blobs in the order they were put (skopeo writes them to the archive in that order).
    order: Vec<Digest>,
    manifest: Option<Manifest>,
}

/// Writing one image as a new `docker-archive:` file.
pub struct DockerArchiveDestination {
    path: PathBuf,
    tags: Vec<ImageRef>,
    staging: tempfile::TempDir,
    pending: Mutex<Pending>,
}

impl DockerArchiveDestination {
    /// Prepare to write an image tagged `tags` (the reference's, then `--additional-tag`s).
    pub fn new(path: &Path, tags: Vec<ImageRef>) -> Result<Self> {
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
            return Err(Error::Refused(format!(
                "{}: docker-archive doesn't support modifying existing images",
                path.display()
            )));
        }
        let parent = files::parent(path);
        let staging = tempfile::Builder::new()
            .prefix(files::TEMP_PREFIX)
            .tempdir_in(parent)
            .map_err(|e| files::io_err("creating a directory in", parent, e))?;
        Ok(DockerArchiveDestination {
            path: path.to_path_buf(),
            tags,
            staging,
            pending: Mutex::new(Pending::default()),
        })
    }
}

/// The legacy `<id>/json` entries and the top layer's id, as containers/image's
/// `writeLegacyMetadataLocked` computes them: (id, json) per layer.
fn legacy_layers(layers: &[Digest], config: &[u8]) -> Result<Vec<(String, String)>, String> {
    let parsed: BTreeMap<String, Box<serde_json::value::RawValue>> = serde_json::from_slice(config)
        .map_err(|e| format!("the config is not a JSON object: {e}"))?;
    let mut out: Vec<(String, String)> = vec![];
    let mut chain: Option<String> = None;
    let mut last: Option<String> = None;
    for (i, l) in layers.iter().enumerate() {
        // Go marshals a map: keys sorted.
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(p) = &last {
            fields.insert("parent", gojson::string(p));
        }
        if i == layers.len() - 1 {
            for attr in [
                "architecture",
                "config",
                "container",
                "container_config",
                "created",
                "docker_version",
                "os",
            ] {
                let v = parsed
                    .get(attr)
                    .map(|r| gojson::compact_raw(r.get().as_bytes()))
                    .unwrap_or_else(|| "null".into());
                fields.insert(attr, v);
            }
        }
        let id_chain = match &chain {
            None => l.to_string(),
            Some(c) => Digest::sha256(format!("{c} {l}").as_bytes()).to_string(),
        };
        chain = Some(id_chain.clone());
        let render = |f: &BTreeMap<&str, String>| {
            let mut o = Obj::new();
            for (k, v) in f {
                o = o.raw(k, v);
            }
            o.end()
        };
        let mut with_chain = fields.clone();
        with_chain.insert("layer_id", gojson::string(&id_chain));
        let id = Digest::sha256(render(&with_chain).as_bytes())
            .hex()
            .to_string();
        fields.insert("id", gojson::string(&id));
        out.push((id.clone(), render(&fields)));
        last = Some(id);
    }
    Ok(out)
}

/// What writing the archive needs, owned (it runs on a blocking thread).
struct Writing {
    path: PathBuf,
    staging: PathBuf,
    tags: Vec<ImageRef>,
    location: Location,
}

impl Writing {
    /// Write the archive from the staged blobs.
    fn write(&self, m: &Manifest, order: &[Digest], out: &mut std::fs::File) -> Result<()> {
        let Kind::Image { config, layers } = &m.kind else {
            return Err(Error::Invalid {
                what: "manifest".into(),
                location: self.location.clone(),
                reason: "Manifest lists are not supported for docker tar files".into(),
            });
        };
        let werr = |e: std::io::Error| files::io_err("writing", &self.path, e);
        let layer_digests: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
        let mut written = HashSet::new();
        for d in order {
            if !written.insert(d.clone()) {
                continue;
            }
            let name = if *d == config.digest {
                format!("{}.json", d.hex())
            } else if layer_digests.contains(d) {
                format!("{}.tar", d.hex())
            } else {
                continue;
            };
            let p = self.staging.join(d.hex());
            let mut f = std::fs::File::open(&p).map_err(|e| files::io_err("reading", &p, e))?;
            let size = f
                .metadata()
                .map_err(|e| files::io_err("reading", &p, e))?
                .len();
            out.write_all(&tar::header(&name, size, None))
                .map_err(werr)?;
            std::io::copy(&mut f, out).map_err(werr)?;
            out.write_all(&tar::data_padding(size)).map_err(werr)?;
        }
        let cfg_path = self.staging.join(config.digest.hex());
        let config_bytes = files::read_limited(&cfg_path, MAX_CONFIG, "config")?;
        let legacy =
            legacy_layers(&layer_digests, &config_bytes).map_err(|reason| Error::Invalid {
                what: "config".into(),
                location: self.location.clone(),
                reason,
            })?;
        let mut seen = HashSet::new();
        for ((id, json), l) in legacy.iter().zip(&layer_digests) {
            if !seen.insert(id.clone()) {
                continue;
            }
            let link = format!("../{}.tar", l.hex());
            add_entry(out, &format!("{id}/layer.tar"), b"", Some(&link)).map_err(werr)?;
            add_entry(out, &format!("{id}/VERSION"), b"1.0", None).map_err(werr)?;
            add_entry(out, &format!("{id}/json"), json.as_bytes(), None).map_err(werr)?;
        }
        let mut repo_tags: Vec<String> = vec![];
        for t in &self.tags {
            let s = t.to_string();
            if !repo_tags.contains(&s) {
                repo_tags.push(s);
            }
        }
        let item = Obj::new()
            .str("Config", &format!("{}.json", config.digest.hex()))
            .raw("RepoTags", &gojson::strings(&repo_tags))
            .raw(
                "Layers",
                &gojson::strings(
                    &layer_digests
                        .iter()
                        .map(|d| format!("{}.tar", d.hex()))
                        .collect::<Vec<_>>(),
                ),
            )
            .end();
        add_entry(
            out,
            "manifest.json",
            gojson::array(&[item]).as_bytes(),
            None,
        )
        .map_err(werr)?;
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        if let Some((top, _)) = legacy.last() {
            for t in &self.tags {
                repos
                    .entry(t.name())
                    .or_default()
                    .insert(t.tag().unwrap_or("latest").to_string(), top.clone());
            }
        }
        let mut o = Obj::new();
        for (name, tags) in &repos {
            o = o.map_omitempty(name, tags);
        }
        add_entry(out, "repositories", o.end().as_bytes(), None).map_err(werr)?;
        out.write_all(&tar::trailer()).map_err(werr)
    }
}

/// One small entry (or a link) of the archive.
fn add_entry(
    out: &mut std::fs::File,
    name: &str,
    body: &[u8],
    link: Option<&str>,
) -> std::io::Result<()> {
    out.write_all(&tar::header(name, body.len() as u64, link))?;
    out.write_all(body)?;
    out.write_all(&tar::data_padding(body.len() as u64))
}

#[async_trait]
impl ImageDestination for DockerArchiveDestination {
    fn name(&self) -> String {
        match self.tags.first() {
            Some(t) => format!("{}:{t}", self.location().registry),
            None => self.location().registry,
        }
    }

    fn location(&self) -> Location {
        location("docker-archive", &self.path)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            manifest_types: vec![DOCKER_MANIFEST],
            indexes: false,
            layer_compression: LayerCompression::Decompress,
        }
    }

    fn blob_scope(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    async fn existing(&self) -> Result<Option<Existing>> {
        Ok(None)
    }

    async fn try_reuse_blob(&self, desc: &Descriptor, _: Option<&BlobOrigin>) -> Result<Reuse> {
        let p = self.staging.path().join(desc.digest.hex());
        if std::fs::metadata(&p).is_ok_and(|m| m.len() == desc.size) {
            self.pending
                .lock()
                .expect("pending")
                .order
                .push(desc.digest.clone());
            return Ok(Reuse::Present);
        }
        Ok(Reuse::No)
    }

    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()> {
        let expect = Expect {
            size: Some(desc.size),
            digest: Some(desc.digest.clone()),
            hash: false,
            what: format!("blob {}", desc.digest.short()),
            location: self.location(),
        };
        let dest = self.staging.path().join(desc.digest.hex());
        files::put_data(
            data,
            self.staging.path().to_path_buf(),
            move |_: &Digest| dest,
            expect,
        )
        .await?;
        self.pending
            .lock()
            .expect("pending")
            .order
            .push(desc.digest.clone());
        Ok(())
    }

    async fn put_blob_computed(
        &self,
        _media_type: &str,
        stream: BlobStream,
    ) -> Result<Option<(Digest, u64)>> {
        let expect = Expect {
            size: None,
            digest: None,
            hash: true,
            what: "a decompressed layer".into(),
            location: self.location(),
        };
        let to = self.staging.path().to_path_buf();
        let r = files::put_data(
            BlobData::Stream(stream),
            to.clone(),
            move |d: &Digest| to.join(d.hex()),
            expect,
        )
        .await?;
        self.pending
            .lock()
            .expect("pending")
            .order
            .push(r.0.clone());
        Ok(Some(r))
    }

    async fn put_manifest(&self, m: &Manifest, role: ManifestRole) -> Result<()> {
        if role == ManifestRole::ByDigest || m.media_type != DOCKER_MANIFEST {
            return Err(Error::Invalid {
                what: format!("manifest {}", m.digest.short()),
                location: self.location(),
                reason: "a docker-archive holds one Docker schema 2 image (not an index)".into(),
            });
        }
        self.pending.lock().expect("pending").manifest = Some(m.clone());
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let (m, mut order) = {
            let p = self.pending.lock().expect("pending");
            let m = p.manifest.clone().ok_or_else(|| Error::Invalid {
                what: "image".into(),
                location: self.location(),
                reason: "no manifest was written".into(),
            })?;
            (m, p.order.clone())
        };
        // skopeo writes the layers in their order, then the config (the engine may have put
        // them in any order, several at once).
        if let Kind::Image { config, layers } = &m.kind {
            order = layers.iter().map(|l| l.digest.clone()).collect();
            order.push(config.digest.clone());
        }
        let w = Writing {
            path: self.path.clone(),
            staging: self.staging.path().to_path_buf(),
            tags: self.tags.clone(),
            location: self.location(),
        };
        files::blocking(move || write_archive(&w.path, |f| w.write(&m, &order, f))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ids_as_skopeo_computes_them() {
        // Values from the docker-archive skopeo 1.9.3 and 1.18 wrote for the lab image of
        // tests/it/transports_archive.rs (its json files are 73 and 348 bytes).
        let l1: Digest = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
        let l2: Digest = format!("sha256:{}", "2".repeat(64)).parse().unwrap();
        let cfg = br#"{"architecture":"amd64", "os":"linux","config":{"Cmd":["a && b <x>"]},"rootfs":{}}"#;
        let out = legacy_layers(&[l1.clone(), l2], cfg).unwrap();
        assert_eq!(out.len(), 2);
        let first_id = Digest::sha256(format!(r#"{{"layer_id":"{l1}"}}"#).as_bytes());
        assert_eq!(out[0].0, first_id.hex());
        assert_eq!(out[0].1, format!(r#"{{"id":"{}"}}"#, first_id.hex()));
        assert!(out[1].1.starts_with(r#"{"architecture":"amd64","config":{"Cmd":["a \u0026\u0026 b \u003cx\u003e"]},"container":null,"container_config":null,"created":null,"docker_version":null,"id":""#), "{}", out[1].1);
        assert!(
            out[1]
                .1
                .ends_with(&format!(r#","os":"linux","parent":"{}"}}"#, first_id.hex()))
        );
    }
}
