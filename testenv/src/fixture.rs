//! Fixture rootfs trees for installer's tests, in sealer's CloudRootfs layout.
//!
//! - [`build_rootfs`]: the realistic one — real Debian binaries (`kubectl`, `conntrack`,
//!   containerd, runc, ctr; dockerd for the docker variant), `images/registry.tar` built by
//!   [`crate::registry_image`], `registry/` holding one small image (a stand-in `pause:3.2`
//!   made of busybox), templates using SPEC §4 built-ins and real scripts (see
//!   `testenv/fixture/rootfs/README.md`). Built once per recipe and cached.
//! - [`build_no_clean_rootfs`]: the realistic one with basefs-style scripts and no clean
//!   script at all (see [`no_clean`]).
//! - [`build_sealer_v09_rootfs`]: the realistic one in sealer v0.9 form, docker or containerd
//!   (see [`sealer_v09`]).
//! - [`minimal_rootfs`] (in place: [`minimal_dir`]): shell scripts that record the order
//!   they ran in and their environment under `$InstallRoot/var/lib/fixture`, fail or hang
//!   on request (`fixture-fail-at`, `fixture-hang-at` under the install root), a template,
//!   an arch subtree and registry data; no packages, instant.

pub mod files;
pub mod no_clean;
pub mod sealer_v09;
mod variant;

pub use no_clean::build_no_clean_rootfs;
pub use sealer_v09::build_sealer_v09_rootfs;

use crate::cache;
use crate::debs::{self, DebError, Package};
use crate::registry_image::{self, ImageError, Layer, oci};
use files::StaticFile;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Which container runtime the rootfs carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Runtime {
    /// containerd (`cri/containerd`, `ctr`, `runc`).
    #[default]
    Containerd,
    /// docker (containerd plus `dockerd`, `docker`).
    Docker,
}

/// How to build the realistic rootfs.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// The runtime.
    pub runtime: Runtime,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct RootfsInfo {
    /// The rootfs directory.
    pub dir: PathBuf,
    /// The image in `registry/`, as `repository:tag` (pull it as `<RegistryURL>/<this>`).
    pub test_image: String,
    /// The Kubernetes version in `Metadata`.
    pub kube_version: String,
}

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Packages could not be fetched.
    #[error(transparent)]
    Debs(#[from] DebError),
    /// An image could not be built.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A package lacks a file the recipe expects.
    #[error("{path} is missing from package {package}; adjust the fixture recipe")]
    Missing {
        /// The package.
        package: String,
        /// The path.
        path: String,
    },
    /// This machine's architecture has no arch subtree name.
    #[error("no rootfs arch directory for machine {0}")]
    Arch(String),
    /// I/O.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FixtureError {
    let path = path.to_path_buf();
    move |source| FixtureError::Io {
        action,
        path,
        source,
    }
}

/// The stand-in image in `registry/`.
pub const TEST_IMAGE: (&str, &str) = ("pause", "3.2");

const BASE_PACKAGES: [&str; 6] = [
    "kubernetes-client",
    "conntrack",
    "containerd",
    "runc",
    "busybox-static",
    "docker-registry",
];

/// `(package, path in package, path in the arch subtree)`.
const ARCH_FILES: [(&str, &str, &str); 6] = [
    ("kubernetes-client", "usr/bin/kubectl", "bin/kubectl"),
    ("conntrack", "usr/sbin/conntrack", "bin/conntrack"),
    ("containerd", "usr/bin/containerd", "cri/containerd"),
    (
        "containerd",
        "usr/bin/containerd-shim-runc-v2",
        "cri/containerd-shim-runc-v2",
    ),
    ("containerd", "usr/bin/ctr", "cri/ctr"),
    ("runc", "usr/sbin/runc", "cri/runc"),
];

