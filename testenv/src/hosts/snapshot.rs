//! What a node's system files look like, to prove a host went back to where it started.
//!
//! A snapshot lists every path under [`ROOTS`] with its type, permission bits, owner and
//! (for regular files) the sha256 of its content, or (for symlinks) its target. Times are
//! left out on purpose: rewriting a file with the same content is not a change a user
//! could notice. [`EXCLUDES`] leaves out state the machine changes by itself.

use super::{Error, Host};
use crate::docker;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The trees a snapshot covers: configuration, installed software, software state, and the
/// home directories of the users the installer logs in as.
///
/// - `/etc`, `/usr`, `/opt`, `/var/lib`: what apply and rootfs scripts install and what the
///   daemons they start create. `/lib`, `/bin` and `/sbin` are links into `/usr` on these
///   (merged-/usr) nodes, so `/lib/systemd` is `/usr/lib/systemd`, covered once.
/// - `/root` and `/home`: the controller uploads the agent to `~/.installer/agent` of the
///   SSH user (root, or `ops`/`opspw` through sudo), and scripts write there too (sealer
///   writes `/root/.kube/config`).
/// - `/var/lib/containerd`: a Docker volume of its own on every node (see
///   `hosts/node.rs`), which `find -xdev` would not enter from `/var/lib`; the container
///   runtime a rootfs starts fills it, so it is named on its own.
///
/// Not covered: `/run`, `/tmp` (tmpfs, gone at reboot), `/var/log`, `/var/cache`,
/// `/var/tmp` (logs and caches every login and service writes, including sshd's own
/// records of the installer's sessions).
pub const ROOTS: &[&str] = &[
    "/etc",
    "/usr",
    "/var/lib",
    "/var/lib/containerd",
    "/opt",
    "/root",
    "/home",
];

/// Paths left out of snapshots (`find -path` patterns; a trailing `/*` keeps the directory
/// itself and leaves out what is in it), each with the reason. Only state that changes
/// whatever apply does belongs here: nothing apply, the agent or a rootfs script writes.
pub const EXCLUDES: &[(&str, &str)] = &[
    (
        "/var/lib/systemd/random-seed",
        "written by systemd-random-seed.service at boot and at shutdown only (and skipped in \
         containers): no apply or clean boots or halts a host",
    ),
    (
        "/var/lib/sudo/lectured/*",
        "sudo's own record that a user has seen its lecture, written by the first sudo with \
         a password whoever runs it: a trace of the login, like wtmp or auth.log, which \
         clean must not erase, not something apply installs",
    ),
];

/// A node's files: path to what the path holds.
pub type Snapshot = BTreeMap<PathBuf, FileEntry>;

/// The type of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "char device",
            FileKind::BlockDevice => "block device",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        })
    }
}

/// What a snapshot records about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The entry's type.
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (e.g. `0o4755`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// sha256 of the content, hex; regular files only.
    pub sha256: Option<String>,
    /// Where a symlink points; symlinks only.
    pub link_target: Option<PathBuf>,
}

impl fmt::Display for FileEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some(hash) = &self.sha256 {
            write!(f, " sha256:{}", &hash[..hash.len().min(16)])?;
        }
        if let Some(target) = &self.link_target {
            write!(f, " -> {}", target.display())?;
        }
        Ok(())
    }
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The path exists only in the second snapshot.
    Added(PathBuf, FileEntry),
    /// The path exists only in the first snapshot.
    Removed(PathBuf, FileEntry),
    /// The path exists in both, with different entries.
    Modified {
        /// The path.
        path: PathBuf,
        /// Its entry in the first snapshot.
        before: FileEntry,
        /// Its entry in the second snapshot.
        after: FileEntry,
    },
}

impl Change {
    /// The path that changed.
    pub fn path(&self) -> &Path {
        match self {
            Change::Added(path, _) | Change::Removed(path, _) => path,
            Change::Modified { path, .. } => path,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added(path, entry) => write!(f, "+ {} ({entry})", path.display()),
            Change::Removed(path, entry) => write!(f, "- {} ({entry})", path.display()),
            Change::Modified {
                path,
                before,
                after,
            } => write!(f, "~ {} ({before} => {after})", path.display()),
        }
    }
}

/// The differences from `before` to `after`, in path order.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => changes.push(Change::Removed(path.clone(), old.clone())),
            Some(new) if new != old => changes.push(Change::Modified {
                path: path.clone(),
                before: old.clone(),
                after: new.clone(),
            }),
            Some(_) => {}
        }
    }
    for (path, new) in after {
        if !before.contains_key(path) {
            changes.push(Change::Added(path.clone(), new.clone()));
        }
    }
    changes.sort_by(|a, b| a.path().cmp(b.path()));
    changes
}

