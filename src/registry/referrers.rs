//! What is attached to an image in a registry, as the OCI distribution spec 1.1 and cosign
//! store it:
//!
//! - the referrers API, `GET /v2/<repo>/referrers/<digest>[?artifactType=…]`: an image index
//!   whose entries are the manifests whose `subject` is `<digest>` (a registry without it
//!   answers 404; one that applied the filter says so in `OCI-Filters-Applied`; the list may
//!   be paginated with `Link`);
//! - the fallback tag schema for registries without the API: the same index, tagged
//!   `<alg>-<hex>` (`sha256-<hex>`), maintained by the clients that push referrers;
//! - cosign's tags, `sha256-<hex>.sig`, `.att`, `.sbom`, looked up in the repository's tag
//!   list, which is read once per repository and kept ([`Client::cached_tags`]).
//!
//! Whether a registry has the API is learnt once per registry and process (the first 404
//! settles it; `sync` has a client per repository), so a registry without it costs one request
//! per run, not one per manifest or image.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Body, Client, Request, Scope, parse_next_link, status_error};
use crate::error::{Error, Result};
use crate::image::ReferrerEntry;
use crate::manifest::{self, Descriptor, Kind, Manifest};
use crate::reference::Digest;

/// The header a registry with the referrers API sends when it indexed a pushed manifest's
/// `subject`.
pub const OCI_SUBJECT: &str = "oci-subject";
/// The header saying which filters a referrers answer applied.
pub const OCI_FILTERS_APPLIED: &str = "oci-filters-applied";
/// The largest referrers list page ferry reads.
const MAX_PAGE: usize = 4 << 20;
/// The most pages of one referrers list.
const MAX_PAGES: usize = 100;
/// The most referrers of one manifest ferry accepts.
pub const MAX_REFERRERS: usize = 10_000;

// 0: not known yet.
const API: u8 = 1;
const NO_API: u8 = 2;

type TagCell = Arc<tokio::sync::OnceCell<Arc<Vec<String>>>>;

/// Per-client state: tag lists read once.
#[derive(Default)]
pub struct Cache {
    tags: Mutex<HashMap<String, TagCell>>,
}

/// Whether a registry has the referrers API is a property of the registry, not of a client:
/// `sync` has one client per repository, and learns it once for all of them.
struct ApiState {
    api: AtomicU8,
    /// Held while the first referrers request finds out whether the API exists, so that
    /// concurrent copies wait for its answer instead of each probing.
    probe: tokio::sync::Mutex<()>,
}

/// The registries (API hosts) this process has asked.
static API_STATES: std::sync::LazyLock<Mutex<HashMap<String, Arc<ApiState>>>> =
    std::sync::LazyLock::new(Mutex::default);

fn api_state(host: &str) -> Arc<ApiState> {
    API_STATES
        .lock()
        .expect("referrers API states")
        .entry(host.to_string())
        .or_insert_with(|| {
            Arc::new(ApiState {
                api: AtomicU8::new(0),
                probe: tokio::sync::Mutex::new(()),
            })
        })
        .clone()
}

/// The fallback tag of a manifest's referrers: `<alg>-<hex>` (the algorithm cut to 32
/// characters, the hex to 64, as the spec says).
pub fn fallback_tag(digest: &Digest) -> String {
    let alg: String = digest.algorithm().chars().take(32).collect();
    let hex: String = digest.hex().chars().take(64).collect();
    format!("{alg}-{hex}")
}

/// cosign's tag for an attachment of `digest`: `sha256-<hex>.<suffix>` (`sig`, `att`, `sbom`).
pub fn cosign_tag(digest: &Digest, suffix: &str) -> String {
    format!("{}.{suffix}", fallback_tag(digest))
}

