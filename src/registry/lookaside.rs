//! Simple signatures kept outside the registry, in lookaside storage (see
//! [`crate::registries_d`]), read and written as skopeo does: `signature-1`, `signature-2`, …
//! under `<base>/<repo>@sha256=<hex>/`, up to the first one missing. `file://` is read and
//! written; `http(s)://` only read (without the registry's credentials), as skopeo, which
//! wants a `lookaside-staging` location to write.
//!
//! A signature blob is an OpenPGP message as it is, or `\0simple-signing\n` and the message
//! (containers/image's newer format); both are simple signatures, handed on without the
//! prefix (as skopeo writes them). A `\0sigstore-json\n` blob is not a simple signature: it is
//! skipped, with a warning naming it.

use std::path::Path;

use bytes::Bytes;
use url::Url;

use super::Client;
use crate::error::{Error, Location, Result};
use crate::http::{network_error_msg, read_limited};
use crate::reference::Digest;
use crate::registries_d::{MAX_LOOKASIDE_SIGNATURES, signature_url};

/// The largest signature read (as skopeo's `MaxSignatureBodySize`).
pub const MAX_SIGNATURE: usize = 4 << 20;
const SIMPLE_PREFIX: &[u8] = b"\x00simple-signing\n";

/// A simple signature's bytes from a lookaside blob; `None` for another format.
pub fn simple_content(blob: &[u8]) -> Option<Vec<u8>> {
    match blob.first() {
        Some(0) => blob.strip_prefix(SIMPLE_PREFIX).map(<[u8]>::to_vec),
        Some(_) => Some(blob.to_vec()),
        None => None,
    }
}

/// One signature blob; `None` when it does not exist (the end of the list).
async fn read_one(client: &Client, url: &Url, loc: &Location) -> Result<Option<Bytes>> {
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| Error::usage(format!("invalid lookaside location {url}")))?;
            match tokio::fs::read(&path).await {
                Ok(b) if b.len() > MAX_SIGNATURE => Err(Error::Invalid {
                    what: format!("signature {}", path.display()),
                    location: loc.clone(),
                    reason: "it is larger than 4 MiB".into(),
                }),
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("reading signature", &path, e)),
            }
        }
        "http" | "https" => {
            let op = format!("reading signature {}", crate::redact::url(url));
            client.count_request();
            let resp = client
                .http()
                .get(url.clone())
                .timeout(std::time::Duration::from_secs(120))
                .send()
                .await
                .map_err(|e| client.network_error(e, &op, loc))?;
            match resp.status().as_u16() {
                404 => Ok(None),
                200 => read_limited(resp, MAX_SIGNATURE, client.stall_timeout())
                    .await
                    .map(Some)
                    .map_err(|e| network_error_msg(e, &op, loc)),
                _ => Err(super::status_error(resp, &op, loc).await),
            }
        }
        other => Err(Error::usage(format!(
            "Unsupported scheme {other:?} when reading signature from {}",
            crate::redact::url(url)
        ))),
    }
}

/// The simple signatures of `digest` under `base`.
pub async fn read(
    client: &Client,
    base: &Url,
    digest: &Digest,
    loc: &Location,
) -> Result<Vec<Vec<u8>>> {
    let mut out = vec![];
    for i in 0..=MAX_LOOKASIDE_SIGNATURES {
        if i == MAX_LOOKASIDE_SIGNATURES {
            return Err(Error::Invalid {
                what: format!("lookaside signatures of {}", digest.short()),
                location: loc.clone(),
                reason: format!("there are {MAX_LOOKASIDE_SIGNATURES} or more"),
            });
        }
        let url = signature_url(base, digest, i);
        let Some(blob) = read_one(client, &url, loc).await? else {
            break;
        };
        match simple_content(&blob) {
            Some(c) => out.push(c),
            None => log::warn!(
                "{} is not a simple signature (another format); it is not copied",
                crate::redact::url(&url)
            ),
        }
    }
    Ok(out)
}

/// Add one simple signature of `digest` under `base` (a `file://` location) as the next
/// `signature-N`, written atomically ([`crate::fsutil`]) so that no reader sees half of it.
pub async fn add(base: &Url, digest: &Digest, content: &[u8], loc: &Location) -> Result<()> {
    if base.scheme() != "file" {
        return Err(Error::usage(format!(
            "Writing directly to a {} lookaside {} is not supported. Configure a lookaside-staging: location (at {loc})",
            base.scheme(),
            crate::redact::url(base)
        )));
    }
    for i in 0..MAX_LOOKASIDE_SIGNATURES {
        let url = signature_url(base, digest, i);
        let path = url
            .to_file_path()
            .map_err(|()| Error::usage(format!("invalid lookaside location {url}")))?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        return write_new(&path, content).await;
    }
    Err(Error::Invalid {
        what: format!("lookaside signatures of {}", digest.short()),
        location: loc.clone(),
        reason: format!("there are {MAX_LOOKASIDE_SIGNATURES} or more"),
    })
}

async fn write_new(path: &Path, content: &[u8]) -> Result<()> {
    let dir = crate::fsutil::parent_dir(path);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::io("creating lookaside directory", &dir, e))?;
    // 0644 as skopeo writes signatures; atomically, never through a planted link.
    let (path, content) = (path.to_path_buf(), content.to_vec());
    tokio::task::spawn_blocking(move || {
        crate::fsutil::write_atomic(
            &path,
            &content,
            crate::fsutil::Access::Public,
            "writing signature",
        )
    })
    .await
    .map_err(|e| Error::usage(format!("writing a signature: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(simple_content(b"\xa3abc"), Some(b"\xa3abc".to_vec()));
        assert_eq!(
            simple_content(b"\x00simple-signing\n\xa3x"),
            Some(b"\xa3x".to_vec())
        );
        assert_eq!(simple_content(b"\x00sigstore-json\n{}"), None);
        assert_eq!(simple_content(b""), None);
    }
}
