//! The flags that change layers and manifests on the way (`copy`, `sync`), as skopeo takes
//! them, and what they mean for a given source and destination (see [`crate::convert`]).

use clap::Args;

use super::options::go_bool;
use crate::compress::Algorithm;
use crate::convert::{Desired, ManifestFormat, Options};
use crate::copy::Conversion;
use crate::error::{Error, Result};
use crate::transport::Transport;

/// `--dest-compress`, `--dest-decompress`, `--dest-compress-format`, `--dest-compress-level`,
/// `--dest-force-compress-format`, `--dest-oci-accept-uncompressed-layers`, `-f`.
#[derive(Debug, Clone, Args)]
pub(super) struct LayerFlags {
    /// Compress tarball image layers when saving to directory using the 'dir' transport.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_compress: Option<bool>,
    /// Decompress tarball image layers when saving to directory using the 'dir' transport.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_decompress: Option<bool>,
    /// Compress layers with this algorithm (gzip or zstd): uncompressed layers, and layers
    /// compressed otherwise (digests change; ferry otherwise keeps layers as they are).
    #[arg(long, value_name = "FORMAT", value_parser = clap::value_parser!(Algorithm))]
    dest_compress_format: Option<Algorithm>,
    /// Compression level for --dest-compress-format (gzip 0-9, zstd 1-20).
    #[arg(long, value_name = "LEVEL", allow_hyphen_values = true)]
    dest_compress_level: Option<i32>,
    /// Accepted (skopeo's: use --dest-compress-format even for layers it could reuse).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_force_compress_format: Option<bool>,
    /// Allow uncompressed image layers when writing to an OCI image layout (ferry keeps
    /// layers as they are anyway, unless --dest-compress-format asks otherwise).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    dest_oci_accept_uncompressed_layers: Option<bool>,
    /// Manifest type to write: oci or v2s2 (default: the source's; converting changes the
    /// digest, and for v2s2 to oci the config too, as skopeo converts them).
    #[arg(short = 'f', long, value_name = "MANIFEST-TYPE", value_parser = clap::value_parser!(ManifestFormat))]
    format: Option<ManifestFormat>,
}

impl LayerFlags {
    /// What to change between a source and a destination of these transports (`None`:
    /// `docker://`).
    pub(super) fn conversion(
        &self,
        src: Option<Transport>,
        dst: Option<Transport>,
    ) -> Result<Conversion> {
        let compress = self.dest_compress.unwrap_or(false);
        let decompress = self.dest_decompress.unwrap_or(false);
        if compress && decompress {
            return Err(Error::usage(
                "Cannot compress and decompress at the same time",
            ));
        }
        if (compress || decompress) && dst != Some(Transport::Dir) {
            let flag = if compress {
                "--dest-compress"
            } else {
                "--dest-decompress"
            };
            log::warn!("{flag} can only be used if the destination transport is 'dir': ignored");
        }
        if self.dest_force_compress_format == Some(true) && self.dest_compress_format.is_none() {
            return Err(Error::usage(
                "--dest-force-compress-format requires --dest-compress-format",
            ));
        }
        let accept_uncompressed = self.dest_oci_accept_uncompressed_layers.unwrap_or(false)
            && matches!(dst, Some(Transport::Oci | Transport::OciArchive));
        let desired = match dst {
            Some(Transport::Dir) if compress => Desired::Compress,
            Some(Transport::Dir) if decompress => Desired::Decompress,
            Some(Transport::Dir) | Some(Transport::DockerArchive) => Desired::Preserve,
            _ if accept_uncompressed => Desired::Preserve,
            // skopeo compresses the (uncompressed) layers of a docker-archive it pushes.
            _ if src == Some(Transport::DockerArchive) => Desired::Compress,
            _ if self.dest_compress_format.is_some() => Desired::Compress,
            _ => Desired::Preserve,
        };
        Ok(Conversion {
            desired,
            options: Options {
                format: self.dest_compress_format,
                level: self.dest_compress_level,
                manifest_format: self.format,
                source_uncompressed: src == Some(Transport::DockerArchive),
            },
        })
    }
}
