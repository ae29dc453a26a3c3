//! Changes to an image on its way, planned as skopeo (containers/image `copy`) plans them,
//! for the cases where ferry makes any: ferry keeps layers and manifests as they are unless
//! a format requires a change or a flag asks for one, and then says so in its summary.
//!
//! | when | what changes |
//! |---|---|
//! | `docker-archive:` destination | compressed layers are decompressed (`docker load` wants tars), a non-Docker manifest becomes a Docker schema 2 one |
//! | `docker-archive:` source, registry or `oci:` destination | its (uncompressed) layers are gzip-compressed, as skopeo does |
//! | `dir:` destination with `--dest-compress` / `--dest-decompress` | layers compressed / decompressed |
//! | `--dest-compress-format gzip\|zstd` (registry, `oci:`, or `dir:` with `--dest-compress`) | uncompressed layers compressed, layers compressed otherwise recompressed |
//! | `-f oci` / `-f v2s2` | the manifest (and, to OCI, the config) converted, media types mapped |
//!
//! A changed layer has a new digest and size; the image's manifest (and an index above it)
//! is written again as Go's `json.Marshal` writes it, so its bytes are skopeo's whenever the
//! layers' bytes are (the uncompressed content, and so the config's `diff_ids`, always are).

pub(crate) mod gomodel;

use bytes::Bytes;

use crate::compress::{Algorithm, Op};
use crate::manifest::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, Kind, Manifest, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::transport::oci_index::{Entry, Index};
use gomodel::{Oci1, Schema2, Schema2Descriptor, Schema2List, Schema2ListEntry};

/// The OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// `-f/--format`: the manifest type to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest / index.
    Oci,
    /// Docker schema 2 manifest / manifest list.
    V2s2,
}

impl std::str::FromStr for ManifestFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" => Ok(ManifestFormat::Oci),
            "v2s2" => Ok(ManifestFormat::V2s2),
            "v2s1" => Err("Docker schema 1 (v2s1) is not supported: use oci or v2s2".into()),
            other => Err(format!("unknown manifest format {other:?} (oci or v2s2)")),
        }
    }
}

/// What the destination wants done to layers (containers/image's `DesiredLayerCompression`,
/// as ferry applies it: never a change unless asked for or required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Keep layers as they are.
    Preserve,
    /// Compress uncompressed layers (and recompress to `Options::format` when given).
    Compress,
    /// Decompress compressed layers.
    Decompress,
}

/// The flags that change layers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--dest-compress-format`.
    pub format: Option<Algorithm>,
    /// `--dest-compress-level`.
    pub level: Option<i32>,
    /// `-f/--format`.
    pub manifest_format: Option<ManifestFormat>,
    /// The source declares its layers compressed but serves them uncompressed (a
    /// `docker-archive:`, as skopeo reads one): plan from the bytes, not the media types.
    pub source_uncompressed: bool,
}

/// A layer's compression, from its media type (`None`: not a layer whose compression can
/// change — a foreign layer, an artifact's blob).
pub fn layer_compression(media_type: &str) -> Option<Option<Algorithm>> {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.oci.image.layer.v1.tar" => Some(None),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.oci.image.layer.v1.tar+gzip" => Some(Some(Algorithm::Gzip)),
        "application/vnd.oci.image.layer.v1.tar+zstd" => Some(Some(Algorithm::Zstd)),
        _ => None,
    }
}

/// What to do to one layer (`None`: keep it).
pub fn layer_op(desc: &Descriptor, desired: Desired, opts: &Options) -> Option<Op> {
    if desc.is_foreign() {
        return None;
    }
    let declared = layer_compression(&desc.media_type)?;
    let current = if opts.source_uncompressed {
        None
    } else {
        declared
    };
    match (desired, current) {
        (Desired::Compress, None) => Some(Op::Compress(
            opts.format.unwrap_or(Algorithm::Gzip),
            opts.level,
        )),
        (Desired::Compress, Some(from)) => match opts.format {
            Some(to) if to != from => Some(Op::Recompress(from, to, opts.level)),
            _ => None,
        },
        (Desired::Decompress, Some(from)) => Some(Op::Decompress(from)),
        _ => None,
    }
}

