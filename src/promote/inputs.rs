//! The inputs of `ferry promote`: each from its flag or, when the flag is absent, from the
//! pipeline's environment (the build's parameters), then checked before anything is sent.
//!
//! The image name and the tag are what the webhook caller chooses: they must match the
//! distribution spec's grammars (one repository path component; a tag). The registries and
//! projects must be among the values the production side pinned in its promotion config
//! ([`PromotionConfig`]); when the pipeline gives none, the config's first value is taken.

use super::config::{Pinned, PromotionConfig};
use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// One input of `promote`: its flag and the environment variable used when the flag is absent.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    /// The flag, `--image-name`.
    pub flag: &'static str,
    /// The environment variable, `IMAGE_NAME`.
    pub env: &'static str,
    /// What the promotion config pins for it (`None`: the pipeline chooses it).
    pub pinned: Option<Pinned>,
}

impl Input {
    /// `IMAGE_NAME (--image-name)`, for messages.
    pub fn name(&self) -> String {
        format!("{} ({})", self.env, self.flag)
    }
}

/// The six inputs, in the order of [`Inputs::resolve`]'s flags.
pub const INPUTS: [Input; 6] = [
    Input {
        flag: "--image-name",
        env: "IMAGE_NAME",
        pinned: None,
    },
    Input {
        flag: "--non-prod-registry",
        env: "NON_PROD_REGISTRY",
        pinned: Some(Pinned::SourceRegistry),
    },
    Input {
        flag: "--prod-registry",
        env: "PROD_REGISTRY",
        pinned: Some(Pinned::DestinationRegistry),
    },
    Input {
        flag: "--non-prod-project",
        env: "NON_PROD_PROJECT_NAME",
        pinned: Some(Pinned::SourceProject),
    },
    Input {
        flag: "--prod-project",
        env: "PROD_PROJECT_NAME",
        pinned: Some(Pinned::DestinationProject),
    },
    Input {
        flag: "--tag",
        env: "GIT_COMMIT",
        pinned: None,
    },
];

/// The inputs as given: flag, else environment; blank counts as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given([Option<String>; 6]);

/// The checked inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `IMAGE_NAME`.
    pub image_name: String,
    /// `NON_PROD_REGISTRY`.
    pub non_prod_registry: String,
    /// `PROD_REGISTRY`.
    pub prod_registry: String,
    /// `NON_PROD_PROJECT_NAME`.
    pub non_prod_project: String,
    /// `PROD_PROJECT_NAME`.
    pub prod_project: String,
    /// `GIT_COMMIT`: the tag.
    pub tag: String,
}

