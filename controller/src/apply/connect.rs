//! Phases "connect" and "start-agent": reach a host over SSH (host key checked), find its
//! architecture, upload our agent build only when the host lacks that exact build, start it
//! as root (through sudo when the login user is not root), and shake hands. Shared by apply
//! and clean.

use super::host::{AgentIo, Connected, HostFail, RunCtx};
use crate::agent::session::AgentSession;
use crate::clusterfile::HostSpec;
use crate::output::event::{Phase, RunEvent};
use crate::ssh::{self, SshError};

/// Connects to `host` and starts its agent; the facts of `cluster` come back with it.
pub async fn connect(host: &HostSpec, ctx: &RunCtx) -> Result<Connected, HostFail> {
    let name = host.ip.clone();
    let fail = |phase: Phase, reason: String| HostFail::Failed {
        phase,
        step: None,
        reason,
    };
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: name.clone(),
        phase: Phase::Connect,
    });
    let target = ctx.target(host);
    let session = ssh::connect(&target, &ctx.host_keys, &ctx.ssh_options)
        .await
        .map_err(|e| match e {
            SshError::UnknownHostKey { .. } | SshError::ChangedHostKey { .. } => {
                HostFail::Refused(e.to_string())
            }
            other => fail(Phase::Connect, other.to_string()),
        })?;

    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: name.clone(),
        phase: Phase::StartAgent,
    });
    let uname = session
        .exec("uname -m")
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("running `uname -m`: {e}")))?;
    let arch = String::from_utf8_lossy(&uname.stdout).trim().to_string();
    if uname.status != 0 || arch.is_empty() {
        return Err(fail(
            Phase::StartAgent,
            format!(
                "`uname -m` failed: {}",
                String::from_utf8_lossy(&uname.stderr).trim()
            ),
        ));
    }
    let build = ctx
        .agents
        .for_arch(&arch)
        .map_err(|e| fail(Phase::StartAgent, e.to_string()))?;
    let (remote, _sent) = session
        .upload_if_changed(&build.path, &build.remote_rel_path())
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("uploading the agent: {e}")))?;
    let mut argv = vec![remote.as_str(), "serve"];
    let root_arg;
    if let Some(root) = &ctx.agent_root {
        root_arg = root.clone();
        argv.push("--root");
        argv.push(&root_arg);
    }
    let process = session
        // --sudo-password-env wins; otherwise the host's SSH password is also its sudo
        // password (sealer's convention for spec.ssh.passwd).
        .spawn_root(
            &argv,
            ctx.sudo_password.as_ref().or(host.ssh.passwd.as_ref()),
        )
        .await
        .map_err(|e| fail(Phase::StartAgent, e.to_string()))?;
    let (reader, writer, process) = process.into_io();
    let mut agent: AgentIo = AgentSession::handshake(reader, writer)
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("{e}{}", process.stderr_hint())))?;
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: name.clone(),
        phase: Phase::Preflight,
    });
    let facts = agent
        .facts(&ctx.data_root, &ctx.cluster)
        .await
        .map_err(|e| fail(Phase::Preflight, e.to_string()))?;
    Ok(Connected {
        host: host.clone(),
        arch,
        ssh: session,
        agent,
        process,
        facts,
        stats: Default::default(),
    })
}
