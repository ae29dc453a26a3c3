//! Connection pools shared across the process: every registry client with the same host and
//! TLS settings uses one `reqwest::Client`, so a `sync` over many repositories (one registry
//! client each, for their credentials) keeps its connections warm instead of opening new ones
//! per repository. Credentials are per request, never per connection, so sharing is safe.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use crate::environment::Proxies;
use crate::error::{Error, Result};
use crate::tls::TlsOptions;

/// What makes two pools differ.
type PoolKey = (String, TlsKey, Duration);
/// The TLS options that make two pools differ.
type TlsKey = (Option<bool>, Option<PathBuf>, Option<PathBuf>, Proxies);

static POOLS: LazyLock<Mutex<HashMap<PoolKey, Pool>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// One pool: its client, and whether its connections were opened ahead already
/// (`registry::Client::warm_up`, once per pool).
#[derive(Clone)]
pub struct Pool {
    /// The client whose connections are pooled.
    pub http: reqwest::Client,
    /// Set by the first warm-up of this pool.
    pub warmed: Arc<AtomicBool>,
}

/// The pool for `host` with these TLS settings, built once per process.
pub fn shared(tls: &TlsOptions, host: &str, connect_timeout: Duration) -> Result<Pool> {
    let key = (
        host.to_string(),
        (
            tls.verify,
            tls.cert_dir.clone(),
            tls.home.clone(),
            tls.proxies.clone(),
        ),
        connect_timeout,
    );
    let mut pools = POOLS.lock().expect("connection pools poisoned");
    if let Some(c) = pools.get(&key) {
        return Ok(c.clone());
    }
    let client = crate::tls::client_builder(tls, host)?
        .connect_timeout(connect_timeout)
        .tcp_keepalive(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .map_err(|e| {
            Error::Tls(format!(
                "cannot set up TLS for {host}: {}",
                super::chain(&e.without_url())
            ))
        })?;
    let pool = Pool {
        http: client,
        warmed: Arc::default(),
    };
    pools.insert(key, pool.clone());
    Ok(pool)
}
