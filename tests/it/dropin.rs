//! ferry invoked as `skopeo`, beside skopeo 1.9.3 and 1.18, where a script would notice a
//! difference: skopeo's deprecated flag spellings, what `copy` and `sync` print and where,
//! the wording of messages scripts match, verbs ferry lacks, and what `--help` says about the
//! skopeo release ferry follows. (skopeo's own system tests: `skopeo_systemtests`.)

use crate::skopeo_systemtests::Who::{self, Ferry, Skopeo118, Skopeo193};
use crate::skopeo_systemtests::{ALL, CURRENT, run, said};
use crate::support::fixtures::*;
use crate::support::setup::Pair;
use crate::support::*;

const PLAIN: [&str; 2] = ["--src-tls-verify=false", "--dest-tls-verify=false"];

/// A Basic-auth registry with user `u`.
fn auth_registry(password: &str) -> Registry {
    Registry::start(RegistryOptions {
        auth: Auth::Basic(vec![("u".into(), password.into())]),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Deprecated spellings.

/// `--screds`/`--dcreds` (copy and sync) stand for `--src-creds`/`--dest-creds`.
#[test]
fn screds_and_dcreds_are_the_creds_flags() {
    let (src, dst) = (auth_registry("s3cret"), auth_registry("s3cret"));
    let fx = ImageSpec::oci().layers(&[1_000]).build();
    fx.seed(&src, "ns/app:v1");
    for who in ALL {
        let sb = Sandbox::new();
        let name = format!("{who:?}").to_lowercase();
        run(
            who,
            &sb,
            0,
            &[
                "copy",
                PLAIN[0],
                PLAIN[1],
                "--screds",
                "u:s3cret",
                "--dcreds=u:s3cret",
                &src.docker_ref("ns/app:v1"),
                &dst.docker_ref(&format!("copy/{name}:v1")),
            ],
        );
        assert_eq!(
            dst.manifest_digest(&format!("copy/{name}"), "v1")
                .as_deref(),
            Some(fx.digest.as_str())
        );
        run(
            who,
            &sb,
            0,
            &[
                "sync",
                "--src",
                "docker",
                "--dest",
                "docker",
                PLAIN[0],
                PLAIN[1],
                "--screds=u:s3cret",
                "--dcreds",
                "u:s3cret",
                &src.image("ns/app:v1"),
                &dst.image(&format!("sync/{name}")),
            ],
        );
        assert_eq!(
            dst.manifest_digest(&format!("sync/{name}/app"), "v1")
                .as_deref(),
            Some(fx.digest.as_str())
        );
        // A wrong password through the alias is refused: the alias really is the flag.
        let out = run(
            who,
            &sb,
            1,
            &[
                "copy",
                PLAIN[0],
                PLAIN[1],
                "--screds=u:wrong",
                "--dcreds=u:s3cret",
                &src.docker_ref("ns/app:v1"),
                &dst.docker_ref("copy/refused:v1"),
            ],
        );
        assert!(
            said(&out).contains("authentication required"),
            "{who:?}: {out}"
        );
    }
}

/// `copy --tls-verify=false` and `sync --tls-verify=false`: both sides, with skopeo's warning;
/// a side's own flag wins.
#[test]
fn tls_verify_on_copy_and_sync_is_both_sides() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = ImageSpec::oci().layers(&[1_000]).build();
    fx.seed(src, "ns/app:v1");
    let warning = "'--tls-verify' is deprecated, instead use: --src-tls-verify, --dest-tls-verify";
    for who in ALL {
        let sb = Sandbox::new();
        let name = format!("{who:?}").to_lowercase();
        let out = run(
            who,
            &sb,
            0,
            &[
                "copy",
                "--tls-verify=false",
                &src.docker_ref("ns/app:v1"),
                &dst.docker_ref(&format!("{name}/app:v1")),
            ],
        );
        assert!(said(&out).contains(warning), "{who:?}: {out}");
        assert_eq!(
            dst.manifest_digest(&format!("{name}/app"), "v1").as_deref(),
            Some(fx.digest.as_str())
        );
        let out = run(
            who,
            &sb,
            0,
            &[
                "sync",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--tls-verify=false",
                &src.image("ns/app:v1"),
                &dst.image(&format!("{name}-sync")),
            ],
        );
        assert!(said(&out).contains(warning), "{who:?}: {out}");
        assert!(
            dst.manifest_digest(&format!("{name}-sync/app"), "v1")
                .is_some()
        );
        // --dest-tls-verify=true wins over it: HTTPS is required of a plain-HTTP registry.
        run(
            who,
            &sb,
            1,
            &[
                "copy",
                "--tls-verify=false",
                "--dest-tls-verify=true",
                "--retry-times=0",
                &src.docker_ref("ns/app:v1"),
                &dst.docker_ref(&format!("{name}/refused:v1")),
            ],
        );
        assert_eq!(dst.manifest_digest(&format!("{name}/refused"), "v1"), None);
    }
}

/// A `--tls-verify` before the verb is every verb's default, with skopeo's warning; the verb's
/// own flag wins.
#[test]
fn tls_verify_before_the_verb_is_the_default() {
    let reg = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::oci().layers(&[1_000]).build();
    fx.seed(&reg, "ns/app:v1");
    let image = reg.docker_ref("ns/app:v1");
    for who in ALL {
        let sb = Sandbox::new();
        let out = run(
            who,
            &sb,
            0,
            &["--tls-verify=false", "inspect", "--raw", &image],
        );
        assert_eq!(out.stdout_bytes, fx.manifest, "{who:?}");
        assert!(
            said(&out).contains(
                "'--tls-verify' is deprecated, please set this on the specific subcommand"
            ),
            "{who:?}: {out}"
        );
        run(
            who,
            &sb,
            1,
            &[
                "--tls-verify=false",
                "inspect",
                "--tls-verify=true",
                "--retry-times=0",
                &image,
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What copy and sync print.

/// Lines of `text` with each run of consecutive `Copying blob` lines sorted (containers/image
/// starts blob copies concurrently; their order is not defined).
fn normalized(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut run: Vec<String> = vec![];
    for line in text.lines() {
        if line.starts_with("Copying blob ") {
            run.push(line.to_string());
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(line.to_string());
    }
    run.sort();
    out.append(&mut run);
    out
}

/// `copy` with `extra` flags, stdout and stderr.
fn copy_out(who: Who, extra: &[&str], src: &str, dst: &str) -> Output {
    run(
        who,
        &Sandbox::new(),
        0,
        &[&["copy", PLAIN[0], PLAIN[1]][..], extra, &[src, dst]].concat(),
    )
}

#[test]
fn copy_prints_skopeo_s_lines_on_stdout() {
    let src = Registry::start(RegistryOptions::default());
    let image = ImageSpec::docker().layers(&[1_000, 2_000, 3_000]).build();
    image.seed(&src, "ns/app:v1");
    let index = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[1_000])
        .own_layers(&[2_000])
        .build();
    index.seed(&src, "ns/index:v1");
    let cases: [(&str, &[&str], &str); 4] = [
        ("single", &[], "ns/app:v1"),
        ("all", &["--all"], "ns/index:v1"),
        ("index-only", &["--multi-arch=index-only"], "ns/index:v1"),
        ("quiet", &["-q"], "ns/app:v1"),
    ];
    for (case, extra, name) in cases {
        let mut stdout = vec![];
        for who in [Skopeo118, Ferry] {
            let dst = Registry::start(RegistryOptions::default());
            if case == "index-only" {
                // The children must be there already.
                index.seed(&dst, "ns/out:base");
            }
            let out = copy_out(
                who,
                extra,
                &src.docker_ref(name),
                &dst.docker_ref("ns/out:v1"),
            );
            assert_eq!(out.stderr, "", "{who:?} {case}: stderr stays empty");
            stdout.push(normalized(&out.stdout));
        }
        assert_eq!(
            stdout[1], stdout[0],
            "{case}: ferry prints what skopeo 1.18 prints"
        );
        match case {
            "single" => assert_eq!(stdout[1].len(), 6, "{:?}", stdout[1]),
            "quiet" => assert!(stdout[1].is_empty()),
            _ => assert!(stdout[1].len() > 3),
        }
    }
    // skopeo 1.9.3 says the same, with `Storing signatures` always.
    let dst = Registry::start(RegistryOptions::default());
    let old = copy_out(
        Skopeo193,
        &[],
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/a:1"),
    );
    let new = copy_out(
        Ferry,
        &[],
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/b:1"),
    );
    let mut expected = normalized(&new.stdout);
    expected.push("Storing signatures".into());
    assert_eq!(normalized(&old.stdout), expected);
    // Invoked as ferry, ferry's own output: one summary line on stdout, progress on stderr.
    let out = ferry()
        .args(["copy", PLAIN[0], PLAIN[1]])
        .arg(src.docker_ref("ns/app:v1"))
        .arg(dst.docker_ref("ns/c:1"))
        .run();
    out.assert_success();
    assert!(out.stdout.starts_with("Copied sha256:"), "{out}");
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert!(
        !out.stdout.contains("Getting image source signatures"),
        "{out}"
    );
    // Copied again, the image is already there: skopeo's line for that.
    let out = copy_out(
        Ferry,
        &[],
        &src.docker_ref("ns/app:v1"),
        &dst.docker_ref("ns/b:1"),
    );
    assert_eq!(
        out.stdout,
        "Getting image source signatures\nSkipping: image already present at destination\n"
    );
}

/// `sync`: each image's copy lines on stdout, skopeo's log lines (`Copying image ref …`,
/// `Synced …`) on stderr; the same as skopeo 1.18 but for the log lines' times.
#[test]
fn sync_prints_skopeo_s_lines() {
    let src = Registry::start(RegistryOptions::default());
    let fx = ImageSpec::docker().layers(&[1_000, 2_000]).build();
    fx.seed(&src, "ns/app:v1");
    let strip_time = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_once(" level=").map_or(l, |(_, r)| r).to_string())
            .collect()
    };
    let mut outs = vec![];
    for who in CURRENT {
        let dst = Registry::start(RegistryOptions::default());
        let out = run(
            who,
            &Sandbox::new(),
            0,
            &[
                "sync",
                "--src",
                "docker",
                "--dest",
                "docker",
                PLAIN[0],
                PLAIN[1],
                &src.image("ns/app:v1"),
                &dst.image("mirror"),
            ],
        );
        let stderr = strip_time(&out.stderr.replace(&dst.host(), "DEST"));
        outs.push((normalized(&out.stdout), stderr));
    }
    assert_eq!(outs[1].0, outs[0].0, "stdout");
    let skopeo: Vec<&String> = outs[0]
        .1
        .iter()
        .filter(|l| !l.contains("Tag presence check"))
        .collect();
    let ferry: Vec<String> = outs[1]
        .1
        .iter()
        .map(|l| l.replace(" already_present=0 copied=1 failed=0", ""))
        .collect();
    assert_eq!(ferry.iter().collect::<Vec<_>>(), skopeo, "stderr");
}

// ---------------------------------------------------------------------------------------------
// Messages, verbs, --help.

/// No image of the index for the wanted platform: containers/image's words (1.18's quoting).
#[test]
fn no_matching_platform_is_worded_as_skopeo_words_it() {
    let p = Pair::plain();
    let (src, dst) = (&p.src, &p.dst);
    let fx = IndexSpec::oci().platforms(2).own_layers(&[500]).build();
    fx.seed(src, "ns/app:v1");
    let words = r#"no image found in image index for architecture "s390x", variant "", OS "linux""#;
    for who in CURRENT {
        let out = run(
            who,
            &Sandbox::new(),
            1,
            &[
                "--override-arch=s390x",
                "copy",
                PLAIN[0],
                PLAIN[1],
                &src.docker_ref("ns/app:v1"),
                &dst.docker_ref("ns/app:v1"),
            ],
        );
        assert!(said(&out).contains(words), "{who:?}: {out}");
    }
    assert!(dst.requests().iter().all(|r| r.method != "PUT"));
}

/// The skopeo verbs ferry lacks answer as unsupported flags do.
#[test]
fn verbs_not_there_yet_are_refused_by_name() {
    for verb in [
        "layers",
        "experimental-image-proxy",
        "untrusted-signature-dump-without-verification",
        "completion",
    ] {
        // skopeo 1.18 has the verb.
        skopeo_current()
            .args([verb, "--help"])
            .run()
            .assert_success();
        let out = ferry_as_skopeo()
            .args([verb, "docker://r.example/a:1", "--some-flag"])
            .run();
        assert_eq!(out.code, Some(1), "{out}");
        let line = crate::faults::one_error_line(&out);
        assert!(
            line.contains(verb) && line.ends_with("is not supported yet"),
            "{out}"
        );
    }
}

/// `--help` says which skopeo release ferry follows and where 1.9.3 differs.
#[test]
fn help_names_the_skopeo_release_ferry_follows() {
    for mut tool in [ferry(), ferry_as_skopeo()] {
        let out = tool.arg("--help").run();
        out.assert_success();
        let help = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in [
            "ferry follows skopeo 1.18, not Debian 12's skopeo 1.9.3",
            "exit code 2 for a missing image (1.9.3: 1)",
            "--screds/--dcreds",
        ] {
            assert!(help.contains(needle), "{needle:?} in:\n{}", out.stdout);
        }
    }
}
