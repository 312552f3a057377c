//! Images built in the tests themselves: layer tars with raw headers (so names a real tool
//! would refuse to write can be tested), OCI layouts, OCI archives and docker archives.

use crate::rootfs::Compression;
use installer_proto::manifest::sha256_bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tar::EntryType as T;

/// One tar entry: name, type, link target, mode, content.
pub(super) type Entry<'a> = (&'a str, T, &'a str, u32, &'a [u8]);

/// A tar whose headers hold the names and links exactly as given.
pub(super) fn tar(entries: &[Entry]) -> Vec<u8> {
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
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(super) fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 1).unwrap(),
    }
}

/// A descriptor of a blob written to a layout.
#[derive(Clone, Debug)]
pub(super) struct Desc {
    pub(super) media_type: String,
    pub(super) hex: String,
    pub(super) size: usize,
}

impl Desc {
    pub(super) fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": format!("sha256:{}", self.hex), "size": self.size})
    }

    pub(super) fn rel(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

/// The files of an image layout (OCI or docker), by path.
#[derive(Default)]
pub(super) struct Layout {
    pub(super) files: BTreeMap<String, Vec<u8>>,
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
    .unwrap()
}

impl Layout {
    pub(super) fn blob(&mut self, media_type: &str, bytes: Vec<u8>) -> Desc {
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
    pub(super) fn image(
        &mut self,
        arch: &str,
        env: &[&str],
        layers: &[(Vec<u8>, Compression)],
    ) -> Desc {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, c) in layers {
            let media = match c {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
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
            serde_json::to_vec(&manifest).unwrap(),
        )
    }

    /// An index document of `manifests`, each with its platform's arch when given.
    pub(super) fn index_json(manifests: &[(Desc, Option<&str>)]) -> Vec<u8> {
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
        .unwrap()
    }

    /// Makes it an OCI layout whose `index.json` lists `manifests`.
    pub(super) fn index(&mut self, manifests: &[(Desc, Option<&str>)]) {
        self.files
            .insert("index.json".into(), Self::index_json(manifests));
        self.files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
    }

    /// A docker archive (the format before docker 25) of `layers`.
    pub(super) fn docker(arch: &str, env: &[&str], layers: &[(Vec<u8>, Compression)]) -> Layout {
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
            .unwrap(),
        );
        out.files.insert("repositories".into(), b"{}".to_vec());
        out
    }

    pub(super) fn write_to(&self, dir: &Path) {
        for (rel, bytes) in &self.files {
            let p = dir.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
    }

    /// The layout as a tar, under `prefix` (`""` or `dir/`).
    pub(super) fn tar(&self, prefix: &str) -> Vec<u8> {
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
                .unwrap();
        }
        for (rel, bytes) in &self.files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            b.append_data(&mut h, format!("{prefix}{rel}"), bytes.as_slice())
                .unwrap();
        }
        b.into_inner().unwrap()
    }
}

/// Every path below `dir`: `d 755`, `f 644 <content>`, `l -> <target>`.
pub(super) fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let value = if meta.is_dir() {
                walk(root, &path, out);
                format!("d {mode:o}")
            } else if meta.file_type().is_symlink() {
                format!("l -> {}", fs::read_link(&path).unwrap().display())
            } else {
                format!(
                    "f {mode:o} {}",
                    String::from_utf8_lossy(&fs::read(&path).unwrap())
                )
            };
            out.insert(rel, value);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `[(path, description)]` as a snapshot.
pub(super) fn expect(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
