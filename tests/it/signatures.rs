//! OpenShift image signatures (the registry API extension) are copied as skopeo copies them:
//! the destination gets the same signature bytes, once, after the manifest they sign. The
//! registries are the lab's; the extension is a stand-in built from OpenShift's registry
//! (`tests/it/support/signatures.rs`), and Debian's skopeo 1.9.3 runs against the same
//! stand-in as the oracle.

use crate::support::faults::FaultProxy;
use crate::support::fixtures::*;
use crate::support::signatures::SignatureExtension;
use crate::support::*;

/// Two lab registries, each behind a proxy that can serve the extension, and an image in
/// the source as `ns/app:v1`.
struct Pair {
    /// Kept running behind `src`.
    _src_reg: Registry,
    dst_reg: Registry,
    src: FaultProxy,
    dst: FaultProxy,
    fx: Fixture,
}

impl Pair {
    fn new(spec: ImageSpec) -> Pair {
        let src_reg = Registry::start(RegistryOptions::default());
        let dst_reg = Registry::start(RegistryOptions::default());
        let fx = spec.build();
        fx.seed(&src_reg, "ns/app:v1");
        let (src, dst) = (FaultProxy::start(&src_reg), FaultProxy::start(&dst_reg));
        Pair {
            _src_reg: src_reg,
            dst_reg,
            src,
            dst,
            fx,
        }
    }
}

fn copy(tool: &mut Tool, extra: &[&str], src: &FaultProxy, dst: &FaultProxy, to: &str) -> Output {
    tool.arg("copy")
        .args(extra)
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref(to))
        .run()
}

#[test]
fn openshift_signatures_are_copied_once_after_the_manifest_like_skopeo() {
    let p = Pair::new(ImageSpec::docker().layers(&[1500, 3000]));
    let (src_sigs, dst_sigs) = (
        SignatureExtension::serve(&p.src),
        SignatureExtension::serve(&p.dst),
    );
    src_sigs.add("ns/app", &p.fx.digest, "atomic", b"\x89signature one");
    src_sigs.add("ns/app", &p.fx.digest, "atomic", b"\x89signature two");
    // Not an atomic signature: neither tool copies it.
    src_sigs.add("ns/app", &p.fx.digest, "other", b"something else");

    let sb = Sandbox::new();
    let report = sb.path().join("report.json");
    let report_arg = format!("--report={}", report.display());
    let f = copy(
        &mut sb.ferry(),
        &[&report_arg],
        &p.src,
        &p.dst,
        "prod/app:v1",
    );
    f.assert_success();
    assert_eq!(
        p.dst_reg.manifest_digest("prod/app", "v1").as_deref(),
        Some(p.fx.digest.as_str())
    );
    let copied = dst_sigs.signatures("prod/app", &p.fx.digest);
    let contents: Vec<&[u8]> = copied.iter().map(|s| s.content.as_slice()).collect();
    assert_eq!(
        contents,
        [&b"\x89signature one"[..], b"\x89signature two"],
        "{f}"
    );
    for s in &copied {
        assert_eq!(s.kind, "atomic");
        let (d, unique) = s.name.split_once('@').unwrap();
        assert_eq!(d, p.fx.digest);
        assert!(
            unique.len() == 32 && unique.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}",
            s.name
        );
    }
    assert!(f.stdout.contains(", 2 signature(s) in"), "{f}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["signatures_copied"], 2);
    assert_eq!(r["signatures_not_copied"], serde_json::json!([]));
    // Signatures were written after the manifest they sign (OpenShift needs the image).
    let log = p.dst.requests();
    let manifest_put = log
        .iter()
        .position(|r| r.is("PUT", "/v2/prod/app/manifests/v1"))
        .unwrap();
    let first_sig = log
        .iter()
        .position(|r| r.is("PUT", "/extensions/v2/prod/app/"))
        .unwrap();
    assert!(manifest_put < first_sig, "{log:#?}");

    // Again: the image and its signatures are there; nothing is added.
    let f = copy(&mut sb.ferry(), &[], &p.src, &p.dst, "prod/app:v1");
    f.assert_success();
    assert!(f.stdout.contains("already present"), "{f}");
    assert_eq!(dst_sigs.signatures("prod/app", &p.fx.digest), copied);

    // skopeo, the oracle, copies the same signature bytes.
    let s = copy(&mut skopeo(), &[], &p.src, &p.dst, "skopeo/app:v1");
    s.assert_success();
    let by_skopeo: Vec<Vec<u8>> = dst_sigs
        .signatures("skopeo/app", &p.fx.digest)
        .into_iter()
        .map(|s| s.content)
        .collect();
    let by_ferry: Vec<Vec<u8>> = copied.into_iter().map(|s| s.content).collect();
    assert_eq!(by_skopeo, by_ferry);

    // --remove-signatures: none read, none copied, nothing said.
    let reads = |p: &FaultProxy| p.requests_to("GET", "/extensions/v2/ns/app/").len();
    let before = reads(&p.src);
    let f = copy(
        &mut sb.ferry(),
        &["--remove-signatures"],
        &p.src,
        &p.dst,
        "bare/app:v1",
    );
    f.assert_success();
    assert_eq!(
        p.dst_reg.manifest_digest("bare/app", "v1").as_deref(),
        Some(p.fx.digest.as_str())
    );
    assert!(dst_sigs.signatures("bare/app", &p.fx.digest).is_empty());
    assert!(!f.stderr.contains("signature"), "{f}");
    assert_eq!(reads(&p.src), before);
}

