//! Sigstore key files, read and written as cosign and skopeo read and write them.
//!
//! - Public keys: PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS #1):
//!   ECDSA P-256 and P-384, Ed25519, RSA.
//! - Private keys: PEM `ENCRYPTED COSIGN PRIVATE KEY` (what skopeo and cosign write) or
//!   `ENCRYPTED SIGSTORE PRIVATE KEY`, whose body is the JSON of go-securesystemslib's
//!   `encrypted` package: a PKCS #8 key sealed with NaCl secretbox (XSalsa20-Poly1305) under a
//!   key derived with scrypt from the passphrase.
//!
//! Signatures are cosign's: ECDSA (ASN.1 DER) over SHA-256 of the message whatever the curve,
//! RSA PKCS #1 v1.5 with SHA-256, and pure Ed25519.

use base64::Engine as _;
use ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
use ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use super::error::SigningError;
use crate::redact::Secret;

/// PEM type skopeo and cosign write for a private key.
pub const COSIGN_PRIVATE_KEY_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM type newer sigstore tools write for a private key (also read).
pub const SIGSTORE_PRIVATE_KEY_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// scrypt's work factor as skopeo 1.18 writes it (N = 2^16, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 16;
/// The largest work factor ferry accepts in a key file (N = 2^20: 1 GiB of memory).
const SCRYPT_MAX_LOG_N: u8 = 20;

/// A public key that verifies sigstore signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ECDSA on P-256 (what `generate-sigstore-key` makes).
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA on P-384.
    P384(p384::ecdsa::VerifyingKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// RSA (PKCS #1 v1.5 signatures).
    Rsa(rsa::RsaPublicKey),
}

impl PublicKey {
    /// The first key of a PEM file (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn from_pem(bytes: &[u8]) -> Result<Self, SigningError> {
        let block = pem::parse(bytes)
            .map_err(|e| SigningError::key(format!("not a PEM public key: {e}")))?;
        match block.tag() {
            "PUBLIC KEY" => Self::from_spki_der(block.contents()),
            "RSA PUBLIC KEY" => {
                use rsa::pkcs1::DecodeRsaPublicKey as _;
                rsa::RsaPublicKey::from_pkcs1_der(block.contents())
                    .map(PublicKey::Rsa)
                    .map_err(|e| SigningError::key(format!("invalid RSA public key: {e}")))
            }
            other => Err(SigningError::key(format!(
                "unsupported PEM type {other:?} for a public key"
            ))),
        }
    }

    /// A DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SigningError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P256(k.into()));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::Ed25519(k));
        }
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(der) {
            return Ok(PublicKey::Rsa(k));
        }
        Err(SigningError::key(
            "unsupported public key (ECDSA P-256/P-384, Ed25519 and RSA are supported)",
        ))
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        let doc = match self {
            PublicKey::P256(k) => p256::PublicKey::from(k).to_public_key_der(),
            PublicKey::P384(k) => p384::PublicKey::from(k).to_public_key_der(),
            PublicKey::Ed25519(k) => k.to_public_key_der(),
            PublicKey::Rsa(k) => k.to_public_key_der(),
        };
        doc.expect("encoding a public key").into_vec()
    }

    /// PEM `PUBLIC KEY`, as sigstore's `MarshalPublicKeyToPEM` writes it.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", self.spki_der())
    }

    /// A short, stable name of the key for messages and records: `sha256:` and the first 16
    /// hex digits of the SHA-256 of its SubjectPublicKeyInfo.
    pub fn key_id(&self) -> String {
        let h = hex::encode(sha2::Sha256::digest(self.spki_der()));
        format!("sha256:{}", &h[..16])
    }

    /// Verify `sig` over `message` as cosign does.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), SigningError> {
        let bad = |e: &dyn std::fmt::Display| {
            SigningError::verification(format!("cryptographic signature verification failed: {e}"))
        };
        match self {
            PublicKey::P256(k) => {
                let s = p256::ecdsa::Signature::from_der(sig).map_err(|e| bad(&e))?;
                k.verify(message, &s).map_err(|e| bad(&e))
            }
            PublicKey::P384(k) => {
                let s = p384::ecdsa::Signature::from_der(sig).map_err(|e| bad(&e))?;
                k.verify_prehash(&sha2::Sha256::digest(message), &s)
                    .map_err(|e| bad(&e))
            }
            PublicKey::Ed25519(k) => {
                let s = ed25519_dalek::Signature::from_slice(sig).map_err(|e| bad(&e))?;
                k.verify(message, &s).map_err(|e| bad(&e))
            }
            PublicKey::Rsa(k) => {
                let v = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(k.clone());
                let s = rsa::pkcs1v15::Signature::try_from(sig).map_err(|e| bad(&e))?;
                v.verify(message, &s).map_err(|e| bad(&e))
            }
        }
    }
}

