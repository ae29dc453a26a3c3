//! The whole flow on one machine: non-production and production registries (HTTPS, token auth
//! as OpenShift's, different service-account tokens), an image tagged with a commit in
//! non-production, `ferry trigger` (the non-production pipeline's last stage) → the stand-in of
//! the production BuildConfig's generic webhook → the production stage, `ferry promote --record
//! promotion.json` with exactly the environment the webhook delivered, in an agent pod's file
//! layout, under the trust policy of `templates/prod-pipeline.yaml` processed for the lab.
//! A second flow runs Jenkinsfile.nonprod's build-and-tag step against a stand-in `oc` while
//! `latest` moves; `agent_image.rs` promotes the agent image itself through the same flow.
//!
//! `FERRY_E2E_NARRATE=1` prints what happens, step by step (`scripts/demo` uses it).

use crate::promote::{Pod, promotion_yaml};
use crate::support::fixtures::{Fixture, ImageSpec, IndexSpec};
use crate::support::webhook::{BuildConfig, StartedBuild, WebhookOptions, WebhookServer};
use crate::support::{
    Auth, Grant, Output, Registry, RegistryOptions, RequestKind, Sandbox, Tls, TokenServer,
    TokenServerOptions, pki,
};

const NONPROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.nonprod-image-puller.sa-token";
/// The non-production builder's token (what OpenShift's builds push with, and `oc tag` writes as).
pub const BUILDER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.nonprod-builder.sa-token";
const PROD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.prod-jenkins.sa-token";
const WEBHOOK_SECRET: &str = "5d41402abc4b2a76b9719d911017c592deadbeef";
pub const DEV: &str = "team-dev";
pub const PROD: &str = "team-prod";
pub const COMMIT: &str = "3f7c2a91be0d4c5e8a1f6b2d9c0e7a4b5f6d8e21";

/// With `FERRY_E2E_NARRATE`, a step's title on stderr.
pub fn narrate(text: &str) {
    if std::env::var_os("FERRY_E2E_NARRATE").is_some() {
        eprintln!("\n\x1b[1m== {text}\x1b[0m");
    }
}

/// With `FERRY_E2E_NARRATE`, a command, its output and exit code on stderr.
pub fn show(out: &Output) {
    if std::env::var_os("FERRY_E2E_NARRATE").is_some() {
        eprintln!("$ {}", out.command);
        for l in out.stdout.lines().chain(out.stderr.lines()) {
            eprintln!("  {l}");
        }
        match out.code {
            Some(c) => eprintln!("  (exit {c})"),
            None => eprintln!("  (killed by a signal)"),
        }
    }
}

#[track_caller]
fn assert_no_secrets(out: &Output) {
    for s in [NONPROD_TOKEN, BUILDER_TOKEN, PROD_TOKEN, WEBHOOK_SECRET] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "secret in output:\n{out}"
        );
    }
}

pub struct Flow {
    pub nonprod: Registry,
    pub prod: Registry,
    nonprod_tokens: TokenServer,
    hook: WebhookServer,
    pod: Pod,
    /// The non-production agent's sandbox (holds the CA of the production API).
    nonprod_agent: Sandbox,
    /// The production agent's workspace.
    prod_agent: Sandbox,
    // Kept alive for the registries.
    _prod_tokens: TokenServer,
}

