//! Bulk mirrors on the engines that run the shards (docs/scale.md), each run for real against
//! the lab's registries: the Indexed Job of `templates/mirror-job.yaml` (N pods with
//! `JOB_COMPLETION_INDEX` 0…N−1, support/kube.rs), the same Job killed in the middle of a copy
//! and restarted with its journal, the CronJob's Job, the Tekton Pipeline of
//! `templates/tekton/mirror-pipeline.yaml` (`matrix` over the shard indices) and the parallel
//! stages of `Jenkinsfile.mirror`. Every image of the list arrives, exactly once.
//!
//! This file: the shared lab and the Kubernetes Jobs; the Tekton and Jenkins pipelines are in
//! `mirror_pipelines.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::{Fixture, ImageSpec};
use crate::support::kube::IndexedJob;
use crate::support::tekton::Cluster;
use crate::support::{
    Auth, HANG_GUARD, Registry, RegistryOptions, RequestKind, Tls, pki, wait_until,
};
use crate::templates::{object, process};

pub(crate) const USER: &str = "mirror";
pub(crate) const PASSWORD: &str = "mirror-pw-5d41402abc4b";

/// The shard of `count` that owns `key`: rendezvous hashing as docs/scale.md defines it,
/// written here apart from ferry's code.
pub(crate) fn owner(key: &str, count: u32) -> u32 {
    (0..count)
        .map(|i| {
            let mut h = Sha256::new();
            h.update(key.as_bytes());
            h.update([0u8]);
            h.update(i.to_be_bytes());
            (u64::from_be_bytes(h.finalize()[..8].try_into().unwrap()), i)
        })
        .fold((0u64, 0u32), |best, (s, i)| {
            if i == 0 || s > best.0 { (s, i) } else { best }
        })
        .1
}

/// The source registry's images: repository → [(tag, fixture)]. Images of one repository
/// share their layers (same seed) and differ by their config.
pub(crate) fn images(repos: usize, tags: usize) -> BTreeMap<String, Vec<(String, Fixture)>> {
    (0..repos)
        .map(|r| {
            let list = (0..tags)
                .map(|t| {
                    let fx = ImageSpec::oci()
                        .seed(100 + r as u64)
                        .layers(&[3000, 9000])
                        .label("tag", &format!("v{t}"))
                        .build();
                    (format!("v{t}"), fx)
                })
                .collect();
            (format!("r{r}"), list)
        })
        .collect()
}

pub(crate) struct Mirror {
    pub(crate) src: Registry,
    pub(crate) dst: Registry,
    pub(crate) images: BTreeMap<String, Vec<(String, Fixture)>>,
    /// The source as the pods reach it (the registry, or a proxy in front of it).
    pub(crate) src_host: String,
    pub(crate) proxy: Option<FaultProxy>,
}

impl Mirror {
    pub(crate) fn start(repos: usize, tags: usize, proxied: bool) -> Mirror {
        let auth = Auth::Basic(vec![(USER.into(), PASSWORD.into())]);
        // A proxied source speaks plain HTTP (the fault proxy's), the list says tls-verify: false.
        let src = Registry::start(RegistryOptions {
            tls: if proxied { Tls::None } else { Tls::Ca },
            auth: auth.clone(),
            ..Default::default()
        });
        let dst = Registry::start(RegistryOptions {
            tls: Tls::Ca,
            auth,
            ..Default::default()
        });
        let images = images(repos, tags);
        for (repo, list) in &images {
            for (tag, fx) in list {
                fx.seed(&src, &format!("team/{repo}:{tag}"));
            }
        }
        let proxy = proxied.then(|| FaultProxy::start(&src));
        let src_host = proxy.as_ref().map_or_else(|| src.host(), FaultProxy::host);
        Mirror {
            src,
            dst,
            images,
            src_host,
            proxy,
        }
    }

