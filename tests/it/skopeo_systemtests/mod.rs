//! skopeo's own system tests (containers/skopeo v1.18.0, `systemtest/*.bats`), re-expressed
//! against the lab's registries instead of podman and the internet, with ferry invoked as
//! `skopeo` (a symlink). Each case names the bats file and test it comes from, and runs side by
//! side with Debian's skopeo 1.9.3 and current skopeo 1.18 ([`Who`]); where 1.9.3 behaves
//! differently from current skopeo (exit code 2 for a missing image, message wording), that
//! step runs with 1.18 and ferry only.
//!
//! What changes in the re-expression, everywhere:
//! - `quay.io/libpod/…` images are lab fixtures of the same kind (busybox: a Docker v2s2
//!   image; alpine_labels: with labels and a `docker_version`; notmyarch: a manifest list of
//!   amigaos/mc68000/1000 only), seeded into a "remote" plain-HTTP registry, so commands that
//!   read from it carry `--src-tls-verify=false` (`--tls-verify=false` for one-image verbs);
//! - `localhost:5000` (podman's `registry:2.8.2`) is Debian's `docker-registry` 2.8 on
//!   `127.0.0.1:PORT` (`localhost:PORT` where its certificate names `localhost`);
//! - `podman login`/`logout` are `skopeo login`/`logout`;
//! - `expect_output --substring` looks at stdout and stderr together, in which skopeo's logrus
//!   lines (`level=fatal msg="…"`) are read with their `msg` unquoted, and ferry's `Error: …`
//!   without its prefix ([`said`]);
//! - every tool has `--insecure-policy` (the bats rely on the machine's accept-anything
//!   policy), except where a case gives its own policy.
//!
//! Where the cases stand (pass = runs here and passes for all three tools):
//!
//! | bats | test | here |
//! |---|---|---|
//! | 001-basic | skopeo version emits reasonable output | pass |
//! | 010-inspect | inspect: basic | pass (registry to registry, and through `dir:`) |
//! | 010-inspect | inspect: env | pass |
//! | 010-inspect | inspect: image manifest list w/ diff platform | pass (message: 1.18 and ferry) |
//! | 010-inspect | inspect: don't list tags | pass |
//! | 010-inspect | inspect: image unknown | impossible: `containers-storage:` needs a container store (podman's); ferry refuses that transport by name |
//! | 020-copy | copy: dir, round trip | pass |
//! | 020-copy | copy: oci, round trip | pass |
//! | 020-copy | copy: oci, zstd | pass (ferry converts to OCI for zstd layers, as skopeo) |
//! | 020-copy | copy: oci w/ and w/o tags | pass |
//! | 020-copy | copy: registry -> storage -> oci-archive | impossible: `containers-storage:` (podman's store) |
//! | 020-copy | copy: bug 651 | skipped upstream; runs here (registry to registry) and passes |
//! | 020-copy | copy: manifest format | pass |
//! | 020-copy | copy: additional tag | pass (the archive's `RepoTags` read instead of `podman load`) |
//! | 020-copy | copy: shared blob directory | `--src-shared-blob-dir`/`--dest-shared-blob-dir` are not implemented (refused by name; ignored test) |
//! | 020-copy | copy: sif image | impossible: the `sif:` transport (and fakeroot) — not a transport ferry plans |
//! | 030-local-registry-tls | local registry, with cert | pass (into a registry and into `dir:`) |
//! | 040-local-registry-auth | auth: credentials on command line | pass (exit 2: 1.18 and ferry) |
//! | 040-local-registry-auth | auth: credentials via podman login | pass (`skopeo login`) |
//! | 040-local-registry-auth | auth: copy with --src-creds and --dest-creds | pass (into a registry and into `dir:`) |
//! | 040-local-registry-auth | auth: credentials via authfile | pass (`skopeo login --authfile`) |
//! | 050-signing | signing | the policy's `reject` and `insecureAcceptAnything` rows pass; the signed rows wait for `copy --sign-by` and signature checks during `copy` (issue 16), lookaside storage (issue 15) and `dir:` (issue 14) |
//! | 050-signing | signing: remove signature | waits for `copy --sign-by` (issue 16), lookaside storage (issue 15), `dir:` (issue 14) |
//! | 050-signing | signing: standalone | pass (the manifest from `inspect --raw`; `dir:`'s `manifest.json` upstream) |
//! | 060-delete | delete: remove image from registry | pass (exit 2: 1.18 and ferry) |
//! | 070-list-tags | list-tags: remote repository on a registry | pass |
//! | 070-list-tags | list-tags: from a docker-archive file | waits for `docker-archive:` (issue 14) and upstream's `testdata/docker-two-images.tar.xz` |
//! | 080-sync | sync: --dry-run | pass (to `docker` and to `dir`) |

