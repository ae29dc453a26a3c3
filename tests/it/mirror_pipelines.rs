//! Bulk mirrors on the pipeline engines: the Tekton Pipeline of
//! `templates/tekton/mirror-pipeline.yaml` (`matrix` over the shard indices) and the parallel
//! stages of `Jenkinsfile.mirror`, each run for real against the lab's registries. Every image
//! of the list arrives, exactly once. The lab is in `mirror.rs`.

use std::collections::BTreeSet;

use crate::mirror::{Mirror, image_sources, policy, report};
use crate::support::pki;
use crate::support::tekton::{Param, PipelineRun, Workspace};
use crate::templates::{object, process};

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