    /// skopeo's sync YAML of every image: tags listed, and the last repository by regex.
    pub(crate) fn list(&self) -> String {
        let mut y = format!("{}:\n  images:\n", self.src_host);
        let last = self.images.keys().last().unwrap().clone();
        for (repo, list) in &self.images {
            if *repo != last {
                let tags: Vec<&str> = list.iter().map(|(t, _)| t.as_str()).collect();
                y.push_str(&format!("    team/{repo}: [{}]\n", tags.join(", ")));
            }
        }
        y.push_str(&format!(
            "  images-by-tag-regex:\n    team/{last}: ^v[0-9]+$\n"
        ));
        if self.proxy.is_some() {
            y.push_str("  tls-verify: false\n");
        }
        y
    }

    pub(crate) fn destination(&self) -> String {
        format!("{}/mirror", self.dst.host())
    }

    /// The registries' credentials as the auth file of the Secret (kubernetes.io/dockerconfigjson).
    pub(crate) fn auth_file(&self) -> Vec<u8> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        serde_json::to_vec(&json!({"auths": {
            self.src_host.clone(): {"auth": auth},
            self.dst.host(): {"auth": auth},
        }}))
        .unwrap()
    }

    /// The namespace's objects: the template's ConfigMaps, the auth Secret, and the CA bundle
    /// OpenShift injects into the `-ca` ConfigMap (the lab CA here).
    pub(crate) fn cluster(&self, objects: &[Value]) -> Cluster {
        let mut c = Cluster {
            namespace: "mirror".into(),
            ..Cluster::default()
        };
        for o in objects.iter().filter(|o| o["kind"] == "ConfigMap") {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            let mut files: Vec<(String, Vec<u8>)> = o["data"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                .collect();
            if o["metadata"]["labels"]["config.openshift.io/inject-trusted-cabundle"] == "true" {
                files.push((
                    "ca-bundle.crt".into(),
                    pki::lab_ca().ca_pem.as_bytes().to_vec(),
                ));
            }
            c.config_maps.insert(name, files);
        }
        c.secrets.insert(
            "ferry-mirror-auth".into(),
            vec![(".dockerconfigjson".into(), self.auth_file())],
        );
        c.config_maps.insert(
            "ferry-mirror-ca".into(),
            vec![(
                "ca-bundle.crt".into(),
                pki::lab_ca().ca_pem.as_bytes().to_vec(),
            )],
        );
        c
    }

    /// Every image is at the destination with its digest, its tag written once, each blob of
    /// a repository uploaded once, since `mark`.
    pub(crate) fn assert_all_arrived_once(&self, mark: crate::support::Mark) {
        let reqs = self.dst.requests_since(mark);
        for (repo, list) in &self.images {
            for (tag, fx) in list {
                assert_eq!(
                    self.dst
                        .manifest_digest(&format!("mirror/{repo}"), tag)
                        .as_deref(),
                    Some(fx.digest.as_str()),
                    "mirror/{repo}:{tag}"
                );
                let puts = reqs
                    .iter()
                    .filter(|r| {
                        r.kind() == RequestKind::ManifestPut
                            && r.repo().as_deref() == Some(&format!("mirror/{repo}"))
                            && r.reference().as_deref() == Some(tag.as_str())
                    })
                    .count();
                assert_eq!(puts, 1, "mirror/{repo}:{tag} written {puts} times");
            }
        }
        let mut uploads: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in reqs
            .iter()
            .filter(|r| r.kind() == RequestKind::UploadFinish && r.status == 201)
        {
            *uploads
                .entry((
                    r.repo().unwrap_or_default(),
                    r.query_param("digest").unwrap_or_default(),
                ))
                .or_default() += 1;
        }
        let twice: Vec<_> = uploads.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "blobs uploaded more than once: {twice:?}");
    }

    pub(crate) fn count(&self) -> usize {
        self.images.values().map(Vec::len).sum()
    }
}

/// The trust policy a mirror checks its copies against: images of the lab's source only.
pub(crate) fn policy(m: &Mirror) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {m.src_host.clone(): [{"type": "insecureAcceptAnything"}]}},
    }))
    .unwrap()
}

pub(crate) fn report(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

pub(crate) fn image_sources(r: &Value) -> Vec<String> {
    r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string())
        .collect()
}

