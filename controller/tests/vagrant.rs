//! The repository's Vagrantfile: it validates for every provider, and with the docker
//! provider its three machines take an `installer apply` and `clean`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use std::process::Command;

#[test]
fn vagrantfile_validates() {
    testenv::vagrant::validate().unwrap();
}

#[test]
fn three_vagrant_machines_take_an_apply_and_a_clean() {
    let rootfs = e2e_common::fixture_rootfs();
    let machines = testenv::vagrant::VagrantCluster::up(&rootfs.dir).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_installer"))
            .args(args)
            .arg("-f")
            .arg(machines.clusterfile_path())
            .arg("--known-hosts")
            .arg(machines.known_hosts_path())
            .arg("--agent-dir")
            .arg(e2e_common::agent_dir())
            .arg("--log-dir")
            .arg(logs.path())
            .args(["-o", "plain"])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    // First contact: the keys are new, and recorded only when asked to.
    let (code, text) = run(&["apply"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("--accept-new-host-keys"), "{text}");
    let (code, text) = run(&["apply", "--accept-new-host-keys"]);
    assert_eq!(code, Some(0), "{text}");
    for ip in machines.ips() {
        assert!(text.contains(&ip), "{text}");
    }
    let active = machines
        .ssh("node2", "systemctl is-active containerd")
        .unwrap();
    assert!(active.contains("active"), "{active}");
    let (code, text) = run(&["clean"]);
    assert_eq!(code, Some(0), "{text}");
    machines.destroy().unwrap();
}
