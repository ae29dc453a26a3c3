//! `ferry promote --attest` and `ferry verify-promotion`: the promotion record signed as an
//! in-toto statement in a DSSE envelope and attached to the production digest as cosign
//! attaches attestations (the `sha256-<hex>.att` tag, and a referrer where the registry has
//! the referrers API), then checked — and refused when tampered with, moved onto another
//! image, from another source digest, or under another key.
//!
//! The lab of [`crate::verify_copy`]: the non-production image is signed by skopeo 1.18 with
//! the team's sigstore key, and the promotion runs under a policy requiring that signature.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::promote::{promotion_yaml, write_config};
use crate::support::Output;
use crate::support::faults::FaultProxy;
use crate::support::fixtures::{Fixture, ImageSpec};
use crate::support::referrers::{DSSE, ReferrersApi, upload_blob};
use crate::verify_copy::{Lab, seed};

const PREDICATE_TYPE: &str = "urn:ferry:promotion:v1";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A lab with the team's signed image `dev/app:v1` (and an unsigned `dev/other:v1`), the
/// production key pair made by `ferry generate-sigstore-key`, a policy requiring the team's
/// signature, and a token file.
struct Attest {
    lab: Lab,
    fx: Fixture,
    other: Fixture,
    team_pub: String,
    prod: String,
    policy: PathBuf,
    tokens: PathBuf,
}

impl Attest {
    fn new() -> Attest {
        let lab = Lab::new();
        let fx = ImageSpec::oci().layers(&[3000]).build();
        seed(&lab, &fx, "base/app:v1");
        let team = lab.sigstore_key("team");
        let private = format!("{team}.private");
        let sign = [
            "--sign-by-sigstore-private-key",
            private.as_str(),
            "--sign-passphrase-file",
            "pass",
        ];
        lab.sign(true, &sign, "base/app:v1", "dev/app:v1", false);
        let other = ImageSpec::oci().layers(&[700]).build();
        seed(&lab, &other, "base/other:v1");
        lab.sign(true, &sign, "base/other:v1", "dev/other:v1", false);
        lab.file("prod-pass", "production passphrase\n");
        lab.sb
            .ferry()
            .args(["generate-sigstore-key", "--output-prefix", "prod"])
            .args(["--passphrase-file", "prod-pass"])
            .run()
            .assert_success();
        let prod = lab.sb.path().join("prod").display().to_string();
        let doc = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {
                format!("{}/dev", lab.src.host()):
                    [{"type": "sigstoreSigned", "keyPath": format!("{team}.pub")}]
            }}
        });
        let policy = lab.file("policy.json", doc.to_string());
        let tokens = lab.file("token", "unused-on-an-open-registry\n");
        Attest {
            lab,
            fx,
            other,
            team_pub: format!("{team}.pub"),
            prod,
            policy,
            tokens,
        }
    }

    /// `ferry promote` of `dev/<image>:v1` to `<prod_host>/prod/<image>:v1`, as the production
    /// pipeline runs it (Jenkins' environment set), with `extra` flags.
    fn promote(&self, prod_host: &str, image: &str, extra: &[&str]) -> Output {
        self.promote_with(prod_host, image, extra, &[])
    }

    fn promote_with(
        &self,
        prod_host: &str,
        image: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let lab = &self.lab;
        let mut ferry = lab.sb.ferry();
        for (k, v) in env {
            ferry.env(k, v);
        }
        let config = write_config(
            lab.sb.path(),
            &promotion_yaml(&[&lab.src.host()], &[prod_host], &["dev"], &["prod"]),
        );
        ferry
            .env("JOB_NAME", "app-prod")
            .env("BUILD_NUMBER", "42")
            .env("BUILD_URL", "https://jenkins.example/job/app-prod/42/")
            .args(["--registries.d", lab.regd.to_str().unwrap(), "--policy"])
            .arg(&self.policy)
            .args(["promote", "--image-name", image, "--tag", "v1", "--config"])
            .arg(&config)
            .args(["--non-prod-registry", &lab.src.host()])
            .args(["--prod-registry", prod_host])
            .args(["--non-prod-project", "dev", "--prod-project", "prod"])
            .arg("--src-token-file")
            .arg(&self.tokens)
            .arg("--dest-token-file")
            .arg(&self.tokens)
            .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
            .args(extra)
            .run()
    }

    fn attest_flags(&self) -> Vec<String> {
        vec![
            "--attest".into(),
            "--sign-by-sigstore-private-key".into(),
            format!("{}.private", self.prod),
            "--sign-passphrase-file".into(),
            "prod-pass".into(),
        ]
    }

    /// `ferry verify-promotion IMAGE --key KEY` with `extra` flags.
    fn verify(&self, image: &str, key: &str, extra: &[&str]) -> Output {
        self.lab
            .sb
            .ferry()
            .args([
                "verify-promotion",
                image,
                "--key",
                key,
                "--tls-verify=false",
            ])
            .args(extra)
            .run()
    }

    fn team_key_id(&self) -> String {
        ferry::signing::keys::PublicKey::from_pem(&std::fs::read(&self.team_pub).unwrap())
            .unwrap()
            .key_id()
    }

    fn prod_key_id(&self) -> String {
        ferry::signing::keys::PublicKey::from_pem(
            &std::fs::read(format!("{}.pub", self.prod)).unwrap(),
        )
        .unwrap()
        .key_id()
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
                .chars()
                .take(400)
                .collect::<String>()
        )
    })
}

