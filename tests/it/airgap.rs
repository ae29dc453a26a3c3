//! The air-gap round trip: `sync` repositories from a registry to disk, carry the disk,
//! `sync` from it into another registry — every digest identical to the source, for an
//! index, an OCI image, a Docker image, and an image with OpenShift signatures (which
//! travel as `dir:`'s `signature-N` files) and a cosign signature tag (an ordinary tag).
//! Through `dir:` side by side with skopeo 1.18, whose directory tree ferry's must equal;
//! through one OCI layout (ferry's `--dest oci`/`--src oci`).

use crate::support::disk::{assert_same_tree, tree};
use crate::support::faults::FaultProxy;
use crate::support::fixtures::*;
use crate::support::signatures::SignatureExtension;
use crate::support::*;

/// A source registry (behind a proxy serving the signature extension) with four
/// repositories, and a destination registry likewise.
struct Lab {
    _src_reg: Registry,
    dst_reg: Registry,
    src: FaultProxy,
    dst: FaultProxy,
    dst_sigs: SignatureExtension,
    /// (repository:tag, digest) of every source image.
    images: Vec<(String, String)>,
    signed: String,
}

fn lab() -> Lab {
    let src_reg = Registry::start(RegistryOptions::default());
    let dst_reg = Registry::start(RegistryOptions::default());
    let index = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[1500])
        .own_layers(&[700])
        .seed(51)
        .build();
    let oci = ImageSpec::oci().layers(&[2000, 1000]).seed(52).build();
    let docker = ImageSpec::docker().layers(&[1800]).seed(53).build();
    let signed = ImageSpec::docker().layers(&[900]).seed(54).build();
    let cosign = ImageSpec::oci().layers(&[300]).seed(55).build();
    let cosign_tag = format!("sha256-{}.sig", signed.digest.trim_start_matches("sha256:"));
    index.seed(&src_reg, "ns/multi:v1");
    oci.seed(&src_reg, "ns/app:oci");
    docker.seed(&src_reg, "ns/app:docker");
    signed.seed(&src_reg, "ns/signed:v1");
    cosign.seed(&src_reg, &format!("ns/signed:{cosign_tag}"));
    let (src, dst) = (FaultProxy::start(&src_reg), FaultProxy::start(&dst_reg));
    let src_sigs = SignatureExtension::serve(&src);
    let dst_sigs = SignatureExtension::serve(&dst);
    src_sigs.add("ns/signed", &signed.digest, "atomic", b"\x89signature one");
    src_sigs.add("ns/signed", &signed.digest, "atomic", b"\x89signature two");
    let images = vec![
        ("multi:v1".to_string(), index.digest),
        ("app:oci".into(), oci.digest),
        ("app:docker".into(), docker.digest),
        ("signed:v1".into(), signed.digest.clone()),
        (format!("signed:{cosign_tag}"), cosign.digest),
    ];
    Lab {
        _src_reg: src_reg,
        dst_reg,
        src,
        dst,
        dst_sigs,
        images,
        signed: signed.digest,
    }
}

