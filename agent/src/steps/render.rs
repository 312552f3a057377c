//! Render templates: every `*.tmpl` under `etc/`, `statics/` and `manifests/` of the host's
//! rootfs copy is rendered with the host's env to the same name without `.tmpl` (SPEC §4).
//! An undefined key or an unsupported construct fails the step with file:line:col.

use super::{Ctx, StepResult, Written, step_err};
use crate::fingerprint::{Comparison, Fingerprint};
use crate::fsutil;
use crate::journal::Journal;
use crate::paths::ClusterPaths;
use installer_proto::event::Event;
use installer_proto::manifest::Entry;
use installer_proto::plan::Plan;
use installer_proto::rootfs::is_template;
use installer_proto::template::Template;
use std::fs;

/// The template files of a plan.
pub(crate) fn templates(plan: &Plan) -> impl Iterator<Item = &Entry> {
    plan.manifest.files().filter(|e| is_template(&e.path))
}

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
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
        outputs.push((output_of(&entry.path), target, rendered, entry.mode));
    }
    for (rel, target, rendered, mode) in outputs {
        if let Some(left) = ctx.journal.record.rendered.get(&rel)
            && left.compare(&target) == Comparison::Changed
        {
            ctx.sink.event(Event::Warning {
                message: format!(
                    "{}/{rel} was changed since it was rendered; rendered again from {rel}.tmpl",
                    ctx.paths.host_rootfs
                ),
            });
        }
        fsutil::write_atomic(&target, rendered.as_bytes(), mode).map_err(step_err)?;
        let left =
            Fingerprint::of(&target).map_err(|e| step_err(format!("{rel}: reading back: {e}")))?;
        ctx.journal
            .update(|r| {
                r.rendered.insert(rel, left);
            })
            .map_err(step_err)?;
        written.files += 1;
        written.bytes += rendered.len() as u64;
    }
    Ok(written)
}

/// The rootfs path a template renders to.
pub(crate) fn output_of(template: &str) -> String {
    template.trim_end_matches(".tmpl").to_string()
}

/// Why the rendered files are no longer what the step left, if they are not.
pub(crate) fn drift(paths: &ClusterPaths, plan: &Plan, journal: &Journal) -> Option<String> {
    for entry in templates(plan) {
        let rel = output_of(&entry.path);
        let target = paths.rootfs.join(&rel);
        let state = match journal.record.rendered.get(&rel) {
            Some(left) => left.compare(&target),
            None => Comparison::Missing,
        };
        match state {
            Comparison::Same => {}
            Comparison::Missing => {
                return Some(format!("{}/{rel} is missing", paths.host_rootfs));
            }
            Comparison::Changed => return Some(format!("{}/{rel} changed", paths.host_rootfs)),
        }
    }
    None
}