fn att_tag(digest: &str) -> String {
    format!("{}.att", digest.replace(':', "-"))
}

fn base64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

/// The promotion through a registry with the referrers API: the attestation is in the `.att`
/// tag and a referrer, laid out as cosign lays them out; verify-promotion prints the record
/// (text and JSON) with the real digests; another key, or a --source-digest of another image,
/// is refused.
#[test]
fn promote_attest_then_verify_promotion() {
    let t = Attest::new();
    let lab = &t.lab;
    let proxy = FaultProxy::start(&lab.dst);
    let api = ReferrersApi::serve(&proxy);
    let record = lab.sb.path().join("record.json");
    let mut flags = t.attest_flags();
    flags.extend(["--record".to_string(), record.display().to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let out = t.promote(&proxy.host(), "app", &flags);
    out.assert_success();
    let digest = t.fx.digest.as_str();
    assert_eq!(
        lab.dst.manifest_digest("prod/app", "v1").as_deref(),
        Some(digest)
    );

    // The .att attachment, as cosign writes it.
    let att = lab
        .dst
        .get_manifest("prod/app", &att_tag(digest))
        .expect("the .att tag");
    let m = json_of(&att.bytes);
    assert_eq!(m["mediaType"], OCI_MANIFEST, "{m}");
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{m}");
    let layer = &layers[0];
    assert_eq!(layer["mediaType"], DSSE, "{m}");
    assert_eq!(layer["annotations"]["predicateType"], PREDICATE_TYPE, "{m}");
    assert_eq!(
        layer["annotations"]["dev.cosignproject.cosign/signature"], "",
        "{m}"
    );
    let config = lab
        .dst
        .get_blob("prod/app", m["config"]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        json_of(&config)["rootfs"]["diff_ids"],
        json!([layer["digest"]]),
        "the config lists the layer as containers/image and cosign do"
    );
    let envelope_digest = layer["digest"].as_str().unwrap().to_string();
    let envelope = json_of(&lab.dst.get_blob("prod/app", &envelope_digest).unwrap());
    assert_eq!(envelope["payloadType"], IN_TOTO, "{envelope}");
    assert_eq!(envelope["signatures"][0]["keyid"], t.prod_key_id().as_str());
    let statement = json_of(&base64(envelope["payload"].as_str().unwrap()));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], PREDICATE_TYPE);
    assert_eq!(
        statement["subject"],
        json!([{"name": format!("{}/prod/app", proxy.host()),
                "digest": {"sha256": digest.trim_start_matches("sha256:")}}])
    );

    // The referrer: subject = the production digest, the same envelope.
    let referrers = api.referrers("prod/app", digest);
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    let r = json_of(
        &lab.dst
            .get_manifest("prod/app", &referrers[0])
            .unwrap()
            .bytes,
    );
    assert_eq!(r["artifactType"], IN_TOTO, "{r}");
    assert_eq!(
        r["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(r["subject"]["digest"], digest, "{r}");
    assert_eq!(r["subject"]["size"], t.fx.image().manifest.len());
    assert_eq!(r["layers"][0]["digest"], envelope_digest.as_str(), "{r}");
    assert_eq!(r["layers"][0]["mediaType"], DSSE);

    // The record names both, and the run said so.
    let rec = json_of(&std::fs::read(&record).unwrap());
    assert_eq!(rec["attestation"]["tag"], att_tag(digest).as_str(), "{rec}");
    assert_eq!(
        rec["attestation"]["envelope_digest"],
        envelope_digest.as_str()
    );
    assert_eq!(rec["attestation"]["referrer"], referrers[0].as_str());
    assert!(
        out.stderr.contains(&format!(
            "Promotion attestation written: {}",
            att_tag(digest)
        )),
        "{out}"
    );

    // verify-promotion: text.
    let image = format!("docker://{}/prod/app:v1", proxy.host());
    let key = format!("{}.pub", t.prod);
    let out = t.verify(&image, &key, &[]);
    out.assert_success();
    let src_ref = format!("{}/dev/app:v1", lab.src.host());
    let dst_ref = format!("{}/prod/app:v1", proxy.host());
    for line in [
        format!("Promotion attestation verified for {dst_ref} ({digest})"),
        format!("source:       {src_ref} {digest}"),
        format!("destination:  {dst_ref} {digest}"),
        "replaced:     nothing".to_string(),
        "pipeline:     app-prod #42 https://jenkins.example/job/app-prod/42/".to_string(),
        format!(
            "signature:    sigstore key {} names {src_ref} (for {digest})",
            t.team_key_id()
        ),
        format!("key:          {}", t.prod_key_id()),
        format!(
            "found in:     {} layer 1, referrer {} layer 1",
            att_tag(digest),
            referrers[0]
        ),
    ] {
        assert!(out.stdout.contains(&line), "{line:?} in {out}");
    }

    // JSON, with --source-digest of the right image.
    let out = t.verify(
        &image,
        &key,
        &["--format", "json", "--source-digest", digest],
    );
    out.assert_success();
    let v = json_of(out.stdout.as_bytes());
    let p = &v["predicate"];
    assert_eq!(v["digest"], digest);
    assert_eq!(v["predicateType"], PREDICATE_TYPE);
    assert_eq!(p["source"], json!({"reference": src_ref, "digest": digest}));
    assert_eq!(
        p["destination"],
        json!({"reference": dst_ref, "digest": digest})
    );
    assert_eq!(p["replaced"], Value::Null);
    assert_eq!(
        p["pipeline"],
        json!({"name": "app-prod", "build_number": "42",
               "build_url": "https://jenkins.example/job/app-prod/42/"})
    );
    assert_eq!(p["signatures_verified"].as_array().map(Vec::len), Some(1));
    assert_eq!(p["signatures_verified"][0]["key"], t.team_key_id().as_str());
    assert_eq!(p["signatures_verified"][0]["identity"], src_ref.as_str());
    assert_eq!(p["signatures_verified"][0]["digest"], digest);
    assert_eq!(p["ferry_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["time"], rec["time"]);

    // Another source digest; another key: refused, one line.
    let out = t.verify(&image, &key, &["--source-digest", &t.other.digest]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "is from source digest {digest}, not {}",
            t.other.digest
        )),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
    let out = t.verify(&image, &t.team_pub, &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("the DSSE envelope has no signature by the given key"),
        "{out}"
    );
    // Promoted again: nothing copied, this run's attestation added to the .att tag and as a
    // referrer, the first one kept — unless both runs fell in the same second: then the
    // statement is the same, and so is the envelope (ECDSA signatures are deterministic,
    // RFC 6979), which is not stored twice. verify-promotion still passes.
    let out = t.promote(&proxy.host(), "app", &flags);
    out.assert_success();
    assert!(out.stdout.starts_with("Already promoted"), "{out}");
    let rec2 = json_of(&std::fs::read(&record).unwrap());
    let expected = if rec2["time"] == rec["time"] { 1 } else { 2 };
    let att = lab
        .dst
        .get_manifest("prod/app", &att_tag(digest))
        .expect("the .att tag");
    let m = json_of(&att.bytes);
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(expected), "{m}");
    assert_eq!(m["layers"][0]["digest"], envelope_digest.as_str(), "{m}");
    assert_eq!(
        m["layers"][expected - 1]["digest"],
        rec2["attestation"]["envelope_digest"],
        "{m}"
    );
    assert_eq!(api.referrers("prod/app", digest).len(), expected);
    t.verify(&image, &key, &["--source-digest", digest])
        .assert_success();

    // No image: exit 2.
    let out = t.verify(
        &format!("docker://{}/prod/nothing:v1", proxy.host()),
        &key,
        &[],
    );
    assert_eq!(out.code, Some(2), "{out}");
}

/// A registry without the referrers API gets the `.att` tag only (no fallback index); a byte
/// flipped in the stored envelope, and the attestation moved onto another image, are refused.
#[test]
fn tampered_or_moved_attestations_are_refused() {
    let t = Attest::new();
    let lab = &t.lab;
    let host = lab.dst.host();
    let flags = t.attest_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    t.promote(&host, "app", &flags).assert_success();
    t.promote(&host, "other", &[]).assert_success();
    let digest = t.fx.digest.as_str();
    let fallback = digest.replace(':', "-");
    assert!(
        lab.dst.get_manifest("prod/app", &fallback).is_none(),
        "no referrers fallback index on a registry without the API"
    );
    let att = lab.dst.get_manifest("prod/app", &att_tag(digest)).unwrap();
    let key = format!("{}.pub", t.prod);
    let image = lab.dst.docker_ref("prod/app:v1");
    t.verify(&image, &key, &[]).assert_success();

    // The attestation copied onto the other image: its blobs, then its manifest, under the
    // other digest's .att tag.
    let other_image = lab.dst.docker_ref("prod/other:v1");
    let out = t.verify(&other_image, &key, &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no promotion attestation"), "{out}");
    let m = json_of(&att.bytes);
    let envelope_digest = m["layers"][0]["digest"].as_str().unwrap();
    let envelope = lab.dst.get_blob("prod/app", envelope_digest).unwrap();
    let config = lab
        .dst
        .get_blob("prod/app", m["config"]["digest"].as_str().unwrap())
        .unwrap();
    upload_blob(&lab.dst.url(), "prod/other", &envelope);
    upload_blob(&lab.dst.url(), "prod/other", &config);
    assert_eq!(
        lab.dst.put_manifest(
            "prod/other",
            &att_tag(&t.other.digest),
            OCI_MANIFEST,
            &att.bytes
        ),
        201
    );
    let out = t.verify(&other_image, &key, &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "the promotion statement is not about {}",
            t.other.digest
        )),
        "{out}"
    );

    // One byte of the stored envelope flipped (inside the signed payload), the attachment
    // rewritten to name it.
    let mut doc = json_of(&envelope);
    let mut payload = base64(doc["payload"].as_str().unwrap());
    let i = payload.len() / 2;
    payload[i] ^= 0x01;
    {
        use base64::Engine as _;
        doc["payload"] = json!(base64::engine::general_purpose::STANDARD.encode(&payload));
    }
    let tampered = serde_json::to_vec(&doc).unwrap();
    let tampered_digest = crate::support::sha256_digest(&tampered);
    upload_blob(&lab.dst.url(), "prod/app", &tampered);
    let rewritten = String::from_utf8(att.bytes)
        .unwrap()
        .replace(envelope_digest, &tampered_digest)
        .replace(
            &format!("\"size\":{}", envelope.len()),
            &format!("\"size\":{}", tampered.len()),
        );
    assert_eq!(
        lab.dst.put_manifest(
            "prod/app",
            &att_tag(digest),
            OCI_MANIFEST,
            rewritten.as_bytes()
        ),
        201
    );
    let out = t.verify(&image, &key, &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "no valid promotion attestation for {digest}: {} layer 1:",
            att_tag(digest)
        )),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

/// `--attest` without a key, or with a wrong passphrase: exit 1, one line, before any
/// request to production; the production tag does not exist.
#[test]
fn attest_without_a_usable_key_is_refused_before_anything_is_copied() {
    let t = Attest::new();
    let lab = &t.lab;
    let host = lab.dst.host();
    let private = format!("{}.private", t.prod);
    lab.file("wrong-pass", "not the passphrase\n");
    for (extra, says) in [
        (
            vec!["--attest"],
            "--attest needs --sign-by-sigstore-private-key",
        ),
        (
            vec!["--attest", "--sign-by-sigstore-private-key", &private],
            "give --sign-passphrase-file or FERRY_SIGN_PASSPHRASE",
        ),
        (
            vec![
                "--attest",
                "--sign-by-sigstore-private-key",
                &private,
                "--sign-passphrase-file",
                "wrong-pass",
            ],
            "decryption failed",
        ),
    ] {
        let mark = lab.dst.mark();
        let out = t.promote(&host, "app", &extra);
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
        assert!(out.stderr.contains(says), "{says:?}: {out}");
        assert!(!out.stderr.contains("production passphrase"), "{out}");
        assert!(lab.dst.requests_since(mark).is_empty(), "{out}");
    }
    assert_eq!(lab.dst.manifest_digest("prod/app", "v1"), None);
    // The passphrase from the environment works as the file does.
    let out = t.promote_with(
        &host,
        "app",
        &["--attest", "--sign-by-sigstore-private-key", &private],
        &[("FERRY_SIGN_PASSPHRASE", "production passphrase")],
    );
    out.assert_success();
    assert!(
        lab.dst
            .get_manifest("prod/app", &att_tag(&t.fx.digest))
            .is_some(),
        "{out}"
    );
}
