//! What the next apply or clean does first, before anything else: finish what a crashed
//! agent left half-done. A step's processes that outlived their agent are killed (a new
//! agent never runs next to an old step), what that step changed is recorded from its saved
//! before-snapshot, and the temporary files of interrupted atomic
//! writes are removed — every write outside the cluster directory targets a path the
//! journal named before the write began, so each leftover is found from the journal alone.

use crate::exec::leftover;
use crate::fsutil;
use crate::journal::Journal;
use crate::paths::ClusterPaths;
use crate::root::HostRoot;
use crate::steps::hosts_file::HOSTS_FILE;
use std::time::Duration;

/// Kills a dead agent's step processes and removes interrupted writes' temporary files;
/// returns what it did, for the log.
pub(crate) fn after_crash(
    root: &HostRoot,
    paths: &ClusterPaths,
    journal: &mut Journal,
) -> Result<Vec<String>, crate::error::ApplyError> {
    let mut done = Vec::new();
    if let Some(running) = journal.record.running.clone() {
        let killed = leftover::kill_all(&running, Duration::from_secs(10))
            .map_err(crate::error::ApplyError::Recover)?;
        if killed > 0 {
            done.push(format!(
                "killed {killed} process(es) of step {} left by an agent that died",
                running.step
            ));
        }
        journal.update(|r| r.running = None)?;
    }
    if let Some(note) = crate::steps::watched::recover(root, paths, journal) {
        done.push(note);
    }
    let mut targets: Vec<std::path::PathBuf> = journal
        .record
        .installed
        .keys()
        .map(|p| root.path(p))
        .collect();
    targets.push(
        crate::steps::hosts_file::hosts_path(root, journal.record.hosts.as_ref())
            .unwrap_or_else(|_| root.path(HOSTS_FILE)),
    );
    targets.extend(
        journal
            .record
            .rendered
            .keys()
            .map(|rel| paths.rootfs.join(rel)),
    );
    for target in targets {
        if fsutil::remove_temp_sibling(&target) {
            done.push(format!(
                "removed {} left by an interrupted write",
                fsutil::temp_sibling(&target).display()
            ));
        }
    }
    for line in &done {
        tracing::info!("{line}");
    }
    Ok(done)
}
