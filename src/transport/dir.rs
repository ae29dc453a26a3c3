//! `dir:PATH`: skopeo's directory format, byte for byte: `version` (`Directory Transport
//! Version: 1.1\n`), `manifest.json` (the manifest's bytes), one file per blob named by its
//! hex digest, `<hex>.manifest.json` for each image of an index, and the simple signatures of
//! the image as `signature-1`, `signature-2`… (`<hex>.signature-N` for an index's images).
//!
//! Writing replaces the image as a whole: as skopeo, a directory that is not empty must hold
//! a `version` file of this format ("not a containers image directory" otherwise). ferry
//! builds the new image in a hidden directory next to PATH and swaps the two atomically
//! (`renameat2(RENAME_EXCHANGE)`), so a reader sees the old image or the new one, never a
//! mix; blobs the old image already had are hard-linked, not copied again. When PATH is a
//! mount point (nothing can be renamed over it), the new image is built in a hidden directory
//! inside it and moved into place file by file, `manifest.json` last.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::files::{self, Expect};
use super::oci_layout::location;
use crate::error::{Error, Location, Result};
use crate::image::{
    BlobData, BlobOrigin, BlobRead, BlobStream, Capabilities, Existing, ImageDestination,
    ImageSource, ManifestRole, Reuse,
};
use crate::manifest::{self, Descriptor, MAX_MANIFEST_SIZE, Manifest};
use crate::reference::Digest;
use crate::signing::{Candidate, Signature};

/// The `version` file's content.
pub const VERSION: &str = "Directory Transport Version: 1.1\n";

/// The largest signature file ferry reads.
const MAX_SIGNATURE_SIZE: u64 = 4 * 1024 * 1024;

/// The file name of a signature: `signature-N` for the image, `<hex>.signature-N` for an
/// image of an index (`N` from 1).
fn signature_name(digest: Option<&Digest>, n: usize) -> String {
    match digest {
        None => format!("signature-{n}"),
        Some(d) => format!("{}.signature-{n}", d.hex()),
    }
}

/// The signatures stored for an image in a directory, in order.
fn read_signatures(dir: &Path, digest: Option<&Digest>) -> Result<Vec<Vec<u8>>> {
    let mut out = vec![];
    for n in 1.. {
        let path = dir.join(signature_name(digest, n));
        if !path.exists() {
            break;
        }
        out.push(files::read_limited(&path, MAX_SIGNATURE_SIZE, "signature")?);
    }
    Ok(out)
}

/// A signature file's bytes as the simple signature they hold: raw OpenPGP (as skopeo
/// writes simple signatures), or containers/image's `\0simple-signing\n` form. `None` for
/// other formats (sigstore), which ferry does not copy.
fn simple_signature(blob: Vec<u8>) -> Option<Vec<u8>> {
    const TAGGED: &[u8] = b"\0simple-signing\n";
    if let Some(rest) = blob.strip_prefix(TAGGED) {
        return Some(rest.to_vec());
    }
    (blob.first() != Some(&0)).then_some(blob)
}

/// An image in a `dir:` directory.
pub struct DirSource {
    dir: PathBuf,
    top: Manifest,
}

impl DirSource {
    /// Read the image's `manifest.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let bytes = files::read_limited(&path, MAX_MANIFEST_SIZE as u64, "manifest")?;
        let top = manifest::parse(Bytes::from(bytes), None).map_err(|reason| Error::Invalid {
            what: "manifest.json".into(),
            location: location("dir", dir),
            reason: reason.to_string(),
        })?;
        Ok(DirSource {
            dir: dir.to_path_buf(),
            top,
        })
    }

    fn open_file(&self, name: &str, what: &str) -> Result<(std::fs::File, u64)> {
        let path = self.dir.join(name);
        let f = std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    what: what.to_string(),
                    location: self.location(),
                    detail: Default::default(),
                }
            } else {
                files::io_err("reading", &path, e)
            }
        })?;
        let len = f
            .metadata()
            .map_err(|e| files::io_err("reading", &path, e))?
            .len();
        Ok((f, len))
    }
}

#[async_trait]
impl ImageSource for DirSource {
    fn name(&self) -> String {
        self.location().registry
    }

    fn location(&self) -> Location {
        location("dir", &self.dir)
    }

    async fn manifest(&self) -> Result<Manifest> {
        Ok(self.top.clone())
    }

