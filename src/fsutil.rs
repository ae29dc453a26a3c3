//! Writing files safely: every file ferry writes (`--record`, `--digestfile`, `--report`, the
//! auth file of `login`/`logout`) goes through [`write_atomic`].
//!
//! The bytes go to a temporary file created in the target's directory under a random name,
//! exclusively (`O_CREAT|O_EXCL`, plus `O_NOFOLLOW`: a link planted at that name is never
//! written through), are flushed to disk (`fsync`), then the temporary file is renamed over the
//! target. `rename(2)` replaces whatever is at the target — a link planted there is replaced
//! itself, never followed — and a reader sees either the old file or the whole new one, never
//! half of it. Files holding secrets are created with mode 0600; the others with 0644 minus the
//! umask, as `skopeo` creates its files.
//!
//! A journal (`sync --journal`) is the one file that grows line by line: [`open_append`] opens
//! it for appending, creating it if needed, never through a link planted at its path.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It holds secrets: mode 0600, whatever the umask.
    Private,
    /// Mode 0644, minus the umask.
    Public,
}

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` to `path` atomically, as the module describes. `what` names the file in the
/// error (`writing the record`).
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access, what: &str) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mode = match access {
        Access::Private => 0o600,
        Access::Public => 0o644,
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .make_in(&dir, |p| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .mode(mode)
                .open(p)
        })
        .map_err(|e| Error::io(what, path, e))?;
    let written = (|| {
        let f = tmp.as_file();
        if access == Access::Private {
            // The mode given to open is filtered by the umask: make sure it is exactly 0600.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        let mut w = f;
        w.write_all(bytes)?;
        f.sync_all()
    })();
    // On any error the temporary file is removed when `tmp` is dropped.
    written.map_err(|e| Error::io(what, path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(what, path, e.error))?;
    // Make the rename itself durable; failing to is not worth failing the command for.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Open `path` to append to it (created with mode 0644 minus the umask if absent), refusing a
/// link at `path` (`O_NOFOLLOW`) and anything but a regular file. Each `write` of a whole line
/// lands at the end, in one piece (`O_APPEND`).
pub fn open_append(path: &Path, what: &str) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io(what, path, e))?;
    let meta = f.metadata().map_err(|e| Error::io(what, path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            what,
            path,
            std::io::Error::other("not a regular file"),
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn append_creates_appends_and_never_follows_a_link() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j");
        open_append(&p, "opening")
            .unwrap()
            .write_all(b"a\n")
            .unwrap();
        open_append(&p, "opening")
            .unwrap()
            .write_all(b"b\n")
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"a\nb\n");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let l = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &l).unwrap();
        assert!(open_append(&l, "opening").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(open_append(d.path(), "opening").is_err());
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replaces_and_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.json");
        write_atomic(&p, b"one", Access::Public, "writing").unwrap();
        write_atomic(&p, b"two", Access::Public, "writing").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(entries(d.path()), vec!["out.json"]);
        let s = d.path().join("auth.json");
        write_atomic(&s, b"{}", Access::Private, "writing").unwrap();
        let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_link_at_the_target_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let p = d.path().join("out");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_atomic(&p, b"new", Access::Public, "writing").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&p).unwrap().is_symlink());
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn errors_name_the_target() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("no/such/dir/out");
        let e = write_atomic(&p, b"x", Access::Public, "writing the report").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("writing the report ") && s.contains("no/such/dir/out"),
            "{s}"
        );
    }
}
