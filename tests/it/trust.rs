//! Trust boundaries (issue 11), each against a hostile stand-in on 127.0.0.0/8 (the fault
//! proxy, small listeners), side by side with skopeo where skopeo has a behaviour for the case:
//! tag lists cannot exhaust memory; answers that prove nothing are not success; common mistakes
//! get clear words. The other items have their own files: production pins where its token goes
//! (`promote.rs`), credentials reach only their registry (`credentials.rs`), files are never
//! written through planted links (`files.rs`), the webhook's answer must name the build
//! (`trigger.rs`).

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;

use crate::faults::one_error_line;
use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// 3. Memory stays bounded whatever the registry sends.

/// A stand-in registry serving `repo`'s tags in pages of `per_page` one-letter tags (the most
/// tags per byte), each linking to the next: `pages` of them, or forever.
fn tag_pages(per_page: usize, pages: Option<usize>) -> FaultProxy {
    let stand_in = FaultProxy::standalone("127.0.0.1");
    stand_in.add(Rule::new(
        "GET",
        "^/v2/$",
        Fault::Status {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        },
    ));
    let page: std::sync::Arc<Vec<u8>> = std::sync::Arc::new(
        format!(
            r#"{{"name":"ns/many","tags":[{}]}}"#,
            vec![r#""a""#; per_page].join(",")
        )
        .into_bytes(),
    );
    stand_in.add(Rule::new(
        "GET",
        "/tags/list$",
        Fault::respond(move |seen| {
            let n: usize = seen
                .query
                .split('&')
                .find_map(|p| p.strip_prefix("last="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                + 1;
            let mut b = Response::builder()
                .status(200)
                .header("content-type", "application/json");
            if pages.is_none_or(|p| n < p) {
                b = b.header(
                    "link",
                    format!(r#"</v2/ns/many/tags/list?last={n}>; rel="next""#),
                );
            }
            b.body(Body::from(page.as_ref().clone())).unwrap()
        }),
    ));
    stand_in
}

/// A registry that pages tags forever: `list-tags` and `sync` stop at the limit on tag data
/// (`FERRY_MAX_TAG_DATA`, here 32 MiB) with one line naming it and how to raise it, and the
/// process's peak memory grows by about the limit, not a multiple of it.
#[test]
fn endless_tag_pages_stop_at_the_limit_with_memory_bounded() {
    const LIMIT_MIB: u64 = 32;
    let endless = tag_pages(65_536, None);
    let small = tag_pages(10, Some(1));
    let dst = Registry::start(RegistryOptions::default());
    let list = |stand_in: &FaultProxy, limit: Option<&str>| {
        let mut t = ferry();
        t.args(["list-tags", "--tls-verify=false"])
            .arg(stand_in.docker_ref("ns/many"));
        if let Some(l) = limit {
            t.env("FERRY_MAX_TAG_DATA", l);
        }
        t.run()
    };
    let base = list(&small, None);
    base.assert_success();
    let out = list(&endless, Some(&format!("{LIMIT_MIB}MiB")));
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains("invalid tag list from")
            && line.contains("more than the 32MiB allowed for tag data")
            && line
                .contains("set FERRY_MAX_TAG_DATA to allow more (e.g. FERRY_MAX_TAG_DATA=128MiB)"),
        "{out}"
    );
    let grew_kib = out.max_rss_kib.saturating_sub(base.max_rss_kib);
    eprintln!(
        "list-tags peak RSS: {} KiB for one small page, {} KiB at the {LIMIT_MIB} MiB limit",
        base.max_rss_kib, out.max_rss_kib
    );
    assert!(
        grew_kib <= LIMIT_MIB * 1024 * 5 / 4,
        "peak RSS grew by {grew_kib} KiB for a {LIMIT_MIB} MiB limit\n{out}"
    );
    // Pages were read until the limit, not fewer: the limit is what stopped it.
    let pages = endless.requests_to("GET", "/tags/list").len();
    assert!(pages >= 5, "{pages} pages");

    let sync = ferry()
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("{}/ns/many", endless.host()))
        .arg(format!("{}/mirror", dst.host()))
        .env("FERRY_MAX_TAG_DATA", format!("{LIMIT_MIB}MiB"))
        .run();
    assert_eq!(sync.code, Some(1), "{sync}");
    assert!(
        one_error_line(&sync).contains("more than the 32MiB allowed for tag data"),
        "{sync}"
    );
    let grew_kib = sync.max_rss_kib.saturating_sub(base.max_rss_kib);
    eprintln!(
        "sync peak RSS: {} KiB at the {LIMIT_MIB} MiB limit",
        sync.max_rss_kib
    );
    assert!(
        grew_kib <= LIMIT_MIB * 1024 * 5 / 4,
        "sync: peak RSS grew by {grew_kib} KiB for a {LIMIT_MIB} MiB limit\n{sync}"
    );
}

/// Within the default limit every tag is listed; a list beyond a lower limit is refused, and
/// raising `FERRY_MAX_TAG_DATA` as the message says lists it whole.
#[test]
fn the_tag_data_limit_can_be_raised() {
    let stand_in = tag_pages(20_000, Some(3));
    let list = |limit: Option<&str>| {
        let mut t = ferry();
        t.args(["list-tags", "--tls-verify=false"])
            .arg(stand_in.docker_ref("ns/many"));
        if let Some(l) = limit {
            t.env("FERRY_MAX_TAG_DATA", l);
        }
        t.run()
    };
    let count = |out: &Output| {
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["Tags"].as_array().unwrap().len()
    };
    let out = list(None);
    out.assert_success();
    assert_eq!(count(&out), 60_000);
    let out = list(Some("2MiB"));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        one_error_line(&out).contains("FERRY_MAX_TAG_DATA=8MiB"),
        "{out}"
    );
    let out = list(Some("8MiB"));
    out.assert_success();
    assert_eq!(count(&out), 60_000);
    // A value that is no size is refused before anything is asked.
    let before = stand_in.requests().len();
    let out = list(Some("lots"));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(one_error_line(&out).contains("FERRY_MAX_TAG_DATA"), "{out}");
    assert_eq!(stand_in.requests().len(), before);
}

// ---------------------------------------------------------------------------------------------
// 5. Answers that do not prove success are not success.

/// An index entry whose media type disagrees with the manifest it names: ferry, which never
/// rewrites an index (the digest would change), refuses it — as skopeo refuses it when it may
/// not modify the index (`--preserve-digests`). Nothing is written.
#[test]
fn an_index_entry_whose_media_type_disagrees_with_its_manifest_is_refused() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::oci().platforms(2).build();
    fx.seed(src, "ns/app:v1");
    let proxy = FaultProxy::start(src);
    proxy.add(Rule::new(
        "GET",
        "/manifests/v1$",
        Fault::rewrite(|b| {
            String::from_utf8(b)
                .unwrap()
                .replacen(OCI_MANIFEST, DOCKER_MANIFEST, 1)
                .into_bytes()
        }),
    ));
    let child = &fx.child_digests()[0];
    let out = ferry()
        .args(["copy", "--retry-times=0"])
        .args(proxy.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("invalid index entry {child} from {}", proxy.host()))
            && line.contains(&format!(
                "the index declares media type {DOCKER_MANIFEST:?}, the manifest itself is {OCI_MANIFEST:?}"
            )),
        "{out}"
    );
    assert!(dst.get_manifest("ns/app", "v1").is_none());
    assert!(dst.get_manifest("ns/app", child).is_none());
    // skopeo, told to keep the digests, refuses it too.
    let sk = skopeo()
        .args(["copy", "--all", "--preserve-digests"])
        .args(proxy.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/skopeo:v1"))
        .run();
    assert_eq!(sk.code, Some(1), "{sk}");
    assert!(dst.get_manifest("ns/skopeo", "v1").is_none());
}

