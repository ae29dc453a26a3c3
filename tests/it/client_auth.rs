//! The registry client's token logic and its retry driver, driven through the library (not the
//! binary) against an in-process registry stand-in: `GET /v2/` answers a Bearer challenge,
//! `/token` hands out numbered tokens, `/v2/app/tags/list` accepts only the token the
//! stand-in currently honours and can be told to fail first. Every assertion is on what the
//! stand-in saw: how many token requests, which `Authorization` header went where, how many
//! attempts a request took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use ferry::credentials::Credentials;
use ferry::environment::Environment;
use ferry::redact::Secret;
use ferry::registry::{Client, ClientOptions};
use ferry::retry::RetryPolicy;
use ferry::tls::TlsOptions;

/// What the stand-in does and what it saw.
#[derive(Default)]
struct Lab {
    /// The address, for the realm.
    addr: Mutex<String>,
    /// Tokens handed out so far (the next one is `tok-{n+1}`).
    issued: AtomicUsize,
    /// The token `tags/list` accepts (`0`: the newest one issued).
    honoured: AtomicUsize,
    /// After this many successful `tags/list` answers, only a newer token is honoured
    /// (a revoked or expired token, as a registry sees it).
    revoke_after: Mutex<Option<usize>>,
    /// Answers to give `tags/list` before serving it: status and `Retry-After`.
    failures: Mutex<Vec<(u16, Option<&'static str>)>>,
    /// The token endpoint answers with this body instead of a token.
    token_body: Mutex<Option<String>>,
    /// `Authorization` headers the token endpoint saw.
    token_auth: Mutex<Vec<Option<String>>>,
    /// `Authorization` headers `tags/list` saw, one per attempt.
    tags_auth: Mutex<Vec<Option<String>>>,
    /// Successful `tags/list` answers.
    served: AtomicUsize,
}

fn auth_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn challenge(lab: &Lab) -> Response {
    let realm = format!(
        "Bearer realm=\"http://{}/token\",service=\"lab\"",
        lab.addr.lock().unwrap()
    );
    let mut r = (
        StatusCode::UNAUTHORIZED,
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&realm).unwrap(),
    );
    r
}

async fn ping(State(lab): State<Arc<Lab>>) -> Response {
    challenge(&lab)
}

async fn token(State(lab): State<Arc<Lab>>, headers: HeaderMap) -> Response {
    lab.token_auth.lock().unwrap().push(auth_of(&headers));
    if let Some(body) = lab.token_body.lock().unwrap().clone() {
        return (StatusCode::OK, body).into_response();
    }
    let n = lab.issued.fetch_add(1, Ordering::SeqCst) + 1;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"token\":\"tok-{n}\",\"expires_in\":300}}"),
    )
        .into_response()
}

async fn tags(State(lab): State<Arc<Lab>>, headers: HeaderMap) -> Response {
    let auth = auth_of(&headers);
    lab.tags_auth.lock().unwrap().push(auth.clone());
    let honoured = match lab.honoured.load(Ordering::SeqCst) {
        0 => lab.issued.load(Ordering::SeqCst),
        n => n,
    };
    if auth.as_deref() != Some(format!("Bearer tok-{honoured}").as_str()) {
        return challenge(&lab);
    }
    let failure = {
        let mut f = lab.failures.lock().unwrap();
        (!f.is_empty()).then(|| f.remove(0))
    };
    if let Some((status, retry_after)) = failure {
        let mut r = (StatusCode::from_u16(status).unwrap(), "busy").into_response();
        if let Some(s) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(s));
        }
        return r;
    }
    let served = lab.served.fetch_add(1, Ordering::SeqCst) + 1;
    if *lab.revoke_after.lock().unwrap() == Some(served) {
        lab.honoured.store(honoured + 1, Ordering::SeqCst);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"name\":\"app\",\"tags\":[\"v1\",\"v2\"]}",
    )
        .into_response()
}

/// Start the stand-in on 127.0.0.1 (on the test's runtime).
async fn start(lab: Arc<Lab>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    *lab.addr.lock().unwrap() = addr.clone();
    let app = axum::Router::new()
        .route("/v2/", get(ping))
        .route("/token", get(token))
        .route("/v2/app/tags/list", get(tags))
        .with_state(lab);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client(addr: &str, credentials: Credentials, max_retries: u32) -> Arc<Client> {
    let opts = ClientOptions {
        tls: TlsOptions::new(Some(false), None, &Environment::default()),
        credentials,
        retry: RetryPolicy {
            max_retries,
            fixed_delay: Some(std::time::Duration::from_millis(10)),
        },
        ..ClientOptions::default()
    };
    Client::new(addr, opts).unwrap()
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        username: user.into(),
        password: Secret::new(password),
    }
}

