//! Phase "steps": the agent runs the plan's steps on every host in parallel. Apply calls it
//! twice — up to `init-registry`, then the rest — so the registry hosts are serving before
//! any host goes on to steps that may pull from them.

use super::for_each_host;
use super::host::{Connected, HostFail, RunCtx};
use crate::output::event::{HostStatus, Phase, RunEvent};
use installer_proto::event::Event;
use installer_proto::plan::StepKind;
use std::sync::Arc;

/// Runs the steps (through `stop_after`) on every live host; returns the hosts still ok.
/// With `last`, each ok host is reported finished.
pub async fn run_all(
    ctx: &Arc<RunCtx>,
    live: Vec<Connected>,
    force: bool,
    stop_after: Option<StepKind>,
    concurrency: usize,
    last: bool,
) -> Vec<Connected> {
    let results = for_each_host(live, concurrency, {
        let ctx = ctx.clone();
        move |c| {
            let ctx = ctx.clone();
            async move { run_one(&ctx, c, force, stop_after, last).await }
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

async fn run_one(
    ctx: &RunCtx,
    mut c: Connected,
    force: bool,
    stop_after: Option<StepKind>,
    last: bool,
) -> Option<Connected> {
    let host = c.host.ip.clone();
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: host.clone(),
        phase: Phase::Steps,
    });
    let reporter = ctx.reporter.clone();
    let settled = std::mem::take(&mut c.stats.settled);
    let mut newly = Vec::new();
    let mut on_event = |event: Event| {
        match &event {
            Event::StepSkipped { step, .. } if settled.contains(step) => return,
            Event::StepDone { step, .. } | Event::StepSkipped { step, .. } => {
                newly.push(step.clone())
            }
            _ => {}
        }
        reporter.emit(RunEvent::Agent {
            host: host.clone(),
            event,
        })
    };
    let result = c.agent.run(force, stop_after, &mut on_event).await;
    c.stats.settled = settled;
    c.stats.settled.extend(newly);
    match result {
        Ok(outcome) if outcome.ok => {
            if last {
                // The first pass's steps are skipped again in the last one; count them once.
                c.stats.skipped = outcome.skipped.saturating_sub(c.stats.ran);
            }
            c.stats.ran += outcome.ran;
            if last {
                ctx.reporter.emit(RunEvent::HostFinished {
                    host: host.clone(),
                    status: HostStatus::Ok {
                        ran: c.stats.ran,
                        skipped: c.stats.skipped,
                        bytes_sent: c.stats.bytes_sent,
                        files_sent: c.stats.files_sent,
                        not_undone: Vec::new(),
                    },
                });
            }
            Some(c)
        }
        Ok(outcome) => {
            HostFail::Failed {
                phase: Phase::Steps,
                step: outcome.failed_step,
                reason: outcome.error.unwrap_or_else(|| "a step failed".into()),
            }
            .report(&ctx.reporter, &host);
            None
        }
        Err(e) => {
            let tail = c.process.stderr_hint();
            HostFail::Failed {
                phase: Phase::Steps,
                step: None,
                reason: format!("{e}{tail}"),
            }
            .report(&ctx.reporter, &host);
            None
        }
    }
}
