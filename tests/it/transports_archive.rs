//! `docker-archive:` and `oci-archive:` side by side with skopeo 1.9.3 and 1.18: archives
//! byte for byte where skopeo is deterministic, each reading the other's, several images per
//! archive, `--additional-tag`, `list-tags`, and hostile archives.

use std::path::Path;

use crate::support::disk::{tar_entries, uncompressed};
use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

fn copy(mut t: Tool, extra: &[String], from: &str, to: &str) -> Output {
    t.arg("copy").args(extra).arg(from).arg(to).run()
}

/// A tool to run, by name.
type Named = (&'static str, fn() -> Tool);

fn tools() -> [Named; 3] {
    [
        ("ferry", ferry),
        ("skopeo-1.18", skopeo_current),
        ("skopeo-1.9.3", skopeo),
    ]
}

#[test]
fn docker_archives_are_skopeo_s_byte_for_byte() {
    let reg = Registry::start(RegistryOptions::default());
    let gz = ImageSpec::docker().layers(&[2000, 3000]).seed(41).build();
    let oci = ImageSpec::oci().layers(&[1500]).seed(42).build();
    gz.seed(&reg, "ns/app:v1");
    oci.seed(&reg, "ns/oci:v1");
    let w = tempfile::tempdir().unwrap();
    let tls = reg.tls_args(Side::Src);
    for (name, t) in tools() {
        let a = w.path().join(format!("{name}-a.tar"));
        let b = w.path().join(format!("{name}-b.tar"));
        copy(
            t(),
            &tls,
            &reg.docker_ref("ns/app:v1"),
            &format!("docker-archive:{}:example.com/ns/app:v1", a.display()),
        )
        .assert_success();
        let mut extra = tls.clone();
        extra.extend([
            "--additional-tag".into(),
            "busybox:extra".into(),
            "--additional-tag".into(),
            "quay.io/x/y:2".into(),
        ]);
        copy(
            t(),
            &extra,
            &reg.docker_ref("ns/oci:v1"),
            &format!("docker-archive:{}", b.display()),
        )
        .assert_success();
    }
    for f in ["a", "b"] {
        let mine = std::fs::read(w.path().join(format!("ferry-{f}.tar"))).unwrap();
        for other in ["skopeo-1.18", "skopeo-1.9.3"] {
            assert!(
                mine == std::fs::read(w.path().join(format!("{other}-{f}.tar"))).unwrap(),
                "archive {f} differs from {other}'s"
            );
        }
    }
    // What docker load needs: uncompressed layers named by diff_id, the config, RepoTags.
    let entries = tar_entries(&w.path().join("ferry-a.tar"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&entries.iter().find(|e| e.0 == "manifest.json").unwrap().2)
            .unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["example.com/ns/app:v1"])
    );
    let layers: Vec<String> = gz
        .image()
        .layers
        .iter()
        .map(|l| format!("{}.tar", l.diff_id.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(manifest[0]["Layers"], serde_json::json!(layers));
    // A second copy to the same file is refused, as skopeo refuses it.
    let a = format!("docker-archive:{}", w.path().join("ferry-a.tar").display());
    copy(ferry(), &tls, &reg.docker_ref("ns/app:v1"), &a)
        .assert_failure_with(&["doesn't support modifying existing images"]);
}

#[test]
fn each_reads_the_other_s_archives() {
    let reg = Registry::start(RegistryOptions::default());
    let img = ImageSpec::docker().layers(&[2000, 3000]).seed(43).build();
    img.seed(&reg, "ns/app:v1");
    let dst = Registry::start(RegistryOptions::default());
    let w = tempfile::tempdir().unwrap();
    let (by_ferry, by_skopeo) = (w.path().join("f.tar"), w.path().join("s.tar"));
    let tls = reg.tls_args(Side::Src);
    copy(
        ferry(),
        &tls,
        &reg.docker_ref("ns/app:v1"),
        &format!("docker-archive:{}:app:v1", by_ferry.display()),
    )
    .assert_success();
    copy(
        skopeo_current(),
        &tls,
        &reg.docker_ref("ns/app:v1"),
        &format!("docker-archive:{}:app:v1", by_skopeo.display()),
    )
    .assert_success();
    // inspect and list-tags print what skopeo prints, for either archive.
    for a in [&by_ferry, &by_skopeo] {
        for r in [
            format!("docker-archive:{}", a.display()),
            format!("docker-archive:{}:app:v1", a.display()),
        ] {
            let f = ferry().args(["inspect", &r]).run();
            f.assert_success();
            assert_eq!(
                f.stdout,
                skopeo_current().args(["inspect", &r]).run().stdout,
                "inspect {r}"
            );
        }
        let r = format!("docker-archive:{}", a.display());
        assert_eq!(
            ferry().args(["list-tags", &r]).run().stdout,
            skopeo_current().args(["list-tags", &r]).run().stdout
        );
    }
    // Pushed to a registry, layers are gzip-compressed by each (the gzip bytes are each
    // tool's own): the config and the uncompressed layers are the same.
    let dtls = dst.tls_args(Side::Dest);
    for (who, t, archive) in [
        ("f", ferry as fn() -> Tool, &by_skopeo),
        ("s", skopeo_current, &by_ferry),
    ] {
        let out = copy(
            t(),
            &dtls,
            &format!("docker-archive:{}", archive.display()),
            &dst.docker_ref(&format!("{who}/app:v1")),
        );
        out.assert_success();
    }
    let pushed = |repo: &str| {
        let m = dst.get_manifest(repo, "v1").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        let layers: Vec<(String, Vec<u8>)> = doc["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let d = l["digest"].as_str().unwrap();
                (
                    l["mediaType"].as_str().unwrap().to_string(),
                    uncompressed(&dst.get_blob(repo, d).unwrap()),
                )
            })
            .collect();
        (doc["config"]["digest"].clone(), layers)
    };
    let (f, s) = (pushed("f/app"), pushed("s/app"));
    assert_eq!(f, s);
    assert_eq!(f.0, serde_json::json!(img.image().config_digest));
    assert!(f.1.iter().all(|(mt, _)| mt == DOCKER_LAYER_GZIP));
    let out = copy(
        ferry(),
        &dtls,
        &format!("docker-archive:{}", by_skopeo.display()),
        &dst.docker_ref("f/app:v2"),
    );
    assert!(
        out.stdout
            .contains("2 layer(s) compressed (digests changed)"),
        "{out}"
    );
}

/// One archive holding the images of two archives (as `docker save a b` writes one).
fn merge(a: &Path, b: &Path, out: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut items = vec![];
    for f in [a, b] {
        for (name, kind, data) in tar_entries(f) {
            if name == "manifest.json" {
                let v: Vec<serde_json::Value> = serde_json::from_slice(&data).unwrap();
                items.extend(v);
                continue;
            }
            if name == "repositories" || kind != b'0' {
                continue;
            }
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append_data(&mut h, &name, &data[..]).unwrap();
        }
    }
    let m = serde_json::to_vec(&items).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(m.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder
        .append_data(&mut h, "manifest.json", &m[..])
        .unwrap();
    builder.finish().unwrap();
}

#[test]
fn several_images_per_archive_as_skopeo_reads_them() {
    let reg = Registry::start(RegistryOptions::default());
    let a = ImageSpec::docker().layers(&[1000]).seed(44).build();
    let b = ImageSpec::oci().layers(&[1200]).seed(45).build();
    a.seed(&reg, "ns/a:v1");
    b.seed(&reg, "ns/b:v1");
    let w = tempfile::tempdir().unwrap();
    let tls = reg.tls_args(Side::Src);
    let (fa, fb, both) = (
        w.path().join("a.tar"),
        w.path().join("b.tar"),
        w.path().join("both.tar"),
    );
    copy(
        ferry(),
        &tls,
        &reg.docker_ref("ns/a:v1"),
        &format!("docker-archive:{}:a:v1", fa.display()),
    )
    .assert_success();
    copy(
        ferry(),
        &tls,
        &reg.docker_ref("ns/b:v1"),
        &format!("docker-archive:{}", fb.display()),
    )
    .assert_success();
    merge(&fa, &fb, &both);
    let r = |sel: &str| format!("docker-archive:{}{sel}", both.display());
    let f = ferry().args(["list-tags", &r("")]).run();
    f.assert_success();
    assert_eq!(
        f.stdout,
        skopeo_current().args(["list-tags", &r("")]).run().stdout
    );
    assert!(
        f.stdout.contains("docker.io/library/a:v1") && f.stdout.contains("@1"),
        "{f}"
    );
    for sel in [":a:v1", ":@0", ":@1"] {
        let f = ferry().args(["inspect", "--raw", &r(sel)]).run();
        f.assert_success();
        assert_eq!(
            f.stdout,
            skopeo_current()
                .args(["inspect", "--raw", &r(sel)])
                .run()
                .stdout,
            "{sel}"
        );
    }
    ferry()
        .args(["inspect", &r("")])
        .run()
        .assert_failure_with(&["holds 2 images"]);
    ferry().args(["inspect", &r(":@2")]).run().assert_failure();
    assert_eq!(
        ferry().args(["inspect", &r(":nope:v1")]).run().code,
        Some(2)
    );
}

#[test]
fn oci_archives_are_read_by_each_and_deterministic() {
    let reg = Registry::start(RegistryOptions::default());
    let idx = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[1000])
        .own_layers(&[900])
        .seed(46)
        .build();
    idx.seed(&reg, "ns/multi:v1");
    let dst = Registry::start(RegistryOptions::default());
    let w = tempfile::tempdir().unwrap();
    let tls = reg.tls_args(Side::Src);
    let arch = |n: &str| w.path().join(n);
    let all = ["--all".to_string(), "--preserve-digests".to_string()];
    let mut ftls = tls.clone();
    ftls.push("--all".into());
    copy(
        ferry(),
        &ftls,
        &reg.docker_ref("ns/multi:v1"),
        &format!("oci-archive:{}:multi", arch("f1.tar").display()),
    )
    .assert_success();
    copy(
        ferry(),
        &ftls,
        &reg.docker_ref("ns/multi:v1"),
        &format!("oci-archive:{}:multi", arch("f2.tar").display()),
    )
    .assert_success();
    assert!(
        std::fs::read(arch("f1.tar")).unwrap() == std::fs::read(arch("f2.tar")).unwrap(),
        "ferry's oci-archive is not deterministic"
    );
    let mut stls = tls;
    stls.extend(all.iter().cloned());
    copy(
        skopeo_current(),
        &stls,
        &reg.docker_ref("ns/multi:v1"),
        &format!("oci-archive:{}:multi", arch("s.tar").display()),
    )
    .assert_success();
    // The same files as skopeo's (its archive also carries modification times and owners).
    let files = |p: &Path| -> Vec<(String, Vec<u8>)> {
        tar_entries(p)
            .into_iter()
            .filter(|e| e.1 == b'0')
            .map(|e| (e.0, e.2))
            .collect()
    };
    assert_eq!(files(&arch("f1.tar")), files(&arch("s.tar")));
    let names = |p: &Path| -> Vec<String> { tar_entries(p).into_iter().map(|e| e.0).collect() };
    assert_eq!(names(&arch("f1.tar")), names(&arch("s.tar")));
    let dtls = dst.tls_args(Side::Dest);
    for (who, t, a) in [
        ("s18", skopeo_current as fn() -> Tool, "f1.tar"),
        ("s9", skopeo, "f1.tar"),
        ("f", ferry, "s.tar"),
    ] {
        let mut extra = dtls.clone();
        extra.extend(all.iter().cloned());
        if who == "f" {
            extra.pop();
        }
        copy(
            t(),
            &extra,
            &format!("oci-archive:{}:multi", arch(a).display()),
            &dst.docker_ref(&format!("{who}/multi:v1")),
        )
        .assert_success();
        assert_eq!(
            dst.manifest_digest(&format!("{who}/multi"), "v1")
                .as_deref(),
            Some(idx.digest.as_str()),
            "{who}"
        );
    }
}

#[test]
fn hostile_archives_reach_nothing_outside() {
    let w = tempfile::tempdir().unwrap();
    let evil = w.path().join("evil.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&evil).unwrap());
    let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000","sha256:1111111111111111111111111111111111111111111111111111111111111111"]}}"#;
    let manifest = br#"[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["../../../etc/hostname","link/layer.tar"]}]"#;
    for (name, data) in [("manifest.json", &manifest[..]), ("c.json", &cfg[..])] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "link/layer.tar", "/etc/passwd")
        .unwrap();
    b.finish().unwrap();
    drop(b);
    let before: Vec<_> = walk(w.path());
    let out = ferry()
        .arg("copy")
        .arg(format!("docker-archive:{}", evil.display()))
        .arg(format!("dir:{}/out", w.path().display()))
        .run();
    out.assert_failure_with(&["missing"]);
    assert_eq!(
        walk(w.path()),
        before,
        "reading a hostile archive created files"
    );
    // Transports ferry refuses are named, with what to use instead.
    for (r, alt) in [
        ("docker-daemon:busybox:latest", "docker-archive"),
        ("containers-storage:busybox", "oci:"),
    ] {
        let out = ferry()
            .args(["copy", r, &format!("dir:{}/x", w.path().display())])
            .run();
        out.assert_failure_with(&[alt]);
        assert!(out.stderr.contains(r.split(':').next().unwrap()), "{out}");
    }
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        out.push(e.path().display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_archive_write_leaves_nothing_visible() {
    let reg = Registry::start(RegistryOptions::default());
    let big = ImageSpec::docker().layers(&[4 << 20]).seed(47).build();
    big.seed(&reg, "ns/app:v1");
    let proxy = FaultProxy::start(&reg);
    let layer = big.image().layers[0].digest.clone();
    let stall = proxy.add(Rule::new(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::StallAfter(1 << 20),
    ));
    let w = tempfile::tempdir().unwrap();
    let mut t = ferry();
    t.arg("copy")
        .args(proxy.tls_args(Side::Src))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(format!("docker-archive:{}/a.tar", w.path().display()));
    let mut child = t
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the layer to be asked for", || proxy.hits(stall) > 0);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !w.path().join("a.tar").exists(),
        "a half-written archive is visible"
    );
}