mod copy;
mod inspect;
mod registries;
mod signing;

use crate::support::fixtures::*;
use crate::support::*;

/// One of the tools run side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    /// Debian 12's skopeo 1.9.3.
    Skopeo193,
    /// Current skopeo (1.18).
    Skopeo118,
    /// ferry, invoked as `skopeo`.
    Ferry,
}

use Who::*;

/// All three.
pub(crate) const ALL: [Who; 3] = [Skopeo193, Skopeo118, Ferry];
/// Where skopeo 1.9.3 behaves differently from current skopeo.
pub(crate) const CURRENT: [Who; 2] = [Skopeo118, Ferry];

impl Who {
    /// `skopeo --insecure-policy` as this tool, in `sb`.
    pub(crate) fn skopeo(self, sb: &Sandbox) -> Tool {
        match self {
            Skopeo193 => sb.skopeo(),
            Skopeo118 => sb.skopeo_current(),
            Ferry => {
                let mut t = sb.ferry_as_skopeo();
                t.arg("--insecure-policy");
                t
            }
        }
    }

    /// `skopeo` as this tool, without `--insecure-policy` (the case gives a policy).
    pub(crate) fn skopeo_strict(self, sb: &Sandbox) -> Tool {
        match self {
            Skopeo193 => sb.skopeo_strict(),
            Skopeo118 => sb.skopeo_current_strict(),
            Ferry => sb.ferry_as_skopeo(),
        }
    }
}

/// bats' `run_skopeo RC ARGS…`: run in `sb` and check the exit code.
#[track_caller]
pub(crate) fn run(who: Who, sb: &Sandbox, rc: i32, args: &[&str]) -> Output {
    let out = who.skopeo(sb).args(args).run();
    assert_eq!(
        out.code,
        Some(rc),
        "{who:?}, expected exit code {rc}:\n{out}"
    );
    out
}

