//! `HTTPS_PROXY`/`NO_PROXY`: ferry reaches registries through a CONNECT proxy as skopeo does,
//! sends the proxy's credentials to the proxy only, never prints them, and — as Go, hence
//! skopeo — never proxies a loopback address. The registries are reached by a name only the
//! proxy knows, so a request that did not go through the proxy could not have succeeded.

use crate::support::connect_proxy::ConnectProxy;
use crate::support::fixtures::*;
use crate::support::pki::PROXIED_HOST;
use crate::support::*;

/// A registry reached through the proxy: `docker://registry.ferry.test:PORT/<name>`.
fn proxied_ref(reg: &Registry, name: &str) -> String {
    format!("docker://{PROXIED_HOST}:{}/{name}", reg.port())
}

fn tls() -> RegistryOptions {
    RegistryOptions {
        tls: Tls::Ca,
        ..Default::default()
    }
}

#[test]
fn copy_goes_through_https_proxy_like_skopeo_with_the_proxy_credentials() {
    let src = Registry::start(tls());
    let dst = Registry::start(tls());
    let fx = ImageSpec::oci().layers(&[3000, 1_200_000]).build();
    fx.seed(&src, "ns/app:v1");
    let proxy = ConnectProxy::start();
    let proxy_url = proxy.url_with_credentials("proxyuser", "Pr0xyS3cret");
    let expected_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "proxyuser:Pr0xyS3cret"
        )
    );

    let copy = |tool: &mut Tool, tag: &str| {
        tool.env("HTTPS_PROXY", &proxy_url)
            .arg("copy")
            .args(src.tls_args(Side::Src))
            .args(dst.tls_args(Side::Dest))
            .arg(proxied_ref(&src, "ns/app:v1"))
            .arg(proxied_ref(&dst, &format!("prod/app:{tag}")))
            .run()
    };
    let f = copy(ferry().arg("--debug"), "ferry");
    f.assert_success();
    assert_eq!(
        dst.manifest_digest("prod/app", "ferry").as_deref(),
        Some(fx.digest.as_str()),
        "{f}"
    );
    let seen = proxy.requests();
    for reg in [&src, &dst] {
        let line = format!("CONNECT {PROXIED_HOST}:{} HTTP/1.1", reg.port());
        let tunnels: Vec<_> = seen.iter().filter(|r| r.line == line).collect();
        assert!(!tunnels.is_empty(), "no {line:?}: {seen:#?}");
        assert!(
            tunnels
                .iter()
                .all(|r| r.authorization.as_deref() == Some(expected_auth.as_str())),
            "{seen:#?}"
        );
    }
    assert!(
        seen.iter().all(|r| r.line.starts_with("CONNECT ")),
        "{seen:#?}"
    );
    // --debug names the proxy, never its password.
    assert!(f.stderr.contains("through the proxy"), "{f}");
    for out in [&f.stdout, &f.stderr] {
        assert!(!out.contains("Pr0xyS3cret"), "{f}");
        assert!(
            !out.contains(expected_auth.trim_start_matches("Basic ")),
            "{f}"
        );
    }

    // skopeo, the oracle, does the same through the same proxy and lands on the same digest.
    let before = proxy.requests().len();
    let s = copy(&mut skopeo(), "skopeo");
    s.assert_success();
    assert_eq!(
        dst.manifest_digest("prod/app", "skopeo"),
        dst.manifest_digest("prod/app", "ferry")
    );
    let by_skopeo = &proxy.requests()[before..];
    assert!(
        by_skopeo
            .iter()
            .any(|r| r.line.starts_with(&format!("CONNECT {PROXIED_HOST}:"))
                && r.authorization.as_deref() == Some(expected_auth.as_str())),
        "{by_skopeo:#?}"
    );
}

#[test]
fn loopback_registries_are_reached_directly_like_skopeo() {
    let src = Registry::start(tls());
    let fx = ImageSpec::oci().layers(&[2000]).build();
    fx.seed(&src, "ns/app:v1");
    let proxy = ConnectProxy::start();
    // 127.0.0.1 is never proxied (Go's rule, so skopeo's too).
    for tool in [ferry(), skopeo()] {
        let mut tool = tool;
        tool.env("HTTPS_PROXY", proxy.url())
            .arg("inspect")
            .args(src.tls_args(Side::Plain))
            .args(["--format", "{{.Digest}}"])
            .arg(src.docker_ref("ns/app:v1"));
        let out = tool.run();
        out.assert_success();
        assert_eq!(out.stdout.trim(), fx.digest, "{out}");
    }
    assert_eq!(proxy.requests(), vec![], "loopback went through the proxy");
    // By name, through the proxy. (NO_PROXY's rules are unit-tested in `src/tls.rs`: a
    // direct connection by name would need DNS, and the tests' traffic stays on loopback.)
    let out = ferry()
        .env("HTTPS_PROXY", proxy.url())
        .args(["inspect", "--format", "{{.Digest}}"])
        .args(src.tls_args(Side::Plain))
        .arg(proxied_ref(&src, "ns/app:v1"))
        .run();
    out.assert_success();
    assert_eq!(out.stdout.trim(), fx.digest, "{out}");
    // One tunnel per connection ferry opened (it may open more than one for concurrent
    // requests), every one to the registry.
    let seen = proxy.requests();
    let line = format!("CONNECT {PROXIED_HOST}:{} HTTP/1.1", src.port());
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.line == line),
        "{seen:#?}"
    );
}
