//! The last check before anything is sent: every template of every host's plan renders
//! with that host's env (SPEC §2). Values such as `HostName` come from preflight's facts,
//! so this runs after preflight; a key a template needs and the env lacks is found here,
//! on the controller, instead of on every host after the rootfs was shipped to it.

use super::host::Connected;
use super::inputs::Inputs;
use super::phases::ship::plan_for;
use installer_proto::plan::{Plan, Timeouts};
use installer_proto::rootfs::{MergedTree, is_template};
use installer_proto::template::Template;
use std::collections::BTreeMap;

/// How many different problems the message lists.
const SHOWN: usize = 50;

/// Renders every host's templates. `Err` lists every problem once, with the hosts it
/// occurs on, in the hosts' order.
pub async fn check(
    inputs: &Inputs,
    hosts: &[Connected],
    timeouts: &Timeouts,
) -> Result<(), String> {
    // problem → the hosts it occurs on; the order of first occurrence is kept.
    let mut problems: Vec<(String, Vec<String>)> = Vec::new();
    for c in hosts {
        let host = &c.host.ip;
        let found = match plan_for(inputs, &c.host, &c.facts, timeouts.clone()).await {
            Ok((plan, tree)) => render_all(&plan, &tree),
            Err(e) => vec![e],
        };
        for problem in found {
            match problems.iter_mut().find(|(p, _)| *p == problem) {
                Some((_, on)) => on.push(host.clone()),
                None => problems.push((problem, vec![host.clone()])),
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
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

/// Every problem rendering `plan`'s templates, each `file:line:col: what`.
fn render_all(plan: &Plan, tree: &MergedTree) -> Vec<String> {
    let mut problems = Vec::new();
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
        if let Err(e) = Template::parse(path, &text).and_then(|t| t.render(&plan.env)) {
            problems.push(e.to_string());
        }
    }
    problems
}
