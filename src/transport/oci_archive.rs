//! `oci-archive:FILE[:NAME|:@N]`: an OCI image layout in a tar file.
//!
//! Reading: unlike skopeo, which extracts the archive to a temporary directory, ferry reads
//! the layout's files in place ([`TarStore`]): names are looked up in an index of the
//! archive's entries, never created on disk. A compressed archive (gzip, zstd) is first
//! decompressed to a temporary file, as skopeo does for `docker-archive:`.
//!
//! Writing ([`OciArchiveDestination`]): as skopeo, a new archive holding the one image. The
//! layout is built in a hidden directory next to FILE, then written as a tar under a
//! temporary name and renamed to FILE: a reader sees the old archive or the new one. skopeo's
//! archives carry the files' modification times and so differ from run to run; ferry writes
//! the same entries (`blobs/`, `blobs/sha256/`, each blob, `index.json`, `oci-layout`, in
//! that order, directories 0755, files 0644, uid/gid 0) with time 0, so that the same image
//! always gives the same archive.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::files;
use super::oci_layout::{OciLayoutDestination, Store, location};
use super::tar::{self, TarIndex};
use crate::error::{Error, Location, Result};
use crate::image::{
    BlobData, BlobOrigin, BlobStream, Capabilities, Existing, ImageDestination, ManifestRole, Reuse,
};
use crate::manifest::{Descriptor, Manifest};
use crate::reference::Digest;

/// A layout's files read from the entries of a tar file.
pub struct TarStore {
    path: PathBuf,
    index: TarIndex,
    /// The decompressed copy read instead of `path`, removed when dropped.
    _decompressed: Option<tempfile::NamedTempFile>,
    location: Location,
}

impl TarStore {
    /// Index the archive at `path` (decompressing it first if it is compressed).
    pub async fn open(path: &Path) -> Result<TarStore> {
        Self::open_as(path, "oci-archive").await
    }

    /// [`TarStore::open`], naming the transport in messages.
    pub(crate) async fn open_as(path: &Path, transport: &'static str) -> Result<TarStore> {
        let given = path.to_path_buf();
        files::blocking(move || {
            let decompressed = crate::compress::decompressed_copy(&given)?;
            let read_from = decompressed
                .as_ref()
                .map_or_else(|| given.clone(), |t| t.path().to_path_buf());
            let index = TarIndex::read(&read_from)?;
            Ok(TarStore {
                path: read_from,
                index,
                _decompressed: decompressed,
                location: location(transport, &given),
            })
        })
        .await
    }

    /// The entry `rel` as a regular file, if the archive has it.
    pub(crate) fn entry(&self, rel: &str) -> Result<Option<&tar::Entry>> {
        self.index.file(rel).map_err(|reason| Error::Invalid {
            what: "archive".into(),
            location: self.location.clone(),
            reason,
        })
    }

    /// Read an entry whole (at most `limit` bytes).
    pub(crate) fn read(&self, e: &tar::Entry, limit: u64) -> Result<Vec<u8>> {
        tar::read_entry(&self.path, e, limit)
    }

    /// The archive file read (a decompressed copy for a compressed archive).
    pub(crate) fn file_path(&self) -> &Path {
        &self.path
    }
}

impl Store for TarStore {
    fn open(&self, rel: &str) -> Result<Option<(std::fs::File, u64)>> {
        match self.entry(rel)? {
            None => Ok(None),
            Some(e) => Ok(Some((tar::open_entry(&self.path, e)?, e.size))),
        }
    }

    fn location(&self) -> Location {
        self.location.clone()
    }
}

/// Writing one image as a new OCI archive.
pub struct OciArchiveDestination {
    path: PathBuf,
    name: Option<String>,
    staging: tempfile::TempDir,
    layout: OciLayoutDestination,
}

impl OciArchiveDestination {
    /// Prepare to write the image `name` (if given) as the archive `path`.
    pub fn new(path: &Path, name: Option<&str>) -> Result<Self> {
        let parent = files::parent(path);
        let staging = tempfile::Builder::new()
            .prefix(files::TEMP_PREFIX)
            .tempdir_in(parent)
            .map_err(|e| files::io_err("creating a directory in", parent, e))?;
        let layout = OciLayoutDestination::new(staging.path(), name)?;
        Ok(OciArchiveDestination {
            path: path.to_path_buf(),
            name: name.map(str::to_string),
            staging,
            layout,
        })
    }
}

