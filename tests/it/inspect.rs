//! `inspect` and `manifest-digest`: ferry's output against skopeo's for the same images.
//!
//! Debian's skopeo 1.9.3 is the oracle. It predates `LayersData` in `inspect`'s output (current
//! skopeo prints it between `Layers` and `Env`) and the `json` template function; for those,
//! ferry is checked against the fixture and current skopeo's documented format instead, and the
//! rest of the output must be byte for byte skopeo's. 1.9.3 exits 1 for a missing image,
//! current skopeo (and ferry) 2.

use serde_json::{Value, json};

use crate::support::fixtures::*;
use crate::support::*;

/// ferry's default output without the `LayersData` block (which 1.9.3 does not print).
fn without_layers_data(out: &str) -> String {
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in out.split_inclusive('\n') {
        if line == "    \"LayersData\": [\n" || line == "    \"LayersData\": [],\n" {
            skipping = !line.ends_with("[],\n");
            continue;
        }
        if skipping {
            if line == "    ],\n" {
                skipping = false;
            }
            continue;
        }
        kept.push(line);
    }
    kept.concat()
}

/// A `dir:` image made from `fx`'s layers and a config edited by `edit` (for configs the lab's
/// fixtures do not have: fractional `created` with an offset, a Docker version, no labels).
fn with_config(fx: &Fixture, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let img = fx.image();
    let mut config: Value = serde_json::from_slice(&img.config).unwrap();
    edit(&mut config);
    let config = serde_json::to_vec(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("version"),
        "Directory Transport Version: 1.1\n",
    )
    .unwrap();
    for l in &img.layers {
        std::fs::write(
            dir.path().join(l.digest.trim_start_matches("sha256:")),
            fx.blob(&l.digest),
        )
        .unwrap();
    }
    let config_digest = sha256_digest(&config);
    std::fs::write(
        dir.path().join(config_digest.trim_start_matches("sha256:")),
        &config,
    )
    .unwrap();
    let mut manifest: Value = serde_json::from_slice(&img.manifest).unwrap();
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config.len());
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

fn seed_dir(reg: &Registry, dir: &std::path::Path, name: &str) {
    skopeo()
        .args(["copy", "--preserve-digests"])
        .args(reg.admin_args(Side::Dest, name.split(':').next().unwrap()))
        .arg(format!("dir:{}", dir.display()))
        .arg(reg.docker_ref(name))
        .run()
        .assert_success();
}

fn basic_tls() -> (Registry, Vec<String>) {
    let reg = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Basic(vec![("reader".into(), "r:pw<&>".into())]),
        ..Default::default()
    });
    let mut args = reg.tls_args(Side::Plain);
    args.push("--creds=reader:r:pw<&>".into());
    (reg, args)
}

fn both(args: &[String]) -> (Output, Output) {
    let s = skopeo().args(args).run();
    let f = ferry().args(args).run();
    (s, f)
}

