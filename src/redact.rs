//! Keeping secrets out of output.
//!
//! Secrets ferry handles: passwords, registry bearer tokens, service-account tokens, webhook
//! secrets. They are held in [`Secret`], whose `Debug` and `Display` print `<redacted>`, so
//! that a stray `{:?}` in a log line cannot leak them. URLs are printed through
//! [`url`], which drops user-info and the values of query parameters that carry secrets.

use std::fmt;

/// A secret string. Formatting it never shows its value; use [`Secret::expose`] at the one
/// place where the value must be sent (an `Authorization` header, a request body).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
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
    fn scrub_replaces_plain_and_base64() {
        let s = Secret::new("topsecret");
        let t = scrub("a topsecret b dG9wc2VjcmV0 c", &[&s]);
        assert_eq!(t, "a <redacted> b <redacted> c");
    }
}