/// Takes the snapshot inside the node: one `find` for the listing, one for the hashes.
pub(super) fn take(host: &Host) -> Result<Snapshot, Error> {
    // Stay on each root's filesystem (-xdev): other mounts below (volumes, tmpfs) are
    // not the node's installed state.
    let mut listing: Vec<&str> = vec!["find"];
    listing.extend(ROOTS);
    listing.push("-xdev");
    let mut prune: Vec<&str> = vec!["("];
    for (i, (pattern, _)) in EXCLUDES.iter().enumerate() {
        if i > 0 {
            prune.push("-o");
        }
        prune.extend(["-path", pattern]);
    }
    prune.extend([")", "-prune", "-o"]);
    listing.extend(&prune);
    let mut hashing = listing.clone();
    listing.extend(["-printf", "%y\\0%m\\0%U\\0%G\\0%l\\0%p\\0"]);
    hashing.extend(["-type", "f", "-exec", "sha256sum", "--zero", "{}", "+"]);

    // The two run side by side: hashing takes most of the time, listing is cheap.
    let (listed, hashed) = std::thread::scope(|scope| {
        let listed = scope.spawn(|| run(host, &listing));
        let hashed = run(host, &hashing);
        let listed = listed
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (listed, hashed)
    });
    let (listed, hashed) = (listed?, hashed?);
    let hashes = parse_hashes(&hashed).map_err(|message| snapshot_error(host, message))?;
    parse_listing(&listed, &hashes).map_err(|message| snapshot_error(host, message))
}

fn run(host: &Host, argv: &[&str]) -> Result<Vec<u8>, Error> {
    let argv: Vec<&std::ffi::OsStr> = argv.iter().map(std::ffi::OsStr::new).collect();
    let out = docker::exec(&host.container, &argv, None)?;
    if !out.success() {
        return Err(snapshot_error(
            host,
            format!("`find` failed: {}", out.stderr_str().trim()),
        ));
    }
    Ok(out.stdout)
}

fn snapshot_error(host: &Host, message: String) -> Error {
    Error::Node {
        node: host.name.clone(),
        container: host.container.clone(),
        message: format!("snapshot: {message}"),
    }
}

/// `sha256sum --zero` lines: `<64 hex>  <path>\0`, names not escaped.
fn parse_hashes(out: &[u8]) -> Result<BTreeMap<PathBuf, String>, String> {
    let mut hashes = BTreeMap::new();
    for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        if record.len() < 67 || &record[64..66] != b"  " {
            return Err(format!(
                "unexpected sha256sum output: {:?}",
                String::from_utf8_lossy(record)
            ));
        }
        let hash = String::from_utf8_lossy(&record[..64]).into_owned();
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&record[66..]));
        hashes.insert(path, hash);
    }
    Ok(hashes)
}

