//! Phase "steps": the agent runs the plan's steps on every host in parallel. Apply runs it
//! as two passes ([`StepsPass`]) — up to `init-registry`, then the rest — so the registry
//! hosts are serving before any host goes on to steps that may pull from them.

use crate::apply::driver::{ForHost, HostPhase, HostResult, Run};
use crate::apply::host::ToSend;
use crate::apply::host::{Close, Connected, HostFail};
use crate::output::event::{HostStatus, Phase, RunEvent};
use installer_proto::event::{Event, Outcome};
use installer_proto::plan::StepKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which of apply's two passes over the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepsPass {
    /// Up to and including `init-registry`. A dry run leaves this pass out: nothing runs,
    /// so there is no registry to wait for.
    Registry,
    /// Every step left (every step, in a dry run); each host that gets through is
    /// reported finished.
    Rest,
}

impl StepsPass {
    /// The last step the agent runs in this pass (`None`: through the end).
    pub fn stop_after(self) -> Option<StepKind> {
        match self {
            StepsPass::Registry => Some(StepKind::InitRegistry),
            StepsPass::Rest => None,
        }
    }

    /// Whether a host that gets through this pass is done.
    pub fn last(self) -> bool {
        self == StepsPass::Rest
    }
}

/// The registry barrier between the passes: when a registry host did not get through the
/// first pass (or an earlier phase), the hosts that pull from the registry do not go on —
/// they end "not reached", naming the registry host and where it failed. Registry hosts
/// that are serving go on: each pulls from its own registry.
pub async fn registry_barrier(
    run: &Run,
    registry_hosts: &[String],
    hosts: Vec<Connected>,
) -> Vec<Connected> {
    let live: Vec<&str> = hosts.iter().map(|c| c.host.ip.as_str()).collect();
    let failed: Vec<String> = registry_hosts
        .iter()
        .filter(|ip| !live.contains(&ip.as_str()))
        .map(|ip| match run.ctx.reporter.status(ip) {
            Some(HostStatus::Failed {
                step: Some(step), ..
            }) => format!("{ip} failed at {step}"),
            Some(HostStatus::Failed { phase, .. }) => format!("{ip} failed at {}", phase.as_str()),
            Some(HostStatus::Busy { .. }) => format!("{ip} was busy"),
            _ => format!("{ip} did not get its registry up"),
        })
        .collect();
    if failed.is_empty() {
        return hosts;
    }
    let reason = format!(
        "not reached: registry host {}; the steps after init-registry pull from it",
        failed.join(", registry host ")
    );
    let mut going = Vec::new();
    for c in hosts {
        if registry_hosts.contains(&c.host.ip) {
            going.push(c);
        } else {
            HostFail::NotReached(reason.clone()).report(&run.ctx.reporter, &c.host.ip);
            c.close().await;
        }
    }
    going
}

/// The steps of this pass while `to_send` streams to the host. A refused stream is the
/// host's failure at `ship` unless a step already failed for it (waiting for its files).
async fn run_while_sending(
    run: &Run,
    c: &mut Connected,
    to_send: ToSend,
    force: bool,
    stop_after: Option<StepKind>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Outcome, HostFail> {
    let host = c.host.ip.clone();
    let fail = |reason: String| HostFail::Failed {
        phase: Phase::Ship,
        step: None,
        reason,
    };
    // Progress counts file bytes taken into the stream: the unit of `bytes`.
    let read = Arc::new(AtomicU64::new(0));
    let (rx, producer) = crate::rootfs_stream::spawn_stream(
        to_send.tree.clone(),
        to_send.files,
        to_send.frames.clone(),
        read.clone(),
    );
    let reporter = run.ctx.reporter.clone();
    let mut last_report = Instant::now();
    // The last report comes when the stream ended: when the last byte went.
    let mut on_sent = |_sent: u64, ended: bool| {
        if ended || last_report.elapsed() > Duration::from_millis(200) {
            last_report = Instant::now();
            reporter.emit(RunEvent::Transfer {
                host: host.clone(),
                bytes_sent: read.load(Ordering::Relaxed),
                bytes_total: to_send.bytes,
            });
        }
    };
    let answer = c
        .agent
        .run_while_sending(force, stop_after, rx, &mut on_sent, on_event)
        .await;
    let produced = producer.await;
    let (outcome, files, sent) = answer.map_err(|e| {
        fail(format!(
            "sending files while the steps run: {e}{}",
            c.link.stderr_hint()
        ))
    })?;
    match produced {
        Ok(Ok(())) => {}
        Ok(Err(e)) if outcome.ok => return Err(fail(e.to_string())),
        Err(e) if outcome.ok => return Err(fail(format!("the file stream stopped: {e}"))),
        _ => {}
    }
    match files {
        Ok((received, bytes)) => {
            run.ctx.reporter.emit(RunEvent::TransferDone {
                host: host.clone(),
                files: received,
                bytes_sent: sent,
                bytes,
            });
            c.stats.bytes_sent += sent;
            c.stats.files_sent += received;
        }
        Err(why) if outcome.ok => return Err(fail(why)),
        Err(_) => {}
    }
    Ok(outcome)
}

/// One pass of the agent's steps on every host.
pub struct Steps {
    /// Which pass.
    pub pass: StepsPass,
    /// Run steps even when nothing they depend on changed (`--force`).
    pub force: bool,
}

impl HostPhase for Steps {
    type In = Connected;
    type Out = Connected;
    const PHASE: Phase = Phase::Steps;

    fn runs_for(&self, run: &Run, host: Connected) -> ForHost<Connected, Connected> {
        if run.dry_run && !self.pass.last() {
            ForHost::Pass(host)
        } else {
            ForHost::Run(host)
        }
    }

    async fn run(&self, run: &Run, c: Connected) -> HostResult<Connected> {
        Ok(run_one(run, c, self.force, self.pass).await?)
    }
}

async fn run_one(
    run: &Run,
    mut c: Connected,
    force: bool,
    pass: StepsPass,
) -> Result<Connected, HostFail> {
    let ctx = &run.ctx;
    let (stop_after, last) = (pass.stop_after(), pass.last());
    let host = c.host.ip.clone();
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
    let result = match c.stats.to_send.take() {
        None => c.agent.run(force, stop_after, &mut on_event).await,
        Some(to_send) => {
            let sent =
                run_while_sending(run, &mut c, to_send, force, stop_after, &mut on_event).await;
            match sent {
                Ok(outcome) => Ok(outcome),
                Err(fail) => {
                    c.stats.settled = settled;
                    return Err(fail);
                }
            }
        }
    };
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
                        // Peak so far: the last pass's answer covers the whole session.
                        agent_peak_rss_kib: outcome.peak_rss_kib,
                    },
                });
            }
            Ok(c)
        }
        Ok(outcome) => Err(HostFail::Failed {
            phase: Phase::Steps,
            step: outcome.failed_step,
            reason: outcome.error.unwrap_or_else(|| "a step failed".into()),
        }),
        Err(e) => Err(HostFail::Failed {
            phase: Phase::Steps,
            step: None,
            reason: format!("{e}{}", c.link.stderr_hint()),
        }),
    }
}