#[test]
fn a_destination_without_the_extension_gets_the_image_and_a_note() {
    let p = Pair::new(ImageSpec::oci().layers(&[1000]));
    let src_sigs = SignatureExtension::serve(&p.src);
    src_sigs.add("ns/app", &p.fx.digest, "atomic", b"sig");
    // skopeo copies the image and puts the signature in its local "lookaside" directory
    // (registries.d's default, here under the sandbox's HOME): on a Jenkins agent, a
    // directory that goes away with the pod.
    let sb = Sandbox::new();
    let s = copy(&mut sb.skopeo(), &[], &p.src, &p.dst, "sk/app:v1");
    s.assert_success();
    let lookaside = sb.home().join(".local/share/containers/sigstore");
    let stored: Vec<Vec<u8>> = walk(&lookaside)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("signature-"))
        })
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(stored, [b"sig".to_vec()], "{s}");
    // ferry copies the image and says what was left behind.
    let f = copy(&mut ferry(), &[], &p.src, &p.dst, "prod/app:v1");
    f.assert_success();
    assert_eq!(
        p.dst_reg.manifest_digest("prod/app", "v1").as_deref(),
        Some(p.fx.digest.as_str())
    );
    assert!(
        f.stderr
            .contains("Note: a signature of the source was not copied: 1 simple signature(s)")
            && f.stderr.contains("does not store signatures"),
        "{f}"
    );
}

/// `ferry copy` without retries, which must fail with exit 1 and one `Error:` line: that line.
fn failed_copy(src: &FaultProxy, dst: &FaultProxy) -> String {
    let f = copy(&mut ferry(), &["--retry-times=0"], src, dst, "prod/app:v1");
    assert_eq!(f.code, Some(1), "{f}");
    crate::faults::one_error_line(&f)
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_signature_the_source_cannot_list_fails_the_copy_before_anything_is_written() {
    use crate::support::faults::{Fault, Rule};
    let p = Pair::new(ImageSpec::oci().layers(&[1000]));
    // The source announces the extension but refuses to list signatures.
    p.src
        .add(Rule::new("GET", "/extensions/v2/", Fault::status(403)));
    SignatureExtension::serve(&p.src);
    SignatureExtension::serve(&p.dst);
    let error = failed_copy(&p.src, &p.dst);
    assert!(
        error.contains("reading the signatures of") && error.contains("HTTP 403"),
        "{error}"
    );
    assert!(
        p.dst
            .requests()
            .iter()
            .all(|r| r.method != "PUT" && r.method != "POST"),
        "{:#?}",
        p.dst.requests()
    );
}

#[test]
fn a_signature_the_destination_refuses_fails_the_command_with_the_image_in_place() {
    use crate::support::faults::{Fault, Rule};
    let p = Pair::new(ImageSpec::oci().layers(&[1000]));
    SignatureExtension::serve(&p.src).add("ns/app", &p.fx.digest, "atomic", b"sig");
    p.dst.add(Rule::new(
        "PUT",
        "/extensions/v2/",
        Fault::Status {
            status: 400,
            headers: vec![("content-type".into(), "application/json".into())],
            body:
                br#"{"errors":[{"code":"SIGNATURE_INVALID","message":"invalid image signature"}]}"#
                    .to_vec(),
        },
    ));
    SignatureExtension::serve(&p.dst);
    let error = failed_copy(&p.src, &p.dst);
    assert!(
        error.contains("writing a signature of") && error.contains("SIGNATURE_INVALID"),
        "{error}"
    );
    assert_eq!(
        p.dst_reg.manifest_digest("prod/app", "v1").as_deref(),
        Some(p.fx.digest.as_str())
    );
}
