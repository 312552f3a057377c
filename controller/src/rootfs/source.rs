//! What `spec.image` is, told by content: a rootfs directory, an image layout directory,
//! or an archive (named `.tar`, `.tar.gz`, `.tar.zst`, or anything whose first bytes are a
//! tar, gzip or zstd stream) holding either. An archive is unpacked once into the cache; an
//! image becomes its own cache entry (see [`super::image`]).

use super::RootfsError;
use super::extract::{self, Compression, UnpackLimits};
use super::image::{self, Built};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the rootfs tree of `spec.image` is.
pub(super) enum Found {
    /// The user's own directory.
    Dir(PathBuf),
    /// A plain rootfs archive unpacked to the cache entry `entry`; the tree is `dir` (the
    /// entry, or its single top directory).
    Unpacked {
        /// The cache entry.
        entry: PathBuf,
        /// The tree.
        dir: PathBuf,
    },
    /// An image.
    Image(Built),
}

/// `spec.image` given as a directory (`dir`, canonical).
pub(super) fn directory(
    dir: PathBuf,
    root: &Path,
    limits: &UnpackLimits,
) -> Result<Found, RootfsError> {
    Ok(match image::detect(&dir) {
        Some(format) => Found::Image(image::from_layout_dir(&dir, format, root, limits)?),
        None => Found::Dir(dir),
    })
}

/// The compression of the archive at `path`: by its name, else by its first bytes; `None`
/// when it is no archive.
pub(super) fn archive_kind(path: &Path) -> Option<Compression> {
    if let Some(c) = Compression::from_name(path) {
        return Some(c);
    }
    let mut head = Vec::with_capacity(512);
    fs::File::open(path)
        .ok()?
        .take(512)
        .read_to_end(&mut head)
        .ok()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if head.get(257..262) == Some(b"ustar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// The archive `path` (content hash `sha`): an image's cache entry when an earlier run
/// built one, else the archive unpacked into `<root>/<sha>` (reused when there), turned
/// into an image's entry when it holds an image layout.
pub(super) fn archive(
    path: &Path,
    compression: Compression,
    root: &Path,
    sha: &str,
    limits: &UnpackLimits,
) -> Result<Found, RootfsError> {
    if let Some(built) = image::cached(root, sha)? {
        return Ok(Found::Image(built));
    }
    let plain = root.join(sha);
    if !plain.is_dir() {
        let staged = extract::unpack_staged(path, compression, root, limits)?;
        let (layout, prefix) = layout_of(staged.path());
        if let Some(format) = image::detect(&layout) {
            // The layout is only read to build the image's tree; its blobs are not kept.
            let built = image::from_archive(&layout, path, &prefix, format, root, sha, limits);
            extract::discard(staged);
            return Ok(Found::Image(built?));
        }
        extract::place(staged, &plain)?;
    }
    let (dir, prefix) = layout_of(&plain);
    // An image a run before this version unpacked as a plain tree.
    if let Some(format) = image::detect(&dir) {
        let built = image::from_archive(&dir, path, &prefix, format, root, sha, limits)?;
        return Ok(Found::Image(built));
    }
    Ok(Found::Unpacked { entry: plain, dir })
}

/// The tree of an unpacked archive (its single top directory, if that is all it holds) and
/// how that directory is named inside the archive (`top/`, or `""`).
fn layout_of(unpacked: &Path) -> (PathBuf, String) {
    match single_top_dir(unpacked) {
        Some(top) => {
            let name = top
                .file_name()
                .map(|n| format!("{}/", n.to_string_lossy()))
                .unwrap_or_default();
            (top, name)
        }
        None => (unpacked.to_path_buf(), String::new()),
    }
}

/// The one directory inside `dir` when it holds exactly one entry, a directory whose name is
/// not part of the rootfs layout (so a rootfs holding only `bin/` stays as it is).
pub(super) fn single_top_dir(dir: &Path) -> Option<PathBuf> {
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
        "blobs",
    ];
    let is_layout = name.to_str().is_some_and(|n| layout.contains(&n));
    (only.file_type().ok()?.is_dir() && !is_layout).then(|| only.path())
}
