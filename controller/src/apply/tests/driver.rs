//! The driver on a stand-in phase: which hosts it starts, reports, closes and hands on.

use super::*;
use crate::apply::driver::{ForHost, HostPhase, HostResult, Refused, Stop};
use crate::apply::host::HostFail;
use crate::apply::host::{Close, OnHost};
use crate::exit;
use crate::failure::Failure;
use crate::output::event::{HostStatus, Phase};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A stand-in host: its address and the closes counted for the whole test.
struct Fake {
    ip: String,
    closes: Arc<AtomicUsize>,
}

impl OnHost for Fake {
    fn ip(&self) -> &str {
        &self.ip
    }
}

impl Close for Fake {
    async fn close(self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the stand-in phase does with a host.
#[derive(Clone, Copy, Debug)]
enum Does {
    /// Has nothing to do there.
    Pass,
    /// Works and hands it on.
    Keep,
    /// Refuses it for safety (to be closed).
    Refuse,
    /// Fails it (dropped).
    Fail,
    /// Fails it when comparing hosts (to be closed).
    FailAcross,
}

/// A phase that does what its script says, host by host; `G` makes it a gate.
struct Scripted<const G: bool>(Vec<Does>);

impl<const G: bool> Scripted<G> {
    fn does(&self, host: &Fake) -> Does {
        let i: usize = host.ip.rsplit('.').next().unwrap().parse().unwrap();
        self.0[i - 1]
    }
}

fn failed(reason: &str) -> HostFail {
    HostFail::Failed {
        phase: Phase::Ship,
        step: None,
        reason: reason.into(),
    }
}

impl<const G: bool> HostPhase for Scripted<G> {
    type In = Fake;
    type Out = Fake;
    const PHASE: Phase = Phase::Ship;
    const GATE: bool = G;

    fn runs_for(&self, _run: &Run, host: Fake) -> ForHost<Fake, Fake> {
        match self.does(&host) {
            Does::Pass => ForHost::Pass(host),
            _ => ForHost::Run(host),
        }
    }

    async fn run(&self, _run: &Run, host: Fake) -> HostResult<Fake> {
        match self.does(&host) {
            Does::Refuse => Err(Stop {
                fail: HostFail::Refused(format!("{} refused", host.ip)),
                close: Some(host),
            }),
            Does::Fail => Err(failed("failed").into()),
            Does::Pass | Does::Keep | Does::FailAcross => Ok(host),
        }
    }

    async fn across(&self, _run: &Run, hosts: Vec<Fake>) -> Vec<HostResult<Fake>> {
        hosts
            .into_iter()
            .map(|h| match self.does(&h) {
                Does::FailAcross => Err(Stop {
                    fail: failed("compared"),
                    close: Some(h),
                }),
                _ => Ok(h),
            })
            .collect()
    }
}

/// One phase run over hosts 10.0.0.1… (one per entry of the script).
struct Ran {
    handed_on: Result<Vec<String>, Refused>,
    statuses: Vec<Option<HostStatus>>,
    started: Vec<String>,
    closes: usize,
}

async fn drive<const G: bool>(script: Vec<Does>) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let ctx = run_ctx(dir.path(), "c1", "/var/lib/sealer/data");
    let ips: Vec<String> = (1..=script.len()).map(|i| format!("10.0.0.{i}")).collect();
    ctx.reporter.emit(RunEvent::RunStarted {
        command: "apply".into(),
        cluster: "c1".into(),
        hosts: ips.clone(),
        dry_run: false,
    });
    let closes = Arc::new(AtomicUsize::new(0));
    let hosts = ips
        .iter()
        .map(|ip| Fake {
            ip: ip.clone(),
            closes: closes.clone(),
        })
        .collect();
    let run = Run {
        ctx: ctx.clone(),
        concurrency: 2,
        dry_run: false,
    };
    let handed_on = run
        .phase(Scripted::<G>(script), hosts)
        .await
        .map(|hosts| hosts.into_iter().map(|h| h.ip).collect());
    let statuses = ips.iter().map(|ip| ctx.reporter.status(ip)).collect();
    ctx.reporter.finish("not reached");
    let started = logged(&ctx)
        .into_iter()
        .filter(|e| e["type"] == "phase_started")
        .map(|e| e["host"].as_str().unwrap().to_string())
        .collect();
    Ran {
        handed_on,
        statuses,
        started,
        closes: closes.load(Ordering::SeqCst),
    }
}

#[tokio::test]
async fn a_refusal_in_a_gate_stops_the_run_reports_no_host_and_closes_every_reached_one() {
    let ran = drive::<true>(vec![Does::Keep, Does::Refuse, Does::Fail]).await;
    let Err(refused) = ran.handed_on else {
        panic!("the run went on: {:?}", ran.handed_on)
    };
    assert_eq!(refused.0, "10.0.0.2 refused");
    assert_eq!(ran.statuses, [None, None, None]);
    assert_eq!(ran.closes, 2, "the kept host and the refused one");
    let failure = Failure::from(refused);
    assert_eq!(failure.exit_code(), exit::REFUSED);
    assert_eq!(
        failure.to_string(),
        "10.0.0.2 refused\nNothing was changed on any host."
    );
}

#[tokio::test]
async fn a_gate_without_refusals_reports_its_failures_and_hands_on_the_rest() {
    let ran = drive::<true>(vec![Does::Keep, Does::Fail, Does::Keep]).await;
    assert_eq!(ran.handed_on.unwrap(), ["10.0.0.1", "10.0.0.3"]);
    assert!(matches!(
        &ran.statuses[..],
        [None, Some(HostStatus::Failed { .. }), None]
    ));
    assert_eq!(ran.closes, 0);
}

#[tokio::test]
async fn passed_hosts_go_on_unstarted_and_stopped_ones_are_reported_once_in_order() {
    let script = vec![
        Does::Pass,
        Does::Keep,
        Does::Fail,
        Does::FailAcross,
        Does::Keep,
    ];
    let ran = drive::<false>(script).await;
    assert_eq!(ran.handed_on.unwrap(), ["10.0.0.1", "10.0.0.2", "10.0.0.5"]);
    let mut started = ran.started;
    started.sort();
    assert_eq!(started, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
    let reasons: Vec<Option<String>> = ran
        .statuses
        .iter()
        .map(|s| match s {
            Some(HostStatus::Failed { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            None,
            None,
            Some("failed".into()),
            Some("compared".into()),
            None
        ]
    );
    assert_eq!(
        ran.closes, 1,
        "the host stopped across, which was kept open"
    );
}
