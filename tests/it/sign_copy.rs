//! `copy` signs as skopeo signs, with skopeo as the oracle both ways — here sigstore
//! (`--sign-by-sigstore-private-key`, `--sign-identity`): what ferry signs in the lab's
//! registries verifies under skopeo 1.18 and under ferry with the same policy, and is laid out
//! as skopeo lays it out for the same copy (tag and file names, media types, payload fields).
//! GnuPG simple signing is in [`crate::sign_copy_gpg`], refusals in [`crate::sign_copy_refusals`], `sync`
//! and `promote` in [`crate::sign_sync`]; the helpers below serve them all. The keys are the
//! lab's ([`crate::verify_copy::Lab`]): skopeo 1.18's `generate-sigstore-key`, GnuPG's
//! `--quick-gen-key` in a temporary home.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::fixtures::{ImageSpec, IndexSpec};
use crate::support::{Output, Registry, Side};
use crate::verify_copy::{Lab, seed};

/// A `registries.d` directory under the sandbox with one file.
pub fn regd(lab: &Lab, name: &str, yaml: &str) -> PathBuf {
    let dir = lab.sb.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lab.yaml"), yaml).unwrap();
    dir
}

/// A `registries.d` directory whose destination registry keeps its simple signatures in the
/// lookaside directory `dir` (for reading them, as a verifier would).
pub fn regd_reading(lab: &Lab, name: &str, dir: &Path) -> PathBuf {
    regd(
        lab,
        name,
        &format!(
            "docker:\n  {}:\n    lookaside: file://{}\n",
            lab.dst.host(),
            dir.display()
        ),
    )
}

/// `tool` (`ferry`, `ferry-as-skopeo`, `skopeo-1.18`, `skopeo-1.9`) copies `from` of the
/// source registry to `to` of the destination registry under `--insecure-policy`, with `extra`.
pub fn sign_copy(
    lab: &Lab,
    tool: &str,
    regd: &Path,
    extra: &[&str],
    from: &str,
    to: &str,
) -> Output {
    let mut t = match tool {
        "ferry" => lab.sb.ferry(),
        "ferry-as-skopeo" => lab.sb.ferry_as_skopeo(),
        "skopeo-1.9" => lab.sb.skopeo_strict(),
        _ => lab.sb.skopeo_current_strict(),
    };
    t.env("GNUPGHOME", &lab.gnupg)
        .args(["--insecure-policy", "--registries.d"])
        .arg(regd)
        .arg("copy")
        .args(extra)
        .args(lab.src.tls_args(Side::Src))
        .args(lab.dst.tls_args(Side::Dest))
        .arg(lab.src.docker_ref(from))
        .arg(lab.dst.docker_ref(to))
        .run()
}

/// A policy for the destination registry: `reqs` for everything there, reject elsewhere.
pub fn dst_policy(lab: &Lab, name: &str, reqs: Value) -> PathBuf {
    let doc = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {lab.dst.host(): reqs}}
    });
    lab.file(name, doc.to_string())
}

/// `tool` copies `image` of the destination registry to a `dir:` in the sandbox under
/// `policy` (so that nothing is written to a registry).
pub fn verify(lab: &Lab, tool: &str, regd: &Path, policy: &Path, image: &str) -> Output {
    let mut t = match tool {
        "ferry" => lab.sb.ferry(),
        "ferry-as-skopeo" => lab.sb.ferry_as_skopeo(),
        "skopeo-1.9" => lab.sb.skopeo_strict(),
        _ => lab.sb.skopeo_current_strict(),
    };
    let out = lab
        .sb
        .path()
        .join(format!("verified-{tool}-{}", fastrand::u32(..)));
    t.env("GNUPGHOME", &lab.gnupg)
        .args(["--registries.d"])
        .arg(regd)
        .arg("--policy")
        .arg(policy)
        .args(["copy", "-q"])
        .args(lab.dst.tls_args(Side::Src))
        .arg(lab.dst.docker_ref(image))
        .arg(format!("dir:{}", out.display()))
        .run()
}

