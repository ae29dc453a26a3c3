//! `manifest-digest`: the digest of a manifest file, as skopeo prints it.

use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::reference::Digest;

/// Arguments of `manifest-digest`.
#[derive(Debug, Args)]
pub(super) struct ManifestDigestArgs {
    /// The manifest file.
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
}

/// The digest skopeo computes for manifest bytes: sha256 of the bytes as they are (a signed
/// Docker schema 1 manifest, whose digest excludes its signatures, is refused).
pub(super) fn manifest_digest(bytes: &[u8]) -> Result<Digest> {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(bytes)
        && m.get("schemaVersion").and_then(serde_json::Value::as_i64) == Some(1)
        && m.contains_key("signatures")
    {
        return Err(Error::Unsupported(
            "the digest of a signed Docker schema 1 manifest".into(),
        ));
    }
    Ok(Digest::sha256(bytes))
}

pub(super) fn run(args: ManifestDigestArgs) -> Result<()> {
    let bytes = std::fs::read(&args.manifest)
        .map_err(|e| Error::io("reading manifest from", &args.manifest, e))?;
    println!("{}", manifest_digest(&bytes)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_of_bytes() {
        assert_eq!(
            super::manifest_digest(b"not json").unwrap().to_string(),
            "sha256:7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf"
        );
        assert!(super::manifest_digest(br#"{"schemaVersion":1,"signatures":[]}"#).is_err());
    }
}
