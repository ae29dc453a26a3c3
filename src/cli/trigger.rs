//! `trigger`: start the production pipeline through its generic webhook (`Jenkinsfile.nonprod`),
//! or through a Tekton Triggers EventListener (`--event-listener`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::options::go_bool;
use crate::credentials::read_secret_file;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::redact::Secret;
use crate::tls::TlsOptions;
use crate::webhook::{Call, EnvVar, Target};

/// Build parameters of the production pipeline that its promotion config pins: `trigger`
/// drops them (with a warning) instead of sending them.
pub(super) const PINNED_BY_PRODUCTION: [&str; 3] =
    ["NON_PROD_REGISTRY", "PROD_REGISTRY", "PROD_PROJECT_NAME"];

/// The environment variable holding the webhook secret when `--secret-file` is absent.
pub(super) const SECRET_ENV: &str = "FERRY_WEBHOOK_SECRET";

pub(super) const LONG_ABOUT: &str =
    "Start a BuildConfig's build through OpenShift's generic webhook.

POSTs {\"env\":[{\"name\":…,\"value\":…},…]} (Content-Type: application/json) to \
<api>/apis/build.openshift.io/v1/namespaces/<ns>/buildconfigs/<name>/webhooks/<secret>/generic \
(--legacy-oapi: OpenShift 3.11's /oapi/v1/… path) and prints the name of the build it started.

The secret comes from --secret-file or the environment variable FERRY_WEBHOOK_SECRET, never from \
the command line, and is redacted from every message (it is part of the URL).

It fails (exit 1) unless OpenShift confirmed a build started with the parameters: a wrong \
secret, a payload OpenShift ignored (it then still starts the build, without parameters: ferry \
names the build to cancel), a trigger without `allowEnv: true` (the parameters are missing from \
the build), or an answer that names no started build (empty, HTML, oversized, unreadable: \
the build could not be confirmed). Every --env name must also be declared in the BuildConfig's \
jenkinsPipelineStrategy.env to reach Jenkins as a build parameter. The call is never retried: \
a retry could start a second build.

For the promotion, the webhook carries only IMAGE_NAME, GIT_COMMIT and NON_PROD_PROJECT_NAME: \
the production side pins its registries and project in its promotion config, so --env \
NON_PROD_REGISTRY, PROD_REGISTRY and PROD_PROJECT_NAME are not sent (a warning says so).

OpenShift 4.16+ clusters refuse anonymous webhook calls unless a RoleBinding grants \
system:webhook to system:unauthenticated in the namespace; otherwise pass --token-file.

ferry: --event-listener URL calls a Tekton Triggers EventListener (OpenShift Pipelines) instead: \
it POSTs the --env pairs as one JSON object ({\"IMAGE_NAME\":\"app\",…}) with the header \
X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body, keyed with the secret>, which the \
EventListener's GitHub interceptor checks. The EventListener answers 202 with the event's ID \
before its interceptors run: ferry prints the ID (the PipelineRun started for it carries the \
label triggers.tekton.dev/triggers-eventid=ID); a wrong secret shows only in the \
EventListener's log. --api-url, --namespace, --buildconfig, --token-file and --legacy-oapi do \
not apply.";

/// Arguments of `trigger`.
#[derive(Debug, Args)]
pub(super) struct TriggerArgs {
    /// ferry: call this Tekton Triggers EventListener (its Route's URL) instead of a BuildConfig webhook.
    #[arg(long, value_name = "URL", conflicts_with_all = ["api_url", "namespace", "buildconfig", "token_file", "legacy_oapi"])]
    event_listener: Option<String>,
    /// The OpenShift API server, e.g. https://api.prod.example.com:6443.
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Namespace (project) of the BuildConfig.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// The BuildConfig whose generic webhook to call.
    #[arg(long, value_name = "NAME")]
    buildconfig: Option<String>,
    /// File holding the webhook secret, or the EventListener's signing secret (default: the
    /// FERRY_WEBHOOK_SECRET environment variable).
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// A build parameter, NAME=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    env: Vec<EnvVar>,
    /// File holding a bearer token, for clusters that refuse anonymous webhook calls (4.16+).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// CA certificates (*.crt) of the API server (or of the EventListener's Route).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Verify the API server's certificate (false also allows an http:// URL).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// Use OpenShift 3.11's /oapi/v1/… webhook path.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    legacy_oapi: Option<bool>,
    /// Time allowed for the call (Go duration).
    #[arg(long, value_name = "DURATION", value_parser = crate::retry::parse_go_duration, default_value = "60s")]
    timeout: Duration,
    /// Refused: a secret on the command line shows in process lists and build logs.
    #[arg(long, hide = true, num_args = 0..=1, value_name = "SECRET")]
    secret: Option<Option<String>>,
}

pub(super) async fn run(args: TriggerArgs, environment: &Environment) -> Result<()> {
    if args.secret.is_some() {
        return Err(Error::usage(format!(
            "trigger: the webhook secret is never taken from the command line (it would show in process lists and logs): use --secret-file PATH or the environment variable {SECRET_ENV}"
        )));
    }
    let mut missing = Vec::new();
    if args.event_listener.is_none() {
        if args.api_url.as_deref().is_none_or(str::is_empty) {
            missing.push("--api-url".to_string());
        }
        if args.namespace.as_deref().is_none_or(str::is_empty) {
            missing.push("--namespace".to_string());
        }
        if args.buildconfig.as_deref().is_none_or(str::is_empty) {
            missing.push("--buildconfig".to_string());
        }
    }
    let secret = match &args.secret_file {
        Some(f) => Some(read_secret_file(f, "webhook secret file")?),
        None => std::env::var(SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    };
    if secret.is_none() {
        missing.push(format!(
            "the webhook secret (--secret-file or {SECRET_ENV})"
        ));
    }
    let (Some(secret), true) = (secret, missing.is_empty()) else {
        return Err(Error::usage(format!(
            "trigger: missing inputs: {}",
            missing.join(", ")
        )));
    };
    let env = unpinned(&args.env);
    if let Some(url) = &args.event_listener {
        return event_listener(url, &args, &secret, &env, environment).await;
    }
    let token = args
        .token_file
        .as_ref()
        .map(|f| read_secret_file(f, "token file"))
        .transpose()?;
    let tls = TlsOptions::new(args.tls_verify, args.cert_dir.clone(), environment);
    let target = Target::new(
        args.api_url.as_deref().unwrap_or_default(),
        args.namespace.as_deref().unwrap_or_default(),
        args.buildconfig.as_deref().unwrap_or_default(),
        args.legacy_oapi.unwrap_or(false),
        !tls.verify(),
    )?;
    let done = crate::webhook::trigger(Call {
        target: &target,
        secret: &secret,
        env: &env,
        token: token.as_ref(),
        tls: &tls,
        timeout: args.timeout,
    })
    .await?;
    for n in &done.notes {
        log::info!("note: OpenShift said: {n} (expected: the payload carries only parameters)");
    }
    let b = &done.build;
    println!(
        "Started build {}/{} (generic webhook of buildconfig {})",
        b.namespace.as_deref().unwrap_or(&target.namespace),
        b.name,
        target.name()
    );
    Ok(())
}

/// The `--env` pairs that are sent: the production side pins the registries and its project
/// (its promotion config), so those are no longer the caller's to choose, and are dropped with
/// a warning.
fn unpinned(env: &[EnvVar]) -> Vec<EnvVar> {
    env.iter()
        .filter(|e| {
            let pinned = PINNED_BY_PRODUCTION.contains(&e.name.as_str());
            if pinned {
                log::warn!(
                    "--env {} is not sent: the production side pins the registries and its project in its promotion config (docs/promote.md); the webhook passes only the image name, the tag and the non-production project",
                    e.name
                );
            }
            !pinned
        })
        .cloned()
        .collect()
}

/// `--event-listener URL`: one signed event to a Tekton Triggers EventListener.
async fn event_listener(
    url: &str,
    args: &TriggerArgs,
    secret: &Secret,
    env: &[EnvVar],
    environment: &Environment,
) -> Result<()> {
    let tls = TlsOptions::new(args.tls_verify, args.cert_dir.clone(), environment);
    let url = crate::eventlistener::check_url(url, !tls.verify())?;
    let accepted = crate::eventlistener::send(crate::eventlistener::Call {
        url: &url,
        secret,
        env,
        tls: &tls,
        timeout: args.timeout,
    })
    .await?;
    let name = match &accepted.namespace {
        Some(ns) => format!("{ns}/{}", accepted.event_listener),
        None => accepted.event_listener.clone(),
    };
    log::info!(
        "The EventListener checks the signature after answering: a refused event shows only in its log (oc logs -l eventlistener={})",
        accepted.event_listener
    );
    println!(
        "Accepted by EventListener {name} as event {id} (its PipelineRun: oc get pipelineruns -l {label}={id})",
        id = accepted.event_id,
        label = crate::eventlistener::EVENT_ID_LABEL
    );
    Ok(())
}
