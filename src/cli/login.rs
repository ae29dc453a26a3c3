//! `login` and `logout`: credentials checked against the registry, then kept in the primary
//! auth file (`--authfile`, `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`
//! or `/run/containers/$UID/auth.json`).

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;

use clap::Args;

use super::options::{GlobalOptions, Personality, go_bool};
use crate::credentials::{AuthFiles, Credentials, primary_auth_file, read_secret_file};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::login::{AuthFile, credentials_key};
use crate::redact::Secret;
use crate::registry::{Client, ClientOptions};
use crate::tls::TlsOptions;

/// Arguments of `login`.
#[derive(Debug, Args)]
pub(super) struct LoginArgs {
    /// Registry (host[:port]), or host[:port]/path for credentials of one namespace.
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// Username.
    #[arg(short = 'u', long, value_name = "USERNAME")]
    username: Option<String>,
    /// Password (prefer --password-stdin or --password-file).
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    password_stdin: Option<bool>,
    /// ferry: read the password from a file.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Path of the auth file to write (default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json).
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry.
    #[arg(long, value_name = "PATH")]
    cert_dir: Option<PathBuf>,
    /// Require HTTPS and verify certificates (false also allows plain HTTP).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    tls_verify: Option<bool>,
    /// Not supported yet: update a Docker-compatible config file instead.
    #[arg(long, value_name = "PATH", hide = true)]
    compat_auth_file: Option<PathBuf>,
    /// Print the username stored for the registry instead of logging in.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    get_login: Option<bool>,
    /// Print the path of the auth file written.
    #[arg(short = 'v', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    verbose: Option<bool>,
}

/// Arguments of `logout`.
#[derive(Debug, Args)]
pub(super) struct LogoutArgs {
    /// Registry (host[:port][/path]) to remove credentials for.
    #[arg(value_name = "REGISTRY", required_unless_present = "all")]
    registry: Option<String>,
    /// Remove the credentials of every registry.
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    all: Option<bool>,
    /// Path of the auth file (default as for login).
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Accepted for compatibility (logout does not contact the registry).
    #[arg(long, value_name = "PATH", hide = true)]
    cert_dir: Option<PathBuf>,
    /// Not supported yet: update a Docker-compatible config file instead.
    #[arg(long, value_name = "PATH", hide = true)]
    compat_auth_file: Option<PathBuf>,
    /// Accepted for compatibility (logout does not contact the registry).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool, value_name = "BOOL", hide = true)]
    tls_verify: Option<bool>,
}

/// Read one line from the terminal (or standard input), without echo when `secret` and
/// standard input is a terminal (rpassword restores the terminal, Ctrl-C included).
fn prompt(label: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if secret && stdin.is_terminal() {
        return rpassword::prompt_password(label).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => end_of_input(label),
            _ => Error::io("reading", "the terminal", e),
        });
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match stdin.lock().read_line(&mut line) {
        Ok(0) => Err(end_of_input(label)),
        Ok(_) => Ok(line.trim_end_matches(['\n', '\r']).to_string()),
        Err(e) => Err(Error::io("reading", "standard input", e)),
    }
}

fn end_of_input(label: &str) -> Error {
    Error::usage(format!(
        "reading {}: end of input",
        label.trim_end_matches([':', ' '])
    ))
}

pub(super) async fn login(
    args: LoginArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    if args.compat_auth_file.is_some() {
        return Err(compat_auth_file());
    }
    let (key, registry) = credentials_key(&args.registry)?;
    if args.get_login.unwrap_or(false) {
        let repo = key.split_once('/').map(|(_, p)| p).unwrap_or("");
        return match AuthFiles::discover(args.authfile.as_deref(), &global.env)
            .lookup(&registry, repo)?
        {
            Some(Credentials::Basic { username, .. } | Credentials::OAuth2 { username, .. }) => {
                println!("{username}");
                Ok(())
            }
            _ => Err(Error::usage(format!("not logged into {key}"))),
        };
    }
    let from_stdin = args.password_stdin.unwrap_or(false);
    let given = [
        args.password.is_some(),
        from_stdin,
        args.password_file.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Error::usage(
            "--password, --password-stdin and --password-file cannot be used together",
        ));
    }
    if from_stdin && args.username.is_none() {
        return Err(Error::usage(
            "must provide --username with --password-stdin",
        ));
    }
    let username = match args.username.clone() {
        Some(u) => u,
        None => prompt("Username: ", false)?,
    };
    if username.is_empty() {
        return Err(Error::usage("the username is empty"));
    }
    let password = if let Some(p) = &args.password {
        Secret::new(p.clone())
    } else if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("reading the password from", "standard input", e))?;
        Secret::new(s.strip_suffix('\n').unwrap_or(&s).trim_end_matches('\r'))
    } else if let Some(f) = &args.password_file {
        read_secret_file(f, "password file")?
    } else {
        Secret::new(prompt("Password: ", true)?)
    };
    if password.is_empty() {
        return Err(Error::usage("the password is empty"));
    }
    let retry = crate::retry::RetryPolicy {
        max_retries: personality.default_retries(),
        fixed_delay: None,
    };
    let mut opts = ClientOptions {
        tls: TlsOptions::new(
            args.tls_verify.or(global.legacy_tls_verify),
            args.cert_dir.clone(),
            &global.env,
        ),
        credentials: Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        retry,
        ..ClientOptions::default()
    };
    if let Some(s) = global.stall_timeout.filter(|d| !d.is_zero()) {
        opts.stall_timeout = s;
    }
    let client = Client::new(&registry, opts)?;
    client.check_login().await?;
    let path = primary_auth_file(args.authfile.as_deref(), &global.env);
    let mut file = AuthFile::load(&path)?;
    file.set(&key, &username, &password);
    file.save()?;
    if args.verbose.unwrap_or(false) {
        println!("Used: {}", path.display());
    }
    println!("Login Succeeded!");
    Ok(())
}

fn compat_auth_file() -> Error {
    Error::Unsupported("--compat-auth-file (a Docker-compatible config file)".into())
}

pub(super) fn logout(args: LogoutArgs, env: &Environment) -> Result<()> {
    let _ = (&args.cert_dir, args.tls_verify);
    if args.compat_auth_file.is_some() {
        return Err(compat_auth_file());
    }
    let path = primary_auth_file(args.authfile.as_deref(), env);
    if args.all.unwrap_or(false) {
        if args.registry.is_some() {
            return Err(Error::usage("--all takes no registry"));
        }
        if path.exists() {
            let mut file = AuthFile::load(&path)?;
            file.remove_all();
            file.save()?;
        }
        println!("Removed login credentials for all registries");
        return Ok(());
    }
    let input = args.registry.expect("clap requires REGISTRY without --all");
    let (key, _) = credentials_key(&input)?;
    let mut file = AuthFile::load(&path)?;
    if !file.remove(&key) {
        return Err(Error::usage(format!("not logged into {key}")));
    }
    file.save()?;
    println!("Removed login credentials for {key}");
    Ok(())
}
