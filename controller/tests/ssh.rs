//! The SSH layer against a real OpenSSH server (a testenv node: Debian's sshd under
//! systemd): every auth method, host-key policies, sudo with and without a password,
//! timeouts, uploads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod ssh_common;

use installer::ssh::{self, AuthConfig, Secret, SshError, Target};
use ssh_common::{key_auth, opts, policy};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testenv::hosts::{Cluster, OPS_USER, OPSPW_USER, UpOptions};

fn node() -> Cluster {
    Cluster::up(UpOptions {
        nodes: 1,
        ..UpOptions::default()
    })
    .expect("bringing up a test host")
}

fn target(cluster: &Cluster, user: &str, auth: AuthConfig) -> Target {
    Target {
        host: cluster.hosts()[0].ip.to_string(),
        port: 22,
        user: user.to_string(),
        auth,
    }
}

/// Generates a key of `kind` (with an optional passphrase) and authorizes it for root.
fn new_key(cluster: &Cluster, dir: &Path, kind: &str, passphrase: &str) -> PathBuf {
    let key = dir.join(format!("id_{kind}"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let out = cluster
        .exec_with_stdin(
            0,
            &["sh", "-c", "cat >> /root/.ssh/authorized_keys"],
            public.as_bytes(),
        )
        .unwrap();
    assert!(out.success());
    key
}

async fn id_u(session: &ssh::Session) -> String {
    let out = session.exec("id -u").await.unwrap();
    assert_eq!(out.status, 0);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn key_passphrase_and_password_auth() {
    let cluster = node();
    let dir = tempfile::tempdir().unwrap();
    let kh = policy(&cluster.known_hosts_path(), false);
    // ed25519 (the cluster's key), RSA, ECDSA.
    for key in [
        cluster.key_path(),
        new_key(&cluster, dir.path(), "rsa", ""),
        new_key(&cluster, dir.path(), "ecdsa", ""),
    ] {
        let s = ssh::connect(&target(&cluster, "root", key_auth(&key)), &kh, &opts())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
        assert_eq!(id_u(&s).await, "0");
        s.close().await;
    }
    // A passphrase-protected key: with the passphrase it works; without, the error says so.
    let locked = new_key(&cluster, dir.path(), "ed25519", "s3cret phrase");
    let mut auth = key_auth(&locked);
    auth.key_passphrase = Some(Secret::new("s3cret phrase"));
    let s = ssh::connect(&target(&cluster, "root", auth), &kh, &opts())
        .await
        .unwrap();
    assert_eq!(id_u(&s).await, "0");
    s.close().await;
    let err = ssh::connect(&target(&cluster, "root", key_auth(&locked)), &kh, &opts())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("encrypted, and no pkPasswd given"),
        "{err}"
    );

    // Password auth (opspw has one).
    let auth = AuthConfig {
        password: Some(Secret::new(cluster.password())),
        ..AuthConfig::default()
    };
    let s = ssh::connect(&target(&cluster, OPSPW_USER, auth), &kh, &opts())
        .await
        .unwrap();
    assert!(!s.is_root());
    s.close().await;
    // A wrong password fails, listing what was tried and not the password.
    let auth = AuthConfig {
        password: Some(Secret::new("not-the-password")),
        ..AuthConfig::default()
    };
    let started = Instant::now();
    let err = ssh::connect(&target(&cluster, OPSPW_USER, auth), &kh, &opts())
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, SshError::Auth { .. }), "{msg}");
    assert!(msg.contains("tried:") && msg.contains("password"), "{msg}");
    assert!(!msg.contains("not-the-password"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn host_keys_unknown_accepted_hashed_and_changed() {
    let cluster = node();
    let dir = tempfile::tempdir().unwrap();
    let kh_path = dir.path().join("known_hosts");
    let t = target(&cluster, "root", key_auth(&cluster.key_path()));

    // Unknown: refused with the fingerprint and the flag to accept it.
    let err = ssh::connect(&t, &policy(&kh_path, false), &opts())
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, SshError::UnknownHostKey { .. }), "{msg}");
    assert!(
        msg.contains("SHA256:") && msg.contains("--accept-new-host-keys"),
        "{msg}"
    );
    // Accepted: recorded, and from then on known without the flag.
    ssh::connect(&t, &policy(&kh_path, true), &opts())
        .await
        .unwrap()
        .close()
        .await;
    let recorded = std::fs::read_to_string(&kh_path).unwrap();
    assert!(recorded.contains(&t.host), "{recorded}");
    ssh::connect(&t, &policy(&kh_path, false), &opts())
        .await
        .unwrap()
        .close()
        .await;

    // Hashed entries (ssh-keygen -H) match too.
    let status = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-H")
        .arg("-f")
        .arg(&kh_path)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!std::fs::read_to_string(&kh_path).unwrap().contains(&t.host));
    ssh::connect(&t, &policy(&kh_path, false), &opts())
        .await
        .unwrap()
        .close()
        .await;

    // Changed: always refused, naming the line to remove, even with accept-new.
    let out = cluster
        .exec(
            0,
            &[
                "sh",
                "-c",
                "rm -f /etc/ssh/ssh_host_*key* && ssh-keygen -A -q && systemctl restart ssh",
            ],
        )
        .unwrap();
    assert!(out.success());
    let entry_line = std::fs::read_to_string(&kh_path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("|1|"))
        .unwrap()
        + 1;
    let err = ssh::connect(&t, &policy(&kh_path, true), &opts())
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        matches!(err, SshError::ChangedHostKey { line, .. } if line == entry_line),
        "{msg}"
    );
    assert!(msg.contains(&kh_path.display().to_string()), "{msg}");
}

