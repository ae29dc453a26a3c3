//! `sync`'s bulk-work flags against real registries: shards that together copy the list once,
//! the report, the journal's one `HEAD`, a no-op that costs a `HEAD` per side, and pacing —
//! `--requests-per-second` and a registry's `RateLimit` headers, seen from a proxy's log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

/// Two registries (plain HTTP) and `repos` × `tags` images, with the YAML that lists them.
struct Lab {
    src: Registry,
    dst: Registry,
    images: BTreeMap<(String, String), Fixture>,
    sb: Sandbox,
}

impl Lab {
    fn start(repos: usize, tags: usize) -> Lab {
        let src = Registry::start(RegistryOptions::default());
        let dst = Registry::start(RegistryOptions::default());
        let mut images = BTreeMap::new();
        for r in 0..repos {
            for t in 0..tags {
                let fx = ImageSpec::oci()
                    .seed(40 + r as u64)
                    .layers(&[2000])
                    .label("t", &t.to_string())
                    .build();
                fx.seed(&src, &format!("ns/r{r}:v{t}"));
                images.insert((format!("r{r}"), format!("v{t}")), fx);
            }
        }
        Lab {
            src,
            dst,
            images,
            sb: Sandbox::new(),
        }
    }

    fn yaml(&self, host: &str) -> std::path::PathBuf {
        let mut y = format!("{host}:\n  images:\n");
        let mut repos: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for (r, t) in self.images.keys() {
            repos.entry(r).or_default().push(t);
        }
        for (r, tags) in repos {
            let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
            y.push_str(&format!("    ns/{r}: [{}]\n", tags.join(", ")));
        }
        y.push_str("  tls-verify: false\n");
        let p = self.sb.path().join(format!("sync-{}.yaml", random_hex(3)));
        std::fs::write(&p, y).unwrap();
        p
    }

    fn sync(&self, yaml: &std::path::Path, extra: &[&str]) -> Output {
        self.sb
            .ferry()
            .args(["sync", "--src", "yaml", "--dest", "docker"])
            .args(self.dst.tls_args(Side::Dest))
            .args(extra)
            .arg(yaml)
            .arg(self.dst.image("m"))
            .run()
    }

    fn report(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.sb.path().join(name)).unwrap()).unwrap()
    }
}

