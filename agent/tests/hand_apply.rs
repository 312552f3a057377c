//! The real `installer-agent` binary, run by hand against the fixture rootfs in a temp
//! `--root`: what it installs, renders and runs, how it fails, resumes, skips and cleans.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::fs;

#[test]
fn apply_installs_bin_renders_templates_writes_hosts_and_runs_scripts_in_order() {
    let root = TestRoot::new();
    let out = apply_cmd(root.path(), &fixture(), &["--env", "ExtraFlag=on"])
        .assert()
        .success();
    let ev = events(&out.get_output().stdout);
    assert_eq!(
        steps_with(&ev, "step_done"),
        [
            "place-rootfs",
            "install-bin",
            "render-templates",
            "hosts-file",
            "init-container-runtime",
            "init-registry",
            "init-kube"
        ]
    );

    let hello = root.join("usr/local/bin/fixture-hello");
    assert_eq!(
        fs::read(&hello).unwrap(),
        fs::read(fixture().join("bin/fixture-hello")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&hello).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let conf = fs::read_to_string(root.rootfs_copy().join("etc/app/app.conf")).unwrap();
    assert!(conf.contains("host_ip = 10.1.2.3"), "{conf}");
    assert!(conf.contains("cluster = c1"), "{conf}");
    assert!(conf.contains("registry = sea.hub:5000"), "{conf}");
    assert!(conf.contains("extra = on"), "{conf}");
    // The arch subtree is merged in; registry data reaches a registry host.
    assert!(root.rootfs_copy().join("etc/arch.conf").is_file());
    assert!(root.rootfs_copy().join("registry/docker/README").is_file());

    let hosts = fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert_eq!(
        hosts,
        "127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.1.2.3 sea.hub #hostalias-set-by-sealer\n"
    );

    let order = fs::read_to_string(root.join("var/lib/fixture/order")).unwrap();
    assert_eq!(order, "init-container-runtime\ninit-registry\ninit-kube\n");
    let args = fs::read_to_string(root.join("var/lib/fixture/init-registry.args")).unwrap();
    assert_eq!(
        args.trim(),
        format!("5000 /var/lib/sealer/data/{CLUSTER}/rootfs/registry sea.hub")
    );
    // A script's cwd is scripts/ and it sees rendered configs.
    assert!(root.join("var/lib/fixture/app.conf.copy").is_file());
}

#[test]
fn env_values_reach_scripts_unchanged_and_run_nothing() {
    let root = TestRoot::new();
    let marker = root.join("pwned");
    let nasty = format!(
        "'\"$(touch {})`touch {}`\nsecond line $HOME",
        marker.display(),
        marker.display()
    );
    apply_cmd(
        root.path(),
        &fixture(),
        &[
            "--env",
            &format!("Nasty={nasty}"),
            "--host-env",
            "HostOnly=yes",
        ],
    )
    .assert()
    .success();
    assert!(!marker.exists(), "a value was executed by a shell");
    let env = env_dump(&root.join("var/lib/fixture/init-kube.env"));
    assert_eq!(env["Nasty"], nasty);
    assert_eq!(env["HostOnly"], "yes");
    for key in [
        "HostIP",
        "HostName",
        "Master0IP",
        "ClusterName",
        "Arch",
        "RootfsDir",
        "RegistryDomain",
        "RegistryPort",
        "RegistryURL",
        "ContainerRuntime",
        "KubeVersion",
        "KubeadmAPIVersion",
        "CriSocket",
        "PauseImage",
        "InstallRoot",
    ] {
        assert!(env.contains_key(key), "script env lacks {key}: {env:?}");
    }
    assert_eq!(env["KubeadmAPIVersion"], "kubeadm.k8s.io/v1beta3");
    assert_eq!(env["PauseImage"], "sea.hub:5000/pause:3.6");
    // Without --container-runtime the hand-run agent takes the Clusterfile's default.
    assert_eq!(env["ContainerRuntime"], "docker");
    assert_eq!(env["CriSocket"], "/var/run/dockershim.sock");
    assert_eq!(env["InstallRoot"], root.path().display().to_string());
    // Only the plan's env: nothing leaks in from the agent's own environment.
    assert!(!env.contains_key("CARGO_MANIFEST_DIR"));
}

#[test]
fn reapply_with_nothing_changed_runs_no_step() {
    let root = TestRoot::new();
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let ev = events(&out.get_output().stdout);
    assert!(steps_with(&ev, "step_started").is_empty(), "{ev:?}");
    assert_eq!(steps_with(&ev, "step_skipped").len(), 7);
    let order = fs::read_to_string(root.join("var/lib/fixture/order")).unwrap();
    assert_eq!(order.lines().count(), 3, "scripts ran again: {order}");

    // --force runs everything again.
    let out = apply_cmd(root.path(), &fixture(), &["--force"])
        .assert()
        .success();
    assert_eq!(
        steps_with(&events(&out.get_output().stdout), "step_done").len(),
        7
    );
}

#[test]
fn a_changed_template_reruns_only_the_steps_that_use_it() {
    let root = TestRoot::new();
    let rootfs = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), rootfs.path());
    apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    let tmpl = rootfs.path().join("etc/app/app.conf.tmpl");
    let text = fs::read_to_string(&tmpl).unwrap() + "# changed\n";
    fs::write(&tmpl, text).unwrap();
    let out = apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    let ev = events(&out.get_output().stdout);
    assert_eq!(
        steps_with(&ev, "step_done"),
        ["place-rootfs", "render-templates", "init-container-runtime"]
    );
}

