//! `dir:` side by side with skopeo 1.9.3 and 1.18: the same directories byte for byte, an
//! image replaced whole, other directories refused; and the compression flags
//! (`--dest-decompress`, `--dest-compress`, `--dest-compress-format zstd`) with the content,
//! config and `diff_ids` skopeo produces.

use std::path::Path;

use crate::support::disk::{assert_same_tree, json, tree, uncompressed};
use crate::support::fixtures::*;
use crate::support::*;

fn copy(mut t: Tool, extra: &[&str], reg: &Registry, from: &str, to: &str) -> Output {
    t.arg("copy")
        .args(extra)
        .args(reg.tls_args(Side::Src))
        .arg(reg.docker_ref(from))
        .arg(to)
        .run()
}

/// A tool to run, by name.
type Named = (&'static str, fn() -> Tool);

fn tools() -> [Named; 3] {
    [
        ("ferry", ferry),
        ("skopeo-1.18", skopeo_current),
        ("skopeo-1.9.3", skopeo),
    ]
}

#[test]
fn dir_is_skopeo_s_byte_for_byte() {
    let reg = Registry::start(RegistryOptions::default());
    let img = ImageSpec::docker().layers(&[2000, 3000]).seed(31).build();
    let idx = IndexSpec::oci()
        .platforms(2)
        .shared_layers(&[1200])
        .own_layers(&[800])
        .seed(32)
        .build();
    img.seed(&reg, "ns/app:v1");
    idx.seed(&reg, "ns/multi:v1");
    let work = tempfile::tempdir().unwrap();
    for (name, t) in tools() {
        let d = work.path().join(name);
        std::fs::create_dir(&d).unwrap();
        copy(
            t(),
            &["--all", "--preserve-digests"],
            &reg,
            "ns/app:v1",
            &format!("dir:{}/img", d.display()),
        )
        .assert_success();
        copy(
            t(),
            &["--all", "--preserve-digests"],
            &reg,
            "ns/multi:v1",
            &format!("dir:{}/idx", d.display()),
        )
        .assert_success();
    }
    let f = tree(&work.path().join("ferry"));
    assert_eq!(f["img/manifest.json"], img.manifest);
    assert_eq!(f["img/version"], b"Directory Transport Version: 1.1\n");
    assert!(f.contains_key(&format!(
        "idx/{}.manifest.json",
        idx.images[0].digest.trim_start_matches("sha256:")
    )));
    assert_same_tree(
        &f,
        &tree(&work.path().join("skopeo-1.18")),
        "ferry vs skopeo 1.18",
    );
    assert_same_tree(
        &f,
        &tree(&work.path().join("skopeo-1.9.3")),
        "ferry vs skopeo 1.9.3",
    );
}

#[test]
fn an_image_is_replaced_whole_and_other_directories_are_refused() {
    let reg = Registry::start(RegistryOptions::default());
    let a = ImageSpec::oci().layers(&[1000]).seed(33).build();
    let b = ImageSpec::docker().layers(&[1500]).seed(34).build();
    a.seed(&reg, "ns/a:v1");
    b.seed(&reg, "ns/b:v1");
    let work = tempfile::tempdir().unwrap();
    for (name, t) in tools() {
        let d = format!("dir:{}/{name}", work.path().display());
        copy(t(), &["--preserve-digests"], &reg, "ns/a:v1", &d).assert_success();
        copy(t(), &["--preserve-digests"], &reg, "ns/b:v1", &d).assert_success();
    }
    let f = tree(&work.path().join("ferry"));
    assert_eq!(f["manifest.json"], b.manifest);
    assert_same_tree(
        &f,
        &tree(&work.path().join("skopeo-1.18")),
        "replaced, vs skopeo 1.18",
    );
    // Nothing left next to it (ferry builds the new image beside and swaps the two).
    let mut names: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["ferry", "skopeo-1.18", "skopeo-1.9.3"]);
    // A directory holding something else: both refuse, and leave it alone.
    let other = work.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("important.txt"), b"keep").unwrap();
    let to = format!("dir:{}", other.display());
    copy(ferry(), &[], &reg, "ns/a:v1", &to)
        .assert_failure_with(&["not a containers image directory"]);
    copy(skopeo_current(), &[], &reg, "ns/a:v1", &to)
        .assert_failure_with(&["not a containers image directory"]);
    assert_eq!(std::fs::read(other.join("important.txt")).unwrap(), b"keep");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

