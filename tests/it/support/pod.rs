//! A container run the way the kubelet runs it, for the templates' pods (Tekton steps, the
//! mirror Job): a root filesystem of its own in which the pod's volumes are laid out at their
//! mount paths, the process started with exactly the container's environment, as an arbitrary
//! non-root uid with gid 0 (OpenShift's restricted SCC), in its own mount namespace.
//!
//! The root is a temp dir: `/usr/bin`, `/usr/lib`, … and `/etc/ssl` are the machine's (bind
//! mounts, read-only), `/usr/local/bin/ferry` is the binary under test and `skopeo` a link to
//! it (as in the agent image), `/dev` and `/proc` are mounted, everything else — `/etc/…`,
//! `/run/secrets/…`, `/var/run` (a link to `/run`), `/tekton/…`, `/workspace` — is the pod's.
//! ConfigMap and Secret volumes are laid out as the kubelet's atomic writer does (files are
//! links through `..data` into a timestamped folder). The mounts are made by `unshare --mount`
//! (private propagation: nothing leaks to the machine), then `chroot`, `setpriv` (the uid) and
//! `env -i` (the environment), all exec'd in turn: the container's process is the child's PID.
//! Needs root, as the rest of the lab's image tests.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Output, kill_with_parent};

/// The uid the container runs as (an OpenShift namespace's range), with gid 0.
pub const POD_UID: u32 = 1_000_650_000;

/// The image's `PATH` and `HOME` (the ferry agent image, on the Jenkins agent base).
const IMAGE_ENV: [(&str, &str); 2] = [
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/home/jenkins"),
];

/// The machine's folders the container sees, read-only.
const HOST_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/share",
    "/etc/ssl",
];

/// A pod's root filesystem.
pub struct PodFs {
    root: tempfile::TempDir,
}

/// Where a volume's files come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Volume {
    /// ConfigMap or Secret (read-only, atomic-writer layout).
    Projected,
    /// An emptyDir or a claim: a plain writable folder.
    Writable,
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn mkdir(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    chmod(p, mode);
}

impl Default for PodFs {
    fn default() -> Self {
        Self::new()
    }
}

impl PodFs {
    pub fn new() -> PodFs {
        let root = tempfile::Builder::new()
            .prefix("ferry-lab-pod-")
            .tempdir()
            .expect("pod root");
        let r = root.path();
        chmod(r, 0o755);
        for d in [
            "usr/local/bin",
            "etc",
            "dev",
            "proc",
            "run",
            "var",
            "tekton",
        ] {
            mkdir(&r.join(d), 0o755);
        }
        for d in ["tmp", "home/jenkins"] {
            mkdir(&r.join(d), 0o1777);
        }
        for d in HOST_DIRS {
            if Path::new(d).is_dir() {
                mkdir(&r.join(&d[1..]), 0o755);
            }
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("var/run", "../run"),
        ] {
            std::os::unix::fs::symlink(to, r.join(link)).expect("pod link");
        }
        std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ndefault:x:1001:0::/home/jenkins:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
        // The agent image's ferry, and skopeo as a link to it.
        std::fs::write(r.join("usr/local/bin/ferry"), b"").unwrap();
        chmod(&r.join("usr/local/bin/ferry"), 0o755);
        std::os::unix::fs::symlink("ferry", r.join("usr/local/bin/skopeo")).unwrap();
        PodFs { root }
    }

