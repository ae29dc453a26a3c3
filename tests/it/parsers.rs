//! Property-based tests of the parsers that read untrusted input: image references (command
//! line, pipeline parameters), `WWW-Authenticate` challenges and token answers (any server),
//! manifests (any registry), `Link`, `Retry-After` and durations. Each never panics on any
//! input, and accepts what it must accept with the meaning it has.

use bytes::Bytes;
use ferry::manifest::{self, Kind};
use ferry::reference::{Digest, ImageRef, Target};
use ferry::registry::auth::{Challenge, parse_challenges, parse_token_response};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- references ------------------------------------------------------------------------------

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}"
}

fn registry() -> impl Strategy<Value = String> {
    (
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,5}",
        proptest::option::of(1u16..=65535),
    )
        .prop_filter("not Docker Hub", |(h, _)| {
            h != "docker.io" && h != "index.docker.io"
        })
        .prop_map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}"
}

fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn references_never_panic_and_round_trip(s in "\\PC{0,80}") {
        for input in [s.clone(), format!("docker://{s}")] {
            if let Ok(r) = ImageRef::parse_transport(&input) {
                let again = ImageRef::parse(&r.to_string()).expect("a parsed reference prints as a valid one");
                prop_assert_eq!(again, r);
            }
        }
    }

    #[test]
    fn valid_references_parse_to_their_parts(
        reg in registry(),
        repo in proptest::collection::vec(component(), 1..4),
        tag in tag(),
        hex in hex64(),
        by_digest in any::<bool>(),
    ) {
        let repo = repo.join("/");
        let (input, target) = if by_digest {
            let d = format!("sha256:{hex}");
            (format!("docker://{reg}/{repo}@{d}"), Target::Digest(d.parse::<Digest>().unwrap()))
        } else {
            (format!("docker://{reg}/{repo}:{tag}"), Target::Tag(tag))
        };
        let r = ImageRef::parse_transport(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&r.registry, &reg);
        prop_assert_eq!(&r.repository, &repo);
        prop_assert_eq!(r.target, target);
    }

    #[test]
    fn uppercase_repositories_and_bad_digests_are_refused(
        reg in registry(),
        repo in component(),
        upper in "[A-Z]",
        hex in "[0-9a-f]{1,63}",
        alg in "[a-z]{3,6}",
    ) {
        let bad = [
            format!("docker://{reg}/{repo}{upper}:v1"),
            format!("docker://{reg}/{repo}@sha256:{hex}"),
            format!("docker://{reg}/{repo}@sha256:{hex}{}", "0".repeat(65 - hex.len())),
            format!("docker://{reg}/{repo}:v1@sha256:{}", "a".repeat(64)),
        ];
        for input in bad {
            prop_assert!(ImageRef::parse_transport(&input).is_err(), "{} was accepted", input);
        }
        let other = format!("docker://{reg}/{repo}@{alg}:{}", "a".repeat(64));
        if !["sha256", "sha384", "sha512"].contains(&alg.as_str()) {
            prop_assert!(ImageRef::parse_transport(&other).is_err(), "{} was accepted", other);
        }
    }

    #[test]
    fn ports_out_of_range_are_refused(reg in "[a-z]{1,8}\\.[a-z]{2,4}", port in 65536u64..10_000_000) {
        let input = format!("docker://{reg}:{port}/a:v1");
        prop_assert!(ImageRef::parse_transport(&input).is_err(), "{} was accepted", input);
    }
}

