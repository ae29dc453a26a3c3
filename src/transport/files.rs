//! Files on disk as the on-disk transports need them: nothing half-written is ever visible.
//!
//! - [`write_atomic`]: a small file (a manifest, `index.json`) written to a temporary name in
//!   its directory, synced, then renamed over the old one.
//! - [`put_stream`]: a blob streamed to a temporary name, its size (and, when asked, its
//!   digest) checked, synced, then renamed to its final name. A stream that fails leaves
//!   nothing behind.
//! - [`DirLock`]: an exclusive `flock` on a directory (an OCI layout), so that two processes
//!   updating its `index.json` one after the other never lose an entry.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt as _;

use crate::error::{Error, Location, Result};
use crate::image::{BlobData, BlobStream};
use crate::reference::{Digest, Hasher};

/// Prefix of every temporary file or directory ferry creates inside or next to a layout.
pub(crate) const TEMP_PREFIX: &str = ".ferry-tmp-";

/// An I/O error on `path` while doing `what`.
pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(what, path, e)
}

/// Run blocking file work off the async runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io {
            what: "running file work".into(),
            path: "-".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// A new temporary file in `dir` (mode 0600 until it is made readable by [`persist`]).
pub(crate) fn temp_file(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| io_err("creating a temporary file in", dir, e))
}

/// Sync a finished temporary file, make it 0644 (as skopeo's files are), and rename it to
/// `dest` (replacing what was there).
pub(crate) fn persist(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let file = tmp.as_file();
    file.sync_all()
        .map_err(|e| io_err("syncing", tmp.path(), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| io_err("setting the mode of", tmp.path(), e))?;
    tmp.persist(dest)
        .map_err(|e| io_err("renaming a temporary file to", dest, e.error))?;
    Ok(())
}

/// Write `bytes` to `path` atomically: a reader sees the old file or the new one, whole.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent(path);
    let mut tmp = temp_file(dir)?;
    tmp.write_all(bytes)
        .map_err(|e| io_err("writing", tmp.path(), e))?;
    persist(tmp, path)
}

/// Sync a directory, so that the renames in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing directory", dir, e))
}

/// The directory a path is in (`.` for a bare name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What a blob being stored must turn out to be.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// Its size, if known.
    pub size: Option<u64>,
    /// Its digest, if known.
    pub digest: Option<Digest>,
    /// Compute the digest while writing (needed when `digest` is unknown, or when the bytes
    /// were not verified on their way here).
    pub hash: bool,
    /// For messages: what the blob is and where it goes.
    pub what: String,
    /// Where it goes.
    pub location: Location,
}

