//! The one contract every phase keeps ([`HostPhase`]) and the one driver that runs a phase
//! on every host ([`Run::phase`]). The driver owns what phases have in common: how many
//! hosts run at once, the `phase_started` event of each host, and reporting the hosts a
//! phase stopped. A phase only says what it does on one host.

use super::host::{Close, HostFail, OnHost, RunCtx};
use crate::output::event::{Phase, RunEvent};
use std::future::Future;
use std::sync::Arc;

/// What the phases of one run share: its settings and reporter, how many hosts run at
/// once, and whether it is a dry run.
#[derive(Clone)]
pub struct Run {
    /// Settings and reporter.
    pub ctx: Arc<RunCtx>,
    /// At most this many hosts run a phase at once.
    pub concurrency: usize,
    /// Nothing may change on any host: phases offer, compare and report only.
    pub dry_run: bool,
}

/// Whether a phase does work on a host.
pub enum ForHost<I, O> {
    /// It runs on this host.
    Run(I),
    /// It has nothing to do here; the host goes on as it is, and no `phase_started` is
    /// reported for it.
    Pass(O),
}

/// How a phase stopped a host: the failure the driver reports as the host's end, and the
/// host itself when it is still connected and should be told goodbye (otherwise it is
/// dropped, which ends its streams).
pub struct Stop<T> {
    /// Why the host stopped.
    pub fail: HostFail,
    /// The host, to be closed politely.
    pub close: Option<T>,
}

impl<T> From<HostFail> for Stop<T> {
    fn from(fail: HostFail) -> Self {
        Stop { fail, close: None }
    }
}

/// A phase's outcome on one host.
pub type HostResult<T> = Result<T, Stop<T>>;

/// A run stopped by a gate phase: some host refused for safety, so no host went on.
#[derive(Debug)]
pub struct Refused(pub String);

/// One phase of a run: what it does on one host, taking the state the previous phase
/// handed on and handing on its own.
pub trait HostPhase: Send + Sync + 'static {
    /// The per-host state it takes.
    type In: OnHost + Send + 'static;
    /// The per-host state it hands on.
    type Out: OnHost + Close + 'static;

    /// Its name in `phase_started` events and in the failures it causes.
    const PHASE: Phase;

    /// A gate: every host must be through it before any is reported, and a host refused
    /// here ([`HostFail::Refused`]) stops the whole run — while nothing has changed on any
    /// host. Otherwise a stopped host is reported as soon as it stops, and the others go on.
    const GATE: bool = false;

    /// Whether it runs on `host` (the default: on every host). A dry run decides here what
    /// a phase leaves out.
    fn runs_for(&self, _run: &Run, host: Self::In) -> ForHost<Self::In, Self::Out> {
        ForHost::Run(host)
    }

    /// Its work on one host.
    fn run(&self, run: &Run, host: Self::In) -> impl Future<Output = HostResult<Self::Out>> + Send;

    /// A look across every host once all are through [`HostPhase::run`] (for checks that
    /// compare hosts): one result per host, in their order. The default keeps every host.
    fn across(
        &self,
        _run: &Run,
        hosts: Vec<Self::Out>,
    ) -> impl Future<Output = Vec<HostResult<Self::Out>>> + Send {
        async move { hosts.into_iter().map(Ok).collect() }
    }
}

/// A host's end in the driver: still going, already reported, or (in a gate) waiting.
enum Settled<T> {
    Live(T),
    Reported,
    Held(String, Stop<T>),
}

impl Run {
    /// Runs `phase` on every host (at most [`Run::concurrency`] at once) and returns the
    /// hosts still going, in their order. `Err` only from a gate phase that refused a host;
    /// then every host it reached has been closed and none reported.
    pub async fn phase<P: HostPhase>(
        &self,
        phase: P,
        hosts: Vec<P::In>,
    ) -> Result<Vec<P::Out>, Refused> {
        let phase = Arc::new(phase);
        let settled = for_each_host(hosts, self.concurrency, {
            let (run, phase) = (self.clone(), phase.clone());
            move |host: P::In| {
                let (run, phase) = (run.clone(), phase.clone());
                async move {
                    let ip = host.ip().to_string();
                    let result = match phase.runs_for(&run, host) {
                        ForHost::Pass(out) => Ok(out),
                        ForHost::Run(host) => {
                            run.ctx.reporter.emit(RunEvent::PhaseStarted {
                                host: ip.clone(),
                                phase: P::PHASE,
                            });
                            phase.run(&run, host).await
                        }
                    };
                    match result {
                        Ok(out) => Settled::Live(out),
                        Err(stop) if P::GATE => Settled::Held(ip, stop),
                        Err(stop) => {
                            run.report(&ip, stop).await;
                            Settled::Reported
                        }
                    }
                }
            }
        })
        .await;
        let refusals: Vec<String> = settled
            .iter()
            .filter_map(|s| match s {
                Settled::Held(
                    _,
                    Stop {
                        fail: HostFail::Refused(reason),
                        ..
                    },
                ) => Some(reason.clone()),
                _ => None,
            })
            .collect();
        let mut live = Vec::new();
        for s in settled {
            match s {
                Settled::Live(out) => live.push(out),
                Settled::Reported => {}
                Settled::Held(ip, stop) if refusals.is_empty() => self.report(&ip, stop).await,
                Settled::Held(_, stop) => {
                    if let Some(host) = stop.close {
                        host.close().await;
                    }
                }
            }
        }
        if !refusals.is_empty() {
            for host in live {
                host.close().await;
            }
            return Err(Refused(refusals.join("\n")));
        }
        let ips: Vec<String> = live.iter().map(|h| h.ip().to_string()).collect();
        let mut kept = Vec::new();
        for (ip, result) in ips.iter().zip(phase.across(self, live).await) {
            match result {
                Ok(out) => kept.push(out),
                Err(stop) => self.report(ip, stop).await,
            }
        }
        Ok(kept)
    }

    /// Ends every host still going, politely, one after the other.
    pub async fn close<T: Close>(&self, hosts: Vec<T>) {
        for host in hosts {
            host.close().await;
        }
    }

    /// Reports a stopped host's end, then closes it when it is still connected.
    async fn report<T: Close>(&self, ip: &str, stop: Stop<T>) {
        stop.fail.report(&self.ctx.reporter, ip);
        if let Some(host) = stop.close {
            host.close().await;
        }
    }
}

/// Runs `f` on every item with at most `limit` at once; results keep the input order.
pub async fn for_each_host<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for item in items {
        let (semaphore, f) = (semaphore.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = semaphore.acquire_owned().await.ok();
            f(item).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(r) => out.push(r),
            // A panicking host task is a bug; surface it instead of losing the host.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}