/// The `.sig` tag of a digest.
pub fn sig_tag(digest: &str) -> String {
    format!("sha256-{}.sig", digest.trim_start_matches("sha256:"))
}

/// The sigstore attachment of `digest` in `repo`: its manifest, config and payloads.
pub struct Attachment {
    pub manifest: Value,
    pub media_type: String,
    pub config: Value,
    pub payloads: Vec<Value>,
}

pub fn attachment(reg: &Registry, repo: &str, digest: &str) -> Attachment {
    let m = reg
        .get_manifest(repo, &sig_tag(digest))
        .unwrap_or_else(|| panic!("{repo}: no {}", sig_tag(digest)));
    let manifest: Value = serde_json::from_slice(&m.bytes).unwrap();
    let blob = |d: &Value| {
        let d = d.as_str().unwrap();
        serde_json::from_slice::<Value>(&reg.get_blob(repo, d).expect("blob")).unwrap()
    };
    let config = blob(&manifest["config"]["digest"]);
    let payloads = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(&l["digest"]))
        .collect();
    Attachment {
        manifest,
        media_type: m.media_type,
        config,
        payloads,
    }
}

/// The keys of a JSON object, recursively (`a.b.c`), for comparing shapes.
pub fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = format!("{prefix}{k}");
            out.insert(p.clone());
            shape(x, &format!("{p}."), out);
        }
    }
}

pub fn shape_of(v: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    shape(v, "", &mut s);
    s
}

/// The attachments ferry and skopeo wrote for the same image have the same layout: media
/// types, annotation names, config, payload fields; the payloads name `identity` each.
#[track_caller]
fn same_layout(ours: &Attachment, theirs: &Attachment, digest: &str, identities: [&str; 2]) {
    assert_eq!(ours.media_type, theirs.media_type);
    for k in ["schemaVersion", "mediaType"] {
        assert_eq!(ours.manifest[k], theirs.manifest[k], "{k}");
    }
    assert_eq!(
        ours.manifest["config"]["mediaType"],
        theirs.manifest["config"]["mediaType"]
    );
    assert_eq!(shape_of(&ours.manifest), shape_of(&theirs.manifest));
    let layers = |a: &Attachment| a.manifest["layers"].as_array().unwrap().clone();
    assert_eq!(layers(ours).len(), 1, "{}", ours.manifest);
    assert_eq!(layers(theirs).len(), 1, "{}", theirs.manifest);
    assert_eq!(layers(ours)[0]["mediaType"], layers(theirs)[0]["mediaType"]);
    assert_eq!(
        shape_of(&layers(ours)[0]["annotations"]),
        shape_of(&layers(theirs)[0]["annotations"])
    );
    // The config differs only by the payload digest it lists.
    let mut c = ours.config.clone();
    c["rootfs"]["diff_ids"] = theirs.config["rootfs"]["diff_ids"].clone();
    assert_eq!(c, theirs.config);
    assert_eq!(
        ours.config["rootfs"]["diff_ids"][0],
        layers(ours)[0]["digest"]
    );
    for (p, identity) in [&ours.payloads[0], &theirs.payloads[0]]
        .iter()
        .zip(identities)
    {
        assert_eq!(
            p["critical"],
            json!({"identity": {"docker-reference": identity},
                   "image": {"docker-manifest-digest": digest},
                   "type": "cosign container image signature"})
        );
    }
    assert_eq!(shape_of(&ours.payloads[0]), shape_of(&theirs.payloads[0]));
}

/// The sigstore key flags, the passphrase from the lab's file.
pub fn sigstore_flags(private: &str) -> Vec<&str> {
    vec![
        "--sign-by-sigstore-private-key",
        private,
        "--sign-passphrase-file",
        "pass",
    ]
}

