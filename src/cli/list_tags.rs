//! `list-tags`: skopeo's `{"Repository", "Tags"}` JSON.

use clap::Args;

use super::options::{GlobalOptions, Personality, RegistryFlags, RetryArgs};
use crate::error::Result;
use crate::inspect::govalue::{Field, GoValue};
use crate::reference::parse_repository;

/// Arguments of `list-tags`.
#[derive(Debug, Args)]
pub(super) struct ListTagsArgs {
    /// Repository: docker://[HOST[:PORT]/]PATH (no tag or digest), or docker-archive:FILE.
    #[arg(value_name = "SOURCE-IMAGE")]
    repository: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    retry: RetryArgs,
}

/// skopeo's output for `list-tags`: `Repository` (omitempty) and `Tags`, indented as Go does.
pub(super) fn render(repository: &str, tags: Vec<String>) -> String {
    let v = GoValue::Struct(vec![
        Field::omitempty(
            "Repository",
            "Repository",
            GoValue::Str(repository.to_string()),
        ),
        Field::new("Tags", "Tags", GoValue::strings(Some(tags))),
    ]);
    format!("{}\n", v.to_json_indent())
}

pub(super) async fn run(
    args: ListTagsArgs,
    global: &GlobalOptions,
    personality: Personality,
) -> Result<()> {
    if let Some(file) = args.repository.strip_prefix("docker-archive:") {
        // As skopeo: every image's RepoTags, `@N` for an untagged one; no Repository.
        let tags = crate::transport::docker_archive::list_tags(std::path::Path::new(file)).await?;
        print!("{}", render("", tags));
        return Ok(());
    }
    let (registry, repository) = parse_repository(&args.repository)?;
    let client = args
        .registry
        .client(&registry, &repository, &args.retry, personality, global)?;
    // A missing repository is NAME_UNKNOWN (HTTP 404), not a missing image: exit 1, as skopeo.
    let tags = client.list_tags(&repository).await?;
    print!("{}", render(&format!("{registry}/{repository}"), tags));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_as_skopeo() {
        assert_eq!(
            super::render("r.io/a", vec!["v1".into(), "v2".into()]),
            "{\n    \"Repository\": \"r.io/a\",\n    \"Tags\": [\n        \"v1\",\n        \"v2\"\n    ]\n}\n"
        );
        assert_eq!(
            super::render("r.io/a", vec![]),
            "{\n    \"Repository\": \"r.io/a\",\n    \"Tags\": []\n}\n"
        );
    }
}