impl Flow {
    pub fn start() -> Flow {
        narrate(
            "Two clusters: a non-production and a production registry (HTTPS, token auth as OpenShift's)",
        );
        let nonprod_tokens = TokenServer::start(TokenServerOptions {
            // The image-puller service account: system:image-puller on the project, pull only.
            tokens: vec![
                (NONPROD_TOKEN.into(), vec![Grant::pull(&format!("{DEV}/*"))]),
                (BUILDER_TOKEN.into(), vec![Grant::push(&format!("{DEV}/*"))]),
            ],
            tls: true,
            ..Default::default()
        });
        let prod_tokens = TokenServer::start(TokenServerOptions {
            // Production Jenkins' service account: system:image-builder on its project.
            tokens: vec![(PROD_TOKEN.into(), vec![Grant::push(&format!("{PROD}/*"))])],
            tls: true,
            ..Default::default()
        });
        let nonprod = Registry::start(RegistryOptions {
            tls: Tls::Ca,
            auth: Auth::Token(nonprod_tokens.config()),
            ..Default::default()
        });
        let prod = Registry::start(RegistryOptions {
            tls: Tls::Ca,
            auth: Auth::Token(prod_tokens.config()),
            ..Default::default()
        });
        let hook = WebhookServer::start(WebhookOptions {
            buildconfigs: vec![BuildConfig::production_pipeline(PROD, WEBHOOK_SECRET)],
            require_token: None,
            tls: true,
        });
        let ca = &pki::lab_ca().ca_pem;
        let pod = Pod::new(NONPROD_TOKEN, Some(ca), PROD_TOKEN, ca, PROD);
        narrate(
            "Production pins what a promotion may touch: promotion.yaml, a ConfigMap of the agent pod",
        );
        if std::env::var_os("FERRY_E2E_NARRATE").is_some() {
            eprintln!(
                "{}",
                promotion_yaml(&[&nonprod.host()], &[&prod.host()], &[DEV], &[PROD])
            );
        }
        Flow {
            nonprod,
            prod,
            nonprod_tokens,
            hook,
            pod,
            nonprod_agent: Sandbox::new(),
            prod_agent: Sandbox::new(),
            _prod_tokens: prod_tokens,
        }
    }

    /// The non-production pipeline's "Trigger production" stage (Jenkinsfile.nonprod), its
    /// values through the environment as there.
    fn trigger(&self) -> Output {
        let out = self
            .nonprod_agent
            .ferry()
            .arg("trigger")
            .args(["--api-url", &self.hook.api_url()])
            .args(["--namespace", PROD, "--buildconfig", "production-pipeline"])
            .arg("--cert-dir")
            .arg(self.hook.cert_dir().unwrap())
            .args(["--env", "IMAGE_NAME=app"])
            .args(["--env", &format!("NON_PROD_PROJECT_NAME={DEV}")])
            .args(["--env", &format!("GIT_COMMIT={COMMIT}")])
            .env("FERRY_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .run();
        show(&out);
        assert_no_secrets(&out);
        out
    }

    /// The production pipeline's stage (Jenkinsfile.prod): `ferry promote --record
    /// promotion.json` with the build's parameters and Jenkins' variables as environment, and
    /// the production side's promotion config (the ConfigMap, at its mount point in the pod).
    fn promote(&self, build: &StartedBuild, extra: &[&str]) -> (Output, Option<serde_json::Value>) {
        let record = self.prod_agent.path().join("promotion.json");
        let _ = std::fs::remove_file(&record);
        // The production installation's ConfigMap (templates/prod-pipeline.yaml) as the pod
        // mounts it: the promotion config and the trust policy (the image has none).
        let etc_ferry = self.ferry_config_dir();
        let config = etc_ferry.join("promotion.yaml");
        let mut t = self.prod_agent.ferry();
        t.args(["promote", "--record", "promotion.json"])
            .args(["--config", config.to_str().unwrap()])
            .args(extra);
        for (k, v) in build.stage_env().into_iter().chain(self.pod.env()) {
            t.env(k, v);
        }
        t.env("CONTAINERS_POLICY_JSON", etc_ferry.join("policy.json"));
        let out = t.run();
        show(&out);
        assert_no_secrets(&out);
        let rec = std::fs::read(&record).ok().map(|b| {
            let text = String::from_utf8(b).unwrap();
            for s in [NONPROD_TOKEN, PROD_TOKEN, WEBHOOK_SECRET] {
                assert!(!text.contains(s), "secret in the record: {text}");
            }
            serde_json::from_str(&text).unwrap()
        });
        (out, rec)
    }

    /// The production agent's `/etc/ferry`: the ConfigMap of templates/prod-pipeline.yaml
    /// (promotion.yaml, policy.json), processed with the lab's registries and projects.
    pub fn ferry_config_dir(&self) -> std::path::PathBuf {
        let dir = self.prod_agent.path().join("etc/ferry");
        let template = crate::templates::load("prod-pipeline.yaml");
        let nonprod = self.nonprod.host();
        let prod = self.prod.host();
        let p = crate::oc_process::process(
            &template,
            &[
                ("PROD_PROJECT_NAME", PROD),
                ("GIT_URI", "https://git.example.com/platform/ferry.git"),
                ("SOURCE_SECRET", "ferry-kit-git"),
                ("NON_PROD_REGISTRY", &nonprod),
                ("NON_PROD_PROJECT_NAME", DEV),
                ("PROD_REGISTRY", &prod),
            ],
        )
        .unwrap();
        let cm = p.objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in cm["data"].as_object().unwrap() {
            std::fs::write(dir.join(file), text.as_str().unwrap()).unwrap();
        }
        dir
    }

    /// Trigger, take the build the webhook started, run its stage.
    pub fn run(&self, extra: &[&str]) -> (StartedBuild, Output, Option<serde_json::Value>) {
        narrate(
            "Non-production pipeline: ferry trigger (generic webhook of the production pipeline)",
        );
        self.trigger().assert_success();
        let build = self.hook.builds().pop().expect("a build was started");
        narrate(&format!(
            "Production pipeline, build {}: ferry promote --record promotion.json",
            build.name
        ));
        let (out, rec) = self.promote(&build, extra);
        (build, out, rec)
    }

    pub fn prod_digest(&self) -> Option<String> {
        self.prod.manifest_digest(&format!("{PROD}/app"), COMMIT)
    }

    /// Requests to the production registry since `mark` that write anything.
    fn prod_writes(&self, mark: crate::support::Mark) -> Vec<String> {
        self.prod
            .requests_since(mark)
            .into_iter()
            .filter(|r| {
                matches!(
                    r.kind(),
                    RequestKind::UploadStart
                        | RequestKind::UploadChunk
                        | RequestKind::UploadFinish
                        | RequestKind::BlobMount
                        | RequestKind::ManifestPut
                        | RequestKind::ManifestDelete
                )
            })
            .map(|r| r.line)
            .collect()
    }
}

fn seed(flow: &Flow, fx: &Fixture) {
    fx.seed(&flow.nonprod, &format!("{DEV}/app:{COMMIT}"));
}

#[test]
fn e2e_trigger_then_promote_is_exact_idempotent_and_guarded() {
    let flow = Flow::start();
    narrate(&format!(
        "CI built the image in non-production and tagged it {DEV}/app:{COMMIT}"
    ));
    let image = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[40_000])
        .own_layers(&[8_000])
        .build();
    seed(&flow, &image);
    let nonprod_digest = flow
        .nonprod
        .manifest_digest(&format!("{DEV}/app"), COMMIT)
        .unwrap();
    assert_eq!(nonprod_digest, image.digest);

