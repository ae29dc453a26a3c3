//! Calling OpenShift's generic BuildConfig webhook (`ferry trigger`).
//!
//! The endpoint is
//! `POST <api>/apis/build.openshift.io/v1/namespaces/<ns>/buildconfigs/<name>/webhooks/<secret>/generic`
//! (OpenShift 3.11 also: `/oapi/v1/namespaces/…`), with `Content-Type: application/json` and
//! the payload `{"env":[{"name":…,"value":…}]}`. What OpenShift answers (openshift-apiserver,
//! `pkg/build/apiserver/registry/buildconfig/webhook.go` and `webhook/generic/generic.go`):
//!
//! - 200 with the new `Build` object (JSON) when a build was started;
//! - 200 with the `Build` *followed by* a `Status` object (`"status":"Success","code":200`)
//!   carrying a warning: `invalid Content-Type on payload, ignoring payload and continuing with
//!   build`, `error unmarshalling payload: …, ignoring payload and continuing with build` (for
//!   instance `env` given as a map) — the build runs, without the parameters; or `no git
//!   information found in payload, ignoring and continuing with build` when the BuildConfig has
//!   a git source — harmless, the parameters were taken;
//! - 200 with only a `Status` when no build was started (`skipping build. …`);
//! - 401 `Status` "the webhook \"generic\" for \"NAME\" did not accept your secret" for a wrong
//!   secret, an unknown BuildConfig, or one without a generic trigger (OpenShift does not tell
//!   which);
//! - 403 for a caller without `system:webhook` (anonymous callers on new 4.16+ clusters);
//! - 404 for an unknown webhook type, 405 for another method than POST, 400/500 otherwise.
//!
//! Env vars are only passed when the trigger has `allowEnv: true`; without it they are dropped
//! silently. ferry checks the returned `Build` and reports parameters that did not arrive.
//!
//! The secret is a path segment of the URL: every URL ferry prints goes through
//! [`Redactor::url`], every text from the server through [`Redactor::text`].

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::error::{Error, Location, Result};
use crate::http::chain;
use crate::redact::{self, Secret};
use crate::tls::TlsOptions;

mod answer;
pub use answer::{
    Answer, ApiStatus, MAX_ANSWER, StartedBuild, Triggered, judge, parse_answer, summarize,
};

/// The warning OpenShift gives when it ran the build but dropped the payload.
pub const PAYLOAD_IGNORED: &str = "ignoring payload and continuing with build";
/// The warning OpenShift gives when a BuildConfig with a git source gets no git information:
/// the env vars were taken, only the revision is the configured one.
pub const NO_GIT_INFO: &str = "no git information found in payload";

/// One `--env NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl std::str::FromStr for EnvVar {
    type Err = String;

    /// `NAME=VALUE` (split at the first `=`; the value may be empty). The name must be a valid
    /// Kubernetes env var name (`[-._a-zA-Z][-._a-zA-Z0-9]*`), as OpenShift validates it.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!("expected NAME=VALUE, got {s:?}"));
        };
        if !is_env_name(name) {
            return Err(format!(
                "{name:?} is not a valid environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)"
            ));
        }
        Ok(EnvVar {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// Kubernetes' `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    match chars.next() {
        Some(c) if ok(c) && !c.is_ascii_digit() => chars.all(ok),
        _ => false,
    }
}

/// The request body: `{"env":[{"name":…,"value":…},…]}` (a list, never a map).
pub fn payload(env: &[EnvVar]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Payload<'a> {
        env: &'a [EnvVar],
    }
    serde_json::to_vec(&Payload { env }).expect("payload serialises")
}

/// Which BuildConfig's webhook to call.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API server, `https://api.example.com:6443` (a path prefix is kept).
    pub api_url: Url,
    /// Namespace (project) of the BuildConfig.
    pub namespace: String,
    /// BuildConfig name.
    pub buildconfig: String,
    /// Use OpenShift 3.11's `/oapi/v1/…` path.
    pub legacy_oapi: bool,
}

