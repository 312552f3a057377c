//! What the operator sees while a run goes on: a live per-host progress view on a terminal
//! (indicatif), plain lines otherwise, or NDJSON with `-o json`.

use super::describe::describe;
use super::event::{Line, RunEvent, SCHEMA_VERSION};
use super::progress::ShipClock;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use installer_proto::event::Event;
use installer_proto::term;
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
pub(crate) enum View {
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
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    ship: ShipClock,
}

impl View {
    /// Picks the view for a mode; `Auto` uses bars only when stderr is a terminal.
    pub(crate) fn new(mode: OutputMode, verbose: bool) -> View {
        use std::io::IsTerminal;
        match mode {
            OutputMode::Json => View::Json,
            OutputMode::Plain => View::Plain { verbose },
            OutputMode::Auto if std::io::stderr().is_terminal() && !verbose => {
                View::Bars(Bars::new(ProgressDrawTarget::stderr()))
            }
            OutputMode::Auto => View::Plain { verbose },
        }
    }

    /// Shows one event.
    pub(crate) fn show(&mut self, run_id: &str, ts_ms: u64, event: &RunEvent) {
        match self {
            View::Json => {
                if let Some(json) = json_text(run_id, ts_ms, event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{json}");
                    let _ = out.flush();
                }
            }
            View::Plain { verbose } => {
                if let Some(line) = plain_line(event, *verbose) {
                    eprintln!("{line}");
                }
            }
            View::Bars(bars) => bars.show(ts_ms, event),
        }
    }

