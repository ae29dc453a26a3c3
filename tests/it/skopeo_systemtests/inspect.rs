//! 010-inspect.bats.

use serde_json::{Value, json};

use super::*;

/// An image like quay.io/libpod/alpine_labels: labels that name podman, a `docker_version`.
fn alpine_labels() -> Fixture {
    ImageSpec::docker()
        .layers(&[3_000, 20_000])
        .label("PODMAN", "podman run --privileged -d --name NAME IMAGE")
        .label("RUN", "podman run -it --rm IMAGE")
        .config_field("docker_version", json!("20.10.7"))
        .build()
}

/// The keys the bats compare, with the pattern each must match (`jq -r .KEY`: strings bare,
/// other values as JSON).
const SANE: [(&str, &str); 7] = [
    ("Architecture", "amd64"),
    ("Created", r"[0-9-]+T[0-9:]+(\.[0-9]+)?Z"),
    ("Digest", "sha256:[0-9a-f]{64}"),
    ("DockerVersion", r"[0-9]+\.[0-9][0-9.-]+"),
    ("Labels", r"\{.*PODMAN.*podman.*\}"),
    ("Layers", r"\[.*sha256:.*\]"),
    ("Os", "linux"),
];

fn jq_r(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// 010-inspect.bats, "inspect: basic", with the copy going to a registry instead of `dir:`:
/// the copy prints skopeo's lines, every layer (not the config) is in `Layers`, and the
/// inspected keys of the copy are sane and equal to the remote's. ferry's JSON is 1.18's.
#[test]
fn inspect_basic() {
    let remote = local();
    let fx = alpine_labels();
    fx.seed(&remote, "libpod/alpine_labels:latest");
    let remote_image = remote.docker_ref("libpod/alpine_labels:latest");
    let mut remote_json = vec![];
    for who in ALL {
        let reg = local();
        let sb = Sandbox::new();
        let out = run(
            who,
            &sb,
            0,
            &["inspect", "--tls-verify=false", &remote_image],
        );
        let inspect_remote: Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
        remote_json.push(out.stdout);
        let copy = reg.docker_ref("inspect:latest");
        let out = run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote_image,
                &copy,
            ],
        );
        expect_substring(who, &out, "Getting image source signatures");
        expect_substring(who, &out, "Writing manifest to image destination");
        let out = run(who, &sb, 0, &["inspect", "--tls-verify=false", &copy]);
        let inspect_local: Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
        let layers = inspect_local["Layers"].to_string();
        for blob in fx.image().blob_digests() {
            assert_eq!(
                layers.contains(&blob),
                blob != fx.image().config_digest,
                "{who:?}: {blob} in Layers {layers}"
            );
        }
        for (key, pattern) in SANE {
            let re = regex::Regex::new(&format!("(?s){pattern}")).unwrap();
            let local = jq_r(&inspect_local[key]);
            assert!(re.is_match(&local), "{who:?}: local {key} is sane: {local}");
            assert_eq!(
                local,
                jq_r(&inspect_remote[key]),
                "{who:?}: local {key} matches remote"
            );
        }
    }
    assert_eq!(remote_json[2], remote_json[1], "ferry prints 1.18's JSON");
}

/// 010-inspect.bats, "inspect: basic", as upstream: through `dir:`.
#[test]
fn inspect_basic_through_dir() {
    let remote = local();
    let fx = alpine_labels();
    fx.seed(&remote, "libpod/alpine_labels:latest");
    let remote_image = remote.docker_ref("libpod/alpine_labels:latest");
    for who in ALL {
        let sb = Sandbox::new();
        let workdir = sb.path().join("inspect");
        let dir_ref = format!("dir:{}", workdir.display());
        let out = run(
            who,
            &sb,
            0,
            &["inspect", "--tls-verify=false", &remote_image],
        );
        let inspect_remote: Value = serde_json::from_str(&out.stdout).unwrap();
        let out = run(
            who,
            &sb,
            0,
            &["copy", "--src-tls-verify=false", &remote_image, &dir_ref],
        );
        expect_substring(who, &out, "Getting image source signatures");
        expect_substring(who, &out, "Writing manifest to image destination");
        assert!(workdir.join("manifest.json").exists() && workdir.join("version").exists());
        let out = run(who, &sb, 0, &["inspect", &dir_ref]);
        let inspect_local: Value = serde_json::from_str(&out.stdout).unwrap();
        let raw = run(who, &sb, 0, &["inspect", "--raw", &dir_ref]);
        let raw: Value = serde_json::from_str(&raw.stdout).unwrap();
        let config_digest = raw["config"]["digest"].as_str().unwrap().to_string();
        let layers = inspect_local["Layers"].to_string();
        for entry in std::fs::read_dir(&workdir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()) {
                let sha = format!("sha256:{name}");
                if sha != config_digest {
                    assert!(layers.contains(&sha), "{who:?}: {sha} in {layers}");
                }
            }
        }
        for (key, pattern) in SANE {
            let re = regex::Regex::new(&format!("(?s){pattern}")).unwrap();
            let local = jq_r(&inspect_local[key]);
            assert!(re.is_match(&local), "{who:?}: local {key} is sane: {local}");
            assert_eq!(local, jq_r(&inspect_remote[key]), "{who:?}: {key}");
        }
    }
}

