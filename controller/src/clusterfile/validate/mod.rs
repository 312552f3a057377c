//! From the documents as written to a [`Clusterfile`]: defaults, secrets, and every check
//! that needs more than one field (a duplicate IP, a missing master, a plugin scope naming
//! no host's role). Each failure names the node it is about.

use super::docs::{self, Failure, Kind, Problem};
use super::kinds::{config, plugin};
use super::locate::{NodePath, Seg};
use super::raw;
use super::strict;
use super::{Clusterfile, DEFAULT_CONTAINER_RUNTIME, HostSpec};
use Seg::{Index as I, Key as K};
use installer_proto::env::{self as penv, Env, EnvError};
use installer_proto::plan;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

mod hosts;
pub(super) use hosts::is_role_name;
mod network;

/// Looks up an environment variable of the controller.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses and checks everything. Every problem found is returned, each document checked
/// as far as its shape allows; a document whose shape is wrong is not checked further, so
/// no error is reported about a guess.
pub(super) fn build(name: &str, text: &str, env: Lookup) -> Result<Clusterfile, Vec<Failure>> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let kinds = docs::classify(text, &mut warnings, &mut errors);
    let mut cluster = None;
    let mut plugins = Vec::new();
    let mut configs = Vec::new();
    let mut kubeadm = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        match kinds.get(doc) {
            Some(Kind::Cluster) => {
                cluster = strict::read::<raw::Cluster>(text, doc, de, &mut errors).map(|c| (doc, c))
            }
            Some(Kind::Plugin) => plugins
                .extend(strict::read::<raw::Plugin>(text, doc, de, &mut errors).map(|p| (doc, p))),
            Some(Kind::Config) => configs
                .extend(strict::read::<raw::Config>(text, doc, de, &mut errors).map(|c| (doc, c))),
            Some(Kind::Kubeadm) => {
                if let Some(yaml) = kubeadm_doc(text, doc, de, &kubeadm, &mut errors) {
                    kubeadm.push((doc, yaml));
                }
            }
            Some(Kind::Empty) | None => {}
        }
    }
    let source = PathBuf::from(name);
    let cf = cluster.map(|(doc, cluster)| {
        let ctx = Ctx {
            doc,
            env,
            base_dir: super::base_dir(&source).to_path_buf(),
            warnings: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
        };
        let cf = ctx.cluster(cluster, source.clone());
        warnings.extend(ctx.warnings.into_inner());
        errors.extend(ctx.errors.into_inner());
        cf
    });
    // Plugins name the hosts' roles; without a readable Cluster their scope is not checked.
    let hosts = cf.as_ref().map(|c| c.hosts.as_slice());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut specs = Vec::new();
    for (doc, p) in plugins {
        let Some(spec) = plugin(doc, p, hosts, &mut warnings, &mut errors) else {
            continue;
        };
        if let Some(first) = seen.insert(spec.name.clone(), doc) {
            let name_path = NodePath::value(&[K("metadata"), K("name")]);
            let (line, _) = super::locate::locate(text, first, &name_path);
            errors.push(Failure::at(
                doc,
                &[K("metadata"), K("name")],
                false,
                &format!(
                    "plugin {:?} is defined twice (first at line {line})",
                    spec.name
                ),
                "expected unique plugin names",
            ));
            continue;
        }
        specs.push(spec);
    }
    let configs: Vec<_> = configs
        .into_iter()
        .filter_map(|(doc, c)| config(doc, c, &mut errors))
        .collect();
    match cf {
        Some(mut cf) if errors.is_empty() => {
            let mut warnings: Vec<_> = warnings
                .into_iter()
                .map(|w| w.into_warning(name, text))
                .collect();
            warnings.sort_by_key(|w| (w.line, w.column));
            cf.plugins = specs;
            cf.configs = configs;
            cf.kubeadm = kubeadm.into_iter().map(|(_, yaml)| yaml).collect();
            cf.warnings = warnings;
            Ok(cf)
        }
        _ => Err(errors),
    }
}

/// Whether `key` is one only templates can read (`etcd-dir`): a key sealer accepts, with
/// a value a process environment can carry.
fn template_only(key: &str, value: &str) -> bool {
    !penv::is_valid_key(key) && penv::is_template_key(key) && penv::check_value(key, value).is_ok()
}

