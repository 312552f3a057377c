//! What every phase shares: the run's settings and reporter, the state a host is in as it
//! goes from phase to phase (reached, agent started, connected with its facts), and how a
//! host fails.

use crate::agent::binary::AgentBuilds;
use crate::agent::link::{AgentIo, AgentLink};
use crate::agent::session::SessionError;
use crate::clusterfile::HostSpec;
use crate::output::Reporter;
use crate::output::event::{HostStatus, Phase, RunEvent};
use crate::ssh::{self, AuthConfig, ConnectOptions, HostKeyPolicy, Secret, Target};
use installer_proto::facts::Facts;
use std::sync::Arc;

/// Settings every host's work needs.
pub struct RunCtx {
    /// Cluster name.
    pub cluster: String,
    /// Data root.
    pub data_root: String,
    /// Host key policy.
    pub host_keys: HostKeyPolicy,
    /// Connect timeout and keepalive.
    pub ssh_options: ConnectOptions,
    /// Agent builds.
    pub agents: AgentBuilds,
    /// The sudo password for non-root users, if one is configured (`--sudo-password-env`);
    /// otherwise each host's SSH password is used.
    pub sudo_password: Option<Secret>,
    /// Passed to the agent as `--root` (tests and previews); `None` on real hosts.
    pub agent_root: Option<String>,
    /// Output.
    pub reporter: Arc<Reporter>,
}

impl RunCtx {
    /// The SSH target for a host.
    pub fn target(&self, host: &HostSpec) -> Target {
        Target {
            host: host.ip.clone(),
            port: host.ssh.port,
            user: host.ssh.user.clone(),
            auth: AuthConfig {
                password: host.ssh.passwd.clone(),
                private_key: host.ssh.pk.clone(),
                key_passphrase: host.ssh.pk_passwd.clone(),
                use_agent: true,
            },
        }
    }
}

/// A host whose SSH server answered with a key we trust; nothing was changed on it yet.
pub struct Reached {
    /// Its Clusterfile entry.
    pub host: HostSpec,
    /// The SSH connection.
    pub session: ssh::Session,
}

/// A host whose agent runs and answered the handshake.
pub struct Started {
    /// Its Clusterfile entry.
    pub host: HostSpec,
    /// `uname -m`.
    pub arch: String,
    /// The agent.
    pub agent: AgentIo,
    /// What carries the agent (over SSH: the connection and the remote process).
    pub link: Box<dyn AgentLink>,
}

/// A host with a running agent and its facts.
pub struct Connected {
    /// Its Clusterfile entry.
    pub host: HostSpec,
    /// `uname -m`.
    pub arch: String,
    /// The agent.
    pub agent: AgentIo,
    /// What carries the agent (stderr tail for error messages, closing).
    pub link: Box<dyn AgentLink>,
    /// What the agent reported.
    pub facts: Facts,
    /// What happened so far.
    pub stats: Stats,
}

/// Per-host state a phase takes: it knows which host it belongs to.
pub trait OnHost {
    /// The host's address, as the events name it.
    fn ip(&self) -> &str;
}

/// Per-host state a phase hands on: it can end politely what it holds open.
pub trait Close: Send + Sized {
    /// Ends the host's connections (saying goodbye to its agent first, when it has one).
    fn close(self) -> impl Future<Output = ()> + Send;
}

impl OnHost for HostSpec {
    fn ip(&self) -> &str {
        &self.ip
    }
}

impl OnHost for Reached {
    fn ip(&self) -> &str {
        &self.host.ip
    }
}

impl OnHost for Started {
    fn ip(&self) -> &str {
        &self.host.ip
    }
}

impl OnHost for Connected {
    fn ip(&self) -> &str {
        &self.host.ip
    }
}

impl Close for Reached {
    async fn close(self) {
        self.session.close().await;
    }
}

impl Close for Started {
    async fn close(self) {
        say_goodbye(self.agent, self.link).await;
    }
}

impl Close for Connected {
    async fn close(self) {
        say_goodbye(self.agent, self.link).await;
    }
}

/// Ends an agent session politely: goodbye, then the agent's exit, then its link.
async fn say_goodbye(agent: AgentIo, link: Box<dyn AgentLink>) {
    let _ = agent.bye().await;
    link.close().await;
}

