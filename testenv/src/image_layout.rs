//! Container images written by tests: layer tars with raw headers (so names a real tool
//! would refuse to write can be tested), a directory tree as a layer, OCI image layouts, OCI
//! archives and docker archives, all in memory. The installer's own tests feed them to its
//! ClusterImage reader; the end-to-end suites ship them to hosts as `spec.image`.

use installer_proto::manifest::sha256_bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tar::EntryType as T;

/// Everything here writes into memory (a `Vec`, a compressor over one, a `json!` value to
/// bytes), which cannot fail: the one invariant behind every [`InMemory::in_memory`].
const IN_MEMORY: &str = "writing a tar, a compressed stream or JSON into memory cannot fail";

/// The result of a write into memory, which has no error to report.
trait InMemory<T> {
    fn in_memory(self) -> T;
}

impl<T, E: std::fmt::Display> InMemory<T> for Result<T, E> {
    fn in_memory(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => unreachable!("{IN_MEMORY}: {e}"),
        }
    }
}

/// How a layer blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// One tar entry: name, type, link target, mode, content.
pub type Entry<'a> = (&'a str, T, &'a str, u32, &'a [u8]);

/// A tar whose headers hold the names and links exactly as given.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, mode, data) in entries {
        let mut h = tar::Header::new_old();
        {
            let bytes = h.as_mut_bytes();
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).in_memory();
    }
    b.into_inner().in_memory()
}

/// `tar` stored as `c` says.
pub fn compress(tar: &[u8], c: LayerCompression) -> Vec<u8> {
    match c {
        LayerCompression::None => tar.to_vec(),
        LayerCompression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).in_memory();
            e.finish().in_memory()
        }
        LayerCompression::Zstd => zstd::encode_all(tar, 1).in_memory(),
    }
}

/// A descriptor of a blob written to a layout.
#[derive(Clone, Debug)]
pub struct Desc {
    /// Its media type.
    pub media_type: String,
    /// Its sha256, hex.
    pub hex: String,
    /// Its size in bytes.
    pub size: usize,
}

impl Desc {
    /// As a JSON descriptor.
    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": format!("sha256:{}", self.hex), "size": self.size})
    }

    /// Its path in a layout.
    pub fn rel(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

/// The files of an image layout (OCI or docker), by path.
#[derive(Default)]
pub struct Layout {
    /// Each file's content, by its path in the layout.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn config(arch: &str, env: &[&str], diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": env, "ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
        "docker_version": "test"
    }))
    .in_memory()
}

impl Layout {
    /// Adds a blob; returns its descriptor.
    pub fn blob(&mut self, media_type: &str, bytes: Vec<u8>) -> Desc {
        let desc = Desc {
            media_type: media_type.into(),
            hex: sha256_bytes(&bytes),
            size: bytes.len(),
        };
        self.files.insert(desc.rel(), bytes);
        desc
    }

    /// An OCI image of `layers` (uncompressed tars, stored compressed as given) for
    /// `linux/<arch>`; returns its manifest's descriptor.
    pub fn image(
        &mut self,
        arch: &str,
        env: &[&str],
        layers: &[(Vec<u8>, LayerCompression)],
    ) -> Desc {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, c) in layers {
            let media = match c {
                LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
                LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            diff_ids.push(format!("sha256:{}", sha256_bytes(tar)));
            descs.push(self.blob(media, compress(tar, *c)).json());
        }
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            config(arch, env, &diff_ids),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.json(),
            "layers": descs,
        });
        self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            serde_json::to_vec(&manifest).in_memory(),
        )
    }

    /// An index document of `manifests`, each with its platform's arch when given.
    pub fn index_json(manifests: &[(Desc, Option<&str>)]) -> Vec<u8> {
        let list: Vec<Value> = manifests
            .iter()
            .map(|(d, arch)| {
                let mut v = d.json();
                if let Some(arch) = arch {
                    let os = if *arch == "unknown" {
                        "unknown"
                    } else {
                        "linux"
                    };
                    v["platform"] = json!({"architecture": arch, "os": os});
                }
                v
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": list,
        }))
        .in_memory()
    }

    /// Makes it an OCI layout whose `index.json` lists `manifests`.
    pub fn index(&mut self, manifests: &[(Desc, Option<&str>)]) {
        self.files
            .insert("index.json".into(), Self::index_json(manifests));
        self.files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
    }

    /// A docker archive (the format before docker 25) of `layers`.
    pub fn docker(arch: &str, env: &[&str], layers: &[(Vec<u8>, LayerCompression)]) -> Layout {
        let mut out = Layout::default();
        let mut names = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, (tar, c)) in layers.iter().enumerate() {
            diff_ids.push(format!("sha256:{}", sha256_bytes(tar)));
            let name = format!("{i:064x}/layer.tar");
            out.files.insert(name.clone(), compress(tar, *c));
            names.push(name);
        }
        let config = config(arch, env, &diff_ids);
        let config_name = format!("{}.json", sha256_bytes(&config));
        out.files.insert(config_name.clone(), config);
        out.files.insert(
            "manifest.json".into(),
            serde_json::to_vec(
                &json!([{"Config": config_name, "RepoTags": ["x:1"], "Layers": names}]),
            )
            .in_memory(),
        );
        out.files.insert("repositories".into(), b"{}".to_vec());
        out
    }

    /// Writes the layout's files below `dir`.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        for (rel, bytes) in &self.files {
            let p = dir.join(rel);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(p, bytes)?;
        }
        Ok(())
    }

    /// The layout as a tar, under `prefix` (`""` or `dir/`).
    pub fn tar(&self, prefix: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut dirs = std::collections::BTreeSet::new();
        for rel in self.files.keys() {
            let mut at = 0;
            while let Some(i) = rel[at..].find('/') {
                dirs.insert(rel[..at + i].to_string());
                at += i + 1;
            }
        }
        for d in dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(T::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, format!("{prefix}{d}/"), &[][..])
                .in_memory();
        }
        for (rel, bytes) in &self.files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, format!("{prefix}{rel}"), bytes.as_slice())
                .in_memory();
        }
        b.into_inner().in_memory()
    }
}

/// The tree under `dir` as a layer tar: every directory, file and symlink with its mode, in
/// name order, owned by root, so unpacking it gives the same tree.
pub fn tree_tar(dir: &Path) -> io::Result<Vec<u8>> {
    fn walk(b: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path)?;
            let mut h = tar::Header::new_gnu();
            h.set_mode(meta.mode() & 0o7777);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if meta.is_dir() {
                h.set_entry_type(T::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{rel}/"), io::empty())?;
                walk(b, root, &path)?;
            } else if meta.file_type().is_symlink() {
                h.set_entry_type(T::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &rel, fs::read_link(&path)?)?;
            } else {
                h.set_entry_type(T::Regular);
                h.set_size(meta.len());
                b.append_data(&mut h, &rel, fs::File::open(&path)?)?;
            }
        }
        Ok(())
    }
    let mut b = tar::Builder::new(Vec::new());
    walk(&mut b, dir, dir)?;
    b.into_inner()
}
