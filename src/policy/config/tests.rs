use super::*;

#[test]
fn valid_policies() {
    let p = parse(br#"{"default":[{"type":"reject"}],"transports":{"docker":{
            "r.example/a":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"matchRepository"}}],
            "r.example/b":[{"type":"sigstoreSigned","keyData":"AAAA"}],
            "r.example/c":[{"type":"sigstoreSigned","fulcio":{"caPath":"/ca","oidcIssuer":"https://i","subjectEmail":"a@b"},"rekorPublicKeyPath":"/r",
                 "signedIdentity":{"type":"remapIdentity","prefix":"r.example/c","signedPrefix":"n.example/c"}}]}}}"#).unwrap();
    assert_eq!(p.default, vec![Requirement::Reject]);
    let scopes = &p.transports[0].1;
    assert!(matches!(
        &scopes[0].1[0],
        Requirement::SignedBy {
            identity: IdentityMatch::MatchRepository,
            keys: KeySource::Path(_),
            ..
        }
    ));
    assert!(
        matches!(&scopes[1].1[0], Requirement::SigstoreSigned { keys: Some(KeySource::Data(d)), identity: IdentityMatch::MatchRepoDigestOrExact, .. } if d == &[0, 0, 0])
    );
    assert!(matches!(
        &scopes[2].1[0],
        Requirement::SigstoreSigned {
            fulcio: Some(_),
            rekor: Some(_),
            ..
        }
    ));
}

#[test]
fn invalid_policies_are_refused_whole() {
    for bad in [
        r#"{}"#,
        r#"{"default":[]}"#,
        r#"{"default":[{"type":"reject"}],"other":1}"#,
        r#"{"default":[{"type":"reject","x":1}]}"#,
        r#"{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}"#,
        r#"{"default":[{"type":"nope"}]}"#,
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
        r#"{"default":[{"type":"signedBy","keyType":"bad","keyPath":"/k"}]}"#,
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","keyData":"AA=="}]}"#,
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"exactReference","dockerReference":"busybox"}}]}"#,
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"remapIdentity","prefix":"a/","signedPrefix":"b"}}]}"#,
        r#"{"default":[{"type":"sigstoreSigned"}]}"#,
        r#"{"default":[{"type":"sigstoreSigned","keyPath":"/k","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
        r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}"#,
        r#"{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}]}"#,
        r#"{"default":[{"type":"sigstoreSigned","keyPath":"/k","rekorPublicKeyPath":"/r","rekorPublicKeyData":"AA=="}]}"#,
        r#"{"default":[{"type":"sigstoreSigned","keyPaths":[]}]}"#,
        r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"x":[]}}}"#,
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn refusals_are_classified_with_containers_image_texts() {
    let err = |text: &str| parse(text.as_bytes()).unwrap_err();
    let e = err(r#"{"default":[{"type":"reject"}],"other":1}"#);
    assert!(matches!(e, PolicyConfigError::UnknownKey(_)), "{e:?}");
    assert_eq!(e.to_string(), r#"Unknown key "other""#);
    let e = err(r#"{"default":[{"type":"nope"}]}"#);
    assert!(
        matches!(e, PolicyConfigError::UnknownRequirement(_)),
        "{e:?}"
    );
    assert_eq!(e.to_string(), r#"Unknown policy requirement type "nope""#);
    let e = err(r#"{}"#);
    assert_eq!(e.to_string(), "Default policy is missing");
    let e = err(r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#);
    assert!(matches!(e, PolicyConfigError::KeySources(_)), "{e:?}");
    let e = err(
        r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"exactReference","dockerReference":"Reg/UPPER:1"}}]}"#,
    );
    assert!(
        matches!(
            e,
            PolicyConfigError::InvalidReference {
                field: "dockerReference",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(r#"Invalid format of dockerReference "Reg/UPPER:1": "#),
        "{e}"
    );
    let e = err(r#"{"default":[{"type":"reject"}"#);
    assert!(matches!(e, PolicyConfigError::Json(_)), "{e:?}");
}
