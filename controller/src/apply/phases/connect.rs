//! Phase "connect": reach every host over SSH with its host key checked, before any host is
//! changed. It is a gate: a refused key on one host stops the whole run while nothing has
//! been uploaded or started anywhere; only then does "start-agent"
//! ([`super::start_agent`]) run. Shared by apply and clean.

use crate::apply::driver::{HostPhase, HostResult, Run};
use crate::apply::host::{HostFail, Reached};
use crate::clusterfile::HostSpec;
use crate::output::event::Phase;
use crate::ssh::{self, SshError};

/// Connects to each host (host key checked); changes nothing on it.
pub struct Connect;

impl HostPhase for Connect {
    type In = HostSpec;
    type Out = Reached;
    const PHASE: Phase = Phase::Connect;
    const GATE: bool = true;

    async fn run(&self, run: &Run, host: HostSpec) -> HostResult<Reached> {
        let ctx = &run.ctx;
        let target = ctx.target(&host);
        let session = ssh::connect(&target, &ctx.host_keys, &ctx.ssh_options)
            .await
            .map_err(|e| match e {
                SshError::UnknownHostKey { .. } | SshError::ChangedHostKey { .. } => {
                    HostFail::Refused(e.to_string())
                }
                other => HostFail::Failed {
                    phase: Phase::Connect,
                    step: None,
                    reason: other.to_string(),
                },
            })?;
        Ok(Reached { host, session })
    }
}
