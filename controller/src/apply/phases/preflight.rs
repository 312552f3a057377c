//! Phase "preflight": before anything changes, ask every host's agent for its facts, then
//! (apply) check every host — no other apply holds its lock, its hostname is unique in the
//! cluster, its architecture has a rootfs and its `bin/` binaries match, and it has room for
//! the rootfs. Clean only needs the facts.

use crate::apply::driver::{HostPhase, HostResult, Run, Stop};
use crate::apply::host::{Connected, HostFail, Started};
use crate::apply::inputs::Inputs;
use crate::output::event::Phase;
use installer_proto::facts::Facts;
use installer_proto::human::bytes as human_bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Room kept beyond the rootfs itself, for rendered files, logs and backups.
pub const DISK_MARGIN: u64 = 64 * 1024 * 1024;

/// Gathers each host's facts and, given the apply's inputs, checks the hosts.
pub struct Preflight {
    checks: Option<Arc<Inputs>>,
}

impl Preflight {
    /// Facts only (clean: nothing is shipped, so there is nothing to check).
    pub fn facts_only() -> Preflight {
        Preflight { checks: None }
    }

    /// Facts, then every check against what apply will ship.
    pub fn checking(inputs: Arc<Inputs>) -> Preflight {
        Preflight {
            checks: Some(inputs),
        }
    }
}

impl HostPhase for Preflight {
    type In = Started;
    type Out = Connected;
    const PHASE: Phase = Phase::Preflight;

    async fn run(&self, run: &Run, s: Started) -> HostResult<Connected> {
        let Started {
            host,
            arch,
            mut agent,
            link,
        } = s;
        let facts = agent
            .facts(&run.ctx.data_root, &run.ctx.cluster)
            .await
            .map_err(|e| HostFail::Failed {
                phase: Phase::Preflight,
                step: None,
                reason: e.to_string(),
            })?;
        Ok(Connected {
            host,
            arch,
            agent,
            link,
            facts,
            stats: Default::default(),
        })
    }

    async fn across(&self, _run: &Run, live: Vec<Connected>) -> Vec<HostResult<Connected>> {
        let Some(inputs) = &self.checks else {
            return live.into_iter().map(Ok).collect();
        };
        let by_name = hostnames(
            live.iter()
                .map(|c| (c.facts.hostname.as_str(), c.host.ip.as_str())),
        );
        let mut out = Vec::with_capacity(live.len());
        for c in live {
            let fail = match busy(&c.facts) {
                Some(reason) => Some(HostFail::Busy {
                    phase: Phase::Preflight,
                    reason,
                }),
                None => problem(inputs, &c.arch, &c.facts, &by_name)
                    .await
                    .map(|reason| HostFail::Failed {
                        phase: Phase::Preflight,
                        step: None,
                        reason,
                    }),
            };
            out.push(match fail {
                None => Ok(c),
                Some(fail) => Err(Stop {
                    fail,
                    close: Some(c),
                }),
            });
        }
        out
    }
}

/// The hosts (by IP) that reported each hostname, from `(hostname, ip)` pairs.
pub fn hostnames<'a>(
    hosts: impl Iterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Vec<String>> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, ip) in hosts {
        by_name
            .entry(name.to_string())
            .or_default()
            .push(ip.to_string());
    }
    by_name
}

/// Why the host is busy, if its agent reported the host lock held. The lock is the host's,
/// not the cluster's: the holder may be another cluster's apply or clean. (Facts report it
/// only for a cluster with state on the host; for a first apply the agent refuses the offer
/// instead, reported the same way.)
pub fn busy(facts: &Facts) -> Option<String> {
    facts
        .state
        .as_ref()
        .filter(|state| state.locked)
        .map(|_| {
            "another apply or clean is running on this host (installer-agent holds its lock); nothing was changed here — wait for it to finish, then run again".to_string()
        })
}

/// Why `hostname` cannot be used, if other hosts share it (`by_name` from [`hostnames`]).
pub fn shared_hostname(hostname: &str, by_name: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let others = by_name.get(hostname).filter(|ips| ips.len() > 1)?;
    Some(format!(
        "hostname {hostname:?} is shared by hosts {}; every node needs a unique hostname (set it with hostnamectl)",
        others.join(", ")
    ))
}

/// Why a rootfs of `need` bytes does not fit in `free` bytes at `data_root`, if it does not
/// (with [`DISK_MARGIN`] to spare).
pub fn short_of_disk(free: u64, need: u64, data_root: &str) -> Option<String> {
    (free < need + DISK_MARGIN).then(|| {
        format!(
            "{} free at {} but the rootfs needs {} (plus {} margin); free some space or choose another spec.dataRoot",
            human_bytes(free),
            data_root,
            human_bytes(need),
            human_bytes(DISK_MARGIN)
        )
    })
}

async fn problem(
    inputs: &Inputs,
    arch: &str,
    f: &Facts,
    by_name: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    if let Some(reason) = shared_hostname(&f.hostname, by_name) {
        return Some(reason);
    }
    let tree = match inputs.tree_for(arch).await {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let need = tree.iter().map(|s| s.entry.size()).sum::<u64>();
    short_of_disk(f.disk_free_bytes, need, &f.data_root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::facts::StateSummary;

    #[test]
    fn a_host_is_busy_only_when_its_cluster_state_says_locked() {
        let with_state = |locked| Facts {
            state: Some(StateSummary {
                cluster: "c1".into(),
                locked,
                ..StateSummary::default()
            }),
            ..Facts::default()
        };
        for (facts, busy_expected) in [
            (Facts::default(), false),
            (with_state(false), false),
            (with_state(true), true),
        ] {
            let reason = busy(&facts);
            assert_eq!(reason.is_some(), busy_expected, "{facts:?}");
            if let Some(reason) = reason {
                assert!(reason.contains("holds its lock"), "{reason}");
            }
        }
    }

    #[test]
    fn a_hostname_is_refused_when_another_host_reports_it_too() {
        let by_name = hostnames(
            [
                ("node-a", "10.0.0.1"),
                ("node-b", "10.0.0.2"),
                ("node-a", "10.0.0.3"),
            ]
            .into_iter(),
        );
        for (hostname, expected) in [
            (
                "node-a",
                Some("hostname \"node-a\" is shared by hosts 10.0.0.1, 10.0.0.3"),
            ),
            ("node-b", None),
            ("elsewhere", None),
        ] {
            let reason = shared_hostname(hostname, &by_name);
            match (reason, expected) {
                (None, None) => {}
                (Some(reason), Some(start)) => assert!(reason.starts_with(start), "{reason}"),
                (reason, expected) => panic!("{hostname}: {reason:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn the_rootfs_must_fit_with_the_margin_to_spare() {
        let mib = 1024 * 1024;
        for (free, need, short) in [
            (100 * mib + DISK_MARGIN, 100 * mib, false),
            (100 * mib + DISK_MARGIN - 1, 100 * mib, true),
            (0, 0, true),
            (DISK_MARGIN, 0, false),
            (u64::MAX / 2, 100 * mib, false),
        ] {
            let reason = short_of_disk(free, need, "/var/lib/sealer/data");
            assert_eq!(
                reason.is_some(),
                short,
                "free {free}, need {need}: {reason:?}"
            );
            if let Some(reason) = reason {
                assert!(reason.contains("at /var/lib/sealer/data"), "{reason}");
                assert!(reason.contains(&human_bytes(need)), "{reason}");
            }
        }
    }
}
