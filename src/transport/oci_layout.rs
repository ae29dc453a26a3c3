//! `oci:PATH[:NAME|:@N]`: the OCI image layout (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`), read and written as skopeo does.
//!
//! Reading ([`OciSource`], also used for `oci-archive:` through another [`Store`]): the image
//! is the entry of `index.json` with the name, the `N`th entry, or the only one. Every
//! manifest read is checked against its digest and size; a blob whose size on disk is not
//! the declared one is refused before a byte is sent (the engine checks the digest of every
//! byte it streams).
//!
//! Writing ([`OciLayoutDestination`]): blobs and manifests go to temporary names in the
//! layout, are checked, synced and renamed into `blobs/`; `index.json` is changed last, under
//! an exclusive lock on the layout directory, re-read under the lock so that another process
//! writing the same layout at the same time loses no entry, and replaced atomically. Several
//! images share one layout and each blob is stored once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::files::{self, DirLock, Expect};
use super::oci_index::{self, Entry, Index, Lookup};
use crate::error::{Error, Location, Result};
use crate::image::{
    BlobData, BlobOrigin, BlobRead, BlobStream, Capabilities, Existing, ImageDestination,
    ImageSource, ManifestRole, Reuse,
};
use crate::manifest::{self, Descriptor, MAX_MANIFEST_SIZE, Manifest};
use crate::reference::Digest;

/// Where a layout's files are read from: a directory, or the entries of an archive.
pub(crate) trait Store: Send + Sync + 'static {
    /// Open the file at `rel` (`index.json`, `blobs/sha256/<hex>`), positioned at its start,
    /// with its length; `None` when there is no such file.
    fn open(&self, rel: &str) -> Result<Option<(std::fs::File, u64)>>;
    /// Where the layout is, for messages (`oci:/path`, `oci-archive:/file.tar`).
    fn location(&self) -> Location;
}

/// A layout in a directory.
pub(crate) struct DirStore {
    pub dir: PathBuf,
    pub transport: &'static str,
}

