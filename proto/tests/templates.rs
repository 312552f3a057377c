//! Golden files for the template engine: `templates/succeeds/<name>.tmpl` rendered with
//! `<name>.env` must equal `<name>.out`; `templates/fails/<name>.tmpl` must fail with exactly
//! the message in `<name>.err`; `templates/limits/<name>.tmpl` likewise, for templates that
//! would build more text than a render may (kept out of the mutation test, which would
//! render each of them hundreds of times). Plus: no input makes the parser hang or panic,
//! and no template makes a render take the host's memory or time.
//!
//! Against Go itself (see `templates/go/` and `scripts/template-goldens.sh`): the
//! hand-written cases of `go/cases.txt` and a generated corpus of random templates must
//! render as Go 1.19's `text/template` rendered them, and fail where Go failed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use installer_proto::env::Env;
use installer_proto::template::{MAX_TEXT, Template, render};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "templates/go/mod.rs"]
mod go;

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
fn index_reaches_any_key_and_a_missing_key_is_undefined_as_with_a_field() {
    let env: Env = [("etcd-dir".to_string(), "/var/lib/etcd".to_string())].into();
    let src = r#"{{ index . "etcd-dir" }}|{{ if index . "nope" }}y{{ else }}n{{ end }}|{{ or (index . "nope") "d" }}|{{ eq (index $ "nope") "" }}|{{ not (index . "nope") }}"#;
    assert_eq!(
        render("t", src, &env).unwrap(),
        "/var/lib/etcd|n|d|true|true"
    );
    // Go would print "" here; a missing key is an error wherever it is printed.
    let err = render("t", "a\n{{ index . \"nope\" }}", &env).unwrap_err();
    assert_eq!((err.line, err.col), (2, 4), "{err}");
    assert!(err.message.contains("undefined key \"nope\""), "{err}");
    let err = render("t", r#"{{ printf "%s" (index . "nope") }}"#, &env).unwrap_err();
    assert!(err.message.contains("undefined key"), "{err}");
}

#[test]
fn no_truncation_or_mutation_of_real_templates_hangs_or_panics() {
    let started = std::time::Instant::now();
    let host: Env = [("HostIP".to_string(), "10.0.0.1".to_string())].into();
    let go_env = go::go_env();
    let mut all: Vec<(String, String, &Env)> = cases("succeeds")
        .into_iter()
        .chain(cases("fails"))
        .map(|(name, src, _)| (name, src, &host))
        .collect();
    // Go's hand-written cases reach every builtin and printf form.
    all.extend(
        go::hand_written()
            .into_iter()
            .map(|(name, src)| (name, src, &go_env)),
    );
    for (name, src, env) in all {
        let chars: Vec<char> = src.chars().collect();
        for cut in 0..chars.len() {
            let truncated: String = chars[..cut].iter().collect();
            let _ = Template::parse(&name, &truncated).map(|t| t.render(env));
            // Drop one character: unbalanced quotes, braces and parentheses everywhere.
            let mutated: String = chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != cut)
                .map(|(_, c)| c)
                .collect();
            let _ = Template::parse(&name, &mutated).map(|t| t.render(env));
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

#[test]
fn oversized_output_and_strings_fail_with_their_position_and_the_limit() {
    for (name, src, env) in cases("limits") {
        let want = fs::read_to_string(dir("limits").join(name.replace(".tmpl", ".err"))).unwrap();
        let started = Instant::now();
        let err = render(&name, &src, &env).expect_err(&name);
        assert_eq!(err.to_string(), want.trim_end(), "{name}");
        assert!(started.elapsed() < Duration::from_secs(20), "{name}");
    }
}

/// Builds `$e`, ten million `x`, in a few small steps (each one well under the limit).
const TEN_MB: &str = r#"{{- $a := "xxxxxxxxxx" -}}
{{- $b := replace "x" $a $a -}}
{{- $c := replace "x" $b $b -}}
{{- $d := replace "x" $b $c -}}
{{- $e := replace "x" $a $d -}}
"#;

/// The limit as messages state it.
const LIMIT: &str = "over the limit of 67108864 bytes (64 MiB)";

#[test]
fn every_function_that_builds_text_checks_the_size_first() {
    assert_eq!(MAX_TEXT, 64 << 20);
    let env = Env::new();
    // (the action on line 6, after TEN_MB; the function the message names)
    let cases = [
        (
            r#"{{ $x := printf "%s%s%s%s%s%s%s" $e $e $e $e $e $e $e }}"#,
            "printf would build more",
        ),
        (
            "{{ $x := quote $e $e $e $e $e $e $e }}",
            "quote would build more",
        ),
        (
            "{{ $x := squote $e $e $e $e $e $e $e }}",
            "squote would build more",
        ),
        (
            "{{ $x := toString $e $e $e $e $e $e $e }}",
            "toString would build 70000000 bytes",
        ),
        (
            r#"{{ $x := join $e (splitList "," "a,b,c,d,e,f,g,h") }}"#,
            "join would build 70000008 bytes",
        ),
        (
            "{{ $x := b64enc (print $e $e $e $e $e $e) }}",
            "b64enc would build 80000000 bytes",
        ),
        // ΐ (2 bytes) upper-cases to three letters of 2 bytes each. (`lower` is sized the
        // same way; its largest growth, 1.5×, would take seconds more to reach the limit.)
        (
            r#"{{ $x := upper (replace "x" "ΐ" (print $e $d $d)) }}"#,
            "upper would build 72000000 bytes",
        ),
        // Ten million one-letter elements cost far more than ten megabytes.
        (
            r#"{{ $x := splitList "" $e }}"#,
            "splitList (a list of 10000000 elements) would build",
        ),
        // An empty pattern inserts at every char boundary.
        (
            r#"{{ $x := replace "" "xxxxxxx" $e }}"#,
            "replace would build 80000007 bytes",
        ),
    ];
    for (action, want) in cases {
        let src = format!("{TEN_MB}{action}");
        let started = Instant::now();
        let err = render("t.tmpl", &src, &env).expect_err(action);
        let text = err.to_string();
        assert!(text.starts_with("t.tmpl:6:"), "{action}: {text}");
        assert!(text.contains(want), "{action}: {text}");
        assert!(text.contains(LIMIT), "{action}: {text}");
        assert!(started.elapsed() < Duration::from_secs(20), "{action}");
    }
}

#[test]
fn the_reported_template_bombs_fail_with_a_position_instead_of_aborting() {
    // Squarings of a 40-letter value: 1600, 2.56 million, then 6.5 trillion bytes, refused
    // at the third `replace`.
    let env: Env = [("A".to_string(), "x".repeat(40))].into();
    let squares = "{{ $a := .A }}{{ $a = replace \"x\" $a $a }}{{ $a = replace \"x\" $a $a }}{{ $a = replace \"x\" $a $a }}{{ $a = replace \"x\" $a $a }}{{ $a }}";
    let err = render("squares.tmpl", squares, &env).unwrap_err();
    assert_eq!(err.line, 1);
    assert_eq!(err.col, 79, "{err}");
    assert!(err.message.contains(LIMIT), "{err}");

    // 200 KB of text in a range over 16,001 elements: 3.2 GB of output.
    let env: Env = [("L".to_string(), ",".repeat(16_000))].into();
    let src = format!(
        "head\n{{{{ range splitList \",\" .L }}}}{}{{{{ end }}}}",
        "y".repeat(200_000)
    );
    let err = render("range.tmpl", &src, &env).unwrap_err();
    assert_eq!((err.line, err.col), (2, 29), "{err}");
    assert!(err.message.contains("for one template's output"), "{err}");
}

#[test]
fn text_built_and_dropped_in_a_loop_counts_against_the_total() {
    // Each string is 10 MB and dropped at the end of its iteration; thirty of them pass
    // the 256 MiB a render may build, which is what bounds memory held in variables.
    let src = format!(
        "{TEN_MB}{{{{ range splitList \",\" \"{}\" }}}}{{{{ $x := print $e }}}}{{{{ end }}}}",
        vec!["1"; 30].join(",")
    );
    let err = render("t.tmpl", &src, &Env::new()).unwrap_err();
    assert!(
        err.message
            .contains("over 268435456 bytes (256 MiB) of text"),
        "{err}"
    );
}

#[test]
fn reading_a_long_string_over_and_over_runs_out_of_steps_not_hours() {
    // A million scans of ten megabytes would take hours; each one costs steps.
    let src = format!(
        "{TEN_MB}{{{{ range splitList \"x\" $d }}}}{{{{ if contains \"y\" $e }}}}y{{{{ end }}}}{{{{ end }}}}"
    );
    let started = Instant::now();
    let err = render("t.tmpl", &src, &Env::new()).unwrap_err();
    assert!(err.message.contains("too much work"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
