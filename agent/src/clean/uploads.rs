//! The uploaded agent builds: the controller puts them in the login user's
//! `~/.installer/agent/`; a clean that finished removes every build there (earlier ones
//! too) and the directories when they are left empty.

use super::{CleanRequest, Cleaner};
use std::fs;

/// Deletes the running agent binary when the controller uploaded it (and the upload
/// directories when they are left empty).
pub(super) fn finish_agent(cleaner: &mut Cleaner<'_>, req: &CleanRequest) {
    if !req.remove_agent {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let uploaded = exe
        .parent()
        .is_some_and(|d| d.ends_with(installer_proto::plan::AGENT_UPLOAD_DIR));
    if !uploaded {
        return;
    }
    // Every build the controller uploaded lives here; earlier builds go too.
    let builds: Vec<std::path::PathBuf> = exe
        .parent()
        .and_then(|d| fs::read_dir(d).ok())
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
    if let Some(agent_dir) = exe.parent() {
        let _ = fs::remove_dir(agent_dir);
        if let Some(top) = agent_dir.parent() {
            let _ = fs::remove_dir(top);
        }
    }
}