/// 010-inspect.bats, "inspect: env": the image's environment is in `Env`.
#[test]
fn inspect_env() {
    let remote = local();
    let fx = ImageSpec::docker().layers(&[1_000]).build();
    fx.seed(&remote, "libpod/fedora:31");
    let check = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("FERRY_LAB_SEED={}", fx.seed),
    ];
    for who in ALL {
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "inspect",
                "--tls-verify=false",
                &remote.docker_ref("libpod/fedora:31"),
            ],
        );
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let env: Vec<&str> = v["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for substr in &check {
            assert!(
                env.iter().any(|e| e.contains(substr.as_str())),
                "{who:?}: {env:?}"
            );
        }
    }
}

/// Go's name of this machine's architecture (`go env GOARCH` in the bats).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// 010-inspect.bats, "inspect: image manifest list w/ diff platform" (skopeo PR 708): a list
/// whose only image is for amigaos/mc68000/1000. Without --raw, exit 1 with containers/image's
/// words (1.18's quoting: 1.18 and ferry); with --raw, the list itself.
#[test]
fn inspect_image_manifest_list_with_diff_platform() {
    let remote = local();
    let fx = IndexSpec::docker()
        .platform_list(&["amigaos/mc68000/1000"])
        .own_layers(&[500])
        .build();
    fx.seed(&remote, "libpod/notmyarch:20210121");
    let img = remote.docker_ref("libpod/notmyarch:20210121");
    let arch = go_arch();
    let re = regex::Regex::new("(?s)manifests.*platform.*architecture").unwrap();
    for who in ALL {
        let sb = Sandbox::new();
        let out = run(who, &sb, 1, &["inspect", "--tls-verify=false", &img]);
        if who != Skopeo193 {
            expect_substring(
                who,
                &out,
                &format!(
                    "parsing manifest for image: choosing image instance: no image found in manifest list for architecture \"{arch}\", variant "
                ),
            );
        }
        let out = run(
            who,
            &sb,
            0,
            &["inspect", "--tls-verify=false", "--raw", &img],
        );
        assert!(re.is_match(&out.stdout), "{who:?}: {out}");
        assert_eq!(out.stdout_bytes, fx.manifest, "{who:?}: the raw list");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let p = &v["manifests"][0]["platform"];
        let archinfo = format!(
            "{}-{}-{}",
            jq_r(&p["os"]),
            jq_r(&p["variant"]),
            jq_r(&p["architecture"])
        );
        assert_eq!(archinfo, "amigaos-1000-mc68000", "{who:?}");
    }
}

/// 010-inspect.bats, "inspect: don't list tags": `--no-tags` leaves `RepoTags` empty.
#[test]
fn inspect_dont_list_tags() {
    let (remote, fx) = remote_with("fedora/fedora:latest");
    fx.seed(&remote, "fedora/fedora:41");
    for who in ALL {
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "inspect",
                "--tls-verify=false",
                "--no-tags",
                &remote.docker_ref("fedora/fedora"),
            ],
        );
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["RepoTags"], json!([]), "{who:?}");
        // Without it, the tags are listed (the flag is what empties them).
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "inspect",
                "--tls-verify=false",
                &remote.docker_ref("fedora/fedora"),
            ],
        );
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let mut tags: Vec<&str> = v["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        tags.sort_unstable();
        assert_eq!(tags, ["41", "latest"], "{who:?}");
    }
}
