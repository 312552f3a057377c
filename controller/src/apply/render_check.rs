//! The last check before anything is sent: every template of every host's plan renders
//! with that host's env (SPEC §2). Values such as `HostName` come from preflight's facts,
//! so this runs after preflight; a key a template needs and the env lacks is found here,
//! on the controller, instead of on every host after the rootfs was shipped to it.

use super::host::Connected;
use super::inputs::Inputs;
use super::phases::ship::plan_for;
use installer_proto::kubeadm;
use installer_proto::plan::{Plan, Timeouts};
use installer_proto::rootfs::{MergedTree, is_template};
use installer_proto::template::Template;
use std::collections::BTreeMap;

/// How many different problems the message lists.
const SHOWN: usize = 50;

/// Renders every host's templates. `Ok` holds what the kubeadm merge noted (a value that
/// counted as unset, an apiVersion not taken), once each with its hosts; `Err` lists every
/// problem once, with the hosts it occurs on, in the hosts' order.
pub async fn check(
    inputs: &Inputs,
    hosts: &[Connected],
    timeouts: &Timeouts,
) -> Result<Vec<String>, String> {
    // problem → the hosts it occurs on; the order of first occurrence is kept.
    let mut problems: Vec<(String, Vec<String>)> = Vec::new();
    let mut notes: Vec<(String, Vec<String>)> = Vec::new();
    for c in hosts {
        let host = &c.host.ip;
        let found = match plan_for(inputs, &c.host, &c.facts, timeouts.clone()).await {
            Ok((plan, tree)) => render_all(&plan, &tree),
            Err(e) => Found {
                problems: vec![e],
                notes: Vec::new(),
            },
        };
        group(&mut problems, found.problems, host);
        group(&mut notes, found.notes, host);
    }
    if problems.is_empty() {
        return Ok(notes
            .into_iter()
            .map(|(note, on)| format!("{note} (on {})", on.join(", ")))
            .collect());
    }
    let total = problems.len();
    let mut lines: Vec<String> = problems
        .into_iter()
        .take(SHOWN)
        .map(|(problem, on)| format!("{problem} (on {})", on.join(", ")))
        .collect();
    if total > SHOWN {
        lines.push(format!("… and {} more", total - SHOWN));
    }
    lines.push(
        "Every template must render for every host before anything is sent. Nothing was sent to any host."
            .to_string(),
    );
    Err(lines.join("\n"))
}

/// Adds `found` to `into`, each once with the hosts it occurs on.
fn group(into: &mut Vec<(String, Vec<String>)>, found: Vec<String>, host: &str) {
    for item in found {
        match into.iter_mut().find(|(p, _)| *p == item) {
            Some((_, on)) => on.push(host.to_string()),
            None => into.push((item, vec![host.to_string()])),
        }
    }
}

/// What rendering one host's templates found.
struct Found {
    /// Each `file:line:col: what`.
    problems: Vec<String>,
    /// The kubeadm merge's notes, each `etc/kubeadm.yml: what`.
    notes: Vec<String>,
}

/// Renders `plan`'s templates as the agent will.
fn render_all(plan: &Plan, tree: &MergedTree) -> Found {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let by_path: BTreeMap<&str, _> = plan
        .manifest
        .files()
        .filter(|e| is_template(&e.path))
        .map(|e| (e.path.as_str(), tree.source(&e.path)))
        .collect();
    for (path, source) in by_path {
        let Some(source) = source else {
            problems.push(format!("{path}: not in the merged rootfs"));
            continue;
        };
        let text = match std::fs::read_to_string(source) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{path}: reading {}: {e}", source.display()));
                continue;
            }
        };
        let rendered = match Template::parse(path, &text).and_then(|t| t.render(&plan.env)) {
            Ok(rendered) => rendered,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        // The Clusterfile's kubeadm documents are merged into etc/kubeadm.yml as the agent
        // will merge them: a merge that would fail there fails here.
        let output = path.trim_end_matches(".tmpl");
        match kubeadm::merge_output(output, &rendered, &plan.kubeadm) {
            Ok(merged) => notes.extend(
                merged
                    .into_iter()
                    .flat_map(|m| m.notes)
                    .map(|n| format!("{output}: {n}")),
            ),
            Err(e) => problems.push(format!("{output}: {e}")),
        }
    }
    Found { problems, notes }
}
