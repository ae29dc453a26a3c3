//! Manifests and image configs as containers/image holds them in Go structs, for the copies
//! where skopeo re-serialises them (a layer's compression changed, `-f oci|v2s2`): decoded
//! from the original bytes (unknown fields dropped, as Go drops them) and written back with
//! Go's `json.Marshal`, so that the result has skopeo's bytes and digest.

use super::{ConvertError, refused};
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::gojson::{self, Obj};
use crate::inspect::govalue::GoTime;
use crate::transport::oci_index::Entry;

/// Go's `manifest.Schema2Descriptor` (Docker): `mediaType`, `size`, `digest`, `urls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Schema2Descriptor {
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

impl Schema2Descriptor {
    pub(crate) fn to_json(&self) -> String {
        Obj::new()
            .str("mediaType", &self.media_type)
            .int("size", self.size)
            .str("digest", &self.digest)
            .strings_omitempty("urls", self.urls.as_deref().unwrap_or(&[]))
            .end()
    }
}

/// Go's `manifest.Schema2`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Schema2 {
    #[serde(default, rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default)]
    pub config: Schema2Descriptor,
    #[serde(default)]
    pub layers: Option<Vec<Schema2Descriptor>>,
}

impl Schema2 {
    pub(crate) fn to_json(&self) -> String {
        let layers = match &self.layers {
            None => "null".to_string(),
            Some(l) => gojson::array(&l.iter().map(Schema2Descriptor::to_json).collect::<Vec<_>>()),
        };
        Obj::new()
            .int("schemaVersion", self.schema_version)
            .str("mediaType", &self.media_type)
            .raw("config", &self.config.to_json())
            .raw("layers", &layers)
            .end()
    }
}

/// Go's `v1.Manifest` (OCI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Oci1 {
    #[serde(default, rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default, rename = "artifactType")]
    pub artifact_type: String,
    #[serde(default)]
    pub config: Entry,
    #[serde(default)]
    pub layers: Option<Vec<Entry>>,
    #[serde(default)]
    pub subject: Option<Entry>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Oci1 {
    pub(crate) fn to_json(&self) -> String {
        let layers = match &self.layers {
            None => "null".to_string(),
            Some(l) => gojson::array(&l.iter().map(Entry::to_json).collect::<Vec<_>>()),
        };
        let mut o = Obj::new()
            .int("schemaVersion", self.schema_version)
            .str_omitempty("mediaType", &self.media_type)
            .str_omitempty("artifactType", &self.artifact_type)
            .raw("config", &self.config.to_json())
            .raw("layers", &layers);
        if let Some(s) = &self.subject {
            o = o.raw("subject", &s.to_json());
        }
        o.map_omitempty(
            "annotations",
            self.annotations.as_ref().unwrap_or(&BTreeMap::new()),
        )
        .end()
    }
}

/// Go's `manifest.Schema2PlatformSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Schema2Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: String,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

/// Go's `manifest.Schema2ManifestDescriptor`: a Docker manifest list entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Schema2ListEntry {
    #[serde(flatten)]
    pub desc: Schema2Descriptor,
    #[serde(default)]
    pub platform: Schema2Platform,
}

/// Go's `manifest.Schema2List`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Schema2List {
    #[serde(default, rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Option<Vec<Schema2ListEntry>>,
}

impl Schema2List {
    pub(crate) fn to_json(&self) -> String {
        let entries = match &self.manifests {
            None => "null".to_string(),
            Some(m) => gojson::array(
                &m.iter()
                    .map(|e| {
                        let p = &e.platform;
                        let platform = Obj::new()
                            .str("architecture", &p.architecture)
                            .str("os", &p.os)
                            .str_omitempty("os.version", &p.os_version)
                            .strings_omitempty(
                                "os.features",
                                p.os_features.as_deref().unwrap_or(&[]),
                            )
                            .str_omitempty("variant", &p.variant)
                            .strings_omitempty("features", p.features.as_deref().unwrap_or(&[]))
                            .end();
                        Obj::new()
                            .str("mediaType", &e.desc.media_type)
                            .int("size", e.desc.size)
                            .str("digest", &e.desc.digest)
                            .strings_omitempty("urls", e.desc.urls.as_deref().unwrap_or(&[]))
                            .raw("platform", &platform)
                            .end()
                    })
                    .collect::<Vec<_>>(),
            ),
        };
        Obj::new()
            .int("schemaVersion", self.schema_version)
            .str("mediaType", &self.media_type)
            .raw("manifests", &entries)
            .end()
    }
}

/// A JSON value kept as Go's `time.Time` (`*time.Time` when optional).
fn time_json(t: &Option<String>) -> Result<Option<String>, ConvertError> {
    match t {
        None => Ok(None),
        Some(s) => Ok(Some(gojson::string(
            &GoTime::parse_rfc3339(s)
                .map_err(|e| refused(e.to_string()))?
                .rfc3339_nano(),
        ))),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ImageConfigFields {
    #[serde(default, rename = "User")]
    user: String,
    #[serde(default, rename = "ExposedPorts")]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, rename = "Env")]
    env: Option<Vec<String>>,
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
    #[serde(default, rename = "Cmd")]
    cmd: Option<Vec<String>>,
    #[serde(default, rename = "Volumes")]
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, rename = "WorkingDir")]
    working_dir: String,
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "StopSignal")]
    stop_signal: String,
    #[serde(default, rename = "ArgsEscaped")]
    args_escaped: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RootFs {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct History {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    empty_layer: bool,
}

/// Go's `v1.Image` (the OCI image config), as far as containers/image keeps a Docker config
/// it converts to OCI.
#[derive(Debug, Clone, Default, Deserialize)]
struct OciImage {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default, rename = "os.version")]
    os_version: String,
    #[serde(default, rename = "os.features")]
    os_features: Option<Vec<String>>,
    #[serde(default)]
    variant: String,
    #[serde(default)]
    config: Option<ImageConfigFields>,
    #[serde(default)]
    rootfs: RootFs,
    #[serde(default)]
    history: Option<Vec<History>>,
}

