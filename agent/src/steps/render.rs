//! Render templates: every `*.tmpl` under `etc/`, `statics/` and `manifests/` of the host's
//! rootfs copy is rendered with the host's env to the same name without `.tmpl` (SPEC §4).
//! An undefined key or an unsupported construct fails the step with file:line:col.

use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use installer_proto::manifest::Entry;
use installer_proto::plan::Plan;
use installer_proto::template::Template;
use std::fs;

/// The top-level directories whose templates are rendered.
pub const TEMPLATE_DIRS: [&str; 3] = ["etc/", "statics/", "manifests/"];

/// The template files of a plan.
pub fn templates(plan: &Plan) -> impl Iterator<Item = &Entry> {
    plan.manifest.files().filter(|e| {
        e.path.ends_with(".tmpl") && TEMPLATE_DIRS.iter().any(|d| e.path.starts_with(d))
    })
}

/// Runs the step.
pub fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let mut written = Written::default();
    // Render everything first, write after: a bad template leaves no file half-updated.
    let mut outputs = Vec::new();
    for entry in templates(ctx.plan) {
        let source = ctx.paths.rootfs.join(&entry.path);
        let text = fs::read_to_string(&source)
            .map_err(|e| step_err(format!("{}: reading: {e}", entry.path)))?;
        let rendered = Template::parse(&entry.path, &text)
            .and_then(|t| t.render(&ctx.plan.env))
            .map_err(step_err)?;
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".tmpl").to_string())
            .unwrap_or_default();
        let target = source.with_file_name(name);
        outputs.push((target, rendered, entry.mode));
    }
    for (target, rendered, mode) in outputs {
        fsutil::write_atomic(&target, rendered.as_bytes(), mode).map_err(step_err)?;
        written.files += 1;
        written.bytes += rendered.len() as u64;
    }
    Ok(written)
}
