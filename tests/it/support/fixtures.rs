//! Synthetic images: real tar layers of random (incompressible) content, gzip or uncompressed,
//! real image configs, Docker v2 schema 2 or OCI media types, single images or multi-arch
//! indexes / manifest lists whose platforms share some layers.
//!
//! Fixtures are built in skopeo's `dir:` layout (`manifest.json`, one file per blob named by its
//! hex digest, `<hex>.manifest.json` per instance of an index, `version`) and seeded into a lab
//! registry with skopeo — an implementation independent of ferry — always with
//! `--preserve-digests` (otherwise skopeo gzips uncompressed layers and digests change).
//! `dir:` is used for both formats because Debian's skopeo 1.9.3 cannot read a Docker v2s2
//! manifest from an `oci:` layout.
//!
//! The bytes themselves (layer tars, gzip, configs, manifests written to the `dir:` layout) are
//! made in `fixtures/build.rs`; this file is the specs and what a fixture holds.
//!
//! ```ignore
//! let img = ImageSpec::docker().uncompressed().layers(&[1000, 50_000]).build();
//! let idx = IndexSpec::oci().platforms(3).shared_layers(&[4096]).own_layers(&[2048]).build();
//! img.seed(&reg, "ns/app:v1");
//! ```

mod build;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Registry, Side, sha256_digest};
use build::*;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The timestamp in every config and history entry (fixtures are deterministic given a seed).
const CREATED: &str = "2024-01-01T00:00:00Z";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Docker v2 schema 2 manifests / manifest lists.
    Docker,
    /// OCI image manifests / indexes.
    Oci,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    /// Plain tar layers.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `"linux/amd64"`, `"linux/arm/v7"`.
    pub fn parse(s: &str) -> Platform {
        let mut parts = s.split('/');
        let os = parts.next().expect("os").to_string();
        let architecture = parts.next().expect("architecture").to_string();
        Platform {
            os,
            architecture,
            variant: parts.next().map(str::to_string),
        }
    }

    /// The first `k` of linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x,
    /// linux/386.
    pub fn common(k: usize) -> Vec<Platform> {
        let all = [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "linux/ppc64le",
            "linux/s390x",
            "linux/386",
        ];
        assert!(k <= all.len(), "at most {} common platforms", all.len());
        all[..k].iter().map(|p| Platform::parse(p)).collect()
    }

    fn json(&self) -> Value {
        let mut v = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One layer as it appears in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    /// Bytes of random payload inside the tar.
    pub payload_size: usize,
}

/// One image (a single-image fixture, or one platform of an index).
#[derive(Clone, Debug)]
pub struct Image {
    pub platform: Platform,
    pub media_type: String,
    /// The exact manifest bytes.
    pub manifest: Vec<u8>,
    /// sha256 of `manifest`.
    pub digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<Layer>,
}

impl Image {
    /// Digests of config and layers (the blobs a copy must transfer).
    pub fn blob_digests(&self) -> Vec<String> {
        std::iter::once(self.config_digest.clone())
            .chain(self.layers.iter().map(|l| l.digest.clone()))
            .collect()
    }
}

/// A built fixture on disk (`dir:` layout) with everything tests compare.
pub struct Fixture {
    pub format: Format,
    pub compression: Compression,
    /// The top-level manifest: the image manifest, or the index / manifest list.
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// sha256 of `manifest`.
    pub digest: String,
    /// The single image, or each platform's image in index order.
    pub images: Vec<Image>,
    /// The random seed the content came from (pass to `.seed(…)` of the spec to rebuild it).
    pub seed: u64,
    is_index: bool,
    dir: tempfile::TempDir,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("format", &self.format)
            .field("compression", &self.compression)
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("is_index", &self.is_index)
            .field("seed", &self.seed)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Fixture {
    pub fn is_index(&self) -> bool {
        self.is_index
    }

    /// The only image of a single-image fixture (panics for an index).
    pub fn image(&self) -> &Image {
        assert!(
            !self.is_index,
            "fixture is an index; use .images or .platform_image()"
        );
        &self.images[0]
    }

    /// The image of `platform` (`"linux/arm64"`) in an index.
    pub fn platform_image(&self, platform: &str) -> &Image {
        let p = Platform::parse(platform);
        self.images
            .iter()
            .find(|i| i.platform == p)
            .unwrap_or_else(|| panic!("no {platform} in fixture"))
    }

    /// Per-platform child manifest digests of an index, in order.
    pub fn child_digests(&self) -> Vec<String> {
        self.images.iter().map(|i| i.digest.clone()).collect()
    }

    /// Every distinct blob (configs and layers) of the fixture: (digest, size).
    pub fn blobs(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = Vec::new();
        for img in &self.images {
            let cfg = (img.config_digest.clone(), img.config.len() as u64);
            for b in
                std::iter::once(cfg).chain(img.layers.iter().map(|l| (l.digest.clone(), l.size)))
            {
                if !v.contains(&b) {
                    v.push(b);
                }
            }
        }
        v
    }

    /// The `dir:` layout directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `dir:/path/to/fixture` (skopeo transport reference).
    pub fn dir_ref(&self) -> String {
        format!("dir:{}", self.dir.path().display())
    }

    /// A blob's bytes from the fixture.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest)).unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.path().join(digest.trim_start_matches("sha256:"))
    }

