//! `delete`: resolve the reference to its manifest digest and delete that manifest.

use clap::Args;

use super::options::{GlobalOptions, Personality, RegistryFlags, RetryArgs};
use crate::error::Result;
use crate::reference::ImageRef;

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub(super) struct DeleteArgs {
    /// Image: docker://[HOST[:PORT]/]PATH[:TAG|@DIGEST].
    #[arg(value_name = "IMAGE-NAME")]
    image: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    retry: RetryArgs,
}

pub(super) async fn run(
    args: DeleteArgs,
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
    // The registry deletes manifests by digest: read the manifest to learn it (and to fail
    // with "not found", exit 2, when there is none).
    let digest = client
        .get_manifest(&image.repository, image.target.as_str())
        .await?
        .digest;
    log::debug!("deleting {image} ({digest})");
    client.delete_manifest(&image.repository, &digest).await
}