/// A private key that makes sigstore signatures.
pub enum PrivateKey {
    /// ECDSA on P-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA on P-384.
    P384(p384::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// RSA.
    Rsa(rsa::RsaPrivateKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.public().key_id())
    }
}

/// The JSON inside an encrypted key's PEM (go-securesystemslib `encrypted`).
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

impl PrivateKey {
    /// A new ECDSA P-256 key, as `generate-sigstore-key` makes.
    pub fn generate_p256() -> Self {
        PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            PrivateKey::P384(k) => PublicKey::P384(*k.verifying_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
        }
    }

    /// Sign `message` as cosign does (see the module documentation).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(message);
                s.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let s: p384::ecdsa::Signature = k
                    .sign_prehash(&sha2::Sha256::digest(message))
                    .expect("a 32-byte prehash signs with P-384");
                s.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            PrivateKey::Rsa(k) => {
                use rsa::signature::SignatureEncoding as _;
                let s = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(k.clone());
                s.sign(message).to_vec()
            }
        }
    }

    /// A PKCS #8 DER private key (P-256, P-384, Ed25519 or RSA).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SigningError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Ed25519(k));
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::Rsa(k));
        }
        Err(SigningError::key("unsupported private key type"))
    }

    fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let doc = match self {
            PrivateKey::P256(k) => p256::SecretKey::from(k).to_pkcs8_der(),
            PrivateKey::P384(k) => p384::SecretKey::from(k).to_pkcs8_der(),
            PrivateKey::Ed25519(k) => k.to_pkcs8_der(),
            PrivateKey::Rsa(k) => k.to_pkcs8_der(),
        };
        Zeroizing::new(doc.expect("encoding a private key").as_bytes().to_vec())
    }

    /// Read an encrypted private key file's contents with its passphrase.
    pub fn from_encrypted_pem(bytes: &[u8], passphrase: &Secret) -> Result<Self, SigningError> {
        let block = pem::parse(bytes).map_err(|_| SigningError::key("invalid pem block"))?;
        if block.tag() != COSIGN_PRIVATE_KEY_PEM && block.tag() != SIGSTORE_PRIVATE_KEY_PEM {
            return Err(SigningError::key(format!(
                "unsupported pem type: {}",
                block.tag()
            )));
        }
        let sealed: Sealed = serde_json::from_slice(block.contents())
            .map_err(|e| SigningError::key(format!("decrypt: invalid encrypted key: {e}")))?;
        if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
            return Err(SigningError::key(format!(
                "decrypt: unsupported key encryption {}/{}",
                sealed.kdf.name, sealed.cipher.name
            )));
        }
        let n = sealed.kdf.params.n;
        if !n.is_power_of_two() || n < 2 || n.trailing_zeros() > SCRYPT_MAX_LOG_N as u32 {
            return Err(SigningError::key(format!(
                "decrypt: unsupported scrypt parameter N={n}"
            )));
        }
        let key = scrypt_key(
            passphrase,
            &sealed.kdf.salt,
            n.trailing_zeros() as u8,
            sealed.kdf.params.r,
            sealed.kdf.params.p,
        )?;
        let nonce: [u8; 24] = sealed
            .cipher
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| SigningError::key("decrypt: invalid nonce length"))?;
        use crypto_secretbox::aead::{Aead as _, KeyInit as _};
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_slice().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
                .map_err(|_| SigningError::key("decrypt: encrypted: decryption failed"))?,
        );
        Self::from_pkcs8_der(&plain)
            .map_err(|e| SigningError::key(format!("parsing private key: {e}")))
    }

    /// The encrypted PEM file skopeo's `generate-sigstore-key` writes.
    pub fn to_encrypted_pem(&self, passphrase: &Secret) -> Result<String, SigningError> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        use rand_core::RngCore as _;
        rand_core::OsRng.fill_bytes(&mut salt);
        rand_core::OsRng.fill_bytes(&mut nonce);
        let key = scrypt_key(passphrase, &salt, SCRYPT_LOG_N, 8, 1)?;
        use crypto_secretbox::aead::{Aead as _, KeyInit as _};
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_slice().into());
        let ciphertext = cipher
            .encrypt(&nonce.into(), self.to_pkcs8_der().as_slice())
            .map_err(|_| SigningError::key("encrypting the private key failed"))?;
        let sealed = Sealed {
            kdf: Kdf {
                name: "scrypt".into(),
                params: KdfParams {
                    n: 1 << SCRYPT_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt: salt.to_vec(),
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce: nonce.to_vec(),
            },
            ciphertext,
        };
        let json = serde_json::to_vec(&sealed).expect("serializable");
        Ok(pem_encode(COSIGN_PRIVATE_KEY_PEM, json))
    }
}

