//! `installer -f` on what is not a Clusterfile of sane size: a device, a FIFO, a directory,
//! a file of a terabyte, nesting that made the YAML parser quadratic, an env value with a
//! NUL. Each is refused with exit 2 within seconds (nothing contacted, nothing read past
//! the limit), and says what was refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod cli_common;

use assert_cmd::Command;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Runs `installer <sub> -f <cf>`; returns the exit code, all output and how long it took.
fn installer(sub: &str, cf: &Path, dir: &Path) -> (i32, String, Duration) {
    let mut cmd = Command::cargo_bin("installer").unwrap();
    cmd.arg(sub)
        .arg("-f")
        .arg(cf)
        .arg("--log-dir")
        .arg(dir)
        .arg("--agent-dir")
        .arg(dir);
    // Before the fix `-f /dev/zero` grew without end and a FIFO blocked forever; the run's
    // bounded wait turns that into a failure.
    let run = cli_common::run(cmd);
    (run.code, run.text, run.took)
}

/// Asserts a quick exit 2 whose output contains every one of `want`.
fn refused(sub: &str, cf: &Path, dir: &Path, want: &[&str]) {
    let (code, text, took) = installer(sub, cf, dir);
    assert_eq!(code, 2, "{sub} -f {}: {text}", cf.display());
    for w in want {
        assert!(
            text.contains(w),
            "{sub} -f {}: want {w:?} in: {text}",
            cf.display()
        );
    }
    assert!(
        took < Duration::from_secs(10),
        "{sub} -f {}: took {took:?}",
        cf.display()
    );
}

const HEAD: &str = "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  image: rootfs\n  hosts:\n    - ips: [192.0.2.10]\n      roles: [master]\n";

#[test]
fn special_files_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["apply", "clean"] {
        refused(
            sub,
            Path::new("/dev/zero"),
            dir.path(),
            &["/dev/zero: a character device, not a regular file; expected"],
        );
    }
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    refused(
        "apply",
        &fifo,
        dir.path(),
        &["a FIFO (named pipe), not a regular file"],
    );
    refused(
        "apply",
        dir.path(),
        dir.path(),
        &["a directory, not a regular file"],
    );
}

#[test]
fn a_huge_file_is_refused_after_reading_only_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("Clusterfile");
    fs::write(&cf, HEAD).unwrap();
    // A sparse terabyte: reading it whole would take the machine's memory.
    fs::File::options()
        .write(true)
        .open(&cf)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    refused(
        "apply",
        &cf,
        dir.path(),
        &[
            &format!("{}:10:", cf.display()),
            "goes on past 4194304 bytes (4 MiB) here, the most installer reads",
        ],
    );
}

#[test]
fn hostile_content_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let cf = dir.path().join("Clusterfile");
    // 100,000 nested `[` took over a minute in the parser.
    fs::write(&cf, format!("{HEAD}  env: {}\n", "[".repeat(100_000))).unwrap();
    refused(
        "apply",
        &cf,
        dir.path(),
        &[&format!(
            "{}:10:72: nesting deeper than 64 levels",
            cf.display()
        )],
    );
    // An env value with a NUL used to pass and fail at the first script, after earlier
    // steps had changed the host.
    fs::write(&cf, format!("{HEAD}  env: [\"A=x\\0y\"]\n")).unwrap();
    refused(
        "apply",
        &cf,
        dir.path(),
        &[&format!(
            "{}:10:9: spec.env[0]: the value of env key \"A\" holds a NUL byte",
            cf.display()
        )],
    );
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"  env: [\"A=\xff\"]\n");
    fs::write(&cf, bytes).unwrap();
    refused(
        "apply",
        &cf,
        dir.path(),
        &[&format!(
            "{}:10:12: byte 0xFF is not UTF-8 text",
            cf.display()
        )],
    );
}
