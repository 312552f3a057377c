//! The checks of `kind: Plugin` and `kind: Config` documents.

mod scope;

use super::docs::{Failure, Problem};
use super::locate::Seg;
use super::raw;
use super::{ConfigSpec, ConfigStrategy, HostSpec, PluginSpec};
use Seg::Key as K;
use installer_proto::plan::HookPhase;
use serde::Deserialize;

const PHASES_EXPECTED: &str =
    "expected pre-init-host, post-init-host, pre-clean-host or post-clean-host, joined by |";

/// A phase as sealer spells it: v0.9+ (`pre-init-host`), CamelCase (`PreInitHost`) and the
/// v0.8 names. A v0.8 name maps to the v0.9 host phase that runs at the same point; one
/// without such a phase is refused with the phase to use instead.
fn phase(name: &str) -> Result<HookPhase, String> {
    let found = HookPhase::parse(name).or(match name {
        "PreInitHost" | "PreInit" => Some(HookPhase::PreInitHost),
        "PostInitHost" | "PostInstall" => Some(HookPhase::PostInitHost),
        "PreCleanHost" | "PreClean" => Some(HookPhase::PreCleanHost),
        "PostCleanHost" | "PostClean" => Some(HookPhase::PostCleanHost),
        _ => None,
    });
    if let Some(p) = found {
        return Ok(p);
    }
    // v0.8 names whose moment has no exact host phase in v0.9.
    let v08 = match name {
        "Originally" => Some("it ran before anything else; use pre-init-host"),
        "PostInit" => Some(
            "it ran after kubeadm init on master0, which this version does not run; use post-init-host",
        ),
        "PreInstall" => Some(
            "it ran before the nodes joined, which this version does not do; use post-init-host",
        ),
        "PreGuest" => Some(
            "it ran before the image's applications, which need a running cluster; use post-init-host",
        ),
        "ClusterCheck" => Some("it checked a running cluster; this version has none to check"),
        _ => None,
    };
    if let Some(why) = v08 {
        return Err(format!("phase {name:?} is sealer v0.8's, and {why}"));
    }
    let cluster_phases = [
        "pre-install",
        "post-install",
        "pre-uninstall",
        "post-uninstall",
        "pre-scaleup",
        "post-scaleup",
        "upgrade",
        "rollback",
        "upgrade-host",
    ];
    Err(if cluster_phases.contains(&name) {
        format!("phase {name:?} is one of sealer's cluster phases, which this version does not run")
    } else {
        format!("unknown phase {name:?}")
    })
}

/// Checks a Plugin. `hosts` is `None` when the Cluster could not be read (then the scope's
/// roles are not checked). Problems go to `errors`; the plugin is returned when it has none.
pub(super) fn plugin(
    doc: usize,
    p: raw::Plugin,
    hosts: Option<&[HostSpec]>,
    warnings: &mut Vec<Problem>,
    errors: &mut Vec<Failure>,
) -> Option<PluginSpec> {
    let before = errors.len();
    let fail =
        |segs: &[Seg], what: &str, expected: &str| Failure::at(doc, segs, false, what, expected);
    let name = p.metadata.name;
    let check = installer_proto::plan::Plugin {
        name: name.clone(),
        phases: Vec::new(),
        data: String::new(),
    };
    if check.check().is_err() {
        errors.push(fail(
            &[K("metadata"), K("name")],
            &format!("plugin name {name:?} is invalid"),
            "expected letters, digits, '-', '_' and '.' (it names the step)",
        ));
    }
    let s = p.spec;
    if s.kind != "SHELL" {
        errors.push(fail(
            &[K("spec"), K("type")],
            &format!("plugin type {:?} is not supported", s.kind),
            "expected SHELL",
        ));
    }
    let mut phases = Vec::new();
    for part in s.action.split('|').map(str::trim) {
        match phase(part) {
            Ok(ph) if !phases.contains(&ph) => phases.push(ph),
            Ok(_) => {}
            Err(what) => errors.push(fail(&[K("spec"), K("action")], &what, PHASES_EXPECTED)),
        }
    }
    let scope = match scope::of(doc, s.scope, s.on, hosts, warnings) {
        Ok(scope) => Some(scope),
        Err(failure) => {
            errors.push(failure);
            None
        }
    };
    if s.data.trim().is_empty() {
        errors.push(fail(
            &[K("spec"), K("data")],
            "data is empty",
            "expected the shell text to run",
        ));
    }
    let scope = scope.filter(|_| errors.len() == before)?;
    Some(PluginSpec {
        name,
        phases,
        scope: scope.roles,
        ips: scope.ips,
        data: s.data,
    })
}

/// Checks a Config; problems go to `errors`, the config is returned when it has none.
pub(super) fn config(doc: usize, c: raw::Config, errors: &mut Vec<Failure>) -> Option<ConfigSpec> {
    let before = errors.len();
    let spec = config_spec(doc, c, errors);
    spec.filter(|_| errors.len() == before)
}

fn config_spec(doc: usize, c: raw::Config, errors: &mut Vec<Failure>) -> Option<ConfigSpec> {
    let fail =
        |segs: &[Seg], what: &str, expected: &str| Failure::at(doc, segs, false, what, expected);
    let s = c.spec;
    for (field, key) in [(&s.process, "process"), (&s.app_name, "appName")] {
        if field.is_some() {
            errors.push(Failure::at(
                doc,
                &[K("spec"), K(key)],
                true,
                "not supported (applications and value processing are not part of this version)",
                "remove it",
            ));
        }
    }
    if installer_proto::manifest::check_rel_path(&s.path).is_err() {
        errors.push(fail(
            &[K("spec"), K("path")],
            &format!(
                "path {:?} is not a clean relative path inside the rootfs",
                s.path
            ),
            "expected a relative path without '.', '..' or empty components, such as etc/daemon.json",
        ));
    }
    let strategy = match s.strategy.as_deref() {
        None | Some("overwrite") => ConfigStrategy::Overwrite,
        Some("merge") => ConfigStrategy::Merge,
        Some(other) => {
            errors.push(fail(
                &[K("spec"), K("strategy")],
                &format!("strategy {other:?} is not supported"),
                "expected overwrite or merge",
            ));
            return None;
        }
    };
    if strategy == ConfigStrategy::Merge {
        for de in yaml_serde::Deserializer::from_str(&s.data) {
            if let Err(e) = yaml_serde::Value::deserialize(de) {
                errors.push(fail(
                    &[K("spec"), K("data")],
                    &format!("data is not valid YAML ({e})"),
                    "expected YAML to merge into the file (strategy: merge)",
                ));
                break;
            }
        }
    }
    Some(ConfigSpec {
        name: c.metadata.name,
        path: s.path,
        data: s.data,
        strategy,
    })
}
