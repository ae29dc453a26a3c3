//! `oci:` side by side with skopeo 1.9.3 and 1.18: the same layouts, file for file and byte
//! for byte; each reads what the other wrote; several images per layout; and the safety of
//! writing (two writers, a killed copy) and reading (a flipped byte).

use std::path::{Path, PathBuf};

use crate::support::disk::{assert_same_tree, tree};
use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

/// A registry with an OCI image, a Docker image and an OCI index.
struct Source {
    reg: Registry,
    oci: Fixture,
    docker: Fixture,
    index: Fixture,
}

fn source() -> Source {
    let reg = Registry::start(RegistryOptions::default());
    let oci = ImageSpec::oci().layers(&[2000, 3000]).seed(11).build();
    let docker = ImageSpec::docker().layers(&[2500]).seed(12).build();
    let index = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[1000])
        .own_layers(&[1500])
        .seed(13)
        .build();
    oci.seed(&reg, "ns/app:v1");
    docker.seed(&reg, "ns/app:v2");
    index.seed(&reg, "ns/multi:v1");
    Source {
        reg,
        oci,
        docker,
        index,
    }
}

/// Which tool writes: ferry, skopeo 1.18 or skopeo 1.9.3.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Ferry,
    Skopeo118,
    Skopeo193,
}

fn tool(who: Who) -> Tool {
    match who {
        Who::Ferry => ferry(),
        Who::Skopeo118 => skopeo_current(),
        Who::Skopeo193 => skopeo(),
    }
}

/// `copy --all` (digests preserved: ferry always, skopeo with --preserve-digests).
fn copy(who: Who, src: &str, dst: &str, extra: &[String]) -> Output {
    let mut t = tool(who);
    t.arg("copy").arg("--all").args(extra);
    if who != Who::Ferry {
        t.arg("--preserve-digests");
    }
    t.arg(src).arg(dst).run()
}

/// Write the same sequence into a layout: two names, an index, a name given again, an
/// unnamed entry.
fn write_layout(who: Who, s: &Source, lay: &Path) {
    let tls = s.reg.tls_args(Side::Src);
    for (from, name) in [
        ("ns/app:v1", ":v1"),
        ("ns/app:v2", ":v2"),
        ("ns/multi:v1", ":multi"),
        ("ns/app:v1", ":v1"),
        ("ns/app:v1", ""),
    ] {
        copy(
            who,
            &s.reg.docker_ref(from),
            &format!("oci:{}{name}", lay.display()),
            &tls,
        )
        .assert_success();
    }
}