/// Per-host totals for the final table.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Steps that ran.
    pub ran: u32,
    /// Steps skipped as unchanged.
    pub skipped: u32,
    /// Compressed bytes sent.
    pub bytes_sent: u64,
    /// Files sent.
    pub files_sent: u64,
    /// Steps this run already reported done or skipped. Apply's second pass goes over them
    /// again and the agent skips them; saying so a second time would only be noise.
    pub settled: std::collections::BTreeSet<String>,
    /// The files this host lacks and fetches from the registry (the fan-out), until it did.
    pub deferred: Vec<installer_proto::fanout::BlobRef>,
    /// Whether this registry host pushed into its registry what the other hosts lack.
    pub published: bool,
    /// The files this host lacks, sent while its first steps run (see `phases::steps`).
    pub to_send: Option<ToSend>,
}

/// Files to send a host: from which tree, which, and their size.
#[derive(Debug, Clone)]
pub struct ToSend {
    /// The host's merged tree.
    pub tree: std::sync::Arc<installer_proto::rootfs::MergedTree>,
    /// The paths, in the order the steps need them.
    pub files: Vec<String>,
    /// Their total size.
    pub bytes: u64,
    /// Where each file's compressed form is kept.
    pub(crate) frames: std::sync::Arc<crate::rootfs_stream::FrameCache>,
}

/// How a host's work ended early.
#[derive(Debug, Clone)]
pub enum HostFail {
    /// Refused for safety before anything changed (a host key unknown or changed).
    Refused(String),
    /// The agent refused because another apply or clean holds the host's lock; nothing
    /// was changed on this host.
    Busy {
        /// The phase.
        phase: Phase,
        /// The agent's message (who holds the lock).
        reason: String,
    },
    /// Failed in a phase.
    Failed {
        /// The phase.
        phase: Phase,
        /// The step, when the agent was running one.
        step: Option<String>,
        /// Why, for a human.
        reason: String,
    },
    /// Stopped before its work because a host it depends on failed (a registry host, at
    /// the registry barrier); nothing of this phase ran on it.
    NotReached(String),
}

impl HostFail {
    /// The host's final status.
    pub fn status(&self) -> HostStatus {
        match self {
            HostFail::Refused(reason) => HostStatus::Failed {
                phase: Phase::Connect,
                step: None,
                reason: reason.clone(),
            },
            HostFail::Busy { phase, reason } => HostStatus::Busy {
                phase: *phase,
                reason: reason.clone(),
            },
            HostFail::Failed {
                phase,
                step,
                reason,
            } => HostStatus::Failed {
                phase: *phase,
                step: step.clone(),
                reason: reason.clone(),
            },
            HostFail::NotReached(reason) => HostStatus::NotReached {
                reason: reason.clone(),
            },
        }
    }

    /// How an agent request that failed in `phase` ends the host: busy when the agent
    /// said another run holds its lock, else failed with `hint` (the agent's stderr tail)
    /// after the error.
    pub fn from_session(phase: Phase, e: SessionError, hint: &str) -> HostFail {
        match e {
            SessionError::Busy(reason) => HostFail::Busy { phase, reason },
            e => HostFail::Failed {
                phase,
                step: None,
                reason: format!("{e}{hint}"),
            },
        }
    }

    /// Reports the failure as the host's end.
    pub fn report(&self, reporter: &Reporter, host: &str) {
        reporter.emit(RunEvent::HostFinished {
            host: host.to_string(),
            status: self.status(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_agent_makes_a_busy_host_and_other_errors_a_failed_one() {
        let busy = HostFail::from_session(
            Phase::Ship,
            SessionError::Busy("another installer-agent is running".into()),
            "\nagent stderr: x",
        );
        assert_eq!(
            busy.status(),
            HostStatus::Busy {
                phase: Phase::Ship,
                reason: "another installer-agent is running".into(),
            }
        );
        let failed = HostFail::from_session(
            Phase::Clean,
            SessionError::Refused("no".into()),
            "\nagent stderr: x",
        );
        assert_eq!(
            failed.status(),
            HostStatus::Failed {
                phase: Phase::Clean,
                step: None,
                reason: "no\nagent stderr: x".into(),
            }
        );
    }
}
