//! The comparison with Go: the fixed env, the goldens Go wrote, and the check that our
//! engine renders each case as Go did (or fails where Go failed).

mod corpus;
mod generator;

use installer_proto::env::Env;
use installer_proto::template::render;
use serde::Deserialize;
use std::fs;
use std::path::PathBuf;

fn go_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/templates/go")
}

/// The env every Go case is rendered with (`go/env.txt`, as `render.go` reads it).
pub(super) fn go_env() -> Env {
    fs::read_to_string(go_dir().join("env.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// What Go did with one case.
#[derive(Deserialize)]
struct GoResult {
    #[serde(default)]
    name: String,
    ok: bool,
    out: String,
    #[serde(default)]
    error: String,
}

fn goldens(file: &str) -> Vec<GoResult> {
    let text = fs::read_to_string(go_dir().join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The cases of `go/cases.txt`.
pub(super) fn hand_written() -> Vec<(String, String)> {
    cases_in("cases.txt")
}

/// The cases of a file of hand-written cases: a line `--- name` starts each; its template
/// is the lines up to the next one, without the last newline (as `render.go` reads them).
fn cases_in(file: &str) -> Vec<(String, String)> {
    let text = fs::read_to_string(go_dir().join(file)).unwrap();
    let mut cases: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("--- ") {
            cases.push((name.to_string(), Vec::new()));
        } else if let Some((_, lines)) = cases.last_mut() {
            lines.push(line);
        }
    }
    cases
        .into_iter()
        .map(|(name, lines)| (name, lines.join("\n")))
        .collect()
}

/// Renders each template and compares with Go; returns the differences, described.
fn differences(srcs: &[(String, String)], want: &[GoResult]) -> Vec<String> {
    assert_eq!(
        srcs.len(),
        want.len(),
        "the goldens are stale: run scripts/template-goldens.sh"
    );
    let env = go_env();
    let mut diffs = Vec::new();
    for ((name, src), go) in srcs.iter().zip(want) {
        let ours = render(name, src, &env);
        match (&ours, go.ok) {
            (Ok(out), true) if *out == go.out => {}
            (Err(_), false) => {}
            (Ok(out), true) => diffs.push(format!(
                "{name}: {src:?}\n  go:   {:?}\n  ours: {out:?}",
                go.out
            )),
            (Ok(out), false) => diffs.push(format!(
                "{name}: {src:?}\n  go failed: {}\n  ours: {out:?}",
                go.error
            )),
            (Err(e), true) => diffs.push(format!(
                "{name}: {src:?}\n  go:   {:?}\n  ours failed: {e}",
                go.out
            )),
        }
    }
    diffs
}

#[test]
fn hand_written_cases_render_as_go_renders_them() {
    let cases = hand_written();
    let want = goldens("cases.golden.json");
    for ((name, _), go) in cases.iter().zip(&want) {
        assert_eq!(
            *name, go.name,
            "the goldens are stale: run scripts/template-goldens.sh"
        );
    }
    assert!(cases.len() >= 100, "{}", cases.len());
    let diffs = differences(&cases, &want);
    assert!(
        diffs.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        diffs.len(),
        cases.len(),
        diffs.join("\n")
    );
}

#[test]
fn undefined_keys_in_conditions_are_false_as_in_go_without_missingkey_error() {
    // Go's default (sealer's): an undefined key is no value, false where it is tested.
    let cases = cases_in("undefined.txt");
    let want = goldens("undefined.golden.json");
    assert!(cases.len() >= 10, "{}", cases.len());
    assert!(want.iter().all(|r| r.ok), "every case renders in Go");
    let diffs = differences(&cases, &want);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