impl Target {
    /// Check the API URL and names. `insecure` is `--tls-verify=false` (which allows `http://`).
    pub fn new(
        api_url: &str,
        namespace: &str,
        buildconfig: &str,
        legacy_oapi: bool,
        insecure: bool,
    ) -> Result<Self> {
        let api = Url::parse(api_url).map_err(|e| {
            Error::usage(format!("--api-url {api_url:?} is not a URL ({e}); expected e.g. https://api.example.com:6443"))
        })?;
        match api.scheme() {
            "https" => {}
            "http" if insecure => {}
            "http" => {
                return Err(Error::usage(
                    "--api-url is http://: the webhook secret would travel in clear text (pass --tls-verify=false to allow it)",
                ));
            }
            other => {
                return Err(Error::usage(format!(
                    "--api-url must be an https:// URL, not {other}://"
                )));
            }
        }
        if !api.username().is_empty() || api.password().is_some() {
            return Err(Error::usage(
                "--api-url must not carry credentials (use --token-file for a bearer token)",
            ));
        }
        if api.query().is_some() || api.fragment().is_some() || api.cannot_be_a_base() {
            return Err(Error::usage(
                "--api-url must be the API server's base URL, without query or fragment",
            ));
        }
        for (what, v) in [("--namespace", namespace), ("--buildconfig", buildconfig)] {
            if !is_object_name(v) {
                return Err(Error::usage(format!(
                    "{what} {v:?} is not a valid OpenShift name (lower-case letters, digits, '-' and '.')"
                )));
            }
        }
        Ok(Target {
            api_url: api,
            namespace: namespace.to_string(),
            buildconfig: buildconfig.to_string(),
            legacy_oapi,
        })
    }

    /// The webhook URL with `secret` as a (percent-encoded) path segment.
    pub fn url(&self, secret: &Secret) -> Url {
        let mut u = self.api_url.clone();
        {
            let mut segs = u.path_segments_mut().expect("checked: a base URL");
            segs.pop_if_empty();
            if self.legacy_oapi {
                segs.extend(["oapi", "v1"]);
            } else {
                segs.extend(["apis", "build.openshift.io", "v1"]);
            }
            segs.extend([
                "namespaces",
                &self.namespace,
                "buildconfigs",
                &self.buildconfig,
                "webhooks",
                secret.expose(),
                "generic",
            ]);
        }
        u
    }

    /// `namespace/buildconfig`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.buildconfig)
    }
}

/// A Kubernetes object name as it may appear in the webhook path: a DNS subdomain.
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Check a webhook secret before it goes into a URL path.
pub fn check_secret(secret: &Secret) -> Result<()> {
    let v = secret.expose();
    if v.is_empty() {
        return Err(Error::usage("the webhook secret is empty"));
    }
    if v.contains('/') {
        return Err(Error::usage(
            "the webhook secret contains '/': OpenShift cannot take it in the webhook URL (generate one with e.g. `openssl rand -hex 20`)",
        ));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::usage(
            "the webhook secret contains whitespace or control characters (a stray newline in the Secret?)",
        ));
    }
    Ok(())
}

/// Removes the webhook secret (and the bearer token) from anything printed.
pub struct Redactor<'a> {
    secrets: Vec<&'a Secret>,
    /// Percent-encoded forms of the secrets.
    encoded: Vec<String>,
}

