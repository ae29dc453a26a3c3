//! Progress output on stderr: bars on a terminal, plain lines elsewhere (Jenkins logs).
//!
//! Plain mode prints one line when a blob starts and one when it ends, and a summary line
//! every [`LINE_INTERVAL`] (or `FERRY_PROGRESS_INTERVAL` seconds) while bytes are moving or
//! not. `-q` silences it all.
//!
//! In skopeo's [`Style`] (ferry invoked as `skopeo`), plain mode prints none of those: skopeo's
//! own lines ([`Progress::report`], on stdout) say what is copied, and messages are log lines
//! in skopeo's format ([`crate::logrus`]).

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::reference::Digest;

/// How often plain mode prints a summary line, unless `FERRY_PROGRESS_INTERVAL` says otherwise.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);
/// The environment variable that sets the summary line's interval, in seconds.
pub const INTERVAL_ENV: &str = "FERRY_PROGRESS_INTERVAL";

/// The summary line's interval: `FERRY_PROGRESS_INTERVAL` seconds (at least 0.1; the value
/// the command line read, see [`crate::environment`]), else [`LINE_INTERVAL`]. A value that
/// is not such a number is reported and ignored: progress output is no reason to fail a copy.
pub fn line_interval(value: Option<&str>) -> Duration {
    let Some(v) = value else {
        return LINE_INTERVAL;
    };
    match v.trim().parse::<f64>() {
        Ok(secs) if (0.1..=86_400.0).contains(&secs) => Duration::from_secs_f64(secs),
        _ => {
            log::warn!(
                "{INTERVAL_ENV}={v:?} is not a number of seconds between 0.1 and 86400; using {}",
                LINE_INTERVAL.as_secs()
            );
            LINE_INTERVAL
        }
    }
}

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing.
    Quiet,
    /// indicatif bars (stderr is a terminal).
    Bars,
    /// Plain lines (stderr is a file or a pipe).
    Lines,
}

impl Mode {
    /// Bars on a terminal, lines otherwise, nothing with `quiet`.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// Whose words the output uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// ferry's lines.
    Ferry,
    /// skopeo's: report lines on stdout, logrus log lines on stderr, no ferry progress lines.
    Skopeo,
}

/// Progress of one command (shared by all its transfers).
pub struct Progress {
    mode: Mode,
    style: Style,
    multi: Option<MultiProgress>,
    total_bar: Mutex<Option<ProgressBar>>,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    total_bytes: AtomicU64,
    done_bytes: AtomicU64,
    total_blobs: AtomicU64,
    done_blobs: AtomicU64,
    started: Instant,
    stop: AtomicBool,
}

/// Human-readable byte count (binary units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

impl Progress {
    /// A progress reporter in ferry's style; in plain mode a background task prints periodic
    /// lines.
    pub fn new(mode: Mode) -> Arc<Self> {
        Self::with_style(mode, Style::Ferry)
    }

    /// A progress reporter in `style`, plain lines every [`LINE_INTERVAL`].
    pub fn with_style(mode: Mode, style: Style) -> Arc<Self> {
        Self::with_interval(mode, style, LINE_INTERVAL)
    }