/// The Indexed Job: N pods, each its shard; together every image once, no blob twice.
#[test]
fn mirror_indexed_job_copies_every_image_once() {
    let m = Mirror::start(7, 3, false);
    let t = process(
        "mirror-job.yaml",
        &[
            ("PROJECT_NAME", "mirror"),
            ("IMAGES_YAML", &m.list()),
            ("DESTINATION", &m.destination()),
            ("SHARDS", "3"),
            ("PARALLELISM", "3"),
            ("TRUST_POLICY", &String::from_utf8(policy(&m)).unwrap()),
        ],
    );
    let cluster = m.cluster(&t.objects);
    let job = IndexedJob::new(object(&t, "Job"), &cluster);
    let mark = m.dst.mark();
    let pods = job.run_all();
    assert_eq!(pods.len(), 3);
    let mut seen = BTreeMap::new();
    for (pod, runs) in &pods {
        assert_eq!(runs.len(), 1, "pod {} restarted:\n{:?}", pod.index, runs);
        runs[0].assert_success();
        let file = format!(
            "/var/lib/ferry/ferry-mirror-{}-{}.report.json",
            job.uid, pod.index
        );
        let r = report(&pod.fs.read(&file).unwrap_or_else(|| panic!("no {file}")));
        assert_eq!(r["shard"], format!("{}/3", pod.index));
        assert_eq!(r["shard_by"], "repository");
        for s in image_sources(&r) {
            assert!(
                seen.insert(s.clone(), pod.index).is_none(),
                "{s} in two shards"
            );
        }
        // Each shard owns whole repositories: the ones rendezvous hashing gives it.
        for i in r["images"].as_array().unwrap() {
            let dst = i["destination"]
                .as_str()
                .unwrap()
                .trim_start_matches("docker://");
            let repo = dst.rsplit_once(':').unwrap().0;
            assert_eq!(owner(repo, 3), pod.index, "{dst}");
            assert_eq!(i["outcome"], "copied");
        }
    }
    assert_eq!(seen.len(), m.count(), "{seen:#?}");
    m.assert_all_arrived_once(mark);
}

/// The CronJob variant starts exactly the Job of mirror-job.yaml.
#[test]
fn mirror_the_cronjob_runs_the_same_job() {
    let p = [("IMAGES_YAML", "r.io:\n  images:\n    a: [v1]\n")];
    let job = process("mirror-job.yaml", &p);
    let cron = process("mirror-cronjob.yaml", &p);
    let c = object(&cron, "CronJob");
    assert_eq!(
        c["spec"]["jobTemplate"]["spec"],
        object(&job, "Job")["spec"]
    );
    assert_eq!(c["spec"]["concurrencyPolicy"], "Forbid");
    let cms = |p: &crate::oc_process::Processed| -> Vec<Value> {
        p.objects
            .iter()
            .filter(|o| o["kind"] == "ConfigMap")
            .cloned()
            .collect()
    };
    assert_eq!(cms(&cron), cms(&job));
}

