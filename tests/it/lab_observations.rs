//! Tests of the lab's observations: the registries' request log and the image fixtures
//! (real images, shared layers, seeding every variant). See `lab.rs` for the shared helpers.

use std::io::Read;

use crate::lab::{assert_holds, auth, skopeo_copy_in, tls};
use crate::support::fixtures::*;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The request log.

#[test]
fn request_log_shows_uploads_skips_and_mounts() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1000, 2000]).build();
    fx.seed(&src, "ns/app:v1");

    // The seeding is in src's log: blobs uploaded, then the manifest.
    let seeded = src.requests();
    assert!(
        seeded.iter().all(|r| r.user_agent.contains("skopeo")),
        "{seeded:#?}"
    );
    let puts: Vec<&LoggedRequest> = seeded
        .iter()
        .filter(|r| r.kind() == RequestKind::ManifestPut)
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        (puts[0].path.as_str(), puts[0].status),
        ("/v2/ns/app/manifests/v1", 201)
    );
    assert_eq!(puts[0].repo().as_deref(), Some("ns/app"));
    assert_eq!(puts[0].reference().as_deref(), Some("v1"));

    // First copy: every blob uploaded (config + 2 layers), then one manifest PUT, last.
    // One sandbox for all copies: skopeo's blob info cache then knows where blobs already are.
    let sb = Sandbox::new();
    let copy = |to: &str| {
        skopeo_copy_in(
            &sb,
            false,
            &src.tls_args(Side::Src),
            &dst.tls_args(Side::Dest),
            &src.docker_ref("ns/app:v1"),
            &dst.docker_ref(to),
        )
        .assert_success();
    };
    let mark = dst.mark();
    copy("prod/app:v1");
    let reqs = dst.requests_since(mark);
    let mut uploaded: Vec<String> = reqs
        .iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish)
        .map(|r| {
            assert_eq!(r.status, 201, "{r:?}");
            r.query_param("digest").unwrap()
        })
        .collect();
    uploaded.sort();
    let mut expected = fx.image().blob_digests();
    expected.sort();
    assert_eq!(uploaded, expected);
    let last = reqs.last().unwrap();
    assert_eq!(last.kind(), RequestKind::ManifestPut);
    assert_eq!(
        (last.path.as_str(), last.status),
        ("/v2/prod/app/manifests/v1", 201)
    );
    assert!(reqs.iter().all(|r| !r.line.contains("lab-sentinel")));

    // Same copy again: blobs exist, nothing is uploaded.
    let mark = dst.mark();
    copy("prod/app:v1");
    let again = dst.requests_since(mark);
    assert!(
        !again.iter().any(|r| r.kind() == RequestKind::UploadFinish),
        "{again:#?}"
    );
    assert!(
        again
            .iter()
            .any(|r| r.kind() == RequestKind::BlobHead && r.status == 200)
    );

    // Into another repository of the same registry: skopeo mounts the blobs its cache knows
    // are there.
    let mark = dst.mark();
    copy("other/app:v1");
    let third = dst.requests_since(mark);
    let mounts: Vec<&LoggedRequest> = third
        .iter()
        .filter(|r| r.kind() == RequestKind::BlobMount)
        .collect();
    assert!(!mounts.is_empty(), "{third:#?}");
    for m in &mounts {
        assert_eq!(m.status, 201, "mounted, not uploaded: {m:?}");
        assert_eq!(m.query_param("from").as_deref(), Some("prod/app"));
    }
    assert_holds(&dst, "other/app", "v1", &fx);

    // A mark excludes everything before it; an empty interval is empty.
    let m = dst.mark();
    assert!(dst.requests_since(m).is_empty());
}

