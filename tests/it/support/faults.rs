//! A fault-injecting HTTP proxy for the lab's registries.
//!
//! [`FaultProxy::start`] listens on a loopback address and forwards every request to a lab
//! [`Registry`](super::Registry) (plain HTTP), streaming bodies both ways, unless a [`Rule`]
//! matches: a rule selects requests by method and a regex on the path, applies to the first
//! `K` matching requests ([`Rule::times`]) or to all of them, and injects a [`Fault`] — an
//! answer made up by the proxy (5xx, 429 with `Retry-After`, a redirect, anything a test
//! builds) or damage to the registry's real answer (a reset or premature EOF after `N` body
//! bytes with the full `Content-Length` announced, a stall, a flipped byte, a pause, rewritten
//! bytes). Rules are checked in the order they were added; the first active match wins.
//!
//! `Location` headers that point at the registry are rewritten to point at the proxy, so that
//! upload sessions continue through it. The proxy keeps its own log of every request it
//! received ([`FaultProxy::requests`]), with all headers, the time it arrived and the rule
//! that hit it: what the client sent, including what a real registry never sees (requests
//! answered by a fault, requests to a redirect target).
//!
//! A proxy with no upstream ([`FaultProxy::standalone`]) answers only through rules (502
//! otherwise): a redirect target, a token endpoint, a hostile registry.
//!
//! Why one file (about 800 lines): each [`Fault`] variant is documented once and implemented
//! once, in the proxy's handler or the body damage next to it, and they share the proxy's
//! state (which rule matched, how many requests a rule holds); splitting the faults from the
//! proxy would put every fault's meaning and its one implementation in different files.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

use super::Registry;

/// How long a stalled body stays silent before the proxy gives up on it (far beyond any
/// stall timeout a test gives ferry; keeps a forgotten connection from living forever).
const STALL_LIMIT: Duration = Duration::from_secs(90);

type BoxStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A made-up answer: the function gets the request as logged.
pub type Responder = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

/// An asynchronous stand-in for one endpoint: gets the request (body included) and may ask
/// the registry behind the proxy itself.
pub type Server = Arc<
    dyn Fn(Served) -> Pin<Box<dyn std::future::Future<Output = Response> + Send>> + Send + Sync,
>;

/// What a [`Server`] gets.
pub struct Served {
    pub seen: Seen,
    pub body: Bytes,
    /// `http://127.0.0.1:PORT` of the registry behind the proxy.
    pub upstream: Option<String>,
    pub client: reqwest::Client,
}

/// What a matching request gets.
#[derive(Clone)]
pub enum Fault {
    /// Answer with this status, headers and body; the registry is not asked.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Forward; pass `N` bytes of the answer's body, then break the connection (error).
    ResetAfter(u64),
    /// Forward; pass `N` bytes of the body, then end it (premature EOF: the full
    /// `Content-Length` was announced).
    TruncateAfter(u64),
    /// Forward; pass `N` bytes of the body, then send nothing more (for [`STALL_LIMIT`]).
    StallAfter(u64),
    /// Forward; pass `N` bytes, wait, then pass the rest.
    PauseAfter(u64, Duration),
    /// Forward; invert the byte at this offset of the body.
    FlipByte(u64),
    /// Forward; replace the whole body by `f(body)` (headers kept, `Content-Length` fixed).
    Rewrite(Arc<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>),
    /// Answer `307 Temporary Redirect` to this base URL plus the request's path and query.
    Redirect(String),
    /// Read nothing of the request for this long, then forward it: an upload to a
    /// destination that stops reading (the client's body stalls once the socket buffers fill).
    Delay(Duration),
    /// Answer with whatever the function builds; the registry is not asked.
    Respond(Responder),
    /// Forward; add this header to the answer.
    AddHeader(String, String),
    /// Answer with what the asynchronous stand-in builds (see [`Server`]).
    Serve(Server),
    /// Forward; pass the body `N` bytes at a time, waiting this long before each piece: a
    /// body that trickles (never silent long, never moving much).
    Trickle(usize, Duration),
    /// Forward; point the answer's `Location` (an upload session) at this base URL instead
    /// of the proxy: another host handing out the session.
    LocationTo(String),
    /// Forward with this request header set (replacing the client's): a stand-in that lets
    /// requests in on its own authority (a storage backend's signed URL).
    SetRequestHeader(String, String),
    /// Hold each request until this many requests of the rule are held at the same time,
    /// then let them all go on: proof that the client had that many in flight at once, by
    /// the event itself rather than by a time window. Counted like [`Fault::Delay`]
    /// ([`FaultProxy::max_held`]). A request still waiting after the lab's
    /// [`HANG_GUARD`](super::HANG_GUARD) goes on alone (a hang guard, so that a client that
    /// never sends the others fails the test's assertion instead of hanging it). Use it with
    /// [`Rule::times`] so that the last requests do not wait for partners that never come.
    Gate(usize),
}