/// skopeo's sync YAML for the source's three repositories (every tag).
fn yaml(l: &Lab, dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("sync.yaml");
    let text = format!(
        "{}:\n  tls-verify: false\n  images:\n    ns/multi: []\n    ns/app: []\n    ns/signed: []\n",
        l.src.host()
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn sync(mut t: Tool, args: &[&str]) -> Output {
    t.arg("sync").args(args).run()
}

/// Every image at the destination under `prefix/<name>`, with the source's digest.
#[track_caller]
fn assert_arrived(l: &Lab, prefix: &str) {
    for (name, digest) in &l.images {
        let (repo, tag) = name.split_once(':').unwrap();
        assert_eq!(
            l.dst_reg
                .manifest_digest(&format!("{prefix}/{repo}"), tag)
                .as_deref(),
            Some(digest.as_str()),
            "{prefix}/{name}"
        );
    }
}

#[test]
fn through_dir_every_digest_and_signature_arrives_as_with_skopeo() {
    let l = lab();
    let w = tempfile::tempdir().unwrap();
    let y = yaml(&l, w.path());
    let (usb, usb_s) = (w.path().join("usb"), w.path().join("usb-skopeo"));
    let y = y.to_str().unwrap();
    sync(
        ferry(),
        &[
            "--src",
            "yaml",
            "--dest",
            "dir",
            "--scoped",
            y,
            usb.to_str().unwrap(),
        ],
    )
    .assert_success();
    sync(
        skopeo_current(),
        &[
            "--src",
            "yaml",
            "--dest",
            "dir",
            "--scoped",
            "--all",
            "--preserve-digests",
            y,
            usb_s.to_str().unwrap(),
        ],
    )
    .assert_success();
    // The carried tree is skopeo's: names (registry/ns/repo:tag), files and bytes, the
    // signatures as signature-N.
    let t = tree(&usb);
    assert_same_tree(&t, &tree(&usb_s), "ferry's disk vs skopeo 1.18's");
    let signed_dir = format!("{}/ns/signed:v1", l.src.host());
    assert_eq!(
        t[&format!("{signed_dir}/signature-1")],
        b"\x89signature one"
    );
    assert_eq!(
        t[&format!("{signed_dir}/signature-2")],
        b"\x89signature two"
    );
    // A second sync to the same disk is refused as skopeo refuses it (nothing overwritten).
    sync(
        ferry(),
        &[
            "--src",
            "yaml",
            "--dest",
            "dir",
            "--scoped",
            y,
            usb.to_str().unwrap(),
        ],
    )
    .assert_failure_with(&["Refusing to overwrite destination directory"]);
    // The other side: into a registry; same digests, signatures stored by the extension.
    let dest = format!("{}/mirror", l.dst.host());
    let out = sync(
        ferry(),
        &[
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            usb.to_str().unwrap(),
            &dest,
        ],
    );
    out.assert_success();
    assert!(
        out.stdout
            .contains("Synced 5 images from 1 sources: 5 copied"),
        "{out}"
    );
    assert_arrived(&l, "mirror");
    let sigs: Vec<Vec<u8>> = l
        .dst_sigs
        .signatures("mirror/signed", &l.signed)
        .into_iter()
        .map(|s| s.content)
        .collect();
    assert_eq!(
        sigs,
        [b"\x89signature one".to_vec(), b"\x89signature two".to_vec()]
    );
    // skopeo 1.18 names the same destinations from the same disk.
    let dest_s = format!("{}/mirror-s", l.dst.host());
    sync(
        skopeo_current(),
        &[
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            "--all",
            "--preserve-digests",
            usb.to_str().unwrap(),
            &dest_s,
        ],
    )
    .assert_success();
    assert_arrived(&l, "mirror-s");
    // Again: everything is already there.
    let again = sync(
        ferry(),
        &[
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            usb.to_str().unwrap(),
            &dest,
        ],
    );
    assert!(again.stdout.contains("5 already present"), "{again}");
}

#[test]
fn through_one_oci_layout_every_digest_arrives() {
    let l = lab();
    let w = tempfile::tempdir().unwrap();
    let y = yaml(&l, w.path());
    let lay = w.path().join("layout");
    let (y, lay_s) = (y.to_str().unwrap(), lay.to_str().unwrap());
    let out = sync(
        ferry(),
        &["--src", "yaml", "--dest", "oci", "--scoped", y, lay_s],
    );
    out.assert_success();
    // One layout, every image named registry/ns/repo:tag; blobs shared by images stored once.
    let index = std::fs::read_to_string(lay.join("index.json")).unwrap();
    for (name, digest) in &l.images {
        assert!(
            index.contains(&format!("\"{}/ns/{name}\"", l.src.host())),
            "{name}: {index}"
        );
        assert!(index.contains(digest.as_str()));
    }
    // Simple signatures have no place in a layout: said, not silently dropped.
    assert!(out.stderr.contains("signature"), "{out}");
    // Syncing again costs nothing.
    let again = sync(
        ferry(),
        &["--src", "yaml", "--dest", "oci", "--scoped", y, lay_s],
    );
    assert!(again.stdout.contains("5 already present"), "{again}");
    let dest = format!("{}/from-oci", l.dst.host());
    sync(
        ferry(),
        &[
            "--src",
            "oci",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
            lay_s,
            &dest,
        ],
    )
    .assert_success();
    assert_arrived(&l, "from-oci");
    // And skopeo reads the OCI images of the carried layout.
    let name = format!("oci:{}:{}/ns/app:oci", lay.display(), l.src.host());
    let raw = skopeo_current().args(["inspect", "--raw", &name]).run();
    raw.assert_success();
    assert_eq!(sha256_digest(&raw.stdout_bytes), l.images[1].1);
}