/// Exit code 2 means only that the source image does not exist: a production registry that
/// accepted the push and then answers 404 for the tag is an error of the destination (exit 1).
#[test]
fn a_destination_that_cannot_produce_what_it_accepted_is_exit_1() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[900]).build();
    fx.seed(src, "dev/app:c1");
    let proxy = FaultProxy::start(dst);
    proxy.add(Rule::new(
        "HEAD",
        "/manifests/c1$",
        Fault::Status {
            status: 404,
            headers: vec![],
            body: vec![],
        },
    ));
    let sb = Sandbox::new();
    let config = crate::promote::write_config(
        sb.path(),
        &crate::promote::promotion_yaml(&[&src.host()], &[&proxy.host()], &["dev"], &["prod"]),
    );
    let tok = sb.path().join("token");
    std::fs::write(&tok, "unused-token").unwrap();
    let promote = |tag: &str| {
        sb.ferry()
            .args([
                "--insecure-policy",
                "promote",
                "--image-name=app",
                "--retry-times=0",
            ])
            .arg(format!("--tag={tag}"))
            .args([
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--config",
            ])
            .arg(&config)
            .arg("--src-token-file")
            .arg(&tok)
            .arg("--dest-token-file")
            .arg(&tok)
            .run()
    };
    let out = promote("c1");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        one_error_line(&out).contains(&format!(
            "invalid production tag c1 from {}/prod/app: the registry accepted the copy but does not have the tag when it is read back",
            proxy.host()
        )),
        "{out}"
    );
    // The push itself happened: the registry holds it, only its answers lie.
    assert_eq!(
        dst.manifest_digest("prod/app", "c1").as_deref(),
        Some(fx.digest.as_str())
    );
    // A source image that does not exist is still exit 2.
    let out = promote("c2");
    assert_eq!(out.code, Some(2), "{out}");
}