/// ferry signs with a key made by skopeo 1.18 (as `ferry`, and as `skopeo`); skopeo 1.18 and
/// ferry accept the image under a `sigstoreSigned` policy with the public key, and refuse it
/// under another key; the attachment is laid out as skopeo 1.18 lays out its own for the
/// same copy, and ferry invoked as `skopeo` prints skopeo's lines.
#[test]
fn sigstore_signature_made_by_ferry_verifies_under_skopeo() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[2048, 1024]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let other = lab.sigstore_key("other");
    let private = format!("{key}.private");
    let flags = sigstore_flags(&private);
    let good = dst_policy(
        &lab,
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    let wrong = dst_policy(
        &lab,
        "wrong.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{other}.pub")}]),
    );
    let oracle = sign_copy(
        &lab,
        "skopeo-1.18",
        &lab.regd,
        &flags,
        "base/app:v1",
        "sk/app:v1",
    );
    oracle.assert_success();
    let theirs = attachment(&lab.dst, "sk/app", &fx.digest);
    for tool in ["ferry", "ferry-as-skopeo"] {
        let repo = format!("{tool}/app");
        let mark = lab.dst.mark();
        let out = sign_copy(
            &lab,
            tool,
            &lab.regd,
            &flags,
            "base/app:v1",
            &format!("{repo}:v1"),
        );
        out.assert_success();
        assert!(!out.stderr.contains("lab passphrase"), "{out}");
        assert_eq!(
            lab.dst.manifest_digest(&repo, "v1").as_deref(),
            Some(fx.digest.as_str())
        );
        // The attachment before the tag (ferry's rule: the tag moves last).
        let puts: Vec<String> = lab
            .dst
            .requests_since(mark)
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/manifests/"))
            .map(|r| r.path)
            .collect();
        assert!(
            puts.last().is_some_and(|p| p.ends_with("/manifests/v1")),
            "{puts:?}"
        );
        assert!(puts.iter().any(|p| p.ends_with(".sig")), "{puts:?}");
        let ours = attachment(&lab.dst, &repo, &fx.digest);
        same_layout(
            &ours,
            &theirs,
            &fx.digest,
            [
                &lab.dst.image(&format!("{repo}:v1")),
                &lab.dst.image("sk/app:v1"),
            ],
        );
        if tool == "ferry" {
            assert!(
                out.stderr.contains(&format!(
                    "Signed {} as {} (sigstore, key ",
                    fx.digest,
                    lab.dst.image(&format!("{repo}:v1"))
                )),
                "{out}"
            );
        } else {
            // skopeo's lines, the signing ones included, in skopeo's order (the blob lines
            // in the order the blobs are done, which varies).
            let sorted = |s: &str| {
                let mut l: Vec<String> = s.lines().map(str::to_string).collect();
                l[1..3].sort();
                l
            };
            assert_eq!(
                sorted(&out.stdout),
                sorted(&oracle.stdout),
                "{out}\n{oracle}"
            );
            assert!(
                out.stdout.contains(
                    "Creating signature: Signing image using a sigstore signature\nStoring signatures\n"
                ),
                "{out}"
            );
        }
        for verifier in ["skopeo-1.18", "ferry"] {
            verify(&lab, verifier, &lab.regd, &good, &format!("{repo}:v1")).assert_success();
            let refused = verify(&lab, verifier, &lab.regd, &wrong, &format!("{repo}:v1"));
            assert_eq!(refused.code, Some(1), "{verifier}: {refused}");
            assert!(
                refused
                    .stderr
                    .contains("cryptographic signature verification failed"),
                "{verifier}: {refused}"
            );
        }
    }
}

