//! `ferry tree IMAGE`: the manifest tree of an image with what is attached to each manifest
//! (OCI 1.1 referrers and cosign attachment tags, recursively), as text or JSON — what a copy
//! as `ferry` carries.

use std::collections::HashMap;

use clap::Args;
use serde_json::{Value, json};

use super::options::{GlobalOptions, Personality, RegistryFlags, RetryArgs, go_bool};
use crate::copy::AttachmentOptions;
use crate::copy::referrers::{Attached, Via, discover};
use crate::error::{Error, Result};
use crate::image::ImageSource as _;
use crate::image::read::child;
use crate::manifest::{Kind, MAX_INDEX_DEPTH, Manifest, Platform};
use crate::progress::human_bytes;
use crate::reference::{Digest, ImageRef};
use crate::registry::source::RegistrySource;

pub(super) const LONG_ABOUT: &str = "Show an image's manifest tree with what is attached to it.

For the image, each image of an index, and each attachment in turn (at most 4 levels): its OCI \
1.1 referrers (the registry's referrers API, else the fallback tag sha256-<hex>) and its cosign \
attachment tags (sha256-<hex>.sig, .att, .sbom), each with its artifact type, digest and size. \
This is what `ferry copy`, `sync` and `promote` carry to the destination before the tag moves. \
--json prints the same tree as JSON.";

/// Arguments of `tree`.
#[derive(Debug, Args)]
pub(super) struct TreeArgs {
    /// The image: docker://[HOST[:PORT]/]PATH[:TAG|@DIGEST].
    #[arg(value_name = "IMAGE-NAME")]
    image: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    retry: RetryArgs,
    /// Print JSON instead of text.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    json: Option<bool>,
    /// Only referrers and attachments of this artifact type (repeatable).
    #[arg(long = "referrers-artifact-type", value_name = "TYPE")]
    artifact_types: Vec<String>,
}

pub(super) async fn run(
    args: TreeArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    let image = ImageRef::parse_transport(&args.image)?;
    let client = args.registry.client(
        &image.registry,
        &image.repository,
        &args.retry,
        personality,
        global,
    )?;
    let source = RegistrySource::new(client, image.clone());
    let top = source.manifest().await?;
    // Every manifest of the tree, with its platform where an index names one.
    let mut manifests: Vec<(Manifest, Option<Platform>, usize)> = vec![(top.clone(), None, 0)];
    let mut i = 0;
    while i < manifests.len() {
        let (m, _, depth) = manifests[i].clone();
        if let Kind::Index { manifests: entries } = &m.kind {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::Invalid {
                    what: format!("manifest {}", m.digest),
                    location: source.location(),
                    reason: format!("indexes nest more than {MAX_INDEX_DEPTH} levels deep"),
                });
            }
            for d in entries {
                manifests.push((child(&source, d).await?, d.platform.clone(), depth + 1));
            }
        }
        i += 1;
    }
    let subjects: Vec<Digest> = manifests.iter().map(|(m, _, _)| m.digest.clone()).collect();
    let found = discover(
        &source,
        &subjects,
        &AttachmentOptions::all(args.artifact_types.clone()),
    )
    .await?;
    let mut by_subject: HashMap<Digest, Vec<&Attached>> = HashMap::new();
    for a in &found.attached {
        by_subject.entry(a.subject.clone()).or_default().push(a);
    }
    let platforms: HashMap<Digest, Platform> = manifests
        .iter()
        .filter_map(|(m, p, _)| p.clone().map(|p| (m.digest.clone(), p)))
        .collect();
    let all: HashMap<Digest, Manifest> = manifests
        .into_iter()
        .map(|(m, _, _)| (m.digest.clone(), m))
        .collect();
    let tree = node(&top, &all, &platforms, &by_subject, None);
    let text = if args.json.unwrap_or(false) {
        let mut v = json!({"reference": image.to_string()});
        if let (Value::Object(o), Value::Object(t)) = (&mut v, tree) {
            o.extend(t);
        }
        format!("{}\n", serde_json::to_string_pretty(&v).expect("JSON"))
    } else {
        let mut out = format!("{image}\n");
        render(&tree, "", true, true, &mut out);
        out
    };
    super::inspect::write_stdout(text.as_bytes())
}

/// One manifest as JSON: itself, its children, what is attached to it.
fn node(
    m: &Manifest,
    all: &HashMap<Digest, Manifest>,
    platforms: &HashMap<Digest, Platform>,
    attached: &HashMap<Digest, Vec<&Attached>>,
    how: Option<&Attached>,
) -> Value {
    let mut v = json!({
        "digest": m.digest.to_string(),
        "mediaType": m.media_type,
        "size": m.bytes.len(),
    });
    if let Some(p) = platforms.get(&m.digest) {
        v["platform"] = json!(p.to_string());
    }
    if let Some(a) = how {
        v["via"] = json!(match &a.via {
            Via::Referrer => "referrer",
            Via::Tag(_) => "tag",
        });
        if let Via::Tag(t) = &a.via {
            v["tag"] = json!(t);
        }
        if let Some(t) = &a.artifact_type {
            v["artifactType"] = json!(t);
        }
    }
    if how.is_none()
        && let Kind::Index { manifests } = &m.kind
    {
        let children: Vec<Value> = manifests
            .iter()
            .filter_map(|d| all.get(&d.digest))
            .map(|c| node(c, all, platforms, attached, None))
            .collect();
        v["manifests"] = json!(children);
    }
    let refs: Vec<Value> = attached
        .get(&m.digest)
        .map(|l| {
            l.iter()
                .map(|a| node(&a.manifest, all, platforms, attached, Some(a)))
                .collect()
        })
        .unwrap_or_default();
    if !refs.is_empty() {
        v["attached"] = json!(refs);
    }
    v
}

/// The text form: one line per manifest, box-drawing branches.
fn render(v: &Value, prefix: &str, last: bool, root: bool, out: &mut String) {
    let size = human_bytes(v["size"].as_u64().unwrap_or(0));
    let digest = v["digest"].as_str().unwrap_or("");
    let line = match v["via"].as_str() {
        Some("tag") => format!(
            "tag {} {digest} {} {size}",
            v["tag"].as_str().unwrap_or(""),
            v["artifactType"].as_str().unwrap_or("-")
        ),
        Some(_) => format!(
            "referrer {digest} {} {size}",
            v["artifactType"].as_str().unwrap_or("-")
        ),
        None => {
            let platform = v["platform"]
                .as_str()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            format!(
                "{digest}{platform} {} {size}",
                v["mediaType"].as_str().unwrap_or("")
            )
        }
    };
    let (branch, next) = match (root, last) {
        (true, _) => ("", String::new()),
        (false, true) => ("└── ", format!("{prefix}    ")),
        (false, false) => ("├── ", format!("{prefix}│   ")),
    };
    out.push_str(&format!("{prefix}{branch}{line}\n"));
    let kids: Vec<&Value> = ["manifests", "attached"]
        .iter()
        .filter_map(|k| v[*k].as_array())
        .flatten()
        .collect();
    for (i, k) in kids.iter().enumerate() {
        render(k, &next, i + 1 == kids.len(), false, out);
    }
}
