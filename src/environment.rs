//! The process environment, read once at the command line and passed down.
//!
//! Lower layers (TLS and proxies, auth files, the trust policy, progress, limits) take what
//! they need from an [`Environment`] they are given instead of calling `std::env` themselves:
//! a command's inputs are then visible in one place, and a library user or a test can hand
//! in any environment without touching the process's.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::redact::Secret;

/// The environment variables ferry's lower layers read, captured once.
#[derive(Clone, Default)]
pub struct Environment {
    /// `HOME`: `~/.config/containers/{certs.d,policy.json,auth.json}`, `~/.docker/config.json`.
    pub home: Option<PathBuf>,
    /// `REGISTRY_AUTH_FILE`: the primary auth file.
    pub registry_auth_file: Option<PathBuf>,
    /// `XDG_RUNTIME_DIR`: the default primary auth file's folder.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `XDG_CONFIG_HOME`: `containers/auth.json` below it.
    pub xdg_config_home: Option<PathBuf>,
    /// `DOCKER_CONFIG`: the folder of Docker's `config.json`.
    pub docker_config: Option<PathBuf>,
    /// `CONTAINERS_POLICY_JSON`: the trust policy when `--policy` is not given.
    pub containers_policy_json: Option<PathBuf>,
    /// `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (either case), as Go reads them.
    pub proxies: Proxies,
    /// `FERRY_PROGRESS_INTERVAL`: seconds between plain progress lines.
    pub progress_interval: Option<String>,
    /// `FERRY_MAX_TAG_DATA`: the memory a tag list may take.
    pub max_tag_data: Option<String>,
    /// The `FERRY_*` credential variables (`…CREDS`, `…REGISTRY_TOKEN`), kept as secrets.
    secrets: BTreeMap<String, Secret>,
}

/// Proxy settings from the environment (empty strings when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Proxies {
    /// `HTTP_PROXY` or `http_proxy`; empty in a CGI environment (`REQUEST_METHOD` set), as
    /// Go's `http.ProxyFromEnvironment` ignores it there.
    pub http: String,
    /// `HTTPS_PROXY` or `https_proxy`.
    pub https: String,
    /// `NO_PROXY` or `no_proxy`.
    pub no_proxy: String,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("home", &self.home)
            .field("registry_auth_file", &self.registry_auth_file)
            .field("xdg_runtime_dir", &self.xdg_runtime_dir)
            .field("xdg_config_home", &self.xdg_config_home)
            .field("docker_config", &self.docker_config)
            .field("containers_policy_json", &self.containers_policy_json)
            .field("proxies", &self.proxies)
            .field("progress_interval", &self.progress_interval)
            .field("max_tag_data", &self.max_tag_data)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Environment {
    /// The process's environment, now.
    pub fn capture() -> Self {
        Self::from_vars(std::env::vars_os())
    }

    /// An environment made of these variables (for tests and library users).
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let vars: BTreeMap<OsString, OsString> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Set and non-empty, as the tools ferry follows treat an empty value as unset.
        let os = |name: &str| vars.get(&OsString::from(name)).filter(|v| !v.is_empty());
        let path = |name: &str| os(name).map(PathBuf::from);
        let text = |name: &str| os(name).and_then(|v| v.to_str()).map(str::to_string);
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| text(n).filter(|v| !v.trim().is_empty()))
                .unwrap_or_default()
        };
        let cgi = vars.contains_key(&OsString::from("REQUEST_METHOD"));
        let secrets = vars
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?, v.to_str()?)))
            .filter(|(k, v)| {
                k.starts_with("FERRY_")
                    && (k.ends_with("CREDS") || k.ends_with("REGISTRY_TOKEN"))
                    && !v.is_empty()
            })
            .map(|(k, v)| (k.to_string(), Secret::new(v.to_string())))
            .collect();
        Environment {
            home: os("HOME").map(PathBuf::from),
            registry_auth_file: path("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: path("XDG_RUNTIME_DIR"),
            xdg_config_home: path("XDG_CONFIG_HOME"),
            docker_config: path("DOCKER_CONFIG"),
            containers_policy_json: path("CONTAINERS_POLICY_JSON"),
            proxies: Proxies {
                http: if cgi {
                    String::new()
                } else {
                    first(["HTTP_PROXY", "http_proxy"])
                },
                https: first(["HTTPS_PROXY", "https_proxy"]),
                no_proxy: first(["NO_PROXY", "no_proxy"]),
            },
            progress_interval: text(crate::progress::INTERVAL_ENV),
            max_tag_data: text(crate::registry::tags::LIMIT_ENV),
            secrets,
        }
    }

    /// A `FERRY_…CREDS` or `FERRY_…REGISTRY_TOKEN` variable, if set and not empty.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_unset_and_cgi_drops_http_proxy() {
        let env = Environment::from_vars([
            ("HOME", "/home/u"),
            ("DOCKER_CONFIG", ""),
            ("http_proxy", "http://p:3128"),
            ("HTTPS_PROXY", "http://s:3128"),
            ("FERRY_SRC_CREDS", "u:p"),
            ("FERRY_DEST_REGISTRY_TOKEN", ""),
            ("FERRY_OTHER", "x"),
        ]);
        assert_eq!(env.home, Some(PathBuf::from("/home/u")));
        assert_eq!(env.docker_config, None);
        assert_eq!(env.proxies.http, "http://p:3128");
        assert_eq!(env.proxies.https, "http://s:3128");
        assert_eq!(
            env.secret("FERRY_SRC_CREDS")
                .map(|s| s.expose().to_string()),
            Some("u:p".to_string())
        );
        assert!(env.secret("FERRY_DEST_REGISTRY_TOKEN").is_none());
        assert!(env.secret("FERRY_OTHER").is_none());
        assert!(!format!("{env:?}").contains("u:p"), "Debug shows no secret");

        let cgi = Environment::from_vars([("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://p")]);
        assert_eq!(cgi.proxies.http, "");
    }
}