/// A shard killed in the middle of a copy (its container restarted in the same pod, as
/// `restartPolicy: OnFailure` does) finishes without copying again what its journal records.
#[test]
fn mirror_a_killed_shard_resumes_from_its_journal() {
    let m = Mirror::start(6, 3, true);
    let proxy = m.proxy.as_ref().unwrap();
    let dest = m.destination();
    // The shard with the most repositories; in its plan the last image's config is held.
    let count = 2;
    let shard = (0..count)
        .max_by_key(|&i| {
            m.images
                .keys()
                .filter(|r| owner(&format!("{dest}/{r}"), count) == i)
                .count()
        })
        .unwrap();
    let mine: Vec<(&String, &String, &Fixture)> = m
        .images
        .iter()
        .filter(|(r, _)| owner(&format!("{dest}/{r}"), count) == shard)
        .flat_map(|(r, l)| l.iter().map(move |(t, fx)| (r, t, fx)))
        .collect();
    assert!(mine.len() >= 4, "{}", mine.len());
    let (held_repo, held_tag, held) = *mine.last().unwrap();
    let hold = proxy.add(Rule::new(
        "GET",
        &format!("/v2/team/{held_repo}/blobs/{}", held.image().config_digest),
        Fault::Delay(Duration::from_secs(600)),
    ));
    let t = process(
        "mirror-job.yaml",
        &[
            ("PROJECT_NAME", "mirror"),
            ("IMAGES_YAML", &m.list()),
            ("DESTINATION", &dest),
            ("SHARDS", "2"),
            ("PARALLELISM", "2"),
            ("TRUST_POLICY", &String::from_utf8(policy(&m)).unwrap()),
        ],
    );
    let cluster = m.cluster(&t.objects);
    let job = IndexedJob::new(object(&t, "Job"), &cluster);
    let pod = job.pod(shard);
    let journal = format!("/var/lib/ferry/ferry-mirror-{}-{shard}.journal", job.uid);
    let mark = m.dst.mark();
    let mut running = pod.start();
    // Wait for the held copy, and for everything else of the shard in the journal (events:
    // the proxy holding the request, the journal's lines; no deadline, a hang guard only).
    let journal_lines = || {
        pod.fs
            .read(&journal)
            .map(|b| String::from_utf8(b).unwrap().lines().count())
            .unwrap_or(0)
    };
    wait_until(
        "the shard to hold its last image and journal the others",
        || proxy.max_held(hold) >= 1 && journal_lines() == mine.len() - 1,
    );
    let done_before = journal_lines();
    running.kill();
    let killed = running.wait(HANG_GUARD);
    assert_eq!(killed.code, None, "killed by a signal:\n{killed}");
    assert_eq!(
        m.dst
            .manifest_digest(&format!("mirror/{held_repo}"), held_tag),
        None,
        "the held image's tag was not written"
    );
    let first: BTreeSet<String> = m
        .dst
        .requests_since(mark)
        .iter()
        .filter(|r| r.kind() == RequestKind::UploadFinish && r.status == 201)
        .filter_map(|r| r.query_param("digest"))
        .collect();

    // The kubelet starts the container again, in the same pod.
    proxy.clear();
    let mark2 = m.dst.mark();
    let src_mark = proxy.requests().len();
    let out = pod.run();
    out.assert_success();
    let second = m.dst.requests_since(mark2);
    // Nothing the first run finished crossed the network again.
    for r in &second {
        if r.kind() == RequestKind::UploadFinish && r.status == 201 {
            let d = r.query_param("digest").unwrap();
            assert!(!first.contains(&d), "{d} uploaded again");
        }
        if r.kind() == RequestKind::ManifestPut {
            assert_eq!(
                r.repo().as_deref(),
                Some(&*format!("mirror/{held_repo}")),
                "{r:?}"
            );
        }
    }
    let src_seen = &proxy.requests()[src_mark..];
    for (repo, tag, _) in &mine[..mine.len() - 1] {
        // The source is not even asked about what the journal records as done.
        assert!(
            !src_seen
                .iter()
                .any(|s| s.path.ends_with(&format!("team/{repo}/manifests/{tag}"))),
            "{repo}:{tag} asked at the source again"
        );
        // One HEAD at the destination confirms it.
        let heads = second
            .iter()
            .filter(|r| {
                r.kind() == RequestKind::ManifestHead
                    && r.repo().as_deref() == Some(&*format!("mirror/{repo}"))
                    && r.reference().as_deref() == Some(tag.as_str())
            })
            .count();
        assert_eq!(heads, 1, "{repo}:{tag}");
    }
    let file = format!(
        "/var/lib/ferry/ferry-mirror-{}-{shard}.report.json",
        job.uid
    );
    let r = report(&pod.fs.read(&file).unwrap());
    assert_eq!(r["summary"]["journaled"], done_before as u64, "{r:#}");
    assert_eq!(r["summary"]["copied"], 1, "{r:#}");
    for (repo, tag, fx) in &mine {
        assert_eq!(
            m.dst
                .manifest_digest(&format!("mirror/{repo}"), tag)
                .as_deref(),
            Some(fx.digest.as_str())
        );
    }
    // The other shard, untouched, then completes the list.
    let other = job.pod(1 - shard);
    other.run().assert_success();
    for (repo, list) in &m.images {
        for (tag, fx) in list {
            assert_eq!(
                m.dst
                    .manifest_digest(&format!("mirror/{repo}"), tag)
                    .as_deref(),
                Some(fx.digest.as_str())
            );
        }
    }
}
