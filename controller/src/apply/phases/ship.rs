//! Phase "ship": build each host's plan, offer it, and learn which files the agent lacks;
//! those go as one zstd-compressed tar stream over the agent's own channel, in the order the
//! steps need them, while the first steps run ([`super::steps`]). In a dry run the plan is
//! offered read-only and nothing is sent. The stream itself comes from
//! [`crate::rootfs_stream`]. With the fan-out, a host that runs no registry is sent nothing
//! here: it fetches from the registry later ([`super::fetch`]).

use crate::apply::driver::{HostPhase, HostResult, Run};
use crate::apply::host::{Connected, HostFail, ToSend};
use crate::apply::inputs::Inputs;
use crate::clusterfile::HostSpec;
use crate::output::event::{Phase, RunEvent};
use installer_proto::facts::Facts;
use installer_proto::fanout::BlobRef;
use installer_proto::plan::{Plan, Timeouts};
use installer_proto::rootfs::MergedTree;
use std::sync::Arc;

/// Sends each host what its plan needs.
pub struct Ship {
    /// What apply read locally.
    pub inputs: Arc<Inputs>,
    /// The timeouts every plan carries.
    pub timeouts: Timeouts,
    /// Leave what hosts without a registry lack for them to fetch from the registry.
    pub fan_out: bool,
}

impl HostPhase for Ship {
    type In = Connected;
    type Out = Connected;
    const PHASE: Phase = Phase::Ship;

    async fn run(&self, run: &Run, c: Connected) -> HostResult<Connected> {
        Ok(ship_one(run, &self.inputs, c, self.timeouts.clone(), self.fan_out).await?)
    }
}

/// The plan of a host that passed preflight (its Clusterfile entry and its facts), and the
/// merged tree it is built from.
pub(crate) async fn plan_for(
    inputs: &Inputs,
    host: &HostSpec,
    facts: &Facts,
    timeouts: Timeouts,
) -> Result<(Plan, Arc<MergedTree>), String> {
    let tree = inputs.tree_for(&facts.arch).await?;
    let registry_host = inputs.clusterfile.is_registry_host(&host.ip);
    let mut plan = crate::plan::build_plan_with_image(
        &inputs.clusterfile,
        host,
        facts,
        &tree,
        inputs.rootfs.image_env(),
        registry_host,
        timeouts,
    )
    .map_err(|e| e.to_string())?;
    plan.watch = inputs.watch.clone();
    plan.registry.tls = inputs
        .registry_tls
        .as_ref()
        .map(|tls| tls.for_host(registry_host));
    plan.registry.check().map_err(|e| e.to_string())?;
    Ok((plan, tree))
}

async fn ship_one(
    run: &Run,
    inputs: &Inputs,
    mut c: Connected,
    timeouts: Timeouts,
    fan_out: bool,
) -> Result<Connected, HostFail> {
    let (ctx, dry_run) = (&run.ctx, run.dry_run);
    let host = c.host.ip.clone();
    let fail = |reason: String| HostFail::Failed {
        phase: Phase::Ship,
        step: None,
        reason,
    };
    let (plan, tree) = plan_for(inputs, &c.host, &c.facts, timeouts)
        .await
        .map_err(fail)?;
    let need = c
        .agent
        .offer(&plan, dry_run)
        .await
        .map_err(|e| HostFail::from_session(Phase::Ship, e, ""))?;
    ctx.reporter.emit(RunEvent::Plan {
        host: host.clone(),
        files_to_send: need.files.len() as u64,
        bytes_to_send: need.bytes,
        files_present: need.have_files,
    });
    if dry_run {
        return Ok(c);
    }
    if fan_out && !need.files.is_empty() && !inputs.clusterfile.is_registry_host(&host) {
        c.stats.deferred = need
            .files
            .iter()
            .filter_map(|path| plan.manifest.get(path))
            .filter_map(|e| {
                Some(BlobRef {
                    path: e.path.clone(),
                    sha256: e.sha256()?.to_string(),
                })
            })
            .collect();
        return Ok(c);
    }
    if need.files.is_empty() {
        return Ok(c);
    }
    // Sent while the first steps run: the agent starts each as soon as its own files are in.
    let mut files = need.files;
    files.sort_by_key(|p| step_order(p));
    c.stats.to_send = Some(ToSend {
        tree,
        files,
        bytes: need.bytes,
        frames: inputs.frames.clone(),
    });
    Ok(c)
}

