//! No secret ever shows: every ferry command runs with `--debug` (and `RUST_LOG=trace`) with
//! distinctive secrets passed by every way it takes them — flag, file, environment, auth file
//! — through success and failures (refused credentials, missing image or BuildConfig, a server
//! error after the secrets were used), and neither stdout, stderr nor any file ferry writes
//! (`--report`, the promotion `--record`) holds a secret, its base64 form, the base64 of
//! `user:secret`, or any JWT.
//!
//! Adding a command: one line in [`COMMANDS`].

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::webhook::{BuildConfig, WebhookOptions, WebhookServer};
use crate::support::*;

const SRC_USER: &str = "srcuser";
const SRC_PASSWORD: &str = "SrcPw-7Kq2xZ9vLm";
const WRONG_PASSWORD: &str = "WrongPw-3Jd8rT1nQa";
const SA_USER: &str = "pusher";
const SA_TOKEN: &str = "sa-token-Vb5Nc0Xw4Ey";
const NONPROD_TOKEN: &str = "nonprod-token-Hu6Rt2Pz8Ks";
const WRONG_TOKEN: &str = "wrong-token-Yx1Gf5Wq0Dm";
const WEBHOOK_SECRET: &str = "hook-secret-Lm3Zs9Cv7Nb";
const WRONG_WEBHOOK_SECRET: &str = "hook-wrong-Tq4Kp8Ja2Xe";
const API_TOKEN: &str = "api-token-Ew6Hn1Ur5Gc";

/// How the secrets reach ferry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `--src-creds`, `--dest-creds`.
    Flags,
    /// `--src-creds-file`, `--dest-registry-token` (a bearer token on the command line).
    TokenFlag,
    /// `--src-username` + `--src-password-file`, `--dest-registry-token-file`.
    Files,
    /// `FERRY_SRC_CREDS`, `FERRY_DEST_REGISTRY_TOKEN`.
    Env,
    /// `--authfile` with both registries.
    AuthFile,
}

const VIAS: [Via; 5] = [
    Via::Flags,
    Via::TokenFlag,
    Via::Files,
    Via::Env,
    Via::AuthFile,
];

/// What happens in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Works,
    /// The source refuses the password.
    Refused,
    /// The image does not exist.
    Missing,
    /// The destination fails with HTTP 500 after the credentials were used.
    ServerError,
}

const CASES: [Case; 4] = [Case::Works, Case::Refused, Case::Missing, Case::ServerError];

/// A command line: arguments, environment, files ferry may write that must be checked, and
/// the exit code the case must end with.
#[derive(Default)]
struct Invocation {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    outputs: Vec<PathBuf>,
    expect: i32,
}

/// Builds the invocation of one command for one way of passing secrets and one case; `None`
/// when the command takes no secret that way.
type CommandFn = fn(&Lab, Via, Case) -> Option<Invocation>;

/// Every ferry command that takes a secret (`manifest-digest` reads a local file only). Adding
/// a command is one line here.
const COMMANDS: &[(&str, CommandFn)] = &[
    ("copy", copy),
    ("sync", sync),
    ("inspect", inspect),
    ("list-tags", list_tags),
    ("delete", delete),
    ("login", login),
    ("logout", logout),
    ("promote", promote),
    ("trigger", trigger),
];

