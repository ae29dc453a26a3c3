//! Credentials: from flags, files, the environment, and containers-auth.json files.
//!
//! For one side of an operation, the first source that gives credentials wins:
//!
//! 1. `--no-creds`: anonymous, nothing else is read;
//! 2. a flag: `--creds USER[:PASS]`, `--username` with `--password`, `--registry-token`;
//! 3. ferry's file forms: `--creds-file`, `--password-file`, `--registry-token-file`;
//! 4. ferry's environment forms: `FERRY_<SIDE>_CREDS`, `FERRY_<SIDE>_REGISTRY_TOKEN`;
//! 5. auth files, as containers-auth.json(5) describes: the explicit `--authfile` (or
//!    `$REGISTRY_AUTH_FILE`), else `$XDG_RUNTIME_DIR/containers/auth.json` (or
//!    `/run/containers/$UID/auth.json`); then `$XDG_CONFIG_HOME/containers/auth.json`
//!    (`~/.config/containers/auth.json`), `$DOCKER_CONFIG/config.json` (or
//!    `~/.docker/config.json`), `~/.dockercfg`. Within a file the most specific key wins:
//!    `host/ns/repo`, then `host/ns`, then `host`.
//!
//! Secrets are read into [`Secret`] and never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::redact::Secret;

/// How to authenticate to a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    #[default]
    Anonymous,
    /// Username and password (for a token registry, the password is e.g. a service-account token).
    Basic {
        /// Username (OpenShift's registry accepts any).
        username: String,
        /// Password or token.
        password: Secret,
    },
    /// A bearer token sent as is (`--registry-token`).
    Bearer(Secret),
    /// An auth-file entry with an `identitytoken` (an OAuth2 refresh token, as `az acr login`
    /// or `docker login` with some registries write): tokens are requested with it (`POST`,
    /// `grant_type=refresh_token`), as skopeo does; the username and password serve a
    /// registry that asks for Basic auth.
    OAuth2 {
        /// Username of the entry's `auth`.
        username: String,
        /// Password of the entry's `auth`.
        password: Secret,
        /// The refresh token.
        identity_token: Secret,
    },
}

impl Credentials {
    /// Split skopeo's `USER[:PASS]` at the first colon.
    pub fn from_creds(value: &str, what: &str) -> Result<Self> {
        let (user, pass) = match value.split_once(':') {
            Some((u, p)) => (u, p),
            None => (value, ""),
        };
        if user.is_empty() {
            return Err(Error::usage(format!(
                "{what}: username is empty (expected USER[:PASS])"
            )));
        }
        Ok(Credentials::Basic {
            username: user.to_string(),
            password: Secret::new(pass),
        })
    }

    /// Every secret these credentials hold, for scrubbing text.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Credentials::Anonymous => vec![],
            Credentials::Basic { password, .. } => vec![password],
            Credentials::Bearer(t) => vec![t],
            Credentials::OAuth2 {
                password,
                identity_token,
                ..
            } => vec![password, identity_token],
        }
    }

    /// A short description for logs: never the secret.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Anonymous => "anonymous".into(),
            Credentials::Basic { username, .. } => format!("user {username:?}"),
            Credentials::Bearer(_) => "bearer token".into(),
            Credentials::OAuth2 { .. } => "identity token (OAuth2)".into(),
        }
    }
}

/// The credential inputs of one side (`src`, `dest`, or none for single-image verbs).
#[derive(Debug, Clone, Default)]
pub struct CredentialArgs {
    /// `--creds USER[:PASS]`.
    pub creds: Option<Secret>,
    /// `--username`.
    pub username: Option<String>,
    /// `--password`.
    pub password: Option<Secret>,
    /// `--registry-token`.
    pub registry_token: Option<Secret>,
    /// `--creds-file PATH` (ferry).
    pub creds_file: Option<PathBuf>,
    /// `--password-file PATH` (ferry).
    pub password_file: Option<PathBuf>,
    /// `--registry-token-file PATH` (ferry).
    pub registry_token_file: Option<PathBuf>,
    /// `--no-creds`.
    pub no_creds: bool,
    /// `--authfile` for this side (or the global one).
    pub authfile: Option<PathBuf>,
    /// Prefix of the flags, for messages: `--src-`, `--dest-`, `--`.
    pub flag_prefix: String,
    /// Prefix of the environment forms: `FERRY_SRC_`, `FERRY_DEST_`, `FERRY_`.
    pub env_prefix: String,
}

/// Read a secret file: whole content, one trailing newline (`\n` or `\r\n`) removed.
pub fn read_secret_file(path: &Path, what: &str) -> Result<Secret> {
    let mut s =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {what}"), path, e))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.is_empty() {
        return Err(Error::usage(format!("{what} {} is empty", path.display())));
    }
    Ok(Secret::new(s))
}

impl CredentialArgs {
    fn flag(&self, name: &str) -> String {
        format!("{}{}", self.flag_prefix, name)
    }