    /// The machine's path of the container's `path` (absolute in the container).
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.path().join(path.trim_start_matches('/'))
    }

    /// Lay out a volume at `mount_path` (absolute) with `files`.
    pub fn volume(&self, mount_path: &str, files: &[(String, Vec<u8>)], kind: Volume) {
        let dir = self.path(mount_path);
        match kind {
            Volume::Projected => {
                mkdir(&dir, 0o755);
                let stamp = "..2025_01_01_00_00_00.000000001";
                mkdir(&dir.join(stamp), 0o755);
                for (name, content) in files {
                    let f = dir.join(stamp).join(name);
                    std::fs::write(&f, content).unwrap();
                    // Kubernetes' defaultMode 0644.
                    chmod(&f, 0o644);
                    std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name))
                        .unwrap();
                }
                std::os::unix::fs::symlink(stamp, dir.join("..data")).unwrap();
            }
            Volume::Writable => {
                mkdir(&dir, 0o777);
                for (name, content) in files {
                    std::fs::write(dir.join(name), content).unwrap();
                }
            }
        }
        // Every folder on the way must be traversable by the pod's uid.
        let mut p = dir.parent();
        while let Some(d) = p {
            if d == self.root.path() {
                break;
            }
            chmod(d, 0o755);
            p = d.parent();
        }
    }

    /// A folder of the machine mounted at `mount_path` (a claim shared by several pods).
    pub fn shared(&self, mount_path: &str, host_dir: &Path) -> (PathBuf, PathBuf) {
        let target = self.path(mount_path);
        mkdir(&target, 0o777);
        (host_dir.to_path_buf(), target)
    }

    /// A file of the container, read after the run.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(path)).ok()
    }

    /// The command that runs `argv` in the pod with `env` (on top of the image's `PATH` and
    /// `HOME`) in `workdir`, with these claims mounted (machine folder, target in the root).
    pub fn command(
        &self,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        claims: &[(PathBuf, PathBuf)],
    ) -> Command {
        let r = self.root.path();
        mkdir(&self.path(workdir), 0o777);
        let mut setup = String::from("set -e\n");
        let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
        for d in HOST_DIRS {
            if Path::new(d).is_dir() {
                let t = r.join(&d[1..]);
                setup.push_str(&format!(
                    "mount --bind {d} {t}\nmount -o remount,bind,ro {t}\n",
                    t = q(&t)
                ));
            }
        }
        setup.push_str(&format!(
            "mount --bind {} {}\nmount -o remount,bind,ro {}\n",
            q(Path::new(env!("CARGO_BIN_EXE_ferry"))),
            q(&r.join("usr/local/bin/ferry")),
            q(&r.join("usr/local/bin/ferry"))
        ));
        for (host, target) in claims {
            setup.push_str(&format!("mount --bind {} {}\n", q(host), q(target)));
        }
        setup.push_str(&format!("mount --bind /dev {}\n", q(&r.join("dev"))));
        setup.push_str(&format!("mount -t proc proc {}\n", q(&r.join("proc"))));
        setup.push_str(&format!(
            "cd /\nexec chroot {} /usr/bin/setpriv --reuid={POD_UID} --regid=0 --clear-groups --inh-caps=-all --bounding-set=-all /usr/bin/env -i -C {} \"$@\"\n",
            q(r),
            q(Path::new(workdir))
        ));
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(setup)
            .arg("pod");
        let mut vars: Vec<(String, String)> = IMAGE_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in env {
            vars.retain(|(n, _)| n != k);
            vars.push((k.clone(), v.clone()));
        }
        for (k, v) in vars {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.args(argv);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/");
        cmd
    }

    /// Start `argv` in the pod; see [`Running`].
    pub fn spawn(
        &self,
        argv: &[String],
        env: &[(String, String)],
        workdir: &str,
        claims: &[(PathBuf, PathBuf)],
    ) -> Running {
        let mut cmd = self.command(argv, env, workdir, claims);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        kill_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("spawning unshare (util-linux)");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        Running {
            child,
            out_t: Some(out_t),
            err_t: Some(err_t),
            started: Instant::now(),
            line: argv.join(" "),
        }
    }

    /// Run `argv` in the pod to completion (killed after 3 minutes, which fails the test).
    pub fn run(&self, argv: &[String], env: &[(String, String)], workdir: &str) -> Output {
        self.spawn(argv, env, workdir, &[])
            .wait(super::tools::DEFAULT_TIMEOUT)
    }
}

/// A container process that is running.
pub struct Running {
    child: Child,
    out_t: Option<std::thread::JoinHandle<Vec<u8>>>,
    err_t: Option<std::thread::JoinHandle<Vec<u8>>>,
    started: Instant,
    line: String,
}

impl Running {
    /// The container's process (what the kubelet would kill).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as when the container is OOM-killed or its node goes away.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Wait for the end (killing it after `timeout`, which fails the test).
    pub fn wait(mut self, timeout: Duration) -> Output {
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the pod") {
                break s;
            }
            if self.started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let out = self.collect(None);
                panic!("pod process timed out after {timeout:?}:\n{out}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.collect(status.code())
    }

    fn collect(&mut self, code: Option<i32>) -> Output {
        let stdout = self
            .out_t
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        let stderr = self
            .err_t
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        Output {
            command: format!("(pod) {}", self.line),
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stdout_bytes: stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: self.started.elapsed(),
            max_rss_kib: 0,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.out_t.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kubernetes' expansion of `$(VAR)` in a container's command and args: a variable of the
/// container's environment is replaced, `$$` is a literal `$`, anything else stays as written.
pub fn expand_k8s(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'('
                && let Some(end) = s[i + 2..].find(')')
            {
                let name = &s[i + 2..i + 2 + end];
                if let Some((_, v)) = env.iter().rev().find(|(k, _)| k == name) {
                    out.push_str(v);
                    i += 3 + end;
                    continue;
                }
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[test]
fn kubernetes_expands_only_defined_variables() {
    let env = vec![("A".to_string(), "1".to_string())];
    assert_eq!(expand_k8s("x$(A)y", &env), "x1y");
    assert_eq!(expand_k8s("$(B)", &env), "$(B)");
    assert_eq!(expand_k8s("$$(A)", &env), "$(A)");
    assert_eq!(expand_k8s("a$", &env), "a$");
}
