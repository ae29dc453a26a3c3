//! Deprecated spellings skopeo still accepts (cmd/skopeo in 1.18, and 1.9.3 alike):
//!
//! - `--screds` and `--dcreds`, hidden aliases of `--src-creds` and `--dest-creds` of `copy`
//!   and `sync` (`dockerImageFlags(…, "screds")`);
//! - `--tls-verify` on `copy` and `sync`, for both sides unless a side's own flag is given,
//!   with a warning (`deprecatedTLSVerifyFlags`, handled in those verbs);
//! - `--tls-verify` before the verb, the default of every verb's own flag, with a warning
//!   (the root command's hidden flag, handled in [`super::main`]).
//!
//! The aliases are added to the command line here, so that the verbs' flag definitions stay
//! the current spellings.

use clap::Command;

/// The command line with skopeo's deprecated aliases.
pub(super) fn spellings(cmd: Command) -> Command {
    let creds = |c: Command| {
        c.mut_arg("src-creds", |a| a.alias("screds"))
            .mut_arg("dest-creds", |a| a.alias("dcreds"))
    };
    cmd.mut_subcommand("copy", creds)
        .mut_subcommand("sync", creds)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::spellings;

    /// Every flag skopeo 1.18 lists in `skopeo VERB --help` (plus its hidden deprecated
    /// ones), as (verb, flag, takes a value).
    const SKOPEO_FLAGS: &[(&str, &[(&str, bool)])] = &[
        (
            "",
            &[
                ("--command-timeout", true),
                ("--debug", false),
                ("--insecure-policy", false),
                ("--override-arch", true),
                ("--override-os", true),
                ("--override-variant", true),
                ("--policy", true),
                ("--registries.d", true),
                ("--tmpdir", true),
                ("--registries-conf", true),
                ("--tls-verify", false),
            ],
        ),
        (
            "copy",
            &[
                ("--additional-tag", true),
                ("-a", false),
                ("--all", false),
                ("--authfile", true),
                ("--decryption-key", true),
                ("--dest-authfile", true),
                ("--dest-cert-dir", true),
                ("--dest-compress", false),
                ("--dest-compress-format", true),
                ("--dest-compress-level", true),
                ("--dest-creds", true),
                ("--dest-daemon-host", true),
                ("--dest-decompress", false),
                ("--dest-no-creds", false),
                ("--dest-oci-accept-uncompressed-layers", false),
                ("--dest-password", true),
                ("--dest-precompute-digests", false),
                ("--dest-registry-token", true),
                ("--dest-shared-blob-dir", true),
                ("--dest-tls-verify", false),
                ("--dest-username", true),
                ("--digestfile", true),
                ("--encrypt-layer", true),
                ("--encryption-key", true),
                ("-f", true),
                ("--format", true),
                ("--image-parallel-copies", true),
                ("--multi-arch", true),
                ("--preserve-digests", false),
                ("-q", false),
                ("--quiet", false),
                ("--remove-signatures", false),
                ("--retry-delay", true),
                ("--retry-times", true),
                ("--sign-by", true),
                ("--sign-by-sigstore", true),
                ("--sign-by-sigstore-private-key", true),
                ("--sign-identity", true),
                ("--sign-passphrase-file", true),
                ("--src-authfile", true),
                ("--src-cert-dir", true),
                ("--src-creds", true),
                ("--src-daemon-host", true),
                ("--src-no-creds", false),
                ("--src-password", true),
                ("--src-registry-token", true),
                ("--src-shared-blob-dir", true),
                ("--src-tls-verify", false),
                ("--src-username", true),
                ("--screds", true),
                ("--dcreds", true),
                ("--tls-verify", false),
            ],
        ),
        (
            "inspect",
            &[
                ("--authfile", true),
                ("--cert-dir", true),
                ("--config", false),
                ("--creds", true),
                ("--daemon-host", true),
                ("-f", true),
                ("--format", true),
                ("--no-creds", false),
                ("-n", false),
                ("--no-tags", false),
                ("--password", true),
                ("--raw", false),
                ("--registry-token", true),
                ("--retry-delay", true),
                ("--retry-times", true),
                ("--shared-blob-dir", true),
                ("--tls-verify", false),
                ("--username", true),
            ],
        ),
        (
            "delete",
            &[
                ("--authfile", true),
                ("--cert-dir", true),
                ("--creds", true),
                ("--daemon-host", true),
                ("--no-creds", false),
                ("--password", true),
                ("--registry-token", true),
                ("--retry-delay", true),
                ("--retry-times", true),
                ("--shared-blob-dir", true),
                ("--tls-verify", false),
                ("--username", true),
            ],
        ),
        (
            "list-tags",
            &[
                ("--authfile", true),
                ("--cert-dir", true),
                ("--creds", true),
                ("--no-creds", false),
                ("--password", true),
                ("--registry-token", true),
                ("--retry-delay", true),
                ("--retry-times", true),
                ("--tls-verify", false),
                ("--username", true),
            ],
        ),
        (
            "login",
            &[
                ("--authfile", true),
                ("--cert-dir", true),
                ("--compat-auth-file", true),
                ("--get-login", false),
                ("-p", true),
                ("--password", true),
                ("--password-stdin", false),
                ("--tls-verify", false),
                ("-u", true),
                ("--username", true),
                ("-v", false),
                ("--verbose", false),
            ],
        ),
        (
            "logout",
            &[
                ("-a", false),
                ("--all", false),
                ("--authfile", true),
                ("--compat-auth-file", true),
                ("--tls-verify", false),
            ],
        ),
        (
            "sync",
            &[
                ("-a", false),
                ("--all", false),
                ("--append-suffix", true),
                ("--authfile", true),
                ("-d", true),
                ("--dest", true),
                ("--dest-authfile", true),
                ("--dest-cert-dir", true),
                ("--dest-creds", true),
                ("--dest-no-creds", false),
                ("--dest-password", true),
                ("--dest-registry-token", true),
                ("--dest-tls-verify", false),
                ("--dest-username", true),
                ("--digestfile", true),
                ("--dry-run", false),
                ("-f", true),
                ("--format", true),
                ("--keep-going", false),
                ("--preserve-digests", false),
                ("--remove-signatures", false),
                ("--retry-delay", true),
                ("--retry-times", true),
                ("--scoped", false),
                ("--sign-by", true),
                ("--sign-by-sigstore", true),
                ("--sign-by-sigstore-private-key", true),
                ("--sign-passphrase-file", true),
                ("-s", true),
                ("--src", true),
                ("--src-authfile", true),
                ("--src-cert-dir", true),
                ("--src-creds", true),
                ("--src-no-creds", false),
                ("--src-password", true),
                ("--src-registry-token", true),
                ("--src-tls-verify", false),
                ("--src-username", true),
                ("--screds", true),
                ("--dcreds", true),
                ("--tls-verify", false),
            ],
        ),
    ];

    /// Positional arguments that make each verb's command line complete.
    fn operands(verb: &str) -> &'static [&'static str] {
        match verb {
            "copy" | "sync" => &["docker://r.io/a:1", "docker://r.io/b:1"],
            "inspect" | "delete" | "list-tags" => &["docker://r.io/a:1"],
            "login" | "logout" => &["r.io"],
            _ => &["manifest-digest", "m.json"],
        }
    }

    /// A value the flag parses (a number, a path, a duration, a mode…).
    fn value_for(flag: &str) -> &'static str {
        match flag {
            "--retry-delay" => "1s",
            "--multi-arch" => "all",
            "-s" | "--src" | "-d" | "--dest" => "docker",
            "--dest-compress-format" => "zstd",
            "-f" | "--format" => "oci",
            _ => "1",
        }
    }

    #[test]
    fn every_skopeo_flag_is_accepted() {
        for (verb, flags) in SKOPEO_FLAGS {
            for (flag, value) in *flags {
                let mut argv = vec!["skopeo".to_string()];
                if verb.is_empty() {
                    argv.push(flag.to_string());
                    if *value {
                        argv.push("1s".into());
                    }
                    argv.extend(operands("").iter().map(|s| s.to_string()));
                } else {
                    argv.push(verb.to_string());
                    argv.push(flag.to_string());
                    if *value {
                        argv.push(value_for(flag).into());
                    }
                    argv.extend(operands(verb).iter().map(|s| s.to_string()));
                }
                let r = spellings(crate::cli::Cli::command()).try_get_matches_from(&argv);
                assert!(r.is_ok(), "{argv:?}: {}", r.unwrap_err());
            }
        }
    }

    #[test]
    fn aliases_set_the_current_flags() {
        let m = spellings(crate::cli::Cli::command())
            .try_get_matches_from([
                "skopeo",
                "copy",
                "--screds",
                "a:b",
                "--dcreds=c:d",
                "docker://r/a",
                "docker://r/b",
            ])
            .unwrap();
        let (_, copy) = m.subcommand().unwrap();
        assert_eq!(copy.get_one::<String>("src-creds").unwrap(), "a:b");
        assert_eq!(copy.get_one::<String>("dest-creds").unwrap(), "c:d");
    }
}
