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

#[test]
fn no_mutation_of_the_corpus_panics_or_hangs() {
    let srcs: Vec<String> =
        serde_json::from_str(&fs::read_to_string(go_dir().join("corpus.json")).unwrap()).unwrap();
    let env = super::go_env();
    let started = std::time::Instant::now();
    // Seeded like the corpus: six mutations of each template (a character dropped, the
    // text cut, or a character that opens or closes something inserted).
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for src in &srcs {
        let chars: Vec<char> = src.chars().collect();
        for _ in 0..6 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let k = (seed as usize) % chars.len().max(1);
            let mut m = chars.clone();
            match seed % 3 {
                0 if !m.is_empty() => {
                    m.remove(k);
                }
                1 => m.truncate(k),
                _ => {
                    let marks = [
                        '(', ')', '"', '%', '{', '}', '.', '$', '-', '\'', '`', '|', '0',
                    ];
                    m.insert(k, marks[(seed >> 20) as usize % marks.len()]);
                }
            }
            let mutated: String = m.into_iter().collect();
            // A panic fails the test.
            let _ = installer_proto::template::render("mutated", &mutated, &env);
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
