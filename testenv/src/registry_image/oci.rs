//! Image config, OCI manifest and the image tarball in the *combined* layout: an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/…`) plus docker-save's `manifest.json`
//! pointing into the same blobs. Docker engine 20.10 `docker load` reads `manifest.json`
//! (it rejects a pure OCI layout); `ctr images import` reads `index.json` and names the
//! image from its `io.containerd.image.name` annotation.

use super::layer::{HashingWriter, Layer, WrittenLayer, sha256_digest};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::Path;

/// OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI image index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The run-time settings of an image (the `config` of the image config JSON).
#[derive(Clone, Debug, Default)]
pub struct ImageConfig {
    /// Go architecture name: `amd64`, `arm64`.
    pub architecture: String,
    /// `ENTRYPOINT`.
    pub entrypoint: Vec<String>,
    /// `CMD`.
    pub cmd: Vec<String>,
    /// `ENV`, as `KEY=value`.
    pub env: Vec<String>,
    /// Exposed ports, e.g. `5000/tcp`.
    pub exposed_ports: Vec<String>,
    /// Labels; say here what the image really is.
    pub labels: BTreeMap<String, String>,
    /// The history line: how the layer was made.
    pub created_by: String,
}

/// An image's three blobs, ready to be written as a tarball or into a registry.
#[derive(Clone, Debug)]
pub struct ImageBlobs {
    /// The single layer (uncompressed tar on disk).
    pub layer: WrittenLayer,
    /// The image config JSON.
    pub config: Vec<u8>,
    /// `sha256:<hex>` of the config: the image ID.
    pub config_digest: String,
    /// The OCI manifest JSON.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
}

/// A reference split the way registries and runtimes use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `docker.io`, `sea.hub:5000`, …
    pub domain: String,
    /// Repository path, e.g. `library/registry`.
    pub repository: String,
    /// The tag, e.g. `2`.
    pub tag: String,
}

impl ImageRef {
    /// Parses `name[:tag]` with Docker's normalisation: a first component without `.` or
    /// `:` (and not `localhost`) is a Docker Hub name, and single names are in `library/`.
    /// The tag defaults to `latest`.
    pub fn parse(name: &str) -> ImageRef {
        let (path, tag) = match name.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (name, "latest"),
        };
        let (domain, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some(_) => ("docker.io".to_owned(), path.to_owned()),
            None => ("docker.io".to_owned(), format!("library/{path}")),
        };
        ImageRef {
            domain,
            repository,
            tag: tag.to_owned(),
        }
    }

    /// The fully qualified name: `docker.io/library/registry:2`.
    pub fn full(&self) -> String {
        format!("{}/{}:{}", self.domain, self.repository, self.tag)
    }

    /// The short name Docker shows: `registry:2` for official Hub images, else the full name.
    pub fn familiar(&self) -> String {
        if self.domain == "docker.io" {
            let repo = self
                .repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository);
            format!("{repo}:{}", self.tag)
        } else {
            self.full()
        }
    }
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    architecture: &'a str,
    os: &'static str,
    created: &'static str,
    config: RunConfig<'a>,
    rootfs: RootFs,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    env: &'a [String],
    entrypoint: &'a [String],
    cmd: &'a [String],
    exposed_ports: BTreeMap<&'a str, BTreeMap<(), ()>>,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'static str,
    created_by: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'static str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// The fixed creation time: builds are reproducible, so no real clock goes in.
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Writes the layer into `scratch` and computes the config and manifest.
pub fn assemble(config: &ImageConfig, layer: &Layer, scratch: &Path) -> io::Result<ImageBlobs> {
    let layer = layer.write_to(&scratch.join("layer.tar"))?;
    let ports: BTreeMap<&str, BTreeMap<(), ()>> = config
        .exposed_ports
        .iter()
        .map(|p| (p.as_str(), BTreeMap::new()))
        .collect();
    let config_json = serde_json::to_vec(&ConfigJson {
        architecture: &config.architecture,
        os: "linux",
        created: EPOCH,
        config: RunConfig {
            env: &config.env,
            entrypoint: &config.entrypoint,
            cmd: &config.cmd,
            exposed_ports: ports,
            labels: &config.labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![layer.digest.clone()],
        },
        history: vec![History {
            created: EPOCH,
            created_by: &config.created_by,
        }],
    })?;
    let config_digest = sha256_digest(&config_json);
    let manifest = serde_json::to_vec(&ManifestJson {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE,
            digest: &config_digest,
            size: config_json.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: LAYER_MEDIA_TYPE,
            digest: &layer.digest,
            size: layer.size,
            annotations: BTreeMap::new(),
        }],
    })?;
    let manifest_digest = sha256_digest(&manifest);
    Ok(ImageBlobs {
        layer,
        config: config_json,
        config_digest,
        manifest,
        manifest_digest,
    })
}

