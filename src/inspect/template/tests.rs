use std::collections::BTreeMap;

use super::*;
use crate::inspect::govalue::Field;

fn data() -> GoValue {
    GoValue::Struct(vec![
        Field::omitempty("Name", "Name", GoValue::Str("r.io/ns/app".into())),
        Field::new("Digest", "Digest", GoValue::Str("sha256:abc".into())),
        Field::new(
            "RepoTags",
            "RepoTags",
            GoValue::strings(Some(vec!["v1".into(), "v2".into()])),
        ),
        Field::new(
            "Labels",
            "Labels",
            GoValue::string_map(Some(BTreeMap::from([
                ("io.k8s.display-name".to_string(), "x <y>".to_string()),
                ("a".to_string(), "1".to_string()),
            ]))),
        ),
        Field::new("Env", "Env", GoValue::strings(None)),
        Field::new(
            "LayersData",
            "LayersData",
            GoValue::List(Some(vec![GoValue::Struct(vec![
                Field::new("Digest", "Digest", GoValue::Str("sha256:l1".into())),
                Field::new("Size", "Size", GoValue::Int(42)),
            ])])),
        ),
    ])
}

fn r(f: &str) -> String {
    render(f, &data()).unwrap_or_else(|e| panic!("{f}: {e}"))
}

#[test]
fn forms_pipelines_use() {
    assert_eq!(r("{{.Digest}}"), "sha256:abc\n");
    assert_eq!(r("{{.Digest}}\n"), "sha256:abc\n");
    assert_eq!(r("{{ .Name }} {{.Digest}}"), "r.io/ns/app sha256:abc\n");
    assert_eq!(r(r#"{{index .Labels "io.k8s.display-name"}}"#), "x <y>\n");
    assert_eq!(r(r#"{{index .Labels "missing"}}"#), "\n");
    assert_eq!(
        r("{{json .Labels}}"),
        "{\"a\":\"1\",\"io.k8s.display-name\":\"x <y>\"}\n"
    );
    assert_eq!(r("{{.Labels | json}}"), r("{{json .Labels}}"));
    assert_eq!(r("{{range .RepoTags}}{{.}},{{end}}"), "v1,v2,\n");
    assert_eq!(r("{{range .RepoTags}}{{.}}\n{{end}}"), "v1\nv2\n\n");
    assert_eq!(r("{{range .Env}}x{{else}}none{{end}}"), "none\n");
    assert_eq!(
        r("{{.RepoTags}} {{.Env}} {{.Labels}}"),
        "[v1 v2] [] map[a:1 io.k8s.display-name:x <y>]\n"
    );
    assert_eq!(
        r("{{range .LayersData}}{{.Digest}}={{.Size}}{{end}}"),
        "sha256:l1=42\n"
    );
    assert_eq!(r("{{.Labels.a}}"), "1\n");
    assert_eq!(
        r(r#"{{join .RepoTags ","}} {{len .RepoTags}}"#),
        "v1,v2 2\n"
    );
    assert_eq!(r("{{if .Env}}y{{else}}n{{end}}"), "n\n");
    assert_eq!(r("a {{- /* c */ -}} b"), "ab\n");
    assert_eq!(r("{{- .Digest -}}  \\t x"), "sha256:abcx\n");
    assert_eq!(r(r#"{{index .RepoTags 1}}"#), "v2\n");
}

#[test]
fn json_forms() {
    for j in [
        "json",
        " json ",
        "{{json .}}",
        "{{ json }}",
        "{{json}}",
        "{{ json . }}",
    ] {
        assert!(is_json_format(j), "{j}");
    }
    for n in ["{{json .Labels}}", "{{.Digest}}", "jsonx", ""] {
        assert!(!is_json_format(n), "{n}");
    }
}

#[test]
fn refusals_and_errors() {
    for bad in [
        "{{$x := .Name}}",
        "{{with .Name}}{{end}}",
        "{{printf \"%s\" .Name}}",
        "{{(.Name)}}",
        "{{define \"x\"}}{{end}}",
        "{{template \"x\"}}",
    ] {
        let e = render(bad, &data()).unwrap_err();
        assert!(matches!(e, TemplateError::Parse(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains("unsupported template"), "{bad}: {e}");
    }
    for bad in [
        "{{.Nope}}",
        "{{.Digest",
        "{{range .RepoTags}}",
        "{{end}}",
        "{{index .RepoTags 7}}",
        "{{range .Digest}}{{end}}",
        "{{json .Digest .Name}}",
    ] {
        assert!(render(bad, &data()).is_err(), "{bad}");
    }
    let e = render("{{.Digest", &data()).unwrap_err();
    assert_eq!(
        e,
        TemplateError::Parse("template: unclosed action (missing }})".into())
    );
    let e = render("{{.Nope}}", &data()).unwrap_err();
    assert_eq!(
        e,
        TemplateError::Execute("template: can't evaluate field Nope in type struct".into())
    );
}
