//! The host's filesystem as the agent sees it. With `--root DIR`, `DIR` stands for `/` for
//! every path the agent writes (bin, configs, hosts file, state), which is how tests and
//! previews run without touching the real system.

use std::path::{Path, PathBuf};

/// Maps absolute host paths to where the agent really reads and writes them.
#[derive(Clone, Debug)]
pub struct HostRoot {
    prefix: Option<PathBuf>,
}

impl HostRoot {
    /// The real `/`.
    pub fn real() -> HostRoot {
        HostRoot { prefix: None }
    }

    /// `dir` standing for `/`.
    pub fn at(dir: &Path) -> HostRoot {
        HostRoot {
            prefix: Some(dir.to_path_buf()),
        }
    }

    /// Where the absolute host path `abs` really is.
    pub fn path(&self, abs: &str) -> PathBuf {
        match &self.prefix {
            None => PathBuf::from(abs),
            Some(prefix) => prefix.join(abs.trim_start_matches('/')),
        }
    }

    /// The value scripts get as `InstallRoot`: empty for the real `/`.
    pub fn install_root(&self) -> String {
        self.prefix
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Whether this is the real `/` (containers and services may be touched).
    pub fn is_real(&self) -> bool {
        self.prefix.is_none()
    }
}
