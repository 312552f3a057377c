//! The rootfs on the controller (SPEC §3): `spec.image` resolved to a directory (an archive
//! is unpacked once into a cache keyed by its content hash), `--overlay` directories and
//! `Config` documents layered on top, per-architecture merged trees with content hashes
//! cached across runs, and the template syntax check that runs before any host is touched.

mod config;
mod extract;
pub mod prune;
mod templates;

#[cfg(test)]
mod tests;

pub use config::{config_layer, merge_yaml};
pub use extract::{Compression, LIMIT_ENV, UnpackLimits};
pub use installer_proto::hashcache::HashCache;
pub use templates::check_templates;

use installer_proto::rootfs::{ARCH_DIRS, MergedTree};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Why the rootfs cannot be used. Every variant names the file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// `spec.image` names nothing.
    #[error(
        "spec.image {image:?}: {} does not exist; give a rootfs directory or a .tar, .tar.gz or .tar.zst of one (relative paths are relative to the Clusterfile's directory)",
        path.display()
    )]
    NotFound {
        /// As written.
        image: String,
        /// As resolved.
        path: PathBuf,
    },
    /// `spec.image` is a file of another kind.
    #[error(
        "spec.image {image:?}: {} is neither a directory nor a .tar, .tar.gz or .tar.zst file; give the rootfs in one of those forms",
        path.display()
    )]
    UnknownFormat {
        /// As written.
        image: String,
        /// As resolved.
        path: PathBuf,
    },
    /// An archive entry that would escape or is not a plain tree.
    #[error(
        "{}: entry {entry}: {reason}; the archive must hold a plain rootfs tree whose paths and links stay inside it",
        archive.display()
    )]
    UnsafeEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's name as stored, quoted (control characters and bytes that are not
        /// UTF-8 escaped).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry could not be written (the archive wants a directory where it put a file,
    /// the disk is full, …).
    #[error("{}: entry {entry}: unpacking it to {}: {source}", archive.display(), path.display())]
    Unpack {
        /// The archive.
        archive: PathBuf,
        /// The entry's name as stored, quoted.
        entry: String,
        /// Where it was being written.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The archive cannot be read.
    #[error("{}: {source} ({at}); check that the file is a complete archive of the kind its name says", archive.display())]
    Archive {
        /// The archive.
        archive: PathBuf,
        /// Where in the archive: `at byte N of the tar stream, after entry "x"`.
        at: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The archive unpacks to more than the limit or the free space allows.
    #[error(transparent)]
    TooLarge(Box<TooLarge>),
    /// The unpack limit from the environment does not parse.
    #[error(
        "{}={value:?}: not a size; give bytes, or a number with K, M, G or T (powers of 1024), e.g. 200G",
        extract::LIMIT_ENV
    )]
    Limit {
        /// The value as set.
        value: String,
    },
    /// An `--overlay` that is not a directory.
    #[error(
        "--overlay {}: not a directory; give a directory laid out like the rootfs (e.g. holding scripts/preHook.sh)",
        .0.display()
    )]
    Overlay(PathBuf),
    /// A `kind: Config` cannot be applied.
    #[error("Config {name:?} (spec.path {path}): {reason}")]
    Config {
        /// `metadata.name`.
        name: String,
        /// `spec.path`.
        path: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// A template does not parse.
    #[error("{message} (file {})", file.display())]
    Template {
        /// The file on the controller the template came from (base, arch subtree or layer).
        file: PathBuf,
        /// `rootfs path:line:col: what is wrong` from the parser.
        message: String,
    },
    /// Forming the merged tree failed (names the path).
    #[error(transparent)]
    Merge(#[from] installer_proto::rootfs::RootfsError),
    /// Local I/O failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// How far an unpack got when a bound stopped it (see [`RootfsError::TooLarge`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: entry {entry}: unpacking stopped, {reason}: {unpacked} unpacked so far, {free} free at {} (keeping {keep_free} free), limit {limit}; free disk space, raise the limit with {}=SIZE (e.g. 200G), or give spec.image as an unpacked directory",
    archive.display(),
    dir.display(),
    extract::LIMIT_ENV
)]
pub struct TooLarge {
    /// The archive.
    pub archive: PathBuf,
    /// The entry being unpacked, quoted.
    pub entry: String,
    /// Which bound it hit.
    pub reason: String,
    /// File content unpacked before it stopped.
    pub unpacked: String,
    /// Free space at `dir`.
    pub free: String,
    /// Where archives are unpacked.
    pub dir: PathBuf,
    /// The size limit.
    pub limit: String,
    /// The free space an unpack leaves.
    pub keep_free: String,
}

