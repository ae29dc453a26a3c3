//! The signing flags of `copy`, `sync` and `promote` (skopeo 1.18's), and loading the keys
//! they name — once, before anything is copied.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::options::Personality;
use super::signing::{prompt_passphrase, read_passphrase_file};
use crate::copy::{Signer, parse_identity};
use crate::error::{Error, Result};
use crate::redact::Secret;
use crate::signing::keys::PrivateKey;

/// The environment variable a signing passphrase may come from (ferry).
pub(super) const PASSPHRASE_ENV: &str = "FERRY_SIGN_PASSPHRASE";

/// `--help` text on signing, shared by the commands that sign.
pub(super) const SIGNING_HELP: &str = "Signing (--sign-by FINGERPRINT: GnuPG simple signing \
with the `gpg` program and the key of $GNUPGHOME; --sign-by-sigstore-private-key PATH: a \
sigstore signature with the encrypted key skopeo's and ferry's generate-sigstore-key write): \
the manifests written are signed as skopeo signs them — the image; for an index copied whole \
each image copied and the index — as the destination reference, or --sign-identity. The key is \
loaded and decrypted once, before anything is copied, and the signatures are made before \
anything is written: a wrong passphrase, an unreadable key or a key gpg does not have fail \
with exit 1 and the destination untouched. They are stored before the tag moves: simple \
signatures in OpenShift's signature API where the registry has it, else in the lookaside \
location registries.d configures (lookaside-staging, file:// only, as skopeo; without one, as \
skopeo, the local default directory ~/.local/share/containers/sigstore — as ferry, a refusal \
before copying: that directory goes away with a Jenkins pod), dir:'s signature-N files; sigstore signatures in the sha256-<hex>.sig attachment. As skopeo, that \
attachment is written only where registries.d sets use-sigstore-attachments (else: exit 1, \
`writing sigstore attachments is disabled by configuration`, before anything is written); as \
ferry, always. The passphrase: --sign-passphrase-file (its first line), else the environment \
variable FERRY_SIGN_PASSPHRASE (ferry), else a prompt when standard input is a terminal (the \
sigstore key; gpg asks through its agent); never on the command line, never printed. As \
ferry, --sign-identity and --sign-passphrase-file without a key to sign with are usage errors \
(skopeo ignores them).";

/// skopeo's signing flags.
#[derive(Debug, Clone, Default, Args)]
pub(super) struct SignArgs {
    /// Sign the image using a GPG key with the specified FINGERPRINT (simple signing, the
    /// `gpg` program, $GNUPGHOME).
    #[arg(long, value_name = "FINGERPRINT")]
    pub(super) sign_by: Option<String>,
    /// Sign the image using a sigstore private key at PATH (encrypted, as
    /// generate-sigstore-key writes it).
    #[arg(long, value_name = "PATH")]
    pub(super) sign_by_sigstore_private_key: Option<PathBuf>,
    /// Read a passphrase for signing an image from PATH (its first line; else
    /// $FERRY_SIGN_PASSPHRASE, else a terminal prompt).
    #[arg(long, value_name = "PATH")]
    pub(super) sign_passphrase_file: Option<PathBuf>,
    /// Identity of signed image, must be a fully specified docker reference. Defaults to the
    /// target docker reference.
    #[arg(long, value_name = "REF")]
    pub(super) sign_identity: Option<String>,
    /// Refused: keyless sigstore signing (Fulcio and Rekor) needs the network at signing
    /// time; sign with --sign-by-sigstore-private-key.
    #[arg(long, value_name = "PATH")]
    pub(super) sign_by_sigstore: Option<String>,
    /// Refused: Sequoia-PGP signing; ferry signs OpenPGP through GnuPG (--sign-by).
    #[arg(long, value_name = "FINGERPRINT")]
    pub(super) sign_by_sq_fingerprint: Option<String>,
}

impl SignArgs {
    /// The keys to sign with, loaded as ferry loads them (`None`: no signing flag). Reads
    /// the passphrase (file, `FERRY_SIGN_PASSPHRASE`, terminal) and decrypts the sigstore
    /// key now.
    pub(super) fn load(&self) -> Result<Option<Arc<Signer>>> {
        self.load_as(Personality::Ferry)
    }

    /// [`load`](Self::load), with skopeo's leniency when invoked as `skopeo`.
    pub(super) fn load_as(&self, personality: Personality) -> Result<Option<Arc<Signer>>> {
        if self
            .sign_by_sigstore
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(Error::Unsupported(
                "--sign-by-sigstore (keyless signing with Fulcio and Rekor needs the network; sign with --sign-by-sigstore-private-key)".into(),
            ));
        }
        if self
            .sign_by_sq_fingerprint
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(Error::Unsupported(
                "--sign-by-sq-fingerprint (Sequoia-PGP; ferry signs OpenPGP through GnuPG: --sign-by)".into(),
            ));
        }
        // As skopeo, an empty value is no value.
        let gpg = self.sign_by.as_deref().filter(|s| !s.is_empty());
        let key_path = self
            .sign_by_sigstore_private_key
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        let passphrase_file = self
            .sign_passphrase_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        let identity = self.sign_identity.as_deref().filter(|s| !s.is_empty());
        if passphrase_file.is_some() && gpg.is_some() && key_path.is_some() {
            // skopeo's words.
            return Err(Error::usage(
                "Only one of --sign-by and sign-by-sigstore-private-key can be used with sign-passphrase-file",
            ));
        }
        if gpg.is_none() && key_path.is_none() && personality == Personality::Ferry {
            if identity.is_some() {
                return Err(Error::usage(
                    "--sign-identity needs --sign-by or --sign-by-sigstore-private-key",
                ));
            }
            if passphrase_file.is_some() {
                return Err(Error::usage(
                    "--sign-passphrase-file needs --sign-by or --sign-by-sigstore-private-key",
                ));
            }
        }
        let file = passphrase_file.map(read_passphrase_file).transpose()?;
        let identity = identity.map(parse_identity).transpose()?;
        let env = || {
            std::env::var(PASSPHRASE_ENV)
                .ok()
                .map(|p| Secret::new(p.split('\n').next().unwrap_or("").to_string()))
        };
        let sigstore = match key_path {
            Some(path) => {
                let passphrase = match file.clone().or_else(env) {
                    Some(p) => p,
                    None => prompt_passphrase(path).map_err(|e| {
                        Error::usage(format!(
                            "{e} (give --sign-passphrase-file or {PASSPHRASE_ENV})"
                        ))
                    })?,
                };
                Some(load_key(path, &passphrase)?)
            }
            None => None,
        };
        // gpg asks its agent when no passphrase is given (as skopeo lets GnuPG ask).
        let gpg = gpg.map(|f| (f.to_string(), file.or_else(env)));
        Ok(Signer::new(gpg, sigstore, identity, personality == Personality::Ferry).map(Arc::new))
    }
}

/// Read and decrypt a sigstore private key (skopeo's messages; the passphrase is in none).
fn load_key(path: &Path, passphrase: &Secret) -> Result<PrivateKey> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Signing(format!("reading private key from {}: {e}", path.display())))?;
    PrivateKey::from_encrypted_pem(&bytes, passphrase)
        .map_err(|e| Error::Signing(format!("initializing private key: {e}")))
}
