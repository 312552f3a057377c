//! Phase "ship": build each host's plan, offer it, and send only the files the agent says it
//! lacks, as one zstd-compressed tar stream over the agent's own channel. In a dry run the
//! plan is offered read-only and nothing is sent.

use super::for_each_host;
use super::host::{Connected, HostFail, RunCtx};
use super::inputs::Inputs;
use crate::cli::ApplyArgs;
use crate::output::event::{Phase, RunEvent};
use installer_proto::plan::Timeouts;
use std::sync::Arc;

/// zstd level: fast enough to keep up with a gigabit link on one core.
const ZSTD_LEVEL: i32 = crate::ship::DEFAULT_LEVEL;

/// Ships to every live host; returns the hosts that are ready to run steps.
pub async fn ship_all(
    ctx: &Arc<RunCtx>,
    inputs: &Arc<Inputs>,
    live: Vec<Connected>,
    args: &ApplyArgs,
    concurrency: usize,
) -> Vec<Connected> {
    let timeouts = Timeouts {
        script_secs: args.script_timeout,
        registry_secs: args.registry_timeout,
    };
    let dry_run = args.dry_run;
    let results = for_each_host(live, concurrency, {
        let (ctx, inputs) = (ctx.clone(), inputs.clone());
        move |c| {
            let (ctx, inputs, timeouts) = (ctx.clone(), inputs.clone(), timeouts.clone());
            async move {
                let host = c.host.ip.clone();
                match ship_one(&ctx, &inputs, c, timeouts, dry_run).await {
                    Ok(c) => Some(c),
                    Err(fail) => {
                        fail.report(&ctx.reporter, &host);
                        None
                    }
                }
            }
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

async fn ship_one(
    ctx: &RunCtx,
    inputs: &Inputs,
    mut c: Connected,
    timeouts: Timeouts,
    dry_run: bool,
) -> Result<Connected, HostFail> {
    let host = c.host.ip.clone();
    let fail = |reason: String| HostFail::Failed {
        phase: Phase::Ship,
        step: None,
        reason,
    };
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: host.clone(),
        phase: Phase::Ship,
    });
    let tree = inputs.tree_for(&c.arch).await.map_err(fail)?;
    let registry_host = inputs
        .clusterfile
        .registry_hosts()
        .iter()
        .any(|h| h.ip == host);
    let plan = crate::plan::build_plan(
        &inputs.clusterfile,
        &c.host,
        &c.facts,
        &tree,
        registry_host,
        timeouts,
    )
    .map(|mut plan| {
        plan.watch = inputs.watch.clone();
        plan
    })
    .map_err(|e| fail(e.to_string()))?;
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
    let files = need.files.len() as u64;
    let mut sent = 0u64;
    if !need.files.is_empty() {
        let (mut rx, producer) = crate::ship::spawn_stream(tree.clone(), need.files, ZSTD_LEVEL);
        let mut last_report = std::time::Instant::now();
        while let Some(piece) = rx.recv().await {
            if let Err(e) = c.agent.send_chunk(&piece).await {
                producer.abort();
                return Err(fail(format!(
                    "sending files: {e}{}",
                    c.process.stderr_hint()
                )));
            }
            sent += piece.len() as u64;
            if last_report.elapsed() > std::time::Duration::from_millis(200) {
                last_report = std::time::Instant::now();
                ctx.reporter.emit(RunEvent::Transfer {
                    host: host.clone(),
                    bytes_sent: sent,
                    bytes_total: need.bytes,
                });
            }
        }
        match producer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Err(e) => return Err(fail(format!("the file stream stopped: {e}"))),
        }
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
    Ok(c)
}
