//! What a step's input hash covers, so that a re-apply skips a step whose inputs did not
//! change and re-runs exactly those that did.
//!
//! A script step's inputs are: the script's own content, the host env, and every rootfs file
//! the script's text names — by its rootfs path (`etc/kubelet.service`, `../cri/containerd`),
//! by a directory prefix (`../cri/`, `${RootfsDir}/etc/`, `$ROOTFS/etc/`), or, for files in `scripts/`, by
//! file name (`. common.sh`). A rendered file counts through its template, and
//! `etc/kubeadm.yml` also through the plan's kubeadm documents merged into it. Host paths such as
//! `/etc/hosts` are not rootfs paths and do not count. So changing `etc/daemon.json` re-runs
//! the scripts that use it and nothing else.
//!
//! The render step's inputs are the templates, the plan's kubeadm documents and the env. The
//! registry-trust step's are the files it places (paths, content hashes, modes); the
//! registry step's include the server certificate, so a new one restarts the registry.

use super::{Action, Step, bin, registry, registry_trust, render};
use crate::root::HostRoot;
use installer_proto::kubeadm::KUBEADM_TEMPLATE;
use installer_proto::manifest::{Entry, hex};
use installer_proto::plan::Plan;
use sha2::{Digest, Sha256};

/// Feeds named fields into a hash, unambiguously.
struct InputHash(Sha256);

impl InputHash {
    fn new(step: &Step) -> InputHash {
        let mut h = InputHash(Sha256::new());
        h.field("step", step.id.as_bytes());
        h
    }
    fn field(&mut self, name: &str, value: &[u8]) {
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }
    fn entry(&mut self, e: &Entry) {
        self.field("path", e.path.as_bytes());
        self.field("mode", &e.mode.to_le_bytes());
        self.field("sha256", e.sha256().unwrap_or("").as_bytes());
        // A link's content is its target (install-bin places bin/ links); other entries
        // hash as they always did, so no step re-runs for this.
        if let installer_proto::manifest::EntryKind::Symlink { target } = &e.kind {
            self.field("symlink", target.as_bytes());
        }
    }
    /// The kubeadm documents merged into `etc/kubeadm.yml`. None, no field: a plan without
    /// them hashes as it did before plans could carry them.
    fn kubeadm(&mut self, plan: &Plan) {
        for doc in &plan.kubeadm {
            self.field("kubeadm", doc.as_bytes());
        }
    }
    fn env(&mut self, plan: &Plan, root: &HostRoot) {
        for (k, v) in &plan.env {
            self.field(k, v.as_bytes());
        }
        self.field("InstallRoot", root.install_root().as_bytes());
    }
    fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// The rootfs files a script's text names (see the module docs for the rule).
pub(super) fn mentioned_files<'p>(plan: &'p Plan, text: &str) -> Vec<&'p Entry> {
    // A rootfs path, not the tail of a host path: the match starts the text or a word, or
    // follows `../`, `./`, `}/` (as in `${RootfsDir}/etc/...`) or `$NAME/`.
    let starts_path = |i: usize| {
        let before = &text[..i];
        before.is_empty()
            || before.ends_with("../")
            || before.ends_with("./")
            || before.ends_with("}/")
            || after_variable(before)
            || before.chars().last().is_some_and(|c| {
                !(c.is_alphanumeric() || c == '/' || c == '.' || c == '_' || c == '-')
            })
    };
    let named = |needle: &str| text.match_indices(needle).any(|(i, _)| starts_path(i));
    // A directory counts as a whole only when nothing more of a path follows it (`cri/*`,
    // `etc/$f`, `cri/ `): naming `etc/daemon.json` does not name all of `etc/`.
    let named_dir = |dir: &str| {
        text.match_indices(dir).any(|(i, _)| {
            starts_path(i)
                && !text[i + dir.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_' || c == '-')
        })
    };
    plan.manifest
        .files()
        .filter(|e| {
            let path = e.path.as_str();
            let rendered = path.strip_suffix(".tmpl");
            if named(path) || rendered.is_some_and(named) {
                return true;
            }
            if let Some(name) = path.strip_prefix("scripts/")
                && text.contains(name)
            {
                return true;
            }
            // Directory prefixes: `cri/`, `etc/containerd/`.
            let mut dir = path;
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if named_dir(&format!("{parent}/")) {
                    return true;
                }
                dir = parent;
            }
            false
        })
        .collect()
}

/// Whether `before` ends with `$NAME/` — a path relative to a variable such as `$ROOTFS/`.
fn after_variable(before: &str) -> bool {
    let Some(rest) = before.strip_suffix('/') else {
        return false;
    };
    let name_len = rest
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .count();
    name_len > 0 && rest[..rest.len() - name_len].ends_with('$')
}