impl Fault {
    /// A status with a distribution-style error body.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: format!(
                r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault {status}"}}]}}"#
            )
            .into_bytes(),
        }
    }

    /// `429 Too Many Requests` with `Retry-After: secs`.
    pub fn too_many(retry_after_secs: u64) -> Fault {
        Fault::Status {
            status: 429,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("retry-after".into(), retry_after_secs.to_string()),
            ],
            body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec(),
        }
    }

    /// A made-up answer.
    pub fn respond(f: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Fault {
        Fault::Respond(Arc::new(f))
    }

    /// Rewrite the body of the registry's answer.
    pub fn rewrite(f: impl Fn(Vec<u8>) -> Vec<u8> + Send + Sync + 'static) -> Fault {
        Fault::Rewrite(Arc::new(f))
    }

    fn name(&self) -> String {
        match self {
            Fault::Status { status, .. } => format!("status {status}"),
            Fault::ResetAfter(n) => format!("reset after {n}"),
            Fault::TruncateAfter(n) => format!("truncate after {n}"),
            Fault::StallAfter(n) => format!("stall after {n}"),
            Fault::PauseAfter(n, d) => format!("pause {d:?} after {n}"),
            Fault::FlipByte(n) => format!("flip byte {n}"),
            Fault::Rewrite(_) => "rewrite".into(),
            Fault::Redirect(to) => format!("redirect to {to}"),
            Fault::Delay(d) => format!("delay {d:?}"),
            Fault::Respond(_) => "respond".into(),
            Fault::AddHeader(k, v) => format!("add header {k}: {v}"),
            Fault::Serve(_) => "serve".into(),
            Fault::Trickle(n, d) => format!("trickle {n} bytes every {d:?}"),
            Fault::LocationTo(to) => format!("location to {to}"),
            Fault::SetRequestHeader(k, _) => format!("set request header {k}"),
            Fault::Gate(n) => format!("gate of {n}"),
        }
    }
}

/// Which requests get a fault, and how many times.
#[derive(Clone)]
pub struct Rule {
    method: Option<String>,
    path: regex::Regex,
    query: Option<regex::Regex>,
    times: Option<usize>,
    fault: Fault,
}

impl Rule {
    /// Every request whose method is `method` (`"*"`: any) and whose path matches the regex
    /// `path` (unanchored) gets `fault`, always (see [`times`](Self::times)).
    pub fn new(method: &str, path: &str, fault: Fault) -> Rule {
        Rule {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            path: regex::Regex::new(path).expect("rule path regex"),
            query: None,
            times: None,
            fault,
        }
    }

    /// Only the first `k` matching requests.
    pub fn times(mut self, k: usize) -> Rule {
        self.times = Some(k);
        self
    }

    /// Only the first matching request.
    pub fn once(self) -> Rule {
        self.times(1)
    }

    /// Only requests whose raw query (without `?`) matches the regex `query` (unanchored).
    pub fn query(mut self, query: &str) -> Rule {
        self.query = Some(regex::Regex::new(query).expect("rule query regex"));
        self
    }

    fn matches(&self, method: &str, path: &str, query: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.path.is_match(path)
            && self.query.as_ref().is_none_or(|q| q.is_match(query))
    }
}

/// Index of a rule in its proxy, from [`FaultProxy::add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleId(usize);

/// One request as the proxy received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query without `?`.
    pub query: String,
    /// Every header, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub at: Instant,
    /// The rule that hit it, if any.
    pub rule: Option<RuleId>,
    /// The fault applied (for messages).
    pub fault: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The last path segment (a tag, digest or upload id).
    pub fn last_segment(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    pub fn is(&self, method: &str, path_contains: &str) -> bool {
        self.method == method && self.path.contains(path_contains)
    }
}

struct ActiveRule {
    rule: Rule,
    hits: usize,
    /// Requests this (delay) rule is holding now, and the most it held at once.
    held: usize,
    max_held: usize,
    /// Requests this (delay) rule held whose client hung up before the delay was over.
    abandoned: usize,
    /// How many times this (gate) rule let its held requests go on.
    opened: u64,
}

