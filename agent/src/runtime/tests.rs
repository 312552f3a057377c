//! The runtime CLIs driven through the recording fake: what is asked, how the answers are
//! read, and what starting and removing `sealer-registry` runs.

use super::*;
use crate::command::{Ran, RecordingFake};

const NAME: &str = installer_proto::plan::REGISTRY_CONTAINER;

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Docker and nerdctl, which share a command line, at made-up paths.
fn docker_likes() -> [(Runtime, &'static str); 2] {
    [
        (Runtime::Docker("/opt/rt/docker".into()), "/opt/rt/docker"),
        (
            Runtime::Nerdctl("/opt/rt/nerdctl".into()),
            "/opt/rt/nerdctl",
        ),
    ]
}

const CTR: &str = "/opt/rt/ctr";

fn ctr() -> Runtime {
    Runtime::Ctr(CTR.into())
}

fn start(rt: &Runtime, fake: &RecordingFake) -> Vec<Vec<String>> {
    rt.commands_to_start(
        fake,
        &RegistryRun {
            tar: Path::new("/rootfs/images/registry.tar"),
            image: "registry:2.8",
            data: Path::new("/rootfs/registry"),
            env: vec!["REGISTRY_HTTP_ADDR=0.0.0.0:5000".into()],
            read_only: Vec::new(),
        },
    )
}

#[test]
fn names_are_qualified_as_containerd_stores_them() {
    assert_eq!(qualified("registry:2"), "docker.io/library/registry:2");
    assert_eq!(qualified("me/registry:2"), "docker.io/me/registry:2");
    assert_eq!(
        qualified("sea.hub:5000/registry:2"),
        "sea.hub:5000/registry:2"
    );
}

#[test]
fn docker_and_nerdctl_start_the_registry_unless_inspect_says_it_runs() {
    for (rt, p) in docker_likes() {
        let inspect = [p, "inspect", "-f", "{{.State.Running}}", NAME];
        let stopped = RecordingFake::new();
        stopped.answer(&inspect, Ran::exited(0, "false\n", ""));
        assert_eq!(
            start(&rt, &stopped),
            vec![
                argv(&[p, "load", "-i", "/rootfs/images/registry.tar"]),
                argv(&[p, "rm", "-f", NAME]),
                argv(&[
                    p,
                    "run",
                    "-d",
                    "--name",
                    NAME,
                    "--restart",
                    "always",
                    "--network",
                    "host",
                    "-e",
                    "REGISTRY_HTTP_ADDR=0.0.0.0:5000",
                    "-v",
                    "/rootfs/registry:/var/lib/registry",
                    "registry:2.8",
                ]),
            ],
            "{p}"
        );
        // The question ran with the scripts' PATH and nothing else added.
        let calls = stopped.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].argv, argv(&inspect));
        assert_eq!(
            calls[0].env,
            vec![("PATH".to_string(), SCRIPT_PATH.to_string())]
        );

        let running = RecordingFake::new();
        running.answer(&inspect, Ran::exited(0, "true\n", ""));
        assert!(start(&rt, &running).is_empty(), "{p}");

        // No such container: inspect fails (and prints nothing useful).
        let missing = RecordingFake::new();
        missing.answer(&inspect, Ran::exited(1, "\n", "Error: No such object"));
        assert_eq!(start(&rt, &missing).len(), 3, "{p}");
        // No runtime answer at all counts as not running.
        let broken = RecordingFake::new();
        broken.spawn_fails(&inspect);
        assert_eq!(start(&rt, &broken).len(), 3, "{p}");
    }
}

#[test]
fn a_failing_inspect_that_prints_true_is_not_running() {
    let (rt, p) = docker_likes()[0].clone();
    let fake = RecordingFake::new();
    let inspect = [p, "inspect", "-f", "{{.State.Running}}", NAME];
    fake.answer(&inspect, Ran::exited(1, "true\n", ""));
    assert!(!rt.is_running(&fake, NAME));
}

const TASKS_HEADER: &str = "TASK                 PID     STATUS\n";

