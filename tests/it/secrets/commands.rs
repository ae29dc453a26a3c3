//! How each ferry command is given secrets, for every way of passing them and every case of
//! the matrix in `secrets.rs` (one builder per command, listed in its `COMMANDS`).

use super::*;

pub(super) fn copy(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let report = lab.dir.path().join(format!("report-{via:?}-{case:?}.json"));
    let _ = std::fs::remove_file(&report);
    let dst = if case == Case::ServerError {
        "prod/fail:v1"
    } else {
        "prod/app:v1"
    };
    let mut inv = two_registries(lab, &["copy"], via, case, dst);
    inv.args.insert(1, format!("--report={}", report.display()));
    inv.outputs.push(report);
    Some(inv)
}

pub(super) fn sync(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let dst = if case == Case::ServerError {
        "prod/fail"
    } else {
        "prod"
    };
    let verb = ["sync", "--src=docker", "--dest=docker"];
    Some(two_registries(lab, &verb, via, case, dst))
}

/// `verb… --src-… --dest-… SOURCE DESTINATION` from the source (`ns/app:v1`, or a missing
/// image) to `dst` on the destination.
pub(super) fn two_registries(
    lab: &Lab,
    verb: &[&str],
    via: Via,
    case: Case,
    dst: &str,
) -> Invocation {
    let mut inv = Invocation {
        args: verb.iter().map(|a| a.to_string()).collect(),
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.extend(
        [
            "--retry-times=1",
            "--retry-delay=10ms",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ]
        .map(String::from),
    );
    inv.args.extend(lab.authfile(via, case));
    merge(&mut inv, lab.src_creds("src", via, case));
    merge(&mut inv, lab.dst_creds(via));
    let src = if case == Case::Missing {
        "ns/absent:v1"
    } else {
        "ns/app:v1"
    };
    inv.args.push(lab.src_proxy.docker_ref(src));
    inv.args.push(lab.proxy.docker_ref(dst));
    inv
}

/// A single-registry command (`--creds`, `--tls-verify`, …) on the source, through the
/// proxy that fails everything for [`Case::ServerError`].
pub(super) fn single(lab: &Lab, verb: &str, via: Via, case: Case, name: &str) -> Invocation {
    let mut inv = Invocation {
        args: vec![
            verb.into(),
            "--retry-times=1".into(),
            "--retry-delay=10ms".into(),
            "--tls-verify=false".into(),
        ],
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.extend(lab.authfile(via, case));
    merge(&mut inv, lab.src_creds("", via, case));
    let proxy = if case == Case::ServerError {
        &lab.broken
    } else {
        &lab.src_proxy
    };
    inv.args.push(proxy.docker_ref(name));
    inv
}

pub(super) fn inspect(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let name = if case == Case::Missing {
        "ns/app:absent"
    } else {
        "ns/app:v1"
    };
    Some(single(lab, "inspect", via, case, name))
}

pub(super) fn list_tags(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let name = if case == Case::Missing {
        "ns/absent"
    } else {
        "ns/app"
    };
    let mut inv = single(lab, "list-tags", via, case, name);
    // As skopeo: an unknown repository is an error, not "image not found".
    inv.expect = exit_code(case).min(1);
    Some(inv)
}

pub(super) fn delete(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    // Put the tag back for each successful delete (its blobs stay in the repository).
    lab.src
        .put_manifest("ns/del", "v1", &lab.fx.media_type, &lab.fx.manifest);
    let name = if case == Case::Missing {
        "ns/del:absent"
    } else {
        "ns/del:v1"
    };
    Some(single(lab, "delete", via, case, name))
}

/// The password by flag, file or standard input; the auth file it writes holds it by design
/// and is not checked.
pub(super) fn login(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let pw = Lab::password(case);
    let host = if case == Case::ServerError {
        lab.broken.host()
    } else {
        lab.src_proxy.host()
    };
    let mut inv = Invocation {
        args: vec![
            "login".into(),
            "--tls-verify=false".into(),
            format!("--username={SRC_USER}"),
            format!(
                "--authfile={}",
                lab.dir.path().join(format!("login-{via:?}.json")).display()
            ),
        ],
        expect: if case == Case::Works { 0 } else { 1 },
        ..Default::default()
    };
    match via {
        Via::Flags => inv.args.push(format!("--password={pw}")),
        Via::Files => inv.args.push(format!(
            "--password-file={}",
            lab.file(&format!("login-pw-{case:?}"), pw)
        )),
        Via::TokenFlag => {
            inv.args.push("--password-stdin".into());
            inv.stdin = Some(format!("{pw}\n"));
        }
        Via::Env | Via::AuthFile => return None,
    }
    if case == Case::Missing {
        return None;
    }
    inv.args.push(host);
    Some(inv)
}

/// Removes credentials from an auth file without showing them.
pub(super) fn logout(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    if via != Via::AuthFile || case != Case::Works {
        return None;
    }
    let mut inv = Invocation {
        args: vec!["logout".into()],
        expect: 0,
        ..Default::default()
    };
    inv.args.extend(lab.authfile(via, case));
    inv.args.push(lab.src_proxy.host());
    Some(inv)
}

pub(super) fn exit_code(case: Case) -> i32 {
    match case {
        Case::Works => 0,
        Case::Missing => 2,
        Case::Refused | Case::ServerError => 1,
    }
}

/// Tokens only from files, named by flag or by environment.
pub(super) fn promote(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let src_token = if case == Case::Refused {
        WRONG_TOKEN
    } else {
        NONPROD_TOKEN
    };
    let src_file = lab.file(&format!("promote-src-{case:?}"), &format!("{src_token}\n"));
    let dst_file = lab.file("promote-dst", SA_TOKEN);
    let host = lab.proxy.host();
    let config = lab.file(
        "promotion.yaml",
        &crate::promote::promotion_yaml(&[&host], &[&host], &["nonprod"], &["prod", "prodfail"]),
    );
    let record = lab.dir.path().join(format!("record-{via:?}-{case:?}.json"));
    let _ = std::fs::remove_file(&record);
    let mut inv = Invocation {
        args: vec![
            "promote".into(),
            format!("--config={config}"),
            "--retry-times=1".into(),
            "--retry-delay=10ms".into(),
            format!("--record={}", record.display()),
            "--src-tls-verify=false".into(),
            "--dest-tls-verify=false".into(),
            format!("--image-name=app"),
            format!("--non-prod-registry={}", lab.proxy.host()),
            format!("--prod-registry={}", lab.proxy.host()),
            "--non-prod-project=nonprod".into(),
        ],
        outputs: vec![record],
        expect: exit_code(case),
        ..Default::default()
    };
    inv.args.push(match case {
        Case::ServerError => "--prod-project=prodfail".into(),
        _ => "--prod-project=prod".into(),
    });
    inv.args.push(match case {
        Case::Missing => "--tag=deadbeef".into(),
        _ => "--tag=c0ffee".into(),
    });
    match via {
        Via::Flags | Via::Files => {
            inv.args.push(format!("--src-token-file={src_file}"));
            inv.args.push(format!("--dest-token-file={dst_file}"));
        }
        Via::Env => {
            inv.env.push(("FERRY_SRC_TOKEN_FILE".into(), src_file));
            inv.env.push(("FERRY_DEST_TOKEN_FILE".into(), dst_file));
        }
        Via::TokenFlag | Via::AuthFile => return None,
    }
    Some(inv)
}

/// The webhook secret from a file or the environment (on the command line: refused); the API
/// token from a file.
pub(super) fn trigger(lab: &Lab, via: Via, case: Case) -> Option<Invocation> {
    let secret = if case == Case::Refused {
        WRONG_WEBHOOK_SECRET
    } else {
        WEBHOOK_SECRET
    };
    let mut inv = Invocation {
        args: vec![
            "trigger".into(),
            format!("--api-url={}", lab.hook_proxy.url()),
            "--tls-verify=false".into(),
            format!(
                "--token-file={}",
                lab.file("api-token", &format!("{API_TOKEN}\n"))
            ),
            "--env=GIT_COMMIT=c0ffee".into(),
        ],
        // An unknown BuildConfig is refused like a wrong secret (401), as OpenShift does.
        expect: if case == Case::Works { 0 } else { 1 },
        ..Default::default()
    };
    inv.args.push(match case {
        Case::ServerError => "--namespace=fail".into(),
        _ => "--namespace=prod".into(),
    });
    inv.args.push(match case {
        Case::Missing => "--buildconfig=absent".into(),
        _ => "--buildconfig=production-pipeline".into(),
    });
    match via {
        // Refused before anything is sent, without echoing it.
        Via::Flags => {
            inv.args.push(format!("--secret={secret}"));
            inv.expect = 1;
        }
        Via::Files => inv.args.push(format!(
            "--secret-file={}",
            lab.file(&format!("hook-{case:?}"), secret)
        )),
        Via::Env => inv.env.push(("FERRY_WEBHOOK_SECRET".into(), secret.into())),
        Via::TokenFlag | Via::AuthFile => return None,
    }
    Some(inv)
}
