//! The kit's install guide, Jenkinsfiles and agent image build, as a security review reads
//! them: secrets off command lines and out of Groovy strings, no build parameters that could
//! override the BuildConfig's, the non-production pipeline sending only the image, an image
//! build with no floating reference (see `kit.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use regex::Regex;
use serde_json::json;

use crate::kit::*;
use crate::templates::{
    SECRET_PARAMETERS, WEBHOOK_SECRET, declared, doc_commands, env_names, load, object, process,
    read, template_files,
};

// ---------------------------------------------------------------------------------------------
// The install guide

#[test]
fn the_install_guide_keeps_secrets_off_command_lines_and_away_from_the_api() {
    let commands = doc_commands();
    assert!(!commands.is_empty());
    for c in &commands {
        assert!(
            c.local,
            "without --local the template goes to the API server: {}",
            c.line
        );
        for (name, _) in &c.params {
            assert!(
                !SECRET_PARAMETERS.contains(&name.as_str()),
                "{name} given with -p: {}",
                c.line
            );
        }
        for name in &c.from_param_file {
            assert!(SECRET_PARAMETERS.contains(&name.as_str()), "{}", c.line);
        }
    }
    // Every secret parameter of every template the guide applies comes from a file.
    for c in &commands {
        let t = load(&c.file);
        for p in declared(&t) {
            let name = p["name"].as_str().unwrap();
            if SECRET_PARAMETERS.contains(&name) {
                assert!(
                    c.from_param_file.iter().any(|n| n == name),
                    "{}: {name} not from --param-file",
                    c.file
                );
            }
        }
    }
    let guide = read("docs/openshift.md");
    assert!(!guide.contains("export WEBHOOK_SECRET") && !guide.contains("export NON_PROD_TOKEN"));
    // The usage comments at the top of each template say the same.
    for path in template_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let joined = text.replace("\\\n#", " ");
        for line in joined.lines().filter(|l| l.contains("oc process ")) {
            let line = line.trim_start_matches('#').trim();
            if !line.starts_with("oc process ") {
                continue;
            }
            assert!(line.contains("--local"), "{}: {line}", path.display());
            for secret in SECRET_PARAMETERS {
                assert!(
                    !line.contains(&format!("-p {secret}=")),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_install_guide_waits_for_the_token_controller() {
    let guide = read("docs/openshift.md");
    // Token Secrets are read by read_token only, which retries until `token` is filled in.
    let function = Regex::new(r"(?s)read_token\(\) \{.*?\n\}").unwrap();
    let body = function
        .find(&guide)
        .expect("read_token() in the guide")
        .as_str();
    assert!(
        body.contains("[ -s \"$3\" ] && return 0") && body.contains("sleep"),
        "{body}"
    );
    let rest = guide.replace(body, "");
    assert!(
        !rest.contains("{.data.token}"),
        "a token read outside read_token (before the token controller filled it in)"
    );
    // Each token Secret a template creates is read after the command that applies it.
    for (file, secret) in [
        (
            "nonprod-image-puller.yaml",
            "across-project-image-puller-token",
        ),
        (
            "prod-webhook-caller.yaml",
            "production-pipeline-webhook-caller-token",
        ),
    ] {
        let p = process(file, &[]);
        let s = find_by_kind(&p, "Secret")
            .into_iter()
            .find(|s| s["type"] == "kubernetes.io/service-account-token")
            .unwrap();
        assert_eq!(s["metadata"]["name"], secret);
        let applied = rest.find(&format!("templates/{file}")).unwrap();
        let read_at = rest.find(&format!("read_token {secret} ")).unwrap();
        assert!(applied < read_at, "{secret} read before it is created");
    }
}

#[test]
fn every_build_config_that_clones_the_kit_has_a_source_secret() {
    for file in ["agent.yaml", "prod-pipeline.yaml"] {
        let p = process(file, &[]);
        let bc = object(&p, "BuildConfig");
        assert_eq!(
            bc["spec"]["source"]["sourceSecret"]["name"], "ferry-kit-git",
            "{file}"
        );
        let t = load(file);
        let param = declared(&t)
            .into_iter()
            .find(|p| p["name"] == "SOURCE_SECRET")
            .unwrap();
        assert_eq!(param["required"], true);
    }
}

// ---------------------------------------------------------------------------------------------
// The Jenkinsfiles

#[test]
fn the_jenkinsfiles_declare_no_parameters_so_the_build_config_defaults_stand() {
    let parameters_block = Regex::new(r"(?m)^\s*parameters\s*\{").unwrap();
    let param = Regex::new(r"params\.(\w+)").unwrap();
    let var = Regex::new(r"\$\{?([A-Z][A-Z0-9_]*)").unwrap();
    let env_ref = Regex::new(r"env\.([A-Z][A-Z0-9_]*)").unwrap();
    for (jenkinsfile, template) in [
        ("Jenkinsfile.nonprod", "nonprod-pipeline.yaml"),
        ("Jenkinsfile.prod", "prod-pipeline.yaml"),
        ("Jenkinsfile.mirror", "mirror-pipeline.yaml"),
    ] {
        let text = read(jenkinsfile);
        // The sync plugin makes the BuildConfig's env the job's parameters, defaults
        // included; a `parameters` block would replace them with its own at the first run.
        assert!(
            !parameters_block.is_match(&text),
            "{jenkinsfile} declares parameters"
        );
        let p = process(template, &[]);
        let env: BTreeSet<String> = env_names(object(&p, "BuildConfig")).into_iter().collect();
        // Every parameter the Jenkinsfile reads is one the BuildConfig declares: `params.X`,
        // and every upper-case variable of its shell steps but the ones Jenkins sets itself.
        let mut used: BTreeSet<String> = param
            .captures_iter(&text)
            .map(|c| c[1].to_string())
            .collect();
        for script in jenkinsfile_sh_scripts(&text) {
            used.extend(var.captures_iter(&script).map(|c| c[1].to_string()));
        }
        used.remove("FERRY_WEBHOOK_SECRET"); // withCredentials
        if jenkinsfile == "Jenkinsfile.nonprod" {
            used.remove("GIT_COMMIT"); // the checkout of the application's repository
        }
        if jenkinsfile == "Jenkinsfile.mirror" {
            // Set by the Jenkinsfile itself for each branch (withEnv), and by withCredentials.
            for own in ["FERRY_SHARD", "FERRY_REPORT", "REGISTRY_AUTH_FILE"] {
                used.remove(own);
            }
            // env.X of the Groovy code is a parameter too.
            used.extend(env_ref.captures_iter(&text).map(|c| c[1].to_string()));
        }
        let missing: Vec<&String> = used.difference(&env).collect();
        assert!(
            missing.is_empty(),
            "{jenkinsfile} reads undeclared {missing:?}"
        );
    }
}

#[test]
fn the_nonprod_pipeline_sends_only_the_image_to_ferry_trigger() {
    let jenkinsfile = read("Jenkinsfile.nonprod");
    let scripts = jenkinsfile_sh_scripts(&jenkinsfile);
    let trigger = scripts
        .iter()
        .find(|s| s.contains("ferry trigger"))
        .expect("a ferry trigger step");
    let sent: Vec<String> = Regex::new(r#"--env (\w+)="\$(\w+)""#)
        .unwrap()
        .captures_iter(trigger)
        .map(|c| {
            assert_eq!(c[1], c[2]);
            c[1].to_string()
        })
        .collect();
    assert_eq!(sorted(sent), sorted(strings(&WEBHOOK_PARAMETERS)));
    assert!(jenkinsfile.contains("variable: 'FERRY_WEBHOOK_SECRET'"));
    assert!(
        !jenkinsfile.contains("--secret"),
        "the webhook secret must not be a flag value"
    );
    assert!(
        !jenkinsfile.contains("$FERRY_WEBHOOK_SECRET"),
        "the webhook secret must stay in the environment, never expanded into a command line"
    );
    // The webhook secret both sides share.
    let nonprod = process("nonprod-webhook-secret.yaml", &[]);
    let jenkins = object(&nonprod, "Secret");
    let credential_id = &jenkins["metadata"]["annotations"]["jenkins.openshift.io/secret.name"];
    let pipeline = process("nonprod-pipeline.yaml", &[]);
    let env =
        &object(&pipeline, "BuildConfig")["spec"]["strategy"]["jenkinsPipelineStrategy"]["env"];
    let id = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "WEBHOOK_CREDENTIAL_ID")
        .unwrap();
    assert_eq!(&id["value"], credential_id);
}

#[test]
fn the_nonprod_pipeline_tags_the_digest_its_build_produced() {
    let scripts = jenkinsfile_sh_scripts(&read("Jenkinsfile.nonprod"));
    let build = scripts
        .iter()
        .find(|s| s.contains("oc start-build"))
        .expect("a build step");
    assert!(build.contains("{.status.output.to.imageDigest}"), "{build}");
    assert!(
        build.contains(r#"oc tag "$NON_PROD_PROJECT_NAME/$IMAGE_NAME@$digest""#),
        "{build}"
    );
    assert!(
        !build.contains(":latest"),
        "tags whatever latest names: {build}"
    );
    // (tests/it/e2e.rs runs this step against a registry where `latest` moves meanwhile.)
}

#[test]
fn the_webhook_secret_is_one_parameter_shared_by_both_clusters() {
    for file in ["nonprod-webhook-secret.yaml", "prod-webhook-secret.yaml"] {
        let t = load(file);
        let p = declared(&t)
            .into_iter()
            .find(|p| p["name"] == "WEBHOOK_SECRET")
            .expect(file);
        assert_eq!(p["required"], true, "{file}");
        assert!(
            p.get("generate").is_none() && p.get("value").is_none(),
            "{file}: {p}"
        );
    }
    let nonprod = process("nonprod-webhook-secret.yaml", &[]);
    let jenkins = object(&nonprod, "Secret");
    assert_eq!(jenkins["stringData"]["secrettext"], WEBHOOK_SECRET);
    assert_eq!(
        jenkins["metadata"]["labels"]["credential.sync.jenkins.openshift.io"],
        "true"
    );
    let prod = process("prod-webhook-secret.yaml", &[]);
    let webhook = object(&prod, "Secret");
    assert_eq!(webhook["stringData"]["WebHookSecretKey"], WEBHOOK_SECRET);
    assert_eq!(webhook["stringData"].as_object().unwrap().len(), 1);
    let pipeline = process("prod-pipeline.yaml", &[]);
    let trigger = &object(&pipeline, "BuildConfig")["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "Generic");
    assert_eq!(
        trigger["generic"]["secretReference"]["name"],
        webhook["metadata"]["name"]
    );
}

#[test]
fn the_jenkinsfiles_keep_secrets_out_of_groovy_strings() {
    let double_quoted_sh = Regex::new(r#"\bsh\s*\(?\s*""#).unwrap();
    let interpolation = Regex::new(r#""[^"\n]*\$\{[^"\n]*""#).unwrap();
    // The only Groovy strings with interpolation: the tag parameter, and the mirror's shard
    // numbers and file names (no secret is ever in a Groovy variable).
    let allowed = [
        "\"${params.GIT_COMMIT}\"",
        "\"${i}/${shards}\"",
        "\"mirror-report-${i}-of-${shards}.json\"",
        "\"shard ${shard}\"",
        "\"FERRY_SHARD=${shard}\"",
        "\"FERRY_REPORT=${report}\"",
    ];
    for file in [
        "Jenkinsfile.nonprod",
        "Jenkinsfile.prod",
        "Jenkinsfile.mirror",
    ] {
        let text = read(file);
        assert!(
            !double_quoted_sh.is_match(&text),
            "{file}: double-quoted sh step"
        );
        for gstring in interpolation.find_iter(&text) {
            assert!(
                allowed.contains(&gstring.as_str()),
                "{file}: Groovy interpolation {}",
                gstring.as_str()
            );
        }
        assert!(!text.contains("set -x"), "{file}: set -x would echo values");
    }
}

#[test]
fn the_nonprod_image_puller_has_a_long_lived_token_secret() {
    let p = process("nonprod-image-puller.yaml", &[]);
    let sa = object(&p, "ServiceAccount");
    let name = sa["metadata"]["name"].as_str().unwrap();
    let rb = object(&p, "RoleBinding");
    assert_eq!(rb["roleRef"]["name"], "system:image-puller");
    assert_eq!(rb["subjects"][0]["name"], name);
    assert_eq!(rb["subjects"][0]["namespace"], "shop-dev");
    let secret = object(&p, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        name
    );
    // The ServiceAccount comes first: the token controller deletes a token Secret whose
    // ServiceAccount does not exist.
    let kinds: Vec<&str> = p
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ServiceAccount", "RoleBinding", "Secret"]);
}

// ---------------------------------------------------------------------------------------------
// The image build: no floating reference, the image's own labels

#[test]
fn the_agent_image_build_pins_its_inputs_and_follows_its_base() {
    let dockerfile = read("agent/Dockerfile");
    let args = dockerfile_args(&dockerfile);
    let p = process("agent.yaml", &[]);
    let bc = object(&p, "BuildConfig");
    let strategy = &bc["spec"]["strategy"]["dockerStrategy"];
    assert_eq!(strategy["dockerfilePath"], "agent/Dockerfile");
    assert!(
        bc["spec"]["source"].get("contextDir").is_none(),
        "the Dockerfile needs the repository root"
    );

    // The Rust image by digest, the same in the Dockerfile and the template.
    let digest = Regex::new(r"@sha256:[0-9a-f]{64}$").unwrap();
    assert!(
        digest.is_match(&args["RUST_IMAGE"]),
        "{}",
        args["RUST_IMAGE"]
    );
    let build_args: BTreeMap<String, String> = strategy["buildArgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(build_args["RUST_IMAGE"], args["RUST_IMAGE"]);
    assert_eq!(build_args["SOURCE_URL"], p.values["GIT_URI"]);
    for name in build_args.keys() {
        assert!(
            args.contains_key(name),
            "build argument {name} is no ARG of the Dockerfile"
        );
    }
    // The runtime base: a tagged version, never latest, in the Dockerfile; in OpenShift the
    // Samples operator's ImageStreamTag, whose changes rebuild the image.
    let base = &args["BASE_IMAGE"];
    assert!(
        Regex::new(r":v?\d+\.\d+(\.\d+)?$").unwrap().is_match(base),
        "BASE_IMAGE {base} is not a tagged version"
    );
    assert_eq!(
        strategy["from"],
        json!({"kind": "ImageStreamTag", "namespace": "openshift", "name": "jenkins-agent-base:latest"})
    );
    let triggers = bc["spec"]["triggers"].as_array().unwrap();
    assert!(
        triggers
            .iter()
            .any(|t| t["type"] == "ImageChange" && t["imageChange"] == json!({}))
    );
    // The version label is Cargo.toml's.
    assert_eq!(args["FERRY_VERSION"], env!("CARGO_PKG_VERSION"));
    // The prebuilt path and the in-image build, offline when vendored crates are there.
    assert_eq!(args["FERRY_FROM"], "build");
    assert!(dockerfile.contains("cargo build --release --locked --offline"));
    assert!(dockerfile.contains("FROM ${FERRY_FROM} AS ferry"));
    let ignore = read(".dockerignore");
    for allowed in ["!vendor/", "!.cargo/", "!src/", "!agent/", "!Cargo.lock"] {
        assert!(
            ignore.lines().any(|l| l == allowed),
            ".dockerignore lacks {allowed}"
        );
    }
    // No trust policy written into the image.
    assert!(!dockerfile.contains("insecureAcceptAnything"));
    assert!(!dockerfile.contains("> /etc/containers/policy.json"));
}

#[test]
fn ferry_promote_defaults_match_the_pod_template() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["promote", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for path in [
        FERRY_SRC_TOKEN_FILE,
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ] {
        assert!(
            help.contains(path),
            "`ferry promote --help` does not show the default {path}"
        );
    }
}
