//! Tar archives for `oci-archive:` and `docker-archive:`.
//!
//! Writing: headers exactly as Go's `archive/tar` writes the ones skopeo makes with
//! `tar.FileInfoHeader` (USTAR; octal fields zero-padded and NUL-terminated; checksum as six
//! digits, NUL, space; uid/gid 0 and no user names; PAX records only for what USTAR cannot
//! hold), so that a `docker-archive:` ferry writes is byte for byte the one skopeo writes.
//!
//! Reading: [`TarIndex`] lists an archive's entries once (names cleaned as Go's `path.Clean`
//! does, data offsets, sizes, link targets) without extracting anything; entries are then
//! read in place. Names are only ever compared with names the format defines, never joined to
//! a path on disk, so `..`, absolute names and links cannot reach outside the archive.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};

/// A tar block.
pub(crate) const BLOCK: u64 = 512;

/// The most entries ferry indexes in one archive (a hostile archive cannot exhaust memory).
const MAX_ENTRIES: usize = 1_000_000;

/// Go's `path.Clean` for `/`-separated archive names.
pub(crate) fn clean(name: &str) -> String {
    let rooted = name.starts_with('/');
    let mut parts: Vec<&str> = vec![];
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn octal(field: &mut [u8], value: u64) {
    // Go's formatOctal: zero-padded, leaving room for a NUL; a value that does not fit is 0.
    let digits = field.len() - 1;
    let s = format!("{value:o}");
    let s = if s.len() > digits { "0".to_string() } else { s };
    let padded = format!("{s:0>digits$}");
    field[..digits].copy_from_slice(padded.as_bytes());
    field[digits] = 0;
}

fn string(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
}

fn checksum(block: &mut [u8; 512]) {
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(c)
            }
        })
        .sum();
    octal(&mut block[148..155], sum);
    block[155] = b' ';
}

/// Go's `splitUSTARPath`: a name longer than 100 bytes split into prefix and name at a `/`.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    let len = name.len();
    if len <= 100 || !name.is_ascii() {
        return None;
    }
    let mut i = len.min(156) - 1;
    while i > 0 && name.as_bytes()[i] != b'/' {
        i -= 1;
    }
    let (prefix, rest) = (&name[..i], &name[(i + 1).min(len)..]);
    if i == 0 || prefix.len() > 155 || rest.is_empty() || rest.len() > 100 {
        return None;
    }
    Some((prefix, rest))
}

/// A Go PAX record: `"<len> key=value\n"`, the length counting itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while format!("{n}").len() + body.len() != n {
        n = format!("{n}").len() + body.len();
    }
    format!("{n}{body}")
}

fn padding(size: u64) -> usize {
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// A raw header block for a PAX extended header named after `name`.
fn pax_header(name: &str, data: &str) -> Vec<u8> {
    let (dir, file) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let mut pax_name = clean(&format!("{dir}PaxHeaders.0/{file}"));
    pax_name.truncate(100);
    let mut block = [0u8; 512];
    string(&mut block[0..100], pax_name.trim_end_matches('/'));
    octal(&mut block[100..108], 0);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], data.len() as u64);
    octal(&mut block[136..148], 0);
    block[156] = b'x';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    checksum(&mut block);
    let mut out = block.to_vec();
    out.extend_from_slice(data.as_bytes());
    out.extend(std::iter::repeat_n(0u8, padding(data.len() as u64)));
    out
}

/// The header (and, if needed, PAX header before it) of an entry as skopeo's
/// `tar.FileInfoHeader` + `WriteHeader` write it: a regular file of `size` bytes with mode
/// 0444, or (`link` given) a symbolic link with mode 0; mtime 0, uid/gid 0.
pub(crate) fn header(name: &str, size: u64, link: Option<&str>) -> Vec<u8> {
    match link {
        Some(_) => entry_header(name, 0, 0, b'2', link),
        None => entry_header(name, size, 0o444, b'0', None),
    }
}

