//! The run's events: what `-o json` prints (one JSON object per line), what the per-host logs
//! and the progress view are made from. The schema is versioned by [`SCHEMA_VERSION`] and
//! documented in README; additive changes keep the version, anything else bumps it.

use installer_proto::event::Event;
use serde::Serialize;

/// Version of the NDJSON schema, carried in every line as `"schema"`.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The controller-side phases of a host's run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// SSH connection, host key check and authentication.
    Connect,
    /// Uploading (when needed) and starting the agent.
    StartAgent,
    /// Facts and checks before anything changes.
    Preflight,
    /// Sending the files the host lacks.
    Ship,
    /// The agent's steps.
    Steps,
    /// A registry host pushing the rootfs files other hosts lack into its registry.
    Publish,
    /// A host fetching what it lacks from the cluster's registry.
    Fetch,
    /// Undoing everything (`installer clean`).
    Clean,
}

impl Phase {
    /// Human name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::StartAgent => "start-agent",
            Phase::Preflight => "preflight",
            Phase::Ship => "ship",
            Phase::Steps => "steps",
            Phase::Publish => "publish",
            Phase::Fetch => "fetch",
            Phase::Clean => "clean",
        }
    }
}

/// How a host ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HostStatus {
    /// Everything requested succeeded.
    Ok {
        /// Steps that ran.
        ran: u32,
        /// Steps skipped as unchanged.
        skipped: u32,
        /// File bytes sent (compressed, on the wire).
        bytes_sent: u64,
        /// Files sent.
        files_sent: u64,
        /// Clean: what could not be undone.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        not_undone: Vec<String>,
        /// The agent's peak resident memory on the host, KiB, when it reported it.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_peak_rss_kib: Option<u64>,
    },
    /// The host failed.
    Failed {
        /// The phase it failed in.
        phase: Phase,
        /// The agent step, when a step failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// Why.
        reason: String,
    },
    /// Another apply or clean holds the host's lock: the agent refused, and changed
    /// nothing on this host.
    Busy {
        /// The phase it was refused in.
        phase: Phase,
        /// Who holds the lock and what to do.
        reason: String,
    },
    /// The run never got to do this host's work.
    NotReached {
        /// Why.
        reason: String,
    },
}

impl HostStatus {
    /// Whether the host ended well.
    pub fn is_ok(&self) -> bool {
        matches!(self, HostStatus::Ok { .. })
    }

    /// Whether the host refused because another run holds its lock.
    pub fn is_busy(&self) -> bool {
        matches!(self, HostStatus::Busy { .. })
    }
}

/// One event of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run begins.
    RunStarted {
        /// `apply` or `clean`.
        command: String,
        /// Cluster name.
        cluster: String,
        /// Hosts, in Clusterfile order.
        hosts: Vec<String>,
        /// Whether nothing is to change.
        dry_run: bool,
    },
    /// Something about the run's input that was accepted but is worth telling (a Clusterfile
    /// line read differently than written, a field not acted on): `file:line:col: what`.
    Warning {
        /// The warning, with its position.
        message: String,
    },
    /// A host enters a phase.
    PhaseStarted {
        /// Host address.
        host: String,
        /// Phase.
        phase: Phase,
    },
    /// A host's plan: what it lacks and will receive.
    Plan {
        /// Host address.
        host: String,
        /// Files to send.
        files_to_send: u64,
        /// Their size.
        bytes_to_send: u64,
        /// Files the host already has.
        files_present: u64,
    },
    /// Shipping progress, in uncompressed file bytes (the unit of the plan's total).
    Transfer {
        /// Host address.
        host: String,
        /// File bytes (uncompressed) sent so far.
        bytes_sent: u64,
        /// Uncompressed bytes being sent in total.
        bytes_total: u64,
    },
    /// Shipping finished and the agent verified everything.
    TransferDone {
        /// Host address.
        host: String,
        /// Files sent.
        files: u64,
        /// Compressed bytes on the wire.
        bytes_sent: u64,
        /// Uncompressed bytes.
        bytes: u64,
    },
    /// A registry host pushed rootfs files into its registry for the other hosts.
    Published {
        /// Host address.
        host: String,
        /// Blobs uploaded.
        pushed: u64,
        /// Blobs the registry already had.
        present: u64,
        /// Bytes uploaded.
        bytes: u64,
        /// Files it could not push.
        failed: u64,
    },
    /// A host fetched what it lacked from the cluster's registry.
    Fetched {
        /// Host address.
        host: String,
        /// Files fetched and verified.
        files: u64,
        /// Their bytes.
        bytes: u64,
        /// The registry hosts it fetched from.
        from: Vec<String>,
        /// Files it could not fetch: the controller sends them.
        left: u64,
    },
    /// Something the agent reported.
    Agent {
        /// Host address.
        host: String,
        /// The agent's event (flattened: its `event` field names the kind).
        #[serde(flatten)]
        event: Event,
    },
    /// A host finished.
    HostFinished {
        /// Host address.
        host: String,
        /// How.
        #[serde(flatten)]
        status: HostStatus,
    },
    /// The run finished.
    RunFinished {
        /// Whether every host is ok.
        ok: bool,
        /// The process exit code.
        exit_code: i32,
        /// Where the logs are.
        log_dir: String,
    },
}

impl RunEvent {
    /// The host an event is about, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            RunEvent::PhaseStarted { host, .. }
            | RunEvent::Plan { host, .. }
            | RunEvent::Transfer { host, .. }
            | RunEvent::TransferDone { host, .. }
            | RunEvent::Published { host, .. }
            | RunEvent::Fetched { host, .. }
            | RunEvent::Agent { host, .. }
            | RunEvent::HostFinished { host, .. } => Some(host),
            _ => None,
        }
    }
}

/// One NDJSON line: schema version, time, run id, then the event's own fields.
#[derive(Serialize)]
pub(crate) struct Line<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The run id.
    pub run_id: &'a str,
    /// The event.
    #[serde(flatten)]
    pub event: &'a RunEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::plan::StepKind;

    #[test]
    fn lines_are_flat_and_versioned() {
        let event = RunEvent::Agent {
            host: "10.0.0.2".into(),
            event: Event::StepStarted {
                step: "init-kube".into(),
                kind: StepKind::InitKube,
                reason: String::new(),
            },
        };
        let line = Line {
            schema: SCHEMA_VERSION,
            ts_ms: 5,
            run_id: "r1",
            event: &event,
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"schema":1,"ts_ms":5,"run_id":"r1","type":"agent","host":"10.0.0.2","event":"step_started","step":"init-kube","kind":"init-kube"}"#
        );
        let done = RunEvent::HostFinished {
            host: "h".into(),
            status: HostStatus::Failed {
                phase: Phase::Steps,
                step: Some("init-kube".into()),
                reason: "exit code 1".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"type":"host_finished","host":"h","status":"failed","phase":"steps","step":"init-kube","reason":"exit code 1"}"#
        );
    }
}
