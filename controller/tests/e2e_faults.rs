//! End to end, scenario 4: a non-root user with sudo; a changed host key refuses the whole
//! run before any host changes; a host cut off mid-apply fails while the others finish, and
//! a re-apply after it is back completes it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::fs;
use std::io::BufRead;
use testenv::hosts::{Cluster, OPS_USER, OPSPW_USER, UpOptions};

fn fixture_cluster(nodes: usize) -> Cluster {
    Cluster::up(UpOptions {
        nodes,
        rootfs: Some(fixture_rootfs().dir),
        ..UpOptions::default()
    })
    .expect("bringing up hosts")
}

fn set_user(cluster: &Cluster, user: &str) {
    let path = cluster.clusterfile_path();
    let text: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            let indent = &l[..l.len() - l.trim_start().len()];
            if l.trim_start().starts_with("user: ") {
                format!("{indent}user: {user}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(text.contains(&format!("user: {user}")), "{text}");
    fs::write(&path, text).unwrap();
}

#[test]
fn non_root_users_go_through_sudo() {
    let cluster = fixture_cluster(1);
    set_user(&cluster, OPS_USER);
    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    // Installed as root, by the agent running as root.
    let owner = sh(&cluster, 0, "stat -c %U /usr/local/bin/kubeadm");
    assert_eq!(owner.trim(), "root");
    // The agent was uploaded to the login user's home, not root's.
    sh(
        &cluster,
        0,
        "ls /home/ops/.installer/agent/installer-agent-*",
    );

    // A user whose sudo needs a password: fed once on stdin, never on a command line.
    set_user(&cluster, OPSPW_USER);
    let run = run_of(
        installer_command(&cluster, &["clean", "--sudo-password-env", "E2E_SUDO_PW"])
            .env("E2E_SUDO_PW", cluster.password()),
    );
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(
        !run.stdout.contains(cluster.password()) && !run.stderr.contains(cluster.password()),
        "the sudo password was printed"
    );
    let logs = sh_local(&format!(
        "grep -rl {} {} || true",
        cluster.password(),
        cluster.workdir().join("runs").display()
    ));
    assert!(
        logs.trim().is_empty(),
        "the sudo password is in a log: {logs}"
    );
    sh(&cluster, 0, "test ! -e /usr/local/bin/kubeadm");

    // A wrong sudo password fails fast, saying so (sudo's cached credentials removed first,
    // so it really asks).
    sh(&cluster, 0, "rm -rf /run/sudo/ts");
    let started = std::time::Instant::now();
    let run = run_of(
        installer_command(&cluster, &["apply", "--sudo-password-env", "E2E_SUDO_PW"])
            .env("E2E_SUDO_PW", "wrong-password"),
    );
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(run.stdout.contains("sudo"), "{}", run.stdout);

    // spec.ssh.passwd, read from the environment with ${NAME}, is the sudo password too.
    let path = cluster.clusterfile_path();
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("user: opspw", "user: opspw\n    passwd: \"${E2E_SSH_PW}\"");
    fs::write(&path, text).unwrap();
    sh(&cluster, 0, "rm -rf /run/sudo/ts");
    let run = run_of(installer_command(&cluster, &["apply"]).env("E2E_SSH_PW", cluster.password()));
    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(!run.stdout.contains(cluster.password()));
    assert!(!run.stderr.contains(cluster.password()));
    let logs = sh_local(&format!(
        "grep -rl {} {} || true",
        cluster.password(),
        cluster.workdir().join("runs").display()
    ));
    assert!(logs.trim().is_empty(), "the password is in a log: {logs}");
    // Nor is it in any file on the host.
    let found = sh(
        &cluster,
        0,
        &format!(
            "grep -rlF {} /etc /var/lib /root /home /tmp 2>/dev/null || true",
            cluster.password()
        ),
    );
    assert!(
        found.trim().is_empty(),
        "the password is in a host file: {found}"
    );
}

fn sh_local(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_changed_host_key_refuses_the_run_before_any_host_changes() {
    let cluster = fixture_cluster(2);
    let before: Vec<_> = (0..2).map(|i| cluster.snapshot(i).unwrap()).collect();
    // Give node2 a new host key: what a man-in-the-middle (or a reinstalled host) looks like.
    sh(
        &cluster,
        1,
        "rm -f /etc/ssh/ssh_host_*key* && ssh-keygen -A -q && systemctl restart ssh",
    );
    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 3, "{}", run.describe());
    assert!(run.stderr.contains("changed"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&cluster.known_hosts_path().display().to_string()),
        "{}",
        run.stderr
    );
    for (i, snap) in before.iter().enumerate() {
        let changes: Vec<_> = testenv::hosts::diff(snap, &cluster.snapshot(i).unwrap())
            .into_iter()
            .filter(|c| !c.path().starts_with("/etc/ssh"))
            .collect();
        assert!(changes.is_empty(), "node{} changed: {changes:?}", i + 1);
    }
}

#[test]
fn a_host_cut_off_mid_apply_fails_alone_and_a_reapply_completes_it() {
    let cluster = fixture_cluster(3);
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    // A preHook that takes a moment, so the cut lands while node3 runs it.
    let overlay = tempfile::tempdir().unwrap();
    fs::create_dir_all(overlay.path().join("scripts")).unwrap();
    fs::write(
        overlay.path().join("scripts/preHook.sh"),
        "#!/bin/sh\nsleep 3\n",
    )
    .unwrap();
    let overlay_arg = overlay.path().display().to_string();
    let mut child = installer_command(
        &cluster,
        &["apply", "--connect-timeout", "5", "--overlay", &overlay_arg],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut events = Vec::new();
    let mut cut = false;
    for line in stdout.lines() {
        let line = line.unwrap();
        let Ok(e) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if !cut
            && e["type"] == "agent"
            && e["host"] == ips[2]
            && e["event"] == "step_started"
            && e["step"] == "pre-hook"
        {
            cluster.disconnect(2).unwrap();
            cut = true;
        }
        events.push(e);
    }
    let status = child.wait().unwrap();
    assert!(cut, "never saw node3 start a step");
    assert_eq!(status.code(), Some(1));
    let finished = |ip: &str| {
        events
            .iter()
            .find(|e| e["type"] == "host_finished" && e["host"] == ip)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(finished(&ips[0])["status"], "ok");
    assert_eq!(finished(&ips[1])["status"], "ok");
    assert_eq!(finished(&ips[2])["status"], "failed", "{events:?}");

    cluster.reconnect(2).unwrap();
    // The cut-off session's agent ends once sshd notices its client is gone
    // (ClientAliveInterval); until then it rightly holds the cluster lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !sh(&cluster, 2, "pgrep -l installer-age || true")
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the cut-off agent never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let overlay_arg = overlay.path().display().to_string();
    let run = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert_eq!(run.status(&ips[2])["status"], "ok");
    assert!(
        run.started(&ips[0]).is_empty(),
        "{:?}",
        run.started(&ips[0])
    );
}

#[test]
fn a_swapped_upload_never_runs_as_root() {
    let cluster = fixture_cluster(1);
    set_user(&cluster, OPS_USER);
    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let upload = sh(
        &cluster,
        0,
        "ls /home/ops/.installer/agent/installer-agent-*",
    );
    let upload = upload.trim().to_string();
    let real_sha = sh(&cluster, 0, &format!("sha256sum {upload} | cut -d' ' -f1"));
    let real_sha = real_sha.trim().to_string();
    // What the login user's own processes could do: put another program where the upload
    // is. It would run as root if root ran the upload.
    let evil = "#!/bin/sh\ntouch /tmp/ran-as-$(id -u)\nexit 0\n";
    let as_ops = |script: &str| {
        cluster
            .exec(0, &["su", "-s", "/bin/sh", "ops", "-c", script])
            .expect("docker exec")
    };
    let planted = as_ops(&format!(
        "printf '%s' '{evil}' > {upload}.new && chmod 700 {upload}.new && mv -f {upload}.new {upload}"
    ));
    assert!(
        planted.success(),
        "{}",
        String::from_utf8_lossy(&planted.stderr)
    );

    // Root runs the launcher the controller sends; between the upload and that moment the
    // file is the login user's. The launcher runs root's verified copy, never the upload…
    let launch = |args: &[&str]| {
        // `--` ends su's options: what follows the user goes to the shell.
        let mut argv = vec![
            "su",
            "-s",
            "/bin/sh",
            "-c",
            "exec sudo -n /bin/sh -c \"$0\" launch \"$@\"",
            "--",
            "ops",
            installer::apply::start_agent::LAUNCH,
            upload.as_str(),
            real_sha.as_str(),
        ];
        argv.extend_from_slice(args);
        cluster.exec(0, &argv).expect("docker exec")
    };
    let out = launch(&["--version"]);
    assert!(out.success(), "{}", out.stderr_str());
    assert!(
        out.stdout_str().contains("installer-agent"),
        "{}",
        out.stdout_str()
    );
    sh(&cluster, 0, "test ! -e /tmp/ran-as-0");

    // …and without a verified copy (a first run) it hashes what it copied as root and
    // refuses a file that is not the one the controller checked.
    sh(&cluster, 0, "rm -rf /var/lib/installer-agent/bin");
    let out = launch(&["--version"]);
    assert_eq!(out.code, Some(126), "{}", out.stderr_str());
    assert!(
        out.stderr_str()
            .contains("changed after upload; refusing to run it"),
        "{}",
        out.stderr_str()
    );
    sh(&cluster, 0, "test ! -e /tmp/ran-as-0");
}
