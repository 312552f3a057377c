//! Phase "clean": on every host, the agent undoes what it recorded (SPEC §6) and reports
//! what it removed and what it could not.

use crate::agent::session::CleanOptions;
use crate::apply::driver::{HostPhase, HostResult, Run, Stop};
use crate::apply::host::{Connected, HostFail};
use crate::clusterfile::Clusterfile;
use crate::output::event::{HostStatus, Phase, RunEvent};
use std::sync::Arc;

/// Undoes a cluster on each host.
pub struct Clean {
    /// The Clusterfile (plugins and env for the clean scripts).
    pub clusterfile: Arc<Clusterfile>,
    /// What to keep and how far to go.
    pub opts: CleanOptions,
}

impl HostPhase for Clean {
    type In = Connected;
    type Out = Connected;
    const PHASE: Phase = Phase::Clean;

    async fn run(&self, run: &Run, mut c: Connected) -> HostResult<Connected> {
        let cf = &self.clusterfile;
        let host = c.host.ip.clone();
        let plugins = crate::plan::plugins_for(cf, &c.host);
        let env = crate::plan::clean_env(cf, &c.host, &c.facts);
        let reporter = run.ctx.reporter.clone();
        let mut on_event = |event| {
            reporter.emit(RunEvent::Agent {
                host: host.clone(),
                event,
            })
        };
        let result = c
            .agent
            .clean(
                &cf.name,
                &cf.data_root,
                plugins,
                env,
                self.opts,
                &mut on_event,
            )
            .await;
        match result {
            Ok(outcome) if outcome.ok => {
                run.ctx.reporter.emit(RunEvent::HostFinished {
                    host,
                    status: HostStatus::Ok {
                        ran: outcome.ran,
                        skipped: 0,
                        bytes_sent: 0,
                        files_sent: 0,
                        not_undone: Vec::new(),
                        agent_peak_rss_kib: outcome.peak_rss_kib,
                    },
                });
                Ok(c)
            }
            // The agent answered, so it is still there to be told goodbye.
            Ok(outcome) => Err(Stop {
                fail: HostFail::Failed {
                    phase: Phase::Clean,
                    step: None,
                    reason: format!("could not undo: {}", outcome.not_undone.join(", ")),
                },
                close: Some(c),
            }),
            Err(e) => Err(HostFail::from_session(Phase::Clean, e, &c.link.stderr_hint()).into()),
        }
    }
}