#[test]
fn a_failing_script_stops_the_apply_and_reapply_resumes_there() {
    let root = TestRoot::new();
    fs::write(root.join("fixture-fail-at"), "init-registry").unwrap();
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().code(1);
    let ev = events(&out.get_output().stdout);
    let failed: Vec<_> = ev.iter().filter(|e| e["event"] == "step_failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["step"], "init-registry");
    assert_eq!(failed[0]["error"]["exit_code"], 3);
    let tail = failed[0]["error"]["tail"].as_array().unwrap();
    assert_eq!(tail.len(), 20);
    assert!(
        tail.iter()
            .any(|l| l == "init-registry: failing on purpose"),
        "{tail:?}"
    );
    assert!(
        !root.join("var/lib/fixture/init-kube.env").exists(),
        "a later step ran"
    );

    fs::remove_file(root.join("fixture-fail-at")).unwrap();
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let ev = events(&out.get_output().stdout);
    assert_eq!(steps_with(&ev, "step_done"), ["init-registry", "init-kube"]);
}

#[test]
fn a_hanging_script_is_killed_with_its_process_group() {
    let root = TestRoot::new();
    fs::write(root.join("fixture-hang-at"), "init-kube").unwrap();
    let started = std::time::Instant::now();
    let out = apply_cmd(root.path(), &fixture(), &["--script-timeout", "2"])
        .assert()
        .code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let ev = events(&out.get_output().stdout);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "init-kube");
    let msg = failed["error"]["message"].as_str().unwrap();
    assert!(msg.contains("did not finish within 2 s"), "{msg}");
    let child: i32 = fs::read_to_string(root.join("fixture-hang-child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The script's background child went with the group.
    let alive = std::path::Path::new(&format!("/proc/{child}")).exists()
        && !fs::read_to_string(format!("/proc/{child}/stat"))
            .unwrap_or_default()
            .contains(" Z ");
    assert!(!alive, "child {child} of the timed-out script survived");
}

#[test]
fn undefined_template_key_fails_with_its_position() {
    let root = TestRoot::new();
    let rootfs = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), rootfs.path());
    fs::write(
        rootfs.path().join("etc/bad.conf.tmpl"),
        "a = 1\nb = {{ .NoSuchKey }}\n",
    )
    .unwrap();
    let out = apply_cmd(root.path(), rootfs.path(), &[]).assert().code(1);
    let ev = events(&out.get_output().stdout);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "render-templates");
    let msg = failed["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("etc/bad.conf.tmpl:2:8:"), "{msg}");
    assert!(msg.contains("NoSuchKey"), "{msg}");
    // Nothing was rendered half-way.
    assert!(!root.rootfs_copy().join("etc/app/app.conf").exists());
}

