//! `agent/Dockerfile` built for real, as OpenShift's Docker-strategy build would build it, with
//! Debian's buildah (as root, `--storage-driver vfs --isolation chroot`, its storage in a
//! temporary `--root`/`--runroot` removed afterwards), then checked, then pushed to the lab's
//! non-production registry and promoted to production by the end-to-end flow: the image the kit
//! ships is the image the test promotes.
//!
//! - **ferry**: the `prebuilt` path of the Dockerfile, with the binary of
//!   `cargo build --release --locked --offline` run in the build context `scripts/vendor`
//!   prepares (vendored crates, an empty `CARGO_HOME`: no crates registry) — the disconnected
//!   build, once per test run, into `target/agent-image/`.
//! - **The base**: registry.redhat.io is out of reach, so a stand-in is built from Debian
//!   packages installed on this machine, with the contract the Dockerfile and the agent rely on
//!   (see `agent/README.md`): busybox-static (a shell and coreutils), glibc and libgcc from
//!   `libc6` and `libgcc-s1` (the real base is a glibc distribution), user 1001 in group 0 with
//!   `HOME=/home/jenkins` writable by group 0, `USER 1001`, and the labels of a Red Hat product
//!   that the image's own labels must replace.
//!
//! The image's size is printed (`cargo test agent_image -- --nocapture` shows it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;
use std::os::unix::process::CommandExt;

use crate::e2e::{BUILDER_TOKEN, COMMIT, DEV, Flow};

const BASE: &str = "localhost/jenkins-agent-base-standin:v4.15.0";
const AGENT: &str = "localhost/ferry-agent:test";
const SOURCE_URL: &str = "https://git.example.com/platform/ferry.git";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(what: &str, out: &Output) -> String {
    format!(
        "{what}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn ok(what: &str, out: Output) -> String {
    assert!(out.status.success(), "{}", report(what, &out));
    String::from_utf8(out.stdout).unwrap()
}

/// ferry as a disconnected cluster builds it: vendored crates, `--offline`, no registry.
fn vendored_release_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let context = crate::vendor::vendored_context();
        let cargo_home = tempfile::tempdir().unwrap();
        let target = repo().join("target/agent-image/target");
        let out = Command::new(env!("CARGO"))
            .args(["build", "--release", "--locked", "--offline"])
            .current_dir(context)
            .env("CARGO_HOME", cargo_home.path())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        ok("cargo build --release --locked --offline (vendored)", out);
        target.join("release/ferry")
    })
}

/// buildah with its own vfs storage, removed with it.
struct Buildah {
    storage: tempfile::TempDir,
}

impl Buildah {
    fn new() -> Buildah {
        Buildah {
            storage: tempfile::Builder::new()
                .prefix("ferry-buildah-")
                .tempdir()
                .unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(self.storage.path().join("root"))
            .arg("--runroot")
            .arg(self.storage.path().join("runroot"))
            .args(["--storage-driver", "vfs"])
            .env("BUILDAH_ISOLATION", "chroot")
            .env("TMPDIR", self.storage.path());
        c
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        let out = match self.cmd().args(args).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "buildah is not installed. .ci/run installs it with: apt-get install buildah"
                )
            }
            Err(e) => panic!("buildah: {e}"),
        };
        ok(&format!("buildah {}", args.join(" ")), out)
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // Containers first (their vfs copies), then every image; the folder goes with TempDir.
        let _ = self.cmd().args(["rm", "--all"]).output();
        let _ = self.cmd().args(["rmi", "--all", "--force"]).output();
    }
}

/// The files of an installed Debian package under /lib, /lib64 and /usr/lib, copied into
/// `rootfs` with their links.
fn copy_package(package: &str, rootfs: &Path) {
    let out = Command::new("dpkg").args(["-L", package]).output().unwrap();
    let list = ok(&format!("dpkg -L {package}"), out);
    for line in list.lines() {
        let path = Path::new(line);
        let wanted = ["/lib/", "/lib64/", "/usr/lib/"]
            .iter()
            .any(|p| line.starts_with(p));
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !wanted || meta.is_dir() || line.contains("/gconv/") {
            continue;
        }
        let dest = rootfs.join(line.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(path).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(path, &dest).unwrap();
        }
    }
}