/// The files of a layout directory in the order Go's `filepath.Walk` visits them, as
/// (name in the archive, path on disk, is a directory); ferry's temporary files left out.
fn layout_files(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut out = vec![];
    let mut algs: Vec<_> = std::fs::read_dir(dir.join("blobs"))
        .map_err(|e| files::io_err("reading", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    algs.sort();
    out.push(("blobs/".to_string(), dir.join("blobs"), true));
    for alg in algs {
        let adir = dir.join("blobs").join(&alg);
        out.push((format!("blobs/{alg}/"), adir.clone(), true));
        let mut blobs: Vec<_> = std::fs::read_dir(&adir)
            .map_err(|e| files::io_err("reading", &adir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        blobs.sort();
        for b in blobs {
            out.push((format!("blobs/{alg}/{b}"), adir.join(&b), false));
        }
    }
    for f in ["index.json", "oci-layout"] {
        out.push((f.to_string(), dir.join(f), false));
    }
    Ok(out)
}

/// Write the layout at `dir` as a tar to `out`.
pub(crate) fn write_layout_tar(dir: &Path, out: &mut std::fs::File) -> Result<()> {
    let werr = |e: std::io::Error| files::io_err("writing archive from", dir, e);
    for (name, path, is_dir) in layout_files(dir)? {
        if is_dir {
            out.write_all(&tar::entry_header(&name, 0, 0o755, b'5', None))
                .map_err(werr)?;
            continue;
        }
        let mut f = std::fs::File::open(&path).map_err(|e| files::io_err("reading", &path, e))?;
        let size = f
            .metadata()
            .map_err(|e| files::io_err("reading", &path, e))?
            .len();
        out.write_all(&tar::entry_header(&name, size, 0o644, b'0', None))
            .map_err(werr)?;
        let copied = std::io::copy(&mut f, out).map_err(werr)?;
        if copied != size {
            return Err(werr(std::io::Error::other(format!(
                "{} changed while being archived",
                path.display()
            ))));
        }
        out.write_all(&tar::data_padding(size)).map_err(werr)?;
    }
    out.write_all(&tar::trailer()).map_err(werr)
}

/// Write an archive to `path` through `write`: into a temporary file renamed over `path`,
/// or straight into `path` when it is not a regular file (a pipe, `/dev/stdout`).
pub(crate) fn write_archive(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    let regular = std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(true);
    if !regular {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| files::io_err("opening", path, e))?;
        return write(&mut f);
    }
    let mut tmp = files::temp_file(files::parent(path))?;
    write(tmp.as_file_mut())?;
    files::persist(tmp, path)?;
    files::sync_dir(files::parent(path))
}

#[async_trait]
impl ImageDestination for OciArchiveDestination {
    fn name(&self) -> String {
        match &self.name {
            Some(n) => format!("{}:{n}", self.location().registry),
            None => self.location().registry,
        }
    }

    fn location(&self) -> Location {
        location("oci-archive", &self.path)
    }

    fn capabilities(&self) -> Capabilities {
        self.layout.capabilities()
    }

    fn blob_scope(&self) -> String {
        format!("oci-archive:{}", self.path.display())
    }

    async fn existing(&self) -> Result<Option<Existing>> {
        // As skopeo: the archive is written anew, holding this image only.
        Ok(None)
    }

    async fn try_reuse_blob(&self, desc: &Descriptor, o: Option<&BlobOrigin>) -> Result<Reuse> {
        self.layout.try_reuse_blob(desc, o).await
    }

    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()> {
        self.layout.put_blob(desc, data).await
    }

    async fn put_blob_computed(
        &self,
        media_type: &str,
        stream: BlobStream,
    ) -> Result<Option<(Digest, u64)>> {
        self.layout.put_blob_computed(media_type, stream).await
    }

    async fn put_manifest(&self, m: &Manifest, role: ManifestRole) -> Result<()> {
        self.layout.put_manifest(m, role).await
    }

    async fn signatures(&self, _digest: &Digest) -> Result<Vec<Vec<u8>>> {
        Ok(vec![])
    }

    async fn commit(&self) -> Result<()> {
        self.layout.commit().await?;
        let (dir, path) = (self.staging.path().to_path_buf(), self.path.clone());
        files::blocking(move || write_archive(&path, |f| write_layout_tar(&dir, f))).await
    }
}
