//! The host-side record of what the agent did for one cluster, under
//! `<dataRoot>/<cluster>/state/`. Every change outside the cluster directory is recorded here
//! *before* it is made (write-ahead), so `clean` can undo exactly what was done even after a
//! crash half-way; steps are recorded with the hash of their inputs so a re-apply skips what
//! did not change and resumes at what failed.

use crate::fingerprint::Fingerprint;
use crate::fsutil::{self, FsError};
use installer_proto::env::Env;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The journal format version; a newer agent refuses to guess at an unknown one.
pub(crate) const JOURNAL_VERSION: u32 = 2;

/// A file the agent installed outside the cluster directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Installed {
    /// The backup of what was there before (a file name under `state/backup/`), if anything was.
    pub backup: Option<String>,
    /// What the agent left there, once written; clean keeps a file that differs from it
    /// (a person changed it) unless forced, and re-apply re-installs it.
    #[serde(default)]
    pub left: Option<Fingerprint>,
}

/// A step's processes while it runs: the next agent kills what a crashed agent's step left
/// running before it does anything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Step id.
    pub step: String,
    /// The process group of the step.
    pub pgid: i32,
    /// A value of `INSTALLER_STEP_TOKEN` in every process of the step: a reused group id
    /// is not mistaken for the step's.
    pub token: String,
}

/// The agent's own edits to `/etc/hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostsRecord {
    /// Lines the agent added (exact text).
    pub added: Vec<String>,
    /// Tagged lines that were there before and that the agent replaced; restored by clean.
    pub replaced: Vec<String>,
    /// The file did not end with a newline before the first edit.
    #[serde(default)]
    pub no_final_newline: bool,
    /// The file existed before the first edit.
    #[serde(default)]
    pub existed: bool,
    /// The file really edited, as a host path, when `/etc/hosts` is a symlink (cloud images
    /// link it elsewhere): the link stays a link, and clean edits the same file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The last result of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    /// Hash of the step's inputs when it last ran.
    pub input_hash: String,
    /// Whether that run succeeded.
    pub ok: bool,
}

/// Everything recorded for one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Format version.
    pub version: u32,
    /// Cluster name.
    pub cluster: String,
    /// Data root (host path).
    pub data_root: String,
    /// Directories the agent created outside existing ones, outermost first (host paths).
    pub created_dirs: Vec<String>,
    /// Files installed outside the cluster directory, by host path.
    pub installed: BTreeMap<String, Installed>,
    /// `/etc/hosts` edits.
    pub hosts: Option<HostsRecord>,
    /// Whether the agent (or `init-registry.sh`) started `sealer-registry`.
    pub registry_started: bool,
    /// Steps by id.
    pub steps: BTreeMap<String, StepRecord>,
    /// Every step id that ever started (clean runs a clean script only when its init ran).
    pub started: BTreeSet<String>,
    /// The env of the last apply, for clean scripts.
    pub env: Env,
    /// The step that failed last, if the last apply failed.
    pub failed_step: Option<String>,
    /// Rendered template outputs (rootfs-relative) as render-templates left them.
    #[serde(default)]
    pub rendered: BTreeMap<String, Fingerprint>,
    /// The step whose processes are running, if one is.
    #[serde(default)]
    pub running: Option<Running>,
    /// Systemd units the rootfs's scripts started or enabled.
    #[serde(default)]
    pub units: crate::units::UnitChanges,
    /// What the rootfs's scripts created, changed or removed under the watched trees.
    #[serde(default)]
    pub watch: crate::watch::Changes,
    /// The step whose before-snapshot waits in `state/watch-before` (set while a watched step
    /// runs): after a crash, the next agent still records what that step did.
    #[serde(default)]
    pub watch_pending: Option<String>,
    /// The watch settings of the pending step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_config: Option<installer_proto::watch::WatchConfig>,
    /// What the fan-out's push added to the registry's storage (rootfs-relative
    /// directories, see `installer_proto::fanout::storage_paths`), for clean to take back.
    #[serde(default)]
    pub published: BTreeSet<String>,
    /// Clean phases that finished (`clean-kube`, …): a clean run again after an
    /// interruption does not repeat them.
    #[serde(default)]
    pub cleaned: BTreeSet<String>,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file is not a journal this agent understands.
    #[error(
        "{path}: not a journal this agent can read ({reason}); a newer agent may have written it — use that build, or move the state directory aside to start over"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// What made it unreadable: the I/O error, or what the JSON parser refused.
        reason: String,
    },
}

/// An open journal: the record plus where it lives.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The record as last saved.
    pub record: Record,
    state_dir: PathBuf,
}

impl Journal {
    /// The journal file inside a state directory.
    pub(crate) fn file(state_dir: &Path) -> PathBuf {
        state_dir.join("journal.json")
    }

    /// Reads the journal in `state_dir`, if there is one.
    pub(crate) fn load(state_dir: &Path) -> Result<Option<Journal>, JournalError> {
        let path = Journal::file(state_dir);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fsutil::ctx(&path, "reading")(e).into()),
        };
        let record: Record =
            serde_json::from_slice(&text).map_err(|e| JournalError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if record.version != JOURNAL_VERSION {
            return Err(JournalError::Unreadable {
                path: path.display().to_string(),
                reason: format!("version {}", record.version),
            });
        }
        Ok(Some(Journal {
            record,
            state_dir: state_dir.to_path_buf(),
        }))
    }

    /// Opens the journal in `state_dir`, starting an empty one for `cluster` if none exists.
    pub(crate) fn open(
        state_dir: &Path,
        cluster: &str,
        data_root: &str,
    ) -> Result<Journal, JournalError> {
        if let Some(j) = Journal::load(state_dir)? {
            return Ok(j);
        }
        fs::create_dir_all(state_dir).map_err(fsutil::ctx(state_dir, "creating"))?;
        let journal = Journal {
            record: Record {
                version: JOURNAL_VERSION,
                cluster: cluster.to_string(),
                data_root: data_root.to_string(),
                ..Record::default()
            },
            state_dir: state_dir.to_path_buf(),
        };
        journal.save()?;
        Ok(journal)
    }

    /// Where backups live.
    pub(crate) fn backup_dir(&self) -> PathBuf {
        self.state_dir.join("backup")
    }

    /// Writes the record atomically.
    pub(crate) fn save(&self) -> Result<(), JournalError> {
        // Serializing plain data with string keys cannot fail; fall back to an error anyway
        // rather than panic.
        let bytes =
            serde_json::to_vec_pretty(&self.record).map_err(|e| JournalError::Unreadable {
                path: Journal::file(&self.state_dir).display().to_string(),
                reason: e.to_string(),
            })?;
        fsutil::write_atomic(&Journal::file(&self.state_dir), &bytes, 0o600)?;
        Ok(())
    }

    /// Changes the record and saves it before returning (the write-ahead step).
    pub(crate) fn update(&mut self, f: impl FnOnce(&mut Record)) -> Result<(), JournalError> {
        f(&mut self.record);
        self.save()
    }
}
