//! The checks of `kind: Plugin` and `kind: Config` documents.

use super::docs::Failure;
use super::locate::Seg;
use super::raw;
use super::{ConfigSpec, ConfigStrategy, HostSpec, PluginSpec};
use Seg::Key as K;
use installer_proto::plan::HookPhase;
use serde::Deserialize;

const PHASES_EXPECTED: &str =
    "expected pre-init-host, post-init-host, pre-clean-host or post-clean-host, joined by |";

/// A phase as sealer spells it: v0.9+ (`pre-init-host`), CamelCase (`PreInitHost`) and the
/// v0.8 names (`PreInit`, `PostInstall`, `PreClean`, `PostClean`), which ran on hosts too.
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

pub(super) fn plugin(
    doc: usize,
    p: raw::Plugin,
    hosts: &[HostSpec],
) -> Result<PluginSpec, Failure> {
    let fail =
        |segs: &[Seg], what: &str, expected: &str| Failure::at(doc, segs, false, what, expected);
    let name = p.metadata.name;
    let check = installer_proto::plan::Plugin {
        name: name.clone(),
        phases: Vec::new(),
        data: String::new(),
    };
    if check.check().is_err() {
        return Err(fail(
            &[K("metadata"), K("name")],
            &format!("plugin name {name:?} is invalid"),
            "expected letters, digits, '-', '_' and '.' (it names the step)",
        ));
    }
    let s = p.spec;
    if s.kind != "SHELL" {
        return Err(fail(
            &[K("spec"), K("type")],
            &format!("plugin type {:?} is not supported", s.kind),
            "expected SHELL",
        ));
    }
    let mut phases = Vec::new();
    for part in s.action.split('|').map(str::trim) {
        let ph =
            phase(part).map_err(|what| fail(&[K("spec"), K("action")], &what, PHASES_EXPECTED))?;
        if !phases.contains(&ph) {
            phases.push(ph);
        }
    }
    let mut known: Vec<&str> = Vec::new();
    for h in hosts {
        for r in &h.roles {
            if !known.contains(&r.as_str()) {
                known.push(r);
            }
        }
    }
    let scope_expected = format!("expected roles joined by |, among: {}", known.join(", "));
    let Some(scope_text) = s.scope.filter(|t| !t.trim().is_empty()) else {
        return Err(Failure::at(
            doc,
            &[K("spec"), K("scope")],
            true,
            "no scope (sealer runs such a plugin on no host)",
            &scope_expected,
        ));
    };
    let mut scope = Vec::new();
    for role in scope_text.split('|').map(str::trim) {
        if !known.contains(&role) {
            return Err(fail(
                &[K("spec"), K("scope")],
                &format!("scope role {role:?} is not a role of any host"),
                &scope_expected,
            ));
        }
        if !scope.iter().any(|r: &String| r == role) {
            scope.push(role.to_string());
        }
    }
    if s.data.trim().is_empty() {
        return Err(fail(
            &[K("spec"), K("data")],
            "data is empty",
            "expected the shell text to run",
        ));
    }
    Ok(PluginSpec {
        name,
        phases,
        scope,
        data: s.data,
    })
}

pub(super) fn config(doc: usize, c: raw::Config) -> Result<ConfigSpec, Failure> {
    let fail =
        |segs: &[Seg], what: &str, expected: &str| Failure::at(doc, segs, false, what, expected);
    let s = c.spec;
    for (field, key) in [(&s.process, "process"), (&s.app_name, "appName")] {
        if field.is_some() {
            return Err(Failure::at(
                doc,
                &[K("spec"), K(key)],
                true,
                "not supported (applications and value processing are not part of this version)",
                "remove it",
            ));
        }
    }
    if installer_proto::manifest::check_rel_path(&s.path).is_err() {
        return Err(fail(
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
            return Err(fail(
                &[K("spec"), K("strategy")],
                &format!("strategy {other:?} is not supported"),
                "expected overwrite or merge",
            ));
        }
    };
    if strategy == ConfigStrategy::Merge {
        for de in yaml_serde::Deserializer::from_str(&s.data) {
            if let Err(e) = yaml_serde::Value::deserialize(de) {
                return Err(fail(
                    &[K("spec"), K("data")],
                    &format!("data is not valid YAML ({e})"),
                    "expected YAML to merge into the file (strategy: merge)",
                ));
            }
        }
    }
    Ok(ConfigSpec {
        name: c.metadata.name,
        path: s.path,
        data: s.data,
        strategy,
    })
}