const DOCKER_FILES: [(&str, &str, &str); 4] = [
    ("docker.io", "usr/sbin/dockerd", "cri/dockerd"),
    ("docker.io", "usr/bin/docker", "cri/docker"),
    ("docker.io", "usr/sbin/docker-proxy", "cri/docker-proxy"),
    (
        "libdevmapper1.02.1",
        "lib/x86_64-linux-gnu/libdevmapper.so.1.02.1",
        "cri/lib/libdevmapper.so.1.02.1",
    ),
];

fn write_static(dir: &Path, files: &[StaticFile]) -> Result<(), FixtureError> {
    for f in files {
        let path = dir.join(f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        fs::write(&path, f.bytes).map_err(io("write", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(f.mode))
            .map_err(io("chmod", &path))?;
    }
    Ok(())
}

fn copy_from(pkgs: &[Package], name: &str, rel: &str, dest: &Path) -> Result<(), FixtureError> {
    let pkg = pkgs
        .iter()
        .find(|p| p.resolved.name == name)
        .ok_or_else(|| FixtureError::Missing {
            package: name.into(),
            path: rel.into(),
        })?;
    let src = pkg.path(rel);
    // Follow a symlink inside the package (Debian ships some binaries as links).
    let src = fs::canonicalize(&src).map_err(|_| FixtureError::Missing {
        package: format!("{} {}", name, pkg.resolved.version),
        path: rel.into(),
    })?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    fs::copy(&src, dest).map_err(io("copy", &src))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).map_err(io("chmod", dest))?;
    Ok(())
}

/// Builds (or reuses) the realistic rootfs at `out`.
pub fn build_rootfs(out: &Path, opts: &RootfsOptions) -> Result<RootfsInfo, FixtureError> {
    let machine = std::env::consts::ARCH;
    let arch = installer_proto::rootfs::arch_dir_for(machine)
        .ok_or_else(|| FixtureError::Arch(machine.into()))?;
    let mut names: Vec<&str> = BASE_PACKAGES.to_vec();
    names.extend(
        registry_image::PACKAGES
            .iter()
            .filter(|p| !BASE_PACKAGES.contains(p)),
    );
    if opts.runtime == Runtime::Docker {
        names.extend(["docker.io", "libdevmapper1.02.1"]);
    }
    let resolved = debs::resolve(&names)?;
    // The recipe: package versions, every static file, and this builder's layout version.
    let mut parts: Vec<Vec<u8>> = vec![
        b"fixture-rootfs-v1".to_vec(),
        format!("{:?}", opts.runtime).into_bytes(),
    ];
    parts.extend(resolved.iter().map(|r| r.dir_name().into_bytes()));
    for f in files::ROOTFS.iter().chain(files::ROOTFS_DOCKER) {
        parts.push(f.path.as_bytes().to_vec());
        parts.push(f.bytes.to_vec());
    }
    parts.push(registry_image::CONFIG_YML.to_vec());
    let recipe = cache::recipe_hash(&parts);
    let info = RootfsInfo {
        dir: out.to_path_buf(),
        test_image: format!("{}:{}", TEST_IMAGE.0, TEST_IMAGE.1),
        kube_version: "v1.20.2".into(),
    };
    // The stamp sits beside the tree, not in it: everything in the tree is shipped.
    let stamp = out.with_extension("recipe");
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == recipe) {
        return Ok(info);
    }
    let started = std::time::Instant::now();
    let pkgs = debs::ensure(&resolved)?;
    let parent = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io("create", parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".fixture-rootfs-")
        .tempdir_in(parent)
        .map_err(io("create a scratch directory in", parent))?;
    let dir = tmp.path();
    write_static(dir, files::ROOTFS)?;
    if opts.runtime == Runtime::Docker {
        write_static(dir, files::ROOTFS_DOCKER)?;
    }
    for (pkg, rel, dest) in ARCH_FILES {
        copy_from(&pkgs, pkg, rel, &dir.join(arch).join(dest))?;
    }
    if opts.runtime == Runtime::Docker {
        for (pkg, rel, dest) in DOCKER_FILES {
            copy_from(&pkgs, pkg, rel, &dir.join(arch).join(dest))?;
        }
    }
    // The other architecture's subtree only carries a marker (no binaries for it here).
    for other in installer_proto::rootfs::ARCH_DIRS
        .iter()
        .filter(|a| **a != arch)
    {
        let marker = dir.join(other).join("etc/arch-marker");
        fs::create_dir_all(dir.join(other).join("etc")).map_err(io("create", &marker))?;
        fs::write(&marker, format!("{other}\n")).map_err(io("write", &marker))?;
    }

    let registry_pkg = pkgs.iter().find(|p| p.resolved.name == "docker-registry");
    let libc_pkg = pkgs.iter().find(|p| p.resolved.name == "libc6");
    let (Some(registry_pkg), Some(libc_pkg)) = (registry_pkg, libc_pkg) else {
        return Err(FixtureError::Missing {
            package: "docker-registry / libc6".into(),
            path: "-".into(),
        });
    };
    registry_image::build_registry_image_from(
        registry_pkg,
        libc_pkg,
        &dir.join("images/registry.tar"),
    )?;
    write_test_image(&pkgs, &dir.join("registry"), dir)?;

    // Replace the old tree (if any) with the new one.
    if out.exists() {
        fs::remove_dir_all(out).map_err(io("remove", out))?;
    }
    let kept = tmp.keep();
    fs::rename(&kept, out).map_err(io("rename into place", out))?;
    fs::write(&stamp, format!("{recipe}\n")).map_err(io("write", &stamp))?;
    tracing::info!(dir = %out.display(), secs = started.elapsed().as_secs_f64(), "built the fixture rootfs");
    Ok(info)
}