#[test]
fn clean_after_apply_leaves_the_tree_as_before() {
    let root = TestRoot::new();
    // A pre-existing binary that apply overwrites, and a pre-existing tagged hosts line for
    // the registry domain that apply replaces.
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::write(
        root.join("usr/local/bin/fixture-hello"),
        "#!/bin/sh\necho the host's own\n",
    )
    .unwrap();
    set_mode(&root.join("usr/local/bin/fixture-hello"), 0o750);
    fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n10.9.9.9 sea.hub #hostalias-set-by-sealer\n10.0.0.5 db",
    )
    .unwrap();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    assert_ne!(snapshot(root.path()), before);
    let out = clean_cmd(root.path()).assert().success();
    let ev = events(&out.get_output().stdout);
    assert!(ev.iter().any(|e| e["event"] == "undone"), "{ev:?}");
    assert_same_tree(&before, &snapshot(root.path()));

    // A second clean has nothing to do and changes nothing.
    let out = clean_cmd(root.path()).assert().success();
    assert!(
        events(&out.get_output().stdout)
            .iter()
            .all(|e| e["event"] != "undone")
    );
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn clean_after_a_failed_apply_leaves_the_tree_as_before() {
    let root = TestRoot::new();
    let before = snapshot(root.path());
    fs::write(root.join("fixture-fail-at"), "init-kube").unwrap();
    apply_cmd(root.path(), &fixture(), &[]).assert().code(1);
    fs::remove_file(root.join("fixture-fail-at")).unwrap();
    clean_cmd(root.path()).assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn keep_rootfs_keeps_only_the_rootfs_and_a_later_clean_finishes_the_job() {
    let root = TestRoot::new();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    clean_cmd(root.path())
        .arg("--keep-rootfs")
        .assert()
        .success();
    assert!(root.rootfs_copy().join("bin/fixture-hello").is_file());
    assert!(!root.join("usr/local/bin/fixture-hello").exists());
    // What stays besides the rootfs is the record of the directories apply created
    // around it (`var/lib/sealer`, …): nothing else of the apply's record.
    let state = root.join(&format!("var/lib/sealer/data/{CLUSTER}/state"));
    let names: Vec<String> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["journal.json"], "{names:?}");
    let journal = fs::read_to_string(state.join("journal.json")).unwrap();
    assert!(journal.contains("var/lib/sealer"), "{journal}");
    assert!(!journal.contains("fixture-hello"), "{journal}");

    // The clean that removes the rootfs removes those directories too.
    clean_cmd(root.path()).assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_second_concurrent_apply_is_refused() {
    let root = TestRoot::new();
    let (mut first, _) = start_hanging_apply(&root, "init-container-runtime");
    let started = std::time::Instant::now();
    // Exit 3, refused: nothing was changed, and the same command works once the other ends
    // (2 would say the input is wrong).
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().code(3);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains(&format!(
            "another installer-agent is running on this host (pid {}, apply of cluster c1)",
            first.id()
        )),
        "{stderr}"
    );
    // One at a time per host, whatever the cluster: another cluster's clean waits too.
    let out = assert_cmd::cargo::cargo_bin_cmd!("installer-agent")
        .args(["clean", "--cluster", "other"])
        .arg("--root")
        .arg(root.path())
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("another installer-agent is running"),
        "{stderr}"
    );
    let _ = first.kill();
    let _ = first.wait();
    if let Ok(pid) = fs::read_to_string(root.join("fixture-hang-child")) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
}

