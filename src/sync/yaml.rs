//! skopeo's sync sources and destination names: the YAML file (`--src yaml`), a repository or
//! an image (`--src docker`), and `DEST/<last component>:<tag>` (or `--scoped`) as skopeo names
//! a destination.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Refs, RegistrySettings, Source, SourceGroup};
use crate::error::{Error, Result};
use crate::reference::{Digest, ImageRef, Target};

#[derive(Deserialize)]
struct YamlRegistry {
    #[serde(default)]
    images: Option<BTreeMap<String, Option<Vec<String>>>>,
    #[serde(default, rename = "images-by-tag-regex")]
    images_by_tag_regex: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "images-by-semver")]
    images_by_semver: Option<BTreeMap<String, String>>,
    #[serde(default)]
    credentials: Option<YamlCredentials>,
    #[serde(default, rename = "tls-verify")]
    tls_verify: Option<bool>,
    #[serde(default, rename = "cert-dir")]
    cert_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct YamlCredentials {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Parse skopeo's sync YAML. Registries and repositories come out sorted by name.
pub fn parse_yaml(text: &str, file: &str) -> Result<Vec<SourceGroup>> {
    let bad = |why: String| Error::usage(format!("sync file {file}: {why}"));
    let doc: BTreeMap<String, YamlRegistry> =
        serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut groups = Vec::new();
    for (registry, cfg) in doc {
        let credentials = match cfg.credentials {
            Some(YamlCredentials {
                username: Some(u),
                password,
            }) if !u.is_empty() => {
                Some((u, crate::redact::Secret::new(password.unwrap_or_default())))
            }
            Some(YamlCredentials {
                password: Some(p), ..
            }) if !p.is_empty() => {
                return Err(bad(format!(
                    "registry {registry}: credentials have a password but no username"
                )));
            }
            _ => None,
        };
        let mut sources = Vec::new();
        for (repo, refs) in cfg.images.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let refs = match refs {
                None => Refs::AllTags,
                Some(r) if r.is_empty() => Refs::AllTags,
                Some(r) => Refs::List(
                    r.iter()
                        .map(|x| parse_target(x))
                        .collect::<std::result::Result<Vec<_>, String>>()
                        .map_err(|e| bad(format!("{registry}/{repo}: {e}")))?,
                ),
            };
            sources.push(Source {
                registry: reg,
                repository,
                refs,
            });
        }
        for (repo, pattern) in cfg.images_by_tag_regex.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let re = regex::Regex::new(&pattern)
                .map_err(|e| bad(format!("{registry}/{repo}: invalid tag regex: {e}")))?;
            sources.push(Source {
                registry: reg,
                repository,
                refs: Refs::TagRegex(re),
            });
        }
        for (repo, constraint) in cfg.images_by_semver.unwrap_or_default() {
            let (reg, repository) =
                split_repository(&registry, &repo).map_err(|e| bad(e.to_string()))?;
            let c = crate::semver::Constraints::parse(&constraint).map_err(|e| {
                bad(format!(
                    "{registry}/{repo}: invalid semantic version constraint: {e}"
                ))
            })?;
            sources.push(Source {
                registry: reg,
                repository,
                refs: Refs::Semver(c),
            });
        }
        if sources.is_empty() {
            log::warn!("No images specified for registry {registry}");
            continue;
        }
        groups.push(SourceGroup {
            settings: RegistrySettings {
                credentials,
                tls_verify: cfg.tls_verify,
                cert_dir: cfg.cert_dir,
            },
            sources,
        });
    }
    Ok(groups)
}

/// A YAML `images` entry: a digest if it parses as one, else a tag.
fn parse_target(s: &str) -> std::result::Result<Target, String> {
    if let Ok(d) = s.parse::<Digest>() {
        return Ok(Target::Digest(d));
    }
    let probe = format!("localhost/x:{s}");
    match ImageRef::parse(&probe) {
        Ok(r) if r.tag() == Some(s) => Ok(Target::Tag(s.to_string())),
        _ => Err(format!("{s:?} is neither a tag nor a digest")),
    }
}

/// `registry` + `repo` as one repository name (normalised, no tag or digest).
fn split_repository(registry: &str, repo: &str) -> Result<(String, String)> {
    let (r, explicit) = parse_name(&format!("{registry}/{repo}"))?;
    if explicit {
        return Err(Error::usage(format!(
            "{registry}/{repo} names an image, not a repository"
        )));
    }
    Ok((r.registry, r.repository))
}

/// Parse `[host/]path[:tag|@digest]` (an optional `docker://` is allowed); whether a tag or a
/// digest was written.
fn parse_name(input: &str) -> Result<(ImageRef, bool)> {
    let rest = input.strip_prefix("docker://").unwrap_or(input);
    let r = ImageRef::parse(rest)?;
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    let explicit = rest[last..].contains(':') || rest.contains('@');
    Ok((r, explicit))
}

/// The `--src docker` argument: a repository (every tag) or one image.
pub fn docker_source(input: &str) -> Result<SourceGroup> {
    let (r, explicit) = parse_name(input)?;
    let refs = if explicit {
        Refs::List(vec![r.target.clone()])
    } else {
        Refs::AllTags
    };
    Ok(SourceGroup {
        settings: RegistrySettings::default(),
        sources: vec![Source {
            registry: r.registry,
            repository: r.repository,
            refs,
        }],
    })
}

