//! `sync` to and from disk: `--src dir|oci` and `--dest dir|oci`, for the air-gap round trip
//! (`sync` a registry's repositories to a USB disk, carry it, `sync` them into another
//! registry).
//!
//! Naming follows skopeo's sync: an image goes to `path.Join(DEST, suffix) + --append-suffix`,
//! where the suffix is the source reference (`registry/repo:tag`, or for a `dir:` source its
//! path below SOURCE) with `--scoped`, else its last path component.
//!
//! - `--dest dir`: one `dir:` directory per image, named as above (`/media/usb/busybox:1.36`);
//!   as skopeo, an existing directory is refused rather than overwritten.
//! - `--src dir`: every directory below SOURCE holding a `manifest.json` (ferry's own hidden
//!   temporary directories skipped).
//! - `--dest oci` (ferry): one OCI layout at DEST holding every image under the name above
//!   (`busybox:1.36`, or `registry.example.com/busybox:1.36` with `--scoped`); blobs shared by
//!   images are stored once, and an image already there under its name costs nothing.
//! - `--src oci` (ferry): every named image of the layout SOURCE, the name as suffix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::image::{ImageDestination, ImageSource};
use crate::progress::Progress;
use crate::reference::{AnyRef, ImageRef};
use crate::sync::{
    ClientSource, Clients, Job, RegistrySettings, SourceGroup, SyncOptions, SyncReport,
};
use crate::transport::{LocalRef, Selector, Transport, oci_index};

/// Where `sync` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DestKind {
    /// A registry (`--dest docker`).
    #[default]
    Docker,
    /// One `dir:` directory per image (`--dest dir`).
    Dir,
    /// One OCI layout for every image (`--dest oci`, ferry's).
    Oci,
}

/// Go's `path.Join`.
fn join(a: &str, b: &str) -> String {
    crate::transport::tar::clean(&format!("{a}/{b}"))
}

/// The destination of an image whose suffix (before `--scoped` is applied) is `suffix`.
pub fn destination(
    suffix: &str,
    dest: &str,
    kind: DestKind,
    scoped: bool,
    append_suffix: &str,
) -> Result<AnyRef> {
    let suffix = if scoped {
        suffix.trim_start_matches('/')
    } else {
        suffix.rsplit('/').next().unwrap_or(suffix)
    };
    match kind {
        DestKind::Docker => {
            let dest = dest.strip_prefix("docker://").unwrap_or(dest);
            let name = format!("{}{append_suffix}", join(dest, suffix));
            ImageRef::parse(&name).map(AnyRef::Docker)
        }
        DestKind::Dir => {
            let path = format!("{}{append_suffix}", join(dest, suffix));
            Ok(AnyRef::Local(LocalRef {
                transport: Transport::Dir,
                path: PathBuf::from(path),
                selector: Selector::None,
            }))
        }
        DestKind::Oci => {
            let name = format!("{suffix}{append_suffix}");
            if !oci_index::valid_image_name(&name) {
                return Err(Error::usage(format!(
                    "{name:?} is not a valid image name in an OCI layout"
                )));
            }
            Ok(AnyRef::Local(LocalRef {
                transport: Transport::Oci,
                path: PathBuf::from(dest),
                selector: Selector::Name(name),
            }))
        }
    }
}

/// Make a `--dest dir` destination ready as skopeo does: refuse an existing directory, create
/// the directories above it.
pub fn prepare_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(Error::Refused(format!(
            "Refusing to overwrite destination directory {:?}",
            path.display().to_string()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = crate::transport::files::parent(path);
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("creating directory for image", parent, e))
        }
        Err(e) => Err(Error::io(
            "Destination directory could not be used:",
            path,
            e,
        )),
    }
}

/// The images of a `--src dir` source: (reference, suffix) in the order of a directory walk
/// (entries sorted by name, as Go's `filepath.WalkDir`).
pub fn dir_images(source: &Path) -> Result<Vec<(AnyRef, String)>> {
    std::fs::metadata(source)
        .map_err(|e| Error::io("Invalid source directory specified:", source, e))?;
    let base = source.to_string_lossy().into_owned();
    let mut out = vec![];
    walk(source, &base, &mut out)?;
    if out.is_empty() {
        return Err(Error::usage(format!("No images to sync found in {base:?}")));
    }
    Ok(out)
}