#[test]
fn layouts_are_skopeo_s_file_for_file() {
    let s = source();
    let work = tempfile::tempdir().unwrap();
    let lay = |w: &str| -> PathBuf { work.path().join(w).join("lay") };
    for (w, who) in [
        ("f", Who::Ferry),
        ("s18", Who::Skopeo118),
        ("s9", Who::Skopeo193),
    ] {
        std::fs::create_dir(work.path().join(w)).unwrap();
        write_layout(who, &s, &lay(w));
    }
    let ferry_tree = tree(&lay("f"));
    assert_same_tree(&ferry_tree, &tree(&lay("s18")), "ferry vs skopeo 1.18");
    // 1.9.3 wrote `oci-layout` with a space (`{"imageLayoutVersion": "1.0.0"}`); ferry
    // writes 1.18's. Everything else is the same.
    let mut s9 = tree(&lay("s9"));
    assert_eq!(s9["oci-layout"], br#"{"imageLayoutVersion": "1.0.0"}"#);
    s9.insert("oci-layout".into(), ferry_tree["oci-layout"].clone());
    assert_same_tree(&ferry_tree, &s9, "ferry vs skopeo 1.9.3");
    // What the index holds: three names and the unnamed entry, each blob once.
    let index = String::from_utf8(ferry_tree["index.json"].clone()).unwrap();
    assert_eq!(
        index.matches("org.opencontainers.image.ref.name").count(),
        3,
        "{index}"
    );
    assert!(index.contains(&s.index.digest) && index.contains(&s.docker.digest));
}

#[test]
fn each_reads_what_the_other_wrote() {
    let s = source();
    let dst = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let (by_ferry, by_skopeo) = (work.path().join("f"), work.path().join("s"));
    write_layout(Who::Ferry, &s, &by_ferry);
    write_layout(Who::Skopeo118, &s, &by_skopeo);
    let tls = dst.tls_args(Side::Dest);
    let cases = [("v1", &s.oci), ("v2", &s.docker), ("multi", &s.index)];
    for (name, fx) in cases {
        // skopeo reads ferry's layout. Neither 1.9.3 nor 1.18 reads an entry holding a Docker
        // manifest (both write one with --preserve-digests, as ferry does; ferry reads it,
        // as later containers/image does): `-f oci` converts for them.
        if fx.format == Format::Oci {
            for (who, repo) in [(Who::Skopeo118, "s18"), (Who::Skopeo193, "s9")] {
                copy(
                    who,
                    &format!("oci:{}:{name}", by_ferry.display()),
                    &dst.docker_ref(&format!("{repo}/{name}:x")),
                    &tls,
                )
                .assert_success();
                assert_eq!(
                    dst.manifest_digest(&format!("{repo}/{name}"), "x")
                        .as_deref(),
                    Some(fx.digest.as_str())
                );
            }
        }
        // ferry reads skopeo's.
        copy(
            Who::Ferry,
            &format!("oci:{}:{name}", by_skopeo.display()),
            &dst.docker_ref(&format!("f/{name}:x")),
            &tls,
        )
        .assert_success();
        assert_eq!(
            dst.manifest_digest(&format!("f/{name}"), "x").as_deref(),
            Some(fx.digest.as_str())
        );
    }
    // `@N` picks the Nth entry, as skopeo picks it; `@sha256:…` is no reference either takes.
    for n in 0..4 {
        let r = format!("oci:{}:@{n}", by_ferry.display());
        let f = ferry().args(["inspect", "--raw", &r]).run();
        let k = skopeo_current().args(["inspect", "--raw", &r]).run();
        f.assert_success();
        assert_eq!(f.stdout_bytes, k.stdout_bytes, "@{n}");
    }
    let by_digest = format!("oci:{}@{}", by_ferry.display(), s.oci.digest);
    ferry()
        .args(["inspect", "--raw", &by_digest])
        .run()
        .assert_failure();
    skopeo_current()
        .args(["inspect", "--raw", &by_digest])
        .run()
        .assert_failure();
    // Without a name in a layout of several images: refused by both; a missing name: exit 2.
    let all = format!("oci:{}", by_ferry.display());
    ferry()
        .args(["inspect", &all])
        .run()
        .assert_failure_with(&["holds 4 images"]);
    skopeo_current()
        .args(["inspect", &all])
        .run()
        .assert_failure();
    let missing = ferry().args(["inspect", &format!("{all}:nope")]).run();
    assert_eq!(missing.code, Some(2), "{missing}");
}

#[test]
fn a_writer_that_commits_meanwhile_loses_no_entry() {
    let s = source();
    let work = tempfile::tempdir().unwrap();
    let lay = work.path().join("lay");
    copy(
        Who::Ferry,
        &s.reg.docker_ref("ns/app:v1"),
        &format!("oci:{}:first", lay.display()),
        &s.reg.tls_args(Side::Src),
    )
    .assert_success();
    // Hold the layout's lock as another writer would while it commits; start a copy, and
    // meanwhile commit an entry of our own into index.json.
    let held = std::fs::File::open(&lay).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    let mut cmd = ferry();
    cmd.arg("copy")
        .args(s.reg.tls_args(Side::Src))
        .arg(s.reg.docker_ref("ns/app:v2"))
        .arg(format!("oci:{}:second", lay.display()));
    let handle = std::thread::spawn(move || cmd.run());
    // Once the copy's manifest is in place it is committing: it waits for the lock.
    let manifest = lay
        .join("blobs/sha256")
        .join(s.docker.digest.trim_start_matches("sha256:"));
    wait_until("the copy to write its manifest", || manifest.exists());
    let index_path = lay.join("index.json");
    let mut index = crate::support::disk::json(&index_path);
    let mut other = index["manifests"][0].clone();
    other["annotations"]["org.opencontainers.image.ref.name"] = "meanwhile".into();
    index["manifests"].as_array_mut().unwrap().push(other);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    drop(held);
    handle.join().unwrap().assert_success();
    let text = std::fs::read_to_string(&index_path).unwrap();
    for name in ["first", "meanwhile", "second"] {
        assert!(text.contains(&format!("\"{name}\"")), "{name} lost: {text}");
    }
}

#[test]
fn concurrent_copies_into_one_layout_keep_every_name() {
    let s = source();
    let work = tempfile::tempdir().unwrap();
    let lay = work.path().join("lay");
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let from = ["ns/app:v1", "ns/app:v2", "ns/multi:v1", "ns/app:v1"][i];
            let mut t = ferry();
            t.arg("copy")
                .args(s.reg.tls_args(Side::Src))
                .arg(s.reg.docker_ref(from))
                .arg(format!("oci:{}:n{i}", lay.display()));
            std::thread::spawn(move || t.run())
        })
        .collect();
    for r in runs {
        r.join().unwrap().assert_success();
    }
    let want = [
        &s.oci.digest,
        &s.docker.digest,
        &s.index.digest,
        &s.oci.digest,
    ];
    for (i, digest) in want.iter().enumerate() {
        let out = ferry()
            .args(["inspect", "--raw", &format!("oci:{}:n{i}", lay.display())])
            .run();
        out.assert_success();
        assert_eq!(sha256_digest(&out.stdout_bytes), **digest, "n{i}");
    }
}