struct ProxyState {
    upstream: Option<String>,
    base: String,
    rules: Mutex<Vec<ActiveRule>>,
    log: Mutex<Vec<Seen>>,
    client: reqwest::Client,
}

/// A request held by a delay rule: released when the delay ends or the handler is dropped.
struct Held {
    state: Arc<ProxyState>,
    rule: usize,
    done: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut rules = self.state.rules.lock().unwrap();
        let r = &mut rules[self.rule];
        r.held -= 1;
        if !self.done {
            r.abandoned += 1;
        }
    }
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on `127.0.0.1` in front of `reg` (which must be plain HTTP).
    pub fn start(reg: &Registry) -> FaultProxy {
        assert!(
            reg.url().starts_with("http://"),
            "the fault proxy forwards to plain-HTTP registries only"
        );
        Self::launch("127.0.0.1", Some(reg.url()))
    }

    /// A proxy on `127.0.0.1` in front of any plain-HTTP server (`http://IP:PORT`), e.g. a
    /// webhook stand-in.
    pub fn forward_to(url: &str) -> FaultProxy {
        assert!(url.starts_with("http://"), "plain HTTP upstreams only");
        Self::launch("127.0.0.1", Some(url.trim_end_matches('/').to_string()))
    }

    /// A proxy on `ip` (a loopback address, e.g. `127.0.0.2`) with no registry behind it:
    /// it answers only through rules, 502 otherwise.
    pub fn standalone(ip: &str) -> FaultProxy {
        Self::launch(ip, None)
    }

    fn launch(ip: &str, upstream: Option<String>) -> FaultProxy {
        assert!(
            ip.starts_with("127."),
            "the fault proxy listens on loopback only"
        );
        let std_listener =
            std::net::TcpListener::bind(format!("{ip}:0")).expect("binding the fault proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy address");
        crate::support::crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("proxy client");
        let state = Arc::new(ProxyState {
            upstream,
            base: format!("http://{addr}"),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            client,
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("ferry-lab-fault-proxy-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fault proxy runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("proxy listener");
                    // Not graceful: stalled bodies must not hold up the test's end.
                    tokio::select! {
                        r = axum::serve(listener, app) => r.expect("fault proxy"),
                        _ = rx => {}
                    }
                });
            })
            .expect("spawning the fault proxy");
        FaultProxy {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `IP:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://IP:PORT`.
    pub fn url(&self) -> String {
        self.state.base.clone()
    }

    /// `docker://IP:PORT/<name>`.
    pub fn docker_ref(&self, name: &str) -> String {
        format!("docker://{}/{name}", self.host())
    }

    /// `--src-tls-verify=false` / `--dest-tls-verify=false` / `--tls-verify=false`.
    pub fn tls_args(&self, side: super::Side) -> Vec<String> {
        let flag = match side {
            super::Side::Src => "--src-tls-verify=false",
            super::Side::Dest => "--dest-tls-verify=false",
            super::Side::Plain => "--tls-verify=false",
        };
        vec![flag.to_string()]
    }

    /// Add a rule (checked after the ones added before it).
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut rules = self.state.rules.lock().unwrap();
        rules.push(ActiveRule {
            rule,
            hits: 0,
            held: 0,
            max_held: 0,
            opened: 0,
            abandoned: 0,
        });
        RuleId(rules.len() - 1)
    }

    /// How many requests a rule has hit.
    pub fn hits(&self, id: RuleId) -> usize {
        self.state.rules.lock().unwrap()[id.0].hits
    }

    /// The most requests a [`Fault::Delay`] rule held at the same time: how many requests
    /// of that kind a client had in flight at once.
    pub fn max_held(&self, id: RuleId) -> usize {
        self.state.rules.lock().unwrap()[id.0].max_held
    }

    /// How many requests a [`Fault::Delay`] rule holds right now.
    pub fn holding(&self, id: RuleId) -> usize {
        self.state.rules.lock().unwrap()[id.0].held
    }

    /// How many requests a [`Fault::Delay`] rule held were given up by their client before
    /// the delay was over (the server saw the connection close, not a wall clock).
    pub fn abandoned(&self, id: RuleId) -> usize {
        self.state.rules.lock().unwrap()[id.0].abandoned
    }

    /// Remove every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        // Keep indices stable for hits(): disable instead of removing.
        for r in self.state.rules.lock().unwrap().iter_mut() {
            r.rule.times = Some(r.hits);
        }
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    /// The requests with this method whose path contains `path_contains`.
    pub fn requests_to(&self, method: &str, path_contains: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.is(method, path_contains))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "host"
    )
}