/// Whether a tag has the shape of an attachment: `sha256-<64 hex>`, optionally `.sig`,
/// `.att` or `.sbom`.
pub fn is_attachment_tag(tag: &str) -> bool {
    let base = ["sig", "att", "sbom"]
        .iter()
        .find_map(|s| tag.strip_suffix(&format!(".{s}")))
        .unwrap_or(tag);
    base.strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `tags` without attachment tags (which travel with their images), logged.
pub fn without_attachment_tags(tags: Vec<String>) -> Vec<String> {
    let before = tags.len();
    let images: Vec<String> = tags.into_iter().filter(|t| !is_attachment_tag(t)).collect();
    if images.len() < before {
        log::debug!(
            "{} attachment tag(s) travel with their images",
            before - images.len()
        );
    }
    images
}

/// The entries of a referrers index (the API's answer or the fallback tag's manifest).
pub fn parse_entries(bytes: &[u8]) -> std::result::Result<Vec<ReferrerEntry>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let list = match doc.get("manifests") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("\"manifests\" is not a list".into()),
    };
    if list.len() > MAX_REFERRERS {
        return Err(format!("more than {MAX_REFERRERS} referrers"));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let descriptor =
                manifest::descriptor(v, &format!("manifests[{i}]")).map_err(|e| e.to_string())?;
            let artifact_type = v
                .get("artifactType")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            Ok(ReferrerEntry {
                descriptor,
                artifact_type,
            })
        })
        .collect()
}

/// The entry describing `m` in a referrers index: media type, digest, size, artifact type
/// and annotations, as the spec wants them.
pub fn entry_json(m: &Manifest) -> Value {
    let info = m.artifact().unwrap_or_default();
    let mut e = serde_json::Map::new();
    e.insert("mediaType".into(), Value::String(m.media_type.clone()));
    e.insert("digest".into(), Value::String(m.digest.to_string()));
    e.insert("size".into(), Value::from(m.bytes.len() as u64));
    if let Some(t) = info.artifact_type {
        e.insert("artifactType".into(), Value::String(t));
    }
    if let Some(a) = info.annotations {
        e.insert("annotations".into(), Value::Object(a));
    }
    Value::Object(e)
}

/// Keep the entries whose artifact type is one of `types` (all when `types` is empty).
pub fn filter_entries(entries: Vec<ReferrerEntry>, types: &[String]) -> Vec<ReferrerEntry> {
    if types.is_empty() {
        return entries;
    }
    entries
        .into_iter()
        .filter(|e| e.artifact_type.as_ref().is_some_and(|t| types.contains(t)))
        .collect()
}