/// A header for a regular file (`typeflag` `0`), directory (`5`, name ending in `/`) or
/// symbolic link (`2`) with `mode`, mtime 0 and uid/gid 0, as Go writes it.
pub(crate) fn entry_header(
    name: &str,
    size: u64,
    mode: u64,
    typeflag: u8,
    link: Option<&str>,
) -> Vec<u8> {
    // Go's allowedFormats: USTAR when every field fits (a long name split into prefix and
    // name), else PAX with a record for each field that does not fit.
    let long_name = name.len() > 100 || !name.is_ascii();
    let long_link = link.is_some_and(|l| l.len() > 100 || !l.is_ascii());
    let big = size > 0o777_7777_7777;
    let split = if long_name { split_ustar(name) } else { None };
    let mut out = vec![];
    let (mut prefix, mut short) = ("", name);
    if (long_name && split.is_none()) || long_link || big {
        let mut paxes = vec![];
        if long_link {
            paxes.push(pax_record("linkpath", link.unwrap_or_default()));
        }
        if long_name {
            paxes.push(pax_record("path", name));
        }
        if big {
            paxes.push(pax_record("size", &size.to_string()));
        }
        out = pax_header(name, &paxes.concat());
    } else if let Some((p, n)) = split {
        (prefix, short) = (p, n);
    }
    let mut block = [0u8; 512];
    string(&mut block[0..100], short);
    octal(&mut block[100..108], mode);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0);
    block[156] = typeflag;
    string(&mut block[157..257], link.unwrap_or_default());
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], 0);
    octal(&mut block[337..345], 0);
    string(&mut block[345..500], prefix);
    checksum(&mut block);
    out.extend_from_slice(&block);
    out
}

/// The zeros after an entry's data of `size` bytes.
pub(crate) fn data_padding(size: u64) -> Vec<u8> {
    vec![0u8; padding(size)]
}

/// The end of an archive, as Go's `tar.Writer.Close` writes it: two zero blocks.
pub(crate) fn trailer() -> Vec<u8> {
    vec![0u8; 1024]
}

/// What an entry of an archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A symbolic link to the (uncleaned) target.
    Symlink(String),
    /// Anything else (directories, hard links, devices…).
    Other,
}

/// One entry of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// Where its data starts in the archive file.
    pub offset: u64,
    /// Its data's size.
    pub size: u64,
}

/// The entries of an uncompressed tar file, by cleaned name (the first of several entries
/// with one name wins, as skopeo's reader finds the first).
#[derive(Debug)]
pub(crate) struct TarIndex {
    entries: HashMap<String, Entry>,
}

impl TarIndex {
    /// Read the headers of the archive at `path` (seeking over the data).
    pub(crate) fn read(path: &Path) -> Result<TarIndex> {
        let bad = |reason: String| {
            Error::io(
                "reading archive",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
            )
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io("reading archive", path, e))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut count = 0usize;
        for entry in archive
            .entries_with_seek()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?
        {
            let entry = entry.map_err(|e| bad(format!("not a valid tar archive: {e}")))?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Symlink => Kind::Symlink(
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default(),
                ),
                _ => Kind::Other,
            };
            let e = Entry {
                kind,
                offset: entry.raw_file_position(),
                size: entry.size(),
            };
            entries.entry(name).or_insert(e);
        }
        Ok(TarIndex { entries })
    }

    /// The regular file at `name`, following one symbolic link inside the archive as skopeo
    /// does (`path.Join(path.Dir(name), target)`); `None` when there is none.
    pub(crate) fn file(&self, name: &str) -> std::result::Result<Option<&Entry>, String> {
        let name = clean(name);
        let Some(e) = self.entries.get(&name) else {
            return Ok(None);
        };
        let e = match &e.kind {
            Kind::Symlink(target) => {
                let dir = match name.rfind('/') {
                    Some(i) => &name[..i],
                    None => ".",
                };
                let Some(t) = self.entries.get(&clean(&format!("{dir}/{target}"))) else {
                    return Ok(None);
                };
                t
            }
            _ => e,
        };
        if e.kind != Kind::File {
            return Err(format!("{name} is not a regular file"));
        }
        Ok(Some(e))
    }
}

