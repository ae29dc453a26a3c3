//! The disconnected build's crates: `scripts/vendor` prepares the agent image's build context
//! with `cargo vendor --locked`, and the result is exactly Cargo.lock — every registry package
//! once, at its version, with Cargo.lock's checksum — and resolves with no crates registry and
//! no cache at all (`cargo metadata --offline` with an empty `CARGO_HOME`). `agent_image.rs`
//! then builds ferry from this context, offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use regex::Regex;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name-version` → checksum of every registry package of Cargo.lock.
fn lock_packages(lock: &str) -> BTreeMap<String, String> {
    let package = Regex::new(
        r#"(?m)^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry\+[^"]+"\nchecksum = "([0-9a-f]{64})"$"#,
    )
    .unwrap();
    package
        .captures_iter(lock)
        .map(|c| (format!("{}-{}", &c[1], &c[2]), c[3].to_string()))
        .collect()
}

/// How a prepared context differs from Cargo.lock (nothing, when it is right).
fn lock_mismatches(context: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let lock = std::fs::read_to_string(context.join("Cargo.lock")).unwrap();
    if lock != std::fs::read_to_string(repo().join("Cargo.lock")).unwrap() {
        problems.push("the context's Cargo.lock is not the repository's".to_string());
    }
    let expected = lock_packages(&lock);
    let registry_entries = lock.matches("source = \"registry+").count();
    if expected.len() != registry_entries {
        problems.push(format!(
            "{} registry entries in Cargo.lock, {} read",
            registry_entries,
            expected.len()
        ));
    }
    let mut vendored = BTreeMap::new();
    for entry in std::fs::read_dir(context.join("vendor")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let checksum = std::fs::read(dir.join(".cargo-checksum.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["package"].as_str().map(str::to_string))
            .unwrap_or_default();
        vendored.insert(name, checksum);
    }
    for (name, checksum) in &expected {
        match vendored.get(name) {
            None => problems.push(format!("{name} is not vendored")),
            Some(c) if c != checksum => {
                problems.push(format!("{name}: checksum {c}, Cargo.lock has {checksum}"));
            }
            Some(_) => {}
        }
    }
    for name in vendored.keys().filter(|n| !expected.contains_key(*n)) {
        problems.push(format!("{name} is vendored but not in Cargo.lock"));
    }
    let config = std::fs::read_to_string(context.join(".cargo/config.toml")).unwrap_or_default();
    for line in [
        "[source.crates-io]",
        "replace-with = \"vendored-sources\"",
        "[source.vendored-sources]",
        "directory = \"vendor\"",
    ] {
        if !config.lines().any(|l| l == line) {
            problems.push(format!(".cargo/config.toml lacks {line}"));
        }
    }
    problems
}

/// The context `scripts/vendor` prepares, once per test run, in `target/agent-image/context`.
pub fn vendored_context() -> &'static Path {
    static CONTEXT: OnceLock<PathBuf> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let context = repo().join("target/agent-image/context");
        let out = Command::new(repo().join("scripts/vendor"))
            .arg(&context)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/vendor: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let problems = lock_mismatches(&context);
        assert!(problems.is_empty(), "{problems:#?}");
        context
    })
}

#[test]
fn vendored_crates_are_cargo_lock_and_resolve_without_a_registry() {
    let context = vendored_context();
    // The same files the repository builds from, and the Dockerfile beside them.
    for file in [
        "Cargo.toml",
        "src/main.rs",
        "agent/Dockerfile",
        ".dockerignore",
    ] {
        assert_eq!(
            std::fs::read(context.join(file)).unwrap(),
            std::fs::read(repo().join(file)).unwrap(),
            "{file}"
        );
    }
    let cargo_home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(context)
        .env("CARGO_HOME", cargo_home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata --offline in the vendored context: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    // Every package of the lock (the crate itself included) is known to cargo from vendor/.
    assert_eq!(
        metadata["packages"].as_array().unwrap().len(),
        lock.matches("[[package]]").count()
    );

    // The check catches a tampered crate.
    let tampered = tempfile::tempdir().unwrap();
    std::fs::copy(
        context.join("Cargo.lock"),
        tampered.path().join("Cargo.lock"),
    )
    .unwrap();
    std::fs::create_dir_all(tampered.path().join(".cargo")).unwrap();
    std::fs::copy(
        context.join(".cargo/config.toml"),
        tampered.path().join(".cargo/config.toml"),
    )
    .unwrap();
    let (name, _) = lock_packages(&lock).into_iter().next().unwrap();
    let crate_dir = tampered.path().join("vendor").join(&name);
    std::fs::create_dir_all(&crate_dir).unwrap();
    std::fs::write(
        crate_dir.join(".cargo-checksum.json"),
        r#"{"files":{},"package":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
    )
    .unwrap();
    let problems = lock_mismatches(tampered.path());
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{name}: checksum 0000"))),
        "{problems:#?}"
    );
}
