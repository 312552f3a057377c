//! The differential corpus: `corpus.json` is what the generator (`generator`) makes,
//! committed with `corpus.golden.json`, Go's output (or failure) for each template; the
//! tests check both that the generator still makes exactly that file and that our engine
//! agrees with Go on every case.

use super::generator::generate;
use super::{differences, go_dir, goldens};
use std::fs;

#[test]
fn the_corpus_is_what_the_generator_makes() {
    let path = go_dir().join("corpus.json");
    let made = generate();
    if std::env::var_os("REGENERATE_TEMPLATE_CORPUS").is_some() {
        fs::write(&path, &made).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap();
    assert!(
        committed == made,
        "corpus.json is not what the generator makes: run scripts/template-goldens.sh"
    );
}

#[test]
fn the_corpus_renders_as_go_renders_it() {
    let srcs: Vec<String> =
        serde_json::from_str(&fs::read_to_string(go_dir().join("corpus.json")).unwrap()).unwrap();
    assert!(srcs.len() >= 2000, "{}", srcs.len());
    let want = goldens("corpus.golden.json");
    let named: Vec<(String, String)> = srcs
        .into_iter()
        .enumerate()
        .map(|(k, src)| (format!("corpus#{k}"), src))
        .collect();
    let diffs = differences(&named, &want);
    let failing = want.iter().filter(|r| !r.ok).count();
    assert!(
        diffs.is_empty(),
        "{} of {} cases differ from Go ({failing} fail in Go):\n{}",
        diffs.len(),
        named.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
