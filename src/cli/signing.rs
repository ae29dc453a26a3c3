//! skopeo's signing verbs on local files: `standalone-sign`, `standalone-verify`,
//! `generate-sigstore-key` — same arguments, outputs and exit codes as skopeo 1.18.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::policy::identity::DockerName;
use crate::redact::Secret;
use crate::signing::keys::PrivateKey;
use crate::signing::openpgp::{Keyring, gpg_export};
use crate::signing::{digest_matches, simple};

pub(super) const SIGN_ABOUT: &str =
    "Create a simple signature of a manifest with GnuPG, as skopeo does.

The signature (an OpenPGP message holding the manifest's digest and DOCKER-REFERENCE) is made \
by the `gpg` program with the key KEY-FINGERPRINT of the user's keyring ($GNUPGHOME or \
~/.gnupg). A passphrase is read from the first line of --passphrase-file and handed to gpg \
through a pipe, never on a command line.";

pub(super) const VERIFY_ABOUT: &str = "Verify a simple signature of a manifest, as skopeo does.

KEY-FINGERPRINTS can be a comma separated list of fingerprints, or \"any\" if you trust all the \
keys in the public key file. Without --public-key-file the keys of the user's GnuPG keyring \
are used. Prints `Signature verified using fingerprint F, digest D`.";

pub(super) const KEYGEN_ABOUT: &str = "Generate a sigstore public/private key pair, as skopeo does.

Writes PREFIX.pub (PEM public key) and PREFIX.private (ECDSA P-256, encrypted as cosign and \
skopeo encrypt it: scrypt and NaCl secretbox) and refuses to overwrite either. The passphrase \
is the first line of --passphrase-file, or is asked for on the terminal.";

/// Arguments of `standalone-sign`.
#[derive(Debug, Args)]
pub(super) struct StandaloneSignArgs {
    /// The manifest file.
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
    /// The identity to sign the manifest as.
    #[arg(value_name = "DOCKER-REFERENCE")]
    reference: String,
    /// The GnuPG key to sign with.
    #[arg(value_name = "KEY-FINGERPRINT")]
    fingerprint: String,
    /// Output the signature to SIGNATURE.
    #[arg(short = 'o', long = "output", value_name = "SIGNATURE")]
    output: Option<PathBuf>,
    /// File that contains a passphrase for the key (its first line).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

/// Arguments of `standalone-verify`.
#[derive(Debug, Args)]
pub(super) struct StandaloneVerifyArgs {
    /// The manifest file.
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
    /// The identity the signature must name.
    #[arg(value_name = "DOCKER-REFERENCE")]
    reference: String,
    /// Fingerprints of accepted keys, comma separated, or "any".
    #[arg(value_name = "KEY-FINGERPRINTS")]
    fingerprints: String,
    /// The signature file.
    #[arg(value_name = "SIGNATURE")]
    signature: PathBuf,
    /// File containing public keys. If not specified, will use local GPG keys.
    #[arg(long, value_name = "PATH")]
    public_key_file: Option<PathBuf>,
}

/// Arguments of `generate-sigstore-key`.
#[derive(Debug, Args)]
pub(super) struct GenerateKeyArgs {
    /// Write the keys to PREFIX.pub and PREFIX.private.
    #[arg(long, value_name = "PREFIX")]
    output_prefix: Option<String>,
    /// Read a passphrase for the private key from PATH (its first line).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

/// The first line of a passphrase file, as skopeo (and gpg) read it.
pub(super) fn read_passphrase_file(path: &Path) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading passphrase file", path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(Secret::new(
        text.split('\n').next().unwrap_or("").to_string(),
    ))
}