impl Step {
    /// The hash of this step's inputs. `read` gives the current content of a rootfs file
    /// (scripts are read to find the files they use).
    pub(crate) fn input_hash(
        &self,
        plan: &Plan,
        root: &HostRoot,
        read: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        let mut h = InputHash::new(self);
        match &self.action {
            Action::PlaceRootfs => h.field("manifest", plan.manifest.digest().as_bytes()),
            Action::InstallBin => {
                for e in bin::bin_files(plan) {
                    h.entry(e);
                }
                h.field("root", root.install_root().as_bytes());
            }
            Action::RenderTemplates => {
                for e in render::templates(plan) {
                    h.entry(e);
                }
                h.kubeadm(plan);
                h.env(plan, root);
            }
            Action::RegistryTrust => {
                // The rootfs path is part of where the key goes: the plan's data root and
                // cluster name are inside it.
                for f in registry_trust::files(plan, &plan.rootfs_dir()) {
                    h.field("path", f.host_path.as_bytes());
                    h.field("sha256", f.sha256().as_bytes());
                    h.field("mode", &f.mode.to_le_bytes());
                }
                h.field("root", root.install_root().as_bytes());
            }
            Action::HostsFile => {
                for e in &plan.hosts_entries {
                    h.field("line", e.line().as_bytes());
                }
                h.field("root", root.install_root().as_bytes());
            }
            Action::Plugin { data } => {
                h.field("data", data.as_bytes());
                h.env(plan, root);
            }
            Action::Script { rel, args } => {
                script_inputs(&mut h, plan, rel, read);
                for a in args {
                    h.field("arg", a.as_bytes());
                }
                h.env(plan, root);
            }
            Action::Registry { script } => {
                if let Some(rel) = script {
                    script_inputs(&mut h, plan, rel, read);
                }
                if let Some(e) = plan.manifest.get(registry::REGISTRY_TAR) {
                    h.entry(e);
                }
                h.field("domain", plan.registry.domain.as_bytes());
                h.field("port", &plan.registry.port.to_le_bytes());
                // A new certificate (rotation, a name added) restarts the registry with it.
                // Only plans with TLS hash it: an insecure registry's hash is as before.
                if let Some(server) = plan.registry.tls.as_ref().and_then(|t| t.server.as_ref()) {
                    h.field("certificate", server.cert_pem.as_bytes());
                }
                // New credentials restart it too (it reads its htpasswd when it starts).
                if plan.registry.auth.is_some() {
                    for f in registry_trust::files(plan, &plan.rootfs_dir()) {
                        h.field("trust", f.sha256().as_bytes());
                    }
                }
                h.env(plan, root);
            }
        }
        h.finish()
    }
}

fn script_inputs(h: &mut InputHash, plan: &Plan, rel: &str, read: &dyn Fn(&str) -> Option<String>) {
    if let Some(e) = plan.manifest.get(rel) {
        h.entry(e);
    }
    match read(rel) {
        Some(text) => {
            for e in mentioned_files(plan, &text) {
                h.entry(e);
                if e.path == KUBEADM_TEMPLATE {
                    h.kubeadm(plan);
                }
            }
        }
        // Not on the host yet (dry run before any transfer): the script's own hash decides.
        None => h.field("unread", rel.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_plan::plan_with;
    use super::*;

    fn named(plan: &Plan, text: &str) -> Vec<String> {
        mentioned_files(plan, text)
            .into_iter()
            .map(|e| e.path.clone())
            .collect()
    }

    #[test]
    fn scripts_depend_on_the_rootfs_files_they_name() {
        let plan = plan_with(&[
            "cri/containerd",
            "cri/ctr",
            "etc/daemon.json.tmpl",
            "etc/kubelet.service",
            "scripts/common.sh",
            "images/registry.tar",
        ]);
        assert_eq!(
            named(&plan, "cp ../cri/* /usr/bin/"),
            ["cri/containerd", "cri/ctr"]
        );
        assert_eq!(
            named(&plan, "cat ${RootfsDir}/etc/daemon.json"),
            ["etc/daemon.json.tmpl"]
        );
        assert_eq!(
            named(&plan, "for f in a b; do cp \"$ROOTFS/etc/$f\" /x; done"),
            ["etc/daemon.json.tmpl", "etc/kubelet.service"]
        );
        assert_eq!(named(&plan, ". ./common.sh"), ["scripts/common.sh"]);
        // Host paths are not rootfs paths.
        assert!(named(&plan, "cp x /etc/kubelet.service; ls /usr/etc/").is_empty());
        assert_eq!(
            named(&plan, "docker load -i ../images/registry.tar"),
            ["images/registry.tar"]
        );
    }

    #[test]
    fn kubeadm_documents_re_run_the_render_step_and_the_scripts_that_read_the_file() {
        use installer_proto::plan::StepKind;
        let root = HostRoot::at(std::path::Path::new("/tmp/none"));
        let render = Step {
            id: "render-templates".into(),
            kind: StepKind::RenderTemplates,
            action: Action::RenderTemplates,
        };
        let script = |rel: &str| Step {
            id: rel.into(),
            kind: StepKind::InitKube,
            action: Action::Script {
                rel: rel.into(),
                args: Vec::new(),
            },
        };
        let read = |rel: &str| {
            Some(match rel {
                "scripts/init-kube.sh" => "kubeadm init --config ../etc/kubeadm.yml".to_string(),
                _ => "cp ../etc/daemon.json /etc/docker/".to_string(),
            })
        };
        let files = [
            "etc/kubeadm.yml.tmpl",
            "etc/daemon.json",
            "scripts/init-kube.sh",
            "scripts/other.sh",
        ];
        let with = |docs: &[&str]| {
            let mut plan = plan_with(&files);
            plan.kubeadm = docs.iter().map(|d| d.to_string()).collect();
            let hash = |s: &Step| s.input_hash(&plan, &root, &read);
            [
                hash(&render),
                hash(&script("scripts/init-kube.sh")),
                hash(&script("scripts/other.sh")),
            ]
        };
        let none = with(&[]);
        let a = with(&["kind: ClusterConfiguration\npodSubnet: a\n"]);
        let b = with(&["kind: ClusterConfiguration\npodSubnet: b\n"]);
        assert_ne!(none[0], a[0]);
        assert_ne!(a[0], b[0], "a changed document re-runs render-templates");
        assert_ne!(a[1], b[1], "and init-kube.sh, which reads etc/kubeadm.yml");
        assert_eq!(
            none[2], b[2],
            "a script that does not read it stays skipped"
        );
    }
}
