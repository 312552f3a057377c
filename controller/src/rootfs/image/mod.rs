//! `spec.image` as a ClusterImage kept as an image (SPEC §2): an OCI image layout
//! directory, an OCI archive (`sealer save`) or a docker archive (`docker save`), told apart
//! by content. The image's layers are applied in order, with whiteouts, by the same tree
//! writer and under the same rules and bounds as a rootfs archive; every blob is checked
//! against its sha256 digest first.
//!
//! A single image is the rootfs base. A multi-platform index gives `<tree>/amd64` and
//! `<tree>/arm64` over an empty base, so the rootfs contract's per-architecture subtrees
//! give each host its own platform's image. Each image's config `Env` is the base of the
//! cluster env of the hosts it is for.
//!
//! The result is cached as `<cache>/rootfs/image-<key>/{tree/, image-env.json}`: the key is
//! the archive's sha256, or for a layout directory a hash of the chosen manifests' digests.

mod blobs;
mod docker;
mod oci;

#[cfg(test)]
mod tests;

use super::RootfsError;
use super::error::ImageError;
use super::extract::{self, Compression, Stream, TreeWriter, UnpackLimits};
use blobs::{Expect, Store};
use installer_proto::env::{self, Env};
use installer_proto::manifest::sha256_bytes;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The env the image's config gives: `base` for a single image, per architecture
/// (`amd64`/`arm64`) for a multi-platform one.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageEnv {
    /// For every host.
    #[serde(default)]
    pub base: Env,
    /// For the hosts of one architecture, in place of `base`.
    #[serde(default)]
    pub arches: BTreeMap<String, Env>,
}

impl ImageEnv {
    /// The image env of hosts of `arch` (`amd64`/`arm64`).
    pub fn for_arch(&self, arch: &str) -> &Env {
        self.arches.get(arch).unwrap_or(&self.base)
    }
}

/// How an image layout is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.
    Oci,
    /// `manifest.json` naming a config and `Layers`.
    Docker,
}

/// One image to unpack.
pub(crate) struct Image {
    /// For messages: `linux/amd64`, or `the image`.
    pub(crate) name: String,
    /// The arch subtree it goes to, in a multi-platform image; `None`: the base.
    pub(crate) arch: Option<&'static str>,
    /// What identifies it: the manifest's (or for docker the config's) digest.
    pub(crate) id: String,
    /// Its layers, lowest first.
    pub(crate) layers: Vec<Layer>,
    /// Its config's `Env`.
    pub(crate) env: Env,
}

/// One layer of an image.
pub(crate) struct Layer {
    /// Its file in the layout.
    pub(crate) rel: String,
    /// What it must hash to.
    pub(crate) expect: Expect,
    /// From its media type; `None`: from its first bytes.
    pub(crate) compression: Option<Compression>,
}

/// What an image unpacked to.
pub(crate) struct Built {
    /// The cache entry (touched on use, so pruning keeps it).
    pub(crate) entry: PathBuf,
    /// The rootfs tree.
    pub(crate) tree: PathBuf,
    /// The config env.
    pub(crate) env: ImageEnv,
}

const TREE: &str = "tree";
const ENV_FILE: &str = "image-env.json";

/// The image format of the layout at `dir`, or `None` for a plain rootfs tree: an OCI
/// layout has `oci-layout` and `index.json`; a docker one a top-level `manifest.json` that
/// is a list of images naming their `Layers`.
pub(crate) fn detect(dir: &Path) -> Option<Format> {
    if dir.join("oci-layout").is_file() && dir.join("index.json").is_file() {
        return Some(Format::Oci);
    }
    docker::is_manifest(&dir.join("manifest.json")).then_some(Format::Docker)
}

/// The images of the layout in `store`: one, or one per architecture.
fn images(store: &Store, format: Format) -> Result<Vec<Image>, ImageError> {
    match format {
        Format::Oci => oci::images(store),
        Format::Docker => docker::images(store),
    }
}

/// The image in the layout directory `dir` (given by the user as `spec.image`), unpacked
/// into `<root>/image-<key>` unless an earlier run did.
pub(crate) fn from_layout_dir(
    dir: &Path,
    format: Format,
    root: &Path,
    limits: &UnpackLimits,
) -> Result<Built, RootfsError> {
    let store = Store::open(dir, dir, None)?;
    let images = images(&store, format)?;
    let ids: Vec<String> = images
        .iter()
        .map(|i| format!("{}={}\n", i.arch.unwrap_or("base"), i.id))
        .collect();
    let key = sha256_bytes(ids.concat().as_bytes());
    if let Some(built) = cached(root, &key)? {
        return Ok(built);
    }
    unpack(&store, &images, root, &key, limits)
}

