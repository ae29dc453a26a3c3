//! skopeo's on-disk transports, as [`ImageSource`]s and [`ImageDestination`]s of the copy
//! engine: `oci:` ([`oci_layout`]), `oci-archive:` ([`oci_archive`]), `dir:` ([`dir`]) and
//! `docker-archive:` ([`docker_archive`]).
//!
//! References are written as skopeo writes them:
//!
//! | reference | means |
//! |---|---|
//! | `oci:PATH[:NAME]` | the image named NAME (`org.opencontainers.image.ref.name`) in the layout at PATH; without NAME, the only image (reading) or an unnamed entry (writing) |
//! | `oci:PATH:@N` | reading: the Nth entry of `index.json` (from 0) |
//! | `oci-archive:FILE[:NAME\|:@N]` | the same, in a tar of a layout |
//! | `dir:PATH` | skopeo's directory format (one image; colons belong to the path) |
//! | `docker-archive:FILE[:NAME:TAG\|:@N]` | a `docker save` archive: the image tagged NAME:TAG, the Nth, or the only one; writing, the tag recorded |
//!
//! As skopeo, the directory a path is in must exist. Files in a layout or an archive are
//! never trusted: every manifest and blob is checked against its digest, names are looked up,
//! never joined to a path on disk, and archives are read in place, never extracted.

pub mod dir;
pub mod docker_archive;
pub mod docker_archive_write;
pub(crate) mod files;
pub mod oci_archive;
pub(crate) mod oci_index;
pub mod oci_layout;
#[cfg(test)]
pub(crate) mod roundtrip;
pub(crate) mod tar;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image::{ImageDestination, ImageSource};
use crate::reference::ImageRef;

/// An on-disk transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `oci:`
    Oci,
    /// `oci-archive:`
    OciArchive,
    /// `dir:`
    Dir,
    /// `docker-archive:`
    DockerArchive,
}

impl Transport {
    /// The prefix without its colon.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
            Transport::Dir => "dir",
            Transport::DockerArchive => "docker-archive",
        }
    }
}

/// What a reference names inside a layout or an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Nothing: the only image (reading), an unnamed entry (writing `oci:`), no tag
    /// (writing `docker-archive:`).
    None,
    /// An image name in a layout (`oci:PATH:NAME`).
    Name(String),
    /// A tagged name in a `docker-archive:` (normalised: `docker.io/library/app:latest`).
    Tag(ImageRef),
    /// The Nth image (`:@N`), for reading.
    Position(usize),
}

/// A parsed on-disk reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRef {
    /// Which transport.
    pub transport: Transport,
    /// The path as written.
    pub path: PathBuf,
    /// What inside it.
    pub selector: Selector,
}

impl std::fmt::Display for LocalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport.name(), self.path.display())?;
        match &self.selector {
            Selector::None => Ok(()),
            Selector::Name(n) => write!(f, ":{n}"),
            Selector::Tag(r) => write!(f, ":{r}"),
            Selector::Position(i) => write!(f, ":@{i}"),
        }
    }
}

/// Transports skopeo has that ferry refuses, with what to use instead.
const REFUSED: &[(&str, &str)] = &[
    (
        "docker-daemon",
        "ferry talks to no Docker daemon: use `docker save` with docker-archive:FILE, or docker:// through a registry",
    ),
    (
        "containers-storage",
        "ferry does not write to podman/buildah storage: use oci:PATH, oci-archive:FILE or dir:PATH, or docker:// through a registry",
    ),
    (
        "sif",
        "use oci:, oci-archive:, dir: or docker-archive: instead",
    ),
    ("tarball", "use oci-archive: or docker-archive: instead"),
];

impl LocalRef {
    /// Parse `transport:rest` if `transport` is an on-disk one (`Ok(None)` otherwise);
    /// refuse skopeo's transports ferry does not have with a message naming alternatives.
    pub fn parse(input: &str) -> Result<Option<LocalRef>> {
        let Some((transport, rest)) = input.split_once(':') else {
            return Ok(None);
        };
        if let Some((_, instead)) = REFUSED.iter().find(|(t, _)| *t == transport) {
            return Err(Error::Unsupported(format!(
                "the {transport}: transport ({instead})"
            )));
        }
        let err = |reason: String| Error::Reference {
            input: input.to_string(),
            reason,
        };
        let transport = match transport {
            "oci" => Transport::Oci,
            "oci-archive" => Transport::OciArchive,
            "dir" => Transport::Dir,
            "docker-archive" => Transport::DockerArchive,
            _ => return Ok(None),
        };
        let (path, selector) = match transport {
            Transport::Dir => (rest, Selector::None),
            _ => {
                let (path, sel) = match rest.split_once(':') {
                    Some((p, s)) => (p, Some(s)),
                    None => (rest, None),
                };
                let selector = match sel {
                    None | Some("") => Selector::None,
                    Some(s) if s.starts_with('@') => {
                        let n = s[1..].parse::<usize>().map_err(|_| {
                            err(format!(
                                "invalid source index {s} (expected @ and a number from 0)"
                            ))
                        })?;
                        Selector::Position(n)
                    }
                    Some(s) if transport == Transport::DockerArchive => {
                        let r = ImageRef::parse(s).map_err(|e| match e {
                            Error::Reference { reason, .. } => err(reason),
                            other => other,
                        })?;
                        if r.digest().is_some() {
                            return Err(err(
                                "docker-archive doesn't support digest references".into()
                            ));
                        }
                        Selector::Tag(r)
                    }
                    Some(s) => {
                        if !oci_index::valid_image_name(s) {
                            return Err(err(format!("invalid image name {s:?}")));
                        }
                        Selector::Name(s.to_string())
                    }
                };
                (path, selector)
            }
        };
        if path.is_empty() {
            return Err(err("a path is required".into()));
        }
        let path = PathBuf::from(path);
        check_parent(&path).map_err(err)?;
        Ok(Some(LocalRef {
            transport,
            path,
            selector,
        }))
    }

