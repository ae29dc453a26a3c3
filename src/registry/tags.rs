//! Bounding what a tag list may cost: a registry chooses how many tags it sends, in how many
//! pages, so the memory they take is capped ([`TagBudget`], `FERRY_MAX_TAG_DATA`).
//!
//! "Tag data" is the memory the tag list takes while it is read: each page's body as received,
//! and every tag kept (its bytes, plus [`PER_TAG`] bytes of bookkeeping: the string's header
//! and the allocator's share), plus the list's own slots. Pages are parsed tag by tag against
//! the budget, so peak memory stays close to the limit, not a multiple of it.

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

use super::errors::status_error;
use super::transport::{Body, Request};
use super::{Client, Scope};
use url::Url;

use crate::error::{Error, Result};

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The environment variable that sets the limit.
pub const LIMIT_ENV: &str = "FERRY_MAX_TAG_DATA";
/// The default limit: 64 MiB.
pub const DEFAULT_LIMIT: usize = 64 << 20;
/// What keeping one tag costs beyond its bytes.
pub const PER_TAG: usize = 32;

/// The memory budget of one tag list.
#[derive(Debug, Clone)]
pub struct TagBudget {
    limit: usize,
}

/// The budget ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// The limit, bytes.
    pub limit: usize,
    /// Tags read before it ran out.
    pub tags: usize,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "its tags take more than the {} allowed for tag data ({} tags read); set {LIMIT_ENV} to allow more (e.g. {LIMIT_ENV}={})",
            size_text(self.limit),
            self.tags,
            size_text(self.limit.saturating_mul(4))
        )
    }
}

impl TagBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        TagBudget { limit }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What `tags` cost now (its capacity counts, hence a `Vec`).
    #[allow(clippy::ptr_arg)]
    pub fn cost(tags: &Vec<String>) -> usize {
        tags.capacity() * std::mem::size_of::<String>()
            + tags.iter().map(|t| t.len() + PER_TAG).sum::<usize>()
    }

    /// How many bytes the next page's body may have, given the tags held so far.
    pub fn room(&self, held: usize) -> usize {
        self.limit.saturating_sub(held)
    }

    /// Parse one page (`{"tags": [...]}`, other keys ignored, `tags` may be null) into
    /// `tags`, tag by tag; `held` is the cost of `tags` before, updated as it grows. The
    /// body's own `body_len` bytes count while it is parsed.
    pub fn parse_page(
        &self,
        body: &[u8],
        tags: &mut Vec<String>,
        held: &mut usize,
    ) -> Result<(), PageError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let seed = Page {
            tags,
            held,
            budget: self.limit.saturating_sub(body.len()),
            limit: self.limit,
        };
        let r = seed.deserialize(&mut de).and_then(|()| de.end());
        match r {
            Ok(()) => Ok(()),
            Err(e) => match OVER.with(|o| o.take()) {
                Some(over) => Err(PageError::Over(over)),
                None => Err(PageError::Json(e.to_string())),
            },
        }
    }
}

/// Why a page was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// The budget ran out.
    Over(OverBudget),
    /// Not the JSON of a tag list.
    Json(String),
}

thread_local! {
    /// The budget error, carried out of serde (whose errors are strings).
    static OVER: std::cell::Cell<Option<OverBudget>> = const { std::cell::Cell::new(None) };
}