    /// Push the fixture into `reg` as `name` (`"ns/app:v1"`) with skopeo
    /// (`--preserve-digests`, `--all` for an index, the lab's admin credentials), then check
    /// through the registry API that the tag resolves to [`digest`](Self::digest).
    ///
    /// skopeo's requests show in [`Registry::requests`]; take a [`Registry::mark`] after
    /// seeding to look only at what the test does next.
    pub fn seed(&self, reg: &Registry, name: &str) {
        let (repo, tag) = split_name(name);
        let mut skopeo = super::skopeo();
        skopeo.args(["copy", "--preserve-digests", "--retry-times", "2"]);
        if self.is_index {
            skopeo.arg("--all");
        }
        skopeo
            .args(reg.admin_args(Side::Dest, repo))
            .arg(self.dir_ref())
            .arg(reg.docker_ref(name));
        skopeo.run().assert_success();
        let got = reg
            .get_manifest(repo, tag)
            .unwrap_or_else(|| panic!("seeded {name} into {} but the tag is missing", reg.host()));
        assert_eq!(
            got.digest, self.digest,
            "seeding {name}: the registry holds a different manifest than the fixture"
        );
        for child in &self.images {
            if self.is_index {
                assert!(
                    reg.get_manifest(repo, &child.digest).is_some(),
                    "seeding {name}: child {} ({}) missing",
                    child.digest,
                    child.platform
                );
            }
        }
    }
}

/// `"ns/app:v1"` → (`"ns/app"`, `"v1"`); no tag means `latest`.
pub fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    }
}

/// A single image to build.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub format: Format,
    pub compression: Compression,
    /// Random payload bytes per layer (the tar and gzip framing come on top).
    pub layer_sizes: Vec<usize>,
    pub platform: Platform,
    pub labels: Vec<(String, String)>,
    /// Top-level fields added to the image config (e.g. `docker_version`).
    pub config_fields: Vec<(String, Value)>,
    pub seed: u64,
}

impl ImageSpec {
    /// Defaults: gzip layers of 1 KiB and 16 KiB, linux/amd64, a random seed.
    pub fn new(format: Format) -> ImageSpec {
        ImageSpec {
            format,
            compression: Compression::Gzip,
            layer_sizes: vec![1024, 16 * 1024],
            platform: Platform::parse("linux/amd64"),
            labels: Vec::new(),
            config_fields: Vec::new(),
            seed: fastrand::u64(..),
        }
    }
    pub fn oci() -> ImageSpec {
        ImageSpec::new(Format::Oci)
    }
    pub fn docker() -> ImageSpec {
        ImageSpec::new(Format::Docker)
    }
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    pub fn uncompressed(self) -> Self {
        self.compression(Compression::None)
    }
    pub fn gzip(self) -> Self {
        self.compression(Compression::Gzip)
    }
    pub fn layers(mut self, sizes: &[usize]) -> Self {
        self.layer_sizes = sizes.to_vec();
        self
    }
    pub fn platform(mut self, p: &str) -> Self {
        self.platform = Platform::parse(p);
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_string(), value.to_string()));
        self
    }
    /// A top-level field of the image config (`docker_version`, …).
    pub fn config_field(mut self, key: &str, value: Value) -> Self {
        self.config_fields.push((key.to_string(), value));
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn build(&self) -> Fixture {
        let dir = new_fixture_dir();
        let layers: Vec<LayerSpec> = self
            .layer_sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| LayerSpec {
                size,
                seed: mix(self.seed, 1, i as u64),
            })
            .collect();
        let image = build_image(
            dir.path(),
            self.format,
            self.compression,
            &self.platform,
            &layers,
            ConfigExtras {
                labels: &self.labels,
                fields: &self.config_fields,
            },
            self.seed,
        );
        std::fs::write(dir.path().join("manifest.json"), &image.manifest).expect("manifest.json");
        Fixture {
            format: self.format,
            compression: self.compression,
            manifest: image.manifest.clone(),
            media_type: image.media_type.clone(),
            digest: image.digest.clone(),
            images: vec![image],
            seed: self.seed,
            is_index: false,
            dir,
        }
    }
}

