//! A docker archive (`docker save`): `manifest.json` lists images, each naming its config
//! (`<hex>.json`, or `blobs/sha256/<hex>` since docker 25) and its layer tars
//! (`<id>/layer.tar`, or `blobs/sha256/<hex>`). The config is checked against the digest
//! its name carries; each layer against the config's `rootfs.diff_ids`, which are the
//! sha256 of the uncompressed layer.

use super::blobs::{Expect, Store};
use super::{Image, ImageError, Layer, config_env, sha256_hex};
use oci_spec::image::ImageConfiguration;
use std::io::Read;
use std::path::Path;

/// One image of `manifest.json`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Whether `path` is a docker `manifest.json`: a list of objects naming `Layers`. Read only
/// as far as a small file goes: a rootfs may hold a large, unrelated `manifest.json`.
pub(super) fn is_manifest(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut bytes = Vec::new();
    if file.take(1 << 20).read_to_end(&mut bytes).is_err() {
        return false;
    }
    match serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) {
        Ok(list) => {
            !list.is_empty()
                && list
                    .iter()
                    .all(|v| v.get("Layers").is_some_and(serde_json::Value::is_array))
        }
        Err(_) => false,
    }
}

/// The one image of the archive.
pub(super) fn images(store: &Store) -> Result<Vec<Image>, ImageError> {
    let entries: Vec<Entry> = store.json("manifest.json", "the docker manifest", None)?;
    let [entry] = entries.as_slice() else {
        let tags: Vec<String> = entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect();
        return Err(ImageError::new(
            &store.image,
            "manifest.json",
            format!(
                "it holds {} images ({}); save one image per archive (docker save IMAGE)",
                entries.len(),
                if tags.is_empty() {
                    "untagged".to_string()
                } else {
                    tags.join(", ")
                }
            ),
        ));
    };
    let config_rel = entry.config.as_str();
    let name_hex = config_rel
        .rsplit('/')
        .next()
        .map(|n| n.strip_suffix(".json").unwrap_or(n))
        .and_then(|n| sha256_hex(&format!("sha256:{n}")).map(str::to_string))
        .ok_or_else(|| {
            ImageError::new(
                &store.image,
                &format!("image config {config_rel:?}"),
                "its name is not its sha256 digest, so it cannot be checked; save the image again with docker save".into(),
            )
        })?;
    let expect = Expect::File {
        sha256: name_hex.clone(),
        size: None,
    };
    let config: ImageConfiguration = store.json(config_rel, "image config", Some(&expect))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(ImageError::new(
            &store.image,
            "manifest.json",
            format!(
                "it names {} layers, but the image config {config_rel:?} has {} diff_ids; save the image again",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (rel, diff_id) in entry.layers.iter().zip(diff_ids) {
        let hex = sha256_hex(diff_id).ok_or_else(|| {
            ImageError::new(
                &store.image,
                &format!("image config {config_rel:?}"),
                format!("diff_id {diff_id:?} is not a sha256 digest; only sha256 is supported"),
            )
        })?;
        layers.push(Layer {
            rel: rel.clone(),
            expect: Expect::Uncompressed {
                sha256: hex.to_string(),
            },
            compression: None,
        });
    }
    let env = config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    let env = config_env(store, &format!("image config {config_rel:?}"), &env)?;
    let (os, arch) = (config.os().to_string(), config.architecture().to_string());
    Ok(vec![Image {
        name: format!("{os}/{arch}"),
        // One image per archive: the base for every host.
        arch: None,
        id: format!("sha256:{name_hex}"),
        layers,
        env,
    }])
}
