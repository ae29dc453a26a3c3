//! The OCI image layout's `index.json` and `oci-layout` files, read and written as skopeo
//! (containers/image 5.34, image-spec 1.1) reads and writes them.
//!
//! skopeo decodes `index.json` into Go's `v1.Index`, changes the list of manifests and
//! marshals it again: unknown fields are dropped, known ones come out in the struct's order
//! with Go's `omitempty` rules. [`Index::to_json`] writes the same bytes. The way a new image
//! is added ([`Index::add`]) is containers/image's `addManifest`: a name given to the new
//! entry is taken away from the entry that had it (that entry stays, unnamed), and an
//! unnamed entry with the same digest is replaced.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::gojson::{self, Obj};

/// `org.opencontainers.image.ref.name`: an image's name in a layout.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `oci-layout` file as skopeo 1.18 writes it (1.9.3 wrote `{"imageLayoutVersion": "1.0.0"}`).
pub(crate) const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// The largest `index.json` ferry reads.
pub(crate) const MAX_INDEX_SIZE: u64 = 64 * 1024 * 1024;

/// Go's `v1.Platform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: String,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub variant: String,
}

impl Platform {
    fn to_json(&self) -> String {
        Obj::new()
            .str("architecture", &self.architecture)
            .str("os", &self.os)
            .str_omitempty("os.version", &self.os_version)
            .strings_omitempty("os.features", self.os_features.as_deref().unwrap_or(&[]))
            .str_omitempty("variant", &self.variant)
            .end()
    }
}

/// Go's `v1.Descriptor`: one entry of `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Entry {
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Base64, as Go's `[]byte` is in JSON.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default, rename = "artifactType")]
    pub artifact_type: String,
}

impl Entry {
    /// A new entry for a manifest, named `name` if given.
    pub(crate) fn new(media_type: &str, digest: &str, size: u64, name: Option<&str>) -> Self {
        Entry {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: size as i64,
            annotations: name.map(|n| BTreeMap::from([(REF_NAME.to_string(), n.to_string())])),
            ..Entry::default()
        }
    }

    /// The image name, if the entry has one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    pub(crate) fn to_json(&self) -> String {
        let mut o = Obj::new()
            .str("mediaType", &self.media_type)
            .str("digest", &self.digest)
            .int("size", self.size)
            .strings_omitempty("urls", self.urls.as_deref().unwrap_or(&[]))
            .map_omitempty(
                "annotations",
                self.annotations.as_ref().unwrap_or(&BTreeMap::new()),
            )
            .str_omitempty("data", self.data.as_deref().unwrap_or(""));
        if let Some(p) = &self.platform {
            o = o.raw("platform", &p.to_json());
        }
        o.str_omitempty("artifactType", &self.artifact_type).end()
    }
}

/// Go's `v1.Index`: `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Index {
    #[serde(default, rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(default, rename = "mediaType")]
    pub media_type: String,
    #[serde(default, rename = "artifactType")]
    pub artifact_type: String,
    /// `None`: absent or `null` (written back as `null`, as Go writes a nil slice).
    #[serde(default)]
    pub manifests: Option<Vec<Entry>>,
    #[serde(default)]
    pub subject: Option<Entry>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// A new, empty index (as skopeo creates one for a new layout).
    pub(crate) fn new() -> Self {
        Index {
            schema_version: 2,
            ..Index::default()
        }
    }

    /// Parse `index.json`.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The entries.
    pub(crate) fn entries(&self) -> &[Entry] {
        self.manifests.as_deref().unwrap_or(&[])
    }

    /// `json.Marshal` of the index, byte for byte.
    pub(crate) fn to_json(&self) -> String {
        let manifests = match &self.manifests {
            None => "null".to_string(),
            Some(m) => gojson::array(&m.iter().map(Entry::to_json).collect::<Vec<_>>()),
        };
        let mut o = Obj::new()
            .int("schemaVersion", self.schema_version)
            .str_omitempty("mediaType", &self.media_type)
            .str_omitempty("artifactType", &self.artifact_type)
            .raw("manifests", &manifests);
        if let Some(s) = &self.subject {
            o = o.raw("subject", &s.to_json());
        }
        o.map_omitempty(
            "annotations",
            self.annotations.as_ref().unwrap_or(&BTreeMap::new()),
        )
        .end()
    }

    /// Add an image's entry as containers/image's `addManifest` does.
    pub(crate) fn add(&mut self, entry: Entry) {
        let list = self.manifests.get_or_insert_with(Vec::new);
        if let Some(name) = entry.name().map(str::to_string) {
            // The name moves to the new entry; the old entry stays, unnamed.
            if let Some(old) = list.iter_mut().find(|m| m.name() == Some(name.as_str()))
                && let Some(a) = old.annotations.as_mut()
            {
                a.remove(REF_NAME);
            }
        }
        if let Some(same) = list
            .iter_mut()
            .find(|m| m.digest == entry.digest && m.name().is_none())
        {
            *same = entry;
            return;
        }
        list.push(entry);
    }

    /// The entry an image reference names: by name, by position, or the only one.
    pub(crate) fn find(
        &self,
        image: Option<&str>,
        position: Option<usize>,
    ) -> Result<&Entry, Lookup> {
        let list = self.entries();
        if let Some(i) = position {
            return list.get(i).ok_or(Lookup::BadPosition {
                position: i,
                count: list.len(),
            });
        }
        match image {
            Some(name) => {
                let mut unsupported = vec![];
                for m in list.iter().filter(|m| m.name() == Some(name)) {
                    if crate::manifest::is_index_type(&m.media_type)
                        || crate::manifest::is_image_type(&m.media_type)
                    {
                        return Ok(m);
                    }
                    unsupported.push(m.media_type.clone());
                }
                if unsupported.is_empty() {
                    Err(Lookup::NotFound)
                } else {
                    Err(Lookup::Unsupported(unsupported))
                }
            }
            None if list.len() == 1 => Ok(&list[0]),
            None => Err(Lookup::NotOne(list.len())),
        }
    }
}

