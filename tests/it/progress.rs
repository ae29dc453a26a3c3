//! Progress output: plain periodic lines in a log (Jenkins: stderr is a pipe), bars on a
//! terminal, nothing with `-q` — and the result alone on stdout in every case.
//!
//! The source sits behind a fault proxy that pauses the big layer's download for a while, so
//! that the copy is in flight for a known minimum time; `FERRY_PROGRESS_INTERVAL` shortens the
//! summary line's 10 s interval so that several must fall into that pause.

use std::time::Duration;

use crate::support::faults::{Fault, FaultProxy, Rule};
use crate::support::fixtures::*;
use crate::support::*;

const SRC_NAME: &str = "ns/app:v1";
const DST_NAME: &str = "prod/app:v1";
/// Streamed (over ferry's 1 MiB small-blob limit).
const BIG: usize = 1_600_000;
const PAUSE: Duration = Duration::from_millis(1500);

struct Setup {
    /// Kept running behind the proxy.
    _src: Registry,
    dst: Registry,
    proxy: FaultProxy,
    fx: Fixture,
}

impl Setup {
    fn new() -> Setup {
        let src = Registry::start(RegistryOptions::default());
        let dst = Registry::start(RegistryOptions::default());
        let fx = ImageSpec::oci()
            .uncompressed()
            .layers(&[BIG, 200_000])
            .build();
        fx.seed(&src, SRC_NAME);
        let proxy = FaultProxy::start(&src);
        let big = &fx.image().layers[0].digest;
        proxy.add(
            Rule::new(
                "GET",
                &format!("/blobs/{big}$"),
                Fault::PauseAfter(300_000, PAUSE),
            )
            .once(),
        );
        Setup {
            _src: src,
            dst,
            proxy,
            fx,
        }
    }

    /// `ferry copy` through the pausing proxy, with a 0.2 s summary interval.
    fn copy(&self, extra: &[&str]) -> Tool {
        let mut t = ferry();
        t.env("FERRY_PROGRESS_INTERVAL", "0.2")
            .arg("copy")
            .args(extra)
            .args(self.proxy.tls_args(Side::Src))
            .args(self.dst.tls_args(Side::Dest))
            .arg(self.proxy.docker_ref(SRC_NAME))
            .arg(self.dst.docker_ref(DST_NAME));
        t
    }

    /// The copy succeeded, the destination has the source's digest, and stdout has the
    /// result line alone (nothing with `-q`, as skopeo).
    #[track_caller]
    fn assert_copied(&self, out: &Output) {
        out.assert_success();
        assert!(!out.stderr.contains("panicked"), "{out}");
        let (repo, tag) = DST_NAME.split_once(':').unwrap();
        assert_eq!(
            self.dst.manifest_digest(repo, tag).as_deref(),
            Some(self.fx.digest.as_str()),
            "destination digest\n{out}"
        );
        if out.command.split(' ').any(|a| a == "-q") {
            assert_eq!(out.stdout, "", "{out}");
            return;
        }
        // stdout is the result line alone, whatever stderr is.
        assert_eq!(out.stdout.lines().count(), 1, "stdout\n{out}");
        assert!(
            out.stdout
                .starts_with(&format!("Copied {} to ", self.fx.digest)),
            "stdout\n{out}"
        );
        assert!(!out.stdout.contains('\x1b'), "stdout\n{out}");
    }

    fn big_short(&self) -> String {
        let d = &self.fx.image().layers[0].digest;
        d[..d.find(':').unwrap() + 13].to_string()
    }
}

/// `Progress: 293.0 KiB / 1.7 MiB (16%), 1.1 MiB/s, 1/2 blobs, 0 s` → 16.
fn percent(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("Progress: ")?;
    let (_, after) = rest.split_once(" (")?;
    let (pct, tail) = after.split_once("%), ")?;
    (tail.contains("/s, ") && tail.contains(" blobs, ") && rest.contains(" / "))
        .then(|| pct.parse().ok())
        .flatten()
}

#[test]
fn a_log_gets_plain_lines_and_a_summary_every_interval() {
    let s = Setup::new();
    let out = s.copy(&[]).run();
    s.assert_copied(&out);
    // No terminal: no escape sequence, no bar.
    assert!(
        !out.stderr.contains('\x1b'),
        "escape sequences in a log\n{out}"
    );
    let big = s.big_short();
    assert!(
        out.stderr
            .contains(&format!("Copying blob {big} (1.5 MiB)")),
        "{out}"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with(&format!("Blob {big} (1.5 MiB): copied"))),
        "{out}"
    );
    // The big layer paused for 1.5 s after 300,000 bytes: summary lines came every 0.2 s in
    // the meantime, well-formed, showing a copy that was under way (neither 0 nor 100 %).
    let summaries: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("Progress: "))
        .collect();
    assert!(summaries.len() >= 3, "summary lines: {summaries:#?}\n{out}");
    for l in &summaries {
        assert!(percent(l).is_some(), "malformed summary line {l:?}");
    }
    assert!(
        summaries
            .iter()
            .filter_map(|l| percent(l))
            .any(|p| p > 0 && p < 100),
        "no summary during the copy: {summaries:#?}"
    );
    assert_eq!(s.proxy.requests_to("GET", "/blobs/").len(), 3, "{out}");
}

#[test]
fn quiet_prints_no_progress_at_all() {
    let s = Setup::new();
    let out = s.copy(&["-q"]).run();
    s.assert_copied(&out);
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn a_terminal_gets_bars_and_no_summary_lines() {
    let s = Setup::new();
    let out = s.copy(&[]).env("TERM", "xterm").run_on_terminal();
    s.assert_copied(&out);
    // indicatif drew (escape sequences to move and clear lines), a total bar and the big
    // layer's bar ("  <12 hex> [====>   ] …").
    assert!(out.stderr.contains("\x1b["), "no escape sequence\n{out}");
    assert!(out.stderr.contains("total ["), "no total bar\n{out}");
    let big = s.big_short();
    let hex = &big[big.find(':').unwrap() + 1..];
    assert!(
        out.stderr.contains(&format!("{hex} [")),
        "no bar for the big layer\n{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("Blob {big} (1.5 MiB): copied")),
        "{out}"
    );
    // Bars replace the log's summary lines, even with a short interval.
    assert!(!out.stderr.contains("Progress: "), "{out}");
}

#[test]
fn a_bad_interval_is_reported_and_ignored() {
    let s = Setup::new();
    let out = s.copy(&[]).env("FERRY_PROGRESS_INTERVAL", "ten").run();
    s.assert_copied(&out);
    assert!(
        out.stderr.lines().any(|l| l.starts_with("warn: ")
            && l.contains("FERRY_PROGRESS_INTERVAL=\"ten\"")
            && l.contains("using 10")),
        "{out}"
    );
    // The interval stayed at 10 s: no summary line during a copy shorter than that (with
    // 0.2 s there would be several during the 1.5 s pause).
    if out.elapsed < Duration::from_secs(10) {
        assert!(!out.stderr.contains("Progress: "), "{out}");
    }
}
