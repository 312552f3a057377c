//! The rootfs on the controller (SPEC §3): `spec.image` resolved to a directory (an archive
//! is unpacked once into a cache keyed by its content hash), `--overlay` directories and
//! `Config` documents layered on top, per-architecture merged trees with content hashes
//! cached across runs, and the template syntax check that runs before any host is touched.

mod config;
mod error;
mod extract;
mod image;
pub mod prune;
mod source;
mod templates;

#[cfg(test)]
mod tests;

pub use config::{config_layer, merge_yaml};
pub use error::{ImageError, RootfsError, TooLarge};
pub use extract::{Compression, LIMIT_ENV, UnpackLimits};
pub use image::ImageEnv;
pub use installer_proto::hashcache::HashCache;
pub use templates::check_templates;

use installer_proto::rootfs::{ARCH_DIRS, MergedTree};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

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
    /// `spec.image` as resolved.
    image: PathBuf,
    image_env: ImageEnv,
    hashes: Mutex<HashCache>,
    layers: Mutex<Vec<tempfile::TempDir>>,
}

/// Resolves `image` (`spec.image`; relative to `clusterfile_dir`, `~/` expanded) to a
/// directory. An image (OCI layout directory, OCI or docker archive; see [`image`]) is
/// unpacked layer by layer into `cache_dir/rootfs/image-<key>`, its config env kept with
/// it (see [`ResolvedRootfs::image_env`]). An archive is unpacked into `cache_dir/rootfs/<sha256 of the archive>`
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
    let unpacked_root = cache_dir.join("rootfs");
    let canonical = fs::canonicalize(&path).map_err(io(&path))?;
    let (found, archive) = if meta.is_dir() {
        let found = source::directory(canonical.clone(), &unpacked_root, limits)?;
        (found, None)
    } else if let Some(compression) = meta
        .is_file()
        .then(|| source::archive_kind(&path))
        .flatten()
    {
        let sha = hashes.hash(&path, &meta).map_err(io(&path))?;
        let found = source::archive(&path, compression, &unpacked_root, &sha, limits)?;
        (found, Some(canonical.clone()))
    } else {
        return Err(RootfsError::UnknownFormat {
            image: image.to_string(),
            path,
        });
    };
    let (dir, entry, image_env) = match found {
        source::Found::Dir(dir) => (dir, None, ImageEnv::default()),
        source::Found::Unpacked { entry, dir } => (dir, Some(entry), ImageEnv::default()),
        source::Found::Image(built) => (built.tree, Some(built.entry), built.env),
    };
    if let Some(entry) = &entry {
        if let Err(e) = prune::touch(entry) {
            tracing::debug!(dir = %entry.display(), error = %e, "could not mark the unpacked rootfs as used");
        }
        prune::prune(&unpacked_root, entry, std::time::SystemTime::now());
    }
    save_hashes(&mut hashes);
    Ok(ResolvedRootfs {
        dir,
        archive,
        image: canonical,
        image_env,
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

    /// The env the image's config gives (empty for a rootfs that is no image): the base of
    /// the cluster env (SPEC §2), per architecture for a multi-platform image.
    pub fn image_env(&self) -> &ImageEnv {
        &self.image_env
    }

    /// A multi-platform image has a tree for its platforms only: a host of another
    /// architecture would get an empty rootfs.
    fn check_platform(&self, arch: &str) -> Result<(), RootfsError> {
        let platforms = &self.image_env.arches;
        if platforms.is_empty() || platforms.contains_key(arch) {
            return Ok(());
        }
        let have: Vec<String> = platforms.keys().map(|a| format!("linux/{a}")).collect();
        Err(RootfsError::NoPlatform {
            image: self.image.clone(),
            arch: arch.to_string(),
            have: have.join(", "),
        })
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
        self.check_platform(arch)?;
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
        self.check_platform(arch)?;
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