/// Source: Basic auth, reached through a proxy (and through one that fails everything).
/// Destination: token auth (the token server trades service-account tokens for JWTs), behind
/// a proxy that fails manifest writes to `prod/fail…` and `prodfail/…`; it also holds the
/// non-production image of `promote`. A webhook stand-in that wants a bearer token, behind a
/// proxy that fails calls for the `fail` namespace.
struct Lab {
    src: Registry,
    /// The source, through a proxy (so that auth files name one host for it).
    src_proxy: FaultProxy,
    /// The source behind a proxy that answers every request with HTTP 500.
    broken: FaultProxy,
    fx: Fixture,
    _dst: Registry,
    ts: TokenServer,
    proxy: FaultProxy,
    _hook: WebhookServer,
    hook_proxy: FaultProxy,
    /// A bearer token for the destination (a JWT minted for `prod/*`).
    jwt: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let ts = TokenServer::start(TokenServerOptions {
            tokens: vec![
                (SA_TOKEN.into(), vec![Grant::push("prod*")]),
                (NONPROD_TOKEN.into(), vec![Grant::pull("nonprod/*")]),
            ],
            ..Default::default()
        });
        let src = Registry::start(RegistryOptions {
            auth: Auth::Basic(vec![(SRC_USER.into(), SRC_PASSWORD.into())]),
            ..Default::default()
        });
        let dst = Registry::start(RegistryOptions {
            auth: Auth::Token(ts.config()),
            ..Default::default()
        });
        let fx = ImageSpec::oci().layers(&[2000]).build();
        fx.seed(&src, "ns/app:v1");
        fx.seed(&dst, "nonprod/app:c0ffee");
        fx.seed(&src, "ns/del:v1");
        let src_proxy = FaultProxy::start(&src);
        let broken = FaultProxy::start(&src);
        broken.add(Rule::new("*", ".*", Fault::status(500)));
        let proxy = FaultProxy::start(&dst);
        proxy.add(Rule::new(
            "PUT",
            "^/v2/prod/?fail/.*manifests/",
            Fault::status(500),
        ));
        let hook = WebhookServer::start(WebhookOptions {
            buildconfigs: vec![BuildConfig::production_pipeline("prod", WEBHOOK_SECRET)],
            require_token: Some(API_TOKEN.into()),
            tls: false,
        });
        let hook_proxy = FaultProxy::forward_to(&hook.api_url());
        hook_proxy.add(Rule::new("POST", "/namespaces/fail/", Fault::status(500)));
        let jwt = ts.config().mint(
            SA_USER,
            &[
                ("prod/app".into(), vec!["pull".into(), "push".into()]),
                ("prod/fail".into(), vec!["pull".into(), "push".into()]),
                ("prod/fail/app".into(), vec!["pull".into(), "push".into()]),
            ],
            Duration::from_secs(3600),
        );
        let dir = tempfile::Builder::new()
            .prefix("ferry-secrets-")
            .tempdir()
            .unwrap();
        Lab {
            src,
            src_proxy,
            broken,
            fx,
            _dst: dst,
            ts,
            proxy,
            _hook: hook,
            hook_proxy,
            jwt,
            dir,
        }
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    fn password(case: Case) -> &'static str {
        if case == Case::Refused {
            WRONG_PASSWORD
        } else {
            SRC_PASSWORD
        }
    }

    /// Every secret that must never show, with the base64 forms that carry them.
    fn secrets(&self) -> Vec<String> {
        let mut s = vec![
            SRC_PASSWORD.to_string(),
            WRONG_PASSWORD.to_string(),
            SA_TOKEN.to_string(),
            NONPROD_TOKEN.to_string(),
            WRONG_TOKEN.to_string(),
            WEBHOOK_SECRET.to_string(),
            WRONG_WEBHOOK_SECRET.to_string(),
            API_TOKEN.to_string(),
            self.jwt.clone(),
        ];
        for pair in [
            format!("{SRC_USER}:{SRC_PASSWORD}"),
            format!("{SRC_USER}:{WRONG_PASSWORD}"),
            format!("{SA_USER}:{SA_TOKEN}"),
            format!("serviceaccount:{SA_TOKEN}"),
            format!("serviceaccount:{NONPROD_TOKEN}"),
            format!("serviceaccount:{WRONG_TOKEN}"),
        ] {
            s.push(B64.encode(&pair));
        }
        for v in s.clone() {
            s.push(B64.encode(&v));
        }
        // Any JWT (the ones the token server issues are never known to the test).
        s.push("eyJ".into());
        s
    }

    /// Source-side secrets of a command with `--src-…` flags (`prefix` "src") or plain ones
    /// (`prefix` ""): (arguments, environment).
    fn src_creds(&self, prefix: &str, via: Via, case: Case) -> Invocation {
        let flag = |name: &str| {
            if prefix.is_empty() {
                format!("--{name}")
            } else {
                format!("--{prefix}-{name}")
            }
        };
        let env = |name: &str| {
            if prefix.is_empty() {
                format!("FERRY_{name}")
            } else {
                format!("FERRY_{}_{name}", prefix.to_uppercase())
            }
        };
        let pw = Self::password(case);
        let pair = format!("{SRC_USER}:{pw}");
        let mut inv = Invocation::default();
        match via {
            Via::Flags => inv.args.push(format!("{}={pair}", flag("creds"))),
            Via::TokenFlag => inv.args.push(format!(
                "{}={}",
                flag("creds-file"),
                self.file(&format!("{prefix}-creds-{case:?}"), &pair)
            )),
            Via::Files => {
                inv.args.push(format!("{}={SRC_USER}", flag("username")));
                inv.args.push(format!(
                    "{}={}",
                    flag("password-file"),
                    self.file(&format!("{prefix}-pw-{case:?}"), &format!("{pw}\n"))
                ));
            }
            Via::Env => inv.env.push((env("CREDS"), pair)),
            Via::AuthFile => {}
        }
        inv
    }

    /// Destination-side secrets (`--dest-…`).
    fn dst_creds(&self, via: Via) -> Invocation {
        let mut inv = Invocation::default();
        match via {
            Via::Flags => inv.args.push(format!("--dest-creds={SA_USER}:{SA_TOKEN}")),
            Via::TokenFlag => inv.args.push(format!("--dest-registry-token={}", self.jwt)),
            Via::Files => inv.args.push(format!(
                "--dest-registry-token-file={}",
                self.file("dest-token", &self.jwt)
            )),
            Via::Env => inv
                .env
                .push(("FERRY_DEST_REGISTRY_TOKEN".into(), self.jwt.clone())),
            Via::AuthFile => {}
        }
        inv
    }

    /// `--authfile` holding both registries (only for [`Via::AuthFile`]).
    fn authfile(&self, via: Via, case: Case) -> Vec<String> {
        if via != Via::AuthFile {
            return vec![];
        }
        let auths = serde_json::json!({"auths": {
            self.src_proxy.host(): {"auth": B64.encode(format!("{SRC_USER}:{}", Self::password(case)))},
            self.broken.host(): {"auth": B64.encode(format!("{SRC_USER}:{}", Self::password(case)))},
            self.proxy.host(): {"auth": B64.encode(format!("{SA_USER}:{SA_TOKEN}"))},
        }});
        vec![format!(
            "--authfile={}",
            self.file(&format!("auth-{case:?}.json"), &auths.to_string())
        )]
    }
}

