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
            serde_json::to_string(&event).ok()
        } else {
            human(&event, self.verbose)
        };
        if let (Some(text), Ok(mut out)) = (text, self.out.lock()) {
            let _ = writeln!(out, "{text}");
        }
    }
}

/// One human line for an event, or `None` for events not worth a line (script output
/// unless `verbose`, transfer progress).
pub fn human(event: &Event, verbose: bool) -> Option<String> {
    match event {
        Event::Output { .. } if !verbose => None,
        Event::Received { .. } => None,
        _ => Some(event.describe()),
    }
}

/// Drops every event: for work done on behalf of an earlier run that nobody watches (what
/// a crashed agent's step changed, recorded by the next agent).
pub struct NullSink;

impl Sink for NullSink {
    fn event(&self, _event: Event) {}
}