fn struct_set(m: &Option<BTreeMap<String, serde_json::Value>>) -> BTreeMap<String, String> {
    // `map[string]struct{}`: every value is `{}`.
    m.iter()
        .flatten()
        .map(|(k, _)| (k.clone(), "{}".to_string()))
        .collect()
}

fn raw_map_omitempty(o: Obj, key: &str, m: &BTreeMap<String, String>) -> Obj {
    if m.is_empty() {
        return o;
    }
    let mut inner = Obj::new();
    for (k, v) in m {
        inner = inner.raw(k, v);
    }
    o.raw(key, &inner.end())
}

/// A Docker image config as containers/image converts it for an OCI manifest: decoded into
/// `v1.Image` and marshalled again (`convertToManifestOCI1`).
pub(crate) fn docker_config_to_oci(config: &[u8]) -> Result<Vec<u8>, ConvertError> {
    let img: OciImage =
        serde_json::from_slice(config).map_err(|e| refused(format!("the image config: {e}")))?;
    let mut o = Obj::new();
    if let Some(t) = time_json(&img.created)? {
        o = o.raw("created", &t);
    }
    o = o
        .str_omitempty("author", &img.author)
        .str("architecture", &img.architecture)
        .str("os", &img.os)
        .str_omitempty("os.version", &img.os_version)
        .strings_omitempty("os.features", img.os_features.as_deref().unwrap_or(&[]))
        .str_omitempty("variant", &img.variant);
    let c = img.config.unwrap_or_default();
    let mut co = Obj::new().str_omitempty("User", &c.user);
    co = raw_map_omitempty(co, "ExposedPorts", &struct_set(&c.exposed_ports));
    co = co
        .strings_omitempty("Env", c.env.as_deref().unwrap_or(&[]))
        .strings_omitempty("Entrypoint", c.entrypoint.as_deref().unwrap_or(&[]))
        .strings_omitempty("Cmd", c.cmd.as_deref().unwrap_or(&[]));
    co = raw_map_omitempty(co, "Volumes", &struct_set(&c.volumes));
    co = co
        .str_omitempty("WorkingDir", &c.working_dir)
        .map_omitempty("Labels", c.labels.as_ref().unwrap_or(&BTreeMap::new()))
        .str_omitempty("StopSignal", &c.stop_signal);
    if c.args_escaped {
        co = co.raw("ArgsEscaped", "true");
    }
    o = o.raw("config", &co.end());
    let diff_ids = match &img.rootfs.diff_ids {
        None => "null".to_string(),
        Some(d) => gojson::strings(d),
    };
    o = o.raw(
        "rootfs",
        &Obj::new()
            .str("type", &img.rootfs.kind)
            .raw("diff_ids", &diff_ids)
            .end(),
    );
    if let Some(h) = img.history.as_ref().filter(|h| !h.is_empty()) {
        let mut items = vec![];
        for e in h {
            let mut ho = Obj::new();
            if let Some(t) = time_json(&e.created)? {
                ho = ho.raw("created", &t);
            }
            ho = ho
                .str_omitempty("created_by", &e.created_by)
                .str_omitempty("author", &e.author)
                .str_omitempty("comment", &e.comment);
            if e.empty_layer {
                ho = ho.raw("empty_layer", "true");
            }
            items.push(ho.end());
        }
        o = o.raw("history", &gojson::array(&items));
    }
    Ok(o.end().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_becomes_go_s_oci_config() {
        let docker = br#"{"architecture":"amd64","config":{"Hostname":"h","Env":["A=1"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}},"Labels":{"b":"2","a":"<1>"},"ArgsEscaped":true},"container":"abc","created":"2024-01-02T03:04:05.120000000+00:00","docker_version":"20","history":[{"created":"2024-01-02T03:04:05Z","created_by":"x","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let oci = String::from_utf8(docker_config_to_oci(docker).unwrap()).unwrap();
        assert_eq!(
            oci,
            r#"{"created":"2024-01-02T03:04:05.12Z","architecture":"amd64","os":"linux","config":{"ExposedPorts":{"80/tcp":{}},"Env":["A=1"],"Cmd":["sh"],"Labels":{"a":"\u003c1\u003e","b":"2"},"ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[{"created":"2024-01-02T03:04:05Z","created_by":"x","empty_layer":true}]}"#
        );
    }

    #[test]
    fn manifests_round_trip_as_go_marshals_them() {
        let s2 = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"c","size":1,"digest":"sha256:aa"},"layers":[{"mediaType":"l","size":2,"digest":"sha256:bb","urls":["u"]}]}"#;
        let m: Schema2 = serde_json::from_str(s2).unwrap();
        assert_eq!(m.to_json(), s2);
        let oci = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"c","digest":"sha256:aa","size":1},"layers":[{"mediaType":"l","digest":"sha256:bb","size":2}],"annotations":{"k":"v"}}"#;
        let m: Oci1 = serde_json::from_str(oci).unwrap();
        assert_eq!(m.to_json(), oci);
        let list = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"m","size":3,"digest":"sha256:cc","platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}"#;
        let m: Schema2List = serde_json::from_str(list).unwrap();
        assert_eq!(m.to_json(), list);
    }
}
