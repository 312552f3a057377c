//! Writes an image straight into the on-disk layout of distribution's `filesystem` storage
//! driver (the `registry:2` server), so a registry started on that directory serves it
//! without anything being pushed:
//!
//! ```text
//! docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data
//! docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link            (config + layers)
//! docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
//! docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
//! docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
//! ```
//!
//! Each `link` file holds the digest (`sha256:<hex>`) with no newline, as the registry
//! writes them.

use super::oci::ImageBlobs;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The path of a blob's data file under a registry root directory.
pub fn blob_data_path(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    root.join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2.min(hex.len())])
        .join(hex)
        .join("data")
}

/// Stores `blobs` as `<repository>:<tag>` under the registry root `root` (the directory
/// the registry's `rootdirectory` names, mounted at `/var/lib/registry` in `registry:2`).
/// Existing blobs and other repositories are left alone, so several images can share a
/// root.
pub fn write_repository(
    blobs: &ImageBlobs,
    root: &Path,
    repository: &str,
    tag: &str,
) -> io::Result<()> {
    if repository
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
        || tag.is_empty()
        || tag.contains('/')
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a valid repository:tag for a registry: {repository}:{tag}"),
        ));
    }
    write_blob_file(root, &blobs.layer.digest, &blobs.layer.path)?;
    write_blob_bytes(root, &blobs.config_digest, &blobs.config)?;
    write_blob_bytes(root, &blobs.manifest_digest, &blobs.manifest)?;

    let repo = root
        .join("docker/registry/v2/repositories")
        .join(repository);
    for digest in [&blobs.layer.digest, &blobs.config_digest] {
        link(&repo.join("_layers"), digest)?;
    }
    link(&repo.join("_manifests/revisions"), &blobs.manifest_digest)?;
    let tag_dir = repo.join("_manifests/tags").join(tag);
    write_link(&tag_dir.join("current/link"), &blobs.manifest_digest)?;
    link(&tag_dir.join("index"), &blobs.manifest_digest)?;
    Ok(())
}

/// `<dir>/sha256/<hex>/link` holding the digest.
fn link(dir: &Path, digest: &str) -> io::Result<()> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    write_link(&dir.join("sha256").join(hex).join("link"), digest)
}

fn write_link(path: &Path, digest: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, digest)
}

fn write_blob_bytes(root: &Path, digest: &str, bytes: &[u8]) -> io::Result<()> {
    let path = blob_data_path(root, digest);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

fn write_blob_file(root: &Path, digest: &str, source: &Path) -> io::Result<()> {
    let path = blob_data_path(root, digest);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(source, path).map(drop)
}