impl Client {
    /// The repository's tags, listed once per client and kept (a repository that does not
    /// exist has none).
    pub async fn cached_tags(&self, repo: &str) -> Result<Arc<Vec<String>>> {
        let cell = self
            .attachments
            .tags
            .lock()
            .expect("tag cache")
            .entry(repo.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            match self.list_tags(repo).await {
                Ok(t) => Ok(Arc::new(t)),
                Err(Error::Registry { status: 404, .. }) => Ok(Arc::new(vec![])),
                Err(e) => Err(e),
            }
        })
        .await
        .cloned()
    }

    /// `GET /v2/<repo>/referrers/<digest>`: the referrers list, `None` when the registry has
    /// no referrers API (learnt from the first 404 and remembered). `types` is passed on as
    /// `artifactType`; a registry that did not apply it (no `OCI-Filters-Applied`) returns
    /// the whole list, which the caller filters.
    pub async fn api_referrers(
        &self,
        repo: &str,
        digest: &Digest,
        types: &[String],
        scope: &Scope,
    ) -> Result<Option<Vec<ReferrerEntry>>> {
        let state = api_state(self.host());
        let _probing = match state.api.load(Ordering::Relaxed) {
            API => None,
            _ => Some(state.probe.lock().await),
        };
        if state.api.load(Ordering::Relaxed) == NO_API {
            return Ok(None);
        }
        let loc = self.location(repo);
        let op = format!("listing the referrers of {}", digest.short());
        let mut url = self.url(&format!("{repo}/referrers/{digest}")).await?;
        if !types.is_empty() {
            let mut q = url.query_pairs_mut();
            for t in types {
                q.append_pair("artifactType", t);
            }
        }
        let mut entries = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.to_string()) || seen.len() > MAX_PAGES {
                return Err(Error::Invalid {
                    what: format!("referrers list of {}", digest.short()),
                    location: loc,
                    reason: "its Link pagination loops or has too many pages".into(),
                });
            }
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCEPT,
                HeaderValue::from_static(manifest::OCI_INDEX),
            );
            let answer = self
                .send_read(
                    Request {
                        method: Method::GET,
                        url: url.clone(),
                        scope,
                        headers: h,
                        body: Body::Empty,
                        op: &op,
                        repo,
                    },
                    MAX_PAGE,
                    "referrers list",
                )
                .await?;
            let answer = match answer {
                Ok(a) => a,
                Err(resp)
                    if entries.is_empty()
                        && matches!(
                            resp.status(),
                            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                        ) =>
                {
                    log::debug!(
                        "{}: no referrers API (HTTP {}); using the fallback tag",
                        self.registry(),
                        resp.status().as_u16()
                    );
                    state.api.store(NO_API, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(resp) => return Err(status_error(resp, &op, &loc).await),
            };
            state.api.store(API, Ordering::Relaxed);
            let filtered = answer
                .headers
                .get(OCI_FILTERS_APPLIED)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            let page = parse_entries(&answer.body).map_err(|reason| Error::Invalid {
                what: format!("referrers list of {}", digest.short()),
                location: loc.clone(),
                reason,
            })?;
            // Unfiltered pages go to the caller whole: it filters, and counts what it left.
            if !types.is_empty() && !filtered {
                log::debug!(
                    "{}: the registry did not filter the referrers of {} by artifact type",
                    self.registry(),
                    digest.short()
                );
            }
            entries.extend(page);
            if entries.len() > MAX_REFERRERS {
                return Err(Error::Invalid {
                    what: format!("referrers list of {}", digest.short()),
                    location: loc,
                    reason: format!("more than {MAX_REFERRERS} referrers"),
                });
            }
            let next = answer
                .headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link);
            match next {
                Some(n) => url = self.resolve(&n).await?,
                None => return Ok(Some(entries)),
            }
        }
    }

    /// The manifest a tag names, `None` when the tag does not exist.
    pub async fn manifest_if_tagged(&self, repo: &str, tag: &str) -> Result<Option<Manifest>> {
        match self.get_manifest(repo, tag).await {
            Ok(m) => Ok(Some(m)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The fallback index of `digest`'s referrers (`None` when the tag does not exist); the
    /// tag must hold an index.
    pub async fn fallback_index(&self, repo: &str, digest: &Digest) -> Result<Option<Manifest>> {
        let tag = fallback_tag(digest);
        let Some(m) = self.manifest_if_tagged(repo, &tag).await? else {
            return Ok(None);
        };
        if !matches!(m.kind, Kind::Index { .. }) {
            return Err(Error::Invalid {
                what: format!("referrers fallback tag {tag}"),
                location: self.location(repo),
                reason: format!(
                    "it holds a {}, not an image index",
                    manifest::type_name(&m.media_type)
                ),
            });
        }
        Ok(Some(m))
    }

    /// Push a referrer of `subject` by digest; `true` when the registry indexed it itself
    /// (`OCI-Subject: <subject>` in its answer, the referrers API).
    pub async fn put_referrer(&self, repo: &str, subject: &Digest, m: &Manifest) -> Result<bool> {
        let headers = self
            .put_manifest_headers(repo, m.digest.as_str(), m)
            .await?;
        Ok(headers
            .get(OCI_SUBJECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == subject.as_str()))
    }

    /// Add `referrers` to the fallback index of `subject` (created when absent), keeping every
    /// entry already there; nothing is written when they are all listed.
    pub async fn merge_fallback(
        &self,
        repo: &str,
        subject: &Digest,
        referrers: &[Manifest],
    ) -> Result<()> {
        let current = self.fallback_index(repo, subject).await?;
        let mut entries: Vec<Value> = match &current {
            Some(m) => serde_json::from_slice::<Value>(&m.bytes)
                .ok()
                .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
                .unwrap_or_default(),
            None => vec![],
        };
        let listed: std::collections::HashSet<String> = entries
            .iter()
            .filter_map(|e| e.get("digest").and_then(Value::as_str).map(str::to_string))
            .collect();
        let mut added = 0;
        for m in referrers {
            if !listed.contains(m.digest.as_str()) {
                entries.push(entry_json(m));
                added += 1;
            }
        }
        if added == 0 && current.is_some() {
            return Ok(());
        }
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": entries,
        });
        let bytes = bytes::Bytes::from(serde_json::to_vec(&doc).expect("JSON"));
        let index =
            manifest::parse(bytes, Some(manifest::OCI_INDEX)).map_err(|reason| Error::Invalid {
                what: format!("referrers fallback index of {}", subject.short()),
                location: self.location(repo),
                reason: reason.to_string(),
            })?;
        log::debug!(
            "{}/{repo}: fallback tag {} now lists {} referrer(s)",
            self.registry(),
            fallback_tag(subject),
            entries.len()
        );
        self.put_manifest(repo, &fallback_tag(subject), &index)
            .await
    }

    /// The referrers of `digest` in `repo`: from the API, else from the fallback tag (looked
    /// up in the tag list when `tags` is given, else fetched directly). The list may hold
    /// more than `types` (see [`Client::api_referrers`]; the fallback index is not filtered).
    pub async fn referrers_of(
        &self,
        repo: &str,
        digest: &Digest,
        types: &[String],
        scope: &Scope,
        tags: Option<&[String]>,
    ) -> Result<Vec<ReferrerEntry>> {
        if let Some(list) = self.api_referrers(repo, digest, types, scope).await? {
            return Ok(list);
        }
        if let Some(tags) = tags
            && !tags.iter().any(|t| *t == fallback_tag(digest))
        {
            return Ok(vec![]);
        }
        let Some(index) = self.fallback_index(repo, digest).await? else {
            return Ok(vec![]);
        };
        let entries = parse_entries(&index.bytes).map_err(|reason| Error::Invalid {
            what: format!("referrers fallback tag {}", fallback_tag(digest)),
            location: self.location(repo),
            reason,
        })?;
        Ok(entries)
    }
}