/// An index copied whole: as skopeo 1.18 (`--all`), the index and each of its images are
/// signed — the same `.sig` tags; with `--multi-arch system`, the one image copied.
#[test]
fn index_signed_as_skopeo_signs_it() {
    let lab = Lab::new();
    let fx = IndexSpec::oci()
        .platform_list(&["linux/amd64", "linux/arm64"])
        .build();
    seed(&lab, &fx, "base/multi:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let flags = sigstore_flags(&private);
    let sigs = |repo: &str| -> BTreeSet<String> {
        lab.dst
            .tags(repo)
            .into_iter()
            .filter(|t| t.ends_with(".sig"))
            .collect()
    };
    let mut all = flags.clone();
    all.push("--all");
    sign_copy(
        &lab,
        "skopeo-1.18",
        &lab.regd,
        &all,
        "base/multi:v1",
        "sk/multi:v1",
    )
    .assert_success();
    let mut want: BTreeSet<String> = fx.child_digests().iter().map(|d| sig_tag(d)).collect();
    want.insert(sig_tag(&fx.digest));
    assert_eq!(sigs("sk/multi"), want);
    let mut ferry_all = flags.clone();
    ferry_all.extend(["--multi-arch", "all"]);
    sign_copy(
        &lab,
        "ferry",
        &lab.regd,
        &ferry_all,
        "base/multi:v1",
        "fe/multi:v1",
    )
    .assert_success();
    assert_eq!(sigs("fe/multi"), want);
    let good = dst_policy(
        &lab,
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    let out = lab
        .sb
        .skopeo_current()
        .args(["--registries.d", lab.regd.to_str().unwrap(), "--policy"])
        .arg(&good)
        .args(["copy", "-q", "--all"])
        .args(lab.dst.tls_args(Side::Src))
        .arg(lab.dst.docker_ref("fe/multi:v1"))
        .arg(format!("dir:{}", lab.sb.path().join("multi").display()))
        .run();
    out.assert_success();
    // One platform's image: that image alone is signed, by both.
    let arm = fx.platform_image("linux/arm64").digest.clone();
    let system = [
        "--override-arch",
        "arm64",
        "--override-os",
        "linux",
        "--multi-arch",
        "system",
    ];
    for (tool, repo) in [("skopeo-1.18", "sk/one"), ("ferry", "fe/one")] {
        let mut f = flags.clone();
        f.extend(system);
        sign_copy(
            &lab,
            tool,
            &lab.regd,
            &f,
            "base/multi:v1",
            &format!("{repo}:v1"),
        )
        .assert_success();
        assert_eq!(sigs(repo), BTreeSet::from([sig_tag(&arm)]), "{tool}");
    }
}

/// Sigstore attachments are written where `registries.d` sets `use-sigstore-attachments`: as
/// `skopeo`, ferry refuses without it as skopeo 1.18 does (same words) — but before anything
/// is written, where skopeo has written the image; as `ferry`, the attachment is written
/// anyway, and verifies.
#[test]
fn sigstore_attachments_where_registries_d_says() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let flags = sigstore_flags(&private);
    let off = regd(
        &lab,
        "regd-off",
        "default-docker:\n  use-sigstore-attachments: false\n",
    );
    let said = "writing sigstore attachments is disabled by configuration";
    let oracle = sign_copy(
        &lab,
        "skopeo-1.18",
        &off,
        &flags,
        "base/app:v1",
        "sk/app:v1",
    );
    assert_eq!(oracle.code, Some(1), "{oracle}");
    assert!(oracle.stderr.contains(said), "{oracle}");
    let mark = lab.dst.mark();
    let out = sign_copy(
        &lab,
        "ferry-as-skopeo",
        &off,
        &flags,
        "base/app:v1",
        "as/app:v1",
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(said), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        lab.dst
            .requests_since(mark)
            .iter()
            .all(|r| matches!(r.method.as_str(), "GET" | "HEAD")),
        "{out}"
    );
    assert!(lab.dst.tags("as/app").is_empty());
    sign_copy(&lab, "ferry", &off, &flags, "base/app:v1", "fe/app:v1").assert_success();
    attachment(&lab.dst, "fe/app", &fx.digest);
    let good = dst_policy(
        &lab,
        "good.json",
        json!([{"type": "sigstoreSigned", "keyPath": format!("{key}.pub")}]),
    );
    verify(&lab, "skopeo-1.18", &lab.regd, &good, "fe/app:v1").assert_success();
}

/// A `dir:` destination gets `signature-N` files, as skopeo 1.18 writes them (a sigstore
/// signature as `\0sigstore-json\n` and its JSON).
#[test]
fn dir_destination_gets_signature_files() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let key = lab.sigstore_key("team");
    let private = format!("{key}.private");
    let identity = lab.dst.image("released/app:1");
    let mut files = vec![];
    for tool in ["skopeo-1.18", "ferry", "ferry-as-skopeo"] {
        let dir = lab.sb.path().join(format!("dir-{tool}"));
        let mut t = match tool {
            "ferry" => lab.sb.ferry(),
            "ferry-as-skopeo" => lab.sb.ferry_as_skopeo(),
            _ => lab.sb.skopeo_current(),
        };
        t.args(["--insecure-policy", "copy", "-q"])
            .args(sigstore_flags(&private))
            .args(["--sign-identity", &identity])
            .args(lab.src.tls_args(Side::Src))
            .arg(lab.src.docker_ref("base/app:v1"))
            .arg(format!("dir:{}", dir.display()))
            .run()
            .assert_success();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("signature"))
            .collect();
        names.sort();
        let blob = std::fs::read(dir.join("signature-1")).expect("signature-1");
        assert!(blob.starts_with(b"\x00sigstore-json\n"), "{tool}");
        let sig: Value = serde_json::from_slice(&blob[15..]).unwrap();
        files.push((names, shape_of(&sig), sig["mimeType"].clone()));
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0], files[2]);
    assert_eq!(files[0].0, vec!["signature-1".to_string()]);
}