// ---------------------------------------------------------------------------------------------
// 6. Clear words for common mistakes.

/// A TCP forwarder in front of a registry that counts the connections made through it (so a
/// retried TLS handshake, which no HTTP log sees, is counted).
struct CountingTcp {
    addr: std::net::SocketAddr,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CountingTcp {
    fn start(upstream: String) -> CountingTcp {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        CountingTcp {
            addr,
            count,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn connections(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CountingTcp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A registry that speaks plain HTTP, reached as HTTPS: one line saying so and naming the
/// side's flag, no TLS library jargon, and no retry (one connection); a certificate the
/// client does not trust is not retried either.
#[test]
fn a_plain_http_registry_reached_over_https_is_named_and_not_retried() {
    let plain = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[600]).build();
    fx.seed(&plain, "ns/app:v1");
    let front = CountingTcp::start(plain.host());
    let out = ferry()
        .args(["inspect", "--retry-times=3", "--retry-delay=10ms"])
        .arg(format!("docker://{}/ns/app:v1", front.host()))
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.ends_with(&format!(
            "the registry at {} answered in plain HTTP, not HTTPS; use --tls-verify=false if that is intended",
            front.host()
        )),
        "{out}"
    );
    assert!(!out.stderr.contains("InvalidContentType"), "{out}");
    assert_eq!(
        front.connections(),
        1,
        "a deterministic failure was retried\n{out}"
    );

    // The flag named is the side's own.
    let other = Registry::start(RegistryOptions::default());
    fx.seed(&other, "ns/app:v1");
    let out = ferry()
        .args(["copy", "--retry-times=3", "--retry-delay=10ms"])
        .args(other.tls_args(Side::Src))
        .arg(other.docker_ref("ns/app:v1"))
        .arg(format!("docker://{}/ns/app:v2", front.host()))
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        one_error_line(&out).ends_with(&format!(
            "the registry at {} answered in plain HTTP, not HTTPS; use --dest-tls-verify=false if that is intended",
            front.host()
        )),
        "{out}"
    );
    assert_eq!(front.connections(), 2);

    // An untrusted certificate: one connection too.
    let https = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        ..Default::default()
    });
    let front = CountingTcp::start(https.host());
    let out = ferry()
        .args(["inspect", "--retry-times=3", "--retry-delay=10ms"])
        .arg(format!("docker://{}/ns/app:v1", front.host()))
        .run();
    assert_eq!(out.code, Some(1), "{out}");
    let line = one_error_line(&out);
    assert!(
        line.contains("certificate") && line.contains("--cert-dir"),
        "{out}"
    );
    assert_eq!(
        front.connections(),
        1,
        "a certificate failure was retried\n{out}"
    );
}

