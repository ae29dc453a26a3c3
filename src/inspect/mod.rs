//! `skopeo inspect`'s output, computed from a manifest and its config as containers/image
//! does, and printed as skopeo prints it.
//!
//! - [`output`]: the default JSON (`Name`, `Tag`, `Digest`, `RepoTags`, `Created`,
//!   `DockerVersion`, `Labels`, `Architecture`, `Os`, `Layers`, `LayersData`, `Env`), field
//!   for field as current skopeo's `inspect.Output`. `Tag` is `omitempty` and containers/image
//!   fills it only for Docker schema 1 images, which ferry does not read: it is never printed
//!   (as by skopeo for schema 2 and OCI images).
//! - [`oci_config`]: `--config`: the config as the OCI `v1.Image` Go struct re-marshals it
//!   (unknown fields dropped, field order of the struct).
//! - [`govalue`]: Go's JSON and `fmt` rendering; [`template`]: the `--format` subset.
//!
//! Config blobs are read as Go's `encoding/json` reads them into those structs: keys match
//! case-insensitively when no exact key exists, `null` leaves the zero value, and a value of
//! the wrong type is an error.

pub mod govalue;
pub mod template;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::manifest::{DOCKER_MANIFEST, Manifest, OCI_MANIFEST};
use crate::reference::Digest;
use govalue::{Field, GoTime, GoValue, TimeError};

