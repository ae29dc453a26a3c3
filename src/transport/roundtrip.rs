//! The transports through the seam: images written through an [`ImageDestination`] and read
//! back through the matching [`ImageSource`], with the files on disk checked. (Side-by-side
//! checks against skopeo's own files are in `tests/it/transports_*.rs`.)

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde_json::json;

use super::*;
use crate::image::{BlobData, ManifestRole, Reuse};
use crate::manifest::{self, Kind, Manifest};
use crate::reference::Digest;

/// An image built in memory: blobs by digest, child manifests, top manifest.
pub(crate) struct TestImage {
    pub blobs: Vec<(Digest, Bytes)>,
    pub children: Vec<Manifest>,
    pub top: Manifest,
}

fn layer_tar(seed: u8, size: usize) -> Vec<u8> {
    let mut body = vec![0u8; size];
    fastrand::Rng::with_seed(u64::from(seed)).fill(&mut body);
    let mut out = super::tar::header(&format!("f{seed}.bin"), size as u64, None);
    out.extend_from_slice(&body);
    out.extend(super::tar::data_padding(size as u64));
    out.extend(super::tar::trailer());
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A single image: Docker or OCI, gzip or uncompressed layers.
pub(crate) fn image(docker: bool, gz: bool, seed: u8, arch: &str) -> TestImage {
    let mut blobs = vec![];
    let mut layers = vec![];
    let mut diff_ids = vec![];
    for i in 0..2u8 {
        let tar = layer_tar(seed.wrapping_add(i), 3000 + 1000 * i as usize);
        diff_ids.push(Digest::sha256(&tar).to_string());
        let b = if gz { gzip(&tar) } else { tar };
        let d = Digest::sha256(&b);
        let mt = match (docker, gz) {
            (true, true) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (true, false) => "application/vnd.docker.image.rootfs.diff.tar",
            (false, true) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (false, false) => "application/vnd.oci.image.layer.v1.tar",
        };
        layers.push(json!({"mediaType": mt, "size": b.len(), "digest": d.to_string()}));
        blobs.push((d, Bytes::from(b)));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh", "-c", "a && b <x>"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": []
    }))
    .unwrap();
    let cd = Digest::sha256(&config);
    let (mt, ct) = if docker {
        (manifest::DOCKER_MANIFEST, docker_archive::DOCKER_CONFIG)
    } else {
        (
            manifest::OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
        )
    };
    blobs.push((cd.clone(), Bytes::from(config.clone())));
    let m = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": mt,
        "config": {"mediaType": ct, "size": config.len(), "digest": cd.to_string()},
        "layers": layers,
    }))
    .unwrap();
    TestImage {
        blobs,
        children: vec![],
        top: manifest::parse(Bytes::from(m), None).unwrap(),
    }
}