impl<'a> Redactor<'a> {
    /// A redactor for these secrets.
    pub fn new(secrets: Vec<&'a Secret>) -> Self {
        let mut encoded = Vec::new();
        for s in &secrets {
            if s.expose().len() < 4 {
                continue;
            }
            encoded.push(
                percent_encoding::utf8_percent_encode(
                    s.expose(),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
            // The form the URL crate gives a path segment (it leaves more characters alone).
            let mut u = Url::parse("http://x/").expect("valid URL");
            u.path_segments_mut().expect("base URL").push(s.expose());
            encoded.push(u.path()[1..].to_string());
        }
        Redactor { secrets, encoded }
    }

    /// `text` with every secret (plain, base64, percent-encoded) replaced by `<redacted>`.
    pub fn text(&self, text: &str) -> String {
        let mut out = redact::scrub(text, &self.secrets);
        for e in &self.encoded {
            out = out.replace(e.as_str(), "<redacted>");
        }
        out
    }

    /// A URL safe to print: the secret path segment replaced.
    pub fn url(&self, u: &Url) -> String {
        let mut shown = redact::url(u);
        if let Some(segs) = u.path_segments() {
            let segs: Vec<&str> = segs.collect();
            if let Some(i) = segs.iter().position(|s| *s == "webhooks")
                && i + 2 < segs.len()
            {
                shown = shown.replacen(
                    &format!("/webhooks/{}/", segs[i + 1]),
                    "/webhooks/<redacted>/",
                    1,
                );
            }
        }
        self.text(&shown)
    }
}

/// Everything `trigger` needs.
pub struct Call<'a> {
    /// Which webhook.
    pub target: &'a Target,
    /// The webhook secret.
    pub secret: &'a Secret,
    /// Parameters.
    pub env: &'a [EnvVar],
    /// Bearer token for clusters that refuse anonymous webhook calls.
    pub token: Option<&'a Secret>,
    /// TLS settings.
    pub tls: &'a TlsOptions,
    /// Time allowed for the whole call.
    pub timeout: Duration,
}

/// POST the webhook once (never retried: a retry could start a second build) and judge the
/// answer.
pub async fn trigger(call: Call<'_>) -> Result<Triggered> {
    check_secret(call.secret)?;
    let mut secrets = vec![call.secret];
    if let Some(t) = call.token {
        secrets.push(t);
    }
    let redactor = Redactor::new(secrets);
    let target = call.target;
    let url = target.url(call.secret);
    let host = target.api_url.host_str().unwrap_or_default().to_string();
    let host_port = match target.api_url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let loc = Location {
        registry: host_port.clone(),
        repository: String::new(),
    };
    let b = crate::tls::client_builder(call.tls, &host_port)?
        .connect_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    let http = b.build().map_err(|e| {
        Error::Tls(format!(
            "cannot set up TLS for {host_port}: {}",
            redactor.text(&chain(&e.without_url()))
        ))
    })?;
    let mut req = http
        .post(url.clone())
        .timeout(call.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(payload(call.env));
    if let Some(t) = call.token {
        req = req.bearer_auth(t.expose());
    }
    log::debug!(
        "POST {} with {} env var(s): {}",
        redactor.url(&url),
        call.env.len(),
        call.env
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let resp = req.send().await.map_err(|e| {
        // Unless the connection never opened, OpenShift may have started a build.
        let maybe_sent = !e.is_connect();
        let e = e.without_url();
        let mut reason = redactor.text(&chain(&e));
        if let Some(t) = crate::tls::classify(&e) {
            reason = match t {
                crate::tls::TlsFailure::PlainHttp => format!(
                    "the API server at {host_port} answered in plain HTTP, not HTTPS (an http:// --api-url needs --tls-verify=false)"
                ),
                _ => format!("{reason} (TLS: pass the API server's CA with --cert-dir)"),
            };
        } else if maybe_sent {
            reason = format!(
                "{reason}: the build could not be confirmed (see `oc get builds -n {}`)",
                target.namespace
            );
        }
        Error::Network {
            op: format!("calling the webhook of buildconfig {}", target.name()),
            location: loc.clone(),
            reason,
            transient: false,
        }
    })?;
    let status = resp.status().as_u16();
    let read = crate::http::read_limited(resp, MAX_ANSWER, call.timeout).await;
    let (body, unread) = match read {
        Ok(b) => (b, None),
        Err(crate::http::ReadError::TooLarge) => (
            Default::default(),
            Some(format!("an answer larger than {} MiB", MAX_ANSWER >> 20)),
        ),
        Err(crate::http::ReadError::Stalled(d)) => (
            Default::default(),
            Some(format!(
                "an answer that stalled ({} s without data)",
                d.as_secs()
            )),
        ),
        Err(crate::http::ReadError::Http(e)) => (
            Default::default(),
            Some(format!(
                "an answer that could not be read: {}",
                chain(&e.without_url())
            )),
        ),
    };
    log::debug!(
        "POST {} -> {status} ({} bytes)",
        redactor.url(&url),
        body.len()
    );
    let mut answer = parse_answer(status, &body);
    if let Some(u) = unread {
        answer.summary = u;
    }
    judge(&answer, target, call.env, &redactor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(legacy: bool) -> Target {
        Target::new(
            "https://api.example.com:6443",
            "prod",
            "production-pipeline",
            legacy,
            false,
        )
        .unwrap()
    }

    #[test]
    fn env_args() {
        assert_eq!(
            "GIT_COMMIT=abc=1".parse::<EnvVar>().unwrap(),
            EnvVar {
                name: "GIT_COMMIT".into(),
                value: "abc=1".into()
            }
        );
        assert_eq!("A=".parse::<EnvVar>().unwrap().value, "");
        for bad in ["A", "=x", "1A=x", "A B=x", "A/B=x"] {
            assert!(bad.parse::<EnvVar>().is_err(), "{bad}");
        }
        assert!(is_env_name("a.b-c_D"));
    }

    #[test]
    fn payload_is_a_list() {
        let env = vec![EnvVar {
            name: "A".into(),
            value: "1".into(),
        }];
        assert_eq!(payload(&env), br#"{"env":[{"name":"A","value":"1"}]}"#);
        assert_eq!(payload(&[]), br#"{"env":[]}"#);
    }

    #[test]
    fn urls_and_redaction() {
        let s = Secret::new("s3cr3t+/x?");
        let t = target(false);
        let u = t.url(&s);
        assert_eq!(
            u.path(),
            "/apis/build.openshift.io/v1/namespaces/prod/buildconfigs/production-pipeline/webhooks/s3cr3t+%2Fx%3F/generic"
        );
        let r = Redactor::new(vec![&s]);
        let shown = r.url(&u);
        assert_eq!(
            shown,
            "https://api.example.com:6443/apis/build.openshift.io/v1/namespaces/prod/buildconfigs/production-pipeline/webhooks/<redacted>/generic"
        );
        assert!(!r.text(&format!("404 page for {u}")).contains("s3cr3t"));
        let legacy = target(true).url(&Secret::new("abcd"));
        assert!(
            legacy.path().starts_with("/oapi/v1/namespaces/prod/"),
            "{legacy}"
        );
        let prefixed = Target::new("https://h/prefix/", "a", "b", false, false).unwrap();
        assert!(
            prefixed
                .url(&Secret::new("abcd"))
                .path()
                .starts_with("/prefix/apis/")
        );
    }

    #[test]
    fn refuses_bad_targets_and_secrets() {
        assert!(Target::new("http://h", "a", "b", false, false).is_err());
        assert!(Target::new("http://h", "a", "b", false, true).is_ok());
        assert!(Target::new("https://u:p@h", "a", "b", false, false).is_err());
        assert!(Target::new("ftp://h", "a", "b", false, false).is_err());
        assert!(Target::new("https://h", "A", "b", false, false).is_err());
        assert!(Target::new("https://h", "a", "b/c", false, false).is_err());
        assert!(check_secret(&Secret::new("a/b")).is_err());
        assert!(check_secret(&Secret::new("abc\n")).is_err());
        assert!(check_secret(&Secret::new("")).is_err());
        assert!(check_secret(&Secret::new("0123abcd")).is_ok());
    }

    fn build_json(env: &str) -> String {
        format!(
            r#"{{"kind":"Build","apiVersion":"build.openshift.io/v1","metadata":{{"name":"production-pipeline-3","namespace":"prod"}},"spec":{{"strategy":{{"type":"JenkinsPipeline","jenkinsPipelineStrategy":{{"env":{env}}}}}}}}}"#
        )
    }

    fn warning(msg: &str) -> String {
        format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Success","message":"{msg}","code":200}}"#
        )
    }

    #[test]
    fn judges_answers() {
        let t = target(false);
        let s = Secret::new("topsecret");
        let r = Redactor::new(vec![&s]);
        let sent = vec![EnvVar {
            name: "GIT_COMMIT".into(),
            value: "abc".into(),
        }];
        let ok = build_json(r#"[{"name":"GIT_COMMIT","value":"abc"},{"name":"X"}]"#);

        let a = parse_answer(200, ok.as_bytes());
        let got = judge(&a, &t, &sent, &r).unwrap();
        assert_eq!(got.build.name, "production-pipeline-3");

        // A BuildConfig with a git source: harmless warning after the Build.
        let body = format!(
            "{ok}\n{}",
            warning("no git information found in payload, ignoring and continuing with build")
        );
        let got = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r).unwrap();
        assert_eq!(got.notes.len(), 1);

        // The payload was ignored: an error naming the build.
        let body = format!(
            "{}\n{}",
            build_json("[]"),
            warning(
                "error unmarshalling payload: json: cannot unmarshal object into Go struct field GenericWebHookEvent.env of type []v1.EnvVar, ignoring payload and continuing with build"
            )
        );
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ignoring payload") && e.contains("production-pipeline-3"),
            "{e}"
        );

        // allowEnv false: no warning, but the parameters are not in the build.
        let body = build_json(r#"[{"name":"GIT_COMMIT","value":""}]"#);
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowEnv") && e.contains("GIT_COMMIT"), "{e}");

        // No build at all.
        let body =
            warning("skipping build. Branch reference from \\\"x\\\" does not match configuration");
        let e = judge(&parse_answer(200, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("started no build"), "{e}");

        // Wrong secret, forbidden, plain-text errors echoing the secret.
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the webhook \"generic\" for \"production-pipeline\" did not accept your secret","reason":"Unauthorized","code":401}"#;
        let e = judge(&parse_answer(401, body.as_bytes()), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HTTP 401") && e.contains("did not accept your secret"),
            "{e}"
        );
        let e = judge(&parse_answer(403, b"{}"), &t, &sent, &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("system:webhook"), "{e}");
        let e = judge(
            &parse_answer(404, b"no route /webhooks/topsecret/generic\n"),
            &t,
            &sent,
            &r,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("<redacted>") && !e.contains("topsecret"), "{e}");

        // A 2xx answer that names no build proves nothing.
        for (body, needle) in [
            (&b""[..], "an empty answer"),
            (
                b"<html>\n<body>Welcome topsecret</body></html>",
                "<html> <body>Welcome <redacted>",
            ),
            (
                b"{\"kind\":\"Build\",\"metadata\":{}}",
                "the answer: {\"kind\":\"Build\"",
            ),
        ] {
            let e = judge(&parse_answer(200, body), &t, &sent, &r)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("the build could not be confirmed") && e.contains(needle),
                "{e}"
            );
            assert!(!e.contains("topsecret"), "{e}");
        }
    }
}
