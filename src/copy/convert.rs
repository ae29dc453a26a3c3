//! Copying an image whose layers or manifests change on the way ([`crate::convert`] plans
//! what changes): a layer is read from the source, checked against its digest, decompressed
//! (its content checked against the config's `diff_id`) and/or compressed, and stored under
//! its new digest; the image's manifest and, above it, the index are written again. Blobs
//! that do not change go through the engine's ordinary transfer. Nothing touches disk on the
//! way and memory stays bounded ([`crate::compress::transform`]).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;

use super::transfer::BlobOutcome;
use super::{Copier, CopyReport, Ends, Node};
use crate::compress::{self, Algorithm, Op};
use crate::convert::{self, Desired, ManifestFormat, NewBlob};
use crate::error::{Error, Result};
use crate::image::read::read_whole;
use crate::image::{BlobData, BlobStream, LayerCompression, ManifestRole, Reuse};
use crate::manifest::{self, DOCKER_MANIFEST, Descriptor, Kind, Manifest, OCI_MANIFEST};
use crate::reference::{Digest, Hasher};

/// The largest config read to convert it or to learn its `diff_ids`.
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// What the command line asks for, beyond what the destination itself requires.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// What to do to layers.
    pub desired: Desired,
    /// `--dest-compress-format`, `--dest-compress-level`, `-f`.
    pub options: convert::Options,
}

impl Default for Conversion {
    fn default() -> Self {
        Conversion {
            desired: Desired::Preserve,
            options: convert::Options::default(),
        }
    }
}

#[derive(Deserialize)]
struct ConfigRootFs {
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

impl Copier {
    /// The manifest format the image must have: `-f`, else OCI when layers are to be zstd
    /// (a Docker schema 2 manifest cannot name a zstd layer; skopeo converts the same way),
    /// else none (what the destination accepts decides).
    fn forced_format(&self, ends: &Ends<'_>) -> Option<convert::ManifestFormat> {
        self.conversion.options.manifest_format.or_else(|| {
            (self.desired(ends) == Desired::Compress
                && self.conversion.options.format == Some(crate::compress::Algorithm::Zstd))
            .then_some(convert::ManifestFormat::Oci)
        })
    }

    /// What a destination wants done to layers, the command line's wish included.
    fn desired(&self, ends: &Ends<'_>) -> Desired {
        match ends.dst.capabilities().layer_compression {
            LayerCompression::Decompress => Desired::Decompress,
            LayerCompression::Preserve => self.conversion.desired,
        }
    }

