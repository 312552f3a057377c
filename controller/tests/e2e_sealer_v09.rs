//! End to end with ClusterImages in sealer v0.9 form (`testenv::fixture::sealer_v09`): the
//! runtime installed by `scripts/docker.sh` / `containerd.sh` from `cri/*.tar.gz` (docker.sh
//! also runs init-kube.sh itself), removed by `uninstall-*.sh`, and a registry that serves
//! TLS only, from the `certs/` the installer places. Three systemd hosts (one master, the
//! only registry host, and two nodes), both variants in turn on the same hosts: every host
//! pulls and runs an image from `sea.hub:5000` through its own runtime over TLS, the
//! registry key is on the registry host only, a second apply runs nothing, and clean puts
//! every host back as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use testenv::fixture::{RootfsInfo, Runtime};
use testenv::hosts::{Cluster, REGISTRY_ANSWERS_OVER_TLS};

fn variant(runtime: Runtime) -> RootfsInfo {
    let cache = testenv::cache::cache_dir();
    let (base, out) = match runtime {
        Runtime::Docker => ("e2e-rootfs-docker", "e2e-rootfs-sealer-v09-docker"),
        Runtime::Containerd => ("e2e-rootfs", "e2e-rootfs-sealer-v09-containerd"),
    };
    testenv::fixture::build_sealer_v09_rootfs(&cache.join(out), &cache.join(base), runtime)
        .expect("building the sealer v0.9 fixture")
}

/// The variable the Clusterfile reads the registry password from.
const PASSWORD_VAR: &str = "E2E_REGISTRY_PASSWORD";

/// Points the cluster's Clusterfile at `rootfs` with `runtime`, with registry credentials
/// (the password read from [`PASSWORD_VAR`]) when `auth`.
fn use_image(cluster: &Cluster, rootfs: &RootfsInfo, runtime: &str, auth: bool) {
    set_image(cluster, &rootfs.dir);
    edit_clusterfile(cluster, |l| {
        let key = l.trim_start();
        if key.starts_with("type:") {
            vec![format!("    type: {runtime}")]
        } else if key.starts_with("username:") || key.starts_with("password:") {
            Vec::new()
        } else if key.starts_with("port: 5000") && auth {
            vec![
                l.to_string(),
                "      username: e2e".into(),
                format!("      password: ${{{PASSWORD_VAR}}}"),
            ]
        } else {
            vec![l.to_string()]
        }
    });
}

/// `installer <args>` with the registry password in its environment.
fn installer_with(cluster: &Cluster, args: &[&str], password: &str) -> Run {
    let run = run_of(installer_command(cluster, args).env(PASSWORD_VAR, password));
    eprintln!("installer {}: exit {}", args.join(" "), run.code);
    run
}

/// What host `i` runs to pull the test image from the registry and run it once, through
/// the host's own runtime (its trust of the registry is what apply placed), then remove
/// both.
fn pull_and_run(runtime: Runtime, image: &str) -> String {
    let reference = format!("sea.hub:5000/{image}");
    match runtime {
        Runtime::Docker => format!(
            "docker pull -q {reference} >/dev/null && \
             docker run --rm --network none --entrypoint /bin/sh {reference} -c 'echo ran' && \
             docker rmi {reference} >/dev/null"
        ),
        Runtime::Containerd => format!(
            "{pull} && \
             ctr -n e2e run --rm --net-host --cgroup \"/tls-check-$(hostname)\" {reference} tls-check /bin/sh -c 'echo ran' && \
             ctr -n e2e images rm {reference} >/dev/null",
            pull = testenv::hosts::ctr_pull("e2e", image)
        ),
    }
}