    /// Removes the bars before the final table is printed.
    pub(crate) fn finish(&mut self) {
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

/// The NDJSON line of an event. Script output stays as written (the JSON escapes make it
/// inert on a terminal, C1 controls included), so a consumer gets the exact text.
fn json_text(run_id: &str, ts_ms: u64, event: &RunEvent) -> Option<String> {
    let line = Line {
        schema: SCHEMA_VERSION,
        ts_ms,
        run_id,
        event,
    };
    term::json_line(&line).ok()
}

/// The plain view's line for an event, if it gets one: control sequences a script (or a
/// rootfs file name) carries are removed, since the line goes to a terminal.
fn plain_line(event: &RunEvent, verbose: bool) -> Option<String> {
    if !worth_a_line(event, verbose) {
        return None;
    }
    let text = describe(event);
    let line = match event.host() {
        Some(host) => format!("[{host}] {text}"),
        None => text,
    };
    Some(term::for_terminal(&line).into_owned())
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
    /// Bars drawn to `target`.
    fn new(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            ship: ShipClock::default(),
        }
    }

    fn show(&mut self, ts_ms: u64, event: &RunEvent) {
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
        if let RunEvent::Warning { .. } = event {
            // Above the bars, where it stays readable while they move.
            let line = describe(event);
            let _ = self.multi.println(term::for_terminal(&line));
            return;
        }
        let progress = self.ship.observe(ts_ms, event);
        let Some(host) = event.host() else { return };
        let Some(bar) = self.bars.get(host) else {
            return;
        };
        // Every message is cleaned whole: the step names and reasons come from the host too.
        let message = match event {
            RunEvent::PhaseStarted { phase, .. } => phase.as_str().to_string(),
            RunEvent::Transfer { .. } => match progress {
                Some(p) => p.to_string(),
                None => return,
            },
            RunEvent::Agent { event, .. } => match event {
                Event::StepStarted { step, .. } => format!("{step}…"),
                Event::Output { step, line, .. } => {
                    // Cleaned before it is cut: a sequence cut in half would still reach
                    // the terminal.
                    let line: String = term::for_terminal(line).chars().take(80).collect();
                    format!("{step}: {line}")
                }
                Event::StepFailed { step, .. } => format!("{step}: failed"),
                _ => return,
            },
            RunEvent::HostFinished { status, .. } => {
                let mark = if status.is_ok() { "✓" } else { "✗" };
                let text = super::table::status_text(status);
                let first = text.lines().next().unwrap_or("");
                let message = term::for_terminal(&format!("{mark} {first}")).into_owned();
                bar.finish_with_message(message);
                return;
            }
            _ => return,
        };
        bar.set_message(term::for_terminal(&message).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::event::{HostStatus, Phase};
    use installer_proto::event::Stream;
    use installer_proto::plan::StepKind;

    fn agent(host: &str, event: Event) -> RunEvent {
        RunEvent::Agent {
            host: host.into(),
            event,
        }
    }

    #[test]
    fn each_bar_follows_its_own_host_to_the_end() {
        let mut bars = Bars::new(ProgressDrawTarget::hidden());
        let events = [
            RunEvent::RunStarted {
                command: "apply".into(),
                cluster: "c".into(),
                hosts: vec!["10.0.0.1".into(), "10.0.0.2".into()],
                dry_run: false,
            },
            RunEvent::PhaseStarted {
                host: "10.0.0.1".into(),
                phase: Phase::Ship,
            },
            RunEvent::Transfer {
                host: "10.0.0.1".into(),
                bytes_sent: 2048,
                bytes_total: 4 << 20,
            },
            agent(
                "10.0.0.2",
                Event::StepStarted {
                    step: "init-kube".into(),
                    kind: StepKind::InitKube,
                    reason: String::new(),
                },
            ),
            // A host the run does not know changes nothing.
            RunEvent::PhaseStarted {
                host: "10.9.9.9".into(),
                phase: Phase::Steps,
            },
        ];
        for e in &events {
            bars.show(0, e);
        }
        let message = |bars: &Bars, host: &str| bars.bars[host].message();
        assert_eq!(bars.bars.len(), 2);
        assert!(
            message(&bars, "10.0.0.1").starts_with("ship: "),
            "{}",
            message(&bars, "10.0.0.1")
        );
        assert_eq!(message(&bars, "10.0.0.2"), "init-kube…");

        bars.show(
            0,
            &agent(
                "10.0.0.2",
                Event::Output {
                    step: "init-kube".into(),
                    stream: Stream::Stdout,
                    line: "x".repeat(300),
                },
            ),
        );
        assert_eq!(
            message(&bars, "10.0.0.2"),
            format!("init-kube: {}", "x".repeat(80))
        );

        bars.show(
            0,
            &RunEvent::HostFinished {
                host: "10.0.0.1".into(),
                status: HostStatus::Ok {
                    ran: 7,
                    skipped: 0,
                    bytes_sent: 0,
                    files_sent: 0,
                    not_undone: Vec::new(),
                    agent_peak_rss_kib: None,
                },
            },
        );
        bars.show(
            0,
            &RunEvent::HostFinished {
                host: "10.0.0.2".into(),
                status: HostStatus::Failed {
                    phase: Phase::Steps,
                    step: Some("init-kube".into()),
                    reason: "init-kube.sh exited with code 3\nlast lines…".into(),
                },
            },
        );
        let ok = message(&bars, "10.0.0.1");
        assert!(ok.starts_with("✓ ok: 7 step(s) ran"), "{ok}");
        let failed = message(&bars, "10.0.0.2");
        assert!(failed.starts_with("✗ failed"), "{failed}");
        assert!(
            !failed.contains('\n'),
            "only the first line of the reason: {failed}"
        );
        assert!(bars.bars.values().all(ProgressBar::is_finished));
    }

    #[test]
    fn finish_ends_bars_a_run_left_unfinished() {
        let mut view = View::Bars(Bars::new(ProgressDrawTarget::hidden()));
        view.show(
            "r",
            0,
            &RunEvent::RunStarted {
                command: "apply".into(),
                cluster: "c".into(),
                hosts: vec!["10.0.0.1".into()],
                dry_run: false,
            },
        );
        view.finish();
        let View::Bars(bars) = &view else {
            unreachable!("built as bars")
        };
        assert!(bars.bars["10.0.0.1"].is_finished());
    }

    /// Script lines that would act on the operator's terminal if printed raw.
    const HOSTILE: &[&str] = &[
        "\x1b]0;owned title\x07",
        "\x1b[2J",
        "\x1b[31mred\x1b[0m",
        "a\u{9b}2Jb",
        "kubeadm join ... --token s3cret\r\x1b[2Kok",
        "ding\x07",
    ];

    fn output(host: &str, line: &str) -> RunEvent {
        agent(
            host,
            Event::Output {
                step: "init-kube".into(),
                stream: Stream::Stderr,
                line: line.into(),
            },
        )
    }

    fn failed(host: &str, line: &str) -> RunEvent {
        RunEvent::HostFinished {
            host: host.into(),
            status: HostStatus::Failed {
                phase: Phase::Steps,
                step: Some("init-kube".into()),
                reason: format!("init-kube.sh exited with code 1: {line}\n{line}"),
            },
        }
    }

    /// What a terminal would act on: any control but newline and tab.
    fn acts_on_a_terminal(text: &str) -> bool {
        text.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    }

    #[test]
    fn plain_lines_carry_no_terminal_controls() {
        for line in HOSTILE {
            for event in [output("10.0.0.1", line), failed("10.0.0.1", line)] {
                let shown = plain_line(&event, true).unwrap();
                assert!(!acts_on_a_terminal(&shown), "{line:?}: {shown:?}");
                assert!(shown.starts_with("[10.0.0.1] "), "{shown:?}");
            }
        }
        assert_eq!(
            plain_line(&output("h", "\x1b[31mred\x1b[0m text"), true).unwrap(),
            "[h] init-kube ! red text"
        );
        assert_eq!(
            plain_line(&output("h", "100%\rdone"), true).unwrap(),
            "[h] init-kube ! 100%\u{240d}done"
        );
    }

    #[test]
    fn bars_show_no_terminal_controls() {
        let mut bars = Bars::new(ProgressDrawTarget::hidden());
        bars.show(
            0,
            &RunEvent::RunStarted {
                command: "apply".into(),
                cluster: "c".into(),
                hosts: vec!["h".into()],
                dry_run: false,
            },
        );
        for line in HOSTILE {
            bars.show(0, &output("h", line));
            let message = bars.bars["h"].message();
            assert!(!acts_on_a_terminal(&message), "{line:?}: {message:?}");
        }
        // Cut at 80 characters after cleaning: a long sequence cannot be cut in half.
        let long = format!("{}\x1b]0;{}\x07", "x".repeat(79), "t".repeat(50));
        bars.show(0, &output("h", &long));
        assert_eq!(
            bars.bars["h"].message(),
            format!("init-kube: {}", "x".repeat(79))
        );
        bars.show(0, &failed("h", "\x1b]0;title\x07boom"));
        let message = bars.bars["h"].message();
        assert!(!acts_on_a_terminal(&message), "{message:?}");
        assert!(message.ends_with("code 1: boom"), "{message:?}");
    }

    #[test]
    fn json_lines_keep_the_text_and_escape_every_control() {
        for line in HOSTILE {
            let json = json_text("r", 1, &output("h", line)).unwrap();
            assert!(!json.chars().any(char::is_control), "{json:?}");
            let back: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(back["line"], *line);
        }
    }
}
