//! Registry authentication: `WWW-Authenticate` challenges and the bearer-token protocol.
//!
//! A registry answers `GET /v2/` with 200 (no auth), or 401 with a challenge: `Basic
//! realm=…` (send the credentials with every request) or `Bearer realm=…,service=…` (fetch a
//! token from the realm for the scopes a request needs; OpenShift's realm is
//! `https://<registry>/openshift/token`, which takes Basic auth with any username and a
//! service-account token as password). Tokens are cached per scope set until shortly before
//! they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::redact::Secret;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
    },
}

/// A `WWW-Authenticate` header or a token endpoint's answer that cannot be used; the text
/// says what is wrong (it never holds a token: the token endpoint's body is not quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthParseError(String);

impl From<String> for AuthParseError {
    fn from(why: String) -> Self {
        AuthParseError(why)
    }
}

impl From<&str> for AuthParseError {
    fn from(why: &str) -> Self {
        AuthParseError(why.to_string())
    }
}

/// Parse a `WWW-Authenticate` header value into the challenges ferry understands.
///
/// Returns an error for a header that does not follow RFC 7235's syntax, or a Bearer
/// challenge without a usable realm.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, AuthParseError> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    if rest.is_empty() {
        return Err(AuthParseError::from("empty WWW-Authenticate header"));
    }
    while !rest.is_empty() {
        // scheme
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = &rest[..end];
        if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
            return Err(AuthParseError::from(format!(
                "malformed WWW-Authenticate header: bad scheme {scheme:?}"
            )));
        }
        rest = rest[end..].trim_start_matches([' ', '\t']);
        let mut params: HashMap<String, String> = HashMap::new();
        // auth-params until the next scheme
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let key_end = rest
                .find(|c: char| !is_tchar(c as u8) || !c.is_ascii())
                .unwrap_or(rest.len());
            let key = &rest[..key_end];
            let after_key = rest[key_end..].trim_start();
            if key.is_empty() {
                return Err(AuthParseError::from(format!(
                    "malformed WWW-Authenticate header near {:?}",
                    truncate(rest)
                )));
            }
            if !after_key.starts_with('=') {
                // The next challenge's scheme (or a token68 we do not use).
                break;
            }
            let mut v = after_key[1..].trim_start();
            let value;
            if let Some(q) = v.strip_prefix('"') {
                let mut s = String::new();
                let mut chars = q.char_indices();
                let mut closed = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                s.push(n);
                            }
                        }
                        '"' => {
                            closed = Some(i);
                            break;
                        }
                        _ => s.push(c),
                    }
                }
                let Some(i) = closed else {
                    return Err(AuthParseError::from(
                        "malformed WWW-Authenticate header: unterminated quoted string",
                    ));
                };
                value = s;
                v = &q[i + 1..];
            } else {
                let end = v
                    .find(|c: char| c == ',' || c.is_whitespace())
                    .unwrap_or(v.len());
                value = v[..end].to_string();
                v = &v[end..];
            }
            params.insert(key.to_ascii_lowercase(), value);
            rest = v.trim_start();
            if !rest.is_empty() && !rest.starts_with(',') {
                return Err(AuthParseError::from(format!(
                    "malformed WWW-Authenticate header near {:?}",
                    truncate(rest)
                )));
            }
        }
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                let realm = params.remove("realm").ok_or_else(|| {
                    AuthParseError::from(
                        "malformed WWW-Authenticate header: Bearer challenge without realm",
                    )
                })?;
                let parsed = url::Url::parse(&realm).map_err(|_| {
                    format!("malformed WWW-Authenticate header: realm {realm:?} is not a URL")
                })?;
                if parsed.scheme() != "https" && parsed.scheme() != "http" {
                    return Err(AuthParseError::from(format!(
                        "WWW-Authenticate realm {realm:?} is not an http(s) URL"
                    )));
                }
                out.push(Challenge::Bearer {
                    realm,
                    service: params.remove("service"),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A cached bearer token.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The token.
    pub token: Secret,
    /// When to stop using it (a margin before it really expires).
    pub refresh_at: Instant,
}

impl CachedToken {
    /// A token valid for `lifetime` from `now`, refreshed a little before.
    pub fn new(token: Secret, lifetime: Duration, now: Instant) -> Self {
        let margin = (lifetime / 5).min(Duration::from_secs(10));
        CachedToken {
            token,
            refresh_at: now + lifetime.saturating_sub(margin),
        }
    }

    /// Whether the token may still be used.
    pub fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// The token endpoint's answer.
#[derive(Debug)]
pub struct TokenResponse {
    /// `token` or `access_token`.
    pub token: Secret,
    /// `expires_in`, default 60 s.
    pub lifetime: Duration,
}

/// Parse a token endpoint's JSON answer.
pub fn parse_token_response(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<TokenResponse, AuthParseError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "the token endpoint answered with something that is not JSON (Content-Type {})",
            content_type.unwrap_or("none")
        )
    })?;
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            v.get("access_token")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
        })
        .ok_or_else(|| {
            AuthParseError::from(
                "the token endpoint's answer has neither \"token\" nor \"access_token\"",
            )
        })?;
    let lifetime = match v.get("expires_in").and_then(|e| e.as_u64()) {
        Some(s) if s > 0 => Duration::from_secs(s.min(24 * 3600)),
        _ => Duration::from_secs(60),
    };
    Ok(TokenResponse {
        token: Secret::new(token),
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://r.io/openshift/token",service="r.io",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://r.io/openshift/token".into(),
                service: Some("r.io".into())
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#).unwrap(),
            vec![Challenge::Basic]
        );
        let two =
            parse_challenges(r#"Basic realm="x", Bearer realm="http://a/t",service=s"#).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(parse_challenges(r#"Negotiate"#).unwrap(), vec![]);
    }

    #[test]
    fn refuses_malformed_challenges() {
        for bad in [
            "",
            "Bearer service=x",
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="not a url""#,
            r#"Bearer realm="ftp://x/y""#,
            "Bea(rer realm=x",
            r#"Bearer realm="https://a/t" junk"#,
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn token_responses() {
        let t = parse_token_response(br#"{"access_token":"abc","expires_in":300}"#, None).unwrap();
        assert_eq!(t.token.expose(), "abc");
        assert_eq!(t.lifetime, Duration::from_secs(300));
        let t = parse_token_response(br#"{"token":"x"}"#, None).unwrap();
        assert_eq!(t.lifetime, Duration::from_secs(60));
        assert!(parse_token_response(b"<html>login</html>", Some("text/html")).is_err());
        assert!(parse_token_response(br#"{"token":""}"#, None).is_err());
    }

    #[test]
    fn cached_token_margin() {
        let now = Instant::now();
        let t = CachedToken::new(Secret::new("x"), Duration::from_secs(300), now);
        assert!(t.fresh(now + Duration::from_secs(289)));
        assert!(!t.fresh(now + Duration::from_secs(291)));
        let short = CachedToken::new(Secret::new("x"), Duration::from_secs(5), now);
        assert!(short.fresh(now + Duration::from_millis(3900)));
        assert!(!short.fresh(now + Duration::from_millis(4100)));
    }
}
