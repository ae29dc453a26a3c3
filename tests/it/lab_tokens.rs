//! Tests of the lab's token authentication: what a token registry refuses, how long its tokens
//! live (the registry's 60 s leeway compensated), and the token server's protocol. See
//! `lab.rs` for the shared helpers.

use std::time::Duration;

use crate::lab::{auth, skopeo_copy};
use crate::support::fixtures::*;
use crate::support::*;

#[test]
fn token_registry_refuses_wrong_tokens_and_missing_rights() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![
            ("puller".into(), vec![Grant::pull("ns/app")]),
            ("pusher".into(), vec![Grant::push("ns/*")]),
        ],
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    let fx = ImageSpec::oci().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    let inspect = |creds: Option<&str>| {
        let mut c = skopeo();
        c.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some(creds) = creds {
            c.arg(format!("--creds={creds}"));
        }
        c.arg(reg.docker_ref("ns/app:v1")).run()
    };
    // Anonymous: the token server hands out an empty token, the registry refuses it.
    inspect(None).assert_failure_with(&["unauthorized", "authentication required", "denied"]);
    // A password that is no configured token: the token server says 401.
    inspect(Some("sa:not-a-token")).assert_failure_with(&["unauthorized", "401"]);
    assert!(
        ts.requests()
            .iter()
            .any(|r| r.status == 401 && r.token.is_none())
    );
    // The pull token pulls ns/app ...
    inspect(Some("sa:puller")).assert_success();
    // ... but may not push there.
    let push = |token: &str, repo: &str| {
        skopeo_copy(
            false,
            &[],
            &[
                "--dest-tls-verify=false".into(),
                format!("--dest-creds=sa:{token}"),
            ],
            &fx.dir_ref(),
            &reg.docker_ref(repo),
        )
    };
    push("puller", "ns/app:v2").assert_failure_with(&[
        "denied",
        "unauthorized",
        "authentication required",
    ]);
    assert!(reg.get_manifest("ns/app", "v2").is_none());
    // The push token may, but only under ns/.
    push("pusher", "ns/other:v1").assert_success();
    push("pusher", "elsewhere/app:v1").assert_failure_with(&[
        "denied",
        "unauthorized",
        "authentication required",
    ]);
    // A token the lab mints for another service (audience) is refused.
    let mut wrong = ts.config();
    wrong.service = "another-registry".into();
    let jwt = wrong.mint(
        "x",
        &[("ns/app".into(), vec!["pull".into()])],
        Duration::from_secs(60),
    );
    let (status, _) = reg.raw_request(
        "GET",
        "/v2/ns/app/manifests/v1",
        Some(&format!("Bearer {jwt}")),
    );
    assert_eq!(status, 401);
}