/// Pushes the stand-in `pause:3.2` (busybox sleeping) into a registry data directory.
fn write_test_image(
    pkgs: &[Package],
    registry_dir: &Path,
    scratch_parent: &Path,
) -> Result<(), FixtureError> {
    let busybox = pkgs
        .iter()
        .find(|p| p.resolved.name == "busybox-static")
        .ok_or_else(|| FixtureError::Missing {
            package: "busybox-static".into(),
            path: "bin/busybox".into(),
        })?;
    let mut layer = Layer::new();
    layer
        .dir("bin", 0o755)
        .file_from("bin/busybox", &busybox.path("bin/busybox"), 0o755)
        .symlink("bin/sleep", "busybox")
        .symlink("bin/sh", "busybox");
    let config = oci::ImageConfig {
        architecture: busybox.resolved.arch.clone(),
        entrypoint: vec!["/bin/sleep".into()],
        cmd: vec!["infinity".into()],
        env: vec!["PATH=/bin".into()],
        exposed_ports: Vec::new(),
        labels: [(
            "org.opencontainers.image.description".to_string(),
            "stand-in pause image for installer's tests: busybox sleeping forever, not registry.k8s.io/pause".to_string(),
        )]
        .into(),
        created_by: "testenv fixture: busybox-static from Debian".into(),
    };
    let scratch = tempfile::Builder::new()
        .prefix(".pause-")
        .tempdir_in(scratch_parent)
        .map_err(io("create a scratch directory in", scratch_parent))?;
    let blobs = oci::assemble(&config, &layer, scratch.path())
        .map_err(io("assemble the test image in", scratch.path()))?;
    registry_image::distribution::write_repository(
        &blobs,
        registry_dir,
        TEST_IMAGE.0,
        TEST_IMAGE.1,
    )
    .map_err(io("write the registry data in", registry_dir))?;
    Ok(())
}

/// The minimal rootfs where it lives in the source tree, for tests that read it in place
/// (as `--rootfs`, or to copy it).
pub fn minimal_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture/minimal")
}

/// Writes the minimal rootfs (recording scripts, no packages) to `out` and returns it.
pub fn minimal_rootfs(out: &Path) -> Result<PathBuf, FixtureError> {
    fs::create_dir_all(out).map_err(io("create", out))?;
    write_static(out, files::MINIMAL)?;
    Ok(out.to_path_buf())
}
