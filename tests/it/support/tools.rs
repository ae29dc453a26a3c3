//! Running skopeo and ferry as subprocesses in an isolated environment.
//!
//! A [`Sandbox`] is a temp dir used as `HOME`, `XDG_RUNTIME_DIR` and `TMPDIR`; commands start
//! with an empty environment plus those, `PATH`, and `RUST_BACKTRACE`/`RUST_LOG` for ferry when
//! set in the test's environment. So no auth file, proxy, `REGISTRY_AUTH_FILE`,
//! `DOCKER_CONFIG` or registries.conf of the machine's user leaks in. Tools sharing one sandbox
//! share its auth files (e.g. `login` then `copy`).

use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::kill_with_parent;

/// The default limit for one tool run; a run that takes longer is killed and the test fails.
/// A hang guard, not a timing assertion: generous, so that a loaded machine does not hit it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// An isolated `HOME`/`XDG_RUNTIME_DIR`/`TMPDIR` for tool runs.
#[derive(Clone)]
pub struct Sandbox {
    dir: Arc<tempfile::TempDir>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("ferry-lab-sandbox-")
            .tempdir()
            .expect("creating sandbox");
        for sub in ["home", "run", "tmp", "bin"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("sandbox dirs");
        }
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod XDG_RUNTIME_DIR");
        Sandbox { dir: Arc::new(dir) }
    }

    /// `HOME` of the tools.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `XDG_RUNTIME_DIR` of the tools (skopeo keeps `containers/auth.json` there).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A scratch directory inside the sandbox, for files a test hands to the tools.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `skopeo --insecure-policy …` (the lab's images are unsigned; the machine's policy.json is
    /// not consulted).
    pub fn skopeo(&self) -> Tool {
        let mut t = self.skopeo_strict();
        t.arg("--insecure-policy");
        t
    }

    /// `skopeo` (Debian's 1.9.3) without `--insecure-policy`: for tests that give a policy.
    pub fn skopeo_strict(&self) -> Tool {
        let mut t = self.tool("skopeo", Path::new("skopeo"));
        // As root, skopeo keeps its blob info cache (where blobs were seen: used for mounts and
        // reuse) in /var/lib/containers/cache, shared by every test and locked per process.
        // A non-zero "rootless" uid moves it (and the default sigstore) under the sandbox's
        // HOME, so each run starts with an empty cache and runs do not wait on each other.
        t.env("_CONTAINERS_ROOTLESS_UID", "1000");
        t
    }

    /// Current skopeo (1.18, through `scripts/skopeo-current`, or the script
    /// `$FERRY_SKOPEO_CURRENT` names), isolated as [`Sandbox::skopeo`] is: the oracle where
    /// Debian's 1.9.3 and current skopeo differ (ferry follows 1.18).
    pub fn skopeo_current(&self) -> Tool {
        let mut t = self.skopeo_current_strict();
        t.arg("--insecure-policy");
        t
    }

    /// Current skopeo without `--insecure-policy`: for tests that give a policy.
    pub fn skopeo_current_strict(&self) -> Tool {
        let mut t = self.tool("skopeo-1.18", skopeo_current_wrapper());
        t.env("_CONTAINERS_ROOTLESS_UID", "1000");
        t
    }

    /// The ferry binary under test, invoked as `ferry`.
    pub fn ferry(&self) -> Tool {
        self.tool("ferry", Path::new(env!("CARGO_BIN_EXE_ferry")))
    }

    /// The ferry binary invoked through a symlink named `skopeo` (as in the agent image).
    pub fn ferry_as_skopeo(&self) -> Tool {
        let link = self.dir.path().join("bin").join("skopeo");
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferry"), &link)
                .expect("symlinking skopeo -> ferry");
        }
        self.tool("ferry-as-skopeo", &link)
    }

    fn tool(&self, name: &str, program: &Path) -> Tool {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("TMPDIR", self.dir.path().join("tmp"))
            .current_dir(self.dir.path());
        if name != "skopeo" {
            for var in ["RUST_BACKTRACE", "RUST_LOG"] {
                if let Some(v) = std::env::var_os(var) {
                    cmd.env(var, v);
                }
            }
        }
        Tool {
            name: name.to_string(),
            cmd,
            args: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            _sandbox: self.clone(),
        }
    }
}

/// A `skopeo` wrapper for current skopeo, written once per test process (the script fetches
/// skopeo 1.18 into its cache the first time; `scripts/test` does that up front).
fn skopeo_current_wrapper() -> &'static Path {
    static WRAPPER: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(|| {
        let script = std::env::var_os("FERRY_SKOPEO_CURRENT").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/skopeo-current"),
            PathBuf::from,
        );
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("skopeo-current-{}", std::process::id()));
        let out = Command::new(&script)
            .arg("--install-wrapper")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e} (see scripts/test)", script.display()));
        assert!(
            out.status.success(),
            "{} --install-wrapper failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("skopeo")
    });
    &WRAPPER
}

/// Current skopeo (1.18) in a fresh [`Sandbox`].
pub fn skopeo_current() -> Tool {
    Sandbox::new().skopeo_current()
}