#[test]
fn ctr_reads_the_registry_task_state_from_tasks_ls() {
    let ls = [CTR, "-n", CTR_NAMESPACE, "tasks", "ls"];
    let answer = |rows: &str| {
        let fake = RecordingFake::new();
        fake.answer(&ls, Ran::exited(0, &format!("{TASKS_HEADER}{rows}"), ""));
        fake
    };
    let running = answer(&format!("{NAME}      4242    RUNNING\n"));
    assert!(start(&ctr(), &running).is_empty());
    assert_eq!(running.argvs(), vec![argv(&ls)]);
    assert!(ctr().is_running(&running, NAME));

    let stopped = answer(&format!("{NAME}      4242    STOPPED\n"));
    assert!(!ctr().is_running(&stopped, NAME));
    // Another container whose name only begins with the registry's does not count.
    let other = answer(&format!("{NAME}-old  77      RUNNING\n"));
    assert!(!ctr().is_running(&other, NAME));
    let none = answer("");
    assert!(!ctr().is_running(&none, NAME));

    let qualified_image = qualified("registry:2.8");
    assert_eq!(
        start(&ctr(), &stopped),
        vec![
            argv(&[
                CTR,
                "-n",
                CTR_NAMESPACE,
                "images",
                "import",
                "/rootfs/images/registry.tar"
            ]),
            argv(&[
                CTR,
                "-n",
                CTR_NAMESPACE,
                "run",
                "-d",
                "--net-host",
                "--env",
                "REGISTRY_HTTP_ADDR=0.0.0.0:5000",
                "--mount",
                "type=bind,src=/rootfs/registry,dst=/var/lib/registry,options=rbind:rw",
                &qualified_image,
                NAME,
            ]),
        ]
    );
}

#[test]
fn docker_and_nerdctl_remove_the_registry_only_when_inspect_finds_it() {
    for (rt, p) in docker_likes() {
        let inspect = [p, "inspect", NAME];
        let rm = [p, "rm", "-f", NAME];

        let present = RecordingFake::new();
        present.answer(&inspect, Ran::exited(0, "[{}]", ""));
        present.answer(&rm, Ran::exited(0, NAME, ""));
        assert_eq!(rt.remove(&present, NAME), Ok(true), "{p}");
        assert_eq!(present.argvs(), vec![argv(&inspect), argv(&rm)]);

        let absent = RecordingFake::new();
        absent.answer(&inspect, Ran::exited(1, "[]", "no such object"));
        assert_eq!(rt.remove(&absent, NAME), Ok(false), "{p}");
        assert_eq!(absent.argvs(), vec![argv(&inspect)], "nothing removed");

        let stuck = RecordingFake::new();
        stuck.answer(&inspect, Ran::exited(0, "[{}]", ""));
        stuck.answer(&rm, Ran::exited(1, "", "device busy"));
        assert_eq!(
            rt.remove(&stuck, NAME),
            Err(format!("{p} could not remove container {NAME}"))
        );
    }
}

