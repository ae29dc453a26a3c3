//! The lab's own requests to a [`Registry`]: its checks through the registry API (manifests,
//! blobs, tags, raw requests, as the lab's admin) and reading the request log up to now (the
//! sentinel described in [`request_log`](crate::support::request_log)).

use std::sync::atomic::Ordering;

use base64::Engine;
use reqwest::Method;

use super::*;

impl Registry {
    /// The `Authorization` value of the lab's admin for `repo` (`None` without auth): for a
    /// stand-in that lets requests in on its own authority.
    pub fn admin_authorization(&self, repo: &str) -> Option<String> {
        self.lab_auth(repo).into_iter().next().map(|(_, v)| v)
    }

    /// The `Authorization` header the lab uses for its own requests about `repo`.
    fn lab_auth(&self, repo: &str) -> Vec<(&'static str, String)> {
        match &self.opts.auth {
            Auth::None => vec![],
            Auth::Basic(_) => vec![(
                "authorization",
                format!(
                    "Basic {}",
                    B64.encode(format!("{LAB_ADMIN_USER}:{}", self.admin_password))
                ),
            )],
            Auth::Token(cfg) => {
                let jwt = cfg.mint(
                    LAB_ADMIN_USER,
                    &[(
                        repo.to_string(),
                        vec!["pull".into(), "push".into(), "delete".into()],
                    )],
                    Duration::from_secs(3600),
                );
                vec![("authorization", format!("Bearer {jwt}"))]
            }
        }
    }

    /// One request by the lab's own client with admin rights on `repo` (left out of
    /// [`requests`](Self::requests)). Panics on transport errors.
    fn lab_request(
        &self,
        method: Method,
        repo: &str,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Option<Vec<u8>>,
    ) -> Response {
        headers.extend(self.lab_auth(repo));
        self.http
            .send(method, path, &headers, body)
            .unwrap_or_else(|e| panic!("lab request to registry {} failed: {e}", self.host()))
    }

    /// One request by the lab's client with exactly the given `Authorization` (or none), e.g.
    /// to try a token obtained from a [`TokenServer`](super::TokenServer). Returns status and
    /// body; panics on transport errors. (Left out of [`requests`](Self::requests).)
    pub fn raw_request(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let method = Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut headers = vec![("accept", MANIFEST_ACCEPT.to_string())];
        if let Some(a) = authorization {
            headers.push(("authorization", a.to_string()));
        }
        let resp = self
            .http
            .send(method, path, &headers, None)
            .unwrap_or_else(|e| panic!("lab request to registry {} failed: {e}", self.host()));
        (resp.status, resp.body)
    }

    /// Fetch a manifest (by tag or digest) straight from the registry, with the lab's admin
    /// rights. `None` if the registry answers 404; panics on any other non-200 answer.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<Manifest> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/manifests/{reference}"),
            vec![("accept", MANIFEST_ACCEPT.to_string())],
            None,
        );
        if resp.status == 404 {
            return None;
        }
        assert_eq!(
            resp.status,
            200,
            "GET manifest {repo}:{reference} from {}: {}",
            self.host(),
            String::from_utf8_lossy(&resp.body)
        );
        Some(Manifest {
            digest: sha256_digest(&resp.body),
            media_type: resp.header("content-type").unwrap_or_default(),
            header_digest: resp.header("docker-content-digest"),
            bytes: resp.body,
        })
    }

    /// The digest (sha256 of the exact bytes) of the manifest `repo:reference`, or `None`.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Option<String> {
        self.get_manifest(repo, reference).map(|m| m.digest)
    }

    /// Store a manifest directly (for setting up unusual states). Returns the HTTP status.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> u16 {
        self.lab_request(
            Method::PUT,
            repo,
            &format!("/v2/{repo}/manifests/{reference}"),
            vec![("content-type", media_type.to_string())],
            Some(bytes.to_vec()),
        )
        .status
    }

    /// Delete a manifest by digest. Returns the HTTP status (202 on success).
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> u16 {
        self.lab_request(
            Method::DELETE,
            repo,
            &format!("/v2/{repo}/manifests/{digest}"),
            vec![],
            None,
        )
        .status
    }

    /// Whether `HEAD /v2/<repo>/blobs/<digest>` answers 200.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let status = self
            .lab_request(
                Method::HEAD,
                repo,
                &format!("/v2/{repo}/blobs/{digest}"),
                vec![],
                None,
            )
            .status;
        assert!(
            status == 200 || status == 404,
            "HEAD blob {repo}@{digest}: status {status}"
        );
        status == 200
    }

    /// A blob's bytes, or `None` on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/blobs/{digest}"),
            vec![],
            None,
        );
        match resp.status {
            200 => Some(resp.body),
            404 => None,
            s => panic!("GET blob {repo}@{digest}: status {s}"),
        }
    }

    /// The tags of `repo` (sorted), empty if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.lab_request(
            Method::GET,
            repo,
            &format!("/v2/{repo}/tags/list"),
            vec![],
            None,
        );
        if resp.status == 404 {
            return Vec::new();
        }
        assert_eq!(
            resp.status,
            200,
            "tags of {repo}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("tags JSON");
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// Send a sentinel and wait for its log line; the index of that line.
    fn sync_log(&self) -> usize {
        let id = format!(
            "{}-{}",
            std::process::id(),
            SENTINELS.fetch_add(1, Ordering::SeqCst)
        );
        let from = self.log.len();
        if let Err(e) = self.http.get(&format!("/v2/?lab-sentinel={id}"), &[]) {
            panic!(
                "registry {} does not answer the log sentinel: {e}\nstderr:\n{}",
                self.host(),
                self.stderr()
            );
        }
        self.log
            .wait_for(from, &format!("?lab-sentinel={id} "), SENTINEL_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "the registry's access log did not show sentinel {id} within {SENTINEL_TIMEOUT:?}"
                )
            })
    }

    /// A position in the request log: pass it to [`requests_since`](Self::requests_since) to see
    /// only the requests made after this call.
    pub fn mark(&self) -> Mark {
        Mark(self.sync_log() + 1)
    }

    /// Every request the registry has completed so far (excluding the lab's own), in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.requests_since(Mark(0))
    }

    /// The requests completed after `mark` (excluding the lab's own), in order.
    pub fn requests_since(&self, mark: Mark) -> Vec<LoggedRequest> {
        let end = self.sync_log();
        self.log
            .slice(mark.0.min(end), end)
            .iter()
            .filter_map(|l| LoggedRequest::parse(l))
            .filter(|r| r.user_agent != LAB_USER_AGENT)
            .collect()
    }
}
