//! The lab set-up most copy tests share, as a builder: a source and a destination registry
//! (plain HTTP, HTTPS or HTTPS with client certificates), their authentication (htpasswd or a
//! token server), the credentials a copy sends, and a way to run ferry or skopeo against them.
//!
//! ```ignore
//! use crate::support::setup::Pair;
//! let p = Pair::new().tls().token("sa", &[Grant::push("*")]).build();
//! fx.seed(&p.src, "ns/app:v1");
//! p.ferry_copy(&["-q"], "ns/app:v1", "ns/app:v1").assert_success();
//! assert!(p.ts().requests().iter().all(|r| r.status == 200));
//! ```
//!
//! Each side can differ ([`PairBuilder::src`], [`PairBuilder::dst`]): its own TLS, its own
//! users or its own token server, its own credentials. What the tests assert stays in the
//! tests: the builder only starts things and spells the flags.

use super::{
    Auth, Grant, Output, Registry, RegistryOptions, Side, Tls, TokenServer, TokenServerOptions,
    Tool, ferry, skopeo,
};

/// How one side authenticates.
#[derive(Clone, Debug, Default)]
enum EndAuth {
    #[default]
    None,
    /// htpasswd users.
    Basic(Vec<(String, String)>),
    /// This side's own token server.
    Token(TokenServerOptions),
    /// The token server both sides share (see [`PairBuilder::token`]).
    SharedToken,
}

/// The options of a token server knowing one token with these grants. Its realm's TLS is
/// set when it starts: HTTPS when the registry is (ferry sends no credentials to a plain
/// http:// realm of an HTTPS registry).
fn one_token(token: &str, grants: &[Grant]) -> TokenServerOptions {
    TokenServerOptions {
        tokens: vec![(token.to_string(), grants.to_vec())],
        ..Default::default()
    }
}

/// One side of a [`Pair`]: its registry's TLS and authentication and the credentials copies
/// send to it.
#[derive(Clone, Debug, Default)]
pub struct End {
    tls: Tls,
    auth: EndAuth,
    /// `user:secret` for `--src-creds`/`--dest-creds`; `None`: no credentials flag.
    creds: Option<String>,
}

impl End {
    /// HTTPS with a certificate signed by the lab CA (`Tls::Ca`), or another TLS variant.
    pub fn tls(mut self, tls: Tls) -> End {
        self.tls = tls;
        self
    }

    /// htpasswd with one user; copies send `user:password`.
    pub fn basic_auth(mut self, user: &str, password: &str) -> End {
        self.auth = EndAuth::Basic(vec![(user.to_string(), password.to_string())]);
        self.creds = Some(format!("{user}:{password}"));
        self
    }

    /// htpasswd with these users; copies send no credentials unless [`creds`](Self::creds).
    pub fn users(mut self, users: Vec<(String, String)>) -> End {
        self.auth = EndAuth::Basic(users);
        self
    }

    /// This side's own token server, knowing one token with these grants; copies send
    /// `user:token`. Its realm is HTTPS when the registry is (ferry sends no credentials to a
    /// plain http:// realm of an HTTPS registry).
    pub fn token(mut self, user: &str, token: &str, grants: &[Grant]) -> End {
        self.auth = EndAuth::Token(one_token(token, grants));
        self.creds = Some(format!("{user}:{token}"));
        self
    }

    /// Which fields of the token server's answer carry the JWT (after [`token`](Self::token)).
    pub fn token_fields(mut self, fields: super::TokenFields) -> End {
        if let EndAuth::Token(spec) = &mut self.auth {
            spec.fields = fields;
        }
        self
    }

    /// The credentials copies send (`user:secret`), replacing the default.
    pub fn creds(mut self, creds: &str) -> End {
        self.creds = Some(creds.to_string());
        self
    }

    /// Copies send no credentials flag (anonymous, or credentials from elsewhere).
    pub fn no_creds(mut self) -> End {
        self.creds = None;
        self
    }
}

/// Builds a [`Pair`]; from [`Pair::new`].
#[derive(Clone, Debug, Default)]
pub struct PairBuilder {
    src: End,
    dst: End,
    /// The token server both sides share, if any.
    shared_tokens: Option<TokenServerOptions>,
}

impl PairBuilder {
    /// Both registries over HTTPS with certificates signed by the lab CA.
    pub fn tls(mut self) -> PairBuilder {
        self.src.tls = Tls::Ca;
        self.dst.tls = Tls::Ca;
        self
    }

    /// Both registries over HTTPS requiring a client certificate (the cert dirs hold one).
    pub fn client_cert(mut self) -> PairBuilder {
        self.src.tls = Tls::ClientCert;
        self.dst.tls = Tls::ClientCert;
        self
    }

    /// Both registries with htpasswd and this user; copies send `user:password` to both.
    pub fn basic_auth(mut self, user: &str, password: &str) -> PairBuilder {
        self.src = self.src.basic_auth(user, password);
        self.dst = self.dst.basic_auth(user, password);
        self
    }

    /// Both registries behind one token server (HTTPS when the registries are) that knows
    /// `token` with these grants; copies send `x:token` to both. [`Pair::ts`] is the server.
    pub fn token(mut self, token: &str, grants: &[Grant]) -> PairBuilder {
        self.shared_tokens = Some(one_token(token, grants));
        for end in [&mut self.src, &mut self.dst] {
            end.auth = EndAuth::SharedToken;
            end.creds = Some(format!("x:{token}"));
        }
        self
    }

    /// Change the source side.
    pub fn src(mut self, f: impl FnOnce(End) -> End) -> PairBuilder {
        self.src = f(self.src);
        self
    }

