//! From the documents as written to a [`Clusterfile`]: defaults, secrets, and every check
//! that needs more than one field (a duplicate IP, a missing master, a plugin scope naming
//! no host's role). Each failure names the node it is about.

use super::docs::{self, Failure, Kind, Problem};
use super::kinds::{config, plugin};
use super::locate::{NodePath, Seg};
use super::raw;
use super::{Clusterfile, DEFAULT_CONTAINER_RUNTIME, HostSpec};
use Seg::{Index as I, Key as K};
use installer_proto::env::{self as penv, Env, EnvError};
use installer_proto::plan;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

mod hosts;
mod network;

/// Looks up an environment variable of the controller.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses and checks everything; the first problem found is returned.
pub(super) fn build(name: &str, text: &str, env: Lookup) -> Result<Clusterfile, Failure> {
    let mut warnings = Vec::new();
    let kinds = docs::classify(text, &mut warnings)?;
    let mut cluster = None;
    let mut plugins = Vec::new();
    let mut configs = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        match kinds.get(doc) {
            Some(Kind::Cluster) => cluster = Some((doc, raw::Cluster::deserialize(de)?)),
            Some(Kind::Plugin) => plugins.push((doc, raw::Plugin::deserialize(de)?)),
            Some(Kind::Config) => configs.push((doc, raw::Config::deserialize(de)?)),
            Some(Kind::Empty) | None => {}
        }
    }
    let Some((doc, cluster)) = cluster else {
        // classify() refuses a file without a Cluster; keep a plain error just in case.
        return Err(Failure::at(
            0,
            &[],
            false,
            "no kind: Cluster document",
            "expected one",
        ));
    };
    let source = PathBuf::from(name);
    let ctx = Ctx {
        doc,
        env,
        base_dir: super::base_dir(&source).to_path_buf(),
        warnings: RefCell::new(warnings),
    };
    let mut cf = ctx.cluster(cluster, source)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (doc, p) in plugins {
        let spec = plugin(doc, p, &cf.hosts)?;
        if let Some(first) = seen.insert(spec.name.clone(), doc) {
            let name_path = NodePath::value(&[K("metadata"), K("name")]);
            let (line, _) = super::locate::locate(text, first, &name_path);
            return Err(Failure::at(
                doc,
                &[K("metadata"), K("name")],
                false,
                &format!(
                    "plugin {:?} is defined twice (first at line {line})",
                    spec.name
                ),
                "expected unique plugin names",
            ));
        }
        cf.plugins.push(spec);
    }
    for (doc, c) in configs {
        cf.configs.push(config(doc, c)?);
    }
    let mut warnings: Vec<_> = ctx
        .warnings
        .into_inner()
        .into_iter()
        .map(|w| w.into_warning(name, text))
        .collect();
    warnings.sort_by_key(|w| (w.line, w.column));
    cf.warnings = warnings;
    Ok(cf)
}

/// What the Cluster checks need besides the document.
struct Ctx<'a> {
    doc: usize,
    env: Lookup<'a>,
    base_dir: PathBuf,
    /// What was accepted with a word to say (the checks take `&self`).
    warnings: RefCell<Vec<Problem>>,
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

    fn cluster(&self, c: raw::Cluster, source: PathBuf) -> Result<Clusterfile, Failure> {
        let spec = &[K("spec")];
        if plan::check_cluster_name(&c.metadata.name).is_err() {
            return Err(self.fail(
                &[K("metadata"), K("name")],
                &format!("cluster name {:?} is invalid", c.metadata.name),
                NAME_EXPECTED,
            ));
        }
        let s = c.spec;
        if s.image.trim().is_empty() {
            return Err(self.fail(
                &at(spec, &[K("image")]),
                "image is empty",
                "expected a rootfs directory, or a .tar, .tar.gz or .tar.zst of one",
            ));
        }
        let app_why = "accepted and not acted on: applications need a running cluster, and this version prepares hosts without bootstrapping one";
        self.not_acted_on(&s.cmd, &at(spec, &[K("cmd")]), app_why);
        self.not_acted_on(&s.cmd_args, &at(spec, &[K("cmd_args")]), app_why);
        self.not_acted_on(&s.app_names, &at(spec, &[K("appNames")]), app_why);
        let env = self.env_list(&s.env, &at(spec, &[K("env")]))?;
        let default_ssh = raw::Ssh::default();
        let cluster_ssh = s.ssh.as_ref().unwrap_or(&default_ssh);
        self.ssh_checks(cluster_ssh, &at(spec, &[K("ssh")]))?;
        let hosts = self.hosts(&s.hosts, cluster_ssh)?;
        let Some(master0) = hosts.iter().position(HostSpec::is_master) else {
            return Err(Failure::at(
                self.doc,
                &at(spec, &[K("hosts")]),
                true,
                "no host has the role master",
                "expected at least one host with roles: [master] (the first one is master0)",
            ));
        };
        let container_runtime = match &s.container_runtime {
            None => DEFAULT_CONTAINER_RUNTIME.to_string(),
            Some(rt) if matches!(rt.kind.as_str(), "docker" | "containerd") => rt.kind.clone(),
            Some(rt) => {
                return Err(self.fail(
                    &at(spec, &[K("containerRuntime"), K("type")]),
                    &format!("container runtime {:?} is not supported", rt.kind),
                    "expected docker or containerd",
                ));
            }
        };
        let registry = self.registry(s.registry.as_ref())?;
        let host_aliases = self.host_aliases(&s.host_aliases)?;
        let data_root = match s.data_root {
            None => plan::DEFAULT_DATA_ROOT.to_string(),
            Some(d) => match plan::check_data_root(&d)
                .and_then(|()| plan::check_cluster_dir(&d, &c.metadata.name))
            {
                Ok(()) => d,
                Err(plan::PlanError::SystemDataRoot { why, .. }) => {
                    return Err(self.fail(
                        &at(spec, &[K("dataRoot")]),
                        &format!("dataRoot {d:?} is refused: {why}"),
                        "expected a directory of installer's own, such as /var/lib/sealer/data (clean must never work among files installer did not create)",
                    ));
                }
                Err(_) => {
                    return Err(self.fail(
                        &at(spec, &[K("dataRoot")]),
                        &format!("dataRoot {d:?} is not a clean absolute path"),
                        "expected an absolute path without '.', '..' or empty components, such as /var/lib/sealer/data",
                    ));
                }
            },
        };
        Ok(Clusterfile {
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
            master0,
        })
    }

    /// `KEY=VALUE` entries: keys checked, `SvcCIDR` checked (built-ins derive from it).
    fn env_list(&self, entries: &[String], segs: &[Seg]) -> Result<Env, Failure> {
        let mut env = Env::new();
        for (i, entry) in entries.iter().enumerate() {
            let here = at(segs, &[I(i)]);
            let (key, value) = penv::parse_entry(entry).map_err(|e| match e {
                EnvError::BadKey { key } => self.fail(
                    &here,
                    &format!("env key {key:?} is invalid"),
                    "expected a key matching [A-Za-z_][A-Za-z0-9_]* so scripts can read it",
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
            })?;
            if key == "SvcCIDR" && penv::service_ips(&value).is_err() {
                return Err(self.fail(
                    &here,
                    &format!("SvcCIDR {value:?} is not a usable CIDR"),
                    "expected a CIDR such as 10.96.0.0/12 (KubeSvcIP and DNSSvcIP derive from it)",
                ));
            }
            env.insert(key, value);
        }
        Ok(env)
    }
}
