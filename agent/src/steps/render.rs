//! Render templates: every `*.tmpl` under `etc/`, `statics/` and `manifests/` of the host's
//! rootfs copy is rendered with the host's env to the same name without `.tmpl` (SPEC §4).
//! An undefined key or an unsupported construct fails the step with file:line:col.
//!
//! `etc/kubeadm.yml`: when the plan carries the Clusterfile's kubeadm documents, the file
//! written is the text rendered from `etc/kubeadm.yml.tmpl` with those documents merged in
//! as sealer merges them ([`installer_proto::kubeadm::merge`]); a failing merge fails the
//! step and writes nothing. A plan with kubeadm documents but no such template is refused
//! before any step (`Plan::validate`): a plain `etc/kubeadm.yml` is a shipped file, placed
//! and fingerprinted as the image has it, and rewriting it would make every later apply
//! see it drifted and ship it again; without any `etc/kubeadm.yml` there is nothing the
//! bootstrap would read (sealer fails there too). When the rootfs has both a plain file
//! and the template, the template's output is written over it, as for every template.
//! What the step records, and `drift` compares, is the merged file, so a hand edit of it is
//! drift and renders and merges again; the step's input hash covers the documents
//! (`inputs`), so changing them in the Clusterfile re-runs it.

use super::{Ctx, StepResult, Written, step_err};
use crate::fingerprint::{Comparison, Fingerprint};
use crate::fsutil;
use crate::journal::Journal;
use crate::paths::ClusterPaths;
use installer_proto::event::{Event, StepError};
use installer_proto::kubeadm;
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
        let rel = output_of(&entry.path);
        let rendered = with_kubeadm(ctx.plan, &rel, rendered)?;
        outputs.push((rel, target, rendered, entry.mode));
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

/// The text to write for the template output `rel`: the rendered text, with the plan's
/// kubeadm documents merged in for `etc/kubeadm.yml`.
fn with_kubeadm(plan: &Plan, rel: &str, rendered: String) -> Result<String, StepError> {
    let merged = kubeadm::merge_output(rel, &rendered, &plan.kubeadm).map_err(|e| {
        step_err(format!(
            "{rel}: merging the Clusterfile's kubeadm documents into the text rendered from {rel}.tmpl: {e}"
        ))
    })?;
    let Some(merged) = merged else {
        return Ok(rendered);
    };
    // The notes are the same on every host; the controller shows them once. Here they are
    // kept in the agent's log for whoever reads a host's side.
    for note in &merged.notes {
        tracing::info!("{rel}: {note}");
    }
    Ok(merged.text)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::root::HostRoot;
    use crate::sink::NullSink;

    const TEMPLATE: &str = "# rendered for {{ .HostIP }}\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: {{ .HostIP }}:6443\nnetworking:\n  podSubnet: 100.64.0.0/10\n  serviceSubnet: 10.96.0.0/22\n---\n# untouched\napiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n";
    const CLUSTER: &str = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n";

    fn plan(templates: &[&str], kubeadm: &[&str]) -> Plan {
        let mut plan = super::super::test_plan::plan_with(templates);
        plan.env = [("HostIP".to_string(), "10.0.0.1".to_string())].into();
        plan.kubeadm = kubeadm.iter().map(|d| d.to_string()).collect();
        plan
    }

    /// A host whose rootfs copy holds `files`; runs the step with `plan` and gives what it
    /// returned, the paths and the journal.
    struct Host {
        _dir: tempfile::TempDir,
        root: HostRoot,
        paths: ClusterPaths,
        journal: Journal,
    }

    impl Host {
        fn new(files: &[(&str, &str)]) -> Host {
            let dir = tempfile::tempdir().unwrap();
            let root = HostRoot::at(dir.path());
            let paths = ClusterPaths::new(&root, "/data", "c");
            for (rel, text) in files {
                let p = paths.rootfs.join(rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, text).unwrap();
            }
            let journal = Journal::open(&paths.state, "c", "/data").unwrap();
            Host {
                _dir: dir,
                root,
                paths,
                journal,
            }
        }

        fn run(&mut self, plan: &Plan) -> StepResult {
            let mut carry = None;
            let mut ctx = Ctx {
                root: &self.root,
                plan,
                paths: &self.paths,
                journal: &mut self.journal,
                sink: &NullSink,
                carry: &mut carry,
                incoming: None,
            };
            run(&mut ctx)
        }

        fn read(&self, rel: &str) -> Option<String> {
            fs::read_to_string(self.paths.rootfs.join(rel)).ok()
        }
    }

    #[test]
    fn the_rendered_kubeadm_yml_takes_the_clusterfile_documents() {
        let mut host = Host::new(&[
            ("etc/kubeadm.yml.tmpl", TEMPLATE),
            ("etc/other.yml.tmpl", CLUSTER),
        ]);
        let plan = plan(&["etc/kubeadm.yml.tmpl", "etc/other.yml.tmpl"], &[CLUSTER]);
        let written = host.run(&plan).unwrap();
        assert_eq!(written.files, 2);
        assert_eq!(
            host.read("etc/kubeadm.yml").unwrap(),
            "# rendered for 10.0.0.1\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: 10.0.0.1:6443\nnetworking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/22\n---\n# untouched\napiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n"
        );
        // Only etc/kubeadm.yml is merged into.
        assert_eq!(host.read("etc/other.yml").unwrap(), CLUSTER);
        // What was recorded is the merged file: no drift, until someone edits it.
        assert_eq!(drift(&host.paths, &plan, &host.journal), None);
        fs::write(host.paths.rootfs.join("etc/kubeadm.yml"), TEMPLATE).unwrap();
        assert_eq!(
            drift(&host.paths, &plan, &host.journal),
            Some("/data/c/rootfs/etc/kubeadm.yml changed".into())
        );
        host.run(&plan).unwrap();
        assert!(
            host.read("etc/kubeadm.yml")
                .unwrap()
                .contains("10.244.0.0/16")
        );
        assert_eq!(drift(&host.paths, &plan, &host.journal), None);
    }

    #[test]
    fn without_kubeadm_documents_the_rendered_text_is_written_as_is() {
        let mut host = Host::new(&[("etc/kubeadm.yml.tmpl", TEMPLATE)]);
        host.run(&plan(&["etc/kubeadm.yml.tmpl"], &[])).unwrap();
        assert_eq!(
            host.read("etc/kubeadm.yml").unwrap(),
            TEMPLATE.replace("{{ .HostIP }}", "10.0.0.1")
        );
    }

    #[test]
    fn a_failing_merge_fails_the_step_and_writes_nothing() {
        let twice = format!("{CLUSTER}---\n{CLUSTER}");
        let mut host = Host::new(&[("etc/a.conf.tmpl", "a"), ("etc/kubeadm.yml.tmpl", &twice)]);
        let err = host
            .run(&plan(
                &["etc/a.conf.tmpl", "etc/kubeadm.yml.tmpl"],
                &[CLUSTER],
            ))
            .unwrap_err();
        assert_eq!(
            err.message,
            "etc/kubeadm.yml: merging the Clusterfile's kubeadm documents into the text rendered from etc/kubeadm.yml.tmpl: etc/kubeadm.yml, the document at line 6: a second ClusterConfiguration (the first is etc/kubeadm.yml, the document at line 1); kubeadm takes one document of each kind, so keep one"
        );
        assert_eq!(host.read("etc/kubeadm.yml"), None);
        assert_eq!(host.read("etc/a.conf"), None);
    }
}