#[test]
fn sealer_v09_images_with_a_tls_registry_on_three_hosts() {
    let docker = variant(Runtime::Docker);
    let containerd = variant(Runtime::Containerd);
    let (cluster, ips) = up(3, &docker.dir);
    let before: Vec<_> = (0..3).map(|i| cluster.snapshot(i).unwrap()).collect();
    let rootfs_dir = format!("/var/lib/sealer/data/{}/rootfs", cluster.name());
    // Unique, so that finding it anywhere means it leaked there.
    let password = format!("e2e-pw-{}-{}", std::process::id(), cluster.name());

    // docker with registry credentials, containerd without.
    for (runtime, name, rootfs, auth) in [
        (Runtime::Docker, "docker", &docker, true),
        (Runtime::Containerd, "containerd", &containerd, false),
    ] {
        use_image(&cluster, rootfs, name, auth);
        let run = installer_with(&cluster, &["apply"], &password);
        assert_eq!(run.code, 0, "{name}: {}", run.describe());
        for (i, ip) in ips.iter().enumerate() {
            assert_eq!(run.status(ip)["status"], "ok", "{name} {ip}");
            let started = run.started(ip);
            for step in ["init-container-runtime", "registry-trust", "init-kube"] {
                assert!(
                    started.contains(&step.to_string()),
                    "{name} {ip}: {started:?}"
                );
            }
            assert_eq!(
                started.contains(&"init-registry".to_string()),
                i == 0,
                "{name} {ip}: the master is the only registry host: {started:?}"
            );
            // The runtime came from the image's archive, as sealer's scripts install it.
            let active = sh(&cluster, i, &format!("systemctl is-active {name}"));
            assert_eq!(active.trim(), "active", "{name} {ip}");
            assert_eq!(
                sh(&cluster, i, "systemctl is-enabled kubelet").trim(),
                "enabled"
            );
            // TLS, verified with the cluster CA; the registry has no plain-HTTP side. With
            // credentials, an unauthenticated request is refused.
            if auth {
                let code = sh(
                    &cluster,
                    i,
                    "curl -s -o /dev/null -w '%{http_code}' --cacert '/etc/docker/certs.d/sea.hub:5000/ca.crt' https://sea.hub:5000/v2/",
                );
                assert_eq!(code.trim(), "401", "{name} {ip}: no credentials, no entry");
            } else {
                sh(&cluster, i, REGISTRY_ANSWERS_OVER_TLS);
            }
            sh(
                &cluster,
                i,
                "! curl -sf -o /dev/null --max-time 5 http://sea.hub:5000/v2/",
            );
            let ran = sh(&cluster, i, &pull_and_run(runtime, &rootfs.test_image));
            assert_eq!(ran.trim(), "ran", "{name} {ip}");
        }
        // The key: on the registry host only, 0600; no other host holds any of it.
        let key = format!("{rootfs_dir}/certs/sea.hub.key");
        assert_eq!(sh(&cluster, 0, &format!("stat -c %a {key}")).trim(), "600");
        let key_line = sh(&cluster, 0, &format!("sed -n 2p {key}"));
        assert!(key_line.trim().len() > 40, "{key_line}");
        for i in 1..3 {
            sh(&cluster, i, &format!("test ! -e {rootfs_dir}/certs"));
            let holders = sh(
                &cluster,
                i,
                &format!(
                    "grep -rlF -- '{}' /etc /root /var/lib /run /tmp 2>/dev/null || true",
                    key_line.trim()
                ),
            );
            assert_eq!(holders.trim(), "", "{name}: node{} holds the key", i + 1);
        }

        if auth {
            assert_password_kept(&cluster, &run, &password);
        }

        // Nothing changed: nothing runs.
        let again = installer_with(&cluster, &["apply"], &password);
        assert_eq!(again.code, 0, "{name}: {}", again.describe());
        for ip in &ips {
            assert_eq!(
                again.started(ip),
                Vec::<String>::new(),
                "{name} {ip}: {}",
                again.describe()
            );
        }

        let clean = installer_with(&cluster, &["clean"], &password);
        assert_eq!(clean.code, 0, "{name}: {}", clean.describe());
        for (i, snap) in before.iter().enumerate() {
            assert_as_before(&cluster, i, snap);
            assert_nothing_left(
                &cluster,
                i,
                "'docker*' 'containerd*' 'kubelet*'",
                "dockerd|containerd|registry",
            );
        }
    }
}

/// The password is nowhere in plain text: not on any host (files under /etc, /root, /var,
/// /run, /tmp: the agent's state, journal, logs and run directories included), not in what
/// the controller printed or logged. Its docker `auth` form is only in the two credential
/// files, and the htpasswd file holds a bcrypt hash of it.
fn assert_password_kept(cluster: &Cluster, run: &Run, password: &str) {
    let basic = sh(
        cluster,
        0,
        &format!("printf '%s' 'e2e:{password}' | base64 -w0"),
    );
    let basic = basic.trim();
    for i in 0..cluster.hosts().len() {
        let found = sh(
            cluster,
            i,
            &format!("grep -rlF -- '{password}' /etc /root /var /run /tmp 2>/dev/null || true"),
        );
        assert_eq!(
            found.trim(),
            "",
            "node{}: the password is in these files",
            i + 1
        );
        let found = sh(
            cluster,
            i,
            &format!("grep -rlF -- '{basic}' /etc /root /var /run /tmp 2>/dev/null | sort || true"),
        );
        assert_eq!(
            found.trim(),
            "/root/.docker/config.json\n/var/lib/kubelet/config.json",
            "node{}: the credentials are where the runtimes read them, and only there",
            i + 1
        );
    }
    let htpasswd = sh(
        cluster,
        0,
        &format!(
            "cat /var/lib/sealer/data/{}/rootfs/etc/registry_htpasswd",
            cluster.name()
        ),
    );
    assert!(htpasswd.starts_with("e2e:$2y$"), "{htpasswd}");
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
    let logs = std::process::Command::new("grep")
        .args(["-rlF", "--", password])
        .arg(cluster.workdir())
        .output()
        .unwrap();
    let leaked = String::from_utf8_lossy(&logs.stdout);
    let leaked: Vec<&str> = leaked
        .lines()
        .filter(|l| !l.ends_with("/Clusterfile"))
        .collect();
    assert!(
        leaked.is_empty(),
        "the controller's files hold the password: {leaked:?}"
    );
}
