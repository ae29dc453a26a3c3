//! The whole flow of `e2e.rs` with the kit's optional signature set-up (docs/openshift.md B5):
//! the non-production team's key and the production signing key made by `ferry
//! generate-sigstore-key`; the trust policy ConfigMap and the signing Secret processed from
//! their templates and mounted in the production agent's file layout; `ferry promote` run with
//! exactly the flags Jenkinsfile.prod's step gives it there. An unsigned image is refused with
//! nothing written to production; the image the team signed (skopeo 1.18,
//! `--sign-by-sigstore-private-key`) is promoted, its signature verified, the production image
//! signed with production's key and a promotion attestation written, which `ferry
//! verify-promotion` checks with production's public key.
//!
//! `FERRY_E2E_NARRATE=1` prints what happens (`scripts/demo` uses it).

use base64::Engine as _;

use crate::e2e::{COMMIT, DEV, Flow, PROD, narrate, show};
use crate::kit_signing::{install, jenkinsfile_prod_args};
use crate::support::fixtures::{ImageSpec, IndexSpec};
use crate::support::{Output, Sandbox, Side};

const TEAM_PASSPHRASE: &str = "team passphrase for e2e";
const PROD_PASSPHRASE: &str = "production passphrase for e2e";

#[track_caller]
fn no_passphrase(out: &Output) {
    for s in [TEAM_PASSPHRASE, PROD_PASSPHRASE] {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s) && !out.command.contains(s),
            "passphrase in output:\n{out}"
        );
    }
}

/// `ferry generate-sigstore-key --output-prefix <prefix>` in `keys`: the prefix's path.
fn keypair(keys: &Sandbox, prefix: &str, passphrase: &str) -> String {
    std::fs::write(
        keys.path().join(format!("{prefix}.passphrase")),
        format!("{passphrase}\n"),
    )
    .unwrap();
    let out = keys
        .ferry()
        .args(["generate-sigstore-key", "--output-prefix", prefix])
        .args(["--passphrase-file", &format!("{prefix}.passphrase")])
        .run();
    show(&out);
    out.assert_success();
    keys.path().join(prefix).display().to_string()
}

