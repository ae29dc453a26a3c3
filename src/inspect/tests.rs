use bytes::Bytes;

use super::*;
use crate::manifest;

fn oci_image(config_type: &str) -> Manifest {
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{config_type}","digest":"sha256:{a}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{b}","size":10,"annotations":{{"k":"v"}}}}]}}"#,
        a = "a".repeat(64),
        b = "b".repeat(64)
    );
    manifest::parse(Bytes::from(m), None).unwrap()
}

fn ctx() -> Context {
    Context {
        name: "r.io/ns/app".into(),
        digest: Digest::sha256(b"x"),
        repo_tags: vec!["v1".into()],
    }
}

#[test]
fn inspect_output_as_skopeo_prints_it() {
    let cfg = br#"{"created":"2024-01-02T03:04:05.500+02:00","architecture":"amd64","os":"linux","docker_version":"20.10.1","config":{"Env":["A=<b>"],"Labels":{"b":"2","a":"1"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let v = output(&ctx(), &oci_image(OCI_CONFIG), cfg).unwrap();
    let want = format!(
        r#"{{
    "Name": "r.io/ns/app",
    "Digest": "{}",
    "RepoTags": [
        "v1"
    ],
    "Created": "2024-01-02T03:04:05.5+02:00",
    "DockerVersion": "20.10.1",
    "Labels": {{
        "a": "1",
        "b": "2"
    }},
    "Architecture": "amd64",
    "Os": "linux",
    "Layers": [
        "sha256:{b}"
    ],
    "LayersData": [
        {{
            "MIMEType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "Digest": "sha256:{b}",
            "Size": 10,
            "Annotations": {{
                "k": "v"
            }}
        }}
    ],
    "Env": [
        "A=\u003cb\u003e"
    ]
}}"#,
        Digest::sha256(b"x"),
        b = "b".repeat(64)
    );
    assert_eq!(v.to_json_indent(), want);
}

#[test]
fn missing_fields_are_go_zero_values() {
    let v = output(&ctx(), &oci_image(OCI_CONFIG), b"{}").unwrap();
    let j = v.to_json_indent();
    assert!(j.contains("\"Created\": null"), "{j}");
    assert!(j.contains("\"Labels\": null"), "{j}");
    assert!(j.contains("\"Env\": null"), "{j}");
    assert!(output(&ctx(), &oci_image("application/x-artifact"), b"{}").is_err());
    assert!(output(&ctx(), &oci_image(OCI_CONFIG), br#"{"architecture":1}"#).is_err());
    assert!(
        output(
            &ctx(),
            &oci_image(OCI_CONFIG),
            br#"{"created":"yesterday"}"#
        )
        .is_err()
    );
    assert!(output(&ctx(), &oci_image(OCI_CONFIG), b"[]").is_err());
}

#[test]
fn refusals_keep_go_s_texts() {
    let err = |cfg: &[u8]| output(&ctx(), &oci_image(OCI_CONFIG), cfg).unwrap_err();
    let e = err(br#"{"architecture":1}"#);
    assert!(matches!(e, InspectError::Type { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal number into Go struct field .architecture of type string"
    );
    let e = err(br#"{"created":"yesterday"}"#);
    assert!(
        matches!(e, InspectError::Time(TimeError::Syntax(_))),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse"#
    );
    let e = err(br#"{"created":"2024-02-30T00:00:00Z"}"#);
    assert_eq!(
        e.to_string(),
        r#"parsing time "2024-02-30T00:00:00Z": day or month out of range"#
    );
    assert_eq!(err(b"[]").to_string(), "the config is not a JSON object");
    assert!(matches!(err(b"{").to_string(), m if m.starts_with("the config is not valid JSON: ")));
    let e = output(&ctx(), &oci_image("application/x-artifact"), b"{}").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unsupported image-specific operation on artifact with type "application/x-artifact""#
    );
}

#[test]
fn config_as_oci_struct() {
    let cfg = br#"{"created":"2024-01-02T03:04:05Z","architecture":"arm64","variant":"v8","os":"linux","docker_version":"x","container_config":{},"config":{"Cmd":["/bin/sh"],"Env":["A=1"],"ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":["sha256:c"]},"history":[{"created":"2024-01-02T03:04:05Z","created_by":"x","empty_layer":true}]}"#;
    let v = oci_config(cfg).unwrap();
    assert_eq!(
        v.to_json_indent(),
        r#"{
    "created": "2024-01-02T03:04:05Z",
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "config": {
        "ExposedPorts": {
            "80/tcp": {}
        },
        "Env": [
            "A=1"
        ],
        "Cmd": [
            "/bin/sh"
        ],
        "Labels": {
            "a": "b"
        }
    },
    "rootfs": {
        "type": "layers",
        "diff_ids": [
            "sha256:c"
        ]
    },
    "history": [
        {
            "created": "2024-01-02T03:04:05Z",
            "created_by": "x",
            "empty_layer": true
        }
    ]
}"#
    );
    assert!(
        oci_config(b"{}")
            .unwrap()
            .to_json_indent()
            .contains("\"diff_ids\": null")
    );
}