/// Go's `path.Join` for the slash-separated names skopeo joins.
fn path_join(a: &str, b: &str) -> String {
    let joined = format!("{a}/{b}");
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Where skopeo's sync puts `src` under `dest`: `path.Join(dest, suffix) + append_suffix`, the
/// suffix being the source reference (`host/repo:tag`) or, unless scoped, its last component.
pub fn destination(
    src: &ImageRef,
    dest: &str,
    scoped: bool,
    append_suffix: &str,
) -> Result<ImageRef> {
    let full = src.to_string();
    let suffix = if scoped {
        full.as_str()
    } else {
        full.rsplit('/').next().unwrap_or(&full)
    };
    let dest = dest.strip_prefix("docker://").unwrap_or(dest);
    let name = format!("{}{append_suffix}", path_join(dest, suffix));
    ImageRef::parse(&name).map_err(|e| match e {
        Error::Reference { input, reason } => Error::Reference {
            input,
            reason: format!("cannot be the destination of {src}: {reason}"),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn destinations_as_skopeo_names_them() {
        let src = img("127.0.0.1:5931/ns/app:v1");
        assert_eq!(
            destination(&src, "127.0.0.1:5000/mirror", false, "")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/mirror/app:v1"
        );
        assert_eq!(
            destination(&src, "127.0.0.1:5000/one/two/", false, "-prod")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/one/two/app:v1-prod"
        );
        // skopeo refuses this too: a host with a port is not a valid path component.
        assert!(destination(&src, "127.0.0.1:5000/scoped", true, "").is_err());
        let hub = img("quay.io/team/tool:1.0");
        assert_eq!(
            destination(&hub, "r.io:5000/m", true, "")
                .unwrap()
                .to_string(),
            "r.io:5000/m/quay.io/team/tool:1.0"
        );
        let d = format!("r.io/ns/app@sha256:{}", "a".repeat(64));
        assert_eq!(
            destination(&img(&d), "r.io:5000/m", false, "")
                .unwrap()
                .to_string(),
            format!("r.io:5000/m/app@sha256:{}", "a".repeat(64))
        );
        assert_eq!(path_join("a/b/", "./c"), "a/b/c");
    }

    #[test]
    fn docker_sources() {
        let g = docker_source("127.0.0.1:5931/ns/app").unwrap();
        assert!(matches!(g.sources[0].refs, Refs::AllTags));
        let g = docker_source("docker://127.0.0.1:5931/ns/app:v1").unwrap();
        assert!(
            matches!(&g.sources[0].refs, Refs::List(t) if t == &vec![Target::Tag("v1".into())])
        );
        assert_eq!(
            docker_source("busybox").unwrap().sources[0].repository,
            "library/busybox"
        );
        assert!(docker_source("r.io/Bad").is_err());
    }

    #[test]
    fn yaml_sources() {
        let text = format!(
            r#"
b.io:5000:
  images:
    ns/app: []
    ns/tool:
      - v1
      - "sha256:{h}"
    ns/none:
  images-by-tag-regex:
    ns/lib: ^v1\.[0-9]+$
  credentials:
    username: u
    password: p:w
  tls-verify: false
  cert-dir: /certs
a.io:
  images:
    x: [latest]
empty.io: {{}}
"#,
            h = "c".repeat(64)
        );
        let groups = parse_yaml(&text, "s.yaml").unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].sources[0].registry, "a.io");
        let b = &groups[1];
        assert_eq!(b.settings.tls_verify, Some(false));
        assert_eq!(
            b.settings.cert_dir.as_deref(),
            Some(std::path::Path::new("/certs"))
        );
        assert_eq!(b.settings.credentials.as_ref().unwrap().0, "u");
        assert_eq!(b.settings.credentials.as_ref().unwrap().1.expose(), "p:w");
        let names: Vec<&str> = b.sources.iter().map(|s| s.repository.as_str()).collect();
        assert_eq!(names, ["ns/app", "ns/none", "ns/tool", "ns/lib"]);
        assert!(matches!(b.sources[0].refs, Refs::AllTags));
        assert!(matches!(b.sources[1].refs, Refs::AllTags));
        match &b.sources[2].refs {
            Refs::List(t) => {
                assert_eq!(t[0], Target::Tag("v1".into()));
                assert!(matches!(t[1], Target::Digest(_)));
            }
            other => panic!("{other:?}"),
        }
        match &b.sources[3].refs {
            Refs::TagRegex(re) => {
                assert!(re.is_match("v1.2"));
                assert!(!re.is_match("v1.2-rc"));
                assert!(!re.is_match("v10"));
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "a.io: [1]",
            "a.io:\n  images:\n    x: [\"bad tag\"]",
            "a.io:\n  images-by-tag-regex:\n    x: \"(\"",
            "a.io:\n  images:\n    x:v1: []",
            "a.io:\n  images-by-semver:\n    x: \">>1\"",
        ] {
            assert!(parse_yaml(bad, "s.yaml").is_err(), "{bad}");
        }
    }

    #[test]
    fn unanchored_regex_as_go() {
        // Go's MatchString finds a match anywhere, as Regex::is_match does.
        let re = regex::Regex::new("rc").unwrap();
        assert!(re.is_match("v1-rc1"));
    }
}
