//! Phase "fetch": a host whose files were left to the fan-out fetches them from the
//! registry hosts that published (each file verified by the agent against the plan's
//! sha256), and what it could not fetch is sent by the controller after all — the run says
//! which and why.

use super::ship::send_files;
use crate::apply::driver::{ForHost, HostPhase, HostResult, Run};
use crate::apply::host::{Connected, HostFail};
use crate::apply::inputs::Inputs;
use crate::output::event::{Phase, RunEvent};
use std::sync::Arc;

/// Fetches on every host that deferred its files.
pub struct Fetch {
    /// What apply read locally (the controller's stream is the fallback).
    pub inputs: Arc<Inputs>,
    /// Registry hosts that published, in order of preference.
    pub sources: Arc<Vec<String>>,
}

impl HostPhase for Fetch {
    type In = Connected;
    type Out = Connected;
    const PHASE: Phase = Phase::Fetch;

    fn runs_for(&self, _run: &Run, host: Connected) -> ForHost<Connected, Connected> {
        if host.stats.deferred.is_empty() {
            ForHost::Pass(host)
        } else {
            ForHost::Run(host)
        }
    }

    async fn run(&self, run: &Run, mut c: Connected) -> HostResult<Connected> {
        let host = c.host.ip.clone();
        let deferred = std::mem::take(&mut c.stats.deferred);
        let fetched = if self.sources.is_empty() {
            None
        } else {
            Some(
                c.agent
                    .fetch(self.sources.as_ref().clone())
                    .await
                    .map_err(|e| HostFail::from_session(Phase::Fetch, e, ""))?,
            )
        };
        let (left, reason) = match fetched {
            Some(f) => {
                run.ctx.reporter.emit(RunEvent::Fetched {
                    host: host.clone(),
                    files: f.files,
                    bytes: f.bytes,
                    from: self.sources.as_ref().clone(),
                    left: f.left.len() as u64,
                });
                (f.left, f.reason)
            }
            None => (
                deferred.iter().map(|b| b.path.clone()).collect(),
                Some("no registry host published the files".to_string()),
            ),
        };
        if !left.is_empty() {
            run.ctx.reporter.emit(RunEvent::Warning {
                message: format!(
                    "{host}: {} file(s) could not come from the registry ({}); the controller sends them",
                    left.len(),
                    reason.unwrap_or_default()
                ),
            });
        }
        let tree = self
            .inputs
            .tree_for(&c.facts.arch)
            .await
            .map_err(|reason| HostFail::Failed {
                phase: Phase::Fetch,
                step: None,
                reason,
            })?;
        let bytes = left
            .iter()
            .filter_map(|p| tree.get(p))
            .map(|s| s.entry.size())
            .sum();
        send_files(run, &tree, &self.inputs, &mut c, left, bytes).await?;
        Ok(c)
    }
}
