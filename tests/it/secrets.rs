//! No secret ever shows: every ferry command runs with `--debug` (and `RUST_LOG=trace`) with
//! distinctive secrets passed by every way it takes them — flag, file, environment, auth file
//! — through success and failures (refused credentials, missing image or BuildConfig, a server
//! error after the secrets were used), and neither stdout, stderr nor any file ferry writes
//! (`--report`, the promotion `--record`) holds a secret, its base64 form, the base64 of
//! `user:secret`, or any JWT.
//!
//! Adding a command: one line in [`COMMANDS`] and its invocation builder in
//! `secrets/commands.rs` (the lab and the test are here).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::webhook::{BuildConfig, WebhookOptions, WebhookServer};
use crate::support::*;

mod commands;

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
    ("copy", commands::copy),
    ("sync", commands::sync),
    ("inspect", commands::inspect),
    ("list-tags", commands::list_tags),
    ("delete", commands::delete),
    ("login", commands::login),
    ("logout", commands::logout),
    ("promote", commands::promote),
    ("trigger", commands::trigger),
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
                let out = tool.run();
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
