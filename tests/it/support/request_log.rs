//! The request log of a lab registry: every request it completed, parsed from its access log.
//!
//! distribution wraps its handler in gorilla's `CombinedLoggingHandler(os.Stdout, …)`: every
//! request gives one Apache combined log line on **stdout** (its own logs go to stderr). A reader
//! thread collects those lines. A line is written only after the handler returns, so it can lag
//! behind the client seeing the response. To make [`Registry::requests`](super::Registry::requests) deterministic without
//! sleeping, the lab sends a *sentinel* request (`GET /v2/?lab-sentinel=<unique>`, with the
//! lab's User-Agent) once the client under test has finished, and waits until the sentinel's
//! line shows up: everything logged before it is the complete history of requests that had
//! finished before the sentinel was sent. (Go's server flushes the last buffered bytes of a
//! response after the handler, and so after the log line, returns; only the final bytes of a
//! large body written straight through could reach a client first, and then the log write is a
//! few instructions away while the sentinel needs a new connection and a full request.) A
//! request the client abandoned half-way (a dropped connection during a blob upload) may still
//! be running in the registry and be logged after the sentinel, i.e. in the next interval.
//! Lines carrying the lab's User-Agent (sentinels, readiness probes, the lab's own checks) are
//! left out of the result.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use url::form_urlencoded;

/// A position in the request log, from [`Registry::mark`](super::Registry::mark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark(pub(super) usize);

/// One request as the registry logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// The path without the query, as sent (not percent-decoded).
    pub path: String,
    /// The raw query string without `?` (empty if none).
    pub query: String,
    pub status: u16,
    /// Size of the response body.
    pub bytes: u64,
    pub user_agent: String,
    /// The raw log line.
    pub line: String,
}

/// What a registry API request was, from its method, path and query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `GET /v2/`
    Ping,
    ManifestGet,
    ManifestHead,
    ManifestPut,
    ManifestDelete,
    BlobGet,
    BlobHead,
    BlobDelete,
    /// `POST /v2/<name>/blobs/uploads/?mount=…&from=…`; status 201 = mounted, 202 = the
    /// registry fell back to an upload.
    BlobMount,
    /// `POST /v2/<name>/blobs/uploads/` (without `mount`).
    UploadStart,
    /// `PATCH` on an upload.
    UploadChunk,
    /// `PUT` on an upload (`?digest=…`), completing it.
    UploadFinish,
    /// `GET`/`DELETE` of an upload's status / cancellation.
    UploadOther,
    TagsList,
    Catalog,
    Other,
}

impl LoggedRequest {
    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The repository name the request is about (`ns/app`), if any.
    pub fn repo(&self) -> Option<String> {
        let rest = self.path.strip_prefix("/v2/")?;
        for marker in ["/manifests/", "/blobs/", "/tags/"] {
            if let Some(i) = rest.rfind(marker) {
                return Some(rest[..i].to_string());
            }
        }
        None
    }

    /// The last path segment (a tag, digest or upload id).
    pub fn reference(&self) -> Option<String> {
        self.repo()?;
        self.path.rsplit('/').next().map(str::to_string)
    }

    pub fn kind(&self) -> RequestKind {
        let m = self.method.as_str();
        let p = self.path.as_str();
        if p == "/v2/" || p == "/v2" {
            return RequestKind::Ping;
        }
        if p == "/v2/_catalog" {
            return RequestKind::Catalog;
        }
        if p.ends_with("/tags/list") {
            return RequestKind::TagsList;
        }
        if p.contains("/manifests/") {
            return match m {
                "GET" => RequestKind::ManifestGet,
                "HEAD" => RequestKind::ManifestHead,
                "PUT" => RequestKind::ManifestPut,
                "DELETE" => RequestKind::ManifestDelete,
                _ => RequestKind::Other,
            };
        }
        if p.contains("/blobs/uploads") {
            return match m {
                "POST" if self.query_param("mount").is_some() => RequestKind::BlobMount,
                "POST" => RequestKind::UploadStart,
                "PATCH" => RequestKind::UploadChunk,
                "PUT" => RequestKind::UploadFinish,
                _ => RequestKind::UploadOther,
            };
        }
        if p.contains("/blobs/") {
            return match m {
                "GET" => RequestKind::BlobGet,
                "HEAD" => RequestKind::BlobHead,
                "DELETE" => RequestKind::BlobDelete,
                _ => RequestKind::Other,
            };
        }
        RequestKind::Other
    }

    /// Parse one gorilla combined-log line:
    /// `127.0.0.1 - - [27/Nov/2025:08:53:00 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "skopeo/1.9.3"`
    pub fn parse(line: &str) -> Option<LoggedRequest> {
        let start = line.find("] \"")? + 2;
        let (request_line, rest) = parse_quoted(&line[start..])?;
        let mut parts = request_line.split(' ');
        let method = parts.next()?.to_string();
        let uri = parts.next()?;
        let mut rest = rest.trim_start().splitn(3, ' ');
        let status = rest.next()?.parse().ok()?;
        let bytes = rest.next()?.parse().unwrap_or(0);
        let rest = rest.next().unwrap_or("");
        let (_referer, rest) = parse_quoted(rest.trim_start()).unwrap_or_default();
        let (user_agent, _) = parse_quoted(rest.trim_start()).unwrap_or_default();
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        Some(LoggedRequest {
            method,
            path: path.to_string(),
            query: query.to_string(),
            status,
            bytes,
            user_agent,
            line: line.to_string(),
        })
    }
}

/// A `"…"` string with gorilla's backslash escapes at the start of `s`; returns it unescaped and
/// the text after the closing quote.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    out.push(e);
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Lines of stdout (the access log) collected by a reader thread.
#[derive(Default)]
pub(super) struct AccessLog {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl AccessLog {
    pub(super) fn spawn_reader(self: &Arc<Self>, stdout: std::process::ChildStdout) {
        let log = self.clone();
        std::thread::Builder::new()
            .name("ferry-lab-registry-log".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    log.lines.lock().unwrap().0.push(line);
                    log.changed.notify_all();
                }
                log.lines.lock().unwrap().1 = true;
                log.changed.notify_all();
            })
            .expect("spawning the access log reader");
    }

    /// Wait until a line at index >= `from` contains `needle`; its index.
    pub(super) fn wait_for(&self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lines.lock().unwrap();
        let mut scanned = from;
        loop {
            if let Some(i) = guard.0[scanned.min(guard.0.len())..]
                .iter()
                .position(|l| l.contains(needle))
            {
                return Some(scanned.min(guard.0.len()) + i);
            }
            scanned = scanned.max(guard.0.len());
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lines.lock().unwrap().0.len()
    }

    pub(super) fn slice(&self, from: usize, to: usize) -> Vec<String> {
        self.lines.lock().unwrap().0[from..to].to_vec()
    }
}
