//! Events as one human line each: what the host logs and the plain (non-terminal) view
//! print.

use super::event::RunEvent;
use super::progress::ShipProgress;
use installer_proto::human::bytes as human_bytes;

/// One human line for an event (used by the host logs and the plain view).
pub(crate) fn describe(event: &RunEvent) -> String {
    match event {
        RunEvent::RunStarted {
            command,
            cluster,
            hosts,
            dry_run,
        } => format!(
            "{command} of cluster {cluster} on {} host(s){}",
            hosts.len(),
            if *dry_run { " (dry run)" } else { "" }
        ),
        RunEvent::Warning { message } => format!("warning: {message}"),
        RunEvent::PhaseStarted { phase, .. } => format!("{}: started", phase.as_str()),
        RunEvent::Plan {
            files_to_send,
            bytes_to_send,
            files_present,
            ..
        } => format!(
            "plan: send {files_to_send} file(s), {}; {files_present} file(s) already present",
            human_bytes(*bytes_to_send)
        ),
        RunEvent::Transfer {
            bytes_sent,
            bytes_total,
            ..
        } => ShipProgress {
            done: *bytes_sent,
            total: *bytes_total,
            rate: None,
        }
        .to_string(),
        RunEvent::TransferDone {
            files,
            bytes_sent,
            bytes,
            ..
        } => format!(
            "ship: done, {files} file(s), {} ({} on the wire)",
            human_bytes(*bytes),
            human_bytes(*bytes_sent)
        ),
        RunEvent::Published {
            pushed,
            present,
            bytes,
            failed,
            ..
        } => {
            let mut line = format!(
                "publish: {pushed} blob(s) pushed into the registry ({}), {present} already there",
                human_bytes(*bytes)
            );
            if *failed > 0 {
                line += &format!(", {failed} not pushed");
            }
            line
        }
        RunEvent::Fetched {
            files,
            bytes,
            from,
            left,
            ..
        } => {
            let mut line = format!(
                "fetch: {files} file(s), {} from the registry at {}",
                human_bytes(*bytes),
                from.join(", ")
            );
            if *left > 0 {
                line += &format!("; {left} left for the controller to send");
            }
            line
        }
        RunEvent::Agent { event, .. } => event.describe(),
        RunEvent::HostFinished { status, .. } => {
            format!("finished: {}", super::table::status_text(status))
        }
        RunEvent::RunFinished {
            ok,
            exit_code,
            log_dir,
        } => {
            format!(
                "run finished: {} (exit code {exit_code}); logs in {log_dir}",
                if *ok { "ok" } else { "failed" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_reads_as_one_line_that_says_so() {
        let event = RunEvent::Warning {
            message: "Clusterfile:15:3: spec.cmd: accepted and not acted on".into(),
        };
        assert_eq!(
            describe(&event),
            "warning: Clusterfile:15:3: spec.cmd: accepted and not acted on"
        );
        assert_eq!(event.host(), None, "a warning is about the run, not a host");
    }
}
