//! Golden files for the template engine: `templates/succeeds/<name>.tmpl` rendered with
//! `<name>.env` must equal `<name>.out`; `templates/fails/<name>.tmpl` must fail with exactly
//! the message in `<name>.err`. Plus: no input makes the parser hang or panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use installer_proto::env::Env;
use installer_proto::template::{Template, render};
use std::fs;
use std::path::{Path, PathBuf};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/templates")
        .join(kind)
}

fn cases(kind: &str) -> Vec<(String, String, Env)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir(kind)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("tmpl") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let src = fs::read_to_string(&path).unwrap();
        let env_text = fs::read_to_string(path.with_extension("env")).unwrap_or_default();
        let env = env_text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        out.push((name, src, env));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no cases in {kind}");
    out
}

#[test]
fn golden_templates_render_as_expected() {
    for (name, src, env) in cases("succeeds") {
        let want = fs::read_to_string(dir("succeeds").join(name.replace(".tmpl", ".out"))).unwrap();
        let got = render(&name, &src, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn bad_templates_fail_with_their_position_and_message() {
    for (name, src, env) in cases("fails") {
        let want = fs::read_to_string(dir("fails").join(name.replace(".tmpl", ".err"))).unwrap();
        let err = render(&name, &src, &env).expect_err(&name);
        assert_eq!(err.to_string(), want.trim_end(), "{name}");
    }
}

#[test]
fn undefined_keys_are_false_in_conditions() {
    let env = Env::new();
    let src = "{{ if .A }}a{{ else if not .B }}nb{{ end }}|{{ with .C }}c{{ else }}no-c{{ end }}|{{ or .D \"d\" }}|{{ if eq .E \"\" }}empty{{ end }}";
    assert_eq!(render("t", src, &env).unwrap(), "nb|no-c|d|empty");
}

#[test]
fn no_truncation_or_mutation_of_real_templates_hangs_or_panics() {
    let started = std::time::Instant::now();
    let env: Env = [("HostIP".to_string(), "10.0.0.1".to_string())].into();
    for kind in ["succeeds", "fails"] {
        for (name, src, _) in cases(kind) {
            let chars: Vec<char> = src.chars().collect();
            for cut in 0..chars.len() {
                let truncated: String = chars[..cut].iter().collect();
                let _ = Template::parse(&name, &truncated).map(|t| t.render(&env));
                // Drop one character: unbalanced quotes, braces and parentheses everywhere.
                let mutated: String = chars
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != cut)
                    .map(|(_, c)| c)
                    .collect();
                let _ = Template::parse(&name, &mutated).map(|t| t.render(&env));
            }
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn hostile_nesting_is_refused_with_a_message_not_a_stack_overflow() {
    let env = Env::new();
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(200_000), ")".repeat(200_000));
    let blocks = "{{ if true }}".repeat(200_000);
    for src in [parens, blocks] {
        let err = render("deep.tmpl", &src, &env).unwrap_err();
        assert!(err.message.contains("nesting deeper than"), "{err}");
    }
}