/// A kubeadm document as YAML text for the plan, checked as the merge will check it (one of
/// kubeadm's kinds, each kind once) so a problem is reported here with its position,
/// not on the hosts.
fn kubeadm_doc(
    text: &str,
    doc: usize,
    de: yaml_serde::Deserializer<'_>,
    earlier: &[(usize, String)],
    errors: &mut Vec<Failure>,
) -> Option<String> {
    let yaml = match yaml_serde::Value::deserialize(de).and_then(|v| yaml_serde::to_string(&v)) {
        Ok(yaml) => yaml,
        Err(e) => {
            errors.push(e.into());
            return None;
        }
    };
    let kind_of = |y: &str| {
        yaml_serde::from_str::<yaml_serde::Value>(y)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
    };
    let kind = kind_of(&yaml).unwrap_or_default();
    if let Some((first, _)) = earlier
        .iter()
        .find(|(_, y)| kind_of(y).as_deref() == Some(&kind))
    {
        let (line, _) = super::locate::locate(text, *first, &NodePath::value(&[K("kind")]));
        errors.push(Failure::at(
            doc,
            &[K("kind")],
            false,
            &format!("a second {kind} (the first is at line {line})"),
            "expected each kubeadm kind once, as kubeadm takes one document of each; keep one",
        ));
        return None;
    }
    if let Err(e) = installer_proto::kubeadm::check_documents(std::slice::from_ref(&yaml)) {
        errors.push(Failure::at(
            doc,
            &[],
            false,
            &e.to_string(),
            "expected one of kubeadm's documents",
        ));
        return None;
    }
    Some(yaml)
}

/// What the Cluster checks need besides the document.
struct Ctx<'a> {
    doc: usize,
    env: Lookup<'a>,
    base_dir: PathBuf,
    /// What was accepted with a word to say (the checks take `&self`).
    warnings: RefCell<Vec<Problem>>,
    /// Every problem found; a check that fails records it and the others go on.
    errors: RefCell<Vec<Failure>>,
}

/// `segs` with `more` appended.
fn at(segs: &[Seg], more: &[Seg]) -> Vec<Seg> {
    [segs, more].concat()
}

const NAME_EXPECTED: &str = "expected 1-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit (it becomes part of paths on every host)";