/// Why a manifest or config cannot be shown as `inspect` shows it (Go's and containers/image's
/// words, as skopeo prints them).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The config or manifest is not JSON.
    #[error("the {what} is not valid JSON: {source}")]
    Json {
        /// `config` or `manifest`.
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The config or manifest is JSON but not an object.
    #[error("the {0} is not a JSON object")]
    NotObject(&'static str),
    /// A value of the wrong JSON type for the Go struct field it is read into.
    #[error("json: cannot unmarshal {kind} into Go struct field .{key} of type {go_type}")]
    Type {
        /// The JSON type found (`number`, `object`, …).
        kind: &'static str,
        /// The key.
        key: String,
        /// The Go type of the field.
        go_type: &'static str,
    },
    /// A time field that is not RFC 3339.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A layer descriptor of the wrong shape; the text says what.
    #[error("{0}")]
    Layer(&'static str),
    /// An OCI manifest whose config is not an image config: an artifact.
    #[error("unsupported image-specific operation on artifact with type {0:?}")]
    Artifact(String),
    /// A manifest that is neither a Docker schema 2 nor an OCI image manifest.
    #[error("cannot inspect a manifest of type {0:?}")]
    ManifestType(String),
}

/// The OCI image config media type; an OCI manifest with another config type is an artifact.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What `inspect` shows besides the manifest and config.
#[derive(Debug, Clone)]
pub struct Context {
    /// `registry/repository` (skopeo's `Name`).
    pub name: String,
    /// Digest of the top-level manifest (of the index for a multi-arch image).
    pub digest: Digest,
    /// Tags of the repository (`[]` with `--no-tags`).
    pub repo_tags: Vec<String>,
}

/// The default `inspect` output for `image` (a single-image manifest) and its config bytes.
pub fn output(ctx: &Context, image: &Manifest, config: &[u8]) -> Result<GoValue, InspectError> {
    let cfg = parse_object(config, "config")?;
    let info = match image.media_type.as_str() {
        OCI_MANIFEST => {
            let config_type = descriptor_media_type(image, "config")?;
            if config_type != OCI_CONFIG {
                return Err(InspectError::Artifact(config_type));
            }
            let c = obj_field(&cfg, "config")?;
            Info {
                created: time_field(&cfg, "created")?.map_or(GoValue::Nil, GoValue::Time),
                docker_version: str_field(&cfg, "docker_version")?,
                labels: c.map(|c| str_map_field(c, "Labels")).transpose()?.flatten(),
                env: c.map(|c| str_list_field(c, "Env")).transpose()?.flatten(),
                architecture: str_field(&cfg, "architecture")?,
                os: str_field(&cfg, "os")?,
            }
        }
        DOCKER_MANIFEST => {
            let c = obj_field(&cfg, "config")?;
            Info {
                // Schema2Image.Created is a time.Time, not a pointer: absent means year 1.
                created: GoValue::Time(time_field(&cfg, "created")?.unwrap_or(GoTime::ZERO)),
                docker_version: str_field(&cfg, "docker_version")?,
                labels: c.map(|c| str_map_field(c, "Labels")).transpose()?.flatten(),
                env: c.map(|c| str_list_field(c, "Env")).transpose()?.flatten(),
                architecture: str_field(&cfg, "architecture")?,
                os: str_field(&cfg, "os")?,
            }
        }
        other => return Err(InspectError::ManifestType(other.to_string())),
    };
    let layers = layer_descriptors(image)?;
    Ok(GoValue::Struct(vec![
        Field::omitempty("Name", "Name", GoValue::Str(ctx.name.clone())),
        Field::omitempty("Tag", "Tag", GoValue::Str(String::new())),
        Field::new("Digest", "Digest", GoValue::Str(ctx.digest.to_string())),
        Field::new(
            "RepoTags",
            "RepoTags",
            GoValue::strings(Some(ctx.repo_tags.clone())),
        ),
        Field::new("Created", "Created", info.created),
        Field::new(
            "DockerVersion",
            "DockerVersion",
            GoValue::Str(info.docker_version),
        ),
        Field::new("Labels", "Labels", GoValue::string_map(info.labels)),
        Field::new(
            "Architecture",
            "Architecture",
            GoValue::Str(info.architecture),
        ),
        Field::new("Os", "Os", GoValue::Str(info.os)),
        Field::new(
            "Layers",
            "Layers",
            GoValue::strings(Some(layers.iter().map(|l| l.digest.clone()).collect())),
        ),
        Field::new(
            "LayersData",
            "LayersData",
            GoValue::List(Some(
                layers
                    .into_iter()
                    .map(|l| {
                        GoValue::Struct(vec![
                            Field::new("MIMEType", "MIMEType", GoValue::Str(l.media_type)),
                            Field::new("Digest", "Digest", GoValue::Str(l.digest)),
                            Field::new("Size", "Size", GoValue::Int(l.size)),
                            Field::new(
                                "Annotations",
                                "Annotations",
                                GoValue::string_map(l.annotations),
                            ),
                        ])
                    })
                    .collect(),
            )),
        ),
        Field::new("Env", "Env", GoValue::strings(info.env)),
    ]))
}

struct Info {
    created: GoValue,
    docker_version: String,
    labels: Option<BTreeMap<String, String>>,
    env: Option<Vec<String>>,
    architecture: String,
    os: String,
}

struct Layer {
    media_type: String,
    digest: String,
    size: i64,
    annotations: Option<BTreeMap<String, String>>,
}

/// The config as `--config` prints it: the OCI `v1.Image` struct (image-spec 1.1).
pub fn oci_config(config: &[u8]) -> Result<GoValue, InspectError> {
    let cfg = parse_object(config, "config")?;
    let c = obj_field(&cfg, "config")?;
    let empty = Map::new();
    let c = c.unwrap_or(&empty);
    let rootfs = obj_field(&cfg, "rootfs")?.unwrap_or(&empty);
    let set = |v: Option<Vec<String>>| {
        GoValue::Map(v.map(|keys| {
            keys.into_iter()
                .map(|k| (k, GoValue::Struct(vec![])))
                .collect()
        }))
    };
    let history = match get(&cfg, "history") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|h| match h {
                    Value::Object(h) => Ok(GoValue::Struct(vec![
                        Field::omitempty(
                            "Created",
                            "created",
                            time_field(h, "created")?.map_or(GoValue::Nil, GoValue::Time),
                        ),
                        Field::omitempty(
                            "CreatedBy",
                            "created_by",
                            GoValue::Str(str_field(h, "created_by")?),
                        ),
                        Field::omitempty("Author", "author", GoValue::Str(str_field(h, "author")?)),
                        Field::omitempty(
                            "Comment",
                            "comment",
                            GoValue::Str(str_field(h, "comment")?),
                        ),
                        Field::omitempty(
                            "EmptyLayer",
                            "empty_layer",
                            GoValue::Bool(bool_field(h, "empty_layer")?),
                        ),
                    ])),
                    Value::Null => Ok(GoValue::Struct(vec![])),
                    other => Err(type_error("history", other, "v1.History")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(type_error("history", other, "[]v1.History")),
    };
    Ok(GoValue::Struct(vec![
        Field::omitempty(
            "Created",
            "created",
            time_field(&cfg, "created")?.map_or(GoValue::Nil, GoValue::Time),
        ),
        Field::omitempty("Author", "author", GoValue::Str(str_field(&cfg, "author")?)),
        Field::new(
            "Architecture",
            "architecture",
            GoValue::Str(str_field(&cfg, "architecture")?),
        ),
        Field::new("OS", "os", GoValue::Str(str_field(&cfg, "os")?)),
        Field::omitempty(
            "OSVersion",
            "os.version",
            GoValue::Str(str_field(&cfg, "os.version")?),
        ),
        Field::omitempty(
            "OSFeatures",
            "os.features",
            GoValue::strings(str_list_field(&cfg, "os.features")?),
        ),
        Field::omitempty(
            "Variant",
            "variant",
            GoValue::Str(str_field(&cfg, "variant")?),
        ),
        Field::new(
            "Config",
            "config",
            GoValue::Struct(vec![
                Field::omitempty("User", "User", GoValue::Str(str_field(c, "User")?)),
                Field::omitempty(
                    "ExposedPorts",
                    "ExposedPorts",
                    set(set_field(c, "ExposedPorts")?),
                ),
                Field::omitempty("Env", "Env", GoValue::strings(str_list_field(c, "Env")?)),
                Field::omitempty(
                    "Entrypoint",
                    "Entrypoint",
                    GoValue::strings(str_list_field(c, "Entrypoint")?),
                ),
                Field::omitempty("Cmd", "Cmd", GoValue::strings(str_list_field(c, "Cmd")?)),
                Field::omitempty("Volumes", "Volumes", set(set_field(c, "Volumes")?)),
                Field::omitempty(
                    "WorkingDir",
                    "WorkingDir",
                    GoValue::Str(str_field(c, "WorkingDir")?),
                ),
                Field::omitempty(
                    "Labels",
                    "Labels",
                    GoValue::string_map(str_map_field(c, "Labels")?),
                ),
                Field::omitempty(
                    "StopSignal",
                    "StopSignal",
                    GoValue::Str(str_field(c, "StopSignal")?),
                ),
                Field::omitempty(
                    "ArgsEscaped",
                    "ArgsEscaped",
                    GoValue::Bool(bool_field(c, "ArgsEscaped")?),
                ),
            ]),
        ),
        Field::new(
            "RootFS",
            "rootfs",
            GoValue::Struct(vec![
                Field::new("Type", "type", GoValue::Str(str_field(rootfs, "type")?)),
                Field::new(
                    "DiffIDs",
                    "diff_ids",
                    GoValue::strings(str_list_field(rootfs, "diff_ids")?),
                ),
            ]),
        ),
        Field::omitempty("History", "history", GoValue::List(history)),
    ]))
}

fn parse_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, InspectError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(InspectError::NotObject(what)),
        Err(source) => Err(InspectError::Json { what, source }),
    }
}

fn descriptor_media_type(image: &Manifest, field: &str) -> Result<String, InspectError> {
    let doc = parse_object(&image.bytes, "manifest")?;
    Ok(doc
        .get(field)
        .and_then(|d| d.get("mediaType"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

fn layer_descriptors(image: &Manifest) -> Result<Vec<Layer>, InspectError> {
    let doc = parse_object(&image.bytes, "manifest")?;
    let Some(Value::Array(layers)) = doc.get("layers") else {
        return Ok(vec![]);
    };
    layers
        .iter()
        .map(|l| {
            let l = l
                .as_object()
                .ok_or(InspectError::Layer("a layer descriptor is not an object"))?;
            Ok(Layer {
                media_type: str_field(l, "mediaType")?,
                digest: str_field(l, "digest")?,
                size: match get(l, "size") {
                    Some(Value::Number(n)) => n
                        .as_i64()
                        .ok_or(InspectError::Layer("a layer size is not an integer"))?,
                    _ => 0,
                },
                annotations: str_map_field(l, "annotations")?,
            })
        })
        .collect()
}

/// A key as `encoding/json` finds it: the exact key, else one that matches ignoring case.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(key: &str, v: &Value, go_type: &'static str) -> InspectError {
    InspectError::Type {
        kind: kind(v),
        key: key.to_string(),
        go_type,
    }
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Result<String, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(key, other, "string")),
    }
}

fn bool_field(obj: &Map<String, Value>, key: &str) -> Result<bool, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error(key, other, "bool")),
    }
}

fn obj_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(type_error(key, other, "struct")),
    }
}

fn time_field(obj: &Map<String, Value>, key: &str) -> Result<Option<GoTime>, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(GoTime::parse_rfc3339(s)?)),
        Some(other) => Err(type_error(key, other, "time.Time")),
    }
}

fn str_list_field(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => Ok(String::new()),
                Value::String(s) => Ok(s.clone()),
                other => Err(type_error(key, other, "string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(type_error(key, other, "[]string")),
    }
}

fn str_map_field(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<BTreeMap<String, String>>, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k.clone(), String::new())),
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(type_error(key, other, "string")),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Some),
        Some(other) => Err(type_error(key, other, "map[string]string")),
    }
}

/// A `map[string]struct{}`: its keys.
fn set_field(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, InspectError> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Null | Value::Object(_) => Ok(k.clone()),
                other => Err(type_error(key, other, "struct {}")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(type_error(key, other, "map[string]struct {}")),
    }
}

#[cfg(test)]
mod tests;
