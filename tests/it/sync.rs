//! `sync`: whole repositories and YAML sources, compared with skopeo's sync, with the request
//! log of the destination showing what crossed the network.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::fixtures::*;
use crate::support::*;

/// `tag -> digest` of every tag of `repo` on `reg`.
fn tags_and_digests(reg: &Registry, repo: &str) -> BTreeMap<String, String> {
    reg.tags(repo)
        .into_iter()
        .map(|t| {
            let d = reg.manifest_digest(repo, &t).unwrap();
            (t, d)
        })
        .collect()
}

#[test]
fn sync_of_20_tags_copies_every_blob_once_and_a_second_sync_nothing() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    // 14 distinct images sharing their layers (same seed, different labels), 20 tags.
    let images: Vec<Fixture> = (0..14)
        .map(|i| {
            ImageSpec::oci()
                .seed(7)
                .layers(&[4096, 70_000])
                .label("n", &i.to_string())
                .build()
        })
        .collect();
    let mut want = BTreeMap::new();
    for t in 0..20 {
        let fx = &images[t % 14];
        let tag = format!("t{t:02}");
        fx.seed(&src, &format!("ns/app:{tag}"));
        want.insert(tag, fx.digest.clone());
    }
    let blobs: BTreeSet<String> = images
        .iter()
        .flat_map(|f| f.image().blob_digests())
        .collect();
    assert_eq!(blobs.len(), 14 + 2);

    let sb = Sandbox::new();
    let digestfile = sb.path().join("digests.txt");
    let mark = dst.mark();
    let f = sb
        .ferry()
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(format!("--digestfile={}", digestfile.display()))
        .arg(src.image("ns/app"))
        .arg(dst.image("mirror"))
        .run();
    f.assert_success();
    assert!(
        f.stdout
            .contains("Synced 20 images from 1 sources: 20 copied, 0 already present, 0 failed"),
        "{f}"
    );
    assert_eq!(tags_and_digests(&dst, "mirror/app"), want);
    let reqs = dst.requests_since(mark);
    for b in &blobs {
        let uploads = reqs
            .iter()
            .filter(|r| {
                r.kind() == RequestKind::UploadFinish
                    && r.status == 201
                    && r.query_param("digest").as_deref() == Some(b.as_str())
            })
            .count();
        assert_eq!(uploads, 1, "blob {b} uploaded {uploads} times");
    }
    assert_eq!(
        reqs.iter()
            .filter(|r| r.kind() == RequestKind::UploadFinish)
            .count(),
        blobs.len()
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.kind() == RequestKind::ManifestPut)
            .count(),
        20
    );
    // --digestfile: one line per image, `<digest> docker://<destination>`.
    let lines: BTreeSet<String> = std::fs::read_to_string(&digestfile)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expected: BTreeSet<String> = want
        .iter()
        .map(|(t, d)| format!("{d} docker://{}", dst.image(&format!("mirror/app:{t}"))))
        .collect();
    assert_eq!(lines, expected);

    // Again: every tag is already there; one manifest HEAD per tag, nothing else but pings.
    let mark = dst.mark();
    let f = sb
        .ferry()
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.image("ns/app"))
        .arg(dst.image("mirror"))
        .run();
    assert!(
        f.assert_success()
            .stdout
            .contains("Synced 20 images from 1 sources: 0 copied, 20 already present, 0 failed"),
        "{f}"
    );
    let reqs = dst.requests_since(mark);
    let heads = reqs
        .iter()
        .filter(|r| r.kind() == RequestKind::ManifestHead)
        .count();
    assert_eq!(heads, 20, "{reqs:#?}");
    assert!(
        reqs.iter()
            .all(|r| matches!(r.kind(), RequestKind::ManifestHead | RequestKind::Ping)),
        "{reqs:#?}"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.kind() == RequestKind::Ping)
            .count()
            <= 1
    );

    // skopeo's sync of the same repository names the destination the same way.
    skopeo()
        .args(["sync", "--src", "docker", "--dest", "docker"])
        .args(src.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(src.image("ns/app"))
        .arg(dst.image("skopeo/mirror"))
        .run()
        .assert_success();
    assert_eq!(tags_and_digests(&dst, "skopeo/mirror/app"), want);
}