    /// Change the destination side.
    pub fn dst(mut self, f: impl FnOnce(End) -> End) -> PairBuilder {
        self.dst = f(self.dst);
        self
    }

    /// Start the token servers and the registries.
    pub fn build(self) -> Pair {
        let start_ts = |opts: &TokenServerOptions, registry_tls: Tls| {
            TokenServer::start(TokenServerOptions {
                tls: registry_tls != Tls::None,
                ..opts.clone()
            })
        };
        let shared = self
            .shared_tokens
            .as_ref()
            .map(|spec| start_ts(spec, self.src.tls));
        let own = |end: &End| -> (Auth, Option<TokenServer>) {
            match &end.auth {
                EndAuth::None => (Auth::None, None),
                EndAuth::Basic(users) => (Auth::Basic(users.clone()), None),
                EndAuth::Token(spec) => {
                    let ts = start_ts(spec, end.tls);
                    (Auth::Token(ts.config()), Some(ts))
                }
                EndAuth::SharedToken => (
                    Auth::Token(shared.as_ref().expect("the shared token server").config()),
                    None,
                ),
            }
        };
        let (src_auth, src_ts) = own(&self.src);
        let (dst_auth, dst_ts) = own(&self.dst);
        let options = |tls: Tls, auth: Auth| RegistryOptions {
            tls,
            auth,
            ..Default::default()
        };
        Pair {
            src: Registry::start(options(self.src.tls, src_auth)),
            dst: Registry::start(options(self.dst.tls, dst_auth)),
            shared_ts: shared,
            src_ts,
            dst_ts,
            src_creds: self.src.creds,
            dst_creds: self.dst.creds,
        }
    }
}

/// A started source and destination registry, their token servers and the credentials copies
/// send to them.
pub struct Pair {
    pub src: Registry,
    pub dst: Registry,
    shared_ts: Option<TokenServer>,
    src_ts: Option<TokenServer>,
    dst_ts: Option<TokenServer>,
    src_creds: Option<String>,
    dst_creds: Option<String>,
}

impl Pair {
    /// A builder; with nothing changed, two plain-HTTP registries without authentication.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> PairBuilder {
        PairBuilder::default()
    }

    /// Two plain-HTTP registries without authentication.
    pub fn plain() -> Pair {
        Pair::new().build()
    }

    /// The token server both sides share ([`PairBuilder::token`]).
    pub fn ts(&self) -> &TokenServer {
        self.shared_ts
            .as_ref()
            .expect("the pair has a shared token server")
    }

    /// The source's token server (its own, or the shared one).
    pub fn src_ts(&self) -> &TokenServer {
        self.src_ts
            .as_ref()
            .or(self.shared_ts.as_ref())
            .expect("the source has a token server")
    }

    /// The destination's token server (its own, or the shared one).
    pub fn dst_ts(&self) -> &TokenServer {
        self.dst_ts
            .as_ref()
            .or(self.shared_ts.as_ref())
            .expect("the destination has a token server")
    }

    /// `--src-…` TLS flags and the source credentials (if any).
    pub fn src_args(&self) -> Vec<String> {
        let mut args = self.src.tls_args(Side::Src);
        if let Some(c) = &self.src_creds {
            args.push(format!("--src-creds={c}"));
        }
        args
    }

    /// `--dest-…` TLS flags and the destination credentials (if any).
    pub fn dst_args(&self) -> Vec<String> {
        let mut args = self.dst.tls_args(Side::Dest);
        if let Some(c) = &self.dst_creds {
            args.push(format!("--dest-creds={c}"));
        }
        args
    }

    /// `docker://SRC-HOST/name`.
    pub fn src_ref(&self, name: &str) -> String {
        self.src.docker_ref(name)
    }

    /// `docker://DST-HOST/name`.
    pub fn dst_ref(&self, name: &str) -> String {
        self.dst.docker_ref(name)
    }

    /// `tool copy <extra> <src flags> <dst flags> docker://SRC/src docker://DST/dst`, not run
    /// yet (to add environment or a timeout).
    pub fn copy_cmd(&self, mut tool: Tool, extra: &[&str], src: &str, dst: &str) -> Tool {
        tool.arg("copy")
            .args(extra)
            .args(self.src_args())
            .args(self.dst_args())
            .arg(self.src_ref(src))
            .arg(self.dst_ref(dst));
        tool
    }

    /// [`copy_cmd`](Self::copy_cmd), run.
    pub fn copy(&self, tool: Tool, extra: &[&str], src: &str, dst: &str) -> Output {
        self.copy_cmd(tool, extra, src, dst).run()
    }

    /// `ferry copy <extra> …` from `src` to `dst`.
    pub fn ferry_copy(&self, extra: &[&str], src: &str, dst: &str) -> Output {
        self.copy(ferry(), extra, src, dst)
    }

    /// `skopeo copy <extra> …` from `src` to `dst`.
    pub fn skopeo_copy(&self, extra: &[&str], src: &str, dst: &str) -> Output {
        self.copy(skopeo(), extra, src, dst)
    }

    /// Like [`copy_cmd`](Self::copy_cmd) with TLS flags only, no credentials flags (for
    /// credentials from an auth file or the environment).
    pub fn copy_anonymous_cmd(&self, mut tool: Tool, extra: &[&str], src: &str, dst: &str) -> Tool {
        tool.arg("copy")
            .args(extra)
            .args(self.src.tls_args(Side::Src))
            .args(self.dst.tls_args(Side::Dest))
            .arg(self.src_ref(src))
            .arg(self.dst_ref(dst));
        tool
    }
}
