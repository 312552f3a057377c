//! The SSH layer against a real OpenSSH server on a loopback port, with no Docker: its own
//! host key and config, a port other than 22 (known_hosts writes such hosts as
//! `[host]:port`), key auth, commands, host-key policies and a reinstalled server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod ssh_common;

use installer::ssh::{self, SshError, Target};
use ssh_common::{key_auth, opts, policy};
use std::path::Path;
use std::process::Command;
use testenv::sshd::LoopbackSshd;

fn login_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn target(port: u16, key: &Path) -> Target {
    Target {
        host: "127.0.0.1".into(),
        port,
        user: login_user(),
        auth: key_auth(key),
    }
}

#[tokio::test]
async fn a_server_on_its_own_port_is_known_by_host_and_port() {
    let mut sshd = LoopbackSshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let t = target(sshd.port(), &sshd.key_path());
    let host_key = sshd.host_public_key().unwrap();

    // The same host on port 22 does not vouch for this port.
    std::fs::write(&kh, format!("127.0.0.1 {host_key}\n")).unwrap();
    let err = ssh::connect(&t, &policy(&kh, false), &opts())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::UnknownHostKey { .. }), "{err}");

    // Accepted: recorded as [127.0.0.1]:port, the form OpenSSH's own client reads.
    ssh::connect(&t, &policy(&kh, true), &opts())
        .await
        .unwrap()
        .close()
        .await;
    let recorded = std::fs::read_to_string(&kh).unwrap();
    let line = format!("[127.0.0.1]:{} {host_key}", sshd.port());
    assert!(recorded.lines().any(|l| l == line), "{recorded}");
    let status = Command::new("ssh-keygen")
        .arg("-F")
        .arg(format!("[127.0.0.1]:{}", sshd.port()))
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(status.status.success(), "ssh-keygen cannot find the entry");

    // Known from now on; commands report their status and both streams.
    let s = ssh::connect(&t, &policy(&kh, false), &opts())
        .await
        .unwrap();
    let out = s.exec("echo out; echo err >&2; exit 7").await.unwrap();
    assert_eq!(out.status, 7);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    s.close().await;

    // A key the server does not accept: refused, naming what was tried.
    let other = dir.path().join("other");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let err = ssh::connect(&target(sshd.port(), &other), &policy(&kh, false), &opts())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("tried:"), "{err}");

    // Reinstalled with a new host key: refused even with accept-new, naming the line.
    sshd.change_host_key().unwrap();
    let err = ssh::connect(&t, &policy(&kh, true), &opts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, SshError::ChangedHostKey { line: 2, .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        recorded,
        "a refused key must not touch known_hosts"
    );

    // Stopped: the port refuses at once.
    let port = sshd.port();
    drop(sshd);
    let err = ssh::connect(&target(port, &other), &policy(&kh, false), &opts())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SshError::Connect { .. }), "{err}");
}
