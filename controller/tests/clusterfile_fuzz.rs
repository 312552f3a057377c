//! Broken Clusterfiles, many of them: realistic files truncated at every few bytes, with
//! bytes flipped and with brackets, quotes, tabs, NULs and the like inserted. Each one must
//! be accepted or refused with `file:line:col: what; expected …` — never a panic, never a
//! hang, never more than a bounded amount of memory.
//!
//! The cases are derived deterministically (a fixed seed), so a failure names a case that
//! can be replayed. This file holds one test on purpose: the memory bound reads the
//! process's peak RSS, which another test running at the same time would disturb.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use installer::clusterfile::{self, ClusterfileError, MAX_BYTES};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A sealer v2 Clusterfile as its docs write one, with per-host overrides, a plugin whose
/// shell text is full of brackets, and both Config strategies.
const FULL: &str = include_str!("data/clusterfile-full.yaml");

/// The smallest Clusterfile, as a first-time user writes it.
const MINIMAL: &str = "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: c1
spec:
  image: /opt/rootfs.tar.gz
  hosts:
    - ips: [10.0.0.1]
      roles: [master]
    - ips: [10.0.0.2, 10.0.0.3]
      roles: [node]
";

/// Flow style throughout, with an anchor and aliases, quoted keys and a comment.
const FLOW: &str = r#"{"apiVersion": "sealer.io/v2", kind: Cluster, metadata: {name: flow},
 spec: {image: 'rootfs', env: ["A=1", 'B=two words', "C=[x]"],  # brackets in strings
  ssh: &ssh {user: ops, port: 22},
  hosts: [{ips: [10.0.0.1], roles: [master], ssh: *ssh},
          {ips: ["10.0.0.2"], roles: [node], ssh: *ssh, env: [D=4]}]}}
"#;

/// What is inserted or written over a byte: YAML's indicators and what breaks them.
const PIECES: [&str; 24] = [
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\t",
    "\0",
    ":",
    "- ",
    "#",
    "|",
    ">",
    "&a ",
    "*a",
    "!",
    "%",
    "\n",
    " ",
    "\\",
    "---\n",
    "\u{feff}",
    "\r",
    "[[[[[[[[[[[[[[[[",
];

/// A small deterministic generator (xorshift64), so every run tries the same cases.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The nearest char boundary at or before `at`.
fn floor(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// About 2,000 broken variants of the seeds.
fn cases() -> Vec<(String, String)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for (seed_name, seed) in [("full", FULL), ("minimal", MINIMAL), ("flow", FLOW)] {
        // Truncated every few bytes.
        let step = (seed.len() / 150).max(1);
        for cut in (0..seed.len()).step_by(step) {
            let cut = floor(seed, cut);
            out.push((format!("{seed_name} cut at {cut}"), seed[..cut].to_string()));
        }
        for k in 0..520 {
            let at = floor(seed, rng.below(seed.len()));
            let piece = PIECES[rng.below(PIECES.len())];
            let mut text = seed.to_string();
            let label = if k % 2 == 0 {
                text.insert_str(at, piece);
                format!("{seed_name} with {piece:?} inserted at {at}")
            } else {
                let end = at + seed[at..].chars().next().map_or(0, char::len_utf8);
                text.replace_range(at..end, piece);
                format!("{seed_name} with byte {at} replaced by {piece:?}")
            };
            out.push((label, text));
        }
    }
    // What the hostile reports used: nesting that made the parser quadratic, and an anchor
    // that aliases multiply into millions of nodes.
    for (k, run) in [
        "[".repeat(100_000),
        "{a: ".repeat(50_000),
        "- ".repeat(50_000),
    ]
    .iter()
    .enumerate()
    {
        let at = floor(FULL, rng.below(FULL.len()));
        let mut text = FULL.to_string();
        text.insert_str(at, run);
        out.push((format!("full with hostile run {k} inserted at {at}"), text));
    }
    let bomb = format!(
        "{MINIMAL}  hostAliases: &h [{}]\n  dataRoot: [{}]\n",
        vec!["{ip: 10.0.0.9, hostnames: [a]}"; 2000].join(", "),
        vec!["*h"; 2000].join(", ")
    );
    out.push(("minimal with an alias bomb".to_string(), bomb));
    out
}

/// The process's peak resident set in KiB, after resetting it; `None` where Linux's
/// `/proc/self/clear_refs` is not available.
fn reset_peak() -> Option<()> {
    std::fs::write("/proc/self/clear_refs", "5").ok()
}

fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn secrets(key: &str) -> Option<String> {
    match key {
        "HOME" => Some("/home/op".into()),
        "SSH_PASS" => Some("s3cret".into()),
        "KEY_PASS" => Some("phrase".into()),
        _ => None,
    }
}

/// How a case ended.
enum Outcome {
    Accepted,
    Refused(ClusterfileError),
    Panicked,
}