    /// A progress reporter in `style` whose plain mode prints a summary line `every` so often.
    pub fn with_interval(mode: Mode, style: Style, every: Duration) -> Arc<Self> {
        let multi = (mode == Mode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let p = Arc::new(Progress {
            mode,
            style,
            multi,
            total_bar: Mutex::new(None),
            bars: Mutex::new(HashMap::new()),
            total_bytes: AtomicU64::new(0),
            done_bytes: AtomicU64::new(0),
            total_blobs: AtomicU64::new(0),
            done_blobs: AtomicU64::new(0),
            started: Instant::now(),
            stop: AtomicBool::new(false),
        });
        if mode == Mode::Lines
            && style == Style::Ferry
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let weak = Arc::downgrade(&p);
            handle.spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match weak.upgrade() {
                        Some(p) if !p.stop.load(Ordering::Relaxed) => p.summary_line(),
                        _ => break,
                    }
                }
            });
        }
        p
    }

    /// The output mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The output style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Print a line on stderr (through the bars on a terminal), unless quiet; in skopeo's
    /// style, as an info log line.
    pub fn line(&self, msg: &str) {
        self.log(log::Level::Info, msg, &[]);
    }

    /// A message with fields, unless quiet: `msg k="v" …` in ferry's style, a log line in
    /// skopeo's (`time=… level=… msg=… k=…`, as skopeo's `logrus.WithFields(…)`). Whatever
    /// it quotes (a server's answer), no secret leaves through it.
    pub fn log(&self, level: log::Level, msg: &str, fields: &[(&str, &str)]) {
        let msg = crate::redact::clean(msg);
        let fields: Vec<(&str, String)> = fields
            .iter()
            .map(|(k, v)| (*k, crate::redact::clean(v)))
            .collect();
        let text = match self.style {
            Style::Skopeo => {
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                crate::logrus::line(crate::logrus::level(level), &msg, &fields)
            }
            Style::Ferry => {
                let mut t = msg;
                for (k, v) in &fields {
                    t.push_str(&format!(" {k}={}", crate::logrus::go_quote(v)));
                }
                t
            }
        };
        match (&self.mode, &self.multi) {
            (Mode::Quiet, _) => {}
            (Mode::Bars, Some(m)) => {
                let _ = m.println(text);
            }
            _ => eprintln!("{text}"),
        }
    }

    /// skopeo's report lines (what `skopeo copy` prints) on stdout, together, unless quiet.
    pub fn report(&self, lines: &[String]) {
        use std::io::Write as _;
        if self.mode == Mode::Quiet || lines.is_empty() {
            return;
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        };
        match &self.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// More work became known.
    pub fn add_total(&self, bytes: u64, blobs: u64) {
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.total_blobs.fetch_add(blobs, Ordering::Relaxed);
        if let Some(m) = &self.multi {
            let mut tb = self.total_bar.lock().expect("progress lock");
            let total = self.total_bytes.load(Ordering::Relaxed);
            match tb.as_ref() {
                Some(b) => b.set_length(total),
                None => {
                    let b = m.add(ProgressBar::new(total));
                    b.set_style(
                        ProgressStyle::with_template(
                            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .expect("valid template")
                        .progress_chars("=> "),
                    );
                    b.set_message("total");
                    *tb = Some(b);
                }
            }
        }
    }

    /// A blob transfer starts.
    pub fn blob_start(&self, digest: &Digest, size: u64) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines if self.style == Style::Skopeo => {}
            Mode::Lines => eprintln!("Copying blob {} ({})", digest.short(), human_bytes(size)),
            Mode::Bars => {
                if let Some(m) = &self.multi {
                    let b = m.insert(0, ProgressBar::new(size));
                    b.set_style(
                        ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    b.set_message(digest.short()[7..].to_string());
                    self.bars
                        .lock()
                        .expect("progress lock")
                        .insert(digest.clone(), b);
                }
            }
        }
    }

    /// Bytes moved for a blob.
    pub fn blob_bytes(&self, digest: &Digest, n: u64) {
        self.done_bytes.fetch_add(n, Ordering::Relaxed);
        if self.mode == Mode::Bars {
            if let Some(b) = self.bars.lock().expect("progress lock").get(digest) {
                b.inc(n);
            }
            if let Some(t) = self.total_bar.lock().expect("progress lock").as_ref() {
                t.inc(n);
            }
        }
    }

    /// Bytes of a blob that were counted but must be sent again (a retry from scratch).
    pub fn blob_rewind(&self, digest: &Digest, n: u64) {
        self.done_bytes.fetch_sub(
            n.min(self.done_bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if self.mode == Mode::Bars {
            if let Some(b) = self.bars.lock().expect("progress lock").get(digest) {
                b.set_position(b.position().saturating_sub(n));
            }
            if let Some(t) = self.total_bar.lock().expect("progress lock").as_ref() {
                t.set_position(t.position().saturating_sub(n));
            }
        }
    }

    /// A blob is done: `how` is `copied`, `already present`, `mounted from …`.
    pub fn blob_done(&self, digest: &Digest, size: u64, how: &str, counted: bool) {
        self.done_blobs.fetch_add(1, Ordering::Relaxed);
        if !counted {
            self.done_bytes.fetch_add(size, Ordering::Relaxed);
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines if self.style == Style::Skopeo => {}
            Mode::Lines => eprintln!("Blob {} ({}): {how}", digest.short(), human_bytes(size)),
            Mode::Bars => {
                if let Some(b) = self.bars.lock().expect("progress lock").remove(digest) {
                    b.finish_and_clear();
                }
                if !counted && let Some(t) = self.total_bar.lock().expect("progress lock").as_ref()
                {
                    t.inc(size);
                }
                if self.style == Style::Skopeo {
                    return;
                }
                self.line(&format!(
                    "Blob {} ({}): {how}",
                    digest.short(),
                    human_bytes(size)
                ));
            }
        }
    }

    fn summary_line(&self) {
        let done = self.done_bytes.load(Ordering::Relaxed);
        let total = self.total_bytes.load(Ordering::Relaxed).max(done);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let pct = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprintln!(
            "Progress: {} / {} ({pct:.0}%), {}/s, {}/{} blobs, {:.0} s",
            human_bytes(done),
            human_bytes(total),
            human_bytes((done as f64 / secs) as u64),
            self.done_blobs.load(Ordering::Relaxed),
            self.total_blobs.load(Ordering::Relaxed),
            secs
        );
    }

    /// Stop periodic output and clear bars.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.total_bar.lock().expect("progress lock").take() {
            t.finish_and_clear();
        }
        for (_, b) in self.bars.lock().expect("progress lock").drain() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(human_bytes(5), "5 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(128 * 1024 * 1024), "128.0 MiB");
    }

    #[test]
    fn interval() {
        assert_eq!(line_interval(None), LINE_INTERVAL);
        assert_eq!(line_interval(Some("30")), Duration::from_secs(30));
        assert_eq!(line_interval(Some(" 0.5 ")), Duration::from_millis(500));
        for bad in ["", "ten", "0", "0.01", "-5", "NaN", "inf", "1e9"] {
            assert_eq!(line_interval(Some(bad)), LINE_INTERVAL, "{bad:?}");
        }
    }
}