fn walk(dir: &Path, base: &str, out: &mut Vec<(AnyRef, String)>) -> Result<()> {
    if dir.join("manifest.json").is_file() {
        let path = dir.to_string_lossy().into_owned();
        let mut suffix = path.strip_prefix(base).unwrap_or(&path).to_string();
        if suffix.is_empty() {
            // SOURCE is itself an image: named after its last component.
            suffix = Path::new(base)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        out.push((
            AnyRef::Local(LocalRef {
                transport: Transport::Dir,
                path: dir.to_path_buf(),
                selector: Selector::None,
            }),
            suffix,
        ));
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("Error walking the path", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with(".ferry-tmp-") && !is_staging(n))
        .collect();
    entries.sort();
    for n in entries {
        walk(&dir.join(n), base, out)?;
    }
    Ok(())
}

/// A `dir:` destination's hidden staging directory (`.<name>.ferry-tmp-…`).
fn is_staging(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with('.') && n.contains(crate::transport::files::TEMP_PREFIX)
}

/// The images of a `--src oci` source: every named entry of the layout, the name as suffix.
pub fn oci_images(layout: &Path) -> Result<Vec<(AnyRef, String)>> {
    let store = crate::transport::oci_layout::DirStore {
        dir: layout.to_path_buf(),
        transport: "oci",
    };
    let names = crate::transport::oci_layout::OciSource::names(&store)?;
    if names.is_empty() {
        return Err(Error::usage(format!(
            "No images to sync found in {:?}",
            layout.display().to_string()
        )));
    }
    Ok(names
        .into_iter()
        .map(|n| {
            (
                AnyRef::Local(LocalRef {
                    transport: Transport::Oci,
                    path: layout.to_path_buf(),
                    selector: Selector::Name(n.clone()),
                }),
                n,
            )
        })
        .collect())
}

/// Run a sync of images on disk (`--src dir|oci`): `images` are (source, suffix) pairs.
pub async fn run(
    images: Vec<(AnyRef, String)>,
    dest: &str,
    opts: &SyncOptions,
    make: &dyn ClientSource,
    progress: Arc<Progress>,
    policy: Option<&Arc<crate::policy::Policy>>,
) -> Result<SyncReport> {
    let clients = crate::sync::Clients {
        make,
        cache: Mutex::new(HashMap::new()),
    };
    let report = SyncReport {
        sources: 1,
        ..SyncReport::default()
    };
    let mut jobs = vec![];
    for (src, suffix) in images {
        let dst = crate::sync_disk::destination(
            &suffix,
            dest,
            opts.dest_kind,
            opts.scoped,
            &opts.append_suffix,
        )?;
        jobs.push(Job { src, dst, group: 0 });
    }
    let groups = [SourceGroup {
        settings: RegistrySettings::default(),
        sources: vec![],
    }];
    crate::sync::execute(&groups, jobs, opts, &clients, progress, policy, report).await
}

/// The two ends of one job: the copy engine's source and destination, and the registry client
/// of each side that is a registry (one lookup each). A destination on the source's registry
/// mounts blobs from it ([`ImageSource::blob_origin`]).
pub(crate) async fn ends<'a>(
    groups: &[SourceGroup],
    j: &'a Job,
    clients: &Clients<'_>,
    registries_d: Option<&crate::registries_d::RegistriesD>,
) -> Result<crate::sync::image::Ends<'a>> {
    let (source, src_client): (Arc<dyn ImageSource>, _) = match &j.src {
        AnyRef::Docker(s) => {
            let c = clients.get(groups, Some(j.group), s)?;
            let source = crate::registry::source_with(c.clone(), s, registries_d);
            (Arc::new(source), Some(c))
        }
        AnyRef::Local(l) => (l.source().await?, None),
    };
    let (destination, dst_client): (Arc<dyn ImageDestination>, _) = match &j.dst {
        AnyRef::Docker(d) => {
            let c = clients.get(groups, None, d)?;
            let origin = source.blob_origin();
            let destination =
                crate::registry::destination_with(c.clone(), d, origin.as_ref(), registries_d);
            (Arc::new(destination), Some(c))
        }
        AnyRef::Local(l) => {
            if l.transport == crate::transport::Transport::Dir {
                crate::sync_disk::prepare_dir(&l.path)?;
            }
            (l.destination(&[]).await?, None)
        }
    };
    Ok(crate::sync::image::Ends {
        refs: (&j.src, &j.dst),
        endpoints: (source, destination),
        src_client,
        dst_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: AnyRef) -> String {
        r.to_string()
    }

    #[test]
    fn names_destinations_as_skopeo() {
        let d = |s, k, scoped| name(destination(s, "/media/usb", k, scoped, "").unwrap());
        assert_eq!(
            d("reg.example.com/ns/busybox:1.36", DestKind::Dir, false),
            "dir:/media/usb/busybox:1.36"
        );
        assert_eq!(
            d("reg.example.com/ns/busybox:1.36", DestKind::Dir, true),
            "dir:/media/usb/reg.example.com/ns/busybox:1.36"
        );
        assert_eq!(
            d("reg.example.com/ns/busybox:1.36", DestKind::Oci, true),
            "oci:/media/usb:reg.example.com/ns/busybox:1.36"
        );
        let r = destination(
            "/reg.example.com/ns/busybox:1.36",
            "reg2:5000/mirror",
            DestKind::Docker,
            true,
            "-x",
        )
        .unwrap();
        assert_eq!(
            name(r),
            "docker://reg2:5000/mirror/reg.example.com/ns/busybox:1.36-x"
        );
        let r = destination(
            "/reg.example.com/ns/busybox:1.36",
            "reg2:5000/mirror",
            DestKind::Docker,
            false,
            "",
        )
        .unwrap();
        assert_eq!(name(r), "docker://reg2:5000/mirror/busybox:1.36");
    }

    #[test]
    fn finds_dir_images_below_a_source() {
        let t = tempfile::tempdir().unwrap();
        for d in ["a/x:1", "a/y:2", ".b.ferry-tmp-zz", "c"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for d in ["a/x:1", "a/y:2", ".b.ferry-tmp-zz"] {
            std::fs::write(t.path().join(d).join("manifest.json"), "{}").unwrap();
        }
        let found: Vec<String> = dir_images(t.path())
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(found, vec!["/a/x:1".to_string(), "/a/y:2".into()]);
        assert!(dir_images(&t.path().join("c")).is_err());
        let one = dir_images(&t.path().join("a/x:1")).unwrap();
        assert_eq!(one[0].1, "x:1");
    }
}