/// Checks a refusal: a position inside the text, and the `what; expected` wording, for
/// each problem when there are several, in file order.
fn check_refusal(label: &str, text: &str, err: &ClusterfileError) {
    if let ClusterfileError::Several { errors, more } = err {
        assert!(
            errors.len() >= 2 && errors.len() <= clusterfile::MAX_ERRORS,
            "{label}"
        );
        assert!(
            *more == 0 || errors.len() == clusterfile::MAX_ERRORS,
            "{label}"
        );
        let mut last = (0, 0);
        for e in errors {
            check_refusal(label, text, e);
            if let ClusterfileError::Invalid { line, column, .. } = e {
                assert!(
                    (*line, *column) >= last,
                    "{label}: not in file order: {err}"
                );
                last = (*line, *column);
            }
        }
        return;
    }
    let rendered = err.to_string();
    let ClusterfileError::Invalid {
        file,
        line,
        column,
        message,
    } = err
    else {
        panic!("{label}: refused without a position: {rendered}");
    };
    assert_eq!(file, "Clusterfile", "{label}");
    let lines = text.split('\n').count();
    assert!(
        *line >= 1 && *line <= lines + 1 && *column >= 1,
        "{label}: position {line}:{column} is outside the text ({lines} lines): {rendered}"
    );
    assert!(
        rendered.starts_with(&format!("Clusterfile:{line}:{column}: ")),
        "{label}: {rendered}"
    );
    assert!(
        message.contains("; "),
        "{label}: no `what; expected` in {rendered}"
    );
}

#[test]
fn truncated_and_mutated_clusterfiles_are_refused_with_a_position_in_bounded_time_and_memory() {
    let started = Instant::now();
    let cases = cases();
    assert!(cases.len() >= 2000, "{} cases", cases.len());
    for (_, text) in &cases {
        assert!(text.len() as u64 <= MAX_BYTES);
    }
    // The cases run on a worker, so one that hangs fails the test instead of stalling it.
    let (to_worker, jobs) = mpsc::channel::<String>();
    let (to_main, results) = mpsc::channel::<(Outcome, Duration, Option<u64>)>();
    std::thread::spawn(move || {
        for text in jobs {
            reset_peak();
            let before = peak_kib();
            let t = Instant::now();
            let outcome = match catch_unwind(AssertUnwindSafe(|| {
                clusterfile::parse_with_env("Clusterfile", &text, &secrets)
            })) {
                Ok(Ok(_)) => Outcome::Accepted,
                Ok(Err(e)) => Outcome::Refused(e),
                Err(_) => Outcome::Panicked,
            };
            let grew = before.zip(peak_kib()).map(|(b, a)| a.saturating_sub(b));
            if to_main.send((outcome, t.elapsed(), grew)).is_err() {
                return;
            }
        }
    });
    let (mut accepted, mut refused) = (0, 0);
    let mut slowest = Duration::ZERO;
    let mut most_kib = 0;
    for (label, text) in &cases {
        to_worker.send(text.clone()).unwrap();
        let (outcome, took, grew) = results
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{label}: no answer within 10 s"));
        match outcome {
            Outcome::Accepted => accepted += 1,
            Outcome::Refused(e) => {
                check_refusal(label, text, &e);
                refused += 1;
            }
            Outcome::Panicked => panic!("{label}: the validator panicked"),
        }
        assert!(took < Duration::from_secs(2), "{label}: took {took:?}");
        slowest = slowest.max(took);
        // A few KiB of input; the parser's events and values take a few MiB at most.
        if let Some(kib) = grew {
            assert!(kib < 64 * 1024, "{label}: peak memory grew by {kib} KiB");
            most_kib = most_kib.max(kib);
        }
    }
    eprintln!(
        "{} cases: {accepted} accepted, {refused} refused; slowest {slowest:?}, most memory {most_kib} KiB, all in {:?}",
        cases.len(),
        started.elapsed()
    );
    assert!(
        refused > cases.len() / 2,
        "mutations should mostly break the file"
    );
    assert!(
        accepted > 0,
        "some mutations (in comments, strings) keep it valid"
    );

    // Bytes that are not UTF-8 can only come from a file: those go through `load`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Clusterfile");
    let mut rng = Rng(7);
    for k in 0..100 {
        let mut bytes = FULL.as_bytes().to_vec();
        let at = rng.below(bytes.len());
        let bad: &[u8] = [&b"\xff"[..], b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80"][k % 5];
        bytes.splice(at..at, bad.iter().copied());
        std::fs::write(&path, &bytes).unwrap();
        let label = format!("full with {bad:x?} inserted at byte {at}");
        let err = clusterfile::load(&path).expect_err(&label);
        let text = String::from_utf8_lossy(&bytes);
        let name = path.display().to_string();
        let rendered = err.to_string();
        let ClusterfileError::Invalid {
            file, line, column, ..
        } = &err
        else {
            panic!("{label}: {rendered}");
        };
        assert_eq!(file, &name);
        assert!(
            *line <= text.split('\n').count() && *column >= 1,
            "{label}: {rendered}"
        );
        assert!(
            rendered.contains("is not UTF-8 text; expected"),
            "{label}: {rendered}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}