/// The layers of a dir: image, uncompressed, and its config.
fn content(dir: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let m = json(&dir.join("manifest.json"));
    let blob = |d: &serde_json::Value| {
        std::fs::read(dir.join(d.as_str().unwrap().trim_start_matches("sha256:"))).unwrap()
    };
    let layers = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| uncompressed(&blob(&l["digest"])))
        .collect();
    (layers, blob(&m["config"]["digest"]))
}

fn media_types(dir: &Path) -> Vec<String> {
    json(&dir.join("manifest.json"))["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn compression_round_trips_as_skopeo() {
    let reg = Registry::start(RegistryOptions::default());
    let img = ImageSpec::oci().layers(&[3000, 5000]).seed(35).build();
    img.seed(&reg, "ns/app:v1");
    let w = tempfile::tempdir().unwrap();
    let p = |s: &str| w.path().join(s);
    let dir = |s: &str| format!("dir:{}", p(s).display());
    let local = |mut t: Tool, extra: &[&str], from: &str, to: &str| {
        t.arg("copy").args(extra).arg(dir(from)).arg(dir(to)).run()
    };
    // gzip -> uncompressed: deterministic, so byte for byte skopeo's (manifest included).
    // The boolean flag takes no value: the next argument is the source.
    copy(
        ferry(),
        &["--dest-decompress"],
        &reg,
        "ns/app:v1",
        &dir("f-plain"),
    )
    .assert_success();
    copy(
        skopeo_current(),
        &["--dest-decompress"],
        &reg,
        "ns/app:v1",
        &dir("s-plain"),
    )
    .assert_success();
    assert_same_tree(
        &tree(&p("f-plain")),
        &tree(&p("s-plain")),
        "decompressed, vs skopeo 1.18",
    );
    assert_eq!(media_types(&p("f-plain")), vec![OCI_LAYER_TAR; 2]);
    let diff_ids: Vec<String> = img
        .image()
        .layers
        .iter()
        .map(|l| l.diff_id.clone())
        .collect();
    let m = json(&p("f-plain/manifest.json"));
    let digests: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests, diff_ids,
        "uncompressed layers are named by their diff_ids"
    );
    // uncompressed -> gzip, and -> zstd: the compressed bytes are each tool's own; the
    // content, the config (so the diff_ids) and the media types are skopeo's.
    for (suffix, extra, mt) in [
        ("gz", vec!["--dest-compress"], OCI_LAYER_GZIP),
        (
            "zst",
            vec!["--dest-compress", "--dest-compress-format", "zstd"],
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    ] {
        let (f, s) = (format!("f-{suffix}"), format!("s-{suffix}"));
        local(ferry(), &extra, "f-plain", &f).assert_success();
        local(skopeo_current(), &extra, "s-plain", &s).assert_success();
        assert_eq!(media_types(&p(&f)), vec![mt; 2]);
        assert_eq!(media_types(&p(&f)), media_types(&p(&s)));
        assert_eq!(
            content(&p(&f)),
            content(&p(&s)),
            "{suffix}: content or config differs"
        );
        assert_eq!(
            content(&p(&f)).1,
            img.image().config,
            "the config is unchanged"
        );
    }
    // And back: zstd -> uncompressed gives the very first directory again.
    local(ferry(), &["--dest-decompress"], "f-zst", "f-back").assert_success();
    assert_same_tree(&tree(&p("f-back")), &tree(&p("f-plain")), "zstd and back");
    // A summary that says so.
    let out = local(ferry(), &["--dest-compress"], "f-plain", "f-gz2");
    out.assert_success();
    assert!(
        out.stdout
            .contains("2 layer(s) compressed (digests changed)"),
        "{out}"
    );
    // Both at once is refused, as skopeo refuses it.
    local(
        ferry(),
        &["--dest-compress", "--dest-decompress"],
        "f-plain",
        "x",
    )
    .assert_failure_with(&["at the same time"]);
}
