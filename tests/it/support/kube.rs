//! A Kubernetes Indexed Job run the way the Job controller and the kubelet run it, each pod
//! a [`PodFs`]:
//!
//! - `completionMode: Indexed`: one pod per index 0…completions−1, at most `parallelism` at
//!   once; each container gets `JOB_COMPLETION_INDEX` (the controller adds it, from the pod's
//!   `batch.kubernetes.io/job-completion-index` annotation), and the pod the labels
//!   `batch.kubernetes.io/job-name` and `batch.kubernetes.io/controller-uid` (the Job's UID);
//! - env: literal values (with `$(VAR)` of earlier variables expanded) and `fieldRef`s to the
//!   pod's labels, annotations, name and namespace;
//! - `command` and `args` with Kubernetes' `$(VAR)` expansion ([`expand_k8s`]);
//! - volumes: ConfigMaps and Secrets (from the [`Cluster`]; `optional` ones may be missing),
//!   emptyDirs (the pod's own: they survive container restarts, not the pod), and claims (a
//!   folder of the machine per claim name, shared by every pod);
//! - `restartPolicy: OnFailure`: a container that fails (or is killed) starts again in the same
//!   pod, with the same volumes, until the Job's `backoffLimit` restarts are used up.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::Output;
use super::pod::{PodFs, Running, Volume, expand_k8s};
use super::tekton::Cluster;

/// One pod of the Job, ready to run its container (again).
pub struct JobPod {
    pub index: u32,
    pub fs: PodFs,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    claims: Vec<(PathBuf, PathBuf)>,
}

impl JobPod {
    /// Start the container.
    pub fn start(&self) -> Running {
        self.fs
            .spawn(&self.argv, &self.env, "/home/jenkins", &self.claims)
    }

    /// Run the container to its end.
    pub fn run(&self) -> Output {
        self.start().wait(super::tools::DEFAULT_TIMEOUT)
    }
}

/// A Job (kind Job, or a CronJob's `jobTemplate` as a Job) and what its pods mount.
pub struct IndexedJob<'a> {
    pub job: &'a Value,
    pub cluster: &'a Cluster,
    /// Claim name → the machine's folder behind it.
    pub claims: BTreeMap<String, PathBuf>,
    /// The Job object's UID.
    pub uid: String,
}