// ---- authentication ---------------------------------------------------------------------------

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn challenges_never_panic(s in "\\PC{0,120}") {
        let _ = parse_challenges(&s);
    }

    #[test]
    fn challenge_like_garbage_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("Bearer ".to_string()), Just("Basic ".to_string()), Just("realm=".to_string()),
                Just("service=".to_string()), Just("\"".to_string()), Just("\\".to_string()),
                Just(",".to_string()), Just(" ".to_string()), Just("=".to_string()),
                "[a-z:/.]{1,10}", "\\PC{1,3}",
            ],
            0..24,
        )
    ) {
        let _ = parse_challenges(&parts.concat());
    }

    #[test]
    fn bearer_challenges_keep_realm_and_service(
        host in "[a-z]{1,10}(\\.[a-z]{2,4})?(:[1-9][0-9]{1,3})?",
        path in "(/[a-zA-Z0-9._~-]{1,8}){0,3}",
        service in "[ -~]{0,30}",
        scope in "[a-z/:,]{0,30}",
        basic_first in any::<bool>(),
    ) {
        let realm = format!("https://{host}{path}");
        let bearer = format!(
            "Bearer realm={},service={},scope={}",
            quoted(&realm), quoted(&service), quoted(&scope)
        );
        let header = if basic_first {
            format!("Basic realm=\"x\", {bearer}")
        } else {
            bearer
        };
        let got = parse_challenges(&header).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = Challenge::Bearer { realm, service: Some(service) };
        prop_assert!(got.contains(&want), "{:?} lacks {:?}", got, want);
    }

    #[test]
    fn token_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), ct in "\\PC{0,20}") {
        let _ = parse_token_response(&body, Some(&ct));
    }

    #[test]
    fn token_answers_keep_the_token(token in "[A-Za-z0-9._-]{1,80}", expires in proptest::option::of(0u64..10_000_000), access in any::<bool>()) {
        let mut v = if access { json!({"access_token": token}) } else { json!({"token": token}) };
        if let Some(e) = expires {
            v["expires_in"] = json!(e);
        }
        let t = parse_token_response(v.to_string().as_bytes(), Some("application/json"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(t.token.expose(), token.as_str());
        prop_assert!(t.lifetime.as_secs() >= 1 && t.lifetime.as_secs() <= 24 * 3600);
    }
}

// ---- manifests --------------------------------------------------------------------------------

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("sha256:".to_string()),
            Just(manifest::OCI_MANIFEST.to_string()),
            Just(manifest::OCI_INDEX.to_string()),
            Just(manifest::DOCKER_MANIFEST.to_string()),
            Just(manifest::DOCKER_MANIFEST_LIST.to_string()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("schemaVersion".to_string()),
                    Just("mediaType".to_string()),
                    Just("config".to_string()),
                    Just("layers".to_string()),
                    Just("manifests".to_string()),
                    Just("digest".to_string()),
                    Just("size".to_string()),
                    Just("platform".to_string()),
                    Just("urls".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just(manifest::OCI_MANIFEST.to_string()),
        Just(manifest::OCI_INDEX.to_string()),
        Just(manifest::DOCKER_MANIFEST.to_string()),
        Just(manifest::DOCKER_MANIFEST_LIST.to_string()),
        Just("application/json".to_string()),
        "\\PC{0,20}",
    ])
}

