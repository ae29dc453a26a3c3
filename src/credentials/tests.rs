use super::*;

#[test]
fn creds_split_at_first_colon() {
    let c = Credentials::from_creds("u:p:q", "--creds").unwrap();
    assert_eq!(
        c,
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p:q")
        }
    );
    let c = Credentials::from_creds("u", "--creds").unwrap();
    assert_eq!(
        c,
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("")
        }
    );
    assert!(Credentials::from_creds(":p", "--creds").is_err());
}

#[test]
fn keys_most_specific_first() {
    assert_eq!(
        candidate_keys("r.io", "a/b"),
        vec!["r.io/a/b", "r.io/a", "r.io"]
    );
}

#[test]
fn lookup_in_auth_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("auth.json");
    let auth = encode_auth("alice", &Secret::new("pw:1"));
    let other = encode_auth("bob", &Secret::new("x"));
    std::fs::write(
            &f,
            format!(r#"{{"auths":{{"r.io":{{"auth":"{other}"}},"r.io/team":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"auth":"{other}"}}}}}}"#),
        )
        .unwrap();
    let files = AuthFiles {
        paths: vec![(f, false)],
    };
    assert_eq!(
        files.lookup("r.io", "team/app").unwrap(),
        Some(Credentials::Basic {
            username: "alice".into(),
            password: Secret::new("pw:1")
        })
    );
    assert_eq!(
        files.lookup("r.io", "other/app").unwrap(),
        Some(Credentials::Basic {
            username: "bob".into(),
            password: Secret::new("x")
        })
    );
    assert!(
        files
            .lookup("docker.io", "library/busybox")
            .unwrap()
            .is_some()
    );
    assert_eq!(files.lookup("q.io", "a").unwrap(), None);
}

#[test]
fn identity_tokens_as_skopeo_reads_them() {
    let p = Path::new("auth.json");
    let auth = encode_auth("<token>", &Secret::new("pw\0\0"));
    // With `auth`: an OAuth2 refresh token; NUL padding of the password dropped.
    let v: Value =
        serde_json::from_str(&format!(r#"{{"auth":"{auth}","identitytoken":"rt"}}"#)).unwrap();
    assert_eq!(
        decode_entry(&v, p, "r.io").unwrap(),
        Some(Credentials::OAuth2 {
            username: "<token>".into(),
            password: Secret::new("pw"),
            identity_token: Secret::new("rt"),
        })
    );
    // Without `auth`: an empty entry, as in skopeo.
    let v: Value = serde_json::from_str(r#"{"identitytoken":"rt"}"#).unwrap();
    assert_eq!(decode_entry(&v, p, "r.io").unwrap(), None);
    let c = Credentials::OAuth2 {
        username: "u".into(),
        password: Secret::new("pw"),
        identity_token: Secret::new("rt"),
    };
    let secrets: Vec<&str> = c.secrets().iter().map(|s| s.expose()).collect();
    assert_eq!(secrets, ["pw", "rt"]);
    assert!(!c.describe().contains("rt") && !c.describe().contains("pw"));
}

#[test]
fn flag_file_env_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("creds");
    std::fs::write(&f, "fileuser:filepass\n").unwrap();
    let env = Environment::default();
    let mut a = CredentialArgs {
        creds_file: Some(f),
        flag_prefix: "--src-".into(),
        env_prefix: "FERRY_TEST_PRECEDENCE_".into(),
        ..Default::default()
    };
    assert_eq!(
        a.explicit(&env).unwrap(),
        Some(Credentials::Basic {
            username: "fileuser".into(),
            password: Secret::new("filepass")
        })
    );
    a.creds_file = None;
    assert_eq!(a.explicit(&env).unwrap(), None);
    let from_env = Environment::from_vars([("FERRY_TEST_PRECEDENCE_CREDS", "envuser:envpw")]);
    assert!(
        matches!(a.explicit(&from_env).unwrap(), Some(Credentials::Basic { username, .. }) if username == "envuser")
    );
    a.creds = Some(Secret::new("flag:pw"));
    assert!(
        matches!(a.explicit(&env).unwrap(), Some(Credentials::Basic { username, .. }) if username == "flag")
    );
    a.no_creds = true;
    assert!(a.explicit(&env).is_err());
}