impl<'a> IndexedJob<'a> {
    pub fn new(job: &'a Value, cluster: &'a Cluster) -> IndexedJob<'a> {
        assert_eq!(
            job["spec"]["completionMode"], "Indexed",
            "not an Indexed Job"
        );
        IndexedJob {
            job,
            cluster,
            claims: BTreeMap::new(),
            uid: format!("{}-{}", super::random_hex(4), super::random_hex(6)),
        }
    }

    pub fn completions(&self) -> u32 {
        self.job["spec"]["completions"]
            .as_u64()
            .expect("completions") as u32
    }

    fn parallelism(&self) -> u32 {
        self.job["spec"]["parallelism"].as_u64().unwrap_or(1) as u32
    }

    /// The pod for `index`, its volumes laid out.
    pub fn pod(&self, index: u32) -> JobPod {
        let spec = &self.job["spec"]["template"]["spec"];
        let containers = spec["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        let c = &containers[0];
        let name = self.job["metadata"]["name"].as_str().unwrap_or_default();
        let pod_name = format!("{name}-{index}-{}", super::random_hex(3));
        let mut labels: BTreeMap<String, String> =
            self.job["spec"]["template"]["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
        labels.insert("batch.kubernetes.io/job-name".into(), name.into());
        labels.insert("job-name".into(), name.into());
        labels.insert(
            "batch.kubernetes.io/controller-uid".into(),
            self.uid.clone(),
        );
        labels.insert("controller-uid".into(), self.uid.clone());
        labels.insert(
            "batch.kubernetes.io/job-completion-index".into(),
            index.to_string(),
        );
        let annotation = (
            "batch.kubernetes.io/job-completion-index",
            index.to_string(),
        );
        let field = |path: &str| -> String {
            if let Some(key) = path
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return labels
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| panic!("no pod label {key:?}"));
            }
            if let Some(key) = path
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                assert_eq!(key, annotation.0, "no pod annotation {key:?}");
                return annotation.1.clone();
            }
            match path {
                "metadata.name" => pod_name.clone(),
                "metadata.namespace" => self.cluster.namespace.clone(),
                other => panic!("fieldRef {other} is not in the stand-in"),
            }
        };
        // The controller's variable first, then the container's, in order.
        let mut env = vec![("JOB_COMPLETION_INDEX".to_string(), index.to_string())];
        for e in c["env"].as_array().into_iter().flatten() {
            let n = e["name"].as_str().unwrap().to_string();
            let v = if let Some(v) = e["value"].as_str() {
                expand_k8s(v, &env)
            } else if let Some(p) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                field(p)
            } else {
                panic!("env {n}: only value and fieldRef are in the stand-in");
            };
            env.push((n, v));
        }
        let argv: Vec<String> = c["command"]
            .as_array()
            .expect("a command (the stand-in knows no image entrypoint)")
            .iter()
            .chain(c["args"].as_array().into_iter().flatten())
            .map(|a| expand_k8s(a.as_str().unwrap(), &env))
            .collect();
        let fs = PodFs::new();
        let volumes: BTreeMap<&str, &Value> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap(), v))
            .collect();
        let mut claims = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let mname = m["name"].as_str().unwrap();
            let path = m["mountPath"].as_str().unwrap();
            let v = volumes
                .get(mname)
                .unwrap_or_else(|| panic!("volumeMount {mname} names no volume"));
            let lookup = |map: &BTreeMap<String, Vec<(String, Vec<u8>)>>,
                          n: &str,
                          optional: bool| match map.get(n) {
                Some(f) => f.clone(),
                None if optional => Vec::new(),
                None => panic!("{n} not found: the pod would not start"),
            };
            if let Some(cm) = v.get("configMap") {
                let files = lookup(
                    &self.cluster.config_maps,
                    cm["name"].as_str().unwrap(),
                    cm["optional"] == true,
                );
                fs.volume(path, &files, Volume::Projected);
            } else if let Some(s) = v.get("secret") {
                let files = lookup(
                    &self.cluster.secrets,
                    s["secretName"].as_str().unwrap(),
                    s["optional"] == true,
                );
                fs.volume(path, &files, Volume::Projected);
            } else if v.get("emptyDir").is_some() {
                fs.volume(path, &[], Volume::Writable);
            } else if let Some(pvc) = v.get("persistentVolumeClaim") {
                let claim = pvc["claimName"].as_str().unwrap();
                let dir = self
                    .claims
                    .get(claim)
                    .unwrap_or_else(|| panic!("claim {claim} is not bound"));
                claims.push(fs.shared(path, dir));
            } else {
                panic!("volume {v} is not in the stand-in");
            }
        }
        JobPod {
            index,
            fs,
            argv,
            env,
            claims,
        }
    }

    /// Run every index, `parallelism` at a time, each pod's container restarted after a
    /// failure while the Job's `backoffLimit` allows: each pod, with every run of its container.
    pub fn run_all(&self) -> Vec<(JobPod, Vec<Output>)> {
        let restart = self.job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure";
        let backoff = self.job["spec"]["backoffLimit"].as_u64().unwrap_or(6) as usize;
        let used = std::sync::Mutex::new(0usize);
        let indices: Vec<u32> = (0..self.completions()).collect();
        let mut out = Vec::new();
        for chunk in indices.chunks(self.parallelism().max(1) as usize) {
            let results: Vec<(JobPod, Vec<Output>)> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let used = &used;
                        s.spawn(move || {
                            let pod = self.pod(i);
                            let mut runs = Vec::new();
                            loop {
                                let o = pod.run();
                                let ok = o.success();
                                runs.push(o);
                                if ok || !restart {
                                    break;
                                }
                                let mut u = used.lock().unwrap();
                                if *u >= backoff {
                                    break;
                                }
                                *u += 1;
                            }
                            (pod, runs)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            out.extend(results);
        }
        out
    }
}
