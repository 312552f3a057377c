//! What happened on a host, as the agent reports it while it works. The controller turns
//! these into the progress view, the per-host log and the NDJSON output; the hand-run agent
//! prints them. Output lines are the scripts' own output: the agent never puts secrets in the
//! plan, so nothing secret can appear here unless a script prints it itself.

use crate::plan::StepKind;
use serde::{Deserialize, Serialize};

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// What went wrong, for a human.
    pub message: String,
    /// The script's exit code, when a script exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last lines of the step's output (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
}

/// One event. `step` is the step id: the kind's name (`init-kube`), or for plugins
/// `<phase>:<plugin name>` (`pre-init-host:disk`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step begins.
    StepStarted {
        /// Step id.
        step: String,
        /// Its kind.
        kind: StepKind,
        /// Why it runs (`never ran`, `inputs changed`, `drifted: /usr/local/bin/kubeadm is
        /// missing`, …).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// A line of a script's output.
    Output {
        /// Step id.
        step: String,
        /// The stream.
        stream: Stream,
        /// The line, without its newline.
        line: String,
    },
    /// A step finished.
    StepDone {
        /// Step id.
        step: String,
        /// Wall time.
        duration_ms: u64,
        /// Files it wrote (installed, rendered, placed), 0 for scripts.
        files: u64,
        /// Bytes it wrote.
        bytes: u64,
    },
    /// A step did not run because its inputs are unchanged since it last succeeded.
    StepSkipped {
        /// Step id.
        step: String,
        /// Why, for a human.
        reason: String,
    },
    /// Dry run: the step would run.
    WouldRun {
        /// Step id.
        step: String,
        /// Why (never ran, inputs changed, forced, resumes after a failure).
        reason: String,
    },
    /// A step failed; later steps do not run.
    StepFailed {
        /// Step id.
        step: String,
        /// What went wrong.
        error: StepError,
    },
    /// Progress of receiving rootfs content.
    Received {
        /// Files received so far.
        files: u64,
        /// Bytes received so far (uncompressed).
        bytes: u64,
        /// Files expected.
        total_files: u64,
        /// Bytes expected.
        total_bytes: u64,
    },
    /// Clean undid something.
    Undone {
        /// What, by name (a path, a container, a hosts line).
        what: String,
    },
    /// Clean could not undo something.
    NotUndone {
        /// What, by name.
        what: String,
        /// Why.
        reason: String,
    },
    /// Something worth a human's attention that does not fail the step.
    Warning {
        /// The message.
        message: String,
    },
}

impl Event {
    /// The step an event belongs to, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step, .. }
            | Event::Output { step, .. }
            | Event::StepDone { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::WouldRun { step, .. }
            | Event::StepFailed { step, .. } => Some(step),
            _ => None,
        }
    }

    /// One human line for the event (a failure adds its output tail on further lines):
    /// what the controller's per-host log and plain view and the hand-run agent print.
    pub fn describe(&self) -> String {
        match self {
            Event::StepStarted { step, reason, .. } if !reason.is_empty() => {
                format!("{step}: started ({reason})")
            }
            Event::StepStarted { step, .. } => format!("{step}: started"),
            Event::Output { step, stream, line } => match stream {
                Stream::Stdout => format!("{step} | {line}"),
                Stream::Stderr => format!("{step} ! {line}"),
            },
            Event::StepDone {
                step,
                duration_ms,
                files,
                bytes,
            } => {
                if *files > 0 {
                    format!(
                        "{step}: done in {} ({files} file(s), {})",
                        crate::human::secs(*duration_ms),
                        crate::human::bytes(*bytes)
                    )
                } else {
                    format!("{step}: done in {}", crate::human::secs(*duration_ms))
                }
            }
            Event::StepSkipped { step, reason } => format!("{step}: skipped ({reason})"),
            Event::WouldRun { step, reason } => format!("{step}: would run ({reason})"),
            Event::StepFailed { step, error } => {
                let mut s = format!("{step}: FAILED: {}", error.message);
                for line in &error.tail {
                    s.push_str("\n    ");
                    s.push_str(line);
                }
                s
            }
            Event::Received {
                files,
                bytes,
                total_files,
                total_bytes,
            } => format!(
                "received {files}/{total_files} file(s), {} of {}",
                crate::human::bytes(*bytes),
                crate::human::bytes(*total_bytes)
            ),
            Event::Undone { what } => format!("undone: {what}"),
            Event::NotUndone { what, reason } => format!("NOT undone: {what}: {reason}"),
            Event::Warning { message } => format!("warning: {message}"),
        }
    }
}

/// How an apply or clean ended on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether everything requested succeeded.
    pub ok: bool,
    /// The step that failed, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// The error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Steps that ran.
    pub ran: u32,
    /// Steps skipped as unchanged.
    pub skipped: u32,
    /// Clean: what could not be undone, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_undone: Vec<String>,
    /// The agent's peak resident memory so far (Linux `VmHWM`), KiB, when it could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_tag() {
        let e = Event::StepFailed {
            step: "init-kube".into(),
            error: StepError {
                message: "exit code 3".into(),
                exit_code: Some(3),
                tail: vec!["boom".into()],
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"step_failed","step":"init-kube","error":{"message":"exit code 3","exit_code":3,"tail":["boom"]}}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.step(), Some("init-kube"));
    }

    #[test]
    fn descriptions_are_one_line_except_a_failure_tail() {
        let done = Event::StepDone {
            step: "install-bin".into(),
            duration_ms: 1450,
            files: 3,
            bytes: 1536,
        };
        assert_eq!(
            done.describe(),
            "install-bin: done in 1.4s (3 file(s), 1.5 KiB)"
        );
        let err = Event::Output {
            step: "init-kube".into(),
            stream: Stream::Stderr,
            line: "oops".into(),
        };
        assert_eq!(err.describe(), "init-kube ! oops");
        let failed = Event::StepFailed {
            step: "init-kube".into(),
            error: StepError {
                message: "init-kube.sh exited with code 3".into(),
                exit_code: Some(3),
                tail: vec!["a".into(), "b".into()],
            },
        };
        assert_eq!(
            failed.describe(),
            "init-kube: FAILED: init-kube.sh exited with code 3\n    a\n    b"
        );
    }
}
