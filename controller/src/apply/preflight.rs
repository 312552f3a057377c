//! Phase "preflight": before anything changes, check every connected host — its
//! architecture has a rootfs and its `bin/` binaries match, it has room for the rootfs,
//! its hostname is unique in the cluster, and no other apply holds its cluster lock.

use super::host::{Connected, HostFail, RunCtx};
use super::inputs::Inputs;
use crate::output::event::Phase;
use crate::output::logs::human_bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Keeps the hosts that pass, reporting the others as failed in preflight.
pub async fn check(ctx: &Arc<RunCtx>, inputs: &Inputs, live: Vec<Connected>) -> Vec<Connected> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &live {
        by_name
            .entry(c.facts.hostname.clone())
            .or_default()
            .push(c.host.ip.clone());
    }
    let mut kept = Vec::new();
    for c in live {
        let fail = match busy(&c) {
            Some(reason) => Some(HostFail::Busy {
                phase: Phase::Preflight,
                reason,
            }),
            None => problem(inputs, &c, &by_name)
                .await
                .map(|reason| HostFail::Failed {
                    phase: Phase::Preflight,
                    step: None,
                    reason,
                }),
        };
        match fail {
            None => kept.push(c),
            Some(fail) => {
                fail.report(&ctx.reporter, &c.host.ip);
                super::close_all(vec![(String::new(), Ok(c))]).await;
            }
        }
    }
    kept
}

/// Why the host is busy, if its agent reported the host lock held. The lock is the host's,
/// not the cluster's: the holder may be another cluster's apply or clean. (Facts report it
/// only for a cluster with state on the host; for a first apply the agent refuses the offer
/// instead, reported the same way.)
fn busy(c: &Connected) -> Option<String> {
    c.facts
        .state
        .as_ref()
        .filter(|state| state.locked)
        .map(|_| {
            "another apply or clean is running on this host (installer-agent holds its lock); nothing was changed here — wait for it to finish, then run again".to_string()
        })
}

async fn problem(
    inputs: &Inputs,
    c: &Connected,
    by_name: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    let f = &c.facts;
    if let Some(others) = by_name.get(&f.hostname)
        && others.len() > 1
    {
        return Some(format!(
            "hostname {:?} is shared by hosts {}; every node needs a unique hostname (set it with hostnamectl)",
            f.hostname,
            others.join(", ")
        ));
    }
    let tree = match inputs.tree_for(&c.arch).await {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let need = tree.iter().map(|s| s.entry.size()).sum::<u64>();
    // Room for the rootfs plus a margin for rendered files, logs and backups.
    let margin = 64 * 1024 * 1024;
    if f.disk_free_bytes < need + margin {
        return Some(format!(
            "{} free at {} but the rootfs needs {} (plus {} margin); free some space or choose another spec.dataRoot",
            human_bytes(f.disk_free_bytes),
            f.data_root,
            human_bytes(need),
            human_bytes(margin)
        ));
    }
    None
}