/// Descriptors of an index's entries, for messages.
pub fn describe(d: &Descriptor) -> String {
    format!("{} ({} bytes)", d.digest, d.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(fallback_tag(&d), format!("sha256-{}", "ab".repeat(32)));
        assert_eq!(
            cosign_tag(&d, "sig"),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        assert!(is_attachment_tag(&cosign_tag(&d, "att")));
        assert!(is_attachment_tag(&fallback_tag(&d)));
        assert!(!is_attachment_tag("sha256-abc.sig"));
        assert!(!is_attachment_tag(&format!(
            "sha256-{}.txt",
            "ab".repeat(32)
        )));
        assert!(!is_attachment_tag("v1"));
    }

    #[test]
    fn entries_and_filters() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":10,"artifactType":"application/spdx+json"}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":11,"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","annotations":{{"a":"b"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let e = parse_entries(index.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].descriptor.size, 11);
        let sbom = filter_entries(e.clone(), &["application/spdx+json".into()]);
        assert_eq!(sbom.len(), 1);
        assert_eq!(sbom[0].descriptor.digest.to_string(), d('a'));
        assert_eq!(filter_entries(e, &[]).len(), 2);
        assert!(parse_entries(b"{}").unwrap().is_empty());
        assert!(parse_entries(br#"{"manifests":[{"digest":"x"}]}"#).is_err());
        assert!(parse_entries(br#"{"manifests":{}}"#).is_err());
    }
}