#[test]
fn ctr_kills_the_task_waits_until_it_can_be_deleted_then_removes_the_container() {
    let info = [CTR, "-n", CTR_NAMESPACE, "containers", "info", NAME];
    let kill = [
        CTR,
        "-n",
        CTR_NAMESPACE,
        "tasks",
        "kill",
        "-s",
        "SIGKILL",
        NAME,
    ];
    let task_rm = [CTR, "-n", CTR_NAMESPACE, "tasks", "rm", "-f", NAME];
    let container_rm = [CTR, "-n", CTR_NAMESPACE, "containers", "rm", NAME];

    let fake = RecordingFake::new();
    fake.answer(&info, Ran::exited(0, "{}", ""));
    fake.answer(&kill, Ran::exited(0, "", ""));
    // The task is still dying the first two times.
    fake.answer(&task_rm, Ran::exited(1, "", "task must be stopped"));
    fake.answer(&task_rm, Ran::exited(1, "", "task must be stopped"));
    fake.answer(&task_rm, Ran::exited(0, "", ""));
    fake.answer(&container_rm, Ran::exited(0, "", ""));
    assert_eq!(ctr().remove(&fake, NAME), Ok(true));
    assert_eq!(
        fake.argvs(),
        vec![
            argv(&info),
            argv(&kill),
            argv(&task_rm),
            argv(&task_rm),
            argv(&task_rm),
            argv(&container_rm),
        ]
    );

    // No container: nothing is killed or removed.
    let absent = RecordingFake::new();
    absent.answer(&info, Ran::exited(1, "", "not found"));
    assert_eq!(ctr().remove(&absent, NAME), Ok(false));
    assert_eq!(absent.argvs(), vec![argv(&info)]);

    // A container that will not go is an error naming ctr.
    let stuck = RecordingFake::new();
    stuck.answer(&info, Ran::exited(0, "{}", ""));
    stuck.answer(&task_rm, Ran::exited(0, "", ""));
    stuck.answer(&container_rm, Ran::exited(1, "", "in use"));
    assert_eq!(
        ctr().remove(&stuck, NAME),
        Err(format!("{CTR} could not remove container {NAME}"))
    );
}

#[test]
fn log_tails_join_stdout_and_stderr_and_ctr_explains_it_keeps_none() {
    for (rt, p) in docker_likes() {
        let fake = RecordingFake::new();
        fake.answer(
            &[p, "logs", "--tail", "2", NAME],
            Ran::exited(0, "out 1\n", "err 1\nerr 2\n"),
        );
        assert_eq!(
            rt.logs_tail(&fake, NAME, 2),
            vec!["out 1", "err 1", "err 2"]
        );
    }
    let fake = RecordingFake::new();
    let tail = ctr().logs_tail(&fake, NAME, 2);
    assert_eq!(tail.len(), 1);
    assert!(tail[0].contains("ctr keeps no container logs"), "{tail:?}");
    assert!(fake.calls().is_empty());
}

#[test]
fn runtimes_are_found_on_the_search_path_in_order_docker_nerdctl_ctr() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("ctr"), "").unwrap();
    std::fs::write(b.path().join("docker"), "").unwrap();
    // A directory of that name is not a program.
    std::fs::create_dir(a.path().join("nerdctl")).unwrap();
    let search = format!("{}:{}", a.path().display(), b.path().display());
    assert_eq!(
        Runtime::all_on(&search),
        vec![
            Runtime::Docker(b.path().join("docker")),
            Runtime::Ctr(a.path().join("ctr")),
        ]
    );
}

#[test]
fn the_registrys_tls_files_are_mounted_read_only_and_named_in_its_env() {
    let run = RegistryRun {
        tar: Path::new("/r/images/registry.tar"),
        image: "registry:2",
        data: Path::new("/r/registry"),
        env: vec![
            "REGISTRY_HTTP_ADDR=0.0.0.0:5000".into(),
            "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/sea.hub.crt".into(),
        ],
        read_only: vec![(PathBuf::from("/r/certs"), "/certs")],
    };
    let (docker, p) = docker_likes()[0].clone();
    let started = docker.start_commands(&run);
    let run_argv = started.last().unwrap();
    let joined = run_argv.join(" ");
    assert!(
        joined.contains("-e REGISTRY_HTTP_ADDR=0.0.0.0:5000 -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/sea.hub.crt -v /r/registry:/var/lib/registry -v /r/certs:/certs:ro registry:2"),
        "{p}: {joined}"
    );
    let started = ctr().start_commands(&run);
    let joined = started.last().unwrap().join(" ");
    assert!(
        joined.contains("--env REGISTRY_HTTP_TLS_CERTIFICATE=/certs/sea.hub.crt --mount type=bind,src=/r/registry,dst=/var/lib/registry,options=rbind:rw --mount type=bind,src=/r/certs,dst=/certs,options=rbind:ro docker.io/library/registry:2 sealer-registry"),
        "{joined}"
    );
}