#[tokio::test]
async fn a_token_is_fetched_once_and_reused_and_basic_credentials_go_only_to_the_realm() {
    let lab = Arc::new(Lab::default());
    let addr = start(lab.clone()).await;
    let c = client(&addr, basic("builder", "pw-client-auth-1"), 0);
    for _ in 0..3 {
        assert_eq!(c.list_tags("app").await.unwrap(), ["v1", "v2"]);
    }
    let expected_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("builder:pw-client-auth-1")
    );
    assert_eq!(
        *lab.token_auth.lock().unwrap(),
        [Some(expected_basic)],
        "one token request, with the Basic credentials"
    );
    let tags_auth = lab.tags_auth.lock().unwrap().clone();
    assert_eq!(tags_auth.len(), 3, "no request needed a second attempt");
    assert!(
        tags_auth
            .iter()
            .all(|a| a.as_deref() == Some("Bearer tok-1")),
        "the registry saw the token, never the password: {tags_auth:?}"
    );
}

#[tokio::test]
async fn a_token_the_registry_stops_honouring_is_replaced_once_and_the_request_repeated() {
    let lab = Arc::new(Lab::default());
    *lab.revoke_after.lock().unwrap() = Some(1);
    let addr = start(lab.clone()).await;
    let c = client(&addr, basic("builder", "pw-client-auth-2"), 0);
    c.list_tags("app").await.unwrap();
    // The stand-in now wants tok-2: the client's cached tok-1 gets a 401 challenge.
    assert_eq!(c.list_tags("app").await.unwrap(), ["v1", "v2"]);
    assert_eq!(lab.token_auth.lock().unwrap().len(), 2, "one new token");
    let tags_auth = lab.tags_auth.lock().unwrap().clone();
    assert_eq!(
        tags_auth,
        [
            Some("Bearer tok-1".to_string()),
            Some("Bearer tok-1".to_string()),
            Some("Bearer tok-2".to_string())
        ],
        "refused once with the old token, then repeated with the new one"
    );
}

#[tokio::test]
async fn a_token_that_is_refused_again_is_not_replaced_in_a_loop() {
    let lab = Arc::new(Lab::default());
    // Honour a token that is never issued: every attempt is refused.
    lab.honoured.store(1000, Ordering::SeqCst);
    let addr = start(lab.clone()).await;
    let c = client(&addr, basic("builder", "pw-client-auth-3"), 3);
    let err = c.list_tags("app").await.unwrap_err().to_string();
    assert!(
        !err.contains("pw-client-auth-3"),
        "no secret in the error: {err}"
    );
    let tokens = lab.token_auth.lock().unwrap().len();
    let attempts = lab.tags_auth.lock().unwrap().len();
    assert_eq!(
        (tokens, attempts),
        (2, 2),
        "one re-authentication, then an error (an auth refusal is not retried)"
    );
}

#[tokio::test]
async fn transient_answers_are_retried_by_one_driver_within_the_retry_budget() {
    let lab = Arc::new(Lab::default());
    *lab.failures.lock().unwrap() = vec![(503, None), (429, Some("1")), (502, None)];
    let addr = start(lab.clone()).await;
    let c = client(&addr, Credentials::Anonymous, 3);
    assert_eq!(c.list_tags("app").await.unwrap(), ["v1", "v2"]);
    assert_eq!(
        lab.tags_auth.lock().unwrap().len(),
        4,
        "three failures, then the answer: 4 attempts"
    );
    assert_eq!(
        lab.token_auth.lock().unwrap().len(),
        1,
        "the token survives retries"
    );
}

#[tokio::test]
async fn retries_stop_at_the_budget_without_nesting() {
    let lab = Arc::new(Lab::default());
    *lab.failures.lock().unwrap() = vec![(503, None); 10];
    let addr = start(lab.clone()).await;
    let c = client(&addr, Credentials::Anonymous, 2);
    let err = c.list_tags("app").await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(
        lab.tags_auth.lock().unwrap().len(),
        3,
        "the first attempt and 2 retries, no retries inside retries"
    );
}

#[tokio::test]
async fn a_token_answer_that_is_not_json_is_one_clear_error_without_the_body() {
    let lab = Arc::new(Lab::default());
    *lab.token_body.lock().unwrap() =
        Some("<html>login page, session pw-client-auth-4</html>".into());
    let addr = start(lab.clone()).await;
    let c = client(&addr, basic("builder", "pw-client-auth-4"), 0);
    let err = c.list_tags("app").await.unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
    assert!(!err.contains("pw-client-auth-4"), "{err}");
    assert!(
        lab.tags_auth.lock().unwrap().is_empty(),
        "no registry request without a token"
    );
}
