//! What a copy does before its uploads: connections opened to the destination ahead of them
//! (`Client::warm_up`, called when the destination is known to lack the image), and the
//! largest blobs started before the smaller ones. Asserted on what the registries saw.

use std::collections::HashMap;

use ferry::environment::Environment;
use ferry::registry::{Client, ClientOptions, WARM_CONNECTIONS};
use ferry::tls::TlsOptions;

use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

fn pings(reqs: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    reqs.iter()
        .filter(|r| r.kind() == RequestKind::Ping)
        .collect()
}

fn client(reg: &Registry, verify: bool) -> std::sync::Arc<Client> {
    client_with(reg, verify, reg.cert_dir().map(|d| d.to_path_buf()))
}

fn client_with(
    reg: &Registry,
    verify: bool,
    cert_dir: Option<std::path::PathBuf>,
) -> std::sync::Arc<Client> {
    let tls = TlsOptions::new(Some(verify), cert_dir, &Environment::default());
    let opts = ClientOptions {
        tls,
        ..ClientOptions::default()
    };
    Client::new(&reg.host(), opts).unwrap()
}

#[test]
fn warm_up_opens_connections_once_with_unauthenticated_pings_only_over_verified_https() {
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Basic(vec![("user".into(), "secret-pw".into())]),
        ..RegistryOptions::default()
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seen = warm_up_then_ping(&reg, &rt, client(&reg, true), 1 + WARM_CONNECTIONS);
    assert_eq!(seen.len(), 1 + WARM_CONNECTIONS, "{seen:#?}");
    for r in &seen {
        // `GET /v2/` without credentials: the registry answers with its challenge.
        assert_eq!((r.kind(), r.status), (RequestKind::Ping, 401), "{r:#?}");
    }

    // Once per connection pool and process: a second client of the same registry with the
    // same TLS settings shares the pool and opens none, only its own ping goes out.
    let seen = warm_up_then_ping(&reg, &rt, client(&reg, true), 1);
    assert_eq!(seen.len(), 1, "{seen:#?}");

    // Another cert dir (the same CA) is another pool, with no connection open yet: it warms.
    let other = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(reg.cert_dir().unwrap()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, other.path().join(f.file_name().unwrap())).unwrap();
    }
    let c = client_with(&reg, true, Some(other.path().into()));
    let seen = warm_up_then_ping(&reg, &rt, c, 1 + WARM_CONNECTIONS);
    assert_eq!(pings(&seen).len(), 1 + WARM_CONNECTIONS, "{seen:#?}");
    assert_eq!(seen.len(), 1 + WARM_CONNECTIONS, "{seen:#?}");

    // With verification off the scheme is not known yet (plain HTTP may follow): no warm-up,
    // only the client's own ping.
    let seen = warm_up_then_ping(&reg, &rt, client(&reg, false), 1);
    assert_eq!(pings(&seen).len(), 1, "{seen:#?}");
    assert_eq!(seen.len(), 1, "{seen:#?}");
}

/// A new client `c` of `reg` warms up, then pings: what the registry saw meanwhile, once it
/// has seen `expected` pings.
fn warm_up_then_ping(
    reg: &Registry,
    rt: &tokio::runtime::Runtime,
    c: std::sync::Arc<Client>,
    expected: usize,
) -> Vec<LoggedRequest> {
    let mark = reg.mark();
    {
        let _in = rt.enter();
        c.warm_up(WARM_CONNECTIONS);
    }
    rt.block_on(c.base()).unwrap();
    wait_until("the pings", || {
        pings(&reg.requests_since(mark)).len() >= expected
    });
    reg.requests_since(mark)
}

#[test]
fn a_copy_starts_the_largest_blobs_first() {
    let p = Pair::plain();
    let fx = ImageSpec::oci()
        .layers(&[3_000, 2_500_000, 10, 400_000, 9_000_000])
        .build();
    fx.seed(&p.src, "ns/order:v1");
    let mark = p.dst.mark();
    // One blob at a time, so that the order they start in is the order they finish in.
    p.ferry_copy(
        &["--image-parallel-copies", "1"],
        "ns/order:v1",
        "ns/order:v1",
    )
    .assert_success();
    let sizes: HashMap<String, u64> = fx.blobs().into_iter().collect();
    let uploaded: Vec<u64> = p
        .dst
        .requests_since(mark)
        .iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish)
        .map(|r| sizes[&r.query_param("digest").expect("digest=")])
        .collect();
    assert_eq!(uploaded.len(), sizes.len(), "{uploaded:?}");
    let mut largest_first = uploaded.clone();
    largest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(uploaded, largest_first);
}
