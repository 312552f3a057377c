//! `images/registry.tar`: a `registry:2` image assembled from Debian packages, no pull.
//!
//! One layer holds `/usr/bin/docker-registry` from Debian's `docker-registry` package, the
//! glibc pieces its ELF header asks for (interpreter and `DT_NEEDED` libraries, taken from
//! the `libc6` package), a real `/lib64` directory with the loader symlink, `/tmp` (1777),
//! `/var/lib/registry` and `/etc/docker/registry/config.yml`. The tarball is in the combined
//! layout (see [`oci`]) so both `docker load` (engine 20.10) and `ctr images import` accept
//! it, and it is byte-for-byte reproducible: the same packages give the same digests.
//!
//! The pieces are general: [`build_image_tar`] turns any [`Layer`] and [`ImageConfig`] into
//! such a tarball, [`distribution::write_repository`] puts the same blobs into a registry's
//! storage directory, and [`add_elf_with_libs`] copies a dynamically linked binary with the
//! libraries it needs.

pub mod distribution;
pub mod elf;
pub mod layer;
pub mod oci;

pub use layer::Layer;
pub use oci::{ImageBlobs, ImageConfig, ImageInfo, ImageRef};

use crate::debs::{DebError, Package};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The name the image is loaded as (`docker.io/library/registry:2` for containerd).
pub const NAME: &str = "registry:2";

/// The Debian packages the image is made of.
pub const PACKAGES: [&str; 2] = ["docker-registry", "libc6"];

/// The registry's configuration file, `/etc/docker/registry/config.yml` in the image.
pub const CONFIG_YML: &[u8] = include_bytes!("../fixture/registry-image/config.yml");

/// The path of the registry binary inside the `docker-registry` package and the image.
const REGISTRY_BIN: &str = "usr/bin/docker-registry";

/// What can go wrong building an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The packages could not be fetched.
    #[error(transparent)]
    Debs(#[from] DebError),
    /// A binary could not be read as ELF.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// A file the image needs is not in the package it should come from.
    #[error("{path} is missing from {package}; the package's layout changed, adjust the recipe")]
    MissingFile {
        /// The package (name and version).
        package: String,
        /// The path inside it.
        path: String,
    },
    /// A library a binary needs is in none of the packages given.
    #[error(
        "{binary} needs {soname}, which none of these packages provides: {searched}; add the \
         package that ships it to the image's recipe"
    )]
    MissingLibrary {
        /// The binary (or library) that needs it.
        binary: String,
        /// The soname or interpreter path.
        soname: String,
        /// The package trees searched.
        searched: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_owned();
    move |source| ImageError::Io {
        action,
        path,
        source,
    }
}

/// Writes a one-layer image named `name` (e.g. `registry:2`) as a combined-layout tarball
/// at `out`, atomically (temporary name, fsync, rename).
pub fn build_image_tar(
    name: &str,
    config: &ImageConfig,
    layer: &Layer,
    out: &Path,
) -> Result<ImageInfo, ImageError> {
    let dir = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let scratch = tempfile::Builder::new()
        .prefix(".image-build-")
        .tempdir_in(dir)
        .map_err(io_error("create a scratch directory in", dir))?;
    let blobs = oci::assemble(config, layer, scratch.path())
        .map_err(io_error("write the layer in", scratch.path()))?;
    oci::write_image_tar(&blobs, name, out).map_err(io_error("write", out))
}