    /// Whether the reference may be a destination (`@N` only reads).
    pub fn check_destination(&self) -> Result<()> {
        if let Selector::Position(n) = self.selector {
            return Err(Error::usage(format!(
                "{self}: a destination reference must not contain a manifest index @{n}"
            )));
        }
        Ok(())
    }

    fn name(&self) -> Option<&str> {
        match &self.selector {
            Selector::Name(n) => Some(n),
            _ => None,
        }
    }

    fn position(&self) -> Option<usize> {
        match self.selector {
            Selector::Position(n) => Some(n),
            _ => None,
        }
    }

    /// Open it for reading.
    pub async fn source(&self) -> Result<Arc<dyn ImageSource>> {
        Ok(match self.transport {
            Transport::Oci => {
                let store = oci_layout::DirStore {
                    dir: self.path.clone(),
                    transport: "oci",
                };
                Arc::new(oci_layout::OciSource::open(
                    store,
                    self.name(),
                    self.position(),
                )?)
            }
            Transport::OciArchive => {
                let store = oci_archive::TarStore::open(&self.path).await?;
                Arc::new(oci_layout::OciSource::open(
                    store,
                    self.name(),
                    self.position(),
                )?)
            }
            Transport::Dir => Arc::new(dir::DirSource::open(&self.path)?),
            Transport::DockerArchive => {
                let tag = match &self.selector {
                    Selector::Tag(r) => Some(r.clone()),
                    _ => None,
                };
                Arc::new(
                    docker_archive::DockerArchiveSource::open(&self.path, tag, self.position())
                        .await?,
                )
            }
        })
    }

    /// Open it for writing; `additional_tags` are `--additional-tag`s (docker-archive only).
    pub async fn destination(
        &self,
        additional_tags: &[ImageRef],
    ) -> Result<Arc<dyn ImageDestination>> {
        self.check_destination()?;
        if !additional_tags.is_empty() && self.transport != Transport::DockerArchive {
            return Err(Error::usage(
                "--additional-tag is only for docker-archive: destinations",
            ));
        }
        Ok(match self.transport {
            Transport::Oci => Arc::new(oci_layout::OciLayoutDestination::new(
                &self.path,
                self.name(),
            )?),
            Transport::OciArchive => Arc::new(oci_archive::OciArchiveDestination::new(
                &self.path,
                self.name(),
            )?),
            Transport::Dir => Arc::new(dir::DirDestination::new(&self.path)?),
            Transport::DockerArchive => {
                let mut tags = vec![];
                if let Selector::Tag(r) = &self.selector {
                    tags.push(r.clone());
                }
                tags.extend(additional_tags.iter().cloned());
                Arc::new(docker_archive_write::DockerArchiveDestination::new(
                    &self.path, tags,
                )?)
            }
        })
    }
}

/// As skopeo (`explicitfilepath`): the directory the path is in must exist.
fn check_parent(path: &Path) -> std::result::Result<(), String> {
    let parent = files::parent(path);
    match std::fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", parent.display())),
        Err(e) => Err(format!("{}: {e}", parent.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> LocalRef {
        LocalRef::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .unwrap_or_else(|| panic!("{s}: not local"))
    }

    #[test]
    fn parses_as_skopeo() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().display().to_string();
        let r = p(&format!("oci:{base}/lay:v1"));
        assert_eq!(r.transport, Transport::Oci);
        assert_eq!(r.path, d.path().join("lay"));
        assert_eq!(r.selector, Selector::Name("v1".into()));
        assert_eq!(r.to_string(), format!("oci:{base}/lay:v1"));
        assert_eq!(p(&format!("oci:{base}/lay")).selector, Selector::None);
        assert_eq!(
            p(&format!("oci:{base}/lay:@3")).selector,
            Selector::Position(3)
        );
        assert_eq!(
            p(&format!("oci-archive:{base}/a.tar:ns/app:1.0")).selector,
            Selector::Name("ns/app:1.0".into())
        );
        let r = p(&format!("dir:{base}/busybox:latest"));
        assert_eq!(r.path, d.path().join("busybox:latest"));
        let r = p(&format!("docker-archive:{base}/a.tar:busybox"));
        let Selector::Tag(t) = &r.selector else {
            panic!()
        };
        assert_eq!(t.to_string(), "docker.io/library/busybox:latest");
        assert!(LocalRef::parse("docker://x/y").unwrap().is_none());
        assert!(LocalRef::parse("nothing").unwrap().is_none());
    }

    #[test]
    fn refuses_bad_references() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().display().to_string();
        for bad in [
            format!("oci:{base}/no/such/lay:v1"),
            format!("oci:{base}/lay:-bad"),
            format!("oci:{base}/lay:@x"),
            format!("oci:{base}/lay:@-1"),
            "oci:".to_string(),
            format!("docker-archive:{base}/a.tar:app@sha256:{}", "a".repeat(64)),
            format!("docker-archive:{base}/a.tar:UPPER"),
        ] {
            assert!(LocalRef::parse(&bad).is_err(), "{bad} should be refused");
        }
        for refused in ["docker-daemon:busybox:latest", "containers-storage:busybox"] {
            let e = LocalRef::parse(refused).unwrap_err().to_string();
            assert!(e.contains("not supported") && e.contains("docker"), "{e}");
        }
        assert!(
            p(&format!("oci:{base}/lay:@1"))
                .check_destination()
                .is_err()
        );
    }
}