/// Why a manifest cannot be converted as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// Docker schema 2 has no zstd layer type.
    #[error("zstd compression is not supported for Docker schema 2 images (use -f oci)")]
    ZstdInDocker,
    /// A layer media type the conversion does not know.
    #[error("unknown layer media type {0:?} during manifest conversion")]
    UnknownLayer(String),
    /// Anything else the conversion refuses; the text says what.
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn refused(why: impl Into<String>) -> ConvertError {
    ConvertError::Refused(why.into())
}

/// The layer media type for a manifest kind and compression.
pub fn layer_media_type(
    docker: bool,
    compression: Option<Algorithm>,
) -> Result<&'static str, ConvertError> {
    Ok(match (docker, compression) {
        (true, None) => "application/vnd.docker.image.rootfs.diff.tar",
        (true, Some(Algorithm::Gzip)) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        (true, Some(Algorithm::Zstd)) => {
            return Err(ConvertError::ZstdInDocker);
        }
        (false, None) => "application/vnd.oci.image.layer.v1.tar",
        (false, Some(Algorithm::Gzip)) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (false, Some(Algorithm::Zstd)) => "application/vnd.oci.image.layer.v1.tar+zstd",
    })
}

/// A layer's media type in the other manifest kind (as containers/image maps them).
fn map_layer_type(media_type: &str, to_docker: bool) -> Result<String, ConvertError> {
    let mapped = match (to_docker, media_type) {
        (true, "application/vnd.oci.image.layer.nondistributable.v1.tar") => {
            "application/vnd.docker.image.rootfs.foreign.diff.tar"
        }
        (true, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") => {
            manifest::DOCKER_FOREIGN_LAYER
        }
        (false, "application/vnd.docker.image.rootfs.foreign.diff.tar") => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar"
        }
        (false, manifest::DOCKER_FOREIGN_LAYER) => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        _ => {
            let c = layer_compression(media_type)
                .ok_or_else(|| ConvertError::UnknownLayer(media_type.to_string()))?;
            layer_media_type(to_docker, c)?
        }
    };
    Ok(mapped.to_string())
}

/// The manifest type an image ends up with: `-f`, else what the destination accepts, else
/// its own.
pub fn target_type(
    current: &str,
    accepted: &[&str],
    forced: Option<ManifestFormat>,
) -> Result<&'static str, ConvertError> {
    let index = manifest::is_index_type(current);
    let pick = |f: ManifestFormat| match (f, index) {
        (ManifestFormat::Oci, false) => OCI_MANIFEST,
        (ManifestFormat::Oci, true) => OCI_INDEX,
        (ManifestFormat::V2s2, false) => DOCKER_MANIFEST,
        (ManifestFormat::V2s2, true) => DOCKER_MANIFEST_LIST,
    };
    if let Some(f) = forced {
        return Ok(pick(f));
    }
    let own = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ]
    .into_iter()
    .find(|t| *t == current)
    .ok_or_else(|| refused(format!("unsupported manifest type {current:?}")))?;
    if accepted.is_empty() || accepted.contains(&own) {
        return Ok(own);
    }
    if accepted.contains(&DOCKER_MANIFEST) && !index {
        return Ok(DOCKER_MANIFEST);
    }
    if accepted.contains(&OCI_MANIFEST) && !index {
        return Ok(OCI_MANIFEST);
    }
    Err(refused(format!(
        "the destination does not accept a {} (it takes {})",
        manifest::type_name(current),
        accepted.join(", ")
    )))
}

/// A new layer (or config) of a rewritten image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlob {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

