//! Why the rootfs cannot be used: every error names the file, archive, entry or image at
//! fault and says what to do.

use super::extract;
use std::io;
use std::path::Path;
use std::path::PathBuf;

/// Why the rootfs cannot be used. Every variant names the file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// `spec.image` names nothing.
    #[error(
        "spec.image {image:?}: {} does not exist; give a rootfs directory or a .tar, .tar.gz or .tar.zst of one, or a ClusterImage as an OCI image layout directory or an OCI or docker archive (relative paths are relative to the Clusterfile's directory)",
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
        "spec.image {image:?}: {} is neither a directory nor a .tar, .tar.gz or .tar.zst file; give the rootfs in one of those forms, or the ClusterImage as an OCI image layout directory or an OCI or docker archive (sealer save, docker save)",
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
    /// The image (an OCI layout, an OCI or docker archive) cannot be used.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A multi-platform image without the architecture of a host.
    #[error(
        "spec.image {}: it has no linux/{arch} image (it has {have}); add that platform to the image, or leave the {arch} hosts out",
        image.display()
    )]
    NoPlatform {
        /// The image as given.
        image: PathBuf,
        /// The host architecture (`amd64`/`arm64`).
        arch: String,
        /// The platforms it has.
        have: String,
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

/// Something about the image that is wrong: names the image, the file or blob, and what to
/// do.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}: {reason}", image.display())]
pub struct ImageError {
    /// The image as given (the archive or the layout directory).
    pub image: PathBuf,
    /// Which part of it: `layer "blobs/sha256/…"`, `index.json`, `the image config …`.
    pub what: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl ImageError {
    pub(crate) fn new(image: &Path, what: &str, reason: String) -> ImageError {
        ImageError {
            image: image.to_path_buf(),
            what: what.to_string(),
            reason,
        }
    }
}
