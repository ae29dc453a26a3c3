//! Content digests (`algorithm:hex`, validated as go-digest validates them) and the hasher
//! that checks bytes against one while they stream.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::ReferenceError;

/// A content digest, `algorithm:hex`, validated as go-digest does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// `sha256:…` built from a finished hasher.
    pub fn from_sha256_hex(hex: &str) -> Self {
        Digest(format!("sha256:{hex}"))
    }

    /// The algorithm part (`sha256`).
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or("")
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or("")
    }

    /// The full `algorithm:hex` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for progress output: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        let h = self.hex();
        format!("{}:{}", self.algorithm(), &h[..h.len().min(12)])
    }

    /// The digest of `bytes` under this digest's algorithm, if it differs from this one
    /// (`None`: they match). An algorithm ferry cannot compute never matches.
    pub fn verify(&self, bytes: &[u8]) -> Option<Digest> {
        let Some(mut h) = Hasher::for_digest(self) else {
            return Some(Digest(format!("{}:?", self.algorithm())));
        };
        h.update(bytes);
        let actual = h.finish();
        if &actual == self { None } else { Some(actual) }
    }
}

/// A running hash for one of the digest algorithms ferry knows (sha256, sha384, sha512):
/// used for manifests read whole and for blobs hashed while they stream.
pub enum Hasher {
    /// sha256.
    Sha256(Sha256),
    /// sha384.
    Sha384(sha2::Sha384),
    /// sha512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A hasher for `d`'s algorithm, `None` for one ferry does not know.
    pub fn for_digest(d: &Digest) -> Option<Self> {
        match d.algorithm() {
            "sha256" => Some(Hasher::Sha256(Sha256::new())),
            "sha384" => Some(Hasher::Sha384(sha2::Sha384::new())),
            "sha512" => Some(Hasher::Sha512(sha2::Sha512::new())),
            _ => None,
        }
    }

    /// Add bytes.
    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        Digest(format!("{alg}:{hex}"))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> std::result::Result<Self, ReferenceError> {
        let bad = |why: String| ReferenceError::Digest(why);
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad(format!("digest {s:?} is not of the form algorithm:hex")))?;
        if alg.is_empty() || !valid_digest_algorithm(alg) {
            return Err(bad(format!("digest {s:?} has an invalid algorithm")));
        }
        let want = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(bad(format!(
                    "digest {s:?} uses unsupported algorithm {alg:?}"
                )));
            }
        };
        if hex.len() != want {
            return Err(bad(format!(
                "digest {s:?} has {} hex characters, {alg} needs {want}",
                hex.len()
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!("digest {s:?} is not lowercase hex")));
        }
        Ok(Digest(s.to_string()))
    }
}

fn valid_digest_algorithm(alg: &str) -> bool {
    // component ([+._-] component)*, component = [A-Za-z][A-Za-z0-9]*
    alg.split(['+', '.', '_', '-']).all(|c| {
        let mut b = c.bytes();
        matches!(b.next(), Some(x) if x.is_ascii_alphabetic())
            && b.all(|x| x.is_ascii_alphanumeric())
    })
}