    /// Resolve the explicit credentials (flags, files, the `FERRY_*` variables of `env`).
    /// `None` means: look in auth files.
    pub fn explicit(&self, env: &Environment) -> Result<Option<Credentials>> {
        let given = [
            self.creds.is_some(),
            self.username.is_some() || self.password.is_some() || self.password_file.is_some(),
            self.registry_token.is_some(),
            self.creds_file.is_some(),
            self.registry_token_file.is_some(),
        ];
        if self.no_creds && given.iter().any(|g| *g) {
            return Err(Error::usage(format!(
                "{} cannot be used together with other credential options",
                self.flag("no-creds")
            )));
        }
        if self.no_creds {
            return Ok(Some(Credentials::Anonymous));
        }
        if (self.creds.is_some() || self.creds_file.is_some())
            && (self.username.is_some() || self.password.is_some() || self.password_file.is_some())
        {
            return Err(Error::usage(format!(
                "{} and {}/{} cannot be used together",
                self.flag("creds"),
                self.flag("username"),
                self.flag("password")
            )));
        }
        let has_basic = given[0] || given[1] || given[3];
        let has_token = given[2] || given[4];
        if has_basic && has_token {
            return Err(Error::usage(format!(
                "{} and {} cannot be used together",
                self.flag("creds"),
                self.flag("registry-token")
            )));
        }
        // 1. flags
        if let Some(c) = &self.creds {
            return Credentials::from_creds(c.expose(), &self.flag("creds")).map(Some);
        }
        if let Some(t) = &self.registry_token {
            return Ok(Some(Credentials::Bearer(t.clone())));
        }
        if self.username.is_some() || self.password.is_some() || self.password_file.is_some() {
            let Some(username) = self.username.clone().filter(|u| !u.is_empty()) else {
                return Err(Error::usage(format!(
                    "{} is required with a password",
                    self.flag("username")
                )));
            };
            let password = match (&self.password, &self.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret_file(f, "password file")?,
                (None, None) => {
                    return Err(Error::usage(format!(
                        "{} needs {} or {}",
                        self.flag("username"),
                        self.flag("password"),
                        self.flag("password-file")
                    )));
                }
            };
            return Ok(Some(Credentials::Basic { username, password }));
        }
        // 2. files
        if let Some(f) = &self.creds_file {
            let c = read_secret_file(f, "credentials file")?;
            return Credentials::from_creds(
                c.expose(),
                &format!("credentials file {}", f.display()),
            )
            .map(Some);
        }
        if let Some(f) = &self.registry_token_file {
            return Ok(Some(Credentials::Bearer(read_secret_file(
                f,
                "registry token file",
            )?)));
        }
        // 3. environment
        let creds_env = format!("{}CREDS", self.env_prefix);
        let token_env = format!("{}REGISTRY_TOKEN", self.env_prefix);
        match (env.secret(&creds_env), env.secret(&token_env)) {
            (Some(_), Some(_)) => Err(Error::usage(format!(
                "{creds_env} and {token_env} cannot both be set"
            ))),
            (Some(c), None) => Credentials::from_creds(c.expose(), &creds_env).map(Some),
            (None, Some(t)) => Ok(Some(Credentials::Bearer(t))),
            (None, None) => Ok(None),
        }
    }

    /// Resolve credentials for `registry/repository`: explicit ones, else the auth files.
    pub fn resolve(
        &self,
        registry: &str,
        repository: &str,
        env: &Environment,
    ) -> Result<Credentials> {
        if let Some(c) = self.explicit(env)? {
            return Ok(c);
        }
        let files = AuthFiles::discover(self.authfile.as_deref(), env);
        Ok(files.lookup(registry, repository)?.unwrap_or_default())
    }
}

/// The ordered list of auth files to consult.
#[derive(Debug, Clone)]
pub struct AuthFiles {
    /// `(path, legacy dockercfg format)` in lookup order.
    pub paths: Vec<(PathBuf, bool)>,
}

/// The primary (read/write) auth file: `--authfile`, `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json` or `/run/containers/$UID/auth.json`.
pub fn primary_auth_file(explicit: Option<&Path>, env: &Environment) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = &env.registry_auth_file {
        return p.clone();
    }
    match &env.xdg_runtime_dir {
        Some(dir) => dir.join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::getuid().as_raw()
        )),
    }
}

impl AuthFiles {
    /// The files containers-auth.json(5) lists, in order.
    pub fn discover(explicit: Option<&Path>, env: &Environment) -> Self {
        let mut paths = vec![(primary_auth_file(explicit, env), false)];
        let home = env.home.clone();
        let config_home = env
            .xdg_config_home
            .clone()
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        if let Some(c) = config_home {
            paths.push((c.join("containers/auth.json"), false));
        }
        match &env.docker_config {
            Some(d) => paths.push((d.join("config.json"), false)),
            None => {
                if let Some(h) = &home {
                    paths.push((h.join(".docker/config.json"), false));
                }
            }
        }
        if let Some(h) = &home {
            paths.push((h.join(".dockercfg"), true));
        }
        let mut seen = std::collections::HashSet::new();
        paths.retain(|(p, _)| seen.insert(p.clone()));
        AuthFiles { paths }
    }

