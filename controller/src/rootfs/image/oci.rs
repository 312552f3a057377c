//! An OCI image layout (image-spec `image-layout.md`): `index.json` lists manifests, or
//! indexes of them (docker's and sealer's multi-platform images), each naming a config and
//! its layers by digest under `blobs/<alg>/<hex>`.

use super::blobs::{Expect, Store};
use super::{Image, ImageError, Layer, config_env, sha256_hex};
use crate::rootfs::extract::Compression;
use installer_proto::rootfs::arch_dir_for;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

/// How deep indexes may nest: real images have one index, or one inside the layout's.
const MAX_DEPTH: usize = 4;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The images of the layout: the single one it holds, or one per architecture (amd64,
/// arm64) of a multi-platform index; platforms of other architectures are left out.
pub(super) fn images(store: &Store) -> Result<Vec<Image>, ImageError> {
    let index: ImageIndex = store.json("index.json", "the image index", None)?;
    let mut manifests = Vec::new();
    collect(store, &index, "index.json", 0, &mut manifests)?;
    let mut images: Vec<Image> = Vec::new();
    // Platforms an index lists but the save left out (docker saves the whole index and the
    // blobs of the platforms it pulled only).
    let mut others = Vec::new();
    for desc in &manifests {
        let (rel, _) = blob(store, desc, "index.json")?;
        if manifests.len() > 1 && !store.exists(&rel) {
            others.push(format!("{} (not in the image)", platform_of(desc)));
            continue;
        }
        images.push(image(store, desc)?);
    }
    if let [single] = images.as_mut_slice()
        && manifests.len() == 1
    {
        // The base itself, whatever its platform (a wrong binary is caught by the ELF check).
        single.arch = None;
        return Ok(images);
    }
    let mut kept: Vec<Image> = Vec::new();
    for image in images {
        match image.arch {
            None => others.push(image.name),
            Some(arch) => {
                if let Some(first) = kept.iter().find(|k| k.arch == Some(arch)) {
                    return Err(ImageError::new(
                        &store.image,
                        "index.json",
                        format!(
                            "it lists two images for {} ({} and {}); keep one image per platform",
                            image.name, first.id, image.id
                        ),
                    ));
                }
                kept.push(image);
            }
        }
    }
    if kept.is_empty() {
        return Err(ImageError::new(
            &store.image,
            "index.json",
            format!(
                "no linux/amd64 or linux/arm64 image among its platforms ({}); give an image of one of those platforms",
                others.join(", ")
            ),
        ));
    }
    if !others.is_empty() {
        tracing::info!(image = %store.image.display(), left_out = %others.join(", "), "platforms of other architectures are not used");
    }
    Ok(kept)
}

/// `os/arch` of a descriptor, as the index gives it.
fn platform_of(desc: &Descriptor) -> String {
    desc.platform().as_ref().map_or_else(
        || "a platform not named".to_string(),
        |p| format!("{}/{}", p.os(), p.architecture()),
    )
}

/// The image manifests `index` (at `at`) lists, following nested indexes; attestations and
/// other artifacts are left out.
fn collect(
    store: &Store,
    index: &ImageIndex,
    at: &str,
    depth: usize,
    out: &mut Vec<Descriptor>,
) -> Result<(), ImageError> {
    for desc in index.manifests() {
        let platform_unknown = desc
            .platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "unknown");
        let attestation = desc.annotations().as_ref().is_some_and(|a| {
            a.get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
        });
        if platform_unknown || attestation {
            continue;
        }
        match desc.media_type() {
            MediaType::ImageManifest => out.push(desc.clone()),
            MediaType::Other(t) if t == DOCKER_MANIFEST => out.push(desc.clone()),
            MediaType::ImageIndex => nested(store, desc, at, depth, out)?,
            MediaType::Other(t) if t == DOCKER_LIST => nested(store, desc, at, depth, out)?,
            other => {
                tracing::debug!(index = at, media_type = %other, "not an image manifest; left out");
            }
        }
    }
    if depth == 0 && out.is_empty() {
        return Err(ImageError::new(
            &store.image,
            at,
            "it lists no image manifest; give an image saved with sealer save or docker save"
                .into(),
        ));
    }
    Ok(())
}

fn nested(
    store: &Store,
    desc: &Descriptor,
    at: &str,
    depth: usize,
    out: &mut Vec<Descriptor>,
) -> Result<(), ImageError> {
    if depth + 1 >= MAX_DEPTH {
        return Err(ImageError::new(
            &store.image,
            at,
            format!("indexes nest more than {MAX_DEPTH} deep"),
        ));
    }
    let (rel, expect) = blob(store, desc, at)?;
    let inner: ImageIndex = store.json(&rel, "image index", Some(&expect))?;
    collect(store, &inner, &rel, depth + 1, out)
}

/// The file of the blob `desc` names and what it must hash to.
fn blob(store: &Store, desc: &Descriptor, at: &str) -> Result<(String, Expect), ImageError> {
    let digest = desc.digest().to_string();
    let hex = sha256_hex(&digest).ok_or_else(|| {
        ImageError::new(
            &store.image,
            at,
            format!("digest {digest:?} is not a sha256 digest; only sha256 blobs are supported"),
        )
    })?;
    Ok((
        format!("blobs/sha256/{hex}"),
        Expect::File {
            sha256: hex.to_string(),
            size: Some(desc.size()),
        },
    ))
}

/// The image the manifest `desc` names: its platform (the config's, or the index's when
/// the config says none), layers and env.
fn image(store: &Store, desc: &Descriptor) -> Result<Image, ImageError> {
    let (rel, expect) = blob(store, desc, "index.json")?;
    let manifest: ImageManifest = store.json(&rel, "image manifest", Some(&expect))?;
    let (config_rel, config_expect) = blob(store, manifest.config(), &rel)?;
    let config: ImageConfiguration =
        store.json(&config_rel, "image config", Some(&config_expect))?;
    let (os, arch) = match desc.platform() {
        Some(p) => (p.os().to_string(), p.architecture().to_string()),
        None => (config.os().to_string(), config.architecture().to_string()),
    };
    let name = format!("{os}/{arch}");
    let arch_dir = (os == "linux").then(|| arch_dir_for(&arch)).flatten();
    let mut layers = Vec::new();
    for layer in manifest.layers() {
        let (layer_rel, layer_expect) = blob(store, layer, &rel)?;
        layers.push(Layer {
            compression: Some(compression(store, layer, &layer_rel)?),
            rel: layer_rel,
            expect: layer_expect,
        });
    }
    let env = config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    let env = config_env(store, &format!("image config {config_rel:?}"), &env)?;
    Ok(Image {
        name,
        arch: arch_dir,
        id: desc.digest().to_string(),
        layers,
        env,
    })
}

/// A layer's compression from its media type (OCI's and docker's names).
fn compression(store: &Store, layer: &Descriptor, rel: &str) -> Result<Compression, ImageError> {
    Ok(match layer.media_type() {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Compression::None,
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => Compression::Gzip,
        MediaType::ImageLayerZstd | MediaType::ImageLayerNonDistributableZstd => Compression::Zstd,
        MediaType::Other(t) if t == "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            Compression::Gzip
        }
        MediaType::Other(t) if t == "application/vnd.docker.image.rootfs.diff.tar" => {
            Compression::None
        }
        other => {
            return Err(ImageError::new(
                &store.image,
                &format!("layer {rel:?}"),
                format!(
                    "media type {other} is not supported; layers must be tar, tar+gzip or tar+zstd"
                ),
            ));
        }
    })
}