/// Seconds since the epoch, with fractions: the clock the registry checks `exp` against.
fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn token_stops_working_after_its_lifetime() {
    let lifetime = Duration::from_secs(2);
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa".into(), vec![Grant::pull("ns/*")])],
        lifetime,
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let issued = unix_now_f64();
    let (status, body) = ts.fetch(Some(("u", "sa")), &["repository:ns/app:pull"]);
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 2);
    let jwt = body["token"].as_str().unwrap().to_string();
    // The registry leeway is compensated in the token itself: the registry (which accepts a
    // token until `exp` + leeway) accepts it for `lifetime` after it was issued, not a minute
    // more. This is what the token says, not how long anything took.
    let claims = jwt_claims(&jwt);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(
        exp + REGISTRY_TOKEN_LEEWAY.as_secs() as i64 - iat,
        lifetime.as_secs() as i64,
        "registry leeway not compensated: {claims}"
    );
    let bearer = format!("Bearer {jwt}");
    let get = || {
        reg.raw_request("GET", "/v2/ns/app/manifests/v1", Some(&bearer))
            .0
    };
    assert_eq!(get(), 200, "fresh token refused");
    // Wait for the registry to refuse it (an event: the wait has a hang guard, no deadline).
    let mut refused_at = 0.0;
    wait_until("the registry to refuse the token", || {
        let status = get();
        // Taken once the answer is in: the registry checked the token before this.
        refused_at = unix_now_f64();
        assert!(status == 200 || status == 401, "status {status}");
        status == 401
    });
    // exp is whole seconds: the token is refused between lifetime - 1 s and lifetime after it
    // was issued, never before. (A slow machine only makes this later, not earlier.)
    let after = refused_at - issued;
    assert!(
        after + 1.1 >= lifetime.as_secs_f64(),
        "token refused too early, after {after:.3} s"
    );
}

#[test]
fn registry_accepts_tokens_for_sixty_seconds_past_exp() {
    // The lab's lifetime compensation assumes distribution's 60 s leeway; check it against the
    // real registry: exp 55 s ago is still accepted, exp 65 s ago is not.
    let ts = TokenServer::start(TokenServerOptions::default());
    let cfg = ts.config();
    let reg = Registry::start(auth(Auth::Token(cfg.clone()), Tls::None));
    ImageSpec::oci()
        .layers(&[100])
        .build()
        .seed(&reg, "ns/app:v1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let access = [("ns/app".to_string(), vec!["pull".to_string()])];
    let leeway = REGISTRY_TOKEN_LEEWAY.as_secs() as i64;
    // mint_with_times sets exp = now' + lifetime - leeway.
    let exp_55s_ago = cfg.mint_with_times("t", &access, Duration::from_secs(5), now);
    assert_eq!(jwt_claims(&exp_55s_ago)["exp"], now + 5 - leeway);
    let exp_65s_ago = cfg.mint_with_times("t", &access, Duration::from_secs(1), now - 6);
    assert_eq!(jwt_claims(&exp_65s_ago)["exp"], now - 65);
    let get = |jwt: &str| {
        reg.raw_request(
            "GET",
            "/v2/ns/app/manifests/v1",
            Some(&format!("Bearer {jwt}")),
        )
        .0
    };
    assert_eq!(get(&exp_55s_ago), 200);
    assert_eq!(get(&exp_65s_ago), 401);
}

// ---------------------------------------------------------------------------------------------
// The token server's protocol.

#[test]
fn token_server_grants_the_intersection_of_scope_and_grants() {
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![(
            "sa-token".into(),
            vec![Grant::pull("ns/app"), Grant::push("team/*")],
        )],
        lifetime: Duration::from_secs(120),
        ..Default::default()
    });
    let (status, body) = ts.fetch(
        Some(("anyone", "sa-token")),
        &[
            "repository:ns/app:pull,push",
            "repository:team/a/b:push,pull repository:other/x:pull",
            "registry:catalog:*",
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["token"], body["access_token"]);
    let claims = jwt_claims(body["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "lab-registry");
    assert_eq!(claims["sub"], "anyone");
    assert_eq!(claims["iss"], ts.config().issuer);
    assert_eq!(
        claims["access"],
        serde_json::json!([
            {"type": "repository", "name": "ns/app", "actions": ["pull"]},
            {"type": "repository", "name": "team/a/b", "actions": ["pull", "push"]},
        ])
    );
    let header: serde_json::Value = {
        use base64::Engine;
        let h = body["token"].as_str().unwrap().split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);

    // Anonymous: a token with empty access.
    let (status, body) = ts.fetch(None, &["repository:ns/app:pull"]);
    assert_eq!(status, 200);
    assert_eq!(
        jwt_claims(body["token"].as_str().unwrap())["access"],
        serde_json::json!([])
    );
    // Wrong password: 401.
    let (status, _) = ts.fetch(Some(("anyone", "nope")), &["repository:ns/app:pull"]);
    assert_eq!(status, 401);

    // OAuth2 POST, password and refresh_token grants.
    let (status, body) = ts.post_form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "sa-token"),
        ("service", "lab-registry"),
        ("scope", "repository:ns/app:pull"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    let (status, _) = ts.post_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "sa-token"),
    ]);
    assert_eq!(status, 200);
    let (status, _) = ts.post_form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "x"),
    ]);
    assert_eq!(status, 401);

    let log = ts.requests();
    assert_eq!(log.len(), 6);
    assert_eq!(
        log[0].scopes.len(),
        4,
        "space-separated scopes are split: {:?}",
        log[0].scopes
    );
    assert_eq!(log[1].user, None);
    assert_eq!(log[2].status, 401);
    assert_eq!(log[3].grant_type.as_deref(), Some("password"));
    assert_eq!(log[4].grant_type.as_deref(), Some("refresh_token"));

    // Only one of the two fields, if asked.
    for (fields, present, absent) in [
        (TokenFields::TokenOnly, "token", "access_token"),
        (TokenFields::AccessTokenOnly, "access_token", "token"),
    ] {
        let ts = TokenServer::start(TokenServerOptions {
            fields,
            ..Default::default()
        });
        let (_, body) = ts.fetch(None, &[]);
        assert!(body[present].is_string(), "{body}");
        assert!(body.get(absent).is_none(), "{body}");
    }
}

#[test]
fn skopeo_reads_access_token_only_responses() {
    // Clients must cope with OAuth2-style answers; skopeo does, so the variant is usable.
    let ts = TokenServer::start(TokenServerOptions {
        tokens: vec![("sa".into(), vec![Grant::pull("*")])],
        fields: TokenFields::AccessTokenOnly,
        ..Default::default()
    });
    let reg = Registry::start(auth(Auth::Token(ts.config()), Tls::None));
    let fx = ImageSpec::docker().layers(&[100]).build();
    fx.seed(&reg, "ns/app:v1");
    let out = skopeo()
        .args(["inspect", "--raw", "--tls-verify=false", "--creds=u:sa"])
        .arg(reg.docker_ref("ns/app:v1"))
        .run();
    out.assert_success();
    assert_eq!(out.stdout_bytes, fx.manifest);
}