fn plain(status: u16, msg: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(msg.to_string()))
        .expect("response")
}

async fn handle(State(state): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let (rule, fault) = {
        let mut rules = state.rules.lock().unwrap();
        let hit = rules.iter_mut().enumerate().find(|(_, r)| {
            r.rule.times.is_none_or(|k| r.hits < k) && r.rule.matches(&method, &path, &query)
        });
        match hit {
            Some((i, r)) => {
                r.hits += 1;
                (Some(RuleId(i)), Some(r.rule.fault.clone()))
            }
            None => (None, None),
        }
    };
    let seen = Seen {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        at: Instant::now(),
        rule,
        fault: fault.as_ref().map(Fault::name),
    };
    state.log.lock().unwrap().push(seen.clone());

    if let (Some(Fault::Delay(d)), Some(RuleId(i))) = (&fault, rule) {
        {
            let mut rules = state.rules.lock().unwrap();
            let r = &mut rules[i];
            r.held += 1;
            r.max_held = r.max_held.max(r.held);
        }
        // Dropped with this handler when the client hangs up (hyper cancels it): that is
        // how a request given up by its client is told from one that waited the delay out.
        let guard = Held {
            state: state.clone(),
            rule: i,
            done: false,
        };
        tokio::time::sleep(*d).await;
        let mut guard = guard;
        guard.done = true;
    }
    if let (Some(Fault::Gate(n)), Some(RuleId(i))) = (&fault, rule) {
        let arrived_in = {
            let mut rules = state.rules.lock().unwrap();
            let r = &mut rules[i];
            r.held += 1;
            r.max_held = r.max_held.max(r.held);
            let batch = r.opened;
            if r.held >= *n {
                r.opened += 1;
            }
            batch
        };
        let guard = Held {
            state: state.clone(),
            rule: i,
            done: false,
        };
        let started = Instant::now();
        while state.rules.lock().unwrap()[i].opened == arrived_in
            && started.elapsed() < super::HANG_GUARD
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut guard = guard;
        guard.done = true;
    }
    // Answers made up by the proxy.
    match &fault {
        Some(Fault::Status {
            status,
            headers,
            body,
        }) => {
            let mut b = Response::builder().status(*status);
            for (k, v) in headers {
                b = b.header(k.as_str(), v.as_str());
            }
            return b.body(Body::from(body.clone())).expect("response");
        }
        Some(Fault::Redirect(to)) => {
            let q = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, format!("{to}{path}{q}"))
                .body(Body::empty())
                .expect("response");
        }
        Some(Fault::Respond(f)) => return f(&seen),
        Some(Fault::Serve(f)) => {
            let body = match axum::body::to_bytes(body, 16 << 20).await {
                Ok(b) => b,
                Err(e) => return plain(400, &format!("fault proxy: request body: {e}")),
            };
            return f(Served {
                seen,
                body,
                upstream: state.upstream.clone(),
                client: state.client.clone(),
            })
            .await;
        }
        _ => {}
    }

    // Forward to the registry.
    let Some(upstream) = &state.upstream else {
        return plain(502, "no rule matched and the proxy has no upstream");
    };
    let url = format!(
        "{upstream}{path}{}",
        if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        }
    );
    let mut rb = state.client.request(parts.method.clone(), url);
    let replaced = match &fault {
        Some(Fault::SetRequestHeader(k, _)) => Some(k.to_ascii_lowercase()),
        _ => None,
    };
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) && replaced.as_deref() != Some(k.as_str()) {
            rb = rb.header(k, v);
        }
    }
    if let Some(Fault::SetRequestHeader(k, v)) = &fault {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        rb = rb.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream_resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return plain(502, &format!("fault proxy: upstream failed: {e}")),
    };
    let status = upstream_resp.status();
    let mut headers = HeaderMap::new();
    for (k, v) in upstream_resp.headers() {
        if hop_by_hop(k) {
            continue;
        }
        if k == header::LOCATION
            && let Ok(s) = v.to_str()
            && let Some(rest) = s.strip_prefix(upstream.as_str())
        {
            let base = match &fault {
                Some(Fault::LocationTo(to)) => to.as_str(),
                _ => state.base.as_str(),
            };
            let rewritten = format!("{base}{rest}");
            headers.append(k, HeaderValue::from_str(&rewritten).expect("location"));
            continue;
        }
        headers.append(k, v.clone());
    }
    let source: BoxStream = Box::pin(
        upstream_resp
            .bytes_stream()
            .map(|r| r.map_err(std::io::Error::other)),
    );
    if let Some(Fault::AddHeader(k, v)) = &fault {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    let body: BoxStream = match fault {
        None
        | Some(Fault::AddHeader(..))
        | Some(Fault::LocationTo(_))
        | Some(Fault::SetRequestHeader(..)) => source,
        Some(Fault::Trickle(n, every)) => trickle(source, n, every),
        Some(Fault::Rewrite(f)) => {
            let mut all = Vec::new();
            let mut s = source;
            while let Some(chunk) = s.next().await {
                match chunk {
                    Ok(c) => all.extend_from_slice(&c),
                    Err(e) => return plain(502, &format!("fault proxy: upstream body: {e}")),
                }
            }
            let new = f(all);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(new.len()));
            Box::pin(futures_util::stream::once(
                async move { Ok(Bytes::from(new)) },
            ))
        }
        Some(f) => damage(source, f),
    };
    let mut resp = Response::builder().status(status);
    *resp.headers_mut().expect("builder") = headers;
    resp.body(Body::from_stream(body)).expect("response")
}

