//! Where the agent's events go: to the controller as wire messages (`serve`), or to the
//! terminal when run by hand.

use installer_proto::event::Event;
use installer_proto::wire::{AgentMsg, write_msg};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Receives events; shared by the threads that read script output.
pub trait Sink: Send + Sync {
    /// Delivers one event.
    fn event(&self, event: Event);

    /// Whether whoever receives the events is still there (a controller that went away
    /// cannot see further steps, so none should start).
    fn alive(&self) -> bool {
        true
    }
}

/// Sends events to the controller on the protocol stream.
pub struct WireSink<W: Write + Send> {
    out: Arc<Mutex<W>>,
    broken: std::sync::atomic::AtomicBool,
}

impl<W: Write + Send> WireSink<W> {
    /// Wraps the protocol writer.
    pub fn new(out: Arc<Mutex<W>>) -> WireSink<W> {
        WireSink {
            out,
            broken: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl<W: Write + Send> Sink for WireSink<W> {
    fn event(&self, event: Event) {
        // A poisoned lock means another thread panicked mid-write; the stream is lost anyway.
        if let Ok(mut out) = self.out.lock()
            && let Err(e) = write_msg(&mut *out, &AgentMsg::Event(event))
        {
            tracing::warn!("sending an event to the controller failed: {e}");
            self.broken
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn alive(&self) -> bool {
        !self.broken.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Prints events for a person at a terminal (hand-run mode), or as NDJSON with `--json`.
pub struct TermSink {
    json: bool,
    verbose: bool,
    out: Mutex<std::io::Stdout>,
}

impl TermSink {
    /// A terminal sink.
    pub fn new(json: bool, verbose: bool) -> TermSink {
        TermSink {
            json,
            verbose,
            out: Mutex::new(std::io::stdout()),
        }
    }
}

impl Sink for TermSink {
    fn event(&self, event: Event) {
        let text = if self.json {
            installer_proto::term::json_line(&event).ok()
        } else {
            human(&event, self.verbose)
        };
        if let (Some(text), Ok(mut out)) = (text, self.out.lock()) {
            let _ = writeln!(out, "{text}");
        }
    }
}

/// One human line for an event, or `None` for events not worth a line (script output
/// unless `verbose`, transfer progress). Control sequences in script output are removed:
/// the line is for a terminal (the step's log under the state directory keeps them).
pub fn human(event: &Event, verbose: bool) -> Option<String> {
    match event {
        Event::Output { .. } if !verbose => None,
        Event::Received { .. } => None,
        _ => Some(installer_proto::term::for_terminal(&event.describe()).into_owned()),
    }
}

/// Drops every event: for work done on behalf of an earlier run that nobody watches (what
/// a crashed agent's step changed, recorded by the next agent).
pub struct NullSink;

impl Sink for NullSink {
    fn event(&self, _event: Event) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use installer_proto::event::{StepError, Stream};

    #[test]
    fn hand_run_lines_carry_no_terminal_controls() {
        for (line, shown) in [
            ("\x1b]0;title\x07x", "x"),
            ("\x1b[2J\x1b[31mred\x1b[0m", "red"),
            ("a\u{9b}2Jb", "ab"),
            ("ok\rFAILED", "ok\u{240d}FAILED"),
            ("bell\x07", "bell"),
        ] {
            let output = Event::Output {
                step: "init-kube".into(),
                stream: Stream::Stdout,
                line: line.into(),
            };
            assert_eq!(
                human(&output, true).unwrap(),
                format!("init-kube | {shown}"),
                "{line:?}"
            );
            let failed = Event::StepFailed {
                step: "init-kube".into(),
                error: StepError {
                    message: format!("exited with code 1: {line}"),
                    exit_code: Some(1),
                    tail: vec![line.into()],
                },
            };
            let text = human(&failed, false).unwrap();
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{line:?}: {text:?}"
            );
        }
    }
}