/// An OCI index of two images sharing nothing.
pub(crate) fn index() -> TestImage {
    let a = image(false, true, 10, "amd64");
    let b = image(false, true, 20, "arm64");
    let entries: Vec<_> = [(&a, "amd64"), (&b, "arm64")]
        .iter()
        .map(|(i, arch)| {
            json!({"mediaType": i.top.media_type, "size": i.top.bytes.len(),
                   "digest": i.top.digest.to_string(),
                   "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": entries
    }))
    .unwrap();
    let mut blobs = a.blobs.clone();
    blobs.extend(b.blobs.clone());
    TestImage {
        blobs,
        children: vec![a.top, b.top],
        top: manifest::parse(Bytes::from(idx), None).unwrap(),
    }
}

/// Write an image through a destination, as the engine does (blobs, children, top, commit).
pub(crate) async fn write(img: &TestImage, dst: &dyn ImageDestination) -> crate::error::Result<()> {
    for m in img.children.iter().chain([&img.top]) {
        for desc in m.blobs() {
            if dst.try_reuse_blob(desc, None).await? == Reuse::No {
                let bytes = img
                    .blobs
                    .iter()
                    .find(|(d, _)| *d == desc.digest)
                    .unwrap()
                    .1
                    .clone();
                let chunks: Vec<crate::error::Result<Bytes>> = bytes
                    .chunks(1000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                dst.put_blob(
                    desc,
                    BlobData::Stream(Box::pin(futures_util::stream::iter(chunks))),
                )
                .await?;
            }
        }
    }
    for c in &img.children {
        dst.put_manifest(c, ManifestRole::ByDigest).await?;
    }
    dst.put_manifest(&img.top, ManifestRole::Reference).await?;
    dst.commit().await
}

/// Read an image back through a source, checking every blob's bytes against its digest.
pub(crate) async fn read(src: &dyn ImageSource) -> crate::error::Result<TestImage> {
    let top = src.manifest().await?;
    let mut children = vec![];
    if let Kind::Index { manifests } = &top.kind {
        for d in manifests {
            children.push(src.manifest_by_digest(&d.digest).await?);
        }
    }
    let mut blobs = vec![];
    for m in children.iter().chain([&top]) {
        for desc in m.blobs() {
            let mut r = src.blob(desc, 0).await?;
            let mut data = vec![];
            while let Some(c) = r.stream.next().await {
                data.extend_from_slice(&c?);
            }
            if let Some(actual) = desc.digest.verify(&data) {
                return Err(crate::error::Error::DigestMismatch {
                    what: format!("blob {}", desc.digest.short()),
                    location: src.location(),
                    expected: desc.digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            blobs.push((desc.digest.clone(), Bytes::from(data)));
        }
    }
    Ok(TestImage {
        blobs,
        children,
        top,
    })
}

fn local(s: &str) -> LocalRef {
    LocalRef::parse(s).unwrap().unwrap()
}

#[tokio::test]
async fn dir_round_trip_is_skopeo_s_layout() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("img");
    let img = index();
    let r = local(&format!("dir:{}", path.display()));
    write(&img, r.destination(&[]).await.unwrap().as_ref())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(path.join("version")).unwrap(),
        dir::VERSION.as_bytes()
    );
    assert_eq!(
        std::fs::read(path.join("manifest.json")).unwrap(),
        img.top.bytes
    );
    for c in &img.children {
        let f = path.join(format!("{}.manifest.json", c.digest.hex()));
        assert_eq!(std::fs::read(f).unwrap(), c.bytes);
    }
    for (d, b) in &img.blobs {
        assert_eq!(std::fs::read(path.join(d.hex())).unwrap(), *b);
    }
    // Nothing else: skopeo's file set exactly, no temporary file left, nothing next to it.
    let n = std::fs::read_dir(&path).unwrap().count();
    assert_eq!(n, 2 + img.children.len() + img.blobs.len());
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    let back = read(r.source().await.unwrap().as_ref()).await.unwrap();
    assert_eq!(back.top.digest, img.top.digest);
    assert_eq!(back.blobs.len(), img.blobs.len());
}

#[tokio::test]
async fn dir_replaces_an_image_whole_and_refuses_other_directories() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("img");
    let r = local(&format!("dir:{}", path.display()));
    let first = image(true, true, 1, "amd64");
    write(&first, r.destination(&[]).await.unwrap().as_ref())
        .await
        .unwrap();
    // A second image sharing nothing replaces the first: none of its files stay.
    let second = image(false, false, 50, "amd64");
    let dst = r.destination(&[]).await.unwrap();
    // The old image stays readable while the new one is being written.
    write_until_commit(&second, dst.as_ref()).await;
    let during = read(r.source().await.unwrap().as_ref()).await.unwrap();
    assert_eq!(during.top.digest, first.top.digest);
    dst.commit().await.unwrap();
    let after = read(r.source().await.unwrap().as_ref()).await.unwrap();
    assert_eq!(after.top.digest, second.top.digest);
    for (d, _) in &first.blobs {
        assert!(!path.join(d.hex()).exists(), "an old blob stayed");
    }
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    // A directory that holds something else is refused, and left alone.
    let other = t.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("important.txt"), b"data").unwrap();
    let e = local(&format!("dir:{}", other.display()))
        .destination(&[])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a containers image directory"), "{e}");
    assert_eq!(std::fs::read(other.join("important.txt")).unwrap(), b"data");
}

async fn write_until_commit(img: &TestImage, dst: &dyn ImageDestination) {
    for desc in img.top.blobs() {
        if dst.try_reuse_blob(desc, None).await.unwrap() == Reuse::No {
            let b = img
                .blobs
                .iter()
                .find(|(d, _)| *d == desc.digest)
                .unwrap()
                .1
                .clone();
            dst.put_blob(desc, BlobData::Whole(b)).await.unwrap();
        }
    }
    dst.put_manifest(&img.top, ManifestRole::Reference)
        .await
        .unwrap();
}

#[tokio::test]
async fn dir_signatures_are_numbered_files() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("img");
    let r = local(&format!("dir:{}", path.display()));
    let img = image(true, true, 3, "amd64");
    let dst = r.destination(&[]).await.unwrap();
    write_until_commit(&img, dst.as_ref()).await;
    dst.put_signature(&img.top.digest, &[0xa3, 1, 2])
        .await
        .unwrap();
    dst.commit().await.unwrap();
    dst.put_signature(&img.top.digest, &[0xa3, 3])
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(path.join("signature-1")).unwrap(),
        [0xa3, 1, 2]
    );
    assert_eq!(std::fs::read(path.join("signature-2")).unwrap(), [0xa3, 3]);
    let src = r.source().await.unwrap();
    assert!(src.supports_signatures().await.unwrap());
    assert_eq!(
        src.signatures(&img.top.digest).await.unwrap(),
        vec![vec![0xa3, 1, 2], vec![0xa3, 3]]
    );
}