    // 1. First promotion: the whole index arrives, digest kept.
    let (build, out, rec) = flow.run(&[]);
    out.assert_success();
    assert_eq!(build.parameter("GIT_COMMIT"), Some(COMMIT));
    assert_eq!(flow.prod_digest().as_deref(), Some(nonprod_digest.as_str()));
    let dst = format!("{}/{PROD}/app:{COMMIT}", flow.prod.host());
    assert_eq!(
        out.stdout.lines().next().unwrap_or(""),
        out.stdout.trim(),
        "one summary line: {out}"
    );
    assert!(
        out.stdout.starts_with(&format!(
            "Promoted {}/{DEV}/app:{COMMIT} to {dst} as {nonprod_digest}",
            flow.nonprod.host()
        )),
        "{out}"
    );
    let rec = rec.expect("promotion.json written");
    if std::env::var_os("FERRY_E2E_NARRATE").is_some() {
        eprintln!(
            "$ cat promotion.json\n{}",
            serde_json::to_string_pretty(&rec).unwrap()
        );
    }
    assert_eq!(
        rec["source"],
        format!("docker://{}/{DEV}/app:{COMMIT}", flow.nonprod.host())
    );
    assert_eq!(rec["destination"], format!("docker://{dst}"));
    assert_eq!(rec["source_digest"], nonprod_digest.as_str());
    assert_eq!(rec["destination_digest"], nonprod_digest.as_str());
    assert_eq!(rec["media_type"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(rec["already_present"], false);
    assert_eq!(rec["ferry_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        rec["job_name"],
        format!("{PROD}/{PROD}-production-pipeline")
    );
    assert_eq!(rec["build_number"], "1");
    assert!(rec["build_url"].as_str().unwrap().ends_with("/1/"));
    let total: u64 = image.blobs().iter().map(|(_, s)| s).sum();
    assert_eq!(rec["bytes"]["total"], total);
    assert_eq!(rec["bytes"]["copied"], total);
    assert_eq!(rec["signatures_copied"], 0);
    assert!(rec["duration_ms"].is_u64());
    let time = rec["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && humantime::parse_rfc3339(time).is_ok(),
        "{time}"
    );
    // The non-production side was only ever asked for pull, with its own token.
    let np = flow.nonprod_tokens.requests();
    assert!(!np.is_empty());
    for r in &np {
        assert_eq!(r.token.as_deref(), Some(NONPROD_TOKEN));
        assert!(
            r.granted
                .iter()
                .all(|(_, a)| a == &vec!["pull".to_string()]),
            "{r:?}"
        );
    }

    // 2. The same promotion again: nothing is written.
    narrate("Run it again: the production tag already has this digest");
    let mark = flow.prod.mark();
    let (_, out, rec) = flow.run(&[]);
    out.assert_success();
    assert!(out.stdout.starts_with("Already promoted"), "{out}");
    assert_eq!(rec.unwrap()["already_present"], true);
    assert_eq!(flow.prod_writes(mark), Vec::<String>::new());

    // 3. A different image under the same commit tag: refused, production untouched.
    narrate("Non-production re-tags the commit with a different image: production refuses");
    let other = ImageSpec::oci().layers(&[5_000]).seed(99).build();
    assert_ne!(other.digest, image.digest);
    seed(&flow, &other);
    let mark = flow.prod.mark();
    let (_, out, rec) = flow.run(&[]);
    out.assert_failure_with(&["--allow-overwrite"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&image.digest) && out.stderr.contains(&other.digest),
        "{out}"
    );
    assert!(rec.is_none(), "no record for a refused promotion");
    assert_eq!(flow.prod_digest().as_deref(), Some(image.digest.as_str()));
    assert_eq!(flow.prod_writes(mark), Vec::<String>::new());

    // 4. Told to: the tag moves, and the record says what it replaced.
    narrate("With --allow-overwrite the production tag moves, and the record says from what");
    let (_, out, rec) = flow.run(&["--allow-overwrite"]);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!("replacing {}", image.digest)),
        "{out}"
    );
    assert_eq!(flow.prod_digest().as_deref(), Some(other.digest.as_str()));
    let rec = rec.unwrap();
    assert_eq!(rec["destination_digest"], other.digest.as_str());
    assert_eq!(rec["replaced_digest"], image.digest.as_str());
    assert_eq!(rec["build_number"], "4");
}

/// A stand-in for the `oc` commands of Jenkinsfile.nonprod's build step, against the lab's
/// non-production registry (OpenShift's ImageStreams are repositories of its internal registry):
/// `start-build` plays a build that pushes `OC_STANDIN_BUILD_OUTPUT` as `NAME:latest` and
/// records its `status.output.to.imageDigest`, then another build (or an image-change trigger)
/// moves `NAME:latest` to `OC_STANDIN_CONCURRENT` before the pipeline's next step; `get` answers
/// the build's digest; `tag SRC@DIGEST DST:TAG` writes that manifest under the tag, as
/// OpenShift's ImageStreamTag does. Registry writes go through ferry with the builder's token.
const OC_STANDIN: &str = r#"#!/bin/sh
set -eu
echo "oc $*" >> "$OC_STANDIN_STATE/calls"
copy() {
  "$OC_STANDIN_FERRY" copy -q --src-cert-dir "$OC_STANDIN_CERT_DIR" --dest-cert-dir "$OC_STANDIN_CERT_DIR" \
    ${3:+--digestfile "$3"} "$1" "$2" >&2
}
reg="docker://$OC_STANDIN_REGISTRY"
case "$1" in
  start-build)
    name="$2"; ns=""; out=""
    shift 2
    while [ $# -gt 0 ]; do
      case "$1" in
        -n) ns="$2"; shift 2 ;;
        --commit=*|--wait) shift ;;
        -o) out="$2"; shift 2 ;;
        *) echo "oc stand-in: start-build: unexpected $1" >&2; exit 1 ;;
      esac
    done
    [ "$out" = name ] || { echo "oc stand-in: start-build without -o name" >&2; exit 1; }
    n=$(( $(ls "$OC_STANDIN_STATE" | grep -c '^build-' || true) + 1 ))
    copy "$OC_STANDIN_BUILD_OUTPUT" "$reg/$ns/$name:latest" "$OC_STANDIN_STATE/build-$name-$n"
    # Meanwhile another build moves latest.
    copy "$OC_STANDIN_CONCURRENT" "$reg/$ns/$name:latest"
    echo "build.build.openshift.io/$name-$n" ;;
  logs) echo "(log of $2)" ;;
  get)
    build="${2#build.build.openshift.io/}"
    [ "$5 $6" = "-o jsonpath={.status.output.to.imageDigest}" ] || { echo "oc stand-in: get: $*" >&2; exit 1; }
    cat "$OC_STANDIN_STATE/build-$build" ;;
  tag)
    src="$2"; dst="$3"
    copy "$reg/$src" "$reg/$dst"
    echo "Tag $dst set to $src." ;;
  *) echo "oc stand-in: unsupported: oc $*" >&2; exit 1 ;;