#[test]
fn sync_from_yaml_with_credentials_regex_cert_dir_suffix_and_dry_run() {
    let src = Registry::start(RegistryOptions {
        tls: Tls::Ca,
        auth: Auth::Basic(vec![("reader".into(), "r-pw".into())]),
        ..Default::default()
    });
    let dst = Registry::start(RegistryOptions::default());
    let app = ImageSpec::docker().layers(&[256]).build();
    let lib = ImageSpec::oci().layers(&[256]).build();
    app.seed(&src, "ns/app:v1");
    app.seed(&src, "ns/app:v2");
    for tag in ["1.0", "1.1", "1.1-rc", "2.0"] {
        lib.seed(&src, &format!("ns/lib:{tag}"));
    }
    let sb = Sandbox::new();
    let yaml = sb.path().join("sync.yaml");
    std::fs::write(
        &yaml,
        format!(
            "{host}:\n  images:\n    ns/app: [v1]\n  images-by-tag-regex:\n    ns/lib: ^1\\.[0-9]+$\n  credentials:\n    username: reader\n    password: r-pw\n  cert-dir: {cert}\n",
            host = src.host(),
            cert = src.cert_dir().unwrap().display()
        ),
    )
    .unwrap();

    // --dry-run: lists, copies nothing.
    let mark = dst.mark();
    let f = sb
        .ferry()
        .args(["sync", "--src", "yaml", "--dest", "docker", "--dry-run"])
        .args(dst.tls_args(Side::Dest))
        .arg(&yaml)
        .arg(dst.image("dry"))
        .run();
    assert!(
        f.assert_success()
            .stdout
            .contains("Would have synced 3 images"),
        "{f}"
    );
    assert!(dst.requests_since(mark).is_empty());

    for (tool, prefix) in [(sb.skopeo(), "sk"), (sb.ferry(), "fe")] {
        let mut tool = tool;
        tool.args(["sync", "--src", "yaml", "--dest", "docker"])
            .args(dst.tls_args(Side::Dest))
            .arg(&yaml)
            .arg(dst.image(prefix))
            .run()
            .assert_success();
    }
    let app_want = BTreeMap::from([("v1".to_string(), app.digest)]);
    let lib_want: BTreeMap<String, String> = ["1.0", "1.1"]
        .iter()
        .map(|t| (t.to_string(), lib.digest.clone()))
        .collect();
    for prefix in ["sk", "fe"] {
        assert_eq!(
            tags_and_digests(&dst, &format!("{prefix}/app")),
            app_want,
            "{prefix}"
        );
        assert_eq!(
            tags_and_digests(&dst, &format!("{prefix}/lib")),
            lib_want,
            "{prefix}"
        );
    }

    // --append-suffix (current skopeo; not in 1.9.3): appended to each tag.
    sb.ferry()
        .args([
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--append-suffix",
            "-mirrored",
        ])
        .args(dst.tls_args(Side::Dest))
        .arg(&yaml)
        .arg(dst.image("sfx"))
        .run()
        .assert_success();
    let mut got: Vec<String> = dst.tags("sfx/lib");
    got.sort();
    assert_eq!(got, ["1.0-mirrored", "1.1-mirrored"]);

    // --scoped with a host:port source cannot name a destination; skopeo refuses it as well.
    for tool in [sb.skopeo(), sb.ferry()] {
        let mut tool = tool;
        tool.args(["sync", "--scoped", "--src", "yaml", "--dest", "docker"])
            .args(dst.tls_args(Side::Dest))
            .arg(&yaml)
            .arg(dst.image("scoped"))
            .run()
            .assert_failure();
    }
}

#[test]
fn sync_keep_going_copies_the_rest_and_still_fails() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[128]).build();
    fx.seed(&src, "ns/app:v1");
    let sb = Sandbox::new();
    let yaml = sb.path().join("sync.yaml");
    std::fs::write(
        &yaml,
        format!(
            "{}:\n  images:\n    ns/app: [missing, v1]\n  tls-verify: false\n",
            src.host()
        ),
    )
    .unwrap();
    let run = |keep_going: bool, prefix: &str| {
        let mut f = sb.ferry();
        f.args(["sync", "--src", "yaml", "--dest", "docker"]);
        if keep_going {
            f.arg("--keep-going");
        }
        f.args(dst.tls_args(Side::Dest))
            .arg(&yaml)
            .arg(dst.image(prefix))
            .run()
    };
    let f = run(false, "a");
    f.assert_failure_with(&["not found"]);
    let f = run(true, "b");
    assert_eq!(f.code, Some(1), "{f}");
    assert!(
        f.stdout.contains("1 copied, 0 already present, 1 failed"),
        "{f}"
    );
    assert!(f.stderr.contains("Sync failed"), "{f}");
    assert_eq!(
        dst.manifest_digest("b/app", "v1").as_deref(),
        Some(fx.digest.as_str())
    );
}

