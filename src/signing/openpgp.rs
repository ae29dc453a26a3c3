//! OpenPGP for simple signing: verifying with a keyring (rPGP, in process) and signing with
//! the `gpg` program (as skopeo signs through GnuPG, with the user's `GNUPGHOME`).
//!
//! A simple signature is what `gpg --sign` writes: a (usually compressed) OpenPGP message
//! holding the payload as literal data and exactly one signature. Like containers/image's
//! ephemeral GnuPG keyring, a [`Keyring`] trusts every key it was given; a signature verifies
//! when one of those keys (the primary key, or a signing subkey whose binding verifies) made
//! it, and the key identity is the primary key's fingerprint (upper-case hex).

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use pgp::composed::{Deserializable as _, Message, SignedPublicKey};

use super::error::SigningError;
use crate::error::{Error, Result};
use crate::redact::Secret;

/// Largest signature ferry parses (containers/image reads signatures up to 4 MiB).
pub const MAX_SIGNATURE: usize = 4 << 20;
/// Largest payload inside a signature.
const MAX_CONTENTS: u64 = 4 << 20;

/// Public keys trusted for simple signing.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Keys from files' contents: binary (`gpg --export`) or ASCII-armored, one or more each.
    pub fn from_blobs(blobs: &[Vec<u8>]) -> std::result::Result<Self, SigningError> {
        let invalid = |e: &dyn std::fmt::Display| {
            SigningError::key(format!("invalid OpenPGP public key: {e}"))
        };
        let mut keys = vec![];
        for blob in blobs {
            let armored = blob
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .is_some_and(|i| blob[i..].starts_with(b"-----BEGIN"));
            let parsed: Vec<_> = if armored {
                let (it, _) =
                    SignedPublicKey::from_armor_many(blob.as_slice()).map_err(|e| invalid(&e))?;
                it.collect()
            } else {
                SignedPublicKey::from_bytes_many(blob.as_slice())
                    .map_err(|e| invalid(&e))?
                    .collect()
            };
            for k in parsed {
                let k = k.map_err(|e| invalid(&e))?;
                // A key whose self-signatures do not verify (or which revoked itself) is
                // not imported, as GnuPG would not use it.
                if k.details.verify_bindings(&k.primary_key).is_ok()
                    && k.details.revocation_signatures.is_empty()
                {
                    keys.push(k);
                }
            }
        }
        Ok(Keyring { keys })
    }

    /// Whether no key was imported.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The primary keys' fingerprints (upper-case hex), as GnuPG reports them.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint(&k.primary_key))
            .collect()
    }

    /// Verify a simple signature: the signed contents and the signing key's primary
    /// fingerprint.
    pub fn verify(&self, signature: &[u8]) -> std::result::Result<(Vec<u8>, String), SigningError> {
        if signature.len() > MAX_SIGNATURE {
            return Err(SigningError::malformed(format!(
                "signature is larger than {MAX_SIGNATURE} bytes"
            )));
        }
        let invalid = |e: &dyn std::fmt::Display| {
            SigningError::malformed(format!("Invalid GPG signature: {e}"))
        };
        let mut msg = Message::from_bytes(signature).map_err(|e| invalid(&e))?;
        // gpg compresses; a signed message may be compressed inside, too.
        for _ in 0..4 {
            if msg.is_compressed() {
                msg = msg.decompress().map_err(|e| invalid(&e))?;
            }
        }
        let Message::Signed { reader, .. } = &msg else {
            return Err(SigningError::malformed("The input is not a signature"));
        };
        let _ = reader;
        let mut contents = vec![];
        let mut limited = (&mut msg).take(MAX_CONTENTS + 1);
        limited
            .read_to_end(&mut contents)
            .map_err(|e| invalid(&e))?;
        if contents.len() as u64 > MAX_CONTENTS {
            return Err(SigningError::malformed(format!(
                "signed contents are larger than {MAX_CONTENTS} bytes"
            )));
        }
        if let Message::Signed { reader, .. } = &msg
            && reader.num_signatures() != 1
        {
            return Err(SigningError::malformed(format!(
                "Unexpected GPG signature count {}",
                reader.num_signatures()
            )));
        }
        for key in &self.keys {
            if msg.verify(&key.primary_key).is_ok() {
                return Ok((contents, fingerprint(&key.primary_key)));
            }
            for sub in &key.public_subkeys {
                let signing = sub.signatures.iter().any(|s| s.key_flags().sign());
                if signing
                    && sub.verify_bindings(&key.primary_key).is_ok()
                    && msg.verify(&sub.key).is_ok()
                {
                    return Ok((contents, fingerprint(&key.primary_key)));
                }
            }
        }
        Err(SigningError::verification(
            "Invalid GPG signature: no trusted key made it (signature by an unknown key, or the signed data was changed)",
        ))
    }
}