#[test]
fn facts_describe_the_host() {
    let out = assert_cmd::cargo::cargo_bin_cmd!("installer-agent")
        .arg("facts")
        .assert()
        .success();
    let facts: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(facts["arch"], std::env::consts::ARCH);
    for key in [
        "os_id",
        "kernel",
        "hostname",
        "cpus",
        "memory_total_bytes",
        "disk_free_bytes",
        "runtimes",
        "systemd",
    ] {
        assert!(!facts[key].is_null(), "facts lack {key}: {facts}");
    }
    assert!(facts["cpus"].as_u64().unwrap() >= 1);
    assert!(facts["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(facts["disk_free_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn dry_run_changes_nothing() {
    let root = TestRoot::new();
    let before = snapshot(root.path());
    let out = apply_cmd(root.path(), &fixture(), &["--dry-run"])
        .assert()
        .success();
    let ev = events(&out.get_output().stdout);
    assert_eq!(steps_with(&ev, "would_run").len(), 7);
    assert_same_tree(&before, &snapshot(root.path()));
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn help_lists_the_exit_codes() {
    let out = assert_cmd::cargo::cargo_bin_cmd!("installer-agent")
        .arg("--help")
        .assert()
        .success();
    let help = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for code in [
        "0  ok",
        "1  a step failed",
        "2  bad input",
        "3  refused: another apply or clean is running on this host",
    ] {
        assert!(help.contains(code), "{code}: {help}");
    }
}

#[test]
fn sealer_v09_runtime_scripts_are_named_by_the_runtime_type_and_a_failure_names_the_script() {
    // The fixture laid out as sealer v0.9's basefs does it: docker.sh installs the runtime
    // and uninstall-docker.sh removes it; there is no init-container-runtime.sh.
    let rootfs = tempfile::tempdir().unwrap();
    copy_tree(&fixture(), rootfs.path());
    let scripts = rootfs.path().join("scripts");
    fs::rename(
        scripts.join("init-container-runtime.sh"),
        scripts.join("docker.sh"),
    )
    .unwrap();
    fs::rename(
        scripts.join("clean-container-runtime.sh"),
        scripts.join("uninstall-docker.sh"),
    )
    .unwrap();
    // A containerd.sh beside it is not for this runtime type.
    fs::write(scripts.join("containerd.sh"), "#!/bin/sh\nexit 9\n").unwrap();
    let root = TestRoot::new();
    let before = snapshot(root.path());
    let docker = ["--container-runtime", "docker"];
    let out = apply_cmd(root.path(), rootfs.path(), &docker)
        .assert()
        .success();
    let ev = events(&out.get_output().stdout);
    assert!(steps_with(&ev, "step_done").contains(&"init-container-runtime".to_string()));
    let order = fs::read_to_string(root.join("var/lib/fixture/order")).unwrap();
    assert_eq!(order, "init-container-runtime\ninit-registry\ninit-kube\n");
    // uninstall-docker.sh is the runtime's clean: it removes what docker.sh left.
    clean_cmd(root.path()).assert().success();
    assert!(!root.join("var/lib/fixture").exists());
    assert_same_tree(&before, &snapshot(root.path()));

    // Failing, the step names the script that failed.
    fs::write(root.join("fixture-fail-at"), "init-container-runtime").unwrap();
    let out = apply_cmd(root.path(), rootfs.path(), &docker)
        .assert()
        .code(1);
    let ev = events(&out.get_output().stdout);
    let failed = ev
        .iter()
        .find(|e| e["event"] == "step_failed")
        .unwrap_or_else(|| panic!("no step_failed in {ev:?}"));
    let message = failed.to_string();
    assert!(
        message.contains("scripts/docker.sh exited with code 3"),
        "{message}"
    );
}