/// Where unpacked archives and the hash cache live: `$XDG_CACHE_HOME/installer`, else
/// `~/.cache/installer`, else a directory under the system temp dir.
pub fn cache_dir() -> PathBuf {
    crate::home::xdg_dir("XDG_CACHE_HOME", ".cache", "cache")
}

/// The rootfs as a local directory, plus what the run keeps alive for it (the hash cache,
/// the temporary `Config` layers).
#[derive(Debug)]
pub struct ResolvedRootfs {
    dir: PathBuf,
    archive: Option<PathBuf>,
    hashes: Mutex<HashCache>,
    layers: Mutex<Vec<tempfile::TempDir>>,
}

/// Resolves `image` (`spec.image`; relative to `clusterfile_dir`, `~/` expanded) to a
/// directory. An archive is unpacked into `cache_dir/rootfs/<sha256 of the archive>`
/// unless an earlier run already did; the archive's hash itself is cached by size and mtime.
/// Unpacked trees no run used for [`prune::UNUSED_FOR`] are removed.
/// An archive holding a single top-level directory (`tar czf r.tgz myrootfs/`) resolves to
/// that directory.
///
/// The unpack is bounded by [`UnpackLimits::from_env`].
pub fn resolve(
    image: &str,
    clusterfile_dir: &Path,
    cache_dir: &Path,
) -> Result<ResolvedRootfs, RootfsError> {
    resolve_with(
        image,
        clusterfile_dir,
        cache_dir,
        &UnpackLimits::from_env()?,
    )
}

/// [`resolve`] with explicit unpack limits.
pub fn resolve_with(
    image: &str,
    clusterfile_dir: &Path,
    cache_dir: &Path,
    limits: &UnpackLimits,
) -> Result<ResolvedRootfs, RootfsError> {
    let path = expand(image, clusterfile_dir);
    let meta = fs::metadata(&path).map_err(|_| RootfsError::NotFound {
        image: image.to_string(),
        path: path.clone(),
    })?;
    let mut hashes = load_hashes(&cache_dir.join("hashes.json"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| RootfsError::Io { path: p, source }
    };
    let (dir, archive) = if meta.is_dir() {
        (fs::canonicalize(&path).map_err(io(&path))?, None)
    } else if let Some(compression) = meta
        .is_file()
        .then(|| Compression::from_name(&path))
        .flatten()
    {
        let sha = hashes.hash(&path, &meta).map_err(io(&path))?;
        let unpacked_root = cache_dir.join("rootfs");
        let unpacked = extract::unpack_cached(&path, compression, &unpacked_root, &sha, limits)?;
        if let Err(e) = prune::touch(&unpacked) {
            tracing::debug!(dir = %unpacked.display(), error = %e, "could not mark the unpacked rootfs as used");
        }
        prune::prune(&unpacked_root, &unpacked, std::time::SystemTime::now());
        let dir = single_top_dir(&unpacked).unwrap_or(unpacked);
        (dir, Some(fs::canonicalize(&path).map_err(io(&path))?))
    } else {
        return Err(RootfsError::UnknownFormat {
            image: image.to_string(),
            path,
        });
    };
    save_hashes(&mut hashes);
    Ok(ResolvedRootfs {
        dir,
        archive,
        hashes: Mutex::new(hashes),
        layers: Mutex::new(Vec::new()),
    })
}

/// The hash cache at `file`; an unusable one is reported and replaced by an empty one.
fn load_hashes(file: &Path) -> HashCache {
    HashCache::load(file).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring unreadable hash cache");
        HashCache::empty(file)
    })
}

