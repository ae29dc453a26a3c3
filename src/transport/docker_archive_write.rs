//! Writing `docker-archive:` files ([`DockerArchiveDestination`]): what `docker load` accepts
//! and what skopeo writes (containers/image `docker/internal/tarfile/writer.go`), byte for
//! byte: `<hex>.tar` per layer (uncompressed), `<hex>.json` for the config, the legacy
//! `<id>/{layer.tar,VERSION,json}` entries, `manifest.json` and `repositories`, every header as
//! Go's `archive/tar` writes it (mode 0444, time 0). As skopeo, an existing non-empty FILE is
//! refused. Blobs are staged in a hidden directory next to FILE and the archive is written
//! under a temporary name, then renamed.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::docker_archive::MAX_CONFIG;
use super::files::{self, Expect};
use super::oci_archive::write_archive;
use super::oci_layout::location;
use super::tar;
use crate::error::{Error, Location, Result};
use crate::gojson::{self, Obj};
use crate::image::{
    BlobData, BlobOrigin, BlobStream, Capabilities, Existing, ImageDestination, LayerCompression,
    ManifestRole, Reuse,
};
use crate::manifest::{DOCKER_MANIFEST, Descriptor, Kind, Manifest};
use crate::reference::{Digest, ImageRef};

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