impl Given {
    /// Each input from its flag value, else from `env(NAME)`; blank values count as absent.
    /// On failure, the names of the missing inputs the pipeline must give (`IMAGE_NAME
    /// (--image-name)`): the image name and the tag (the others have the config's defaults).
    pub fn resolve(
        flags: [Option<String>; 6],
        env: impl Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, Vec<String>> {
        let mut missing = Vec::new();
        let mut values: [Option<String>; 6] = Default::default();
        for (i, (flag, input)) in flags.into_iter().zip(INPUTS).enumerate() {
            values[i] = flag
                .or_else(|| env(input.env))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            if values[i].is_none() && input.pinned.is_none() {
                missing.push(input.name());
            }
        }
        if missing.is_empty() {
            Ok(Given(values))
        } else {
            Err(missing)
        }
    }

    /// Check every input (grammars first, then the promotion config) and fill in the config's
    /// defaults. The first refusal is returned: one line naming the value and why.
    pub fn check(&self, config: &PromotionConfig) -> Result<Inputs> {
        let v = |i: usize| self.0[i].as_deref();
        let image = v(0).unwrap_or_default();
        if !crate::reference::valid_path_component(image) {
            return Err(Error::Refused(format!(
                "promote: {} {image:?} is not an image name (one repository path component of the distribution spec: lower-case letters and digits, separated by '.', '_', '__' or dashes)",
                INPUTS[0].name()
            )));
        }
        let tag = v(5).unwrap_or_default();
        crate::reference::validate_tag(tag)
            .map_err(|why| Error::Refused(format!("promote: {} {why}", INPUTS[5].name())))?;
        let pick = |i: usize| {
            let input = INPUTS[i];
            config.pick(input.pinned.expect("a pinned input"), v(i), &input.name())
        };
        Ok(Inputs {
            image_name: image.to_string(),
            non_prod_registry: pick(1)?,
            prod_registry: pick(2)?,
            non_prod_project: pick(3)?,
            prod_project: pick(4)?,
            tag: tag.to_string(),
        })
    }
}

impl Inputs {
    /// The source and destination references.
    pub fn references(&self) -> Result<(ImageRef, ImageRef)> {
        let at = |registry: &str, project: &str| {
            ImageRef::parse(&format!(
                "{registry}/{project}/{}:{}",
                self.image_name, self.tag
            ))
        };
        Ok((
            at(&self.non_prod_registry, &self.non_prod_project)?,
            at(&self.prod_registry, &self.prod_project)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn config() -> PromotionConfig {
        PromotionConfig::parse(
            "sourceRegistries: [default-route-openshift-image-registry.apps.np.example.com]
destinationRegistries: [image-registry.openshift-image-registry.svc:5000]
sourceProjects: [team-dev, team-qa]
destinationProjects: [team-prod]
",
            Path::new("/etc/ferry/promotion.yaml"),
        )
        .unwrap()
    }

    const WEBHOOK: &[(&str, &str)] = &[
        ("IMAGE_NAME", "app"),
        ("NON_PROD_PROJECT_NAME", "team-qa"),
        ("GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567"),
    ];

    fn check(pairs: &[(&str, &str)]) -> Result<Inputs> {
        Given::resolve(Default::default(), env_of(pairs))
            .unwrap()
            .check(&config())
    }

    #[test]
    fn the_config_gives_what_the_pipeline_does_not() {
        let i = check(WEBHOOK).unwrap();
        let (src, dst) = i.references().unwrap();
        assert_eq!(
            src.to_string(),
            "default-route-openshift-image-registry.apps.np.example.com/team-qa/app:0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            dst.registry,
            "image-registry.openshift-image-registry.svc:5000"
        );
        assert_eq!(dst.repository, "team-prod/app");
        // A flag wins over its variable.
        let mut flags: [Option<String>; 6] = Default::default();
        flags[5] = Some("v2".into());
        flags[3] = Some("team-dev".into());
        let i = Given::resolve(flags, env_of(WEBHOOK))
            .unwrap()
            .check(&config())
            .unwrap();
        assert_eq!(
            (i.tag.as_str(), i.non_prod_project.as_str()),
            ("v2", "team-dev")
        );
    }

    #[test]
    fn only_the_image_name_and_the_tag_are_required() {
        let missing =
            Given::resolve(Default::default(), env_of(&[("GIT_COMMIT", "  ")])).unwrap_err();
        assert_eq!(
            missing,
            vec!["IMAGE_NAME (--image-name)", "GIT_COMMIT (--tag)"]
        );
    }

    #[test]
    fn refuses_what_the_config_does_not_allow_and_bad_grammar() {
        for (name, value, needle) in [
            ("PROD_REGISTRY", "evil.example.com", "destinationRegistries"),
            (
                "PROD_REGISTRY",
                "https://image-registry.openshift-image-registry.svc:5000",
                "destinationRegistries",
            ),
            (
                "NON_PROD_REGISTRY",
                "evil.example.com:443",
                "sourceRegistries",
            ),
            ("PROD_PROJECT_NAME", "other-prod", "destinationProjects"),
            ("NON_PROD_PROJECT_NAME", "kube-system", "sourceProjects"),
            ("IMAGE_NAME", "App", "not an image name"),
            ("IMAGE_NAME", "team-prod/app", "not an image name"),
            ("IMAGE_NAME", "../app", "not an image name"),
            ("GIT_COMMIT", "-rf", "invalid tag"),
            ("GIT_COMMIT", "a:b", "invalid tag"),
            ("GIT_COMMIT", &"a".repeat(129), "invalid tag"),
        ] {
            let mut pairs = WEBHOOK.to_vec();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let e = check(&pairs).unwrap_err();
            assert_eq!(e.exit_code(), 1);
            let e = e.to_string();
            assert!(
                e.contains(name) && e.contains(needle),
                "{name}={value}: {e}"
            );
            if needle.ends_with("Registries") || needle.ends_with("Projects") {
                assert!(
                    e.contains(&format!("{value:?}")) && e.contains("/etc/ferry/promotion.yaml"),
                    "{e}"
                );
            }
        }
    }
}