fn merge(into: &mut Invocation, other: Invocation) {
    into.args.extend(other.args);
    into.env.extend(other.env);
    into.outputs.extend(other.outputs);
}

// ---- the commands -----------------------------------------------------------------------------

fn copy(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let report = lab.dir.path().join(format!("report-{via:?}-{case:?}.json"));
    let _ = std::fs::remove_file(&report);
    let dst = if case == Case::ServerError {
        "prod/fail:v1"
    } else {
        "prod/app:v1"
    };
    let mut inv = two_registries(lab, &["copy"], via, case, dst);
    inv.args.insert(1, format!("--report={}", report.display()));
    inv.outputs.push(report);
    Some(inv)
}

fn sync(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let dst = if case == Case::ServerError {
        "prod/fail"
    } else {
        "prod"
    };
    let verb = ["sync", "--src=docker", "--dest=docker"];
    Some(two_registries(lab, &verb, via, case, dst))
}

/// `verb… --src-… --dest-… SOURCE DESTINATION` from the source (`ns/app:v1`, or a missing
/// image) to `dst` on the destination.
fn two_registries(lab: &Lab, verb: &[&str], via: Via, case: Case, dst: &str) -> Invocation {
    let mut inv = Invocation {
        args: verb.iter().map(|a| a.to_string()).collect(),
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.extend(
        [
            "--retry-times=1",
            "--retry-delay=10ms",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ]
        .map(String::from),
    );
    inv.args.extend(lab.authfile(via, case));
    merge(&mut inv, lab.src_creds("src", via, case));
    merge(&mut inv, lab.dst_creds(via));
    let src = if case == Case::Missing {
        "ns/absent:v1"
    } else {
        "ns/app:v1"
    };
    inv.args.push(lab.src_proxy.docker_ref(src));
    inv.args.push(lab.proxy.docker_ref(dst));
    inv
}

/// A single-registry command (`--creds`, `--tls-verify`, …) on the source, through the
/// proxy that fails everything for [`Case::ServerError`].
fn single(lab: &Lab, verb: &str, via: Via, case: Case, name: &str) -> Invocation {
    let mut inv = Invocation {
        args: vec![
            verb.into(),
            "--retry-times=1".into(),
            "--retry-delay=10ms".into(),
            "--tls-verify=false".into(),
        ],
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.extend(lab.authfile(via, case));
    merge(&mut inv, lab.src_creds("", via, case));
    let proxy = if case == Case::ServerError {
        &lab.broken
    } else {
        &lab.src_proxy
    };
    inv.args.push(proxy.docker_ref(name));
    inv
}

fn inspect(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let name = if case == Case::Missing {
        "ns/app:absent"
    } else {
        "ns/app:v1"
    };
    Some(single(lab, "inspect", via, case, name))
}

fn list_tags(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let name = if case == Case::Missing {
        "ns/absent"
    } else {
        "ns/app"
    };
    let mut inv = single(lab, "list-tags", via, case, name);
    // As skopeo: an unknown repository is an error, not "image not found".
    inv.expect = exit_code(case).min(1);
    Some(inv)
}

fn delete(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    // Put the tag back for each successful delete (its blobs stay in the repository).
    lab.src
        .put_manifest("ns/del", "v1", &lab.fx.media_type, &lab.fx.manifest);
    let name = if case == Case::Missing {
        "ns/del:absent"
    } else {
        "ns/del:v1"
    };
    Some(single(lab, "delete", via, case, name))
}

/// The password by flag, file or standard input; the auth file it writes holds it by design
/// and is not checked.
fn login(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let pw = Lab::password(case);
    let host = if case == Case::ServerError {
        lab.broken.host()
    } else {
        lab.src_proxy.host()
    };
    let mut inv = Invocation {
        args: vec![
            "login".into(),
            "--tls-verify=false".into(),
            format!("--username={SRC_USER}"),
            format!(
                "--authfile={}",
                lab.dir.path().join(format!("login-{via:?}.json")).display()
            ),
        ],
        expect: if case == Case::Works { 0 } else { 1 },
        ..Default::default()
    };
    match via {
        Via::Flags => inv.args.push(format!("--password={pw}")),
        Via::Files => inv.args.push(format!(
            "--password-file={}",
            lab.file(&format!("login-pw-{case:?}"), pw)
        )),
        Via::TokenFlag => {
            inv.args.push("--password-stdin".into());
            inv.stdin = Some(format!("{pw}\n"));
        }
        Via::Env | Via::AuthFile => return None,
    }
    if case == Case::Missing {
        return None;
    }
    inv.args.push(host);
    Some(inv)
}

/// Removes credentials from an auth file without showing them.
fn logout(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    if via != Via::AuthFile || case != Case::Works {
        return None;
    }
    let mut inv = Invocation {
        args: vec!["logout".into()],
        expect: 0,
        ..Default::default()
    };
    inv.args.extend(lab.authfile(via, case));
    inv.args.push(lab.src_proxy.host());
    Some(inv)
}

fn exit_code(case: Case) -> i32 {
    match case {
        Case::Works => 0,
        Case::Missing => 2,
        Case::Refused | Case::ServerError => 1,
    }
}

/// Tokens only from files, named by flag or by environment.
fn promote(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let src_token = if case == Case::Refused {
        WRONG_TOKEN
    } else {
        NONPROD_TOKEN
    };
    let src_file = lab.file(&format!("promote-src-{case:?}"), &format!("{src_token}\n"));
    let dst_file = lab.file("promote-dst", SA_TOKEN);
    let host = lab.proxy.host();
    let config = lab.file(
        "promotion.yaml",
        &crate::promote::promotion_yaml(&[&host], &[&host], &["nonprod"], &["prod", "prodfail"]),
    );
    let record = lab.dir.path().join(format!("record-{via:?}-{case:?}.json"));
    let _ = std::fs::remove_file(&record);
    let mut inv = Invocation {
        args: vec![
            "promote".into(),
            format!("--config={config}"),
            "--retry-times=1".into(),
            "--retry-delay=10ms".into(),
            format!("--record={}", record.display()),
            "--src-tls-verify=false".into(),
            "--dest-tls-verify=false".into(),
            format!("--image-name=app"),
            format!("--non-prod-registry={}", lab.proxy.host()),
            format!("--prod-registry={}", lab.proxy.host()),
            "--non-prod-project=nonprod".into(),
        ],
        outputs: vec![record],
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.push(match case {
        Case::ServerError => "--prod-project=prodfail".into(),
        _ => "--prod-project=prod".into(),
    });
    inv.args.push(match case {
        Case::Missing => "--tag=deadbeef".into(),
        _ => "--tag=c0ffee".into(),
    });
    match via {
        Via::Flags | Via::Files => {
            inv.args.push(format!("--src-token-file={src_file}"));
            inv.args.push(format!("--dest-token-file={dst_file}"));
        }
        Via::Env => {
            inv.env.push(("FERRY_SRC_TOKEN_FILE".into(), src_file));
            inv.env.push(("FERRY_DEST_TOKEN_FILE".into(), dst_file));
        }
        Via::TokenFlag | Via::AuthFile => return None,
    }
    Some(inv)
}

/// The webhook secret from a file or the environment (on the command line: refused); the API
/// token from a file.
fn trigger(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let secret = if case == Case::Refused {
        WRONG_WEBHOOK_SECRET
    } else {
        WEBHOOK_SECRET
    };
    let mut inv = Invocation {
        args: vec![
            "trigger".into(),
            format!("--api-url={}", lab.hook_proxy.url()),
            "--tls-verify=false".into(),
            format!(
                "--token-file={}",
                lab.file("api-token", &format!("{API_TOKEN}\n"))
            ),
            "--env=GIT_COMMIT=c0ffee".into(),
        ],
        // An unknown BuildConfig is refused like a wrong secret (401), as OpenShift does.
        expect: if case == Case::Works { 0 } else { 1 },
        ..Default::default()
    };
    inv.args.push(match case {
        Case::ServerError => "--namespace=fail".into(),
        _ => "--namespace=prod".into(),
    });
    inv.args.push(match case {
        Case::Missing => "--buildconfig=absent".into(),
        _ => "--buildconfig=production-pipeline".into(),
    });
    match via {
        // Refused before anything is sent, without echoing it.
        Via::Flags => {
            inv.args.push(format!("--secret={secret}"));
            inv.expect = 1;
        }
        Via::Files => inv.args.push(format!(
            "--secret-file={}",
            lab.file(&format!("hook-{case:?}"), secret)
        )),
        Via::Env => inv.env.push(("FERRY_WEBHOOK_SECRET".into(), secret.into())),
        Via::TokenFlag | Via::AuthFile => return None,
    }
    Some(inv)
}

// ---- the test ---------------------------------------------------------------------------------

#[test]
fn no_command_shows_a_secret() {
    let lab = Lab::new();
    let secrets = lab.secrets();
    let mut runs = 0;
    for (name, command) in COMMANDS {
        let before = runs;
        for via in VIAS {
            for case in CASES {
                // Every case with secrets on the command line and in the environment; the
                // success and the refusal for the other ways.
                let full = matches!(via, Via::Flags | Via::Env);
                if !full && matches!(case, Case::Missing | Case::ServerError) {
                    continue;
                }
                let Some(inv) = command(&lab, via, case) else {
                    continue;
                };
                let mut tool = ferry();
                tool.arg("--debug").args(&inv.args).env("RUST_LOG", "trace");
                for (k, v) in &inv.env {
                    tool.env(k, v);
                }
                if let Some(input) = &inv.stdin {
                    tool.stdin(input.clone());
                }
                let out = tool.timeout(Duration::from_secs(60)).run();
                let what = format!("{name} with secrets by {via:?}, {case:?}");
                // The run did what the case says (so the secrets were really used).
                assert_eq!(out.code, Some(inv.expect), "{what}\n{out}");
                assert!(!out.stderr.contains("panicked"), "{what}\n{out}");
                let mut texts = vec![
                    ("stdout".to_string(), out.stdout.clone()),
                    ("stderr".to_string(), out.stderr.clone()),
                ];
                for path in &inv.outputs {
                    if let Ok(t) = std::fs::read_to_string(path) {
                        texts.push((path.display().to_string(), t));
                    }
                }
                for (where_, text) in &texts {
                    for s in &secrets {
                        assert!(
                            !text.contains(s.as_str()),
                            "{what}: {where_} shows the secret {s:?}\n{out}"
                        );
                    }
                }
                runs += 1;
            }
        }
        assert!(runs > before, "{name} never ran");
    }
    // The destination's token endpoint was really used with the service-account token.
    assert!(
        lab.ts
            .requests()
            .iter()
            .any(|r| r.token.as_deref() == Some(SA_TOKEN)),
        "the service-account token was never used"
    );
}

#[test]
fn the_jenkinsfiles_pass_no_secret_on_a_command_line() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let flag = regex::Regex::new(r"--[a-z][a-z-]*").unwrap();
    for file in ["Jenkinsfile.nonprod", "Jenkinsfile.prod"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for m in flag.find_iter(&text) {
            let f = m.as_str();
            let secretish = ["creds", "password", "token", "secret"]
                .iter()
                .any(|s| f.contains(s));
            let by_reference = f.ends_with("-file") || f.ends_with("-dir") || f == "--no-creds";
            assert!(
                !secretish || by_reference,
                "{file}: {f} would put a secret on a command line"
            );
        }
    }
}