esac
"#;

#[test]
fn e2e_the_commit_tag_names_the_image_the_build_produced_even_when_latest_moves() {
    let flow = Flow::start();
    let built = ImageSpec::oci().layers(&[30_000]).seed(7).build();
    let other = ImageSpec::oci().layers(&[20_000]).seed(8).build();
    assert_ne!(built.digest, other.digest);
    // What the build pushes, and what another build pushes right after it.
    built.seed(&flow.nonprod, &format!("{DEV}/staging:built"));
    other.seed(&flow.nonprod, &format!("{DEV}/staging:other"));

    // Jenkinsfile.nonprod's build step, as Jenkins runs it (`sh -xe`), with `oc` stood in.
    let jenkinsfile = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Jenkinsfile.nonprod"),
    )
    .unwrap();
    let script = crate::kit::jenkinsfile_sh_scripts(&jenkinsfile)
        .into_iter()
        .find(|s| s.contains("oc start-build"))
        .expect("the build step");
    let agent = Sandbox::new();
    let state = agent.path().join("oc-state");
    std::fs::create_dir_all(&state).unwrap();
    let oc = agent.path().join("bin/oc");
    std::fs::write(&oc, OC_STANDIN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&oc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = flow.nonprod.host();
    let out = std::process::Command::new("sh")
        .args(["-xe", "-c", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                agent.path().join("bin").display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("IMAGE_NAME", "app")
        .env("NON_PROD_PROJECT_NAME", DEV)
        .env("GIT_COMMIT", COMMIT)
        .env("OC_STANDIN_STATE", &state)
        .env("OC_STANDIN_FERRY", env!("CARGO_BIN_EXE_ferry"))
        .env("OC_STANDIN_REGISTRY", &host)
        .env("OC_STANDIN_CERT_DIR", flow.nonprod.cert_dir().unwrap())
        .env(
            "OC_STANDIN_BUILD_OUTPUT",
            format!("docker://{host}/{DEV}/staging:built"),
        )
        .env(
            "OC_STANDIN_CONCURRENT",
            format!("docker://{host}/{DEV}/staging:other"),
        )
        .env("FERRY_SRC_CREDS", format!("serviceaccount:{BUILDER_TOKEN}"))
        .env(
            "FERRY_DEST_CREDS",
            format!("serviceaccount:{BUILDER_TOKEN}"),
        )
        .env("HOME", agent.home())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the build step failed:\n{stderr}");
    let calls = std::fs::read_to_string(state.join("calls")).unwrap();
    assert!(
        calls.contains(&format!(
            "oc tag {DEV}/app@{} {DEV}/app:{COMMIT}",
            built.digest
        )),
        "{calls}"
    );

    // latest moved on; the commit's tag names what the build produced.
    let nonprod_digest = |tag: &str| flow.nonprod.manifest_digest(&format!("{DEV}/app"), tag);
    assert_eq!(
        nonprod_digest("latest").as_deref(),
        Some(other.digest.as_str())
    );
    assert_eq!(
        nonprod_digest(COMMIT).as_deref(),
        Some(built.digest.as_str())
    );

    // And that is what production gets.
    let (_, out, _) = flow.run(&[]);
    out.assert_success();
    assert_eq!(flow.prod_digest().as_deref(), Some(built.digest.as_str()));
}
