//! `inspect`: skopeo's JSON, `--raw`, `--config`, `--format`.

use std::io::Write as _;

use clap::Args;

use super::options::{GlobalOptions, Personality, RegistryFlags, RetryArgs, go_bool};
use crate::error::{Error, Result};
use std::sync::Arc;

use crate::image::ImageSource;
use crate::image::read::{platform_image, read_whole};
use crate::inspect::govalue::GoValue;
use crate::inspect::{self, template};
use crate::manifest::MAX_MANIFEST_SIZE;
use crate::reference::AnyRef;
use crate::registry::source::RegistrySource;

pub(super) const LONG_ABOUT: &str = "Return low-level information about an image in a registry \
(docker://) or on disk (oci:, oci-archive:, dir:, docker-archive:).

The default output is skopeo's JSON: Name, Digest (of the top-level manifest, so of the index \
for a multi-arch image), RepoTags, Created, DockerVersion, Labels, Architecture, Os, Layers, \
LayersData, Env — the per-image values for the current platform or --override-os/--override-arch.

--format takes the Go-template forms pipelines use: {{.Digest}}, any top-level field, \
{{index .Labels \"key\"}}, {{json .Labels}}, {{range .RepoTags}}…{{end}}, `json`. Other \
template features are refused with an \"unsupported template\" error.

Exit codes: 0 ok, 1 error, 2 the image does not exist.";

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// Image: docker://[HOST[:PORT]/]PATH[:TAG|@DIGEST], oci:PATH[:NAME], oci-archive:FILE,
    /// dir:PATH, docker-archive:FILE[:NAME:TAG].
    #[arg(value_name = "IMAGE-NAME")]
    image: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    retry: RetryArgs,
    /// Output the raw manifest (or, with --config, the raw config) unchanged.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    raw: Option<bool>,
    /// Output the image configuration (in OCI form unless --raw).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    config: Option<bool>,
    /// Format the output with a Go template (see above).
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Do not list the repository's tags (RepoTags is then []).
    #[arg(short = 'n', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    no_tags: Option<bool>,
}

/// Write `bytes` to standard output, flushed (results go to stdout; logs to stderr).
pub(super) fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to", "standard output", e))
}

/// skopeo's `writeOutput`: the indented JSON with a newline, or the template's result.
fn write_output(format: Option<&str>, data: &GoValue) -> Result<()> {
    let text = match format {
        None | Some("") => format!("{}\n", data.to_json_indent()),
        Some(f) if template::is_json_format(f) => format!("{}\n", data.to_json_indent()),
        Some(f) => template::render(f, data).map_err(|e| Error::usage(e.to_string()))?,
    };
    write_stdout(text.as_bytes())
}

pub(super) async fn run(
    args: InspectArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    let raw = args.raw.unwrap_or(false);
    let config = args.config.unwrap_or(false);
    let format = args.format.as_deref().filter(|f| !f.is_empty());
    if raw && format.is_some() {
        return Err(Error::usage("raw output does not support format option"));
    }
    let image = AnyRef::parse(&args.image)?;
    let (source, client): (Arc<dyn ImageSource>, _) = match &image {
        AnyRef::Docker(image) => {
            let client = args.registry.client(
                &image.registry,
                &image.repository,
                &args.retry,
                personality,
                global,
            )?;
            (
                Arc::new(RegistrySource::new(client.clone(), image.clone())),
                Some((client, image)),
            )
        }
        AnyRef::Local(l) => (l.source().await?, None),
    };
    let source = source.as_ref();
    let top = source.manifest().await?;
    if raw && !config {
        return write_stdout(&top.bytes);
    }
    // skopeo's context for an index without the wanted platform.
    let single = platform_image(source, top.clone(), &global.platform())
        .await
        .map_err(|e| match e {
            Error::Platform(m) => Error::Platform(format!("parsing manifest for image: {m}")),
            e => e,
        })?;
    let stall = global.stall_timeout();
    let config_bytes = crate::retry::run(
        &args.retry.policy(personality),
        "reading the config",
        || read_whole(source, &single.config, MAX_MANIFEST_SIZE as u64, stall),
    )
    .await?;
    let invalid = |e: inspect::InspectError| Error::Invalid {
        what: format!("image {}", single.manifest.digest),
        location: source.location(),
        reason: e.to_string(),
    };
    if config {
        if raw {
            return write_stdout(&config_bytes);
        }
        let v = inspect::oci_config(&config_bytes).map_err(invalid)?;
        return write_output(format, &v);
    }
    // As skopeo: tags are listed for docker:// only; Name is the Docker name, when the
    // reference has one (a docker-archive:'s tag), else empty.
    let name = match (&image, &client) {
        (_, Some((_, image))) => image.name(),
        (AnyRef::Local(l), None) => match &l.selector {
            crate::transport::Selector::Tag(t) => t.name(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let repo_tags = match &client {
        _ if args.no_tags.unwrap_or(false) => vec![],
        None => vec![],
        Some((client, image)) => match client.list_tags(&image.repository).await {
            Ok(tags) => tags,
            // As skopeo: a registry may refuse (DENIED) or not implement (404) the tag list.
            Err(e) if tag_list_refused(&e) => {
                log::warn!("Registry disallows tag list retrieval; skipping ({e})");
                vec![]
            }
            Err(e) => return Err(e),
        },
    };
    let ctx = inspect::Context {
        name,
        digest: top.digest.clone(),
        repo_tags,
    };
    let v = inspect::output(&ctx, &single.manifest, &config_bytes).map_err(invalid)?;
    write_output(format, &v)
}

fn tag_list_refused(e: &Error) -> bool {
    match e {
        Error::Registry { detail, .. } => detail.code.as_deref() == Some("DENIED"),
        Error::NotFound { .. } => true,
        _ => false,
    }
}
