//! Directories of the operating system and of the software a cluster host runs. A
//! `dataRoot` that is one of them, or holds one of them, would put `<dataRoot>/<cluster>` on
//! top of data the product did not create (`dataRoot: /var/lib` with a cluster named
//! `docker` is `/var/lib/docker`), so it is refused before any host is contacted.

/// System directories no cluster directory may be, or be placed directly over.
pub const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/lib",
    "/usr/local/sbin",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/etcd",
    "/var/lib/kubelet",
];

/// Trees whose content is made by the kernel at run time: nothing of ours belongs there.
const VIRTUAL_TREES: &[&str] = &["/proc", "/sys", "/dev"];

/// Why `path` may not hold cluster directories, if it may not: it is a system directory, a
/// parent of one, or inside a virtual filesystem.
pub fn conflict(path: &str) -> Option<String> {
    let path = normalize(path);
    if let Some(sys) = SYSTEM_DIRS.iter().find(|s| **s == path) {
        return Some(format!("{sys} is a system directory"));
    }
    if let Some(sys) = SYSTEM_DIRS
        .iter()
        .find(|s| path == "/" || s.starts_with(&format!("{path}/")))
    {
        return Some(format!("it holds the system directory {sys}"));
    }
    VIRTUAL_TREES
        .iter()
        .find(|v| path.starts_with(&format!("{v}/")))
        .map(|v| format!("it is inside {v}, which the kernel fills"))
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_and_their_parents_conflict() {
        for bad in [
            "/",
            "/var",
            "/var/lib",
            "/var/lib/",
            "/usr",
            "/etc",
            "/opt",
            "/home",
        ] {
            assert!(conflict(bad).is_some(), "{bad}");
        }
        assert_eq!(
            conflict("/var").as_deref(),
            Some("/var is a system directory")
        );
        assert_eq!(
            conflict("/proc/1").as_deref(),
            Some("it is inside /proc, which the kernel fills")
        );
    }

    #[test]
    fn ordinary_data_roots_do_not() {
        for ok in [
            "/var/lib/sealer/data",
            "/data",
            "/srv/installer",
            "/var/lib/docker2",
            "/opt/x",
        ] {
            assert_eq!(conflict(ok), None, "{ok}");
        }
    }
}
