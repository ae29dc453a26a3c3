//! The lab's own small HTTP client (reqwest on the lab runtime), used for readiness probes,
//! log sentinels and independent checks of what a registry holds. Never ferry's code.

use std::time::Duration;

use reqwest::{Certificate, Identity, Method};

use super::{LAB_USER_AGENT, runtime};

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct LabHttp {
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT` or `https://…`
    pub base: String,
}

impl LabHttp {
    /// A client for `base`, trusting only `ca_pem` (if given) and presenting `identity`
    /// (cert PEM, key PEM) if given.
    /// A client for `base` that accepts any server certificate (the lab's own registries
    /// that serve a test's certificate).
    pub fn new_unverified(base: String) -> LabHttp {
        crate::support::crypto_provider();
        let client = Self::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .expect("building the lab HTTP client");
        LabHttp { client, base }
    }

    fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(LAB_USER_AGENT)
            .no_proxy()
            .http1_only()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
    }

    pub fn new(base: String, ca_pem: Option<&str>, identity: Option<(&str, &str)>) -> LabHttp {
        crate::support::crypto_provider();
        let mut builder = Self::builder();
        if let Some(ca) = ca_pem {
            let ca = Certificate::from_pem(ca.as_bytes()).expect("parsing lab CA");
            builder = builder.tls_certs_only([ca]);
        }
        if let Some((cert, key)) = identity {
            let pem = format!("{cert}\n{key}");
            builder =
                builder.identity(Identity::from_pem(pem.as_bytes()).expect("client identity"));
        }
        LabHttp {
            client: builder.build().expect("building the lab HTTP client"),
            base,
        }
    }

    /// Send one request to `base + path_and_query`. `Err` is a transport error (connection
    /// refused, TLS failure, timeout), any HTTP status is `Ok`.
    pub fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, String> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = self.client.request(method, &url);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        runtime().block_on(async move {
            let resp = req.send().await.map_err(|e| format!("{url}: {e:?}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("{url}: reading body: {e:?}"))?
                .to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }

    pub fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Response, String> {
        self.send(Method::GET, path_and_query, headers, None)
    }
}