#[tokio::test]
async fn oci_layout_holds_several_images_and_stores_blobs_once() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let a = image(false, true, 1, "amd64");
    let idx = index();
    for (img, name) in [(&a, "v1"), (&idx, "multi"), (&a, "v1-again")] {
        let r = local(&format!("oci:{}:{name}", lay.display()));
        write(img, r.destination(&[]).await.unwrap().as_ref())
            .await
            .unwrap();
    }
    let index = std::fs::read_to_string(lay.join("index.json")).unwrap();
    assert_eq!(
        index.matches("org.opencontainers.image.ref.name").count(),
        3,
        "{index}"
    );
    assert_eq!(
        std::fs::read_to_string(lay.join("oci-layout")).unwrap(),
        oci_index::OCI_LAYOUT
    );
    let stored = std::fs::read_dir(lay.join("blobs/sha256")).unwrap().count();
    // a's blobs + a's manifest, idx's blobs + 2 children + index: each once.
    assert_eq!(stored, a.blobs.len() + 1 + idx.blobs.len() + 3);
    let back = read(
        local(&format!("oci:{}:multi", lay.display()))
            .source()
            .await
            .unwrap()
            .as_ref(),
    )
    .await
    .unwrap();
    assert_eq!(back.top.digest, idx.top.digest);
    assert_eq!(back.children.len(), 2);
    let by_pos = local(&format!("oci:{}:@0", lay.display()))
        .source()
        .await
        .unwrap();
    assert_eq!(by_pos.manifest().await.unwrap().digest, a.top.digest);
    // No name and several images: refused; a missing name: not found (exit code 2).
    let e = local(&format!("oci:{}", lay.display()))
        .source()
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("holds 3 images"), "{e}");
    let e = local(&format!("oci:{}:nope", lay.display()))
        .source()
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 2, "{e}");
}