/// What a written image tarball holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// The name given (`registry:2`), as docker shows it.
    pub name: String,
    /// The fully qualified name (`docker.io/library/registry:2`), as containerd shows it.
    pub full_name: String,
    /// `sha256:` of the OCI manifest.
    pub manifest_digest: String,
    /// `sha256:` of the image config: the image ID `docker images` shows.
    pub config_digest: String,
    /// `sha256:` of the layer tar.
    pub layer_digest: String,
    /// The tarball's size in bytes.
    pub size: u64,
    /// `sha256:` of the whole tarball (for recipe hashes).
    pub tar_digest: String,
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Writes `blobs` as a combined-layout tarball to `out`, named `name` (e.g. `registry:2`).
/// The file is written under a temporary name, synced and renamed, so `out` is either the
/// old file or the whole new one.
pub fn write_image_tar(blobs: &ImageBlobs, name: &str, out: &Path) -> io::Result<ImageInfo> {
    let reference = ImageRef::parse(name);
    let index = serde_json::to_vec(&IndexJson {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: vec![Descriptor {
            media_type: MANIFEST_MEDIA_TYPE,
            digest: &blobs.manifest_digest,
            size: blobs.manifest.len() as u64,
            annotations: BTreeMap::from([
                ("io.containerd.image.name", reference.full()),
                ("org.opencontainers.image.ref.name", reference.tag.clone()),
            ]),
        }],
    })?;
    let docker_manifest = serde_json::to_vec(&[DockerSaveEntry {
        config: blob_path(&blobs.config_digest),
        repo_tags: vec![reference.familiar()],
        layers: vec![blob_path(&blobs.layer.digest)],
    }])?;

    let dir = out.parent().unwrap_or(Path::new("."));
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.tar".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .tempfile_in(dir)?;
    let mut hashing = HashingWriter::new(io::BufWriter::new(tmp.reopen()?));
    {
        let mut builder = tar::Builder::new(&mut hashing);
        let dirs = ["blobs", "blobs/sha256"];
        for d in dirs {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            builder.append_data(&mut h, format!("{d}/"), io::empty())?;
        }
        // Blobs sorted by path, then the small metadata files: a stable order.
        let mut files: Vec<(String, Blob)> = vec![
            (
                blob_path(&blobs.config_digest),
                Blob::Bytes(blobs.config.as_slice()),
            ),
            (
                blob_path(&blobs.manifest_digest),
                Blob::Bytes(blobs.manifest.as_slice()),
            ),
            (
                blob_path(&blobs.layer.digest),
                Blob::File(&blobs.layer.path, blobs.layer.size),
            ),
        ];
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files.dedup_by(|a, b| a.0 == b.0);
        files.push(("index.json".into(), Blob::Bytes(&index)));
        files.push(("manifest.json".into(), Blob::Bytes(&docker_manifest)));
        files.push((
            "oci-layout".into(),
            Blob::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#),
        ));
        for (path, blob) in files {
            match blob {
                Blob::Bytes(bytes) => {
                    let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
                    builder.append_data(&mut h, path, bytes)?;
                }
                Blob::File(source, size) => {
                    let file = File::open(source)?;
                    let mut h = header(tar::EntryType::Regular, 0o644, size);
                    builder.append_data(&mut h, path, io::Read::take(file, size))?;
                }
            }
        }
        builder.finish()?;
    }
    let (writer, size, tar_digest) = hashing.finish();
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    tmp.persist(out).map_err(|e| e.error)?;
    Ok(ImageInfo {
        name: reference.familiar(),
        full_name: reference.full(),
        manifest_digest: blobs.manifest_digest.clone(),
        config_digest: blobs.config_digest.clone(),
        layer_digest: blobs.layer.digest.clone(),
        size,
        tar_digest,
    })
}

enum Blob<'a> {
    Bytes(&'a [u8]),
    File(&'a Path, u64),
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        let r = ImageRef::parse("registry:2");
        assert_eq!(r.full(), "docker.io/library/registry:2");
        assert_eq!(r.familiar(), "registry:2");
        let r = ImageRef::parse("sea.hub:5000/pause:3.2");
        assert_eq!(r.domain, "sea.hub:5000");
        assert_eq!(r.repository, "pause");
        assert_eq!(r.familiar(), "sea.hub:5000/pause:3.2");
        let r = ImageRef::parse("localhost:5000/x");
        assert_eq!(r.tag, "latest");
        assert_eq!(r.domain, "localhost:5000");
        let r = ImageRef::parse("team/app:1");
        assert_eq!(r.full(), "docker.io/team/app:1");
    }
}