#[test]
fn e2e_signed_image_promoted_with_attestation_unsigned_refused() {
    let flow = Flow::start();
    narrate("Keys: the non-production team's and production's (ferry generate-sigstore-key)");
    let keys = Sandbox::new();
    let team = keypair(&keys, "nonprod-team", TEAM_PASSPHRASE);
    let prod = keypair(&keys, "prod-signing", PROD_PASSPHRASE);

    narrate(
        "Production installs the trust policy (templates/prod-trust-policy.yaml) and the signing key (templates/prod-signing-secret.yaml)",
    );
    let pod = tempfile::Builder::new()
        .prefix("ferry-pod-")
        .tempdir()
        .unwrap();
    let nonprod_host = flow.nonprod.host();
    let team_pub = std::fs::read_to_string(format!("{team}.pub")).unwrap();
    let trust = crate::oc_process::process(
        &crate::templates::load("prod-trust-policy.yaml"),
        &[
            ("PROD_PROJECT_NAME", PROD),
            ("NON_PROD_REGISTRY", &nonprod_host),
            ("NON_PROD_PROJECT_NAME", DEV),
            ("NON_PROD_PUBLIC_KEY", &team_pub),
        ],
    )
    .unwrap();
    let key_b64 = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(format!("{prod}.private")).unwrap());
    let signing = crate::oc_process::process(
        &crate::templates::load("prod-signing-secret.yaml"),
        &[
            ("PROD_PROJECT_NAME", PROD),
            ("SIGNING_KEY_BASE64", &key_b64),
            ("SIGNING_PASSPHRASE", PROD_PASSPHRASE),
        ],
    )
    .unwrap();
    install(
        pod.path(),
        Some(crate::templates::object(&trust, "ConfigMap")),
        Some(crate::templates::object(&signing, "Secret")),
    );
    // What Jenkinsfile.prod's step runs in that pod.
    let args = jenkinsfile_prod_args(pod.path());
    assert_eq!(args[..3], ["promote", "--record", "promotion.json"]);
    let extra: Vec<&str> = args[3..].iter().map(String::as_str).collect();
    assert!(
        extra.contains(&"--attest") && extra.contains(&"--policy"),
        "{extra:?}"
    );

    narrate(&format!(
        "CI tags an UNSIGNED image {DEV}/app:{COMMIT}: production refuses it"
    ));
    let unsigned = ImageSpec::oci().layers(&[1500]).build();
    unsigned.seed(&flow.nonprod, &format!("{DEV}/app:{COMMIT}"));
    let mark = flow.prod.mark();
    let (_, out, rec) = flow.run(&extra);
    no_passphrase(&out);
    assert_eq!(out.code, Some(1), "{out}");
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{out}");
    assert!(
        line.contains("Source image rejected: A signature was required, but no signature exists")
            && line.contains("requirement 1 (sigstoreSigned)"),
        "{out}"
    );
    assert!(rec.is_none());
    assert_eq!(flow.prod_digest(), None);
    let writes: Vec<_> = flow
        .prod
        .requests_since(mark)
        .into_iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .map(|r| r.line)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    narrate(&format!(
        "The team signs what it tags (skopeo 1.18 copy --sign-by-sigstore-private-key): {DEV}/app:{COMMIT}, two platforms"
    ));
    let image = IndexSpec::oci().platforms(2).build();
    let regd = keys.path().join("registries.d");
    std::fs::create_dir(&regd).unwrap();
    std::fs::write(
        regd.join("sigstore.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    let out = keys
        .skopeo_current()
        .args(["--registries.d", regd.to_str().unwrap()])
        .args(["copy", "-q", "--all", "--preserve-digests"])
        .args(["--sign-by-sigstore-private-key", &format!("{team}.private")])
        .args(["--sign-passphrase-file", "nonprod-team.passphrase"])
        .args(flow.nonprod.admin_args(Side::Dest, &format!("{DEV}/app")))
        .arg(image.dir_ref())
        .arg(flow.nonprod.docker_ref(&format!("{DEV}/app:{COMMIT}")))
        .run();
    out.assert_success();
    assert_eq!(
        flow.nonprod
            .manifest_digest(&format!("{DEV}/app"), COMMIT)
            .as_deref(),
        Some(image.digest.as_str())
    );

    narrate("Production promotes it: signature verified, promotion attestation written");
    let (build, out, rec) = flow.run(&extra);
    no_passphrase(&out);
    out.assert_success();
    assert_eq!(flow.prod_digest().as_deref(), Some(image.digest.as_str()));
    let team_key_id = ferry::signing::keys::PublicKey::from_pem(team_pub.as_bytes())
        .unwrap()
        .key_id();
    let src_ref = format!("{nonprod_host}/{DEV}/app:{COMMIT}");
    assert!(
        out.stderr.contains(&format!(
            "Signature verified: sigstoreSigned (sigstore, key {team_key_id}) names {src_ref}, for {}",
            image.digest
        )),
        "{out}"
    );
    // The production key signs the production image too (the .sig attachment there).
    let prod_key_id =
        ferry::signing::keys::PublicKey::from_pem(&std::fs::read(format!("{prod}.pub")).unwrap())
            .unwrap()
            .key_id();
    let dst_ref = format!("{}/{PROD}/app:{COMMIT}", flow.prod.host());
    assert!(
        out.stderr.contains(&format!(
            "Signed {} as {dst_ref} (sigstore, key {prod_key_id})",
            image.digest
        )),
        "{out}"
    );
    let sig_tag = format!("{}.sig", image.digest.replace(':', "-"));
    assert!(
        flow.prod
            .get_manifest(&format!("{PROD}/app"), &sig_tag)
            .is_some()
    );
    let att_tag = format!("{}.att", image.digest.replace(':', "-"));
    assert!(
        out.stderr
            .contains(&format!("Promotion attestation written: {att_tag}")),
        "{out}"
    );
    let rec = rec.expect("a record");
    assert_eq!(rec["attestation"]["tag"], att_tag.as_str());
    assert!(
        rec["signatures_verified"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "{rec}"
    );
    assert!(
        flow.prod
            .get_manifest(&format!("{PROD}/app"), &att_tag)
            .is_some()
    );

    narrate("Anyone with production's public key checks the promotion: ferry verify-promotion");
    let verify = |key: &str| {
        let mut t = keys.ferry();
        t.args(["verify-promotion", "--format", "json"])
            .arg(flow.prod.docker_ref(&format!("{PROD}/app:{COMMIT}")))
            .args(["--key", key])
            .args(["--source-digest", &image.digest]);
        // The lab's token through the environment, as a pipeline would give it.
        for a in flow.prod.admin_args(Side::Plain, &format!("{PROD}/app")) {
            match a.strip_prefix("--registry-token=") {
                Some(token) => t.env("FERRY_REGISTRY_TOKEN", token),
                None => t.arg(a),
            };
        }
        let out = t.run();
        show(&out);
        out
    };
    let out = verify(&format!("{prod}.pub"));
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let p = &v["predicate"];
    assert_eq!(p["source"]["digest"], image.digest.as_str());
    assert_eq!(p["source"]["reference"], src_ref.as_str());
    assert_eq!(p["destination"]["digest"], image.digest.as_str());
    assert_eq!(p["pipeline"]["build_number"], build.number.to_string());
    assert_eq!(p["signatures_verified"][0]["key"], team_key_id.as_str());
    // The team's key is not production's: refused.
    let out = verify(&format!("{team}.pub"));
    assert_eq!(out.code, Some(1), "{out}");
}
