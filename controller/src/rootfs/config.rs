//! `kind: Config` documents as one more overlay layer: each writes (`overwrite`) or
//! YAML-deep-merges (`merge`) one file of the merged rootfs, before templates are rendered
//! (so a Config may also provide a `.tmpl`).

use super::{ResolvedRootfs, RootfsError};
use crate::clusterfile::{Clusterfile, ConfigSpec, ConfigStrategy};
use installer_proto::rootfs::MergedTree;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use yaml_serde::Value;

/// The content each configured path ends up with: path → (bytes, mode).
type Outcome = BTreeMap<String, (Vec<u8>, u32)>;

/// Writes the layer for the Clusterfile's `Config` documents over `resolved` + `overlays`
/// into a temporary directory owned by `resolved` and returns it; `None` when there are no
/// configs.
///
/// A `merge` reads the file as the layers below give it. When the file differs between the
/// `amd64/` and `arm64/` subtrees the result would differ per architecture, which one layer
/// cannot express; that is refused with the Config's name.
pub fn config_layer(
    cf: &Clusterfile,
    resolved: &ResolvedRootfs,
    overlays: &[PathBuf],
) -> Result<Option<PathBuf>, RootfsError> {
    let configs = &cf.configs;
    if configs.is_empty() {
        return Ok(None);
    }
    let mut outcome: Option<(&str, Outcome)> = None;
    for arch in resolved.arches() {
        let tree = resolved.walk(arch, overlays)?;
        let this = apply(configs, &tree)?;
        match &outcome {
            None => outcome = Some((arch, this)),
            Some((first_arch, first)) => {
                if let Some(path) = first
                    .iter()
                    .find(|(p, v)| this.get(p.as_str()) != Some(v))
                    .map(|(p, _)| p.clone())
                {
                    let name = configs
                        .iter()
                        .rev()
                        .find(|c| c.path == path)
                        .map_or("", |c| c.name.as_str());
                    return Err(RootfsError::Config {
                        name: name.to_string(),
                        path,
                        reason: format!(
                            "the file differs between the {first_arch} and {arch} subtrees, so one merge result cannot serve both; use strategy: overwrite, or keep the file out of the arch subtrees"
                        ),
                    });
                }
            }
        }
    }
    let Some((_, outcome)) = outcome else {
        return Ok(None);
    };
    let dir = tempfile::Builder::new()
        .prefix("installer-config-")
        .tempdir()
        .map_err(|source| RootfsError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    for (rel, (bytes, mode)) in &outcome {
        let path = installer_proto::manifest::join_rel(dir.path(), rel).map_err(|e| {
            RootfsError::Config {
                name: String::new(),
                path: rel.clone(),
                reason: e.to_string(),
            }
        })?;
        let io = |source| RootfsError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        fs::write(&path, bytes).map_err(io)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).map_err(io)?;
    }
    let path = dir.path().to_path_buf();
    resolved.keep_layer(dir);
    Ok(Some(path))
}

/// The result of applying `configs` in order over `tree`.
fn apply(configs: &[ConfigSpec], tree: &MergedTree) -> Result<Outcome, RootfsError> {
    let mut out = Outcome::new();
    for c in configs {
        let fail = |reason: String| RootfsError::Config {
            name: c.name.clone(),
            path: c.path.clone(),
            reason,
        };
        let below: Option<(Vec<u8>, u32)> = match out.get(&c.path) {
            Some(v) => Some(v.clone()),
            None => match tree.get(&c.path) {
                None => None,
                Some(s) if s.entry.is_file() => {
                    let bytes = fs::read(&s.source)
                        .map_err(|e| fail(format!("reading {}: {e}", s.source.display())))?;
                    Some((bytes, s.entry.mode))
                }
                Some(_) => {
                    return Err(fail(
                        "the rootfs has a directory or symlink at this path; point the Config at a file".into(),
                    ));
                }
            },
        };
        // A replaced file keeps its mode (a script stays executable).
        let mode = below.as_ref().map_or(0o644, |(_, m)| *m);
        let bytes = match (c.strategy, below) {
            (ConfigStrategy::Overwrite, _) | (ConfigStrategy::Merge, None) => {
                c.data.clone().into_bytes()
            }
            (ConfigStrategy::Merge, Some((base, _))) => {
                let base = String::from_utf8(base)
                    .map_err(|_| fail("the file is not UTF-8 text, so it cannot be merged as YAML; use strategy: overwrite".into()))?;
                merge_yaml(&base, &c.data)
                    .map_err(|e| {
                        fail(format!(
                            "{e}; strategy: merge needs YAML in both the file and data"
                        ))
                    })?
                    .into_bytes()
            }
        };
        out.insert(c.path.clone(), (bytes, mode));
    }
    Ok(out)
}

/// Deep-merges YAML `patch` onto `base`, `---` section by section (section N of the patch
/// onto section N of the file; extra sections are appended). Mappings merge key by key;
/// anything else in the patch replaces what is there.
pub fn merge_yaml(base: &str, patch: &str) -> Result<String, String> {
    let mut docs = read_docs(base).map_err(|e| format!("the file is not valid YAML ({e})"))?;
    let patches = read_docs(patch).map_err(|e| format!("data is not valid YAML ({e})"))?;
    for (i, p) in patches.into_iter().enumerate() {
        match docs.get_mut(i) {
            Some(d) => deep_merge(d, p),
            None => docs.push(p),
        }
    }
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml_serde::to_string(d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn read_docs(text: &str) -> Result<Vec<Value>, yaml_serde::Error> {
    let mut docs = Vec::new();
    for de in yaml_serde::Deserializer::from_str(text) {
        docs.push(Value::deserialize(de)?);
    }
    // An empty text reads as one null document; it merges like an empty file.
    if docs.len() == 1 && docs[0].is_null() {
        docs.clear();
    }
    Ok(docs)
}

fn deep_merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Mapping(b), Value::Mapping(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_merges_deeply_section_by_section() {
        let base = "a: 1\nnested:\n  keep: x\n  list: [1, 2]\n---\nkind: B\nv: 1\n";
        let patch = "nested:\n  list: [3]\n  new: y\nb: 2\n---\nv: 2\n---\nextra: true\n";
        let merged = merge_yaml(base, patch).unwrap();
        assert_eq!(
            merged,
            "a: 1\nnested:\n  keep: x\n  list:\n  - 3\n  new: y\nb: 2\n---\nkind: B\nv: 2\n---\nextra: true\n"
        );
        assert_eq!(merge_yaml("", "a: 1\n").unwrap(), "a: 1\n");
        assert!(
            merge_yaml("a: [1\n", "b: 1")
                .unwrap_err()
                .starts_with("the file is not valid YAML")
        );
    }
}