/// Write `bytes` to `path` with `mode`, through a temporary file renamed into place.
fn write_file(path: &Path, bytes: &[u8], mode: u32, what: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{:016x}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        fastrand::u64(..)
    ));
    let err = |e| Error::io(format!("Error writing {what} to"), path, e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

pub(super) fn standalone_sign(args: StandaloneSignArgs) -> Result<()> {
    let Some(output) = args.output else {
        return Err(Error::usage(
            "Usage: skopeo standalone-sign manifest docker-reference key-fingerprint -o signature",
        ));
    };
    let manifest =
        std::fs::read(&args.manifest).map_err(|e| Error::io("Error reading", &args.manifest, e))?;
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(read_passphrase_file)
        .transpose()?;
    let sig = simple::sign(
        &manifest,
        &args.reference,
        &args.fingerprint,
        passphrase.as_ref(),
    )?;
    write_file(&output, &sig, 0o644, "signature")
}

pub(super) fn standalone_verify(args: StandaloneVerifyArgs) -> Result<()> {
    let mut expected: Vec<String> = args.fingerprints.split(',').map(str::to_string).collect();
    let any = expected.len() == 1 && expected[0] == "any";
    if args.public_key_file.is_none() && any {
        return Err(Error::usage(
            "Cannot use any fingerprint without a public key file",
        ));
    }
    let manifest = std::fs::read(&args.manifest)
        .map_err(|e| Error::io("Error reading manifest from", &args.manifest, e))?;
    let signature = std::fs::read(&args.signature)
        .map_err(|e| Error::io("Error reading signature from", &args.signature, e))?;
    let keys = match &args.public_key_file {
        Some(p) => {
            std::fs::read(p).map_err(|e| Error::io("Error reading public keys from", p, e))?
        }
        None => gpg_export()?,
    };
    let keyring = Keyring::from_blobs(&[keys])
        .map_err(|e| Error::Signing(format!("Error initializing GPG: {e}")))?;
    if any {
        expected = keyring.fingerprints();
    }
    let fail = |m: String| Error::Signing(format!("Error verifying signature: {m}"));
    let expected_ref =
        DockerName::parse_normalized(&args.reference).map_err(|e| fail(e.to_string()))?;
    let (payload, fingerprint) =
        simple::verify(&keyring, &signature).map_err(|e| fail(e.to_string()))?;
    if !expected.contains(&fingerprint) {
        return Err(fail(format!(
            "Signature by {fingerprint} does not match expected fingerprints [{}]",
            expected.join(" ")
        )));
    }
    if !digest_matches(&manifest, &payload.manifest_digest) {
        return Err(fail(format!(
            "Signature for docker digest {:?} does not match",
            payload.manifest_digest.as_str()
        )));
    }
    let signed_ok = DockerName::parse_normalized(&payload.docker_reference).map_err(|_| {
        fail(format!(
            "Invalid docker reference {:?} in signature",
            payload.docker_reference
        ))
    })?;
    if signed_ok.to_string() != expected_ref.to_string() {
        return Err(fail(format!(
            "Docker reference {:?} does not match {:?}",
            payload.docker_reference, args.reference
        )));
    }
    println!(
        "Signature verified using fingerprint {fingerprint}, digest {}",
        payload.manifest_digest
    );
    Ok(())
}

pub(super) fn generate_sigstore_key(args: GenerateKeyArgs) -> Result<()> {
    let Some(prefix) = args.output_prefix.filter(|p| !p.is_empty()) else {
        return Err(Error::usage(
            "Usage: generate-sigstore-key --output-prefix PREFIX",
        ));
    };
    let public = PathBuf::from(format!("{prefix}.pub"));
    let private = PathBuf::from(format!("{prefix}.private"));
    for p in [&public, &private] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(Error::Refused(format!(
                "Refusing to overwrite existing {:?}",
                p.display().to_string()
            )));
        }
    }
    let passphrase = match &args.passphrase_file {
        Some(f) => read_passphrase_file(f)?,
        None => prompt_passphrase(&private)?,
    };
    let key = PrivateKey::generate_p256();
    let sealed = key
        .to_encrypted_pem(&passphrase)
        .map_err(|e| Error::Signing(format!("Error generating key pair: {e}")))?;
    write_file(&private, sealed.as_bytes(), 0o600, "private key")?;
    write_file(
        &public,
        key.public().to_pem().as_bytes(),
        0o644,
        "public key",
    )?;
    // skopeo 1.18 ends this line without a newline.
    print!(
        "Key written to {:?} and {:?}",
        private.display().to_string(),
        public.display().to_string()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// Ask for a passphrase on the terminal, without echo, as skopeo does (rpassword restores
/// the terminal, Ctrl-C included).
pub(super) fn prompt_passphrase(private: &Path) -> Result<Secret> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!(
            "Cannot prompt for a passphrase for key {}, standard input is not a TTY",
            private.display()
        )));
    }
    let line = rpassword::prompt_password(format!("Passphrase for key {}: ", private.display()))
        .map_err(|e| Error::usage(format!("Error reading password: {e}")))?;
    Ok(Secret::new(line))
}