#[tokio::test]
async fn oci_reading_checks_every_byte() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let a = image(false, true, 4, "amd64");
    let r = local(&format!("oci:{}:v1", lay.display()));
    write(&a, r.destination(&[]).await.unwrap().as_ref())
        .await
        .unwrap();
    let flip = |p: std::path::PathBuf| {
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        std::fs::write(&p, b).unwrap();
    };
    // A flipped byte in a layer: the blob's digest does not match, and the message names it.
    let layer = a.top.blobs()[1].digest.clone();
    flip(lay.join("blobs/sha256").join(layer.hex()));
    let e = read(r.source().await.unwrap().as_ref())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&layer.short()) && e.contains("digest mismatch"),
        "{e}"
    );
    // A flipped byte in the manifest: refused when read.
    flip(lay.join("blobs/sha256").join(a.top.digest.hex()));
    let e = r
        .source()
        .await
        .unwrap()
        .manifest()
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&a.top.digest.short()) && e.contains("digest mismatch"),
        "{e}"
    );
    // A truncated blob: refused before streaming.
    let cfg = a.top.blobs()[0].clone();
    std::fs::write(lay.join("blobs/sha256").join(cfg.digest.hex()), b"{}").unwrap();
    let src = r.source().await.unwrap();
    let e = src.blob(&cfg, 0).await.err().unwrap().to_string();
    assert!(e.contains("declares"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_entry() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("lay");
    let images: Vec<TestImage> = (0..8u8)
        .map(|i| image(false, true, 100 + 3 * i, "amd64"))
        .collect();
    let images = Arc::new(images);
    // Every writer reads index.json before any commits (they all opened the layout first).
    let mut dsts = vec![];
    for i in 0..images.len() {
        let r = local(&format!("oci:{}:img{i}", lay.display()));
        dsts.push(r.destination(&[]).await.unwrap());
    }
    let tasks: Vec<_> = dsts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let images = images.clone();
            tokio::spawn(async move { write(&images[i], d.as_ref()).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let index = oci_index::Index::parse(&std::fs::read(lay.join("index.json")).unwrap()).unwrap();
    let mut names: Vec<_> = index.entries().iter().filter_map(|e| e.name()).collect();
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("img{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn oci_archive_round_trip_reads_in_place() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("a.tar");
    let idx = index();
    let r = local(&format!("oci-archive:{}:multi", file.display()));
    write(&idx, r.destination(&[]).await.unwrap().as_ref())
        .await
        .unwrap();
    // Only the archive is left.
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    let back = read(r.source().await.unwrap().as_ref()).await.unwrap();
    assert_eq!(back.top.digest, idx.top.digest);
    assert_eq!(back.blobs.len(), idx.blobs.len());
    // The same image twice gives the same bytes.
    let again = t.path().join("b.tar");
    let r2 = local(&format!("oci-archive:{}:multi", again.display()));
    write(&idx, r2.destination(&[]).await.unwrap().as_ref())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // A gzip-compressed archive is read too.
    let gz = t.path().join("c.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&file).unwrap())).unwrap();
    let r3 = local(&format!("oci-archive:{}:multi", gz.display()));
    assert_eq!(
        read(r3.source().await.unwrap().as_ref())
            .await
            .unwrap()
            .top
            .digest,
        idx.top.digest
    );
}

#[tokio::test]
async fn docker_archive_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("d.tar");
    let img = image(true, false, 7, "amd64");
    let r = local(&format!(
        "docker-archive:{}:example.com/ns/app:v1",
        file.display()
    ));
    let extra = crate::reference::ImageRef::parse("foo:bar").unwrap();
    write(&img, r.destination(&[extra]).await.unwrap().as_ref())
        .await
        .unwrap();
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    // The generated manifest names the same blobs (uncompressed layers; skopeo's docker-archive
    // source declares them with the gzip media type, and so does ferry's).
    let src = local(&format!("docker-archive:{}:foo:bar", file.display()))
        .source()
        .await
        .unwrap();
    let back = read(src.as_ref()).await.unwrap();
    let ids = |m: &Manifest| -> Vec<(Digest, u64)> {
        m.blobs()
            .iter()
            .map(|d| (d.digest.clone(), d.size))
            .collect()
    };
    assert_eq!(ids(&back.top), ids(&img.top));
    assert_eq!(
        docker_archive::list_tags(&file).await.unwrap(),
        vec![
            "example.com/ns/app:v1".to_string(),
            "docker.io/library/foo:bar".into()
        ]
    );
    // Writing over an existing archive is refused, as skopeo refuses it.
    assert!(r.destination(&[]).await.is_err());
}

#[tokio::test]
async fn hostile_archives_reach_nothing_outside() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("evil.tar");
    let mut data = vec![];
    let mut add = |name: &str, body: &[u8], link: Option<&str>| {
        data.extend(super::tar::header(name, body.len() as u64, link));
        data.extend_from_slice(body);
        data.extend(super::tar::data_padding(body.len() as u64));
    };
    let cfg = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    add(
        "manifest.json",
        br#"[{"Config":"c.json","RepoTags":[],"Layers":["/etc/hostname"]}]"#,
        None,
    );
    add("c.json", cfg, None);
    add("../../../../etc/passwd", b"root:x:0:0", None);
    add("/etc/shadow", b"x", None);
    data.extend(super::tar::trailer());
    std::fs::write(&file, &data).unwrap();
    let before: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let e = local(&format!("docker-archive:{}", file.display()))
        .source()
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("missing"), "{e}");
    let after: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "reading an archive created files");
}
