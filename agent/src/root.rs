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

    /// The host path of `real`, a path under this root (the inverse of [`HostRoot::path`]).
    pub fn host_path_of(&self, real: &Path) -> String {
        let rel = match &self.prefix {
            Some(prefix) => real.strip_prefix(prefix).unwrap_or(real),
            None => real.strip_prefix("/").unwrap_or(real),
        };
        format!("/{}", rel.display())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_round_trip_through_the_root() {
        let sandbox = HostRoot::at(Path::new("/tmp/preview"));
        let real = sandbox.path("/usr/local/bin");
        assert_eq!(real, Path::new("/tmp/preview/usr/local/bin"));
        assert_eq!(sandbox.host_path_of(&real), "/usr/local/bin");
        assert_eq!(
            HostRoot::real().host_path_of(Path::new("/etc/hosts")),
            "/etc/hosts"
        );
    }
}