/// `skopeo` in a fresh [`Sandbox`].
pub fn skopeo() -> Tool {
    Sandbox::new().skopeo()
}

/// `ferry` in a fresh [`Sandbox`].
pub fn ferry() -> Tool {
    Sandbox::new().ferry()
}

/// ferry as `skopeo` (symlink) in a fresh [`Sandbox`].
pub fn ferry_as_skopeo() -> Tool {
    Sandbox::new().ferry_as_skopeo()
}

/// A command to run once; keeps its sandbox alive.
pub struct Tool {
    name: String,
    cmd: Command,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    _sandbox: Sandbox,
}

impl Tool {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Bytes to feed on stdin (otherwise stdin is /dev/null).
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Escape hatch to the underlying command.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Run to completion (killed after the timeout, which fails the test) and collect output.
    pub fn run(&mut self) -> Output {
        self.run_with(None)
    }

    /// Run with stderr on a pseudo-terminal of 120 columns, as in an interactive shell;
    /// `Output::stderr` is what the terminal received (escape sequences included).
    pub fn run_on_terminal(&mut self) -> Output {
        let (master, slave) = open_pty();
        self.run_with(Some((master, slave)))
    }

    fn run_with(&mut self, pty: Option<(std::fs::File, std::os::fd::OwnedFd)>) -> Output {
        let started = Instant::now();
        let (master, stderr) = match pty {
            Some((master, slave)) => (Some(master), Stdio::from(slave)),
            None => (None, Stdio::piped()),
        };
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(stderr);
        kill_with_parent(&mut self.cmd);
        // Reaped below with wait4 (for its peak memory), which clippy does not see.
        #[allow(clippy::zombie_processes)]
        let mut child = self.cmd.spawn().unwrap_or_else(|e| {
            let hint = if self.name == "skopeo" {
                " (run `.ci/run` or `apt-get install -y skopeo`)"
            } else {
                ""
            };
            panic!("spawning {}: {e}{hint}", self.name)
        });
        let stdin = child
            .stdin
            .take()
            .zip(self.stdin.clone())
            .map(|(mut pipe, bytes)| {
                std::thread::spawn(move || {
                    let _ = pipe.write_all(&bytes);
                })
            });
        // The command keeps its copy of the terminal's other end until its stdio is reset:
        // reset it now, so that reading the terminal ends (EIO) when the child is gone.
        self.cmd.stderr(Stdio::null());
        let mut out = child.stdout.take().unwrap();
        let mut err: Box<dyn Read + Send> = match master {
            Some(m) => Box::new(m),
            None => Box::new(child.stderr.take().unwrap()),
        };
        let out_t = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let err_t = std::thread::spawn(move || {
            let mut buf = Vec::new();
            // A terminal's reader gets EIO, not EOF, once the last writer is gone: keep
            // what was read before it.
            let mut chunk = [0u8; 8192];
            loop {
                match err.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf
        });
        // wait4 rather than try_wait: it also gives the child's peak resident memory.
        let pid = child.id() as libc::pid_t;
        // SAFETY: rusage is plain old data; zero is a valid value.
        #[allow(unsafe_code)]
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let status: std::process::ExitStatus = loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: pid is our own child, not yet reaped; the out-pointers are valid.
            #[allow(unsafe_code)]
            let r = unsafe { libc::wait4(pid, &mut raw, libc::WNOHANG, &mut usage) };
            if r == pid {
                break std::os::unix::process::ExitStatusExt::from_raw(raw);
            }
            assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out_t.join().unwrap_or_default();
                let stderr = err_t.join().unwrap_or_default();
                panic!(
                    "{} timed out after {:?}\nstdout:\n{}\nstderr:\n{}",
                    self.command_line(),
                    self.timeout,
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(t) = stdin {
            let _ = t.join();
        }
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        Output {
            command: self.command_line(),
            code: status.code(),
            stdout_bytes: stdout.clone(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: started.elapsed(),
            max_rss_kib: usage.ru_maxrss as u64,
        }
    }

    /// `name arg…` for messages.
    pub fn command_line(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// A pseudo-terminal: the reading end, and the end a child writes to (which makes it a TTY).
fn open_pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two file descriptors into the out-pointers; the name and
    // termios pointers may be null.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    #[allow(unsafe_code)]
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// What a tool run produced.
#[derive(Clone)]
pub struct Output {
    pub command: String,
    /// Exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    /// stdout exactly as written (for binary output such as `inspect --raw`).
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    /// The process's peak resident memory (`ru_maxrss` from `wait4`), KiB.
    pub max_rss_kib: u64,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the full output unless the exit code was 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Panics with the full output unless the command failed (non-zero exit).
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(
            self.code.is_some() && !self.success(),
            "expected failure (non-zero exit):\n{self}"
        );
        self
    }

    /// Panics unless the command failed and stderr contains one of `needles` (case-insensitive).
    #[track_caller]
    pub fn assert_failure_with(&self, needles: &[&str]) -> &Self {
        self.assert_failure();
        let err = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| err.contains(&n.to_lowercase())),
            "expected stderr to mention one of {needles:?}:\n{self}"
        );
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit: {:?} after {:?}", self.code, self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