fn descriptor(media_type: &str, hex: &str, size: u64) -> Value {
    json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": size})
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifest_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), ct in content_type()) {
        let _ = manifest::parse(Bytes::from(bytes), ct.as_deref());
    }

    #[test]
    fn manifest_shaped_json_never_panics(mut v in json_value(), schema in any::<bool>(), ct in content_type()) {
        if schema && let Value::Object(m) = &mut v {
            m.insert("schemaVersion".into(), json!(2));
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        if let Ok(m) = manifest::parse(Bytes::from(bytes.clone()), ct.as_deref()) {
            // Whatever is accepted is a known type, with the digest of the exact bytes.
            prop_assert!(manifest::is_image_type(&m.media_type) || manifest::is_index_type(&m.media_type));
            prop_assert_eq!(m.digest, Digest::sha256(&bytes));
        }
    }

    #[test]
    fn valid_image_manifests_parse(
        layers in proptest::collection::vec((hex64(), 0u64..u64::MAX / 2), 0..8),
        cfg in hex64(),
        declared in any::<bool>(),
        docker in any::<bool>(),
    ) {
        let (mt, layer_mt) = if docker {
            (manifest::DOCKER_MANIFEST, "application/vnd.docker.image.rootfs.diff.tar.gzip")
        } else {
            (manifest::OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+gzip")
        };
        let mut v = json!({
            "schemaVersion": 2,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &cfg, 100),
            "layers": layers.iter().map(|(h, s)| descriptor(layer_mt, h, *s)).collect::<Vec<_>>(),
        });
        if declared || docker {
            v["mediaType"] = json!(mt);
        }
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let m = manifest::parse(Bytes::from(bytes.clone()), Some(mt)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&m.media_type, mt);
        prop_assert_eq!(&m.digest, &Digest::sha256(&bytes));
        let Kind::Image { config, layers: got } = &m.kind else {
            return Err(TestCaseError::fail("not an image"));
        };
        prop_assert_eq!(config.digest.hex(), cfg.as_str());
        prop_assert_eq!(got.len(), layers.len());
        for (g, (h, s)) in got.iter().zip(&layers) {
            prop_assert_eq!(g.digest.hex(), h.as_str());
            prop_assert_eq!(g.size, *s);
        }
    }

    #[test]
    fn layer_digests_that_are_not_digests_are_refused(bad in "\\PC{0,70}") {
        prop_assume!(bad.parse::<Digest>().is_err());
        let v = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &"a".repeat(64), 1),
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": bad, "size": 1}],
        });
        let r = manifest::parse(Bytes::from(serde_json::to_vec(&v).unwrap()), None);
        prop_assert!(r.is_err());
    }

    #[test]
    fn other_headers_never_panic(s in "\\PC{0,80}") {
        let _ = ferry::registry::parse_next_link(&s);
        let _ = ferry::retry::parse_retry_after(&s);
        let _ = ferry::retry::parse_go_duration(&s);
        let _ = s.parse::<Digest>();
    }
}

// ---- semantic versions (sync's images-by-semver) ------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any text: parsing a tag or a constraint never panics, and a constraint that parses
    /// answers for any tag.
    #[test]
    fn semver_never_panics(c in "\\PC{0,40}", tag in "\\PC{0,20}") {
        let _ = ferry::semver::Version::parse(&tag);
        if let Ok(cs) = ferry::semver::Constraints::parse(&c) {
            let _ = cs.matches_tag(&tag);
        }
    }

    /// `>= A` accepts A itself (with or without `v`), `< A` refuses it, `!= A` refuses it,
    /// and an exact constraint accepts exactly A; `A - B` with A ≤ B accepts both ends.
    #[test]
    fn semver_release_bounds(a in (0u64..50, 0u64..50, 0u64..50), b in (0u64..50, 0u64..50, 0u64..50)) {
        use ferry::semver::Constraints;
        let s = |(x, y, z): (u64, u64, u64)| format!("{x}.{y}.{z}");
        let (va, vb) = (s(a), s(b));
        let ge = Constraints::parse(&format!(">= {va}")).unwrap();
        let lt = Constraints::parse(&format!("< {va}")).unwrap();
        let ne = Constraints::parse(&format!("!= {va}")).unwrap();
        let eq = Constraints::parse(&va).unwrap();
        let with_v = format!("v{va}");
        prop_assert!(ge.matches_tag(&with_v));
        prop_assert!(!lt.matches_tag(&va));
        prop_assert!(!ne.matches_tag(&va));
        prop_assert_eq!(eq.matches_tag(&vb), a == b);
        let (lo, hi) = if a <= b { (&va, &vb) } else { (&vb, &va) };
        let range = Constraints::parse(&format!("{lo} - {hi}")).unwrap();
        prop_assert!(range.matches_tag(lo) && range.matches_tag(hi), "{lo} - {hi}");
    }
}