/// A multi-arch index (OCI) / manifest list (Docker) to build.
#[derive(Clone, Debug)]
pub struct IndexSpec {
    pub format: Format,
    pub compression: Compression,
    pub platforms: Vec<Platform>,
    /// Layers every platform has (same bytes, same digest), first in each image.
    pub shared_layers: Vec<usize>,
    /// Layers with content of each platform's own.
    pub own_layers: Vec<usize>,
    pub seed: u64,
}

impl IndexSpec {
    /// Defaults: linux/amd64 + linux/arm64 + linux/arm/v7, one shared 4 KiB layer, one own
    /// 2 KiB layer each, gzip, a random seed.
    pub fn new(format: Format) -> IndexSpec {
        IndexSpec {
            format,
            compression: Compression::Gzip,
            platforms: Platform::common(3),
            shared_layers: vec![4096],
            own_layers: vec![2048],
            seed: fastrand::u64(..),
        }
    }
    pub fn oci() -> IndexSpec {
        IndexSpec::new(Format::Oci)
    }
    pub fn docker() -> IndexSpec {
        IndexSpec::new(Format::Docker)
    }
    /// The first `k` of [`Platform::common`].
    pub fn platforms(mut self, k: usize) -> Self {
        self.platforms = Platform::common(k);
        self
    }
    /// Explicit platforms, e.g. `&["linux/amd64", "linux/s390x"]`.
    pub fn platform_list(mut self, platforms: &[&str]) -> Self {
        self.platforms = platforms.iter().map(|p| Platform::parse(p)).collect();
        self
    }
    pub fn shared_layers(mut self, sizes: &[usize]) -> Self {
        self.shared_layers = sizes.to_vec();
        self
    }
    pub fn own_layers(mut self, sizes: &[usize]) -> Self {
        self.own_layers = sizes.to_vec();
        self
    }
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    pub fn uncompressed(self) -> Self {
        self.compression(Compression::None)
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn build(&self) -> Fixture {
        assert!(
            !self.platforms.is_empty(),
            "an index needs at least one platform"
        );
        let dir = new_fixture_dir();
        let mut images = Vec::new();
        for (p, platform) in self.platforms.iter().enumerate() {
            let shared = self
                .shared_layers
                .iter()
                .enumerate()
                .map(|(i, &size)| LayerSpec {
                    size,
                    seed: mix(self.seed, 2, i as u64),
                });
            let own = self
                .own_layers
                .iter()
                .enumerate()
                .map(|(i, &size)| LayerSpec {
                    size,
                    seed: mix(self.seed, 3 + p as u64, i as u64),
                });
            let layers: Vec<LayerSpec> = shared.chain(own).collect();
            let image = build_image(
                dir.path(),
                self.format,
                self.compression,
                platform,
                &layers,
                ConfigExtras::default(),
                self.seed,
            );
            let name = format!(
                "{}.manifest.json",
                image.digest.trim_start_matches("sha256:")
            );
            std::fs::write(dir.path().join(name), &image.manifest).expect("instance manifest");
            images.push(image);
        }
        let media_type = match self.format {
            Format::Docker => DOCKER_MANIFEST_LIST,
            Format::Oci => OCI_INDEX,
        };
        let manifests: Vec<Value> = images
            .iter()
            .map(|i| {
                json!({
                    "mediaType": i.media_type,
                    "size": i.manifest.len(),
                    "digest": i.digest,
                    "platform": i.platform.json(),
                })
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
        let manifest = serde_json::to_vec_pretty(&index).unwrap();
        std::fs::write(dir.path().join("manifest.json"), &manifest).expect("manifest.json");
        Fixture {
            format: self.format,
            compression: self.compression,
            digest: sha256_digest(&manifest),
            manifest,
            media_type: media_type.to_string(),
            images,
            seed: self.seed,
            is_index: true,
            dir,
        }
    }
}
