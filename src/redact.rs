//! Keeping secrets out of output.
//!
//! Secrets ferry handles: passwords, registry bearer tokens, service-account tokens, webhook
//! secrets. They are held in [`Secret`], whose `Debug` and `Display` print `<redacted>`, so
//! that a stray `{:?}` in a log line cannot leak them. URLs are printed through
//! [`url`], which drops user-info and the values of query parameters that carry secrets.
//!
//! Every secret value ferry holds is also remembered process-wide when its [`Secret`] is made
//! (and the `user:password` pair of every Basic header when the header is made), and [`clean`]
//! removes all of them — plain, base64, percent-encoded — from any text. Every output goes
//! through it: log lines, the final `Error:` line, progress lines, reports and records. So text
//! quoted from a server (a registry's error message, a token endpoint's or webhook's answer)
//! cannot echo a secret back, whatever it quotes.

use std::fmt;
use std::sync::Mutex;

/// Secrets shorter than this are not searched for in text (they would match ordinary words).
const MIN_SECRET_LEN: usize = 4;

/// Every form of every secret seen so far, longest first.
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn add_form(form: String) {
    if form.len() < MIN_SECRET_LEN {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if !known.contains(&form) {
        known.push(form);
        // Longest first, so that a secret containing another one is replaced whole.
        known.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }
}

/// Remember a secret value: [`clean`] removes it, its base64 and its percent-encoded forms.
pub fn remember(value: &str) {
    use base64::Engine as _;
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    add_form(value.to_string());
    add_form(base64::engine::general_purpose::STANDARD.encode(value));
    add_form(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value));
    let pct = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    add_form(pct);
}

/// Remember the base64 of `user:password` (what a Basic `Authorization` header carries).
pub fn remember_basic(user: &str, password: &str) {
    use base64::Engine as _;
    if password.len() < MIN_SECRET_LEN {
        return;
    }
    add_form(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
}

/// `text` with every remembered secret (in every form) replaced by `<redacted>`.
pub fn clean(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for form in known.iter() {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), "<redacted>");
        }
    }
    out
}

/// A secret string. Formatting it never shows its value; use [`Secret::expose`] at the one
/// place where the value must be sent (an `Authorization` header, a request body).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    /// The secret value, for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Query parameters whose values are treated as secrets.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "password",
    "secret",
    "client_secret",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// A URL made safe to print: no user-info, secret query values replaced by `<redacted>`.
pub fn url(u: &url::Url) -> String {
    let mut u = u.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                (
                    k.into_owned(),
                    if secret {
                        "<redacted>".to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Replace every occurrence of each secret (and of its base64 forms) in `text`.
///
/// Used as a last line of defence on text that may quote a server's answer.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    use base64::Engine as _;
    let mut out = text.to_string();
    for s in secrets {
        let v = s.expose();
        if v.len() < 4 {
            continue;
        }
        out = out.replace(v, "<redacted>");
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        out = out.replace(&b64, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn url_drops_userinfo_and_secret_params() {
        let u = url::Url::parse("https://bob:pw@example.com/v2/?scope=a&access_token=xyz&sig=abc")
            .unwrap();
        let r = url(&u);
        assert!(
            !r.contains("bob") && !r.contains("pw@") && !r.contains("xyz") && !r.contains("abc"),
            "{r}"
        );
        assert!(r.contains("scope=a"), "{r}");
    }

    #[test]
    fn every_secret_made_is_cleaned_from_any_text() {
        use base64::Engine as _;
        let _s = Secret::new("cleaned-secret-1");
        remember_basic("bob", "cleaned-secret-1");
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "a cleaned-secret-1 b {} c {} d cleaned%2Dsecret%2D1",
            b64.encode("cleaned-secret-1"),
            b64.encode("bob:cleaned-secret-1")
        );
        assert_eq!(
            clean(&text),
            "a <redacted> b <redacted> c <redacted> d <redacted>"
        );
        assert_eq!(clean("nothing here"), "nothing here");
    }

    #[test]
    fn scrub_replaces_plain_and_base64() {
        let s = Secret::new("topsecret");
        let t = scrub("a topsecret b dG9wc2VjcmV0 c", &[&s]);
        assert_eq!(t, "a <redacted> b <redacted> c");
    }
}