    async fn manifest_by_digest(&self, digest: &Digest) -> Result<Manifest> {
        if *digest == self.top.digest {
            return Ok(self.top.clone());
        }
        let what = format!("manifest {}", digest.short());
        let path = self.dir.join(format!("{}.manifest.json", digest.hex()));
        if !path.exists() {
            return Err(Error::NotFound {
                what,
                location: self.location(),
                detail: Default::default(),
            });
        }
        let bytes = files::read_limited(&path, MAX_MANIFEST_SIZE as u64, "manifest")?;
        if let Some(actual) = digest.verify(&bytes) {
            return Err(Error::DigestMismatch {
                what,
                location: self.location(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        manifest::parse(Bytes::from(bytes), None).map_err(|reason| Error::Invalid {
            what,
            location: self.location(),
            reason: reason.to_string(),
        })
    }

    async fn blob(&self, desc: &Descriptor, offset: u64) -> Result<BlobRead> {
        use std::io::{Seek as _, SeekFrom};
        let what = format!("blob {}", desc.digest.short());
        let (mut f, len) = self.open_file(desc.digest.hex(), &what)?;
        if len != desc.size {
            return Err(Error::Invalid {
                what,
                location: self.location(),
                reason: format!(
                    "the file {} has {len} bytes, the manifest declares {}",
                    desc.digest.hex(),
                    desc.size
                ),
            });
        }
        let offset = offset.min(len);
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| files::io_err("reading", &self.dir.join(desc.digest.hex()), e))?;
        Ok(BlobRead {
            stream: files::file_stream(f, len - offset),
            offset,
            length: Some(len - offset),
        })
    }

    async fn supports_signatures(&self) -> Result<bool> {
        Ok(true)
    }

    async fn signatures(&self, digest: &Digest) -> Result<Vec<Vec<u8>>> {
        let which = (*digest != self.top.digest).then_some(digest);
        let mut out = vec![];
        for (i, blob) in read_signatures(&self.dir, which)?.into_iter().enumerate() {
            match simple_signature(blob) {
                Some(s) => out.push(s),
                None => log::warn!(
                    "{}: {} is not a simple signature (sigstore?): not copied",
                    self.location(),
                    signature_name(which, i + 1)
                ),
            }
        }
        Ok(out)
    }

    /// Every `signature-N` file, simple or sigstore, for the trust policy.
    async fn policy_signatures(&self, digest: &Digest) -> Result<Vec<Candidate>> {
        let which = (*digest != self.top.digest).then_some(digest);
        read_signatures(&self.dir, which)?
            .into_iter()
            .enumerate()
            .map(|(i, blob)| {
                let name = signature_name(which, i + 1);
                let sig = Signature::from_blob(&blob).map_err(|reason| Error::Invalid {
                    what: name.clone(),
                    location: self.location(),
                    reason: reason.to_string(),
                })?;
                Ok(Candidate::new(name, sig))
            })
            .collect()
    }
}

/// Where the new image is built.
enum Staging {
    /// A hidden directory next to PATH, swapped with it at commit.
    Beside(tempfile::TempDir),
    /// A hidden directory inside PATH (a mount point), moved up file by file at commit.
    Inside(tempfile::TempDir),
}

impl Staging {
    fn path(&self) -> &Path {
        match self {
            Staging::Beside(t) | Staging::Inside(t) => t.path(),
        }
    }
}

#[derive(Default)]
struct Pending {
    top: Option<Manifest>,
    /// Signatures to write, per manifest digest (the top image's are `signature-N`, decided
    /// at commit: a signature may be put before the top manifest is).
    signatures: Vec<(Digest, Vec<u8>)>,
    committed: bool,
}

/// Writing one image into a `dir:` directory.
pub struct DirDestination {
    dir: PathBuf,
    exists: bool,
    staging: Mutex<Option<Staging>>,
    staging_path: PathBuf,
    pending: Mutex<Pending>,
}

impl DirDestination {
    /// Prepare to replace the image at `dir` (refusing a directory that holds something else).
    pub fn new(dir: &Path) -> Result<Self> {
        let refuse = || {
            Error::Refused(format!(
                "{}: not a containers image directory, don't want to overwrite important data",
                dir.display()
            ))
        };
        let (dir, exists) = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                let dir =
                    std::fs::canonicalize(dir).map_err(|e| files::io_err("resolving", dir, e))?;
                let empty = std::fs::read_dir(&dir)
                    .map_err(|e| files::io_err("reading", &dir, e))?
                    .next()
                    .is_none();
                if !empty {
                    match std::fs::read(dir.join("version")) {
                        Ok(v) if v == VERSION.as_bytes() => {}
                        _ => return Err(refuse()),
                    }
                }
                (dir, true)
            }
            Ok(_) => return Err(refuse()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (dir.to_path_buf(), false),
            Err(e) => return Err(files::io_err("reading", dir, e)),
        };
        let parent = files::parent(&dir).to_path_buf();
        let base = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mount_point = exists
            && std::fs::metadata(&parent)
                .map(|p| p.dev() != std::fs::metadata(&dir).map(|m| m.dev()).unwrap_or(0))
                .unwrap_or(false);
        let staging = if mount_point {
            Staging::Inside(
                tempfile::Builder::new()
                    .prefix(files::TEMP_PREFIX)
                    .tempdir_in(&dir)
                    .map_err(|e| files::io_err("creating a directory in", &dir, e))?,
            )
        } else {
            Staging::Beside(
                tempfile::Builder::new()
                    .prefix(&format!(".{base}{}", files::TEMP_PREFIX))
                    .tempdir_in(&parent)
                    .map_err(|e| files::io_err("creating a directory in", &parent, e))?,
            )
        };
        let staging_path = staging.path().to_path_buf();
        files::write_atomic(&staging_path.join("version"), VERSION.as_bytes())?;
        Ok(DirDestination {
            dir,
            exists,
            staging: Mutex::new(Some(staging)),
            staging_path,
            pending: Mutex::new(Pending::default()),
        })
    }

    async fn write(&self, name: String, data: BlobData, expect: Expect) -> Result<()> {
        let dest = self.staging_path.join(name);
        files::put_data(
            data,
            self.staging_path.clone(),
            move |_: &Digest| dest,
            expect,
        )
        .await?;
        Ok(())
    }

    fn expect(&self, d: &Digest, size: u64, hash: bool) -> Expect {
        Expect {
            size: Some(size),
            digest: Some(d.clone()),
            hash,
            what: format!("blob {}", d.short()),
            location: self.location(),
        }
    }

    /// Swap the staged image into place.
    fn swap(dir: &Path, exists: bool, staging: Staging) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let staged = staging.path().to_path_buf();
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| files::io_err("setting the mode of", &staged, e))?;
        files::sync_dir(&staged)?;
        match staging {
            Staging::Beside(t) if !exists => {
                std::fs::rename(&staged, dir).map_err(|e| files::io_err("renaming to", dir, e))?;
                let _ = t.keep();
            }
            Staging::Beside(t) => {
                // `t` now names the old image: dropping it removes it.
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &staged,
                    rustix::fs::CWD,
                    dir,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .map_err(|e| files::io_err("swapping the new image into", dir, e.into()))?;
                drop(t);
            }
            Staging::Inside(t) => {
                for entry in std::fs::read_dir(dir).map_err(|e| files::io_err("reading", dir, e))? {
                    let entry = entry.map_err(|e| files::io_err("reading", dir, e))?;
                    if entry.path() == staged {
                        continue;
                    }
                    let p = entry.path();
                    let r = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    r.map_err(|e| files::io_err("removing", &p, e))?;
                }
                let mut names: Vec<_> = std::fs::read_dir(&staged)
                    .map_err(|e| files::io_err("reading", &staged, e))?
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect();
                // manifest.json last: until it is there, the directory is no image at all.
                names.sort_by_key(|n| n == "manifest.json");
                for n in names {
                    let to = dir.join(&n);
                    std::fs::rename(staged.join(&n), &to)
                        .map_err(|e| files::io_err("renaming to", &to, e))?;
                }
                drop(t);
            }
        }
        files::sync_dir(files::parent(dir))
    }
}