/// Store a blob's bytes at `dest(digest)`, through a temporary file in `tmp_dir` (same
/// filesystem). Returns the digest (computed or expected) and the size. Nothing is left in
/// place or in `tmp_dir` unless the bytes were complete and as expected.
pub(crate) async fn put_data(
    data: BlobData,
    tmp_dir: PathBuf,
    dest: impl FnOnce(&Digest) -> PathBuf + Send + 'static,
    expect: Expect,
) -> Result<(Digest, u64)> {
    let tmp = {
        let dir = tmp_dir.clone();
        blocking(move || temp_file(&dir)).await?
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let hash_for = match (&expect.digest, expect.hash) {
        (_, false) => None,
        (Some(d), true) => Some(d.clone()),
        // A digest computed from scratch is sha256, as skopeo computes it.
        (None, true) => Some(Digest::sha256(b"")),
    };
    let writer = tokio::task::spawn_blocking(move || {
        let mut tmp = tmp;
        let mut hasher = hash_for.as_ref().and_then(Hasher::for_digest);
        let mut count = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            count += chunk.len() as u64;
            tmp.write_all(&chunk)
                .map_err(|e| io_err("writing", tmp.path(), e))?;
        }
        Ok::<_, Error>((tmp, count, hasher.map(Hasher::finish)))
    });
    let fed: Result<()> = async {
        match data {
            BlobData::Whole(b) => {
                let _ = tx.send(b).await;
            }
            BlobData::Stream(mut s) => {
                let mut seen = 0u64;
                while let Some(item) = s.next().await {
                    let chunk = item?;
                    seen += chunk.len() as u64;
                    // Never let a source write more than declared.
                    if let Some(size) = expect.size
                        && seen > size
                    {
                        return Err(Error::Invalid {
                            what: expect.what.clone(),
                            location: expect.location.clone(),
                            reason: format!("more than the {size} bytes expected"),
                        });
                    }
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| Error::Io {
        what: "writing".into(),
        path: tmp_dir.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    // On any failure the temporary file is dropped, which deletes it.
    fed?;
    let (tmp, count, computed) = written?;
    if let Some(size) = expect.size
        && size != count
    {
        return Err(Error::Invalid {
            what: expect.what.clone(),
            location: expect.location.clone(),
            reason: format!("received {count} bytes, {size} expected"),
        });
    }
    let digest = match (expect.digest.clone(), computed) {
        (Some(want), Some(got)) if want != got => {
            return Err(Error::DigestMismatch {
                what: expect.what.clone(),
                location: expect.location.clone(),
                expected: want.to_string(),
                actual: got.to_string(),
            });
        }
        (Some(want), _) => want,
        (None, Some(got)) => got,
        (None, None) => {
            return Err(Error::Invalid {
                what: expect.what.clone(),
                location: expect.location.clone(),
                reason: "neither a digest nor a hash to name the blob by".into(),
            });
        }
    };
    let final_path = dest(&digest);
    blocking(move || persist(tmp, &final_path)).await?;
    Ok((digest, count))
}

/// A blob stream that takes `len` bytes from an open file (from its current position).
pub(crate) fn file_stream(file: std::fs::File, len: u64) -> BlobStream {
    use tokio::io::AsyncReadExt as _;
    const CHUNK: usize = 256 * 1024;
    let file = tokio::fs::File::from_std(file).take(len);
    Box::pin(futures_util::stream::unfold(
        Some(file),
        |state| async move {
            let mut file = state?;
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            match file.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), Some(file))),
                Err(e) => Some((
                    Err(Error::Io {
                        what: "reading a blob".into(),
                        path: "-".into(),
                        source: e,
                    }),
                    None,
                )),
            }
        },
    ))
}

/// An exclusive lock on a directory, held until dropped (`flock`, released by the kernel when
/// the process dies).
pub(crate) struct DirLock {
    _fd: std::os::fd::OwnedFd,
}

impl DirLock {
    /// Wait for the lock on `dir`.
    pub(crate) async fn acquire(dir: &Path) -> Result<DirLock> {
        let dir = dir.to_path_buf();
        blocking(move || {
            use rustix::fs::{FlockOperation, Mode, OFlags};
            let fd = rustix::fs::open(
                &dir,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("opening", &dir, e.into()))?;
            rustix::fs::flock(&fd, FlockOperation::LockExclusive)
                .map_err(|e| io_err("locking", &dir, e.into()))?;
            Ok(DirLock { _fd: fd })
        })
        .await
    }
}

/// Read a whole small file, refusing one larger than `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| io_err(&format!("reading {what}"), path, e))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(&format!("reading {what}"), path, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::io(
            format!("reading {what}"),
            path,
            std::io::Error::other(format!("larger than {limit} bytes")),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> Location {
        Location {
            registry: "test".into(),
            repository: String::new(),
        }
    }

    fn stream(chunks: Vec<Result<Bytes>>) -> BlobStream {
        Box::pin(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn stores_only_complete_and_correct_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        let want = Digest::sha256(b"hello world");
        let expect = |digest: Option<Digest>, size| Expect {
            size,
            digest,
            hash: true,
            what: "blob".into(),
            location: loc(),
        };
        // A failing stream leaves nothing.
        let r = put_data(
            BlobData::Stream(stream(vec![
                Ok(Bytes::from_static(b"hello ")),
                Err(Error::Refused("cut".into())),
            ])),
            dir.path().to_path_buf(),
            {
                let d = dest.clone();
                move |_: &Digest| d
            },
            expect(Some(want.clone()), Some(11)),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Wrong bytes: a digest mismatch, nothing left.
        let r = put_data(
            BlobData::Whole(Bytes::from_static(b"hello world")),
            dir.path().to_path_buf(),
            {
                let d = dest.clone();
                move |_: &Digest| d
            },
            expect(Some(Digest::sha256(b"other")), None),
        )
        .await;
        assert!(matches!(r, Err(Error::DigestMismatch { .. })), "{r:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Short: refused.
        let r = put_data(
            BlobData::Whole(Bytes::from_static(b"hello")),
            dir.path().to_path_buf(),
            {
                let d = dest.clone();
                move |_: &Digest| d
            },
            expect(None, Some(11)),
        )
        .await;
        assert!(r.is_err());
        // Right: stored, digest computed.
        let (d, n) = put_data(
            BlobData::Stream(stream(vec![
                Ok(Bytes::from_static(b"hello ")),
                Ok(Bytes::from_static(b"world")),
            ])),
            dir.path().to_path_buf(),
            {
                let d = dest.clone();
                move |_: &Digest| d
            },
            expect(None, Some(11)),
        )
        .await
        .unwrap();
        assert_eq!((d, n), (want, 11));
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn lock_excludes_a_second_holder() {
        use rustix::fs::{FlockOperation, Mode, OFlags};
        let dir = tempfile::tempdir().unwrap();
        let other = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let try_other = || rustix::fs::flock(&other, FlockOperation::NonBlockingLockExclusive);
        let first = DirLock::acquire(dir.path()).await.unwrap();
        assert!(try_other().is_err(), "a second holder got the lock");
        drop(first);
        try_other().unwrap();
        rustix::fs::flock(&other, FlockOperation::Unlock).unwrap();
        drop(DirLock::acquire(dir.path()).await.unwrap());
    }
}