/// Open the archive at `path` positioned at an entry's data.
pub(crate) fn open_entry(path: &Path, e: &Entry) -> Result<std::fs::File> {
    let mut f = std::fs::File::open(path).map_err(|err| Error::io("reading archive", path, err))?;
    f.seek(SeekFrom::Start(e.offset))
        .map_err(|err| Error::io("reading archive", path, err))?;
    Ok(f)
}

/// Read an entry whole, refusing one larger than `limit`.
pub(crate) fn read_entry(path: &Path, e: &Entry, limit: u64) -> Result<Vec<u8>> {
    if e.size > limit {
        return Err(Error::io(
            "reading archive",
            path,
            std::io::Error::other(format!("an entry of {} bytes, more than {limit}", e.size)),
        ));
    }
    let mut buf = Vec::with_capacity(e.size as usize);
    open_entry(path, e)?
        .take(e.size)
        .read_to_end(&mut buf)
        .map_err(|err| Error::io("reading archive", path, err))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_as_go() {
        for (i, o) in [
            ("a/b/../c", "a/c"),
            ("./index.json", "index.json"),
            ("/x/../../y", "/y"),
            ("../x", "../x"),
            ("a//b/", "a/b"),
            ("", "."),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn headers_are_go_s() {
        // The header skopeo (Go's archive/tar) wrote for `repositories` (96 bytes) in a
        // docker-archive: checked against skopeo's archive in tests/it/transports_archive.rs.
        let h = header("repositories", 96, None);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[100..108], b"0000444\0");
        assert_eq!(&h[124..136], b"00000000140\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
        let l = header("abc/layer.tar", 0, Some("../x.tar"));
        assert_eq!(l[156], b'2');
        assert_eq!(&l[100..108], b"0000000\0");
        // The tar crate reads them back.
        let mut data = header("dir/file", 3, None);
        data.extend_from_slice(b"abc");
        data.extend(data_padding(3));
        data.extend(header(&format!("{}/long", "d".repeat(120)), 0, None));
        data.extend(trailer());
        let mut a = tar::Archive::new(&data[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            vec!["dir/file".to_string(), format!("{}/long", "d".repeat(120))]
        );
        assert_eq!(pax_record("path", "x"), "9 path=x\n");
        assert_eq!(pax_record("size", "12345678901"), "20 size=12345678901\n");
    }

    #[test]
    fn index_follows_links_inside_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut data = vec![];
        let mut add = |name: &str, body: &[u8], link: Option<&str>| {
            data.extend(header(name, body.len() as u64, link));
            data.extend_from_slice(body);
            data.extend(data_padding(body.len() as u64));
        };
        add("x.tar", b"layer", None);
        add("id/layer.tar", b"", Some("../x.tar"));
        add("evil/layer.tar", b"", Some("../../../etc/passwd"));
        add("../escape", b"no", None);
        add("x.tar", b"second", None);
        data.extend(trailer());
        std::fs::write(&path, &data).unwrap();
        let idx = TarIndex::read(&path).unwrap();
        let e = idx.file("id/layer.tar").unwrap().unwrap();
        assert_eq!(read_entry(&path, e, 100).unwrap(), b"layer");
        assert!(idx.file("evil/layer.tar").unwrap().is_none());
        assert!(idx.file("/etc/passwd").unwrap().is_none());
        assert!(idx.file("escape").unwrap().is_none());
        assert!(read_entry(&path, idx.file("./x.tar").unwrap().unwrap(), 2).is_err());
    }
}