/// `--parallel-images N` bounds the images being copied. A proxy holds the first two images'
/// source manifest `GET`s (the copy's first read; the cheap `HEAD` checks before it run wider)
/// until both are there at once — the images do overlap, seen as an event, not in a time
/// window — and holds every later one for 2 s, counting how many it holds at once: never
/// more than 2 (a slow machine can only make that count smaller).
#[test]
fn sync_copies_images_concurrently_within_the_parallel_images_bound() {
    use crate::support::faults::{Fault, FaultProxy, Rule};
    use std::time::Duration;

    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let mut want = BTreeMap::new();
    for t in 0..6 {
        let fx = ImageSpec::oci()
            .layers(&[2048])
            .label("n", &t.to_string())
            .build();
        fx.seed(&src, &format!("ns/app:t{t}"));
        want.insert(format!("t{t}"), fx.digest.clone());
    }
    let proxy = FaultProxy::start(&src);
    let gate = proxy.add(Rule::new("GET", "/manifests/t[0-9]$", Fault::Gate(2)).times(2));
    let hold = proxy.add(Rule::new(
        "GET",
        "/manifests/t[0-9]$",
        Fault::Delay(Duration::from_secs(2)),
    ));
    let f = ferry()
        .args([
            "sync",
            "--src",
            "docker",
            "--dest",
            "docker",
            "--parallel-images=2",
        ])
        .args(proxy.tls_args(Side::Src))
        .args(dst.tls_args(Side::Dest))
        .arg(proxy.docker_ref("ns/app"))
        .arg(dst.image("mirror"))
        .run();
    f.assert_success();
    assert!(
        f.stdout
            .contains("Synced 6 images from 1 sources: 6 copied, 0 already present, 0 failed"),
        "{f}"
    );
    assert_eq!(tags_and_digests(&dst, "mirror/app"), want);
    assert!(proxy.hits(gate) + proxy.hits(hold) >= 6, "{f}");
    assert_eq!(proxy.max_held(gate), 2, "images in flight at once\n{f}");
    assert!(proxy.max_held(hold) <= 2, "images in flight at once\n{f}");
}

/// `images-by-semver` (current skopeo, Masterminds/semver constraints; Debian's skopeo 1.9.3
/// predates it, so there is no oracle run): only tags that are semantic versions satisfying
/// the constraint are copied — `v` prefixes and short versions count, prereleases and
/// other tags do not.
#[test]
fn sync_from_yaml_by_semver_copies_the_matching_versions_only() {
    let src = Registry::start(RegistryOptions::default());
    let dst = Registry::start(RegistryOptions::default());
    let img = ImageSpec::oci().layers(&[256]).build();
    let tags = [
        "1.0.0",
        "1.2",
        "v1.3.1",
        "1.4.0-rc.1",
        "2.0.0",
        "latest",
        "1.9.x",
        "v1.10.0",
    ];
    for tag in tags {
        img.seed(&src, &format!("ns/base:{tag}"));
    }
    let sb = Sandbox::new();
    let yaml = sb.path().join("sync.yaml");
    let sync = |constraint: &str| {
        std::fs::write(
            &yaml,
            format!(
                "{host}:\n  images-by-semver:\n    ns/base: \"{constraint}\"\n  tls-verify: false\n",
                host = src.host()
            ),
        )
        .unwrap();
        sb.ferry()
            .args(["sync", "--src", "yaml", "--dest", "docker"])
            .args(dst.tls_args(Side::Dest))
            .arg(&yaml)
            .arg(dst.image("mirror"))
            .run()
    };
    // An improper constraint is refused up front, naming the repository.
    let f = sync(">= 1.2, < 2 || latest-is-not-a-version-so-never");
    assert_eq!(f.code, Some(1), "{f}");
    assert!(
        f.stderr.contains("ns/base") && f.stderr.contains("invalid semantic version constraint"),
        "{f}"
    );
    assert!(dst.tags("mirror/base").is_empty());

    let f = sync(">= 1.2, < 2");
    f.assert_success();
    assert!(
        f.stdout
            .contains("Synced 3 images from 1 sources: 3 copied, 0 already present, 0 failed"),
        "{f}"
    );
    let want: BTreeMap<String, String> = ["1.2", "v1.3.1", "v1.10.0"]
        .iter()
        .map(|t| (t.to_string(), img.digest.clone()))
        .collect();
    assert_eq!(tags_and_digests(&dst, "mirror/base"), want);
}
