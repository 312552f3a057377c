//! The agent's own files on a host: root's verified copy in
//! [`ROOT_AGENT_DIR`](installer_proto::plan::ROOT_AGENT_DIR) and the login user's upload in
//! `~/.installer/agent/` (named by the launcher in `INSTALLER_AGENT_UPLOAD`). A clean that
//! finished removes every build in both (earlier ones too) and the directories when they are
//! left empty.

use super::{CleanRequest, Cleaner};
use installer_proto::plan::{AGENT_UPLOAD_DIR, AGENT_UPLOAD_VAR, ROOT_AGENT_DIR};
use std::fs;
use std::path::{Path, PathBuf};

/// Deletes the agent builds the controller put on this host.
pub(super) fn finish_agent(cleaner: &mut Cleaner<'_>, req: &CleanRequest) {
    if !req.remove_agent {
        return;
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .filter(|d| d.ends_with(AGENT_UPLOAD_DIR) || d == Path::new(ROOT_AGENT_DIR))
    {
        dirs.push(dir);
    }
    if let Some(dir) = std::env::var_os(AGENT_UPLOAD_VAR)
        .map(PathBuf::from)
        .and_then(|u| u.parent().map(Path::to_path_buf))
        .filter(|d| d.ends_with(AGENT_UPLOAD_DIR) && !dirs.contains(d))
    {
        dirs.push(dir);
    }
    for dir in dirs {
        remove_builds(cleaner, &dir);
        // The directory, and its parent (`~/.installer`, `/var/lib/installer-agent`), go
        // only when nothing else is in them.
        if fs::remove_dir(&dir).is_ok()
            && let Some(top) = dir.parent()
        {
            let _ = fs::remove_dir(top);
        }
    }
}

fn remove_builds(cleaner: &mut Cleaner<'_>, dir: &Path) {
    let builds: Vec<PathBuf> = fs::read_dir(dir)
        .map(|items| {
            items
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("installer-agent-"))
                })
                .collect()
        })
        .unwrap_or_default();
    for build in builds {
        match fs::remove_file(&build) {
            Ok(()) => cleaner.undone(build.display().to_string()),
            Err(e) => cleaner.not_undone(build.display().to_string(), e.to_string()),
        }
    }
}