    /// The credentials for `registry/repository` from the first file that has them.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        for (path, legacy) in &self.paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(Error::io("reading auth file", path, e)),
            };
            if text.trim().is_empty() {
                continue;
            }
            let doc: Value = serde_json::from_str(&text).map_err(|e| {
                Error::usage(format!(
                    "auth file {} is not valid JSON: {e}",
                    path.display()
                ))
            })?;
            let auths = if *legacy {
                Some(&doc)
            } else {
                doc.get("auths")
            };
            let entries =
                normalised_entries(auths, *legacy || path.ends_with(".docker/config.json"));
            for key in candidate_keys(registry, repository) {
                if let Some(entry) = entries.get(&key)
                    && let Some(c) = decode_entry(entry, path, &key)?
                {
                    log::debug!("using credentials for {key} from {}", path.display());
                    return Ok(Some(c));
                }
            }
            if let Some(helper) = credential_helper(&doc, registry)
                && let Some(c) = run_credential_helper(&helper, registry)?
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// Keys to try, most specific first: `host/ns/repo`, `host/ns`, `host`.
fn candidate_keys(registry: &str, repository: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut path = format!("{registry}/{repository}");
    loop {
        keys.push(path.clone());
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    keys
}

/// Normalise auth-file keys as containers/image does: strip `http(s)://`, cut legacy
/// paths (`https://index.docker.io/v1/` → `docker.io`).
fn normalised_entries(auths: Option<&Value>, legacy_keys: bool) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(map)) = auths else {
        return out;
    };
    for (key, entry) in map {
        let stripped = key
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let cut = if legacy_keys || stripped != key {
            stripped.split('/').next().unwrap_or(stripped)
        } else {
            stripped
        };
        let norm = match cut {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            other => match other.split_once('/') {
                Some(("index.docker.io" | "registry-1.docker.io", rest)) => {
                    format!("docker.io/{rest}")
                }
                _ => other.to_string(),
            },
        };
        // An exact (already normal) key wins over a legacy spelling of the same registry.
        if stripped == key || !out.contains_key(&norm) {
            out.insert(norm, entry.clone());
        }
    }
    out
}

fn decode_entry(entry: &Value, path: &Path, key: &str) -> Result<Option<Credentials>> {
    let bad =
        |why: &str| Error::usage(format!("auth file {}: entry {key:?} {why}", path.display()));
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("has an \"auth\" value that is not base64"))?;
        let text =
            String::from_utf8(raw).map_err(|_| bad("has an \"auth\" value that is not UTF-8"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| bad("has an \"auth\" value without ':'"))?;
        // Go's decoder drops the NULs some tools pad the password with.
        let pass = pass.trim_matches('\0');
        if let Some(idt) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credentials::OAuth2 {
                username: user.to_string(),
                password: Secret::new(pass),
                identity_token: Secret::new(idt),
            }));
        }
        return Ok(Some(Credentials::Basic {
            username: user.to_string(),
            password: Secret::new(pass),
        }));
    }
    if entry
        .get("identitytoken")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        // skopeo reads an identity token only together with an `auth` value; alone it is
        // an empty entry, and the search goes on.
        log::debug!(
            "auth file {}: entry {key:?} has an identity token but no \"auth\"; ignored, as skopeo does",
            path.display()
        );
    }
    Ok(None)
}

fn credential_helper(doc: &Value, registry: &str) -> Option<String> {
    let helpers = doc.get("credHelpers").and_then(Value::as_object);
    if let Some(h) = helpers
        .and_then(|h| h.get(registry))
        .and_then(Value::as_str)
    {
        return Some(h.to_string());
    }
    doc.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Ask `docker-credential-HELPER get` for the registry's credentials.
fn run_credential_helper(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    use std::io::Write as _;
    let program = format!("docker-credential-{helper}");
    let child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log::debug!("credential helper {program} not usable: {e}");
            return Ok(None);
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("running credential helper", &program, e))?;
    if !out.status.success() {
        log::debug!("credential helper {program} has no credentials for {registry}");
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|_| Error::CredentialHelper {
        program: program.clone(),
        reason: "printed something that is not JSON".into(),
    })?;
    let user = v
        .get("Username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    if user == "<token>" {
        // The helper's secret is an identity token (as docker's helpers mark it).
        return Ok(Some(Credentials::OAuth2 {
            username: String::new(),
            password: Secret::new(""),
            identity_token: Secret::new(secret),
        }));
    }
    Ok(Some(Credentials::Basic {
        username: user.to_string(),
        password: Secret::new(secret),
    }))
}

/// The `auth` value of an auth-file entry: base64 of `user:password`.
pub fn encode_auth(username: &str, password: &Secret) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()))
}

#[cfg(test)]
mod tests;
