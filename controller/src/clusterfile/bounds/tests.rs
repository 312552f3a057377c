//! The bounds, each at its limit and one past it.

use super::*;
use crate::clusterfile::docs::Failure;

fn deep(open: &str, n: usize) -> String {
    format!("a: {}\n", open.repeat(n))
}

#[test]
fn deep_flow_nesting_is_found_at_its_bracket() {
    assert_eq!(flow_too_deep(&deep("[", 64)), None);
    assert_eq!(flow_too_deep(&deep("[", 65)), Some((1, 68)));
    assert_eq!(flow_too_deep(&deep("{a: ", 100)), Some((1, 4 + 64 * 4)));
    assert_eq!(
        flow_too_deep(&format!("- {}", "[".repeat(100_000))),
        Some((1, 67))
    );
    // Closed brackets do not add up; a new document starts at depth 0.
    let many = format!("a: {}\n", "[[x]], ".repeat(1000));
    assert_eq!(flow_too_deep(&many), None);
    let docs = format!("{}---\n{}", deep("[", 60), deep("[", 60));
    assert_eq!(flow_too_deep(&docs), None);
    // Multi-line flow and JSON-style keys.
    let json = format!("a: {}\n", "{\"k\":[\n".repeat(40));
    assert_eq!(flow_too_deep(&json), Some((33, 1)));
}

#[test]
fn brackets_in_text_are_not_nesting() {
    let b = "[".repeat(200);
    for text in [
        format!("a: \"{b}\"\n"),
        format!("a: '{b}''{b}'\n"),
        format!("a: x{b}\n"),
        format!("a: x y {b}\n"),
        format!("a: 1 # {b}\n"),
        format!("# {b}\nb: 2\n"),
        format!("a: |\n  {b}\n  x\n\n  {b}\nb: 2\n"),
        format!("- data: >-\n    {b}\n  other: 1\n"),
        format!("a: [\"{b}\", '{b}', x]\n"),
        format!("a: \"multi\n  line {b}\"\n"),
        format!("a: {{k: \"\\\"{b}\"}}\n"),
    ] {
        assert_eq!(flow_too_deep(&text), None, "{text}");
    }
    // In flow context a bracket always opens a collection, even right after text (the
    // parser then stops there with a syntax error).
    let glued = format!("a: [x{b}]\n");
    assert_eq!(flow_too_deep(&glued), Some((1, 69)));
    // After the block scalar ends, brackets count again.
    let after = format!("a: |\n  {b}\nb: {b}\n");
    assert_eq!(flow_too_deep(&after), Some((3, 68)));
    // Line breaks YAML knows besides \n end a comment too.
    let cr = format!("a: 1 # x\r\nb: {b}\n");
    assert_eq!(flow_too_deep(&cr), Some((2, 68)));
}

#[test]
fn the_walk_counts_aliases_and_block_depth() {
    let fine = "a: &x [1, 2, 3]\nb: [*x, *x]\n";
    assert!(walk(fine).is_ok());
    let bomb = format!(
        "a: &x [{}]\nb: [{}]\n",
        vec!["1"; 1000].join(", "),
        vec!["*x"; 1000].join(", ")
    );
    let Err(Failure::Yaml(e)) = walk(&bomb) else {
        panic!("alias bomb accepted")
    };
    assert!(e.to_string().contains("more than 250000 YAML nodes"), "{e}");
    let mut block = String::new();
    for i in 0..70 {
        block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    let Err(Failure::Yaml(e)) = walk(&block) else {
        panic!("deep block nesting accepted")
    };
    // The parser names the path to the node, as in its other messages.
    assert!(e.to_string().starts_with("k0.k1.k2."), "{e}");
    assert!(
        e.to_string().contains(": nesting deeper than 64 levels"),
        "{e}"
    );
    assert_eq!(e.location().map(|l| l.line()), Some(65));
}