    /// Whether anything of the planned tree changes on the way (from the manifests alone).
    pub(super) fn changes(&self, ends: &Ends<'_>, node: &Node) -> Result<bool> {
        let caps = ends.dst.capabilities();
        let target = convert::target_type(
            &node.manifest.media_type,
            &caps.manifest_types,
            self.forced_format(ends),
        )
        .map_err(|reason| refuse(ends, &node.manifest, reason))?;
        if target != node.manifest.media_type {
            return Ok(true);
        }
        let desired = self.desired(ends);
        if let Kind::Image { layers, .. } = &node.manifest.kind
            && layers
                .iter()
                .any(|l| convert::layer_op(l, desired, &self.conversion.options).is_some())
        {
            return Ok(true);
        }
        for c in &node.children {
            if self.changes(ends, c)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Copy the tree, changing what must change; the top manifest goes to the reference
    /// last, then the destination commits. Returns the manifest written there.
    pub(super) async fn transfer_converted(
        &self,
        ends: &Ends<'_>,
        root: &Node,
        report: &mut CopyReport,
    ) -> Result<Manifest> {
        let top = Box::pin(self.convert_node(ends, root, report, true)).await?;
        ends.dst.put_manifest(&top, ManifestRole::Reference).await?;
        report.manifests_written += 1;
        ends.dst.commit().await?;
        Ok(top)
    }

    async fn convert_node(
        &self,
        ends: &Ends<'_>,
        node: &Node,
        report: &mut CopyReport,
        top: bool,
    ) -> Result<Manifest> {
        let caps = ends.dst.capabilities();
        let target = convert::target_type(
            &node.manifest.media_type,
            &caps.manifest_types,
            self.forced_format(ends),
        )
        .map_err(|reason| refuse(ends, &node.manifest, reason))?;
        let out = match &node.manifest.kind {
            Kind::Image { .. } => {
                self.convert_image(ends, &node.manifest, target, report)
                    .await?
            }
            Kind::Index { .. } => {
                let mut children = vec![];
                let mut changed = target != node.manifest.media_type;
                for c in &node.children {
                    let new = Box::pin(self.convert_node(ends, c, report, false)).await?;
                    changed |= new.digest != c.manifest.digest;
                    children.push((
                        c.manifest.digest.to_string(),
                        NewBlob {
                            media_type: new.media_type.clone(),
                            digest: new.digest.to_string(),
                            size: new.bytes.len() as u64,
                        },
                    ));
                }
                if changed {
                    let bytes = convert::rewrite_index(&node.manifest, target, &children)
                        .map_err(|reason| refuse(ends, &node.manifest, reason))?;
                    reparse(ends, bytes, target)?
                } else {
                    node.manifest.clone()
                }
            }
        };
        if !top {
            ends.dst.put_manifest(&out, ManifestRole::ByDigest).await?;
            report.manifests_written += 1;
        }
        Ok(out)
    }

    async fn convert_image(
        &self,
        ends: &Ends<'_>,
        m: &Manifest,
        target: &'static str,
        report: &mut CopyReport,
    ) -> Result<Manifest> {
        let Kind::Image { config, layers } = &m.kind else {
            unreachable!("an image manifest");
        };
        let desired = self.desired(ends);
        let opts = &self.conversion.options;
        let ops: Vec<Option<Op>> = layers
            .iter()
            .map(|l| convert::layer_op(l, desired, opts))
            .collect();
        let config_to_oci = target == OCI_MANIFEST && m.media_type == DOCKER_MANIFEST;
        if target == m.media_type && ops.iter().all(Option::is_none) {
            let blobs: Vec<Descriptor> = m.blobs().into_iter().cloned().collect();
            self.plain_blobs(ends, blobs, report).await?;
            return Ok(m.clone());
        }
        let needs_config = config_to_oci
            || ops
                .iter()
                .any(|o| matches!(o, Some(Op::Decompress(_) | Op::Recompress(..))));
        let config_bytes = if needs_config {
            Some(
                read_whole(
                    ends.src.as_ref(),
                    config,
                    MAX_CONFIG,
                    self.opts.stall_timeout,
                )
                .await?,
            )
        } else {
            None
        };
        let diff_ids: Vec<Option<Digest>> = match &config_bytes {
            Some(b) => {
                let parsed: ConfigRootFs =
                    serde_json::from_slice(b).map_err(|e| Error::Invalid {
                        what: format!("config {}", config.digest.short()),
                        location: ends.src.location(),
                        reason: e.to_string(),
                    })?;
                let ids = parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default();
                layers
                    .iter()
                    .enumerate()
                    .map(|(i, _)| ids.get(i).and_then(|d| d.parse().ok()))
                    .collect()
            }
            None => vec![None; layers.len()],
        };
        // The config: converted to OCI, or copied as it is.
        let new_config = if config_to_oci {
            let bytes = crate::convert::gomodel::docker_config_to_oci(
                config_bytes.as_deref().unwrap_or_default(),
            )
            .map_err(|reason| refuse(ends, m, reason))?;
            let desc = Descriptor {
                media_type: convert::OCI_CONFIG.into(),
                digest: Digest::sha256(&bytes),
                size: bytes.len() as u64,
                platform: None,
                urls: vec![],
            };
            if ends.dst.try_reuse_blob(&desc, None).await? == Reuse::No {
                ends.dst
                    .put_blob(&desc, BlobData::Whole(Bytes::from(bytes)))
                    .await?;
            }
            NewBlob {
                media_type: desc.media_type.clone(),
                digest: desc.digest.to_string(),
                size: desc.size,
            }
        } else {
            self.plain_blobs(ends, vec![config.clone()], report).await?;
            NewBlob {
                media_type: config.media_type.clone(),
                digest: config.digest.to_string(),
                size: config.size,
            }
        };
        // Layers kept as they are go through the ordinary transfer, at once.
        let kept: Vec<Descriptor> = layers
            .iter()
            .zip(&ops)
            .filter(|(l, o)| o.is_none() && !l.is_foreign())
            .map(|(l, _)| l.clone())
            .collect();
        self.plain_blobs(ends, kept, report).await?;
        let docker = target == DOCKER_MANIFEST;
        let changed: Vec<(usize, Op)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.map(|o| (i, o)))
            .collect();
        let converted: Vec<(usize, NewBlob)> = futures_util::stream::iter(changed)
            .map(|(i, op)| {
                let (l, diff) = (&layers[i], diff_ids[i].clone());
                async move {
                    let new = self.convert_layer(ends, l, op, diff, docker).await?;
                    Ok::<_, Error>((i, new))
                }
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        let mut new_layers: Vec<NewBlob> = layers
            .iter()
            .map(|l| NewBlob {
                media_type: l.media_type.clone(),
                digest: l.digest.to_string(),
                size: l.size,
            })
            .collect();
        for (i, n) in converted {
            report.count(layers[i].size, BlobOutcome::Copied);
            report.layers_changed.push(format!(
                "{} {} -> {}",
                describe(ops[i].expect("a change")),
                layers[i].digest.short(),
                n.digest
            ));
            new_layers[i] = n;
        }
        let bytes = convert::rewrite_image(m, target, &new_config, &new_layers)
            .map_err(|reason| refuse(ends, m, reason))?;
        reparse(ends, bytes, target)
    }

    /// Blobs copied as they are, through the engine's transfer (bounded, shared, counted).
    async fn plain_blobs(
        &self,
        ends: &Ends<'_>,
        blobs: Vec<Descriptor>,
        report: &mut CopyReport,
    ) -> Result<()> {
        let total: u64 = blobs.iter().map(|b| b.size).sum();
        self.progress.add_total(total, blobs.len() as u64);
        let job = Arc::new(self.blob_job(ends));
        let scope = ends.dst.blob_scope();
        let outcomes: Vec<(u64, BlobOutcome)> = futures_util::stream::iter(blobs)
            .map(|d| {
                let (job, scope) = (job.clone(), &scope);
                async move { Ok::<_, Error>((d.size, self.blob(&job, scope, &d).await?)) }
            })
            .buffer_unordered(usize::MAX >> 1)
            .try_collect()
            .await?;
        for (size, o) in outcomes {
            report.count(size, o);
        }
        Ok(())
    }

    /// One layer, read, checked, changed and stored; retried whole on transient failures.
    async fn convert_layer(
        &self,
        ends: &Ends<'_>,
        desc: &Descriptor,
        op: Op,
        diff_id: Option<Digest>,
        docker: bool,
    ) -> Result<NewBlob> {
        let new_alg = match op {
            Op::Decompress(_) => None,
            Op::Compress(a, _) | Op::Recompress(_, a, _) => Some(a),
        };
        let media_type =
            convert::layer_media_type(docker, new_alg).map_err(|reason| Error::Invalid {
                what: format!("layer {}", desc.digest.short()),
                location: ends.src.location(),
                reason: reason.to_string(),
            })?;
        let _slot = self.slots.acquire(desc.size).await?;
        self.progress.add_total(desc.size, 1);
        self.progress.blob_start(&desc.digest, desc.size);
        let (digest, size) = crate::retry::run(
            &self.opts.retry,
            &format!("layer {}", desc.digest.short()),
            || async {
                let stream = self.pipeline(ends, desc, op, diff_id.clone()).await?;
                if let Some(done) = ends.dst.put_blob_computed(media_type, stream).await? {
                    return Ok(done);
                }
                // The destination needs the digest first: compute it, then stream again (the
                // compressors are deterministic: the same input gives the same bytes).
                let mut first = self.pipeline(ends, desc, op, diff_id.clone()).await?;
                let mut h = Hasher::for_digest(&Digest::sha256(b"")).expect("sha256");
                let mut n = 0u64;
                while let Some(c) = first.next().await {
                    let c = c?;
                    n += c.len() as u64;
                    h.update(&c);
                }
                let new = Descriptor {
                    media_type: media_type.to_string(),
                    digest: h.finish(),
                    size: n,
                    platform: None,
                    urls: vec![],
                };
                if ends.dst.try_reuse_blob(&new, None).await? == Reuse::No {
                    let again = self.pipeline(ends, desc, op, diff_id.clone()).await?;
                    ends.dst.put_blob(&new, BlobData::Stream(again)).await?;
                }
                Ok((new.digest, n))
            },
        )
        .await?;
        self.progress
            .blob_done(&desc.digest, desc.size, describe(op), true);
        Ok(NewBlob {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
        })
    }

    /// The source's bytes of a layer, checked against its digest, then changed; when it is
    /// decompressed, its content is checked against the config's `diff_id`.
    async fn pipeline(
        &self,
        ends: &Ends<'_>,
        desc: &Descriptor,
        op: Op,
        diff_id: Option<Digest>,
    ) -> Result<BlobStream> {
        let read = ends.src.blob(desc, 0).await?;
        if read.offset != 0 {
            return Err(Error::Invalid {
                what: format!("layer {}", desc.digest.short()),
                location: ends.src.location(),
                reason: "the source did not start at the first byte".into(),
            });
        }
        let what = format!("layer {}", desc.digest.short());
        let src = checked(
            read.stream,
            desc.digest.clone(),
            Some(desc.size),
            what.clone(),
            ends.src.location(),
            Some(self.progress.clone()),
        );
        let (decompress, compress): (Option<Algorithm>, Option<(Algorithm, Option<i32>)>) = match op
        {
            Op::Decompress(a) => (Some(a), None),
            Op::Compress(a, l) => (None, Some((a, l))),
            Op::Recompress(f, t, l) => (Some(f), Some((t, l))),
        };
        let mut s = src;
        if let Some(a) = decompress {
            s = compress::transform(s, Op::Decompress(a), what.clone());
            if let Some(d) = diff_id {
                s = checked(
                    s,
                    d,
                    None,
                    format!("uncompressed {what} (config diff_id)"),
                    ends.src.location(),
                    None,
                );
            }
        }
        if let Some((a, l)) = compress {
            s = compress::transform(s, Op::Compress(a, l), what);
        }
        Ok(s)
    }
}

/// A stream that ends with an error instead of its end when its bytes do not have `digest`
/// (and `size`, when given).
fn checked(
    input: BlobStream,
    digest: Digest,
    size: Option<u64>,
    what: String,
    loc: crate::error::Location,
    progress: Option<Arc<crate::progress::Progress>>,
) -> BlobStream {
    let hasher = Hasher::for_digest(&digest);
    let state = (input, hasher, 0u64, false);
    Box::pin(futures_util::stream::unfold(
        state,
        move |(mut input, mut hasher, mut n, done)| {
            let (digest, what, loc, progress) =
                (digest.clone(), what.clone(), loc.clone(), progress.clone());
            async move {
                if done {
                    return None;
                }
                match input.next().await {
                    Some(Ok(c)) => {
                        n += c.len() as u64;
                        if let Some(h) = hasher.as_mut() {
                            h.update(&c);
                        }
                        if let Some(p) = &progress {
                            p.blob_bytes(&digest, c.len() as u64);
                        }
                        Some((Ok(c), (input, hasher, n, false)))
                    }
                    Some(Err(e)) => Some((Err(e), (input, hasher, n, true))),
                    None => {
                        let bad = match (size, hasher.take()) {
                            (Some(s), _) if s != n => Some(Error::Invalid {
                                what,
                                location: loc,
                                reason: format!("{n} bytes, {s} expected"),
                            }),
                            (_, Some(h)) => {
                                let actual = h.finish();
                                (actual != digest).then(|| Error::DigestMismatch {
                                    what,
                                    location: loc,
                                    expected: digest.to_string(),
                                    actual: actual.to_string(),
                                })
                            }
                            _ => None,
                        };
                        bad.map(|e| (Err(e), (input, None, n, true)))
                    }
                }
            }
        },
    ))
}

fn describe(op: Op) -> &'static str {
    match op {
        Op::Decompress(_) => "decompressed",
        Op::Compress(..) => "compressed",
        Op::Recompress(..) => "recompressed",
    }
}

fn refuse(ends: &Ends<'_>, m: &Manifest, reason: convert::ConvertError) -> Error {
    Error::Invalid {
        what: format!(
            "{} {}",
            manifest::type_name(&m.media_type),
            m.digest.short()
        ),
        location: ends.dst.location(),
        reason: reason.to_string(),
    }
}

fn reparse(ends: &Ends<'_>, bytes: Bytes, target: &str) -> Result<Manifest> {
    manifest::parse(bytes, Some(target)).map_err(|reason| Error::Invalid {
        what: "converted manifest".into(),
        location: ends.dst.location(),
        reason: reason.to_string(),
    })
}

/// `-f` as the command line gives it.
pub fn manifest_format(s: &str) -> Result<ManifestFormat> {
    s.parse().map_err(Error::Usage)
}
