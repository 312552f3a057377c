//! What the operator sees while a run goes on: a live per-host progress view on a terminal
//! (indicatif), plain lines otherwise, or NDJSON with `-o json`.

use super::event::{Line, RunEvent, SCHEMA_VERSION};
use super::logs::{describe, human_bytes};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use installer_proto::event::Event;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// How to show a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// A live progress view on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines, one per event worth a human's attention.
    Plain,
    /// NDJSON events on stdout (schema in README).
    Json,
}

/// The live view.
pub enum View {
    /// Progress bars, one per host.
    Bars(Bars),
    /// Plain lines on stderr (stdout keeps only the final table).
    Plain {
        /// Also show script output lines.
        verbose: bool,
    },
    /// NDJSON on stdout.
    Json,
}

/// The progress bars.
pub struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl View {
    /// Picks the view for a mode; `Auto` uses bars only when stderr is a terminal.
    pub fn new(mode: OutputMode, verbose: bool) -> View {
        use std::io::IsTerminal;
        match mode {
            OutputMode::Json => View::Json,
            OutputMode::Plain => View::Plain { verbose },
            OutputMode::Auto if std::io::stderr().is_terminal() && !verbose => View::Bars(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            }),
            OutputMode::Auto => View::Plain { verbose },
        }
    }

    /// Shows one event.
    pub fn show(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent) {
        match self {
            View::Json => {
                let line = Line {
                    schema: SCHEMA_VERSION,
                    ts_ms,
                    run_id,
                    event,
                };
                if let Ok(json) = serde_json::to_string(&line) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{json}");
                    let _ = out.flush();
                }
            }
            View::Plain { verbose } => {
                if worth_a_line(event, *verbose) {
                    let text = describe(event);
                    match event.host() {
                        Some(host) => eprintln!("[{host}] {text}"),
                        None => eprintln!("{text}"),
                    }
                }
            }
            View::Bars(bars) => bars.show(event),
        }
    }

    /// Removes the bars before the final table is printed.
    pub fn finish(&mut self) {
        if let View::Bars(bars) = self {
            for bar in bars.bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            let _ = bars.multi.clear();
        }
    }
}

fn worth_a_line(event: &RunEvent, verbose: bool) -> bool {
    match event {
        RunEvent::Transfer { .. } => false,
        RunEvent::Agent {
            event: Event::Output { .. } | Event::Received { .. },
            ..
        } => verbose,
        _ => true,
    }
}

impl Bars {
    fn show(&mut self, event: &RunEvent) {
        if let RunEvent::RunStarted { hosts, .. } = event {
            let style = ProgressStyle::with_template("{spinner} {prefix:<16} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            for host in hosts {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(host.clone());
                bar.set_message("waiting");
                bar.enable_steady_tick(Duration::from_millis(120));
                self.bars.insert(host.clone(), bar);
            }
            return;
        }
        let Some(host) = event.host() else { return };
        let Some(bar) = self.bars.get(host) else {
            return;
        };
        match event {
            RunEvent::PhaseStarted { phase, .. } => bar.set_message(phase.as_str().to_string()),
            RunEvent::Transfer {
                bytes_sent,
                bytes_total,
                ..
            } => bar.set_message(format!(
                "ship: {} sent ({} to send)",
                human_bytes(*bytes_sent),
                human_bytes(*bytes_total)
            )),
            RunEvent::Agent { event, .. } => match event {
                Event::StepStarted { step, .. } => bar.set_message(format!("{step}…")),
                Event::Output { step, line, .. } => {
                    let line: String = line.chars().take(80).collect();
                    bar.set_message(format!("{step}: {line}"))
                }
                Event::StepFailed { step, .. } => bar.set_message(format!("{step}: failed")),
                _ => {}
            },
            RunEvent::HostFinished { status, .. } => {
                let mark = if status.is_ok() { "✓" } else { "✗" };
                let text = super::table::status_text(status);
                let first = text.lines().next().unwrap_or("").to_string();
                bar.finish_with_message(format!("{mark} {first}"));
            }
            _ => {}
        }
    }
}