/// The key a simple signature says made it (issuer fingerprint, else key id, upper-case hex),
/// read without verifying anything: for messages naming the signatures tried.
pub fn issuer(signature: &[u8]) -> Option<String> {
    if signature.len() > MAX_SIGNATURE {
        return None;
    }
    let mut msg = Message::from_bytes(signature).ok()?;
    for _ in 0..4 {
        if msg.is_compressed() {
            msg = msg.decompress().ok()?;
        }
    }
    if !matches!(msg, Message::Signed { .. }) {
        return None;
    }
    let mut sink = std::io::sink();
    std::io::copy(&mut (&mut msg).take(MAX_CONTENTS + 1), &mut sink).ok()?;
    let Message::Signed { reader, .. } = &msg else {
        return None;
    };
    let sig = reader.signature(0)?;
    if let Some(f) = sig.issuer_fingerprint().first() {
        return Some(hex::encode_upper(f.as_bytes()));
    }
    sig.issuer_key_id()
        .first()
        .map(|k| hex::encode_upper(k.as_ref()))
}

fn fingerprint(k: &impl pgp::types::KeyDetails) -> String {
    hex::encode_upper(k.fingerprint().as_bytes())
}

/// The public keys of the user's GnuPG keyring (`gpg --export`, honouring `GNUPGHOME`).
pub fn gpg_export() -> Result<Vec<u8>> {
    let out = Command::new("gpg")
        .args(["--batch", "--no-tty", "--export"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Signing(format!("Error initializing GPG: running gpg: {e}")))?;
    if !out.status.success() {
        return Err(Error::Signing(format!(
            "Error initializing GPG: gpg --export failed: {}",
            first_line(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// Sign `data` with the `gpg` program as GnuPG signs for skopeo (`gpg --sign`, binary, with
/// the key `fingerprint` of the user's keyring). The data goes to gpg in a temporary file; a
/// passphrase through its standard input (`--pinentry-mode loopback --passphrase-fd 0`),
/// never through argv.
pub fn gpg_sign(data: &[u8], fingerprint: &str, passphrase: Option<&Secret>) -> Result<Vec<u8>> {
    if let Some(p) = passphrase
        && p.expose().contains('\n')
    {
        return Err(Error::Signing(
            "invalid passphrase: must not contain a line break".into(),
        ));
    }
    let init = |e: std::io::Error| Error::Signing(format!("Error initializing GPG: {e}"));
    let mut file = tempfile::NamedTempFile::new().map_err(init)?;
    file.write_all(data).map_err(init)?;
    file.flush().map_err(init)?;
    let mut cmd = Command::new("gpg");
    cmd.args(["--batch", "--no-tty"]);
    let passphrase = passphrase.filter(|p| !p.is_empty());
    if passphrase.is_some() {
        cmd.args(["--pinentry-mode", "loopback", "--passphrase-fd", "0"]);
    }
    cmd.args(["--sign", "--local-user", fingerprint, "--output", "-"])
        .arg(file.path());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Signing(format!("Error initializing GPG: running gpg: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| init(std::io::Error::other("no stdin")))?;
    if let Some(p) = passphrase {
        // A line, then end of input: gpg reads the passphrase, then the file.
        let _ = stdin.write_all(format!("{}\n", p.expose()).as_bytes());
    }
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Signing(format!("Error creating signature: {e}")))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(Error::Signing(format!(
            "Error creating signature: gpg: {}",
            first_line(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// The last meaningful line gpg wrote (its error), one line.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .map(|l| l.trim().trim_start_matches("gpg: ").to_string())
        .rfind(|l| !l.is_empty())
        .unwrap_or_else(|| "failed".into())
}