#[test]
fn inspect_json_is_skopeos_byte_for_byte() {
    let (reg, auth) = basic_tls();
    let oci = ImageSpec::oci()
        .label("io.k8s.display-name", "app <beta> & co")
        .label("a", "1")
        .build();
    oci.seed(&reg, "ns/app:v1");
    let docker = ImageSpec::docker().layers(&[300, 200, 100]).build();
    docker.seed(&reg, "ns/app:v2");
    // Fractional seconds with trailing zeros and an offset; docker_version; no labels, no env.
    let custom = with_config(&docker, |c| {
        c["created"] = json!("2023-06-07T08:09:10.120000000+05:30");
        c["docker_version"] = json!("20.10.7");
        c["config"].as_object_mut().unwrap().remove("Labels");
        c["config"].as_object_mut().unwrap().remove("Env");
    });
    seed_dir(&reg, custom.path(), "ns/app:v3");
    // An OCI image whose config has no `created` at all (skopeo prints null for OCI).
    let no_created = with_config(&oci, |c| {
        c.as_object_mut().unwrap().remove("created");
    });
    seed_dir(&reg, no_created.path(), "ns/app:v4");

    for tag in ["v1", "v2", "v3", "v4"] {
        for extra in [&[][..], &["--no-tags"][..]] {
            let mut args: Vec<String> = vec!["inspect".into()];
            args.extend(auth.iter().cloned());
            args.extend(extra.iter().map(|s| s.to_string()));
            args.push(reg.docker_ref(&format!("ns/app:{tag}")));
            let (s, f) = both(&args);
            s.assert_success();
            f.assert_success();
            assert_eq!(
                without_layers_data(&f.stdout),
                s.stdout,
                "{tag} {extra:?}: ferry's output (LayersData removed) differs from skopeo's\n{f}"
            );
        }
    }

    // Spot checks of what both print, and of LayersData against the fixture.
    let f = ferry()
        .arg("inspect")
        .args(&auth)
        .arg(reg.docker_ref("ns/app:v3"))
        .run();
    let v: Value = serde_json::from_str(&f.assert_success().stdout).unwrap();
    assert_eq!(v["Created"], "2023-06-07T08:09:10.12+05:30");
    assert_eq!(v["DockerVersion"], "20.10.7");
    assert_eq!(v["Labels"], Value::Null);
    // In the registry's order (as skopeo, compared above); the set is the repository's tags.
    let mut tags: Vec<String> = serde_json::from_value(v["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3", "v4"]);
    assert!(
        v.get("Tag").is_none(),
        "Tag is omitempty and empty for schema 2 images"
    );
    let layers = v["LayersData"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (got, want) in layers.iter().zip(&docker.image().layers) {
        assert_eq!(got["MIMEType"], want.media_type.as_str());
        assert_eq!(got["Digest"], want.digest.as_str());
        assert_eq!(got["Size"], want.size);
        assert_eq!(got["Annotations"], Value::Null);
    }
    let f = ferry()
        .arg("inspect")
        .args(&auth)
        .arg(reg.docker_ref("ns/app:v1"))
        .run();
    assert!(
        f.assert_success()
            .stdout
            .contains("\"io.k8s.display-name\": \"app \\u003cbeta\\u003e \\u0026 co\""),
        "{f}"
    );
    let v4: Value = serde_json::from_str(
        &ferry()
            .arg("inspect")
            .args(&auth)
            .arg(reg.docker_ref("ns/app:v4"))
            .run()
            .stdout,
    )
    .unwrap();
    assert_eq!(v4["Created"], Value::Null);
    assert_eq!(
        v4["Digest"],
        sha256_digest(&reg.get_manifest("ns/app", "v4").unwrap().bytes)
    );
}

#[test]
fn inspect_raw_config_and_multi_arch_match_skopeo() {
    let reg = Registry::start(RegistryOptions::default());
    let tls = reg.tls_args(Side::Plain);
    let idx = IndexSpec::oci().platforms(3).build();
    idx.seed(&reg, "ns/multi:v1");
    let single = ImageSpec::docker().label("k", "v").build();
    single.seed(&reg, "ns/single:v1");

    // --raw: the manifest bytes as stored (the index for a multi-arch image).
    for (name, fx) in [("ns/multi:v1", &idx), ("ns/single:v1", &single)] {
        let mut args = vec!["inspect".to_string(), "--raw".into()];
        args.extend(tls.iter().cloned());
        args.push(reg.docker_ref(name));
        let (s, f) = both(&args);
        assert_eq!(f.assert_success().stdout_bytes, fx.manifest, "{name}");
        assert_eq!(f.stdout_bytes, s.assert_success().stdout_bytes, "{name}");
    }

    // --config --raw: the config blob; --config: the OCI form, as skopeo re-marshals it.
    for (flags, want) in [
        (
            vec!["--config", "--raw"],
            Some(single.image().config.clone()),
        ),
        (vec!["--config"], None),
    ] {
        let mut args = vec!["inspect".to_string()];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.extend(tls.iter().cloned());
        args.push(reg.docker_ref("ns/single:v1"));
        let (s, f) = both(&args);
        if let Some(w) = want {
            assert_eq!(f.assert_success().stdout_bytes, w);
        }
        assert_eq!(
            f.assert_success().stdout,
            s.assert_success().stdout,
            "{flags:?}"
        );
    }

    // A multi-arch image: Digest is the index's, the rest is the chosen platform's.
    for arch in ["amd64", "arm64"] {
        let Some(img) = idx.images.iter().find(|i| i.platform.architecture == arch) else {
            continue;
        };
        for extra in [vec![], vec!["--config".to_string()]] {
            let mut args = vec![
                format!("--override-arch={arch}"),
                "--override-os=linux".into(),
                "inspect".into(),
            ];
            args.extend(extra.iter().cloned());
            args.extend(tls.iter().cloned());
            args.push(reg.docker_ref("ns/multi:v1"));
            let (s, f) = both(&args);
            assert_eq!(
                without_layers_data(&f.assert_success().stdout),
                s.assert_success().stdout,
                "{arch} {extra:?}"
            );
            if extra.is_empty() {
                let v: Value = serde_json::from_str(&f.stdout).unwrap();
                assert_eq!(v["Digest"], idx.digest.as_str());
                assert_eq!(v["Architecture"], arch);
                assert_eq!(
                    v["Layers"],
                    json!(img.layers.iter().map(|l| &l.digest).collect::<Vec<_>>())
                );
            }
        }
    }
}

#[test]
fn inspect_format_matches_skopeo() {
    let (reg, auth) = basic_tls();
    let fx = ImageSpec::oci()
        .label("io.openshift.tags", "a,b <c>")
        .label("version", "1.2")
        .build();
    fx.seed(&reg, "ns/app:v1");
    ImageSpec::oci().build().seed(&reg, "ns/app:v2");
    let image = reg.docker_ref("ns/app:v1");
    for format in [
        "{{.Digest}}",
        "{{ .Name }}@{{.Digest}}",
        "{{.Created}}",
        "{{.Architecture}}/{{.Os}}",
        "{{.RepoTags}}",
        "{{.Env}}",
        "{{.Labels}}",
        "{{.Layers}}",
        "{{.DockerVersion}}|",
        r#"{{index .Labels "io.openshift.tags"}}"#,
        r#"{{index .Labels "missing"}}"#,
        "{{range .RepoTags}}{{.}}\\n{{end}}",
        "{{range .Layers}}{{.}},{{end}}",
        "{{.Digest}}\n",
        "json",
        "{{json .}}",
    ] {
        let mut args = vec!["inspect".to_string(), "--format".into(), format.into()];
        args.extend(auth.iter().cloned());
        args.push(image.clone());
        let (s, f) = both(&args);
        s.assert_success();
        f.assert_success();
        let got = if format.contains("json") {
            without_layers_data(&f.stdout)
        } else {
            f.stdout.clone()
        };
        assert_eq!(got, s.stdout, "--format {format:?}\n{f}");
    }
    // `json` is a template function of current skopeo (1.9.3 has none): compact, HTML not
    // escaped, keys sorted.
    let f = ferry()
        .args(["inspect", "-f", "{{json .Labels}}"])
        .args(&auth)
        .arg(&image)
        .run();
    let labels: Value = serde_json::from_str(f.assert_success().stdout.trim_end()).unwrap();
    assert_eq!(labels["io.openshift.tags"], "a,b <c>");
    assert!(f.stdout.contains("\"a,b <c>\""), "{f}");
    let f = ferry()
        .args([
            "inspect",
            "-f",
            "{{range .LayersData}}{{.Digest}} {{.Size}};{{end}}",
        ])
        .args(&auth)
        .arg(&image)
        .run();
    let want: String = fx
        .image()
        .layers
        .iter()
        .map(|l| format!("{} {};", l.digest, l.size))
        .collect();
    assert_eq!(f.assert_success().stdout, format!("{want}\n"));

    // Beyond the subset: a clear error, exit 1, nothing on stdout.
    let f = ferry()
        .args(["inspect", "-f", "{{printf \"%s\" .Name}}"])
        .args(&auth)
        .arg(&image)
        .run();
    f.assert_failure_with(&["unsupported template"]);
    assert_eq!(f.code, Some(1));
    assert!(f.stdout.is_empty());
    // Both refuse --raw with --format.
    let mut args = vec![
        "inspect".to_string(),
        "--raw".into(),
        "-f".into(),
        "{{.Digest}}".into(),
    ];
    args.extend(auth.iter().cloned());
    args.push(image);
    let (s, f) = both(&args);
    s.assert_failure();
    f.assert_failure_with(&["raw output does not support format"]);
}

#[test]
fn inspect_of_a_missing_image_exits_2() {
    let reg = Registry::start(RegistryOptions::default());
    ImageSpec::oci()
        .layers(&[10])
        .build()
        .seed(&reg, "ns/app:v1");
    let mut args = vec!["inspect".to_string()];
    args.extend(reg.tls_args(Side::Plain));
    args.push(reg.docker_ref("ns/app:nope"));
    let (s, f) = both(&args);
    // Debian's skopeo 1.9.3 exits 1 here; current skopeo exits 2, as ferry.
    assert_eq!(s.code, Some(1), "{s}");
    assert_eq!(f.code, Some(2), "{f}");
    assert!(f.stdout.is_empty());
    assert!(f.stderr.contains("not found"), "{f}");
    // A wrong password is an ordinary error (1), and its value is never printed.
    let (reg, _) = basic_tls();
    let f = ferry()
        .arg("inspect")
        .args(reg.tls_args(Side::Plain))
        .arg("--creds=reader:WRONG-pw-1234")
        .arg(reg.docker_ref("ns/app:v1"))
        .run();
    assert_eq!(f.code, Some(1), "{f}");
    assert!(!f.stderr.contains("WRONG-pw-1234") && !f.stdout.contains("WRONG-pw-1234"));
}

#[test]
fn manifest_digest_matches_skopeo() {
    let idx = IndexSpec::docker().platforms(2).build();
    let single = ImageSpec::oci().build();
    let sb = Sandbox::new();
    for (name, bytes, want) in [
        ("index.json", idx.manifest.clone(), idx.digest),
        ("image.json", single.manifest.clone(), single.digest),
        (
            "junk",
            b"not a manifest".to_vec(),
            sha256_digest(b"not a manifest"),
        ),
    ] {
        let path = sb.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let s = sb.skopeo().arg("manifest-digest").arg(&path).run();
        let f = sb.ferry().arg("manifest-digest").arg(&path).run();
        assert_eq!(f.assert_success().stdout, format!("{want}\n"));
        assert_eq!(f.stdout, s.assert_success().stdout, "{name}");
    }
    sb.ferry()
        .args(["manifest-digest", "/nonexistent/manifest.json"])
        .run()
        .assert_failure();
}