impl Store for DirStore {
    fn open(&self, rel: &str) -> Result<Option<(std::fs::File, u64)>> {
        let path = self.dir.join(rel);
        match std::fs::File::open(&path) {
            Ok(f) => {
                let meta = f
                    .metadata()
                    .map_err(|e| files::io_err("reading", &path, e))?;
                if !meta.is_file() {
                    return Err(Error::io(
                        "reading",
                        &path,
                        std::io::Error::other("not a regular file"),
                    ));
                }
                Ok(Some((f, meta.len())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(files::io_err("reading", &path, e)),
        }
    }

    fn location(&self) -> Location {
        location(self.transport, &self.dir)
    }
}

/// A location for messages about a file or directory of a transport.
pub(crate) fn location(transport: &str, path: &Path) -> Location {
    Location {
        registry: format!("{transport}:{}", path.display()),
        repository: String::new(),
    }
}

/// The path of a blob inside a layout.
pub(crate) fn blob_rel(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Read a whole small file from a store.
pub(crate) fn read_small<S: Store + ?Sized>(
    store: &S,
    rel: &str,
    limit: u64,
    what: &str,
) -> Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let Some((f, len)) = store.open(rel)? else {
        return Ok(None);
    };
    if len > limit {
        return Err(Error::Invalid {
            what: what.to_string(),
            location: store.location(),
            reason: format!("{rel} is {len} bytes, more than the {limit} bytes allowed"),
        });
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(format!("reading {rel} of"), store.location().to_string(), e))?;
    Ok(Some(buf))
}

/// Read and parse a layout's `index.json`; `None` when it has none.
pub(crate) fn read_index<S: Store + ?Sized>(store: &S) -> Result<Option<Index>> {
    let Some(bytes) = read_small(
        store,
        "index.json",
        oci_index::MAX_INDEX_SIZE,
        "image layout",
    )?
    else {
        return Ok(None);
    };
    Index::parse(&bytes).map(Some).map_err(|e| Error::Invalid {
        what: "image layout".into(),
        location: store.location(),
        reason: format!("index.json is not a valid image index: {e}"),
    })
}

/// Read a manifest blob and check it against its digest (and size, when known).
pub(crate) fn read_manifest<S: Store + ?Sized>(
    store: &S,
    digest: &Digest,
    size: Option<u64>,
    media_type: Option<&str>,
) -> Result<Manifest> {
    let what = format!("manifest {}", digest.short());
    let bytes = read_small(store, &blob_rel(digest), MAX_MANIFEST_SIZE as u64, &what)?.ok_or_else(
        || Error::NotFound {
            what: what.clone(),
            location: store.location(),
            detail: Default::default(),
        },
    )?;
    if let Some(actual) = digest.verify(&bytes) {
        return Err(Error::DigestMismatch {
            what,
            location: store.location(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    if let Some(size) = size
        && size != bytes.len() as u64
    {
        return Err(Error::Invalid {
            what,
            location: store.location(),
            reason: format!("it is {} bytes, index.json says {size}", bytes.len()),
        });
    }
    manifest::parse(Bytes::from(bytes), media_type.filter(|m| !m.is_empty())).map_err(|reason| {
        Error::Invalid {
            what,
            location: store.location(),
            reason: reason.to_string(),
        }
    })
}

/// Open a blob of a store for streaming from `offset`, refusing one whose size is not the
/// declared one.
pub(crate) fn open_blob<S: Store + ?Sized>(
    store: &S,
    desc: &Descriptor,
    offset: u64,
) -> Result<BlobRead> {
    use std::io::{Seek as _, SeekFrom};
    let what = format!("blob {}", desc.digest.short());
    let rel = blob_rel(&desc.digest);
    let (mut f, len) = store.open(&rel)?.ok_or_else(|| Error::NotFound {
        what: what.clone(),
        location: store.location(),
        detail: Default::default(),
    })?;
    if len != desc.size {
        return Err(Error::Invalid {
            what,
            location: store.location(),
            reason: format!("{rel} has {len} bytes, the manifest declares {}", desc.size),
        });
    }
    let offset = offset.min(len);
    f.seek(SeekFrom::Current(offset as i64))
        .map_err(|e| Error::io(format!("reading {rel} of"), store.location().to_string(), e))?;
    Ok(BlobRead {
        stream: files::file_stream(f, len - offset),
        offset,
        length: Some(len - offset),
    })
}

/// An image in an OCI layout (a directory, or an archive's entries).
pub(crate) struct OciSource<S: Store> {
    store: S,
    label: String,
    top: Entry,
    top_digest: Digest,
    index: Index,
}

impl<S: Store> OciSource<S> {
    /// Find the image `name` (or the `position`th, or the only one) in the layout.
    pub(crate) fn open(store: S, name: Option<&str>, position: Option<usize>) -> Result<Self> {
        let index = read_index(&store)?.ok_or_else(|| {
            Error::io(
                "reading the image layout",
                store.location().to_string(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "index.json not found"),
            )
        })?;
        let top = match index.find(name, position) {
            Ok(e) => e.clone(),
            Err(Lookup::NotFound) => {
                return Err(Error::NotFound {
                    what: format!("image {:?}", name.unwrap_or_default()),
                    location: store.location(),
                    detail: Default::default(),
                });
            }
            Err(Lookup::Unsupported(types)) => {
                return Err(Error::Invalid {
                    what: format!("image {:?}", name.unwrap_or_default()),
                    location: store.location(),
                    reason: format!("it names unsupported manifest types {types:?}"),
                });
            }
            Err(Lookup::NotOne(n)) => {
                return Err(Error::usage(format!(
                    "{} holds {n} images: choose one ({}:NAME or :@INDEX)",
                    store.location(),
                    store.location().registry
                )));
            }
            Err(Lookup::BadPosition { position, count }) => {
                return Err(Error::usage(format!(
                    "index @{position} is too large: {} holds {count} images",
                    store.location()
                )));
            }
        };
        let top_digest = top.digest.parse::<Digest>().map_err(|e| Error::Invalid {
            what: "image layout".into(),
            location: store.location(),
            reason: format!("index.json: {e}"),
        })?;
        let label = match (name, position) {
            (Some(n), _) => format!("{}:{n}", store.location().registry),
            (None, Some(i)) => format!("{}:@{i}", store.location().registry),
            (None, None) => store.location().registry,
        };
        Ok(OciSource {
            store,
            label,
            top,
            top_digest,
            index,
        })
    }

    /// Every named image of the layout (for `sync --src oci`), in index order.
    pub(crate) fn names(store: &S) -> Result<Vec<String>> {
        let index = read_index(store)?.unwrap_or_default();
        let mut names: Vec<String> = vec![];
        for e in index.entries() {
            if let Some(n) = e.name()
                && !names.iter().any(|x| x == n)
            {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }
}

#[async_trait]
impl<S: Store> ImageSource for OciSource<S> {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn location(&self) -> Location {
        self.store.location()
    }

    async fn manifest(&self) -> Result<Manifest> {
        read_manifest(
            &self.store,
            &self.top_digest,
            u64::try_from(self.top.size).ok(),
            Some(&self.top.media_type),
        )
    }

    async fn manifest_by_digest(&self, digest: &Digest) -> Result<Manifest> {
        let media_type = self
            .index
            .entries()
            .iter()
            .find(|e| e.digest == digest.as_str())
            .map(|e| e.media_type.clone());
        read_manifest(&self.store, digest, None, media_type.as_deref())
    }

    async fn blob(&self, desc: &Descriptor, offset: u64) -> Result<BlobRead> {
        open_blob(&self.store, desc, offset)
    }
}

/// Writing one image into an OCI layout directory.
pub(crate) struct OciLayoutDestination {
    dir: PathBuf,
    name: Option<String>,
    /// The entry `commit` adds to `index.json`.
    pending: Mutex<Option<Entry>>,
}

impl OciLayoutDestination {
    /// A destination in `dir` (created when the first blob is written; its parent must
    /// exist), for the image `name` (none: an unnamed entry, as skopeo adds one).
    pub(crate) fn new(dir: &Path, name: Option<&str>) -> Result<Self> {
        Ok(OciLayoutDestination {
            dir: dir.to_path_buf(),
            name: name.map(str::to_string),
            pending: Mutex::new(None),
        })
    }

    fn store(&self) -> DirStore {
        DirStore {
            dir: self.dir.clone(),
            transport: "oci",
        }
    }

    fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(blob_rel(d))
    }

    async fn write_blob(&self, d: &Digest, size: u64, data: BlobData, hash: bool) -> Result<()> {
        let parent = self.dir.join("blobs").join(d.algorithm());
        std::fs::create_dir_all(&parent).map_err(|e| files::io_err("creating", &parent, e))?;
        let expect = Expect {
            size: Some(size),
            digest: Some(d.clone()),
            hash,
            what: format!("blob {}", d.short()),
            location: self.location(),
        };
        let path = self.blob_path(d);
        files::put_data(data, self.dir.clone(), move |_: &Digest| path, expect).await?;
        Ok(())
    }

    /// Store a blob whose digest is computed while it is written.
    pub(crate) async fn write_computed(&self, stream: BlobStream) -> Result<(Digest, u64)> {
        let dir = self.dir.clone();
        let expect = Expect {
            size: None,
            digest: None,
            hash: true,
            what: "a converted layer".into(),
            location: self.location(),
        };
        let parent = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&parent).map_err(|e| files::io_err("creating", &parent, e))?;
        files::put_data(
            BlobData::Stream(stream),
            dir.clone(),
            move |d: &Digest| dir.join(blob_rel(d)),
            expect,
        )
        .await
    }
}

#[async_trait]
impl ImageDestination for OciLayoutDestination {
    fn name(&self) -> String {
        match &self.name {
            Some(n) => format!("{}:{n}", self.location().registry),
            None => self.location().registry,
        }
    }

    fn location(&self) -> Location {
        self.store().location()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn blob_scope(&self) -> String {
        format!("oci:{}", self.dir.display())
    }

    async fn existing(&self) -> Result<Option<Existing>> {
        let Some(name) = &self.name else {
            return Ok(None);
        };
        let Some(index) = read_index(&self.store())? else {
            return Ok(None);
        };
        Ok(index.find(Some(name), None).ok().map(|e| Existing {
            digest: e.digest.parse().ok(),
            media_type: Some(e.media_type.clone()),
        }))
    }

    async fn try_reuse_blob(&self, desc: &Descriptor, _: Option<&BlobOrigin>) -> Result<Reuse> {
        // As skopeo: a blob file of the right size is the blob (files only ever appear under
        // their digest's name complete and checked).
        match std::fs::metadata(self.blob_path(&desc.digest)) {
            Ok(m) if m.is_file() && m.len() == desc.size => Ok(Reuse::Present),
            _ => Ok(Reuse::No),
        }
    }

    async fn put_blob(&self, desc: &Descriptor, data: BlobData) -> Result<()> {
        self.write_blob(&desc.digest, desc.size, data, false).await
    }

    async fn put_blob_computed(
        &self,
        _media_type: &str,
        stream: BlobStream,
    ) -> Result<Option<(Digest, u64)>> {
        self.write_computed(stream).await.map(Some)
    }

    async fn put_manifest(&self, m: &Manifest, role: ManifestRole) -> Result<()> {
        let size = m.bytes.len() as u64;
        self.write_blob(&m.digest, size, BlobData::Whole(m.bytes.clone()), true)
            .await?;
        if role == ManifestRole::Reference {
            *self.pending.lock().expect("pending entry") = Some(Entry::new(
                &m.media_type,
                m.digest.as_str(),
                size,
                self.name.as_deref(),
            ));
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        let entry = self.pending.lock().expect("pending entry").take();
        let Some(entry) = entry else {
            return Ok(());
        };
        let dir = self.dir.clone();
        let store = self.store();
        files::sync_dir(&dir.join("blobs").join("sha256")).ok();
        let _lock = DirLock::acquire(&dir).await?;
        // Re-read under the lock: another writer may have added entries since we started.
        let mut index = read_index(&store)?.unwrap_or_else(Index::new);
        index.add(entry);
        files::blocking(move || {
            files::write_atomic(&dir.join("oci-layout"), oci_index::OCI_LAYOUT.as_bytes())?;
            files::write_atomic(&dir.join("index.json"), index.to_json().as_bytes())?;
            files::sync_dir(&dir)
        })
        .await
    }
}