/// Where a file goes in the stream: in the order the steps need them — `bin/` (install-bin),
/// `etc/` (templates), `scripts/`, `cri/` (the runtime), the rest, then `images/` and last
/// the registry's storage, which only `init-registry` reads. (The sort is stable: within a
/// rank the paths stay sorted.)
pub(crate) fn step_order(path: &str) -> u8 {
    const ORDER: [&str; 4] = ["bin/", "etc/", "scripts/", "cri/"];
    if let Some(i) = ORDER.iter().position(|p| path.starts_with(p)) {
        i as u8
    } else if path.starts_with("images/") {
        5
    } else if path.starts_with("registry/") {
        6
    } else {
        4
    }
}

/// Streams `files` (`bytes` in all) of `tree` to the host, then ends the stream and waits for
/// the agent to verify what arrived; with nothing to send, only the end. Failures are the
/// ship phase's.
pub(crate) async fn send_files(
    run: &Run,
    tree: &Arc<MergedTree>,
    inputs: &Inputs,
    c: &mut Connected,
    need_files: Vec<String>,
    need_bytes: u64,
) -> Result<(), HostFail> {
    let ctx = &run.ctx;
    let host = c.host.ip.clone();
    let fail = |reason: String| HostFail::Failed {
        phase: Phase::Ship,
        step: None,
        reason,
    };
    let files = need_files.len() as u64;
    let mut sent = 0u64;
    if !need_files.is_empty() {
        // Progress counts file bytes taken into the stream: the unit of `need.bytes`.
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (mut rx, producer) = crate::rootfs_stream::spawn_stream(
            tree.clone(),
            need_files,
            inputs.frames.clone(),
            read.clone(),
        );
        let mut last_report = std::time::Instant::now();
        while let Some(piece) = rx.recv().await {
            if let Err(e) = c.agent.send_chunk(&piece).await {
                producer.abort();
                return Err(fail(format!("sending files: {e}{}", c.link.stderr_hint())));
            }
            sent += piece.len() as u64;
            if last_report.elapsed() > std::time::Duration::from_millis(200) {
                last_report = std::time::Instant::now();
                ctx.reporter.emit(RunEvent::Transfer {
                    host: host.clone(),
                    bytes_sent: read.load(std::sync::atomic::Ordering::Relaxed),
                    bytes_total: need_bytes,
                });
            }
        }
        match producer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(e) => return Err(fail(format!("the file stream stopped: {e}"))),
        }
        // The last report: when the last byte went.
        ctx.reporter.emit(RunEvent::Transfer {
            host: host.clone(),
            bytes_sent: read.load(std::sync::atomic::Ordering::Relaxed),
            bytes_total: need_bytes,
        });
    }
    let reporter = ctx.reporter.clone();
    let mut on_event = |event| {
        reporter.emit(RunEvent::Agent {
            host: host.clone(),
            event,
        })
    };
    let (received, bytes) = c
        .agent
        .finish_files(&mut on_event)
        .await
        .map_err(|e| fail(e.to_string()))?;
    ctx.reporter.emit(RunEvent::TransferDone {
        host: host.clone(),
        files: received,
        bytes_sent: sent,
        bytes,
    });
    debug_assert_eq!(received, files);
    c.stats.bytes_sent += sent;
    c.stats.files_sent += received;
    Ok(())
}
