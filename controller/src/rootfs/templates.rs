//! The syntax check of every template before any host is touched: rendering happens on the
//! hosts (values such as `HostIP` differ per host), but a template that cannot even be
//! parsed is a fault of the input and must stop the run up front, naming the file.

use super::{ResolvedRootfs, RootfsError};
use installer_proto::rootfs::is_template;
use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

/// Parses every `*.tmpl` under `etc/`, `statics/` and `manifests/` of the merged tree of
/// each architecture the rootfs has, with `layers` (overlays, Config layer) on top. Each
/// source file is parsed once.
pub fn check_templates(resolved: &ResolvedRootfs, layers: &[PathBuf]) -> Result<(), RootfsError> {
    let mut seen = HashSet::new();
    let mut count = 0usize;
    for arch in resolved.arches() {
        let tree = resolved.walk(arch, layers)?;
        for sourced in tree.iter() {
            let path = &sourced.entry.path;
            let is_template = sourced.entry.is_file() && is_template(path);
            if !is_template || !seen.insert(sourced.source.clone()) {
                continue;
            }
            let bytes = fs::read(&sourced.source).map_err(|source| RootfsError::Io {
                path: sourced.source.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes).map_err(|_| RootfsError::Template {
                file: sourced.source.clone(),
                message: format!("{path}: not UTF-8 text; templates must be UTF-8"),
            })?;
            parse_template(path, &text).map_err(|message| RootfsError::Template {
                file: sourced.source.clone(),
                message,
            })?;
            count += 1;
        }
    }
    tracing::debug!(templates = count, "template syntax checked");
    Ok(())
}

/// Parses one template; the error carries `path:line:col`.
fn parse_template(name: &str, src: &str) -> Result<(), String> {
    installer_proto::template::Template::parse(name, src)
        .map(drop)
        .map_err(|e| e.to_string())
}