struct Page<'a> {
    tags: &'a mut Vec<String>,
    held: &'a mut usize,
    /// What the tags may cost while the body is held.
    budget: usize,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tag list object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Page {
            tags,
            held,
            budget,
            limit,
        } = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "tags" {
                map.next_value_seed(TagSeq {
                    tags: &mut *tags,
                    held: &mut *held,
                    budget,
                    limit,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct TagSeq<'a> {
    tags: &'a mut Vec<String>,
    held: &'a mut usize,
    budget: usize,
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for TagSeq<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TagSeq<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of tags or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let slot = std::mem::size_of::<String>();
        while let Some(tag) = seq.next_element::<String>()? {
            let grows = self.tags.len() == self.tags.capacity();
            let extra_slots = if grows {
                self.tags.capacity().max(4)
            } else {
                0
            };
            let next = *self.held + tag.len() + PER_TAG + extra_slots * slot;
            if next > self.budget {
                OVER.with(|o| {
                    o.set(Some(OverBudget {
                        limit: self.limit,
                        tags: self.tags.len(),
                    }));
                });
                return Err(serde::de::Error::custom("over the tag data limit"));
            }
            let (before, len) = (self.tags.capacity(), tag.len());
            self.tags.push(tag);
            *self.held += len + PER_TAG + (self.tags.capacity() - before) * slot;
        }
        Ok(())
    }
}

/// `64 MiB`, `1 GiB`, or bytes.
pub fn size_text(n: usize) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Parse a size: bytes, or a number with `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 64MiB, 1GiB, 1048576)"))?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(format!("{s:?} is not a size (e.g. 64MiB, 1GiB, 1048576)")),
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("{s:?} is not a usable size"))
}

/// The limit `FERRY_MAX_TAG_DATA` sets (the value the command line read), or the default.
pub fn limit_from(value: Option<&str>) -> Result<usize, String> {
    match value {
        Some(v) if !v.trim().is_empty() => parse_size(v).map_err(|e| format!("{LIMIT_ENV}: {e}")),
        _ => Ok(DEFAULT_LIMIT),
    }
}

impl Client {
    /// `GET /v2/<repo>/tags/list`, following `Link` pagination (a loop of links is refused).
    /// The tags may take at most [`ClientOptions::max_tag_data`] of memory, pages included.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let loc = self.location(repo);
        let op = "listing tags".to_string();
        let mut url = self.url(&format!("{repo}/tags/list")).await?;
        let mut seen = std::collections::HashSet::new();
        let budget = TagBudget::new(self.max_tag_data);
        let mut tags = Vec::new();
        let mut held = 0usize;
        let over = |o: OverBudget| Error::Invalid {
            what: "tag list".into(),
            location: loc.clone(),
            reason: o.to_string(),
        };
        loop {
            if !seen.insert(url.to_string()) || seen.len() > 10_000 {
                return Err(Error::Invalid {
                    what: "tag list".into(),
                    location: loc,
                    reason: "its Link pagination loops".into(),
                });
            }
            let room = budget.room(held).min(64 << 20);
            let answer = self
                .send_read(
                    Request {
                        method: Method::GET,
                        url: url.clone(),
                        scope: &Scope::pull(repo),
                        headers: HeaderMap::new(),
                        body: Body::Empty,
                        op: &op,
                        repo,
                    },
                    room,
                    "tag list",
                )
                .await;
            let answer = match answer {
                Ok(Ok(a)) => a,
                Ok(Err(resp)) => return Err(status_error(resp, &op, &loc).await),
                // A page that does not fit in what is left of the budget.
                Err(Error::Invalid { .. }) if room < (64 << 20) => {
                    return Err(over(OverBudget {
                        limit: budget.limit(),
                        tags: tags.len(),
                    }));
                }
                Err(e) => return Err(e),
            };
            let next = answer
                .headers
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link);
            match budget.parse_page(&answer.body, &mut tags, &mut held) {
                Ok(()) => {}
                Err(PageError::Over(o)) => return Err(over(o)),
                Err(PageError::Json(e)) => {
                    return Err(Error::Invalid {
                        what: "tag list".into(),
                        location: loc.clone(),
                        reason: format!("not valid JSON: {e}"),
                    });
                }
            }
            drop(answer);
            match next {
                // As skopeo: only the path and query of the link, asked of the registry itself
                // (a link to another scheme, host or port never gets the credentials).
                Some(n) => url = self.resolve(&link_path(&url, &n)).await?,
                None => break,
            }
        }
        Ok(tags)
    }

    /// Whether the repository exists. `Some(false)` only when the registry says so
    /// (`GET …/tags/list` answers 404 `NAME_UNKNOWN`): then no blob can be found in it and
    /// looking for each one is wasted. `None` when the registry does not tell (or the probe
    /// failed: it is only an optimisation).
    pub async fn repository_exists(&self, repo: &str, scope: &Scope) -> Option<bool> {
        let loc = self.location(repo);
        let mut url = self.url(&format!("{repo}/tags/list")).await.ok()?;
        url.query_pairs_mut().append_pair("n", "1");
        let resp = self
            .send_small(Request {
                method: Method::GET,
                url,
                scope,
                headers: HeaderMap::new(),
                body: Body::Empty,
                op: "checking the repository",
                repo,
            })
            .await
            .ok()?;
        match resp.status() {
            s if s.is_success() => Some(true),
            StatusCode::NOT_FOUND => {
                match status_error(resp, "checking the repository", &loc).await {
                    Error::Registry { detail, .. }
                        if detail.code.as_deref() == Some("NAME_UNKNOWN") =>
                    {
                        Some(false)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// The path and query of a `Link` target (resolved against the page that sent it), to be
/// asked of the registry's own base URL whatever scheme, host or port the link names.
pub fn link_path(page: &Url, link: &str) -> String {
    match page.join(link) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => link.to_string(),
    }
}

/// Parse `Link: </v2/x/tags/list?n=1&last=a>; rel="next"`.
pub fn parse_next_link(v: &str) -> Option<String> {
    for part in v.split(',') {
        let part = part.trim();
        let (target, params) = part.split_once(';').unwrap_or((part, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            return Some(target.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        assert_eq!(
            parse_next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#),
            Some("/v2/a/tags/list?last=x&n=2".into())
        );
        assert_eq!(parse_next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(parse_next_link("garbage"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "MiB", "1TB", "-1", "0", "1.5MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(size_text(64 << 20), "64MiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    #[test]
    fn pages_fill_the_budget_and_no_more() {
        let b = TagBudget::new(4096);
        let mut tags = Vec::new();
        let mut held = 0;
        b.parse_page(
            br#"{"name":"a/b","tags":["v1","v2"]}"#,
            &mut tags,
            &mut held,
        )
        .unwrap();
        b.parse_page(br#"{"tags":null}"#, &mut tags, &mut held)
            .unwrap();
        assert_eq!(tags, vec!["v1", "v2"]);
        assert_eq!(held, TagBudget::cost(&tags));
        let many = format!(
            r#"{{"tags":[{}]}}"#,
            (0..200)
                .map(|i| format!("\"t{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let e = b
            .parse_page(many.as_bytes(), &mut tags, &mut held)
            .unwrap_err();
        match e {
            PageError::Over(o) => {
                assert_eq!(o.limit, 4096);
                assert!(o.tags > 2 && o.tags < 200, "{o:?}");
                let text = o.to_string();
                assert!(
                    text.contains("4KiB allowed for tag data")
                        && text.contains("FERRY_MAX_TAG_DATA=16KiB"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(TagBudget::cost(&tags) <= 4096);
        assert!(matches!(
            b.parse_page(b"<html>", &mut Vec::new(), &mut 0),
            Err(PageError::Json(_))
        ));
        assert!(matches!(
            b.parse_page(br#"{"tags":[1]}"#, &mut Vec::new(), &mut 0),
            Err(PageError::Json(_))
        ));
    }
}