/// Saves the hash cache, creating its directory; a failure costs the next run time only.
fn save_hashes(cache: &mut HashCache) {
    if !cache.has_changes() {
        return;
    }
    let dir = cache.file().parent().map(Path::to_path_buf);
    let saved = dir
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| cache.save());
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not save the hash cache; the next run will hash again");
    }
}

fn expand(image: &str, base: &Path) -> PathBuf {
    crate::home::expand_env(image).unwrap_or_else(|| base.join(image))
}

/// The one directory inside `dir` when it holds exactly one entry, a directory whose name is
/// not part of the rootfs layout (so a rootfs holding only `bin/` stays as it is).
fn single_top_dir(dir: &Path) -> Option<PathBuf> {
    let mut entries = fs::read_dir(dir).ok()?;
    let only = entries.next()?.ok()?;
    if entries.next().is_some() {
        return None;
    }
    let name = only.file_name();
    let layout = [
        "bin",
        "etc",
        "scripts",
        "images",
        "registry",
        "statics",
        "plugins",
        "applications",
        "manifests",
        "charts",
        "rootfs",
        "amd64",
        "arm64",
        "cri",
    ];
    let is_layout = name.to_str().is_some_and(|n| layout.contains(&n));
    (only.file_type().ok()?.is_dir() && !is_layout).then(|| only.path())
}

/// Checks that every overlay is an existing directory.
pub fn check_overlays(overlays: &[PathBuf]) -> Result<(), RootfsError> {
    match overlays.iter().find(|o| !o.is_dir()) {
        Some(o) => Err(RootfsError::Overlay(o.clone())),
        None => Ok(()),
    }
}

impl ResolvedRootfs {
    /// The rootfs directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The archive it was unpacked from, if any.
    pub fn archive(&self) -> Option<&Path> {
        self.archive.as_deref()
    }

    /// The architectures the rootfs has subtrees for; `["amd64"]` standing for "any" when
    /// it has none (the tree is then the same for every host). A subtree that is a link
    /// counts, unfollowed: merging that arch then checks where it leads.
    pub fn arches(&self) -> Vec<&'static str> {
        let present: Vec<&'static str> = ARCH_DIRS
            .iter()
            .copied()
            .filter(|a| {
                fs::symlink_metadata(self.dir.join(a))
                    .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink())
            })
            .collect();
        if present.is_empty() {
            vec![ARCH_DIRS[0]]
        } else {
            present
        }
    }

    /// The merged tree for `arch` (`amd64`/`arm64`) with `layers` on top (overlays, then
    /// the Config layer), content hashes from the persistent cache.
    pub fn merged(&self, arch: &str, layers: &[PathBuf]) -> Result<MergedTree, RootfsError> {
        check_overlays(layers)?;
        // A panic while hashing cannot leave the cache inconsistent (records are inserted
        // whole), so a poisoned lock is still usable.
        let mut cache = self.hashes.lock().unwrap_or_else(PoisonError::into_inner);
        let (hits, misses) = (cache.hits, cache.misses);
        let tree = MergedTree::merge(&self.dir, arch, layers, &mut |p, m| cache.hash(p, m))?;
        tracing::debug!(
            arch,
            cached = cache.hits - hits,
            hashed = cache.misses - misses,
            "merged rootfs"
        );
        save_hashes(&mut cache);
        Ok(tree)
    }

    /// The merged tree without content hashes: what is where, for checks that read only a
    /// few files.
    pub(crate) fn walk(&self, arch: &str, layers: &[PathBuf]) -> Result<MergedTree, RootfsError> {
        check_overlays(layers)?;
        Ok(MergedTree::merge(&self.dir, arch, layers, &mut |_, _| {
            Ok(String::new())
        })?)
    }

    /// Keeps a temporary layer alive as long as the rootfs is.
    fn keep_layer(&self, dir: tempfile::TempDir) {
        self.layers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir);
    }
}

/// [`ResolvedRootfs::merged`] as a free function.
pub fn merge_for(
    resolved: &ResolvedRootfs,
    arch: &str,
    layers: &[PathBuf],
) -> Result<MergedTree, RootfsError> {
    resolved.merged(arch, layers)
}