/// Why [`Index::find`] found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No entry has the name.
    NotFound,
    /// Entries with the name are not manifests ferry copies.
    Unsupported(Vec<String>),
    /// No name given, and the layout does not hold exactly one image.
    NotOne(usize),
    /// `@N` past the end.
    BadPosition { position: usize, count: usize },
}

/// Whether `name` is a valid image name in a layout (containers/image's `ValidateImageName`:
/// components of alphanumerics joined by `.`, `_`, `-`, `:`, `@`, `+` or `--`, separated by `/`).
pub(crate) fn valid_image_name(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_alphanumeric();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep.len() == 1 && "-._:@+".contains(sep) || sep == "--") {
                return false;
            }
        }
        true
    }
    !name.is_empty() && name.split('/').all(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:6f4ddf344ad64ab7cd2fc5fc778a90a65647e04d8ece9e579355465b34b8d67e";
    const D2: &str = "sha256:6f13894b2e83cba4deecef4561a85486a020fe5149038dcdbcd26ecf6a7944f8";
    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";

    #[test]
    fn adds_as_skopeo_adds() {
        // The sequence of the side-by-side check in tests/it/transports_oci.rs: v1, v2, v1
        // again, then unnamed; skopeo 1.9.3 and 1.18 both wrote exactly this.
        let mut idx = Index::new();
        idx.add(Entry::new(OCI, D1, 704, Some("v1")));
        idx.add(Entry::new(DOCKER, D2, 732, Some("v2")));
        idx.add(Entry::new(OCI, D1, 704, Some("v1")));
        idx.add(Entry::new(OCI, D1, 704, None));
        let want = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI}","digest":"{D1}","size":704,"annotations":{{"{REF_NAME}":"v1"}}}},{{"mediaType":"{DOCKER}","digest":"{D2}","size":732,"annotations":{{"{REF_NAME}":"v2"}}}},{{"mediaType":"{OCI}","digest":"{D1}","size":704}}]}}"#
        );
        assert_eq!(idx.to_json(), want);
        assert_eq!(Index::parse(want.as_bytes()).unwrap().to_json(), want);
        // A name moves: the old entry stays, unnamed.
        idx.add(Entry::new(DOCKER, D2, 732, Some("v1")));
        let names: Vec<_> = idx.entries().iter().map(|e| e.name()).collect();
        assert_eq!(names, vec![None, Some("v2"), None, Some("v1")]);
    }

    #[test]
    fn round_trips_known_fields_and_drops_unknown() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","x":1,"manifests":[{"mediaType":"m","digest":"sha256:aa","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7","os.features":["f"]},"urls":["u"],"data":"e30=","artifactType":"t","extra":true}],"annotations":{"k":"<v>"}}"#;
        let idx = Index::parse(text.as_bytes()).unwrap();
        assert_eq!(
            idx.to_json(),
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"m","digest":"sha256:aa","size":1,"urls":["u"],"data":"e30=","platform":{"architecture":"arm","os":"linux","os.features":["f"],"variant":"v7"},"artifactType":"t"}],"annotations":{"k":"\u003cv\u003e"}}"#
        );
        assert_eq!(
            Index::parse(br#"{"schemaVersion":2}"#).unwrap().to_json(),
            r#"{"schemaVersion":2,"manifests":null}"#
        );
    }

    #[test]
    fn finds_images() {
        let mut idx = Index::new();
        idx.add(Entry::new(OCI, D1, 704, Some("v1")));
        assert_eq!(idx.find(None, None).unwrap().digest, D1);
        idx.add(Entry::new(DOCKER, D2, 732, Some("v2")));
        assert_eq!(idx.find(None, None), Err(Lookup::NotOne(2)));
        assert_eq!(idx.find(Some("v2"), None).unwrap().digest, D2);
        assert_eq!(idx.find(Some("v3"), None), Err(Lookup::NotFound));
        assert_eq!(idx.find(None, Some(1)).unwrap().digest, D2);
        assert!(matches!(
            idx.find(None, Some(2)),
            Err(Lookup::BadPosition { .. })
        ));
        idx.add(Entry::new("application/x-other", D1, 1, Some("odd")));
        assert!(matches!(
            idx.find(Some("odd"), None),
            Err(Lookup::Unsupported(_))
        ));
    }

    #[test]
    fn image_names() {
        for ok in [
            "v1",
            "latest",
            "ns/app:v1",
            "reg.example.com/ns/app:1.0",
            "a--b",
            "a@sha256:ab",
            "a+b",
        ] {
            assert!(valid_image_name(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "-a", "a..b", "a b", "a---b", "é"] {
            assert!(!valid_image_name(bad), "{bad}");
        }
    }
}