#[async_trait]
impl ImageDestination for DirDestination {
    fn name(&self) -> String {
        self.location().registry
    }

    fn location(&self) -> Location {
        location("dir", &self.dir)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn blob_scope(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    async fn existing(&self) -> Result<Option<Existing>> {
        // As skopeo: a dir: destination is always written anew (its blobs are reused).
        Ok(None)
    }

    async fn supports_signatures(&self) -> Result<bool> {
        Ok(true)
    }

    async fn try_reuse_blob(&self, desc: &Descriptor, _: Option<&BlobOrigin>) -> Result<Reuse> {
        let name = desc.digest.hex();
        let staged = self.staging_path.join(name);
        if std::fs::metadata(&staged).is_ok_and(|m| m.len() == desc.size) {
            return Ok(Reuse::Present);
        }
        // A blob of the image being replaced: link it instead of moving its bytes again.
        let old = self.dir.join(name);
        if self.exists
            && std::fs::metadata(&old).is_ok_and(|m| m.is_file() && m.len() == desc.size)
            && std::fs::hard_link(&old, &staged).is_ok()
        {
            return Ok(Reuse::Present);
        }
        Ok(Reuse::No)
    }

    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()> {
        let expect = self.expect(&desc.digest, desc.size, false);
        self.write(desc.digest.hex().to_string(), data, expect)
            .await
    }

    async fn put_blob_computed(
        &self,
        _media_type: &str,
        stream: BlobStream,
    ) -> Result<Option<(Digest, u64)>> {
        let staging = self.staging_path.clone();
        let expect = Expect {
            size: None,
            digest: None,
            hash: true,
            what: "a converted layer".into(),
            location: self.location(),
        };
        let to = staging.clone();
        files::put_data(
            BlobData::Stream(stream),
            staging,
            move |d: &Digest| to.join(d.hex()),
            expect,
        )
        .await
        .map(Some)
    }

    async fn put_manifest(&self, m: &Manifest, role: ManifestRole) -> Result<()> {
        match role {
            ManifestRole::ByDigest => {
                let expect = self.expect(&m.digest, m.bytes.len() as u64, true);
                self.write(
                    format!("{}.manifest.json", m.digest.hex()),
                    BlobData::Whole(m.bytes.clone()),
                    expect,
                )
                .await
            }
            ManifestRole::Reference => {
                self.pending.lock().expect("pending").top = Some(m.clone());
                Ok(())
            }
        }
    }

    async fn signatures(&self, digest: &Digest) -> Result<Vec<Vec<u8>>> {
        let p = self.pending.lock().expect("pending");
        Ok(p.signatures
            .iter()
            .filter(|(d, _)| d == digest)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn put_signature(&self, digest: &Digest, content: &[u8]) -> Result<()> {
        let mut p = self.pending.lock().expect("pending");
        let top = p.top.as_ref().map(|m| m.digest.clone());
        let which = (top.as_ref() != Some(digest)).then(|| digest.clone());
        p.signatures.push((digest.clone(), content.to_vec()));
        if p.committed {
            // The image is in place already: add the file there, atomically.
            let n = p.signatures.iter().filter(|(d, _)| d == digest).count();
            let path = self.dir.join(signature_name(which.as_ref(), n));
            files::write_atomic(&path, content)?;
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let (top, signatures) = {
            let mut p = self.pending.lock().expect("pending");
            p.committed = true;
            (p.top.clone(), p.signatures.clone())
        };
        let Some(top) = top else {
            return Err(Error::Invalid {
                what: "image".into(),
                location: self.location(),
                reason: "no manifest was written".into(),
            });
        };
        let staging = self
            .staging
            .lock()
            .expect("staging")
            .take()
            .ok_or_else(|| Error::Refused("the image was committed already".into()))?;
        let (dir, exists) = (self.dir.clone(), self.exists);
        files::blocking(move || {
            let staged = staging.path().to_path_buf();
            let mut counts: Vec<(Option<Digest>, usize)> = vec![];
            for (d, content) in &signatures {
                let d = (*d != top.digest).then(|| d.clone());
                let n = match counts.iter_mut().find(|(x, _)| *x == d) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        counts.push((d.clone(), 1));
                        1
                    }
                };
                files::write_atomic(&staged.join(signature_name(d.as_ref(), n)), content)?;
            }
            files::write_atomic(&staged.join("manifest.json"), &top.bytes)?;
            DirDestination::swap(&dir, exists, staging)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_files_are_named_as_skopeo_names_them() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(signature_name(None, 1), "signature-1");
        assert_eq!(
            signature_name(Some(&d), 2),
            format!("{}.signature-2", "ab".repeat(32))
        );
        assert_eq!(simple_signature(vec![0xa3, 1]), Some(vec![0xa3, 1]));
        assert_eq!(
            simple_signature(b"\0simple-signing\nxyz".to_vec()),
            Some(b"xyz".to_vec())
        );
        assert_eq!(simple_signature(b"\0sigstore-json\n{}".to_vec()), None);
    }
}
