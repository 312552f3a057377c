//! The `installer` binary on bad input: it stops before contacting anyone (exit 2) and says
//! what is wrong and where. Hosts in these Clusterfiles do not exist: reaching for them
//! would show up as a timeout, not as the quick, precise error asserted here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod cli_common;

use assert_cmd::Command;
use std::fs;
use std::time::{Duration, Instant};

fn clusterfile(dir: &std::path::Path, image: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("Clusterfile");
    fs::write(
        &path,
        format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  image: {image}\n{extra}  hosts:\n    - ips: [192.0.2.10]\n      roles: [master]\n"
        ),
    )
    .unwrap();
    path
}

fn installer(
    args: &[&str],
    cf: &std::path::Path,
    logs: &std::path::Path,
) -> (i32, String, Duration) {
    let mut cmd = Command::cargo_bin("installer").unwrap();
    cmd.args(args)
        .arg("-f")
        .arg(cf)
        .arg("--log-dir")
        .arg(logs)
        .arg("--agent-dir")
        .arg(logs);
    let run = cli_common::run(cmd);
    (run.code, run.text, run.took)
}

#[test]
fn bad_input_is_refused_before_any_host_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    let image = rootfs.display().to_string();

    // An unknown field: file:line:col.
    let cf = clusterfile(dir.path(), &image, "  sshh: {}\n");
    let (code, text, took) = installer(&["apply"], &cf, dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("Clusterfile:7:"), "{text}");
    assert!(text.contains("sshh"), "{text}");
    assert!(took < Duration::from_secs(5));

    // A rootfs that does not exist.
    let cf = clusterfile(dir.path(), "/nonexistent/rootfs", "");
    let (code, text, _) = installer(&["apply"], &cf, dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("/nonexistent/rootfs"), "{text}");

    // A template that cannot parse: its rootfs path, line and column.
    fs::write(rootfs.join("etc/bad.conf.tmpl"), "ok\nx = {{ if .A }}\n").unwrap();
    let cf = clusterfile(dir.path(), &image, "");
    let (code, text, _) = installer(&["apply"], &cf, dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("etc/bad.conf.tmpl:2:"), "{text}");

    // clean needs only the Clusterfile, and still validates it.
    let cf = clusterfile(dir.path(), &image, "  dataRoot: relative/path\n");
    let (code, text, _) = installer(&["clean"], &cf, dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("dataRoot"), "{text}");
}

#[test]
fn help_documents_exit_codes_and_completion_works() {
    let out = Command::cargo_bin("installer")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for code in ["0 ", "1 ", "2 ", "3 ", "130"] {
        assert!(help.contains(code), "{help}");
    }
    let out = Command::cargo_bin("installer")
        .unwrap()
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("installer"));
}

#[test]
fn ctrl_c_ends_the_run_with_exit_code_130() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    // An SSH port on loopback that accepts and never speaks: the run sits in connect.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let cf = dir.path().join("Clusterfile");
    fs::write(
        &cf,
        format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  image: {}\n  ssh: {{port: {port}}}\n  hosts:\n    - ips: [127.0.0.1]\n      roles: [master]\n",
            rootfs.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_installer"))
        .args(["apply", "-o", "plain", "--connect-timeout", "60", "-f"])
        .arg(&cf)
        .arg("--log-dir")
        .arg(dir.path())
        .arg("--known-hosts")
        .arg(dir.path().join("known_hosts"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Connected means validation is over and the run is under way.
    let (_conn, _) = silent.accept().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}
