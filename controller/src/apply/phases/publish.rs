//! Phase "publish": once their registries answer, the registry hosts push into them what the
//! other hosts lack (as blobs, through the registry's API; see `installer_proto::fanout`),
//! so those hosts fetch it there instead of from the controller. A registry host whose push
//! fails is not a failed host — its registry serves its own steps — it is only not a source:
//! the run says so, and the other hosts fetch elsewhere or get the controller's stream.

use crate::apply::driver::{ForHost, HostPhase, HostResult, Run};
use crate::apply::host::{Connected, HostFail};
use crate::output::event::{Phase, RunEvent};
use installer_proto::fanout::BlobRef;
use std::sync::Arc;

/// Pushes `files` on every registry host.
pub struct Publish {
    /// Every file some host deferred to the fan-out, once.
    pub files: Arc<Vec<BlobRef>>,
    /// The registry hosts' addresses.
    pub registry_hosts: Arc<Vec<String>>,
}

impl HostPhase for Publish {
    type In = Connected;
    type Out = Connected;
    const PHASE: Phase = Phase::Publish;

    fn runs_for(&self, run: &Run, host: Connected) -> ForHost<Connected, Connected> {
        if run.dry_run || self.files.is_empty() || !self.registry_hosts.contains(&host.host.ip) {
            ForHost::Pass(host)
        } else {
            ForHost::Run(host)
        }
    }

    async fn run(&self, run: &Run, mut c: Connected) -> HostResult<Connected> {
        let host = c.host.ip.clone();
        let published = c
            .agent
            .publish(self.files.as_ref().clone())
            .await
            .map_err(|e| HostFail::from_session(Phase::Publish, e, ""))?;
        run.ctx.reporter.emit(RunEvent::Published {
            host: host.clone(),
            pushed: published.pushed,
            present: published.present,
            bytes: published.bytes,
            failed: published.failed.len() as u64,
        });
        if let Some(first) = published.failed.first() {
            run.ctx.reporter.emit(RunEvent::Warning {
                message: format!(
                    "{host}: {} file(s) not pushed into the registry, first {first}; the hosts lacking them get them from another registry host or from the controller",
                    published.failed.len()
                ),
            });
        }
        // A source when it holds at least some of the files: a fetch that misses one there
        // tries the next source, then the controller.
        c.stats.published = published.pushed + published.present > 0;
        Ok(c)
    }
}

/// The files hosts deferred to the fan-out, each once.
pub fn deferred_files(hosts: &[Connected]) -> Vec<BlobRef> {
    let mut all: Vec<BlobRef> = hosts
        .iter()
        .flat_map(|c| c.stats.deferred.iter().cloned())
        .collect();
    all.sort();
    all.dedup();
    all
}