#[tokio::test]
async fn sudo_without_and_with_a_password() {
    let cluster = node();
    let kh = policy(&cluster.known_hosts_path(), false);
    let key = cluster.key_path();
    // testenv authorizes the cluster key for every user.
    let ops = ssh::connect(&target(&cluster, OPS_USER, key_auth(&key)), &kh, &opts())
        .await
        .unwrap();
    let p = ops.spawn_root(&["id", "-u"], None).await.unwrap();
    let out = p.collect().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    let opspw = ssh::connect(&target(&cluster, OPSPW_USER, key_auth(&key)), &kh, &opts())
        .await
        .unwrap();
    let password = Secret::new(cluster.password());
    let p = opspw
        .spawn_root(&["id", "-u"], Some(&password))
        .await
        .unwrap();
    let out = p.collect().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    // The password never appeared on a command line on the host.
    let ps = cluster
        .exec(0, &["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
        .unwrap();
    assert!(!ps.stdout_str().contains(cluster.password()));

    // A wrong password fails at once with a clear message.
    let out = cluster.exec(0, &["rm", "-rf", "/run/sudo/ts"]).unwrap();
    assert!(out.success());
    let started = Instant::now();
    let err = opspw
        .spawn_root(&["id", "-u"], Some(&Secret::new("wrong")))
        .await
        .err()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.to_string().contains("sudo password was rejected"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_hosts_fail_within_the_connect_timeout_and_uploads_skip_what_is_there() {
    let cluster = node();
    let kh = policy(&cluster.known_hosts_path(), false);
    let t = target(&cluster, "root", key_auth(&cluster.key_path()));

    let s = ssh::connect(&t, &kh, &opts()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();
    let (path, sent) = s
        .upload_if_changed(&file, ".installer/test/payload")
        .await
        .unwrap();
    assert!(sent);
    assert_eq!(path, "/root/.installer/test/payload");
    let (_, sent) = s
        .upload_if_changed(&file, ".installer/test/payload")
        .await
        .unwrap();
    assert!(!sent, "the same content was sent twice");
    let out = s
        .exec("stat -c %a /root/.installer/test/payload && wc -c < /root/.installer/test/payload")
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "700\n300000\n");
    s.close().await;

    // A port nothing listens on: refused at once.
    let mut closed = t.clone();
    closed.port = 2;
    let err = ssh::connect(&closed, &kh, &opts()).await.err().unwrap();
    assert!(matches!(err, SshError::Connect { .. }), "{err}");

    // A host cut off the network: the connect timeout, saying what it waited for.
    cluster.disconnect(0).unwrap();
    let started = Instant::now();
    let err = ssh::connect(&t, &kh, &opts()).await.err().unwrap();
    let waited = started.elapsed();
    assert!(matches!(err, SshError::Timeout { .. }), "{err}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert!(err.to_string().contains("--connect-timeout"), "{err}");
}

mod e2e_common;

/// The ssh-agent method, through the real binary (the agent socket reaches it through its
/// environment): a dry run with no key in the Clusterfile and none in `~/.ssh`.
#[test]
fn ssh_agent_auth_and_a_dry_run_that_changes_nothing() {
    let rootfs = tempfile::tempdir().unwrap();
    testenv::fixture::minimal_rootfs(rootfs.path()).unwrap();
    let cluster = Cluster::up(UpOptions {
        nodes: 1,
        rootfs: Some(rootfs.path().to_path_buf()),
        ..UpOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let added = Command::new("ssh-add")
        .arg("-q")
        .arg(cluster.key_path())
        .env("SSH_AUTH_SOCK", &sock)
        .status()
        .unwrap();
    assert!(added.success());
    let cf = dir.path().join("Clusterfile");
    let text: String = std::fs::read_to_string(cluster.clusterfile_path())
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("pk:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&cf, text).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_installer"))
        .args(["apply", "--dry-run", "-o", "json", "-f"])
        .arg(&cf)
        .arg("--known-hosts")
        .arg(cluster.known_hosts_path())
        .arg("--agent-dir")
        .arg(e2e_common::agent_dir())
        .arg("--log-dir")
        .arg(dir.path().join("runs"))
        .env("HOME", home.path())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"event\":\"would_run\""), "{stdout}");
    assert!(stdout.contains("\"type\":\"plan\""), "{stdout}");
    // A dry run changes nothing on the host (the agent it uploaded aside).
    let check = cluster
        .exec(
            0,
            &[
                "sh",
                "-c",
                "test ! -e /var/lib/sealer && test ! -e /usr/local/bin/fixture-hello",
            ],
        )
        .unwrap();
    assert!(check.success(), "the dry run changed the host");
}