/// `find -printf '%y\0%m\0%U\0%G\0%l\0%p\0'` records.
fn parse_listing(out: &[u8], hashes: &BTreeMap<PathBuf, String>) -> Result<Snapshot, String> {
    let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    // The output ends with a NUL, so splitting leaves one empty piece at the end.
    let fields = match fields.split_last() {
        Some(([], rest)) => rest,
        _ => &fields[..],
    };
    if fields.len() % 6 != 0 {
        return Err(format!(
            "find printed {} fields, not a multiple of 6",
            fields.len()
        ));
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut snapshot = Snapshot::new();
    for record in fields.chunks(6) {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(record[5]));
        let kind = match record[0] {
            b"f" => FileKind::File,
            b"d" => FileKind::Dir,
            b"l" => FileKind::Symlink,
            b"c" => FileKind::CharDevice,
            b"b" => FileKind::BlockDevice,
            b"p" => FileKind::Fifo,
            b"s" => FileKind::Socket,
            other => {
                return Err(format!(
                    "unknown file type {:?} for {}",
                    text(other),
                    path.display()
                ));
            }
        };
        let number = |b: &[u8], radix| {
            u32::from_str_radix(&text(b), radix)
                .map_err(|_| format!("bad number {:?} for {}", text(b), path.display()))
        };
        let sha256 = if kind == FileKind::File {
            // A file created between the two finds has no hash; it shows as a changed
            // entry against any other snapshot, which is what it is.
            hashes.get(&path).cloned()
        } else {
            None
        };
        let link_target = (kind == FileKind::Symlink)
            .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(record[4])));
        let entry = FileEntry {
            kind,
            mode: number(record[1], 8)?,
            uid: number(record[2], 10)?,
            gid: number(record[3], 10)?,
            sha256,
            link_target,
        };
        snapshot.insert(path, entry);
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(hash: &str) -> FileEntry {
        FileEntry {
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            sha256: Some(hash.into()),
            link_target: None,
        }
    }

    #[test]
    fn listing_and_hashes_are_parsed() {
        let hash = "a".repeat(64);
        let hashes = parse_hashes(format!("{hash}  /etc/a b\0").as_bytes()).unwrap();
        let listing = b"d\x00755\x000\x000\x00\x00/etc\x00f\x004755\x000\x0042\x00\x00/etc/a b\x00l\x00777\x000\x000\x00../x\x00/etc/l\x00";
        let snap = parse_listing(listing, &hashes).unwrap();
        assert_eq!(snap.len(), 3);
        let a = &snap[Path::new("/etc/a b")];
        assert_eq!(
            (a.kind, a.mode, a.uid, a.gid),
            (FileKind::File, 0o4755, 0, 42)
        );
        assert_eq!(a.sha256.as_deref(), Some(hash.as_str()));
        let l = &snap[Path::new("/etc/l")];
        assert_eq!(l.link_target.as_deref(), Some(Path::new("../x")));
        assert_eq!(snap[Path::new("/etc")].sha256, None);
    }

    /// Whether `find ROOTS ( -path PATTERN ... ) -prune` leaves `path` out: a pattern
    /// matches it or one of its parents. `*` matches anything, `/` included (find's
    /// `-path` is fnmatch without FNM_PATHNAME); the patterns use no other wildcard.
    fn excluded(path: &str) -> bool {
        fn matches(pattern: &[u8], text: &[u8]) -> bool {
            match pattern.split_first() {
                None => text.is_empty(),
                Some((b'*', rest)) => (0..=text.len()).any(|i| matches(rest, &text[i..])),
                Some((c, rest)) => text
                    .split_first()
                    .is_some_and(|(t, tail)| t == c && matches(rest, tail)),
            }
        }
        let mut p = Path::new(path);
        loop {
            let text = p.as_os_str().as_bytes();
            if EXCLUDES
                .iter()
                .any(|(pattern, _)| matches(pattern.as_bytes(), text))
            {
                return true;
            }
            match p.parent() {
                Some(parent) if parent != Path::new("/") => p = parent,
                _ => return false,
            }
        }
    }

    fn covered(path: &str) -> bool {
        ROOTS.iter().any(|root| Path::new(path).starts_with(root)) && !excluded(path)
    }

    #[test]
    fn snapshots_see_everything_apply_and_its_scripts_write() {
        // What the agent, the fixture rootfs scripts (with and without clean scripts), the
        // daemons they start and users' hooks write on a host. None may be left out.
        for path in [
            "/usr/local/bin/kubelet",
            "/usr/bin/kubelet",
            "/etc/systemd/system/multi-user.target.wants/containerd.service",
            "/etc/cni/net.d",
            "/etc/sysctl.conf",
            "/opt/containerd/bin",
            "/opt/fixture-daemon/plugins/registered",
            "/var/lib/containerd",
            "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
            "/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/00",
            "/var/lib/docker/image",
            "/var/lib/kubelet",
            "/var/lib/fixture-daemon/data/last-shutdown",
            "/var/lib/rootfs-scripts/kube.list",
            "/var/lib/sealer/data/c/rootfs/bin/kubelet",
            "/root/.installer/agent/installer-agent-x86_64",
            "/root/.kube/config",
            "/home/ops/.installer/agent/installer-agent-x86_64",
            // A rootfs's persistent timer, a daemon's crash dump, a script's apt-get update:
            // each would be apply's doing, so none is excluded any more.
            "/var/lib/systemd/timers/stamp-fixture.timer",
            "/var/lib/systemd/coredump/core.fixture-daemon.0",
            "/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease",
            "/var/lib/sudo",
            "/var/lib/sudo/lectured",
        ] {
            assert!(covered(path), "{path} is not in snapshots");
        }
        // Machine churn that stays out.
        for path in [
            "/var/lib/systemd/random-seed",
            "/var/lib/sudo/lectured/opspw",
        ] {
            assert!(excluded(path), "{path} is in snapshots");
        }
    }

    #[test]
    fn truncated_listing_is_an_error() {
        let err = parse_listing(b"d\x00755\x000\x00", &BTreeMap::new()).unwrap_err();
        assert!(err.contains("multiple of 6"), "{err}");
    }

    #[test]
    fn diff_names_each_change_once() {
        let mut a = Snapshot::new();
        a.insert("/etc/same".into(), file("1"));
        a.insert("/etc/changed".into(), file("1"));
        a.insert("/etc/gone".into(), file("1"));
        let mut b = a.clone();
        b.remove(Path::new("/etc/gone"));
        b.insert("/etc/changed".into(), file("2"));
        b.insert("/etc/new".into(), file("3"));
        let changes = diff(&a, &b);
        let shown: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(changes.len(), 3, "{shown:?}");
        assert!(
            matches!(&changes[0], Change::Modified { path, .. } if path == Path::new("/etc/changed"))
        );
        assert!(matches!(&changes[1], Change::Removed(p, _) if p == Path::new("/etc/gone")));
        assert!(matches!(&changes[2], Change::Added(p, _) if p == Path::new("/etc/new")));
        assert!(diff(&a, &a).is_empty());
    }
}
