//! Looking at what the tools left on disk: every file of a directory tree, every entry of a
//! tar archive, with their bytes, for byte-for-byte comparisons between ferry and skopeo.

use std::collections::BTreeMap;
use std::path::Path;

/// Every regular file below `dir`, by path relative to it, with its bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names of the files of a tree, for messages.
pub fn names(t: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    t.keys().map(String::as_str).collect()
}

/// Assert two trees hold the same files with the same bytes (naming the first difference).
#[track_caller]
pub fn assert_same_tree(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_eq!(names(a), names(b), "{what}: different files");
    for (k, v) in a {
        assert!(
            b[k] == *v,
            "{what}: {k} differs:\n{}\nvs\n{}",
            String::from_utf8_lossy(&v[..v.len().min(600)]),
            String::from_utf8_lossy(&b[k][..b[k].len().min(600)])
        );
    }
}

/// The entries of a tar file in order: (name, type flag, bytes).
pub fn tar_entries(file: &Path) -> Vec<(String, u8, Vec<u8>)> {
    use std::io::Read as _;
    let f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut a = tar::Archive::new(f);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type().as_byte();
            let mut data = vec![];
            e.read_to_end(&mut data).unwrap();
            (name, kind, data)
        })
        .collect()
}

/// The JSON document of a file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The gunzipped (or zstd-decompressed) bytes of a blob, or the bytes themselves.
pub fn uncompressed(data: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(data).unwrap()
    } else {
        data.to_vec()
    }
}