/// The registry's answer, `n` bytes at a time, each piece after `every`.
fn trickle(source: BoxStream, n: usize, every: Duration) -> BoxStream {
    let pieces = source.flat_map(move |chunk| {
        let pieces: Vec<Result<Bytes, std::io::Error>> = match chunk {
            Ok(c) => (0..c.len())
                .step_by(n.max(1))
                .map(|i| Ok(c.slice(i..(i + n).min(c.len()))))
                .collect(),
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(pieces)
    });
    Box::pin(pieces.then(move |piece| async move {
        tokio::time::sleep(every).await;
        piece
    }))
}

/// Apply a body fault to a stream of the registry's answer.
fn damage(source: BoxStream, fault: Fault) -> BoxStream {
    struct St {
        source: BoxStream,
        passed: u64,
        fault: Fault,
        tripped: bool,
    }
    let st = St {
        source,
        passed: 0,
        fault,
        tripped: false,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        if st.tripped {
            match st.fault {
                Fault::ResetAfter(_) => {
                    return Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "injected reset",
                        )),
                        St {
                            fault: Fault::TruncateAfter(0),
                            ..st
                        },
                    ));
                }
                Fault::TruncateAfter(_) => return None,
                Fault::StallAfter(_) => {
                    tokio::time::sleep(STALL_LIMIT).await;
                    return None;
                }
                Fault::PauseAfter(_, d) => {
                    tokio::time::sleep(d).await;
                    st.fault = Fault::PauseAfter(u64::MAX, Duration::ZERO);
                    st.tripped = false;
                }
                _ => {}
            }
        }
        let mut chunk = match st.source.next().await {
            None => return None,
            Some(Err(e)) => return Some((Err(e), st)),
            Some(Ok(c)) => c,
        };
        let start = st.passed;
        let end = start + chunk.len() as u64;
        let limit = match st.fault {
            Fault::ResetAfter(n)
            | Fault::TruncateAfter(n)
            | Fault::StallAfter(n)
            | Fault::PauseAfter(n, _) => Some(n),
            _ => None,
        };
        match (&st.fault, limit) {
            (_, Some(n)) if end >= n && !st.tripped => {
                // Pass the bytes up to the limit, then trip on the next poll.
                let keep = (n - start) as usize;
                let rest = chunk.split_off(keep);
                st.tripped = true;
                if let Fault::PauseAfter(..) = st.fault
                    && !rest.is_empty()
                {
                    // The rest of this chunk goes after the pause.
                    let rest_stream: BoxStream =
                        Box::pin(futures_util::stream::once(async move { Ok(rest) }));
                    st.source = Box::pin(rest_stream.chain(st.source));
                }
            }
            (Fault::FlipByte(at), _) if (start..end).contains(at) => {
                let mut v = chunk.to_vec();
                v[(at - start) as usize] ^= 0xff;
                chunk = Bytes::from(v);
            }
            _ => {}
        }
        st.passed = end.min(start + chunk.len() as u64);
        Some((Ok(chunk), st))
    }))
}