fn sources(r: &Value) -> Vec<String> {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sync_shards_together_copy_the_list_once_by_repository_or_by_image() {
    let lab = Lab::start(5, 3);
    let yaml = lab.yaml(&lab.src.host());
    for (by, n) in [("repository", 3), ("image", 4)] {
        let mut union = BTreeSet::new();
        let mut shards_of: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        for i in 0..n {
            let report = format!("{by}-{i}.json");
            let out = lab.sync(
                &yaml,
                &[
                    "--shard",
                    &format!("{i}/{n}"),
                    "--shard-by",
                    by,
                    "--report",
                    &report,
                ],
            );
            out.assert_success();
            assert!(out.stderr.contains(&format!("Shard {i}/{n}")), "{out}");
            let r = lab.report(&report);
            assert_eq!(r["shard"], format!("{i}/{n}"));
            assert_eq!(r["shard_by"], by);
            for s in sources(&r) {
                let repo = s.rsplit_once(':').unwrap().0.to_string();
                shards_of.entry(repo).or_default().insert(i);
                assert!(union.insert(s.clone()), "{s} in two shards ({by})");
            }
        }
        assert_eq!(union.len(), lab.images.len(), "{by}: {union:#?}");
        let split = shards_of.values().filter(|s| s.len() > 1).count();
        match by {
            // Whole repositories: each in one shard.
            "repository" => assert_eq!(split, 0, "{shards_of:?}"),
            // Single images: repositories spread over shards.
            _ => assert!(split > 0, "{shards_of:?}"),
        }
    }
    for ((r, t), fx) in &lab.images {
        assert_eq!(
            lab.dst.manifest_digest(&format!("m/{r}"), t).as_deref(),
            Some(fx.digest.as_str())
        );
    }
}

#[test]
fn sync_shard_flags_are_checked() {
    let lab = Lab::start(1, 1);
    let yaml = lab.yaml(&lab.src.host());
    let out = lab.sync(&yaml, &["--shard-count", "3"]);
    out.assert_failure_with(&["JOB_COMPLETION_INDEX"]);
    assert_eq!(out.code, Some(1));
    lab.sync(&yaml, &["--shard", "3/3"])
        .assert_failure_with(&["not below the number of shards"]);
    lab.sync(&yaml, &["--shard-by", "image"])
        .assert_failure_with(&["--shard-by needs"]);
    lab.sync(&yaml, &["--shard", "0/2", "--shard-count", "2"])
        .assert_failure_with(&["cannot be used with"]);
    lab.sync(&yaml, &["--requests-per-second=-1"])
        .assert_failure_with(&["--requests-per-second -1"]);
    // JOB_COMPLETION_INDEX as an Indexed Job sets it.
    let out = lab
        .sb
        .ferry()
        .args([
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--shard-count",
            "1",
        ])
        .args(lab.dst.tls_args(Side::Dest))
        .arg(&yaml)
        .arg(lab.dst.image("m"))
        .env("JOB_COMPLETION_INDEX", "0")
        .run();
    out.assert_success();
    assert!(out.stderr.contains("Shard 0/1"), "{out}");
}

/// The report without a journal, for CI: every image's outcome, failures with their reason.
#[test]
fn sync_report_names_every_outcome() {
    let lab = Lab::start(2, 2);
    let yaml = lab.yaml(&lab.src.host());
    lab.sync(&yaml, &["--report", "first.json"])
        .assert_success();
    let r = lab.report("first.json");
    assert_eq!(r["summary"]["copied"], 4, "{r:#}");
    for i in r["images"].as_array().unwrap() {
        assert_eq!(i["outcome"], "copied");
        assert!(i["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(i["bytes"]["copied"].as_u64().unwrap() > 0, "{i}");
        assert!(i["requests"]["destination"].as_u64().unwrap() > 0, "{i}");
    }
    // A missing image among present ones, with --keep-going: exit 1, all in the report.
    let y = std::fs::read_to_string(&yaml)
        .unwrap()
        .replace("[v0, v1]", "[v0, v1, gone]");
    std::fs::write(&yaml, y).unwrap();
    let out = lab.sync(&yaml, &["--keep-going", "--report", "second.json"]);
    assert_eq!(out.code, Some(1), "{out}");
    let r = lab.report("second.json");
    assert_eq!(r["summary"]["present"], 4, "{r:#}");
    assert_eq!(r["summary"]["failed"], 2, "{r:#}");
    let failed: Vec<&Value> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "failed")
        .collect();
    assert!(
        failed
            .iter()
            .all(|i| i["source"].as_str().unwrap().ends_with(":gone"))
    );
    assert!(
        failed
            .iter()
            .all(|i| i["error"].as_str().unwrap().contains("not found")),
        "{failed:?}"
    );
    // Without --keep-going the sync stops at the first failure; the report says what happened.
    let out = lab.sync(&yaml, &["--report", "third.json", "--parallel-images", "1"]);
    assert_eq!(out.code, Some(2), "{out}");
    let r = lab.report("third.json");
    assert_eq!(r["summary"]["failed"], 1, "{r:#}");
}

/// An image already at the destination costs a `HEAD` per side — no manifest `GET` (a pull to
/// Docker Hub) — so at most 2 requests per image after authentication, when nothing else
/// travels with the images (`--referrers=none`; by default the engine also looks for the
/// referrers and attachment tags the destination lacks).
#[test]
fn sync_a_no_op_costs_a_head_per_side() {
    let lab = Lab::start(3, 4);
    let yaml = lab.yaml(&lab.src.host());
    lab.sync(&yaml, &["--referrers=none"]).assert_success();
    let (s, d) = (lab.src.mark(), lab.dst.mark());
    let out = lab.sync(&yaml, &["--referrers=none", "--report", "noop.json"]);
    assert!(
        out.stdout
            .contains("0 copied, 12 already present, 0 failed"),
        "{out}"
    );
    let n = lab.images.len();
    for (side, reqs) in [
        ("source", lab.src.requests_since(s)),
        ("destination", lab.dst.requests_since(d)),
    ] {
        let work: Vec<&LoggedRequest> = reqs
            .iter()
            .filter(|r| r.kind() != RequestKind::Ping)
            .collect();
        assert_eq!(work.len(), n, "{side}: {work:#?}");
        assert!(
            work.iter().all(|r| r.kind() == RequestKind::ManifestHead),
            "{side}: {work:#?}"
        );
    }
    let r = lab.report("noop.json");
    assert_eq!(r["summary"]["present"], n as u64);
}

/// A journal's record is trusted only once the destination confirms it; an image the
/// destination lost since is copied again.
#[test]
fn sync_journal_skips_what_the_destination_confirms() {
    let lab = Lab::start(2, 2);
    let yaml = lab.yaml(&lab.src.host());
    lab.sync(&yaml, &["--journal", "j.jsonl"]).assert_success();
    let lines = std::fs::read_to_string(lab.sb.path().join("j.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    for l in lines.lines() {
        let e: Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["outcome"], "copied", "{l}");
        for k in ["source", "destination", "digest", "bytes", "time"] {
            assert!(e.get(k).is_some(), "{k} missing: {l}");
        }
    }
    // The destination loses one image.
    let lost = &lab.images[&("r1".to_string(), "v0".to_string())];
    assert_eq!(lab.dst.delete_manifest("m/r1", &lost.digest), 202);
    let (s, d) = (lab.src.mark(), lab.dst.mark());
    let out = lab.sync(&yaml, &["--journal", "j.jsonl", "--report", "r.json"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("1 copied, 3 already present (3 confirmed from the journal)"),
        "{out}"
    );
    // The source is asked about the lost image only.
    let asked: BTreeSet<String> = lab
        .src
        .requests_since(s)
        .iter()
        .filter(|r| {
            matches!(
                r.kind(),
                RequestKind::ManifestGet | RequestKind::ManifestHead
            )
        })
        .filter_map(|r| r.repo())
        .collect();
    assert_eq!(asked, BTreeSet::from(["ns/r1".to_string()]));
    let heads = lab
        .dst
        .requests_since(d)
        .iter()
        .filter(|r| r.kind() == RequestKind::ManifestHead)
        .count();
    assert!(
        heads >= 4,
        "one HEAD per journaled image, and the lost one's"
    );
    assert_eq!(
        lab.dst.manifest_digest("m/r1", "v0").as_deref(),
        Some(lost.digest.as_str())
    );
}

/// `--requests-per-second N`: requests to a registry start at least 1/N s apart (nothing
/// attached travels here, so an image already present costs one `HEAD` per side).
#[test]
fn sync_requests_per_second_paces_each_registry() {
    let lab = Lab::start(2, 2);
    lab.sync(&lab.yaml(&lab.src.host()), &["--referrers=none"])
        .assert_success();
    let proxy = FaultProxy::start(&lab.src);
    let yaml = lab.yaml(&proxy.host());
    lab.sync(&yaml, &["--referrers=none", "--requests-per-second", "8"])
        .assert_success();
    let seen: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path != "/v2/")
        .collect();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    // 4 starts at 1/8 s apart: the last arrives no earlier than 3/8 s after the first
    // (less the arrival jitter of the first).
    let span = seen.last().unwrap().at.duration_since(seen[0].at);
    assert!(span >= Duration::from_millis(375 - 25), "{span:?}");
}

/// `RateLimit-Remaining: 0` with `RateLimit-Reset: 1`: nothing more is sent to that registry
/// for a second.
#[test]
fn sync_pauses_when_the_registry_says_its_budget_is_spent() {
    // One image: no other request is already on its way when the budget answer arrives.
    let lab = Lab::start(1, 1);
    lab.sync(&lab.yaml(&lab.src.host()), &["--referrers=none"])
        .assert_success();
    let proxy = FaultProxy::start(&lab.src);
    let rule = proxy.add(
        Rule::new(
            "HEAD",
            "/manifests/",
            Fault::respond(|_| {
                axum::response::Response::builder()
                    .status(404)
                    .header("RateLimit-Remaining", "0")
                    .header("RateLimit-Reset", "1")
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
        .once(),
    );
    let yaml = lab.yaml(&proxy.host());
    let out = lab.sync(&yaml, &["--referrers=none"]);
    out.assert_success();
    assert!(out.stderr.contains("RateLimit-Remaining 0"), "{out}");
    let seen = proxy.requests();
    let at = seen
        .iter()
        .position(|r| r.rule == Some(rule))
        .expect("the budget answer");
    let later: Vec<_> = seen[at + 1..].iter().filter(|r| r.path != "/v2/").collect();
    assert!(!later.is_empty());
    for r in later {
        let gap = r.at.duration_since(seen[at].at);
        assert!(
            gap >= Duration::from_secs(1),
            "{} {} after {gap:?}",
            r.method,
            r.path
        );
    }
}
