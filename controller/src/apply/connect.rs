//! Phase "connect": reach every host over SSH with its host key checked, before any host is
//! changed. A refused key on one host stops the whole run while nothing has been uploaded
//! or started anywhere; only then does "start-agent" ([`super::start_agent`]) run. Shared by
//! apply and clean.

use super::host::{Connected, HostFail, RunCtx};
use super::{for_each_host, start_agent};
use crate::clusterfile::HostSpec;
use crate::output::event::{Phase, RunEvent};
use crate::ssh::{self, SshError};
use std::sync::Arc;

/// A host whose SSH server answered with a key we trust.
pub struct Reached {
    /// Its Clusterfile entry.
    pub host: HostSpec,
    /// The SSH connection.
    pub session: ssh::Session,
}

/// Connects to `host` (host key checked); changes nothing on it.
pub async fn reach(host: &HostSpec, ctx: &RunCtx) -> Result<Reached, HostFail> {
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: host.ip.clone(),
        phase: Phase::Connect,
    });
    let target = ctx.target(host);
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
    Ok(Reached {
        host: host.clone(),
        session,
    })
}

/// Every host's connection and agent, by IP; or, when any host key was refused, the
/// refusals (no host was changed: no agent was uploaded or started anywhere).
pub async fn connect_all(
    ctx: &Arc<RunCtx>,
    hosts: Vec<HostSpec>,
    concurrency: usize,
) -> Result<Vec<(String, Result<Connected, HostFail>)>, String> {
    let reached = for_each_host(hosts, concurrency, {
        let ctx = ctx.clone();
        move |h| {
            let ctx = ctx.clone();
            async move { (h.ip.clone(), reach(&h, &ctx).await) }
        }
    })
    .await;
    let refusals: Vec<String> = reached
        .iter()
        .filter_map(|(_, r)| match r {
            Err(HostFail::Refused(reason)) => Some(reason.clone()),
            _ => None,
        })
        .collect();
    if !refusals.is_empty() {
        for (_, r) in reached {
            if let Ok(r) = r {
                r.session.close().await;
            }
        }
        return Err(refusals.join("\n"));
    }
    Ok(for_each_host(reached, concurrency, {
        let ctx = ctx.clone();
        move |(ip, r)| {
            let ctx = ctx.clone();
            async move {
                let started = match r {
                    Ok(reached) => start_agent::start(reached, &ctx).await,
                    Err(fail) => Err(fail),
                };
                (ip, started)
            }
        }
    })
    .await)
}