#[test]
fn a_flipped_byte_fails_the_copy_naming_the_blob() {
    let s = source();
    let dst = Registry::start(RegistryOptions::default());
    let work = tempfile::tempdir().unwrap();
    let lay = work.path().join("lay");
    copy(
        Who::Ferry,
        &s.reg.docker_ref("ns/app:v1"),
        &format!("oci:{}:v1", lay.display()),
        &s.reg.tls_args(Side::Src),
    )
    .assert_success();
    let layer = s.oci.image().layers[1].digest.clone();
    let path = lay
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut b = std::fs::read(&path).unwrap();
    b[100] ^= 0x01;
    std::fs::write(&path, b).unwrap();
    let out = ferry()
        .arg("copy")
        .args(dst.tls_args(Side::Dest))
        .arg(format!("oci:{}:v1", lay.display()))
        .arg(dst.docker_ref("ns/app:v1"))
        .run();
    out.assert_failure_with(&[&layer[..19]]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("digest mismatch"), "{out}");
    assert_eq!(
        dst.manifest_digest("ns/app", "v1"),
        None,
        "the tag was written"
    );
}

#[test]
fn a_killed_copy_leaves_the_layout_as_it_was() {
    let reg = Registry::start(RegistryOptions::default());
    let small = ImageSpec::oci().layers(&[1000]).seed(21).build();
    let big = ImageSpec::oci().layers(&[4 << 20]).seed(22).build();
    small.seed(&reg, "ns/app:v1");
    big.seed(&reg, "ns/app:v2");
    let proxy = FaultProxy::start(&reg);
    let layer = big.image().layers[0].digest.clone();
    let stall = proxy.add(Rule::new(
        "GET",
        &format!("/blobs/{layer}"),
        Fault::StallAfter(1 << 20),
    ));
    let work = tempfile::tempdir().unwrap();
    let lay = work.path().join("lay");
    let target = format!("oci:{}:v1", lay.display());
    ferry()
        .arg("copy")
        .args(proxy.tls_args(Side::Src))
        .arg(proxy.docker_ref("ns/app:v1"))
        .arg(&target)
        .run()
        .assert_success();
    let before = tree(&lay);
    // Replace v1 with the big image, and kill the copy while the layer is half-way.
    let mut t = ferry();
    t.arg("copy")
        .args(proxy.tls_args(Side::Src))
        .arg(proxy.docker_ref("ns/app:v2"))
        .arg(&target);
    let mut child = t
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the layer to be asked for", || proxy.hits(stall) > 0);
    child.kill().unwrap();
    child.wait().unwrap();
    // The layout still names the small image and reads whole; nothing of the big one is
    // visible under a blob's name.
    let after = tree(&lay);
    assert_eq!(after["index.json"], before["index.json"]);
    for (name, bytes) in &after {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(
                sha256_digest(bytes),
                format!("sha256:{hex}"),
                "{name} is not whole"
            );
        }
    }
    let out = skopeo_current().args(["inspect", "--raw", &target]).run();
    out.assert_success();
    assert_eq!(sha256_digest(&out.stdout_bytes), small.digest);
}

#[test]
fn format_conversion_gives_skopeo_s_digests() {
    // -f oci of a Docker image rewrites the manifest and the config as skopeo does; -f v2s2 of
    // an OCI image keeps the config's bytes. Same digests as skopeo 1.18's, on disk.
    let s = source();
    let work = tempfile::tempdir().unwrap();
    let tls = s.reg.tls_args(Side::Src);
    for (from, fmt) in [("ns/app:v2", "oci"), ("ns/app:v1", "v2s2")] {
        let mut digests = vec![];
        for (who, t) in [("f", ferry as fn() -> Tool), ("s", skopeo_current)] {
            let lay = work.path().join(format!("{who}-{fmt}"));
            let mut tool = t();
            tool.arg("copy").args(&tls).args(["-f", fmt]);
            let out = tool
                .arg(s.reg.docker_ref(from))
                .arg(format!("dir:{}", lay.display()))
                .run();
            out.assert_success();
            digests.push(tree(&lay));
        }
        assert_same_tree(
            &digests[0],
            &digests[1],
            &format!("-f {fmt}, vs skopeo 1.18"),
        );
        let m = String::from_utf8(digests[0]["manifest.json"].clone()).unwrap();
        let want = if fmt == "oci" {
            OCI_MANIFEST
        } else {
            DOCKER_MANIFEST
        };
        assert!(m.contains(want), "{m}");
    }
}