/// Adds the ELF binary `binary` to `layer` at `dest`, plus everything it needs to start:
/// its interpreter and the transitive closure of its `DT_NEEDED` libraries, looked up in
/// the unpacked package trees `libs` (under `lib/`, `usr/lib/` and their `*-linux-gnu/`
/// subdirectories, following symlinks inside each tree). Libraries keep their path, and
/// symlinks met on the way (such as `/lib64/ld-linux-x86-64.so.2`) are added as symlinks,
/// which makes their parent (`lib64/`) a real directory.
pub fn add_elf_with_libs(
    layer: &mut Layer,
    dest: &str,
    binary: &Path,
    libs: &[&Package],
) -> Result<(), ImageError> {
    layer.file_from(dest, binary, 0o755);
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<(String, PathBuf)> = vec![(dest.to_owned(), binary.to_path_buf())];
    while let Some((name, path)) = queue.pop() {
        let needs = elf::needs(&path)?;
        let mut wanted: Vec<(String, bool)> = Vec::new();
        if let Some(interp) = needs.interpreter {
            wanted.push((interp, true));
        }
        wanted.extend(needs.needed.into_iter().map(|n| (n, false)));
        for (want, is_path) in wanted {
            if !done.insert(want.clone()) {
                continue;
            }
            let found = libs.iter().find_map(|pkg| {
                let candidates = if is_path {
                    vec![want.trim_start_matches('/').to_owned()]
                } else {
                    library_dirs(&pkg.root)
                        .into_iter()
                        .map(|d| format!("{d}/{want}"))
                        .collect()
                };
                candidates
                    .into_iter()
                    .find_map(|rel| resolve_in_tree(&pkg.root, &rel))
            });
            let Some(resolved) = found else {
                return Err(ImageError::MissingLibrary {
                    binary: name,
                    soname: want,
                    searched: libs
                        .iter()
                        .map(|p| format!("{} {}", p.resolved.name, p.resolved.version))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            for (link, target) in &resolved.links {
                layer.symlink(link, target);
            }
            layer.file_from(&resolved.rel, &resolved.abs, 0o755);
            queue.push((resolved.rel.clone(), resolved.abs.clone()));
        }
    }
    Ok(())
}

/// `lib`, `usr/lib` and their `*-linux-gnu` subdirectories that exist in `root`.
fn library_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    for base in ["lib", "usr/lib", "lib64", "usr/lib64"] {
        let abs = root.join(base);
        if !abs.is_dir() {
            continue;
        }
        let mut subdirs: Vec<String> = fs::read_dir(&abs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with("-linux-gnu")
                    .then(|| format!("{base}/{name}"))
            })
            .collect();
        subdirs.sort();
        dirs.extend(subdirs);
        dirs.push(base.to_owned());
    }
    dirs
}

struct Resolved {
    /// Path of the real file, relative to the tree.
    rel: String,
    /// Where it is on disk.
    abs: PathBuf,
    /// Symlinks followed to get there: (path relative to the tree, target as stored).
    links: Vec<(String, String)>,
}

/// Follows `rel` inside the unpacked tree `root`: symlinks with absolute targets are taken
/// as relative to `root` (they point into the image, not into this machine).
fn resolve_in_tree(root: &Path, rel: &str) -> Option<Resolved> {
    let mut rel = rel.trim_start_matches('/').to_owned();
    let mut links = Vec::new();
    for _ in 0..16 {
        let abs = root.join(&rel);
        let meta = fs::symlink_metadata(&abs).ok()?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&abs).ok()?.to_string_lossy().into_owned();
            links.push((rel.clone(), target.clone()));
            rel = if let Some(absolute) = target.strip_prefix('/') {
                absolute.to_owned()
            } else {
                let parent = Path::new(&rel).parent().unwrap_or(Path::new(""));
                normalize(&parent.join(&target))?
            };
        } else if meta.is_file() {
            return Some(Resolved { rel, abs, links });
        } else {
            return None;
        }
    }
    None
}

/// Resolves `.` and `..` in a relative path without touching the disk.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// The layer and config of `registry:2` from the unpacked `docker-registry` and `libc6`
/// packages.
pub fn registry_image(
    registry: &Package,
    libc: &Package,
) -> Result<(Layer, ImageConfig), ImageError> {
    let binary = registry.path(REGISTRY_BIN);
    if !binary.is_file() {
        return Err(ImageError::MissingFile {
            package: format!("{} {}", registry.resolved.name, registry.resolved.version),
            path: REGISTRY_BIN.into(),
        });
    }
    let mut layer = Layer::new();
    add_elf_with_libs(&mut layer, REGISTRY_BIN, &binary, &[libc])?;
    layer
        .dir("tmp", 0o1777)
        .dir("var/lib/registry", 0o755)
        .file_bytes("etc/docker/registry/config.yml", CONFIG_YML, 0o644);
    let config = ImageConfig {
        architecture: registry.resolved.arch.clone(),
        entrypoint: vec![format!("/{REGISTRY_BIN}")],
        cmd: vec!["serve".into(), "/etc/docker/registry/config.yml".into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        exposed_ports: vec!["5000/tcp".into()],
        labels: BTreeMap::from([
            ("org.opencontainers.image.title".into(), "registry".into()),
            (
                "org.opencontainers.image.description".into(),
                format!(
                    "CNCF distribution registry from Debian's docker-registry {} with glibc \
                     from libc6 {}, assembled by installer's testenv (not Docker Hub's image)",
                    registry.resolved.version, libc.resolved.version
                ),
            ),
            (
                "org.opencontainers.image.version".into(),
                registry.resolved.version.clone(),
            ),
        ]),
        created_by: "testenv registry_image: docker-registry + glibc from Debian packages".into(),
    };
    Ok((layer, config))
}

/// Writes `registry:2` to `out` from already unpacked packages.
pub fn build_registry_image_from(
    registry: &Package,
    libc: &Package,
    out: &Path,
) -> Result<ImageInfo, ImageError> {
    let (layer, config) = registry_image(registry, libc)?;
    build_image_tar(NAME, &config, &layer, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("lib/x86_64-linux-gnu")).unwrap();
        fs::create_dir_all(root.join("lib64")).unwrap();
        fs::write(root.join("lib/x86_64-linux-gnu/ld.so.2"), "x").unwrap();
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so.2", root.join("lib64/ld.so"))
            .unwrap();
        std::os::unix::fs::symlink("../lib64/ld.so", root.join("lib/rel.so")).unwrap();
        let r = resolve_in_tree(root, "/lib/rel.so").unwrap();
        assert_eq!(r.rel, "lib/x86_64-linux-gnu/ld.so.2");
        assert_eq!(
            r.links,
            vec![
                ("lib/rel.so".to_owned(), "../lib64/ld.so".to_owned()),
                (
                    "lib64/ld.so".to_owned(),
                    "/lib/x86_64-linux-gnu/ld.so.2".to_owned()
                )
            ]
        );
        assert!(resolve_in_tree(root, "lib/none.so").is_none());
        assert_eq!(normalize(Path::new("a/../../b")), None);
    }
}