/// An image manifest written again: of type `target`, with `config` and `layers` (one per
/// layer of the original, in order) replacing the original's.
pub fn rewrite_image(
    original: &Manifest,
    target: &str,
    config: &NewBlob,
    layers: &[NewBlob],
) -> Result<Bytes, ConvertError> {
    let Kind::Image { .. } = &original.kind else {
        return Err(refused("not an image manifest"));
    };
    let to_docker = target == DOCKER_MANIFEST;
    let urls_of = |i: usize| -> Option<Vec<String>> {
        match &original.kind {
            Kind::Image { layers, .. } => layers
                .get(i)
                .map(|l| l.urls.clone())
                .filter(|u| !u.is_empty()),
            Kind::Index { .. } => None,
        }
    };
    let json = if to_docker {
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(Schema2Descriptor {
                    media_type: map_to(&l.media_type, true)?,
                    size: l.size as i64,
                    digest: l.digest.clone(),
                    urls: urls_of(i),
                })
            })
            .collect::<Result<Vec<_>, ConvertError>>()?;
        Schema2 {
            schema_version: 2,
            media_type: DOCKER_MANIFEST.into(),
            config: Schema2Descriptor {
                media_type: DOCKER_CONFIG.into(),
                size: config.size as i64,
                digest: config.digest.clone(),
                urls: None,
            },
            layers: Some(layers),
        }
        .to_json()
    } else {
        // From an OCI original, keep what Go's v1.Manifest keeps (annotations, subject…).
        let mut m: Oci1 = if original.media_type == OCI_MANIFEST {
            serde_json::from_slice(&original.bytes).map_err(|e| refused(e.to_string()))?
        } else {
            Oci1 {
                schema_version: 2,
                ..Oci1::default()
            }
        };
        m.media_type = OCI_MANIFEST.into();
        m.config.media_type = OCI_CONFIG.into();
        m.config.digest = config.digest.clone();
        m.config.size = config.size as i64;
        let old = m.layers.take().unwrap_or_default();
        let mut out = vec![];
        for (i, l) in layers.iter().enumerate() {
            let mut e = old.get(i).cloned().unwrap_or_default();
            e.media_type = map_to(&l.media_type, false)?;
            e.digest = l.digest.clone();
            e.size = l.size as i64;
            if e.urls.is_none() {
                e.urls = urls_of(i);
            }
            out.push(e);
        }
        m.layers = Some(out);
        m.to_json()
    };
    Ok(Bytes::from(json))
}

fn map_to(media_type: &str, to_docker: bool) -> Result<String, ConvertError> {
    let is_docker = media_type.starts_with("application/vnd.docker.");
    if is_docker == to_docker {
        Ok(media_type.to_string())
    } else {
        map_layer_type(media_type, to_docker)
    }
}

/// An index written again: of type `target`, each child replaced by its new manifest
/// (`children`: original digest → (new media type, new digest, new size)).
pub fn rewrite_index(
    original: &Manifest,
    target: &str,
    children: &[(String, NewBlob)],
) -> Result<Bytes, ConvertError> {
    let new_of = |d: &str| children.iter().find(|(o, _)| o == d).map(|(_, n)| n);
    let json = if original.media_type == OCI_INDEX {
        let mut idx: Index =
            serde_json::from_slice(&original.bytes).map_err(|e| refused(e.to_string()))?;
        for e in idx.manifests.iter_mut().flatten() {
            if let Some(n) = new_of(&e.digest) {
                (e.media_type, e.digest, e.size) =
                    (n.media_type.clone(), n.digest.clone(), n.size as i64);
            }
        }
        if target == DOCKER_MANIFEST_LIST {
            oci_to_list(&idx).to_json()
        } else {
            idx.to_json()
        }
    } else {
        let mut list: Schema2List =
            serde_json::from_slice(&original.bytes).map_err(|e| refused(e.to_string()))?;
        for e in list.manifests.iter_mut().flatten() {
            if let Some(n) = new_of(&e.desc.digest) {
                (e.desc.media_type, e.desc.digest, e.desc.size) =
                    (n.media_type.clone(), n.digest.clone(), n.size as i64);
            }
        }
        if target == OCI_INDEX {
            list_to_oci(&list).to_json()
        } else {
            list.to_json()
        }
    };
    Ok(Bytes::from(json))
}

/// containers/image's `ToSchema2List`.
fn oci_to_list(idx: &Index) -> Schema2List {
    let manifests = idx
        .entries()
        .iter()
        .map(|e| {
            let p = e.platform.clone().unwrap_or_else(|| {
                // Go's runtime.GOOS/GOARCH of the process converting.
                let here = crate::platform::Wanted::current(None, None, None);
                crate::transport::oci_index::Platform {
                    architecture: here.arch,
                    os: here.os,
                    ..Default::default()
                }
            });
            Schema2ListEntry {
                desc: Schema2Descriptor {
                    media_type: e.media_type.clone(),
                    size: e.size,
                    digest: e.digest.clone(),
                    urls: e.urls.clone(),
                },
                platform: gomodel::Schema2Platform {
                    architecture: p.architecture,
                    os: p.os,
                    os_version: p.os_version,
                    os_features: p.os_features,
                    variant: p.variant,
                    features: None,
                },
            }
        })
        .collect();
    Schema2List {
        schema_version: 2,
        media_type: DOCKER_MANIFEST_LIST.into(),
        manifests: Some(manifests),
    }
}