#[test]
fn request_log_parses_combined_log_lines() {
    let line = r#"127.0.0.1 - - [27/Nov/2025:08:53:00 +0000] "POST /v2/ns/app/blobs/uploads/?mount=sha256%3Aab&from=ns%2Fold HTTP/1.1" 201 0 "" "skopeo/1.9.3 \"quoted\"""#;
    let r = LoggedRequest::parse(line).unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v2/ns/app/blobs/uploads/");
    assert_eq!(r.query_param("mount").as_deref(), Some("sha256:ab"));
    assert_eq!(r.query_param("from").as_deref(), Some("ns/old"));
    assert_eq!(r.status, 201);
    assert_eq!(r.bytes, 0);
    assert_eq!(r.user_agent, "skopeo/1.9.3 \"quoted\"");
    assert_eq!(r.kind(), RequestKind::BlobMount);
    assert_eq!(r.repo().as_deref(), Some("ns/app"));
    assert!(LoggedRequest::parse("time=\"…\" level=info msg=\"listening\"").is_none());
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn fixtures_are_real_images() {
    for (format, compression) in [
        (Format::Docker, Compression::Gzip),
        (Format::Docker, Compression::None),
        (Format::Oci, Compression::Gzip),
        (Format::Oci, Compression::None),
    ] {
        let fx = ImageSpec::new(format)
            .compression(compression)
            .layers(&[10_000, 0, 333])
            .label("app", "demo")
            .build();
        let img = fx.image();
        assert_eq!(fx.digest, sha256_digest(&fx.manifest));
        assert_eq!(img.digest, fx.digest);
        let manifest: serde_json::Value = serde_json::from_slice(&fx.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], fx.media_type.as_str());
        assert_eq!(manifest["config"]["digest"], img.config_digest.as_str());
        assert_eq!(manifest["config"]["size"], img.config.len());
        assert_eq!(
            sha256_digest(&fx.blob(&img.config_digest)),
            img.config_digest
        );
        let config: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Labels"]["app"], "demo");
        assert!(config["config"]["Env"].as_array().unwrap().len() >= 2);
        assert_eq!(config["history"].as_array().unwrap().len(), 3);
        for (i, layer) in img.layers.iter().enumerate() {
            let blob = fx.blob(&layer.digest);
            assert_eq!(sha256_digest(&blob), layer.digest);
            assert_eq!(blob.len() as u64, layer.size);
            assert_eq!(manifest["layers"][i]["digest"], layer.digest.as_str());
            assert_eq!(
                manifest["layers"][i]["mediaType"],
                layer.media_type.as_str()
            );
            let tar_bytes = match compression {
                Compression::Gzip => {
                    assert_eq!(&blob[..2], &[0x1f, 0x8b]);
                    // Random content does not compress.
                    assert!(blob.len() >= layer.payload_size);
                    gunzip(&blob)
                }
                Compression::None => blob,
            };
            assert_eq!(sha256_digest(&tar_bytes), layer.diff_id);
            assert_eq!(config["rootfs"]["diff_ids"][i], layer.diff_id.as_str());
            let mut archive = tar::Archive::new(&tar_bytes[..]);
            let sizes: Vec<u64> = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap().size())
                .collect();
            assert_eq!(sizes, vec![0, layer.payload_size as u64]);
        }
    }
    // The same seed gives the same image; another seed another one.
    let a = ImageSpec::oci().seed(42).build();
    let b = ImageSpec::oci().seed(42).build();
    let c = ImageSpec::oci().seed(43).build();
    assert_eq!(a.digest, b.digest);
    assert_ne!(a.digest, c.digest);
    assert_ne!(a.image().layers[0].digest, a.image().layers[1].digest);
}

#[test]
fn index_fixtures_share_layers_across_platforms() {
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64", "linux/arm/v7"])
        .shared_layers(&[1000, 2000])
        .own_layers(&[500])
        .build();
    assert!(fx.is_index());
    let index: serde_json::Value = serde_json::from_slice(&fx.manifest).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["platform"]["variant"], "v7");
    assert_eq!(fx.child_digests().len(), 3);
    for (entry, img) in entries.iter().zip(&fx.images) {
        assert_eq!(entry["digest"], img.digest.as_str());
        assert_eq!(entry["size"], img.manifest.len());
        assert_eq!(img.digest, sha256_digest(&img.manifest));
        assert_eq!(img.layers.len(), 3);
    }
    let amd = fx.platform_image("linux/amd64");
    let arm = fx.platform_image("linux/arm64");
    assert_eq!(amd.layers[..2], arm.layers[..2], "shared layers");
    assert_ne!(amd.layers[2].digest, arm.layers[2].digest, "own layers");
    assert_ne!(amd.config_digest, arm.config_digest);
    let arm_config: serde_json::Value = serde_json::from_slice(&arm.config).unwrap();
    assert_eq!(arm_config["architecture"], "arm64");
    // 2 shared + 3 own layers + 3 configs.
    assert_eq!(fx.blobs().len(), 8);
}

#[test]
fn seeding_works_against_every_variant_and_skopeo_agrees_with_the_lab() {
    let ts = TokenServer::start(TokenServerOptions::default());
    for opts in [
        tls(Tls::Ca),
        auth(Auth::Basic(vec![]), Tls::ClientCert),
        auth(Auth::Token(ts.config()), Tls::Ca),
    ] {
        let reg = Registry::start(opts.clone());
        let fx = IndexSpec::docker().platforms(2).build();
        fx.seed(&reg, "ns/app:v1");
        // skopeo's view of the bytes matches the lab's HTTP client's.
        let out = skopeo()
            .args(["inspect", "--raw"])
            .args(reg.admin_args(Side::Plain, "ns/app"))
            .arg(reg.docker_ref("ns/app:v1"))
            .run();
        out.assert_success();
        assert_eq!(out.stdout_bytes, fx.manifest, "{opts:?}");
        assert_eq!(reg.tags("ns/app"), vec!["v1".to_string()]);
        let layer = &fx.images[1].layers[0];
        assert_eq!(
            reg.get_blob("ns/app", &layer.digest).unwrap(),
            fx.blob(&layer.digest)
        );
    }
    // The lab's seeding does not go through the token server.
    assert!(ts.requests().is_empty());
}