/// As `ferry`, the source's `.sig` attachment travels with the image and ferry's signature
/// joins it: the destination's attachment holds both, and a second signing copy of the image
/// (already there) keeps the source's and the first production signature and adds another
/// (the destination's attachment is merged into, never replaced) — skopeo 1.18 accepts the result under
/// a policy requiring both keys.
#[test]
fn signature_joins_the_attachment_that_travels() {
    let lab = Lab::new();
    let fx = ImageSpec::oci().layers(&[512]).build();
    seed(&lab, &fx, "base/app:v1");
    let team = lab.sigstore_key("team");
    let prod = lab.sigstore_key("prod");
    let (team_private, prod_private) = (format!("{team}.private"), format!("{prod}.private"));
    lab.sign(
        true,
        &sigstore_flags(&team_private),
        "base/app:v1",
        "ns/app:v1",
        false,
    );
    let both = dst_policy(
        &lab,
        "both.json",
        // The team's signature names the image where the team signed it.
        json!([{"type": "sigstoreSigned", "keyPath": format!("{team}.pub"),
                "signedIdentity": {"type": "exactReference",
                                   "dockerReference": lab.src.image("ns/app:v1")}},
               {"type": "sigstoreSigned", "keyPath": format!("{prod}.pub")}]),
    );
    let mut before: Vec<Value> = vec![];
    for round in 1..=2 {
        sign_copy(
            &lab,
            "ferry",
            &lab.regd,
            &sigstore_flags(&prod_private),
            "ns/app:v1",
            "prod/app:v1",
        )
        .assert_success();
        let a = attachment(&lab.dst, "prod/app", &fx.digest);
        // The team's and production's; a second round keeps every layer of the first (the
        // destination's attachment is merged into) and adds its signature unless it is the
        // same one (a payload made within the same second, signed deterministically).
        let layers: Vec<Value> = a.manifest["layers"].as_array().unwrap().clone();
        assert!(
            before.iter().all(|l| layers.contains(l)),
            "round {round} dropped a signature: {}",
            a.manifest
        );
        assert!(
            (2..=round + 1).contains(&layers.len()),
            "round {round}: {}",
            a.manifest
        );
        before = layers;
        let out = verify(&lab, "skopeo-1.18", &lab.regd, &both, "prod/app:v1");
        out.assert_success();
    }
}
