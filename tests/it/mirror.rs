//! Bulk mirrors on the engines that run the shards (docs/scale.md), each run for real against
//! the lab's registries: the Indexed Job of `templates/mirror-job.yaml` (N pods with
//! `JOB_COMPLETION_INDEX` 0…N−1, support/kube.rs), the same Job killed in the middle of a copy
//! and restarted with its journal, the CronJob's Job, the Tekton Pipeline of
//! `templates/tekton/mirror-pipeline.yaml` (`matrix` over the shard indices) and the parallel
//! stages of `Jenkinsfile.mirror`. Every image of the list arrives, exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::{Fixture, ImageSpec};
use crate::support::kube::IndexedJob;
use crate::support::tekton::{Cluster, Param, PipelineRun, Workspace};
use crate::support::{Auth, Registry, RegistryOptions, RequestKind, Tls, pki};
use crate::templates::{object, process};

const USER: &str = "mirror";
const PASSWORD: &str = "mirror-pw-5d41402abc4b";

/// The shard of `count` that owns `key`: rendezvous hashing as docs/scale.md defines it,
/// written here apart from ferry's code.
fn owner(key: &str, count: u32) -> u32 {
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
fn images(repos: usize, tags: usize) -> BTreeMap<String, Vec<(String, Fixture)>> {
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

struct Mirror {
    src: Registry,
    dst: Registry,
    images: BTreeMap<String, Vec<(String, Fixture)>>,
    /// The source as the pods reach it (the registry, or a proxy in front of it).
    src_host: String,
    proxy: Option<FaultProxy>,
}

impl Mirror {
    fn start(repos: usize, tags: usize, proxied: bool) -> Mirror {
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
    fn list(&self) -> String {
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

    fn destination(&self) -> String {
        format!("{}/mirror", self.dst.host())
    }

    /// The registries' credentials as the auth file of the Secret (kubernetes.io/dockerconfigjson).
    fn auth_file(&self) -> Vec<u8> {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        serde_json::to_vec(&json!({"auths": {
            self.src_host.clone(): {"auth": auth},
            self.dst.host(): {"auth": auth},
        }}))
        .unwrap()
    }

    /// The namespace's objects: the template's ConfigMaps, the auth Secret, and the CA bundle
    /// OpenShift injects into the `-ca` ConfigMap (the lab CA here).
    fn cluster(&self, objects: &[Value]) -> Cluster {
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
    fn assert_all_arrived_once(&self, mark: crate::support::Mark) {
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

    fn count(&self) -> usize {
        self.images.values().map(Vec::len).sum()
    }
}

/// The trust policy a mirror checks its copies against: images of the lab's source only.
fn policy(m: &Mirror) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {m.src_host.clone(): [{"type": "insecureAcceptAnything"}]}},
    }))
    .unwrap()
}

fn report(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn image_sources(r: &Value) -> Vec<String> {
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
    // Wait for the held copy, and for everything else of the shard in the journal.
    let deadline = Instant::now() + Duration::from_secs(120);
    let done_before = loop {
        let lines = pod
            .fs
            .read(&journal)
            .map(|b| String::from_utf8(b).unwrap().lines().count())
            .unwrap_or(0);
        if proxy.max_held(hold) >= 1 && lines == mine.len() - 1 {
            break lines;
        }
        assert!(Instant::now() < deadline, "the shard never got there");
        std::thread::sleep(Duration::from_millis(20));
    };
    running.kill();
    let killed = running.wait(Duration::from_secs(60));
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

/// OpenShift Pipelines: the mirror Pipeline fans the ferry-sync Task out with `matrix`.
#[test]
fn mirror_tekton_matrix_copies_every_image_once() {
    let m = Mirror::start(6, 2, false);
    let task = process("tekton/ferry-sync-task.yaml", &[("PROJECT_NAME", "mirror")]);
    let pipeline = process("tekton/mirror-pipeline.yaml", &[("PROJECT_NAME", "mirror")]);
    let mut cluster = m.cluster(&[]);
    cluster.config_maps.insert(
        "ferry-mirror-images".into(),
        vec![
            ("images.yaml".into(), m.list().into_bytes()),
            ("policy.json".into(), policy(&m)),
        ],
    );
    cluster.service_accounts.insert(
        "pipeline".into(),
        vec![("token".into(), b"unused".to_vec())],
    );
    let state = tempfile::Builder::new()
        .prefix("ferry-lab-claim-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let run = PipelineRun {
        name: "ferry-mirror-x7k2p".into(),
        params: vec![
            ("DESTINATION".into(), Param::str(&m.destination())),
            (
                "SHARDS".into(),
                Param::Array(vec!["0".into(), "1".into(), "2".into()]),
            ),
            ("SHARD_COUNT".into(), Param::str("3")),
        ],
        workspaces: vec![
            (
                "images".into(),
                Workspace::ConfigMap("ferry-mirror-images".into()),
            ),
            ("auth".into(), Workspace::Secret("ferry-mirror-auth".into())),
            ("ca".into(), Workspace::ConfigMap("ferry-mirror-ca".into())),
            ("state".into(), Workspace::Claim(state.path().to_path_buf())),
        ],
        service_account: "pipeline".into(),
    };
    let mark = m.dst.mark();
    let r = cluster.run_pipeline(
        object(&pipeline, "Pipeline"),
        &[object(&task, "Task")],
        &run,
    );
    assert!(r.succeeded, "{r:#?}");
    assert_eq!(r.task_runs.len(), 3);
    let mut seen = BTreeSet::new();
    for (_, tr) in &r.task_runs {
        let rep =
            report(&std::fs::read(state.path().join(format!("{}.report.json", tr.name))).unwrap());
        for s in image_sources(&rep) {
            assert!(seen.insert(s.clone()), "{s} in two shards");
        }
        assert!(state.path().join(format!("{}.journal", tr.name)).is_file());
    }
    assert_eq!(seen.len(), m.count());
    m.assert_all_arrived_once(mark);
}

/// Jenkins: Jenkinsfile.mirror's shard step, run once per parallel stage (each on a pod of its
/// own, the ferry container), with the job's parameters from the BuildConfig.
#[test]
fn mirror_jenkins_parallel_stages_copy_every_image_once() {
    let m = Mirror::start(5, 2, false);
    let jenkinsfile = crate::templates::read("Jenkinsfile.mirror");
    let script = crate::kit::jenkinsfile_sh_scripts(&jenkinsfile)
        .into_iter()
        .find(|s| s.contains("ferry sync"))
        .expect("the shard step");
    let t = process(
        "mirror-pipeline.yaml",
        &[("MIRROR_DESTINATION", &m.destination()), ("SHARDS", "3")],
    );
    let params = crate::templates::env_names(object(&t, "BuildConfig"));
    let env_of = |name: &str| -> String {
        object(&t, "BuildConfig")["spec"]["strategy"]["jenkinsPipelineStrategy"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let shards: u32 = env_of("SHARDS").parse().unwrap();
    let mark = m.dst.mark();
    let outs: Vec<(crate::support::pod::PodFs, crate::support::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..shards)
            .map(|i| {
                let script = &script;
                let params = &params;
                let env_of = &env_of;
                let m = &m;
                s.spawn(move || {
                    let pod = crate::support::pod::PodFs::new();
                    let ws = "/home/jenkins/agent/workspace/mirror";
                    // The checkout (the list at MIRROR_IMAGES), the credential file, the CAs.
                    let list = env_of("MIRROR_IMAGES");
                    let (dir, file) = list.rsplit_once('/').unwrap_or((".", &list));
                    let trust = env_of("MIRROR_POLICY");
                    let (pdir, pfile) = trust.rsplit_once('/').unwrap_or((".", &trust));
                    assert_eq!(dir, pdir, "the list and the policy side by side");
                    pod.volume(
                        &format!("{ws}/{dir}"),
                        &[
                            (file.to_string(), m.list().into_bytes()),
                            (pfile.to_string(), policy(m)),
                        ],
                        crate::support::pod::Volume::Writable,
                    );
                    pod.volume(
                        "/home/jenkins/agent/creds",
                        &[("auth.json".into(), m.auth_file())],
                        crate::support::pod::Volume::Projected,
                    );
                    pod.volume(
                        "/etc/containers/certs.d",
                        &[],
                        crate::support::pod::Volume::Writable,
                    );
                    for host in [m.src.host(), m.dst.host()] {
                        pod.volume(
                            &format!("/etc/containers/certs.d/{host}"),
                            &[("ca.crt".into(), pki::lab_ca().ca_pem.as_bytes().to_vec())],
                            crate::support::pod::Volume::Projected,
                        );
                    }
                    let mut env: Vec<(String, String)> =
                        params.iter().map(|n| (n.clone(), env_of(n))).collect();
                    env.push(("FERRY_SHARD".into(), format!("{i}/{shards}")));
                    env.push((
                        "FERRY_REPORT".into(),
                        format!("mirror-report-{i}-of-{shards}.json"),
                    ));
                    env.push((
                        "REGISTRY_AUTH_FILE".into(),
                        "/home/jenkins/agent/creds/auth.json".into(),
                    ));
                    let out = pod.run(
                        &["/bin/sh".into(), "-c".into(), format!("set -e\n{script}")],
                        &env,
                        ws,
                    );
                    (pod, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = BTreeSet::new();
    for (i, (pod, out)) in outs.iter().enumerate() {
        out.assert_success();
        let r = report(
            &pod.read(&format!(
                "/home/jenkins/agent/workspace/mirror/mirror-report-{i}-of-{shards}.json"
            ))
            .unwrap(),
        );
        for s in image_sources(&r) {
            assert!(seen.insert(s.clone()), "{s} in two stages");
        }
    }
    assert_eq!(seen.len(), m.count());
    m.assert_all_arrived_once(mark);
}
