//! Shipping progress as people read it: `ship: 43.0 MiB of 147.2 MiB (29%), 12.3 MiB/s, 9s
//! left`. Every number is in uncompressed file bytes, the unit of the host's plan, so the
//! bar ends where the total says; what went over the wire (compressed) is told once the
//! transfer is done.

use super::event::RunEvent;
use installer_proto::human::bytes as human_bytes;
use std::collections::HashMap;

/// One moment of a host's transfer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ShipProgress {
    /// File bytes sent so far.
    pub done: u64,
    /// File bytes to send in all.
    pub total: u64,
    /// Bytes a second since the stream began; `None` before there is a measure.
    pub rate: Option<f64>,
}

impl ShipProgress {
    /// Whole percent done; an empty transfer is done.
    pub(crate) fn percent(&self) -> u64 {
        if self.total == 0 {
            return 100;
        }
        (u128::from(self.done.min(self.total)) * 100 / u128::from(self.total)) as u64
    }

    /// Seconds left at the rate so far.
    pub(crate) fn secs_left(&self) -> Option<u64> {
        let rate = self.rate.filter(|r| *r > 0.0)?;
        Some((self.total.saturating_sub(self.done) as f64 / rate).ceil() as u64)
    }
}

impl std::fmt::Display for ShipProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ship: {} of {} ({}%)",
            human_bytes(self.done),
            human_bytes(self.total),
            self.percent()
        )?;
        if let (Some(rate), Some(left)) = (self.rate, self.secs_left()) {
            write!(
                f,
                ", {}/s, {} left",
                human_bytes(rate as u64),
                duration(left)
            )?;
        }
        Ok(())
    }
}

/// `9s`, `2m05s`, `1h02m`.
pub(crate) fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// When each host's stream began, to measure the rate of its transfer events. The stream
/// begins right after the host's plan; a transfer seen without a plan starts the clock
/// itself (with what was sent by then).
#[derive(Debug, Default)]
pub(crate) struct ShipClock {
    started: HashMap<String, (u64, u64)>,
}

impl ShipClock {
    /// Takes note of `event` at `ts_ms`; a transfer event's progress.
    pub(crate) fn observe(&mut self, ts_ms: u64, event: &RunEvent) -> Option<ShipProgress> {
        match event {
            RunEvent::Plan { host, .. } => {
                self.started.insert(host.clone(), (ts_ms, 0));
                None
            }
            RunEvent::Transfer {
                host,
                bytes_sent,
                bytes_total,
            } => {
                let (t0, d0) = *self
                    .started
                    .entry(host.clone())
                    .or_insert((ts_ms, *bytes_sent));
                let rate = (ts_ms > t0 && *bytes_sent > d0)
                    .then(|| (bytes_sent - d0) as f64 * 1000.0 / (ts_ms - t0) as f64);
                Some(ShipProgress {
                    done: *bytes_sent,
                    total: *bytes_total,
                    rate,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn plan(host: &str) -> RunEvent {
        RunEvent::Plan {
            host: host.into(),
            files_to_send: 3,
            bytes_to_send: 100 * MIB,
            files_present: 0,
        }
    }

    fn transfer(host: &str, sent: u64) -> RunEvent {
        RunEvent::Transfer {
            host: host.into(),
            bytes_sent: sent,
            bytes_total: 100 * MIB,
        }
    }

    #[test]
    fn progress_reads_done_of_total_with_percent_rate_and_time_left() {
        let p = ShipProgress {
            done: 40 * MIB,
            total: 100 * MIB,
            rate: Some(10.0 * MIB as f64),
        };
        assert_eq!(
            p.to_string(),
            "ship: 40.0 MiB of 100.0 MiB (40%), 10.0 MiB/s, 6s left"
        );
        let slow = ShipProgress {
            rate: Some(0.25 * MIB as f64),
            ..p
        };
        assert_eq!(slow.secs_left(), Some(240));
        assert!(slow.to_string().ends_with(", 256.0 KiB/s, 4m00s left"));
        let unmeasured = ShipProgress { rate: None, ..p };
        assert_eq!(unmeasured.to_string(), "ship: 40.0 MiB of 100.0 MiB (40%)");
    }

    #[test]
    fn percent_is_floored_and_never_past_100() {
        let at = |done, total| {
            ShipProgress {
                done,
                total,
                rate: None,
            }
            .percent()
        };
        assert_eq!(at(199, 200), 99);
        assert_eq!(at(300, 200), 100);
        assert_eq!(at(0, 0), 100);
        assert_eq!(at(u64::MAX / 2, u64::MAX), 49);
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(60), "1m00s");
        assert_eq!(duration(3599), "59m59s");
        assert_eq!(duration(3720), "1h02m");
    }

    #[test]
    fn the_rate_is_measured_per_host_from_its_plan() {
        let mut clock = ShipClock::default();
        assert_eq!(clock.observe(1_000, &plan("a")), None);
        assert_eq!(clock.observe(1_500, &plan("b")), None);
        // 20 MiB in 2 s since a's plan; b sent 5 MiB in 0.5 s since its own.
        let a = clock.observe(3_000, &transfer("a", 20 * MIB)).unwrap();
        assert_eq!(a.rate, Some(10.0 * MIB as f64));
        assert_eq!(a.secs_left(), Some(8));
        let b = clock.observe(2_000, &transfer("b", 5 * MIB)).unwrap();
        assert_eq!(b.rate, Some(10.0 * MIB as f64));
        assert_eq!(b.done, 5 * MIB);
        assert_eq!(b.total, 100 * MIB);
    }

    #[test]
    fn a_transfer_without_a_plan_starts_the_clock() {
        let mut clock = ShipClock::default();
        let first = clock.observe(1_000, &transfer("a", 30 * MIB)).unwrap();
        assert_eq!(first.rate, None, "nothing to measure against yet");
        assert_eq!(first.to_string(), "ship: 30.0 MiB of 100.0 MiB (30%)");
        let next = clock.observe(2_000, &transfer("a", 35 * MIB)).unwrap();
        assert_eq!(next.rate, Some(5.0 * MIB as f64));
        assert_eq!(next.secs_left(), Some(13));
    }
}
