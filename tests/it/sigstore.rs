//! Invoked as `skopeo`, ferry copies cosign `.sig` attachments as skopeo does: only where
//! `registries.d` sets `use-sigstore-attachments: true`, by rebuilding the destination's
//! `.sig` manifest the way containers/image does (not byte for byte: that is ferry's own
//! mode). Debian's skopeo 1.9.3 and current skopeo (1.18, `scripts/skopeo-current`) write the
//! same bytes: they are the oracles.

use crate::support::fixtures::*;
use crate::support::referrers::*;
use crate::support::*;

fn copy(
    tool: &mut Tool,
    regd: Option<&std::path::Path>,
    src: &Registry,
    dst: &Registry,
    to: &str,
) -> Output {
    if let Some(d) = regd {
        tool.arg(format!("--registries.d={}", d.display()));
    }
    tool.arg("copy")
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref(to))
        .run()
}

/// The `.sig` manifest and its config at `repo`.
fn sig_of(dst: &Registry, repo: &str, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let m = dst
        .get_manifest(repo, tag)
        .unwrap_or_else(|| panic!("no {tag} in {repo}"));
    let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    let config = dst
        .get_blob(repo, v["config"]["digest"].as_str().unwrap())
        .unwrap();
    (m.bytes, config)
}

#[test]
fn sig_attachments_are_rebuilt_as_skopeo_rebuilds_them() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1100]).build();
    fx.seed(&src, "ns/app:v1");
    let tag = format!("{}.sig", fallback_tag(&fx.digest));
    let sig = cosign_signature(&fx.digest, &src.image("ns/app"), "<&>");
    sig.push(&src.url(), "ns/app", Some(&tag));
    let sb = Sandbox::new();
    let regd = sb.path().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("sigstore.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    // A destination `.sig` that already holds another signature (made by cosign): merged.
    let other = cosign_signature(&fx.digest, &src.image("ns/app"), "other");
    let tools: Vec<(&str, Tool)> = vec![
        ("skopeo", sb.skopeo()),
        ("ferry", sb.ferry_as_skopeo()),
        ("current", sb.skopeo_current()),
    ];
    let mut results = vec![];
    for (name, mut tool) in tools {
        let (fresh, merged) = (format!("{name}/app"), format!("{name}-merged/app"));
        other.push(&dst.url(), &merged, Some(&tag));
        copy(&mut tool, Some(&regd), &src, &dst, &format!("{fresh}:v1")).assert_success();
        let first = sig_of(&dst, &fresh, &tag);
        results.push((name, first.clone(), {
            let mut again = tool_again(&sb, name);
            copy(&mut again, Some(&regd), &src, &dst, &format!("{fresh}:v1")).assert_success();
            assert_eq!(
                sig_of(&dst, &fresh, &tag),
                first,
                "{name}: a second copy changes nothing"
            );
            let mut t = tool_again(&sb, name);
            copy(&mut t, Some(&regd), &src, &dst, &format!("{merged}:v1")).assert_success();
            sig_of(&dst, &merged, &tag)
        }));
    }
    let (_, sk_fresh, sk_merged) = &results[0];
    for (name, fresh, merged) in &results[1..] {
        assert_eq!(
            String::from_utf8_lossy(&fresh.0),
            String::from_utf8_lossy(&sk_fresh.0),
            "{name}: the rebuilt .sig manifest"
        );
        assert_eq!(fresh.1, sk_fresh.1, "{name}: its config");
        assert_eq!(
            String::from_utf8_lossy(&merged.0),
            String::from_utf8_lossy(&sk_merged.0),
            "{name}: merged with an existing .sig"
        );
        assert_eq!(merged.1, sk_merged.1, "{name}: merged config");
    }
    // The signature itself (payload and annotations) is the source's.
    let v: serde_json::Value = serde_json::from_slice(&sk_fresh.0).unwrap();
    let src_v: serde_json::Value = serde_json::from_slice(&sig.manifest).unwrap();
    assert_eq!(v["layers"], src_v["layers"]);
    let v: serde_json::Value = serde_json::from_slice(&sk_merged.0).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);

    // Without use-sigstore-attachments: nothing, and ferry says so.
    let out = copy(&mut sb.ferry_as_skopeo(), None, &src, &dst, "plain/app:v1");
    out.assert_success();
    assert_eq!(dst.tags("plain/app"), vec!["v1".to_string()]);
    assert!(out.stderr.contains(&tag), "{out}");
}

fn tool_again(sb: &Sandbox, name: &str) -> Tool {
    match name {
        "skopeo" => sb.skopeo(),
        "ferry" => sb.ferry_as_skopeo(),
        _ => sb.skopeo_current(),
    }
}