/// A cert dir, or a certificate in it, that others may write to: a warning naming the path,
/// its mode and that it "is writable by others" (the command still runs); none when only the
/// owner may write.
#[test]
fn writable_cert_dirs_are_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        ..Default::default()
    });
    let fx = ImageSpec::oci().layers(&[400]).build();
    fx.seed(&reg, "ns/app:v1");
    let sb = Sandbox::new();
    let dir = sb.path().join("certs");
    pki::lab_ca().write_cert_dir(&dir, Some(&pki::lab_ca().client));
    let ca = dir.join("ca.crt");
    let key = dir.join("client.key");
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let inspect = || {
        let out = sb
            .ferry()
            .args(["inspect", "--raw", "--cert-dir"])
            .arg(&dir)
            .arg(reg.docker_ref("ns/app:v1"))
            .run();
        out.assert_success();
        out
    };
    chmod(&dir, 0o755);
    chmod(&ca, 0o644);
    chmod(&key, 0o600);
    let out = inspect();
    assert!(!out.stderr.contains("writable"), "{out}");
    chmod(&dir, 0o777);
    let out = inspect();
    assert!(
        out.stderr.contains(&format!(
            "warn: cert dir {} (mode 0777) is writable by others",
            dir.display()
        )),
        "{out}"
    );
    chmod(&dir, 0o755);
    chmod(&ca, 0o666);
    let out = inspect();
    assert!(
        out.stderr.contains(&format!(
            "warn: TLS file {} (mode 0666) is writable by others",
            ca.display()
        )),
        "{out}"
    );
    assert!(!out.stderr.contains("cert dir"), "{out}");
    chmod(&ca, 0o644);
    chmod(&key, 0o660);
    let out = inspect();
    assert!(
        out.stderr.contains(&format!(
            "warn: TLS file {} (mode 0660) is writable by others",
            key.display()
        )),
        "{out}"
    );
}

/// A body that trickles (16 bytes every 100 ms: under 1 KiB per 2 s stall window) counts as
/// stalled: a blob download resumes with `Range`, a manifest read is retried, and the copy
/// completes with the source's digest.
#[test]
fn a_trickling_body_counts_as_stalled() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci()
        .uncompressed()
        .layers(&[1_400_000, 300])
        .build();
    fx.seed(src, "ns/app:v1");
    let big = fx.image().layers[0].digest.clone();
    let proxy = FaultProxy::start(src);
    let trickle = || Fault::Trickle(16, Duration::from_millis(100));
    let manifest = proxy.add(Rule::new("GET", "/manifests/v1$", trickle()).once());
    let blob = proxy.add(Rule::new("GET", &format!("/blobs/{big}$"), trickle()).once());
    let out = ferry()
        .args([
            "copy",
            "--retry-times=2",
            "--retry-delay=10ms",
            "--stall-timeout=2s",
        ])
        .args(proxy.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    out.assert_success();
    assert_eq!(
        dst.manifest_digest("ns/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
    assert_eq!(proxy.hits(manifest), 1);
    assert_eq!(proxy.requests_to("GET", "/manifests/v1").len(), 2, "{out}");
    assert_eq!(proxy.hits(blob), 1);
    let gets = proxy.requests_to("GET", &format!("/blobs/{big}"));
    assert_eq!(gets.len(), 2, "{gets:#?}");
    let range = gets[1]
        .header("range")
        .expect("the download resumed with Range");
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .expect("bytes=N-");
    assert!(from > 0 && from < 1024, "{range}");
    assert!(
        out.stderr.contains("less than 1024 bytes in 2 s (stalled)"),
        "{out}"
    );
}
