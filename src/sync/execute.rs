//! A sync's planned images copied concurrently: each through [`super::image::sync_one`]
//! (journal, `HEAD` checks, the copy engine), skopeo's log lines, the report.

use std::sync::Arc;

use futures_util::StreamExt as _;

use super::{Clients, Job, SourceGroup, SyncOptions, SyncReport, image, outcome, shard};
use crate::copy::transcript::Transcript;
use crate::copy::{BlobLocks, Copier};
use crate::error::Result;
use crate::policy::{Policy, PolicyImage};
use crate::progress::{Progress, Style};

/// Copy the planned images, concurrently.
pub(crate) async fn execute(
    groups: &[SourceGroup],
    jobs: Vec<Job>,
    opts: &SyncOptions,
    clients: &Clients<'_>,
    progress: Arc<Progress>,
    policy: Option<&Arc<Policy>>,
    mut report: SyncReport,
) -> Result<SyncReport> {
    let total = jobs.len();
    if let Some(sh) = &opts.shard {
        let by = match sh.by {
            shard::ShardBy::Repository => "repositories",
            shard::ShardBy::Image => "images",
        };
        log::info!("Shard {sh} (by {by}): {total} image(s) of the list");
    }
    // skopeo's words and fields: `msg="Would have copied image ref 1/2" from=… to=…`.
    let from_to = |j: &Job| [("from", j.src.to_string()), ("to", j.dst.to_string())];
    let say = |level, msg: &str, fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        progress.log(level, msg, &fields);
    };
    if opts.dry_run {
        for (i, j) in jobs.iter().enumerate() {
            let msg = format!("Would have copied image ref {}/{total}", i + 1);
            say(log::Level::Info, &msg, &from_to(j));
        }
        report.copied = total as u64;
        return Ok(report);
    }
    let slots = Arc::new(crate::copy::Slots::new(opts.blob_slots));
    let locks = Arc::new(BlobLocks::default());
    // `images_in_flight` bounds the copies; the cheap checks before them run wider.
    let copies = &tokio::sync::Semaphore::new(opts.images_in_flight.max(1));
    // The `HEAD` per side decides "present" only when nothing else travels with the image:
    // referrers and attachment tags the destination lacks are added by the engine even to an
    // image it has, so with them (ferry's default) the engine decides.
    // An image already there is copied (and signed) again when signing, as skopeo does.
    let probe = opts.probe && !opts.copy.attachments.enabled() && opts.copy.sign.is_none();
    let width = if probe || opts.journal.is_some() {
        opts.images_in_flight.max(1) * image::CHECK_WIDTH
    } else {
        opts.images_in_flight.max(1)
    };
    let clients = &clients;
    let mut outcomes: Vec<Option<outcome::ImageOutcome>> = vec![None; total];
    let mut first_error = None;
    {
        let mut stream = futures_util::stream::iter(jobs.iter().enumerate())
            .map(|(i, j)| {
                let slots = slots.clone();
                let locks = locks.clone();
                let progress = progress.clone();
                // As skopeo, each image's copy lines, kept until it is done (images are copied
                // concurrently; skopeo copies one after the other).
                let transcript =
                    (progress.style() == Style::Skopeo).then(|| Arc::new(Transcript::buffered()));
                async move {
                    let r = async {
                        let msg = format!("Copying image ref {}/{total}", i + 1);
                        say(log::Level::Info, &msg, &from_to(j));
                        let ends = crate::sync_disk::ends(
                            groups,
                            j,
                            clients,
                            opts.registries_d.as_deref(),
                        )
                        .await?;
                        let mut copier = Copier::new(opts.copy.clone(), progress.clone(), slots)
                            .with_blob_locks(locks)
                            .with_conversion(opts.conversion.clone())
                            .with_policy(policy.map(|p| {
                                crate::copy::Gate::new(p.clone(), PolicyImage::of(&j.src))
                            }));
                        if let Some(t) = &transcript {
                            copier = copier.with_transcript(t.clone());
                        }
                        Ok(image::sync_one(
                            ends,
                            copier,
                            opts.journal.as_deref(),
                            probe.then_some((opts.copy.multi_arch, opts.copy.remove_signatures)),
                            copies,
                        )
                        .await)
                    }
                    .await;
                    if let Some(t) = transcript {
                        progress.report(&t.take());
                    }
                    (i, r)
                }
            })
            .buffer_unordered(width);
        while let Some((i, r)) = stream.next().await {
            // A client that could not be made fails the image as a copy would.
            let r = r.and_then(|done: image::Done| {
                let error = done.error;
                outcomes[i] = Some(done.outcome);
                match error {
                    Some(e) => Err(e),
                    None => Ok((done.copy, outcomes[i].clone().expect("just set"))),
                }
            });
            match r {
                Ok((rep, out)) => {
                    if progress.style() == Style::Ferry {
                        match &rep {
                            Some(rep) => {
                                for v in &rep.signatures_verified {
                                    progress.line(&v.line());
                                }
                                for s in &rep.signatures_made {
                                    progress.line(&s.line());
                                }
                                progress.line(&rep.summary());
                                for n in &rep.signatures_not_copied {
                                    progress.line(&format!(
                                        "Note: a signature of the source was not copied: {n}"
                                    ));
                                }
                                for s in &rep.attached_not_copied {
                                    progress.line(&format!("Note: not copied: {s}"));
                                }
                            }
                            None => progress.line(&image::summary(&out)),
                        }
                    }
                    if let Some(rep) = &rep {
                        report.referrers.add(&rep.referrers);
                        report.attachments.add(&rep.attachments);
                    }
                    match out.outcome {
                        outcome::Outcome::Copied => report.copied += 1,
                        outcome::Outcome::Journaled => {
                            report.already_present += 1;
                            report.journaled += 1;
                        }
                        _ => report.already_present += 1,
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    // skopeo: `logrus.WithError(err).Errorf("Error copying ref %q", …)`.
                    let msg = format!("Error copying ref \"{}\"", jobs[i].src);
                    say(log::Level::Error, &msg, &[("error", e.to_string())]);
                    if outcomes[i].is_none() {
                        outcomes[i] = Some(image::failed(&jobs[i].src, &jobs[i].dst, &e));
                    }
                    if !opts.keep_going {
                        first_error = Some(e);
                        break;
                    }
                }
            }
        }
    }
    report.digests = jobs
        .iter()
        .zip(&outcomes)
        .filter_map(|(j, o)| {
            let o = o.as_ref().filter(|o| o.outcome.done())?;
            Some((o.digest.clone()?, j.dst.clone()))
        })
        .collect();
    report.images.extend(outcomes.into_iter().flatten());
    for ((source, ..), c) in clients.cache.lock().expect("client cache").iter() {
        if *source {
            report.requests.source += c.request_count();
        } else {
            report.requests.destination += c.request_count();
        }
    }
    report.aborted = first_error;
    Ok(report)
}
