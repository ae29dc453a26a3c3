//! Choosing one platform's image from an index, as skopeo does for `--multi-arch system`
//! and `inspect`: the running OS/architecture/variant, or `--override-os/arch/variant`.

use crate::manifest::Descriptor;

/// The platform wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// OS (`linux`).
    pub os: String,
    /// Architecture in Go's names (`amd64`, `arm64`).
    pub arch: String,
    /// Variant (`v7`), if any.
    pub variant: Option<String>,
}

impl Wanted {
    /// The running platform with the user's overrides applied.
    pub fn current(os: Option<&str>, arch: Option<&str>, variant: Option<&str>) -> Self {
        let run_arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "loongarch64" => "loong64",
            other => other,
        };
        let run_variant = if run_arch == "arm" && arch.is_none() {
            Some("v7")
        } else {
            None
        };
        Wanted {
            os: os.unwrap_or(std::env::consts::OS).to_string(),
            arch: arch.unwrap_or(run_arch).to_string(),
            variant: variant.or(run_variant).map(str::to_string),
        }
    }

    /// Pick the first matching entry, in index order.
    pub fn choose<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let matches_base = |d: &&Descriptor| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == self.os && p.architecture == self.arch)
        };
        let variant_of = |d: &Descriptor| {
            d.platform
                .as_ref()
                .and_then(|p| p.variant.clone())
                .filter(|v| !v.is_empty())
        };
        match &self.variant {
            Some(v) => manifests
                .iter()
                .filter(matches_base)
                .find(|d| variant_of(d).as_deref() == Some(v))
                .or_else(|| {
                    manifests
                        .iter()
                        .filter(matches_base)
                        .find(|d| variant_of(d).is_none())
                }),
            None => manifests
                .iter()
                .filter(matches_base)
                .find(|d| {
                    variant_of(d).is_none()
                        || (self.arch == "arm64" && variant_of(d).as_deref() == Some("v8"))
                })
                .or_else(|| manifests.iter().find(matches_base)),
        }
    }
}

impl std::fmt::Display for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As containers/image words it (skopeo 1.18 quotes each value, as Go's %q).
        write!(
            f,
            "architecture {}, variant {}, OS {}",
            crate::logrus::go_quote(&self.arch),
            crate::logrus::go_quote(self.variant.as_deref().unwrap_or("")),
            crate::logrus::go_quote(&self.os)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Platform;

    fn desc(os: &str, arch: &str, variant: Option<&str>, n: char) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: format!("sha256:{}", n.to_string().repeat(64))
                .parse()
                .unwrap(),
            size: 1,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(str::to_string),
                os_version: None,
            }),
            urls: vec![],
        }
    }

    #[test]
    fn chooses_platform() {
        let list = vec![
            desc("linux", "arm", Some("v6"), 'a'),
            desc("linux", "arm", Some("v7"), 'b'),
            desc("linux", "amd64", None, 'c'),
            desc("linux", "arm64", Some("v8"), 'd'),
        ];
        let w = |a: &str, v: Option<&str>| Wanted {
            os: "linux".into(),
            arch: a.into(),
            variant: v.map(str::to_string),
        };
        assert_eq!(
            w("amd64", None)
                .choose(&list)
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('c')
        );
        assert_eq!(
            w("arm", Some("v7"))
                .choose(&list)
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('b')
        );
        assert_eq!(
            w("arm64", None)
                .choose(&list)
                .unwrap()
                .digest
                .hex()
                .chars()
                .next(),
            Some('d')
        );
        assert!(w("s390x", None).choose(&list).is_none());
        assert!(
            Wanted {
                os: "windows".into(),
                arch: "amd64".into(),
                variant: None
            }
            .choose(&list)
            .is_none()
        );
    }
}