impl Ctx<'_> {
    fn fail(&self, segs: &[Seg], what: &str, expected: &str) -> Failure {
        Failure::at(self.doc, segs, false, what, expected)
    }

    /// A sealer field this version accepts but does not act on: a warning at its key.
    fn not_acted_on<T>(&self, field: &Option<T>, segs: &[Seg], why: &str) {
        if field.is_some() {
            self.warn(segs, true, why);
        }
    }

    /// A warning about the node at `segs` (its key when `at_key`).
    fn warn(&self, segs: &[Seg], at_key: bool, message: &str) {
        let path = if at_key {
            NodePath::key(segs)
        } else {
            NodePath::value(segs)
        };
        self.warnings.borrow_mut().push(Problem {
            doc: self.doc,
            path,
            message: format!("{}: {message}", super::locate::render(segs)),
        });
    }

    /// A sealer field this version refuses, pointing at its key.
    fn refuse<T>(
        &self,
        field: &Option<T>,
        segs: &[Seg],
        why: &str,
        fix: &str,
    ) -> Result<(), Failure> {
        match field {
            Some(_) => Err(Failure::at(
                self.doc,
                segs,
                true,
                &format!("not supported ({why})"),
                fix,
            )),
            None => Ok(()),
        }
    }

    /// Records a problem; checking goes on.
    fn error(&self, failure: Failure) {
        self.errors.borrow_mut().push(failure);
    }

    /// The value of a check, or `None` with its problem recorded.
    fn keep<T>(&self, result: Result<T, Failure>) -> Option<T> {
        result.map_err(|f| self.error(f)).ok()
    }

    /// The Cluster as checked; meaningful only when no problem was recorded.
    fn cluster(&self, c: raw::Cluster, source: PathBuf) -> Clusterfile {
        let spec = &[K("spec")];
        if plan::check_cluster_name(&c.metadata.name).is_err() {
            self.error(self.fail(
                &[K("metadata"), K("name")],
                &format!("cluster name {:?} is invalid", c.metadata.name),
                NAME_EXPECTED,
            ));
        }
        let s = c.spec;
        if s.image.trim().is_empty() {
            self.error(self.fail(
                &at(spec, &[K("image")]),
                "image is empty",
                "expected a rootfs directory, or a .tar, .tar.gz or .tar.zst of one",
            ));
        }
        let app_why = "accepted and not acted on: applications need a running cluster, and this version prepares hosts without bootstrapping one";
        self.not_acted_on(&s.cmd, &at(spec, &[K("cmd")]), app_why);
        self.not_acted_on(&s.cmd_args, &at(spec, &[K("cmd_args")]), app_why);
        self.not_acted_on(&s.app_names, &at(spec, &[K("appNames")]), app_why);
        let env = self.env_list(&s.env, &at(spec, &[K("env")]));
        let default_ssh = raw::Ssh::default();
        let cluster_ssh = s.ssh.as_ref().unwrap_or(&default_ssh);
        let ssh_ok = self.keep(self.ssh_checks(cluster_ssh, &at(spec, &[K("ssh")])));
        let hosts_before = self.errors.borrow().len();
        let hosts = match ssh_ok {
            Some(()) => self.hosts(&s.hosts, cluster_ssh),
            None => Vec::new(),
        };
        let hosts_ok = ssh_ok.is_some() && self.errors.borrow().len() == hosts_before;
        let master0 = hosts.iter().position(HostSpec::is_master);
        if master0.is_none() && hosts_ok {
            self.error(Failure::at(
                self.doc,
                &at(spec, &[K("hosts")]),
                true,
                "no host has the role master",
                "expected at least one host with roles: [master] (the first one is master0)",
            ));
        }
        let container_runtime = match &s.container_runtime {
            None => DEFAULT_CONTAINER_RUNTIME.to_string(),
            Some(rt) if matches!(rt.kind.as_str(), "docker" | "containerd") => rt.kind.clone(),
            Some(rt) => {
                self.error(self.fail(
                    &at(spec, &[K("containerRuntime"), K("type")]),
                    &format!("container runtime {:?} is not supported", rt.kind),
                    "expected docker or containerd",
                ));
                DEFAULT_CONTAINER_RUNTIME.to_string()
            }
        };
        let registry = self.registry(s.registry.as_ref());
        let host_aliases = self.host_aliases(&s.host_aliases);
        let data_root = self.data_root(s.data_root, &c.metadata.name);
        Clusterfile {
            name: c.metadata.name,
            image: s.image,
            data_root,
            env,
            container_runtime,
            registry,
            host_aliases,
            hosts,
            plugins: Vec::new(),
            configs: Vec::new(),
            kubeadm: Vec::new(),
            source,
            warnings: Vec::new(),
            master0: master0.unwrap_or(0),
        }
    }

    /// `spec.dataRoot`, checked, or the default.
    fn data_root(&self, data_root: Option<String>, cluster: &str) -> String {
        let Some(d) = data_root else {
            return plan::DEFAULT_DATA_ROOT.to_string();
        };
        let segs = [K("spec"), K("dataRoot")];
        match plan::check_data_root(&d).and_then(|()| plan::check_cluster_dir(&d, cluster)) {
            Ok(()) => return d,
            Err(plan::PlanError::SystemDataRoot { why, .. }) => self.error(self.fail(
                &segs,
                &format!("dataRoot {d:?} is refused: {why}"),
                "expected a directory of installer's own, such as /var/lib/sealer/data (clean must never work among files installer did not create)",
            )),
            Err(_) => self.error(self.fail(
                &segs,
                &format!("dataRoot {d:?} is not a clean absolute path"),
                "expected an absolute path without '.', '..' or empty components, such as /var/lib/sealer/data",
            )),
        }
        plan::DEFAULT_DATA_ROOT.to_string()
    }

    /// `KEY=VALUE` entries: keys checked, `SvcCIDR` checked (built-ins derive from it).
    /// A bad entry is recorded and left out.
    fn env_list(&self, entries: &[String], segs: &[Seg]) -> Env {
        let mut env = Env::new();
        for (i, entry) in entries.iter().enumerate() {
            let here = at(segs, &[I(i)]);
            let parsed = penv::parse_entry(entry).map_err(|e| match e {
                EnvError::BadKey { key } => self.fail(
                    &here,
                    &format!("env key {key:?} is invalid"),
                    "expected a key without blanks or control characters; a shell name ([A-Za-z_][A-Za-z0-9_]*) reaches scripts too",
                ),
                // Refused here, not at the first script: by then install-bin, templates
                // and /etc/hosts would already have changed the host.
                EnvError::NulInValue { key } => self.fail(
                    &here,
                    &format!("the value of env key {key:?} holds a NUL byte"),
                    "expected a value without NUL (no process environment can carry one, so every script would fail)",
                ),
                _ => self.fail(
                    &here,
                    &format!("{entry:?} is not KEY=VALUE"),
                    "expected KEY=VALUE (the value may be empty)",
                ),
            });
            let parsed = match (parsed, entry.split_once('=')) {
                // sealer accepts any key; one that is not a shell name reaches templates.
                (Err(_), Some((key, value))) if template_only(key, value) => {
                    self.warn(
                        &here,
                        false,
                        &format!(
                            "env key {key:?} is not a shell name: templates read it as {{{{ index . {key:?} }}}}, scripts do not get it"
                        ),
                    );
                    Ok((key.to_string(), value.to_string()))
                }
                (other, _) => other,
            };
            let Some((key, value)) = self.keep(parsed) else {
                continue;
            };
            if key == "SvcCIDR" && penv::service_ips(&value).is_err() {
                self.error(self.fail(
                    &here,
                    &format!("SvcCIDR {value:?} is not a usable CIDR"),
                    "expected a CIDR such as 10.96.0.0/12 (KubeSvcIP and DNSSvcIP derive from it)",
                ));
                continue;
            }
            env.insert(key, value);
        }
        env
    }
}