/// The stand-in for registry.redhat.io/ocp-tools-4/jenkins-agent-base-rhel8, from Debian
/// packages.
fn build_stand_in_base(buildah: &Buildah, dir: &Path) {
    let rootfs = dir.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (.ci/run installs busybox-static)");
    let applets = ok(
        "busybox --list",
        Command::new("/bin/busybox").arg("--list").output().unwrap(),
    );
    for applet in applets.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for package in ["libc6", "libgcc-s1"] {
        copy_package(package, &rootfs);
    }
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\njenkins:x:1001:0:Jenkins agent:/home/jenkins:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    for d in ["home/jenkins", "tmp", "usr/local/bin"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("Containerfile"),
        r#"FROM scratch
COPY rootfs/ /
RUN chown 1001:0 /home/jenkins && chmod 0775 /home/jenkins && chmod 1777 /tmp
ENV HOME=/home/jenkins PATH=/usr/local/bin:/usr/bin:/bin
LABEL name="ocp-tools-4/jenkins-agent-base-rhel8" \
      vendor="Red Hat, Inc." \
      com.redhat.component="jenkins-agent-base-rhel8-container" \
      release="1730196763" \
      version="v4.15.0" \
      summary="Provides the latest release of the Red Hat Jenkins agent base image." \
      description="The Jenkins agent base image (a stand-in of the test suite)." \
      url="https://access.redhat.com/containers/#/registry.access.redhat.com/ocp-tools-4/jenkins-agent-base-rhel8/images/v4.15.0-1730196763" \
      io.k8s.display-name="Jenkins Agent Base" \
      io.openshift.tags="openshift,jenkins,agent" \
      architecture="x86_64"
USER 1001
"#,
    )
    .unwrap();
    buildah.run(&[
        "bud",
        "--isolation",
        "chroot",
        "-f",
        &dir.join("Containerfile").to_string_lossy(),
        "-t",
        BASE,
        &dir.to_string_lossy(),
    ]);
}

/// The build context of a `prebuilt` build: what the Dockerfile needs, nothing more.
fn prebuilt_context(dir: &Path) -> PathBuf {
    let context = dir.join("context");
    std::fs::create_dir_all(context.join("agent/prebuilt")).unwrap();
    std::fs::copy(
        repo().join("agent/Dockerfile"),
        context.join("agent/Dockerfile"),
    )
    .unwrap();
    std::fs::copy(repo().join(".dockerignore"), context.join(".dockerignore")).unwrap();
    std::fs::copy(
        repo().join("agent/prebuilt/README.md"),
        context.join("agent/prebuilt/README.md"),
    )
    .unwrap();
    std::fs::copy(
        vendored_release_binary(),
        context.join("agent/prebuilt/ferry"),
    )
    .unwrap();
    context
}

fn inspect(buildah: &Buildah, image: &str) -> Value {
    serde_json::from_str(&buildah.run(&["inspect", "--type", "image", image])).unwrap()
}

