//! The per-host table a run ends with: ok / failed at step X with the reason / not reached.

use super::event::HostStatus;
use installer_proto::human::bytes as human_bytes;
use installer_proto::term;

/// One line of text for a host's status, e.g. `failed at init-kube: exit code 1`.
pub(crate) fn status_text(status: &HostStatus) -> String {
    format!("{} {}", label(status), detail(status))
}

/// The status word of the table.
fn label(status: &HostStatus) -> &'static str {
    match status {
        HostStatus::Ok { .. } => "ok:",
        HostStatus::Failed { .. } => "failed",
        HostStatus::Busy { .. } => "busy",
        HostStatus::NotReached { .. } => "not reached:",
    }
}

/// The table's detail column.
fn detail(status: &HostStatus) -> String {
    match status {
        HostStatus::Ok {
            ran,
            skipped,
            bytes_sent,
            files_sent,
            not_undone,
            ..
        } => {
            let mut s = format!("{ran} step(s) ran, {skipped} unchanged");
            if *files_sent > 0 {
                s.push_str(&format!(
                    ", {files_sent} file(s) sent ({})",
                    human_bytes(*bytes_sent)
                ));
            }
            if !not_undone.is_empty() {
                s.push_str(&format!("; not undone: {}", not_undone.join(", ")));
            }
            s
        }
        HostStatus::Failed {
            phase,
            step,
            reason,
        } => match step {
            Some(step) => format!("at {step}: {reason}"),
            None => format!("in {}: {reason}", phase.as_str()),
        },
        HostStatus::Busy { phase, reason } => format!("in {}: {reason}", phase.as_str()),
        HostStatus::NotReached { reason } => reason.clone(),
    }
}

/// The table as text: one row per host, in the given order.
pub(crate) fn render(rows: &[(String, HostStatus)]) -> String {
    let width = rows.iter().map(|(h, _)| h.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}  {:11}  DETAIL\n", "HOST", "STATUS");
    for (host, status) in rows {
        let label = label(status).trim_end_matches(':');
        // Reasons carry script output tails and host messages; the table goes to a terminal.
        let detail = detail(status);
        let detail = term::for_terminal(&detail);
        // Multi-line reasons (script output tails) are indented under the row.
        let mut lines = detail.lines();
        out.push_str(&format!(
            "{host:width$}  {label:11}  {}\n",
            lines.next().unwrap_or("")
        ));
        for more in lines {
            out.push_str(&format!("{:width$}  {:11}  {more}\n", "", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::event::Phase;

    #[test]
    fn table_names_every_outcome() {
        let rows = vec![
            (
                "10.0.0.11".to_string(),
                HostStatus::Ok {
                    ran: 3,
                    skipped: 7,
                    bytes_sent: 2048,
                    files_sent: 1,
                    not_undone: vec![],
                    agent_peak_rss_kib: None,
                },
            ),
            (
                "10.0.0.12".to_string(),
                HostStatus::Failed {
                    phase: Phase::Steps,
                    step: Some("init-kube".into()),
                    reason: "exit code 1\nlast line".into(),
                },
            ),
            (
                "10.0.0.13".to_string(),
                HostStatus::NotReached {
                    reason: "registry on 10.0.0.11 failed".into(),
                },
            ),
        ];
        assert_eq!(
            render(&rows),
            "HOST       STATUS       DETAIL\n\
             10.0.0.11  ok           3 step(s) ran, 7 unchanged, 1 file(s) sent (2.0 KiB)\n\
             10.0.0.12  failed       at init-kube: exit code 1\n\
             \x20                       last line\n\
             10.0.0.13  not reached  registry on 10.0.0.11 failed\n"
        );
    }

    #[test]
    fn script_tails_in_the_table_carry_no_terminal_controls() {
        let rows = vec![(
            "10.0.0.12".to_string(),
            HostStatus::Failed {
                phase: Phase::Steps,
                step: Some("init-kube".into()),
                reason:
                    "exit code 1\n\x1b]0;title\x07\x1b[2J\x1b[31mred\x1b[0m\u{9b}1A\x07\nok\rFAILED"
                        .into(),
            },
        )];
        let table = render(&rows);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        assert!(table.contains("  red\n"), "{table:?}");
        assert!(table.contains("  ok\u{240d}FAILED\n"), "{table:?}");
    }

    #[test]
    fn busy_hosts_say_so() {
        let rows = vec![(
            "10.0.0.11".to_string(),
            HostStatus::Busy {
                phase: Phase::Ship,
                reason:
                    "another installer-agent is running on this host (pid 7, apply of cluster a)"
                        .into(),
            },
        )];
        assert_eq!(
            render(&rows),
            "HOST       STATUS       DETAIL\n\
             10.0.0.11  busy         in ship: another installer-agent is running on this host (pid 7, apply of cluster a)\n"
        );
    }
}
