//! skopeo's log lines: logrus's text format as skopeo writes it on stderr when stderr is not a
//! terminal, `time="2025-01-02T03:04:05Z" level=info msg="Synced 1 images from 1 sources"`,
//! then the fields sorted by name (`from="docker://…" to="docker://…"`). Used when ferry is
//! invoked as `skopeo`, so that log scrapers that parse skopeo's lines keep working.
//!
//! Times are UTC (logrus writes local time; containers and CI agents run in UTC). A terminal
//! gets the same lines (logrus would colour them and count seconds instead).

/// logrus's name of a `log` level.
pub fn level(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "error",
        log::Level::Warn => "warning",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

/// One line (without the newline): `time=… level=… msg=…` and `fields` in name order.
pub fn line(level: &str, msg: &str, fields: &[(&str, &str)]) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut out = format!("time={} level={level} msg={}", value(&now), value(msg));
    let mut fields = fields.to_vec();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in fields {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        out.push_str(&value(v));
    }
    out
}

/// A value as logrus writes it: bare when it holds only letters, digits and `-._/@^+`,
/// otherwise quoted as Go's `%q` quotes it.
pub fn value(s: &str) -> String {
    let bare = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'));
    if bare { s.to_string() } else { go_quote(s) }
}

/// Go's `strconv.Quote` for valid UTF-8: backslash escapes for `"`, `\` and control
/// characters; printable characters as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_skopeo_writes_them() {
        let l = line(
            "info",
            "Would have copied image ref 1/2",
            &[("to", "docker://r.io/b:1"), ("from", "docker://r.io/a:1")],
        );
        let (time, rest) = l.split_once(" level=").unwrap();
        assert!(
            time.starts_with("time=\"20") && time.ends_with("Z\""),
            "{l}"
        );
        assert_eq!(
            rest,
            "info msg=\"Would have copied image ref 1/2\" from=\"docker://r.io/a:1\" to=\"docker://r.io/b:1\""
        );
    }

    #[test]
    fn values_are_quoted_as_go_quotes_them() {
        assert_eq!(value("info"), "info");
        assert_eq!(value("a/b@sha256^x+y.z_1-2"), "a/b@sha256^x+y.z_1-2");
        assert_eq!(value(""), "");
        assert_eq!(value("a b"), "\"a b\"");
        assert_eq!(
            value("say \"hi\"\\\n\t\u{1}"),
            "\"say \\\"hi\\\"\\\\\\n\\t\\x01\""
        );
        assert_eq!(value("héllo"), "\"héllo\"");
    }
}