#[test]
fn agent_image_builds_runs_as_1001_says_what_it_is_and_is_promoted() {
    let work = tempfile::tempdir().unwrap();
    let buildah = Buildah::new();
    build_stand_in_base(&buildah, &work.path().join("base"));
    let context = prebuilt_context(work.path());

    buildah.run(&[
        "bud",
        "--isolation",
        "chroot",
        "--pull-never",
        "-f",
        &context.join("agent/Dockerfile").to_string_lossy(),
        "--build-arg",
        &format!("BASE_IMAGE={BASE}"),
        "--build-arg",
        "FERRY_FROM=prebuilt",
        "--build-arg",
        &format!("SOURCE_URL={SOURCE_URL}"),
        "-t",
        AGENT,
        &context.to_string_lossy(),
    ]);

    // The configuration: user 1001, the image's own labels over the base's.
    let image = inspect(&buildah, AGENT);
    let config = &image["OCIv1"]["config"];
    assert_eq!(config["User"], "1001");
    let labels = config["Labels"].as_object().unwrap();
    let label = |k: &str| labels.get(k).and_then(Value::as_str).unwrap_or("");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(label("name"), "ferry-jenkins-agent");
    assert_eq!(label("version"), version);
    assert_eq!(label("release"), version);
    assert_eq!(label("org.opencontainers.image.version"), version);
    assert_eq!(label("com.redhat.component"), "ferry-jenkins-agent");
    assert_eq!(label("vendor"), "ferry promotion kit");
    assert_eq!(label("url"), SOURCE_URL);
    assert_eq!(label("org.opencontainers.image.source"), SOURCE_URL);
    assert!(label("summary").contains("ferry"), "{labels:?}");
    assert!(label("io.openshift.tags").split(',').any(|t| t == "ferry"));
    for (k, v) in labels {
        let v = v.as_str().unwrap();
        assert!(
            !v.contains("Red Hat") && !v.contains("jenkins-agent-base"),
            "label {k}={v} is the base image's"
        );
    }

    // Inside, as OpenShift runs it (uid 1001, group 0, HOME from the base).
    let ctr = buildah.run(&["from", "--pull-never", AGENT]);
    let ctr = ctr.trim();
    let in_image = |cmd: &[&str]| {
        let mut args = vec![
            "run",
            "--isolation",
            "chroot",
            "--user",
            "1001:0",
            ctr,
            "--",
        ];
        args.extend_from_slice(cmd);
        buildah.run(&args)
    };
    let host_version = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg0(name)
            .arg("--version")
            .output()
            .unwrap();
        ok("ferry --version", out)
    };
    let ferry_version = in_image(&["ferry", "--version"]);
    assert_eq!(ferry_version, host_version("ferry"));
    assert!(ferry_version.contains(version), "{ferry_version}");
    let skopeo_version = in_image(&["skopeo", "--version"]);
    assert_eq!(skopeo_version, host_version("skopeo"));
    // ferry answers to the name skopeo (its own version: skopeo prints "skopeo version X").
    assert!(
        skopeo_version.starts_with("skopeo ") && skopeo_version.contains(version),
        "{skopeo_version}"
    );
    assert_eq!(in_image(&["id", "-u"]).trim(), "1001");
    assert_eq!(
        in_image(&["sh", "-c", "echo $HOME"]).trim(),
        "/home/jenkins"
    );
    assert_eq!(
        in_image(&["readlink", "/usr/local/bin/skopeo"]).trim(),
        "ferry"
    );
    assert_eq!(
        in_image(&["sh", "-c", "command -v skopeo"]).trim(),
        "/usr/local/bin/skopeo"
    );

    // The files: ferry from the build, no trust policy baked in (the cluster mounts one).
    let mount = buildah.run(&["mount", ctr]);
    let root = Path::new(mount.trim());
    assert_eq!(
        std::fs::read(root.join("usr/local/bin/ferry")).unwrap(),
        std::fs::read(vendored_release_binary()).unwrap()
    );
    for policy in [
        "etc/containers/policy.json",
        "home/jenkins/.config/containers/policy.json",
        "etc/ferry",
    ] {
        assert!(
            std::fs::symlink_metadata(root.join(policy)).is_err(),
            "{policy} is in the image"
        );
    }
    buildah.run(&["umount", ctr]);

    // The image's size, as buildah shows it (uncompressed); the pushed size follows below.
    let size = |image: &str| -> String {
        let images: Value =
            serde_json::from_str(&buildah.run(&["images", "--json", image])).unwrap();
        images[0]["size"].as_str().unwrap_or_default().to_string()
    };
    let base_layers = inspect(&buildah, BASE)["OCIv1"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .len();
    eprintln!(
        "agent image: {} (stand-in base {}; ferry binary {:.1} MiB)",
        size(AGENT),
        size(BASE),
        std::fs::metadata(vendored_release_binary()).unwrap().len() as f64 / 1048576.0
    );

    // Pushed into non-production as CI pushes an image, then promoted by the flow.
    let flow = Flow::start();
    let auth = work.path().join("auth.json");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("serviceaccount:{BUILDER_TOKEN}"));
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#,
            flow.nonprod.host()
        ),
    )
    .unwrap();
    let digestfile = work.path().join("digest");
    buildah.run(&[
        "push",
        "--authfile",
        &auth.to_string_lossy(),
        "--cert-dir",
        &flow.nonprod.cert_dir().unwrap().to_string_lossy(),
        "--digestfile",
        &digestfile.to_string_lossy(),
        AGENT,
        &format!("docker://{}/{DEV}/app:{COMMIT}", flow.nonprod.host()),
    ]);
    let pushed = std::fs::read_to_string(&digestfile)
        .unwrap()
        .trim()
        .to_string();
    let manifest = flow
        .nonprod
        .get_manifest(&format!("{DEV}/app"), COMMIT)
        .expect("the pushed image");
    assert_eq!(manifest.digest, pushed);
    let layers: Vec<u64> = serde_json::from_slice::<Value>(&manifest.bytes).unwrap()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect();
    assert!(layers.len() > base_layers, "no layer over the base");
    let mib = |n: u64| n as f64 / 1048576.0;
    eprintln!(
        "agent image pushed: {pushed}, {:.1} MiB of compressed layers, {:.1} MiB of them over the base",
        mib(layers.iter().sum()),
        mib(layers[base_layers..].iter().sum())
    );

    let (_, out, record) = flow.run(&[]);
    out.assert_success();
    assert_eq!(flow.prod_digest().as_deref(), Some(pushed.as_str()));
    assert_eq!(record.unwrap()["destination_digest"], pushed.as_str());
}