/// bats' `$output` for `expect_output --substring`: stdout, then stderr with skopeo's logrus
/// lines as their unquoted message (and fields as written) and ferry's `Error: ` prefix gone.
pub(crate) fn said(out: &Output) -> String {
    let mut text = out.stdout.clone();
    for line in out.stderr.lines() {
        let line = match line.split_once(" msg=\"") {
            Some((_, rest)) if line.starts_with("time=") => {
                let (msg, fields) = go_unquote(rest);
                format!("{msg}{fields}")
            }
            _ => line.strip_prefix("Error: ").unwrap_or(line).to_string(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Go's quoted string after its opening quote: the unquoted text and what follows it.
fn go_unquote(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('x') => {
                    let hex: String = (0..2)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?') as char);
                }
                Some(e) => out.push(e),
                None => {}
            },
            c => out.push(c),
        }
    }
    (out, "")
}

/// bats' `expect_output --substring`.
#[track_caller]
pub(crate) fn expect_substring(who: Who, out: &Output, needle: &str) {
    assert!(
        said(out).contains(needle),
        "{who:?}: expected output to contain {needle:?}:\n{out}"
    );
}

/// The "remote" registry of a case (quay.io in the bats), holding `name` (`ns/app:tag`) as a
/// Docker v2s2 image like quay.io/libpod/busybox.
pub(crate) fn remote_with(name: &str) -> (Registry, Fixture) {
    let remote = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::docker().layers(&[2_000, 30_000]).build();
    fx.seed(&remote, name);
    (remote, fx)
}

/// A plain-HTTP registry (podman's `registry:2.8.2` of the bats, deletes enabled).
pub(crate) fn local() -> Registry {
    Registry::start(RegistryOptions::default())
}

// ---------------------------------------------------------------------------------------------
// 001-basic.bats

/// 001-basic.bats, "skopeo version emits reasonable output"; and ferry names the release it
/// follows, which is current skopeo's, then itself.
#[test]
fn basic_skopeo_version_emits_reasonable_output() {
    let re = regex::Regex::new(r"skopeo version [0-9.]+").unwrap();
    let mut versions = vec![];
    for who in ALL {
        let out = run(who, &Sandbox::new(), 0, &["--version"]);
        assert!(re.is_match(&out.stdout), "{who:?}: {out}");
        versions.push(out.stdout.trim().to_string());
    }
    assert_eq!(
        versions[2],
        format!("{} (ferry {})", versions[1], env!("CARGO_PKG_VERSION")),
        "ferry follows current skopeo"
    );
    // Invoked as ferry, its own name.
    let out = ferry().arg("--version").run();
    assert_eq!(
        out.stdout,
        format!("ferry {}\n", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// 060-delete.bats

/// 060-delete.bats, "delete: remove image from registry". The missing image then exits 2 with
/// current skopeo and ferry (1.9.3: 1).
#[test]
fn delete_remove_image_from_registry() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let remote_image = remote.docker_ref("libpod/busybox:latest");
    for who in ALL {
        let reg = local();
        let localimg = reg.docker_ref("busybox:unsigned");
        let sb = Sandbox::new();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote_image,
                &localimg,
            ],
        );
        let out = run(
            who,
            &sb,
            0,
            &["inspect", "--tls-verify=false", "--raw", &localimg],
        );
        assert!(
            out.stdout
                .contains("vnd.docker.distribution.manifest.v2+json"),
            "{who:?}: {out}"
        );
        run(who, &sb, 0, &["delete", "--tls-verify=false", &localimg]);
        // make sure image is removed from registry
        let rc = if who == Skopeo193 { 1 } else { 2 };
        run(who, &sb, rc, &["inspect", "--tls-verify=false", &localimg]);
        assert_eq!(reg.manifest_digest("busybox", "unsigned"), None);
    }
}

// ---------------------------------------------------------------------------------------------
// 070-list-tags.bats

/// 070-list-tags.bats, "list-tags: remote repository on a registry"; the three print the same
/// JSON.
#[test]
fn list_tags_remote_repository_on_a_registry() {
    let (remote, fx) = remote_with("libpod/alpine_labels:latest");
    fx.seed(&remote, "libpod/alpine_labels:v3.19");
    let remote_image = remote.image("libpod/alpine_labels");
    let mut outputs = vec![];
    for who in ALL {
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{remote_image}"),
            ],
        );
        expect_substring(who, &out, &remote_image);
        expect_substring(who, &out, "latest");
        outputs.push(out.stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[1], outputs[2]);
}

// ---------------------------------------------------------------------------------------------
// 080-sync.bats

/// 080-sync.bats, "sync: --dry-run", to a registry (`--dest docker`) instead of a directory:
/// the same lines, `to="docker://…"`, and nothing written. Without `--scoped`: scoped under a
/// registry, the source's `HOST:PORT` would be a path component, which no reference allows
/// (skopeo refuses it too; the lab's registries all have ports).
#[test]
fn sync_dry_run() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let remote_image = remote.image("libpod/busybox:latest");
    for who in ALL {
        let dest = local();
        let dir = dest.image("mirror");
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "sync",
                "--dry-run",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &remote_image,
                &dir,
            ],
        );
        expect_substring(who, &out, "Would have copied image");
        expect_substring(
            who,
            &out,
            &format!("from=\"docker://{remote_image}\" to=\"docker://{dir}/busybox:latest\""),
        );
        expect_substring(who, &out, "Would have synced 1 images from 1 sources");
        assert!(dest.requests().is_empty(), "{who:?} wrote: {out}");
    }
}

/// 080-sync.bats, "sync: --dry-run", as upstream: `--dest dir`.
#[test]
fn sync_dry_run_to_dir() {
    let (remote, _) = remote_with("libpod/busybox:latest");
    let remote_image = remote.image("libpod/busybox:latest");
    for who in ALL {
        let sb = Sandbox::new();
        let dir = sb.path().join("dir").display().to_string();
        let out = run(
            who,
            &sb,
            0,
            &[
                "sync",
                "--dry-run",
                "--src",
                "docker",
                "--dest",
                "dir",
                "--scoped",
                "--src-tls-verify=false",
                &remote_image,
                &dir,
            ],
        );
        expect_substring(who, &out, "Would have copied image");
        expect_substring(
            who,
            &out,
            &format!("from=\"docker://{remote_image}\" to=\"dir:{dir}/{remote_image}\""),
        );
        expect_substring(who, &out, "Would have synced 1 images from 1 sources");
    }
}