fn scrypt_key(
    passphrase: &Secret,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, SigningError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| SigningError::key(format!("decrypt: invalid scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.expose().as_bytes(), salt, &params, key.as_mut())
        .map_err(|e| SigningError::key(format!("scrypt: {e}")))?;
    Ok(key)
}

/// PEM as Go's `pem.EncodeToMemory` writes it: 64-column base64, `\n` line ends.
pub fn pem_encode(tag: &str, der: Vec<u8>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key pair skopeo 1.18's `generate-sigstore-key` wrote (passphrase `secret`).
    const SKOPEO_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEql6/kHE5U6yu1TeXcxXStLZhD4qa
yDtQDfITB+adyH9aTSpgP+J+YmvISQ2dFGTXb5a9BrqrK1kQt+BbAODkwQ==
-----END PUBLIC KEY-----
";
    const SKOPEO_PRIVATE: &str = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJxYm15TUVISVFydkdQMnArYnVPcHA5OFR0bWk0dFQy
WUdGQUlZZ0JPMjBZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiIyZWUzZzhDTHB0ZUQ1QzFNY21taERPb1RuV0hJTEczLyJ9LCJj
aXBoZXJ0ZXh0IjoiNlgrYk0rQUlpb0FrbFBWYUNaZmg4RGw2UGNWakpWcHRPYTRY
VWVFeWpQdk5lWXRXRVlpaUhRVDNpTGhnaC9lSjc4ZjJEeFMzWU9tV2VSOFZVTjlS
NzJaL2JSZU1weXNuTzlGRXdmajJGNStlVFlXMHVqTnNManc3em85TGNKMEpXQjQr
MFFCcmNTcnRaUG0zbUtqd3RUSGFXQ1BPaGNjV3pKZEdLdmJBS2xpd2h0L2RyKzFM
ZlJyajZZS1VPNUJ4Zm9ET0kxN0xUNGJKZXc9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
";

    #[test]
    fn reads_a_key_pair_skopeo_wrote() {
        let private =
            PrivateKey::from_encrypted_pem(SKOPEO_PRIVATE.as_bytes(), &Secret::new("secret"))
                .unwrap();
        let public = PublicKey::from_pem(SKOPEO_PUB.as_bytes()).unwrap();
        assert_eq!(private.public(), public);
        assert_eq!(public.to_pem(), SKOPEO_PUB);
        let sig = private.sign(b"payload");
        public.verify(b"payload", &sig).unwrap();
        assert!(public.verify(b"payloaD", &sig).is_err());
        let e = PrivateKey::from_encrypted_pem(SKOPEO_PRIVATE.as_bytes(), &Secret::new("wrong"))
            .unwrap_err();
        assert_eq!(
            e,
            SigningError::Key("decrypt: encrypted: decryption failed".into())
        );
    }

    #[test]
    fn round_trip_and_other_key_types() {
        let k = PrivateKey::generate_p256();
        let pass = Secret::new("pw");
        let pem = k.to_encrypted_pem(&pass).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
        let back = PrivateKey::from_encrypted_pem(pem.as_bytes(), &pass).unwrap();
        assert_eq!(back.public(), k.public());
        for key in [
            PrivateKey::P384(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng)),
            PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])),
        ] {
            let public = PublicKey::from_pem(key.public().to_pem().as_bytes()).unwrap();
            let sig = key.sign(b"m");
            public.verify(b"m", &sig).unwrap();
            assert!(public.verify(b"n", &sig).is_err());
        }
        assert!(PublicKey::from_pem(b"junk").is_err());
    }
}
