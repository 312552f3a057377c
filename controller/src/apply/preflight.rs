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
        let reason = problem(inputs, &c, &by_name).await;
        match reason {
            None => kept.push(c),
            Some(reason) => {
                HostFail::Failed {
                    phase: Phase::Preflight,
                    step: None,
                    reason,
                }
                .report(&ctx.reporter, &c.host.ip);
                super::close_all(vec![(String::new(), Ok(c))]).await;
            }
        }
    }
    kept
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
    if let Some(state) = &f.state
        && state.locked
    {
        return Some(format!(
            "another apply or clean of cluster {:?} is running on this host; wait for it to finish",
            state.cluster
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
