//! Images built in the tests themselves come from [`testenv::image_layout`]; here, how a
//! resolved tree is compared.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
pub(super) use testenv::image_layout::{Desc, Layout, compress, tar};

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