/// containers/image's `ToOCI1Index`.
fn list_to_oci(list: &Schema2List) -> Index {
    let mut idx = Index {
        schema_version: 2,
        media_type: OCI_INDEX.into(),
        manifests: Some(vec![]),
        ..Index::default()
    };
    for e in list.manifests.iter().flatten() {
        let p = &e.platform;
        idx.manifests.get_or_insert_with(Vec::new).push(Entry {
            media_type: e.desc.media_type.clone(),
            digest: e.desc.digest.clone(),
            size: e.desc.size,
            urls: e.desc.urls.clone(),
            platform: Some(crate::transport::oci_index::Platform {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                os_version: p.os_version.clone(),
                os_features: p.os_features.clone(),
                variant: p.variant.clone(),
            }),
            ..Entry::default()
        });
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Digest;

    fn desc(mt: &str) -> Descriptor {
        Descriptor {
            media_type: mt.into(),
            digest: Digest::sha256(mt.as_bytes()),
            size: 1,
            platform: None,
            urls: vec![],
        }
    }

    #[test]
    fn plans_layers_as_skopeo() {
        let o = Options::default();
        let gz = desc("application/vnd.oci.image.layer.v1.tar+gzip");
        let tar = desc("application/vnd.docker.image.rootfs.diff.tar");
        assert_eq!(layer_op(&gz, Desired::Preserve, &o), None);
        assert_eq!(
            layer_op(&gz, Desired::Decompress, &o),
            Some(Op::Decompress(Algorithm::Gzip))
        );
        assert_eq!(layer_op(&tar, Desired::Decompress, &o), None);
        assert_eq!(
            layer_op(&tar, Desired::Compress, &o),
            Some(Op::Compress(Algorithm::Gzip, None))
        );
        assert_eq!(layer_op(&gz, Desired::Compress, &o), None);
        let z = Options {
            format: Some(Algorithm::Zstd),
            level: Some(5),
            ..Options::default()
        };
        assert_eq!(
            layer_op(&gz, Desired::Compress, &z),
            Some(Op::Recompress(Algorithm::Gzip, Algorithm::Zstd, Some(5)))
        );
        let foreign = Descriptor {
            urls: vec!["https://x".into()],
            ..desc(manifest::DOCKER_FOREIGN_LAYER)
        };
        assert_eq!(layer_op(&foreign, Desired::Decompress, &o), None);
    }

    #[test]
    fn chooses_target_types() {
        assert_eq!(
            target_type(OCI_MANIFEST, &[DOCKER_MANIFEST], None),
            Ok(DOCKER_MANIFEST)
        );
        assert_eq!(target_type(OCI_MANIFEST, &[], None), Ok(OCI_MANIFEST));
        assert_eq!(
            target_type(DOCKER_MANIFEST, &[], Some(ManifestFormat::Oci)),
            Ok(OCI_MANIFEST)
        );
        assert_eq!(
            target_type(OCI_INDEX, &[], Some(ManifestFormat::V2s2)),
            Ok(DOCKER_MANIFEST_LIST)
        );
        assert!(target_type(OCI_INDEX, &[DOCKER_MANIFEST], None).is_err());
        assert!("v2s1".parse::<ManifestFormat>().is_err());
    }

    #[test]
    fn rewrites_manifests_as_go_marshals_them() {
        let oci = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{}","size":3}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":10}}],"annotations":{{"k":"v"}}}}"#,
            "a".repeat(64),
            "b".repeat(64)
        );
        let m = manifest::parse(Bytes::from(oci), None).unwrap();
        let cfg = NewBlob {
            media_type: OCI_CONFIG.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 3,
        };
        let layer = NewBlob {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: format!("sha256:{}", "c".repeat(64)),
            size: 20,
        };
        let docker =
            rewrite_image(&m, DOCKER_MANIFEST, &cfg, std::slice::from_ref(&layer)).unwrap();
        assert_eq!(
            std::str::from_utf8(&docker).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":3,"digest":"sha256:{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":20,"digest":"sha256:{}"}}]}}"#,
                "a".repeat(64),
                "c".repeat(64)
            )
        );
        let again = rewrite_image(&m, OCI_MANIFEST, &cfg, &[layer]).unwrap();
        let s = std::str::from_utf8(&again).unwrap();
        assert!(
            s.contains(r#""annotations":{"k":"v"}"#) && s.contains(r#"v1.tar","digest""#),
            "{s}"
        );
    }
}