/// The image in `layout` (an archive's unpacked content; `in_archive` names the layout's
/// directory inside it), unpacked into `<root>/image-<key>` (`key`: the archive's sha256).
pub(crate) fn from_archive(
    layout: &Path,
    archive: &Path,
    in_archive: &str,
    format: Format,
    root: &Path,
    key: &str,
    limits: &UnpackLimits,
) -> Result<Built, RootfsError> {
    let store = Store::open(layout, archive, Some(in_archive))?;
    let images = images(&store, format)?;
    unpack(&store, &images, root, key, limits)
}

/// The image cached under `key` by an earlier run, if any.
pub(crate) fn cached(root: &Path, key: &str) -> Result<Option<Built>, RootfsError> {
    let entry = root.join(format!("image-{key}"));
    let tree = entry.join(TREE);
    if !tree.is_dir() {
        return Ok(None);
    }
    let file = entry.join(ENV_FILE);
    let broken = |why: String| {
        RootfsError::Image(ImageError::new(
            &file,
            "the cached image env",
            format!("{why}; remove {} and run again", entry.display()),
        ))
    };
    let text = fs::read(&file).map_err(|e| broken(e.to_string()))?;
    let env: ImageEnv = serde_json::from_slice(&text).map_err(|e| broken(e.to_string()))?;
    tracing::debug!(dir = %entry.display(), "image already unpacked");
    Ok(Some(Built { entry, tree, env }))
}

/// Applies each image's layers into a staged tree and places it at `<root>/image-<key>`.
fn unpack(
    store: &Store,
    images: &[Image],
    root: &Path,
    key: &str,
    limits: &UnpackLimits,
) -> Result<Built, RootfsError> {
    let staged = extract::staging_dir(root)?;
    let result = unpack_into(store, images, staged.path(), limits);
    let env = match result {
        Ok(env) => env,
        Err(e) => {
            extract::discard(staged);
            return Err(e);
        }
    };
    let entry = root.join(format!("image-{key}"));
    extract::place(staged, &entry)?;
    Ok(Built {
        tree: entry.join(TREE),
        entry,
        env,
    })
}

fn unpack_into(
    store: &Store,
    images: &[Image],
    staged: &Path,
    limits: &UnpackLimits,
) -> Result<ImageEnv, RootfsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Io { path, source }
    };
    let tree = staged.join(TREE);
    let mut env = ImageEnv::default();
    for image in images {
        let dest = match image.arch {
            Some(arch) => {
                env.arches.insert(arch.to_string(), image.env.clone());
                tree.join(arch)
            }
            _ => {
                env.base = image.env.clone();
                tree.clone()
            }
        };
        fs::create_dir_all(&dest).map_err(io(&dest))?;
        tracing::info!(image = %store.image.display(), platform = %image.name, layers = image.layers.len(), "unpacking image");
        let mut writer = TreeWriter::new(&dest, limits)?;
        for layer in &image.layers {
            // Checked whole before a byte of it is applied.
            store.verify(&layer.rel, "layer", &layer.expect)?;
            let reader = store.layer(&layer.rel, layer.compression)?;
            writer.apply(reader, &store.label(&layer.rel), Stream::Layer)?;
        }
        writer.finish()?;
    }
    let file = staged.join(ENV_FILE);
    let text = serde_json::to_vec_pretty(&env).map_err(|e| RootfsError::Io {
        path: file.clone(),
        source: e.into(),
    })?;
    fs::write(&file, text).map_err(io(&file))?;
    Ok(env)
}

/// A config's `Env` (`KEY=VALUE` entries, a repeated key keeping its last value) as an env;
/// the checks are those of `spec.env` (a key that is not a shell name reaches templates
/// only, a NUL in a value is refused).
pub(crate) fn config_env(store: &Store, what: &str, entries: &[String]) -> Result<Env, ImageError> {
    let mut out = Env::new();
    for entry in entries {
        let err = |why: String| {
            ImageError::new(
                &store.image,
                what,
                format!("Env entry {entry:?}: {why}; rebuild the image with a valid ENV"),
            )
        };
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| err("not KEY=VALUE".into()))?;
        if !env::is_template_key(key) {
            return Err(err(format!("{key:?} cannot be an env key")));
        }
        env::check_value(key, value).map_err(|e| err(e.to_string()))?;
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// The hex of a `sha256:<hex>` digest, checked to be one.
pub(crate) fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}
