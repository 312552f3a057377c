//! The controller-driven face over its real stdin/stdout: handshake, need/receive with hash
//! checks, run, and the refusals that keep a hostile or corrupted stream from writing
//! anywhere it should not.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use installer_agent::handrun::{HandApply, build};
use installer_proto::plan::{Plan, Timeouts};
use installer_proto::wire::{
    AgentMsg, ControllerMsg, Need, PROTOCOL_VERSION, read_msg, write_chunk, write_msg,
};
use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Agent {
    fn start(root: &std::path::Path) -> Agent {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("installer-agent"))
            .arg("serve")
            .arg("--root")
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut agent = Agent {
            child,
            stdin,
            stdout,
        };
        match agent.recv() {
            AgentMsg::Hello {
                protocol_version, ..
            } => assert_eq!(protocol_version, PROTOCOL_VERSION),
            other => panic!("expected hello, got {other:?}"),
        }
        agent.send(&ControllerMsg::Hello {
            protocol_version: PROTOCOL_VERSION,
            controller_version: "test".into(),
        });
        agent
    }
    fn send(&mut self, msg: &ControllerMsg) {
        write_msg(&mut self.stdin, msg).unwrap();
    }
    fn recv(&mut self) -> AgentMsg {
        read_msg(&mut self.stdout)
            .unwrap()
            .expect("agent closed the stream")
    }
    /// Reads until a non-event message.
    fn answer(&mut self) -> (Vec<installer_proto::event::Event>, AgentMsg) {
        let mut events = Vec::new();
        loop {
            match self.recv() {
                AgentMsg::Event(e) => events.push(e),
                other => return (events, other),
            }
        }
    }
    fn bye(mut self) {
        self.send(&ControllerMsg::Bye);
        assert!(self.child.wait().unwrap().success());
    }
}

fn plan() -> (Plan, installer_proto::rootfs::MergedTree) {
    build(&HandApply {
        rootfs: fixture(),
        cluster: CLUSTER.into(),
        env: Default::default(),
        host_env: Default::default(),
        roles: vec!["master".into()],
        registry_host: true,
        registry_domain: "sea.hub".into(),
        registry_port: 5000,
        registry_ip: None,
        host_ip: Some("10.1.2.3".into()),
        master0_ip: None,
        container_runtime: "containerd".into(),
        data_root: "/var/lib/sealer/data".into(),
        timeouts: Timeouts::default(),
        watch: Default::default(),
    })
    .unwrap()
}

fn tar_zst(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        // Written raw: the tar crate refuses `..` in set_path, a hostile sender would not.
        let name = &mut header.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }
    zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap()
}

fn send_stream(agent: &mut Agent, bytes: &[u8]) {
    write_chunk(&mut agent.stdin, bytes).unwrap();
    agent.send(&ControllerMsg::FilesEnd);
}

#[test]
fn a_session_receives_what_is_missing_runs_and_then_needs_nothing() {
    let root = TestRoot::new();
    let (plan, tree) = plan();
    let mut agent = Agent::start(root.path());
    agent.send(&ControllerMsg::Facts {
        data_root: "/var/lib/sealer/data".into(),
        cluster: CLUSTER.into(),
    });
    assert!(matches!(agent.recv(), AgentMsg::Facts(f) if f.state.is_none()));
    agent.send(&ControllerMsg::Offer {
        plan: Box::new(plan.clone()),
        dry_run: false,
    });
    let AgentMsg::Need(Need {
        files, have_files, ..
    }) = agent.recv()
    else {
        panic!("expected need")
    };
    assert_eq!(files.len(), plan.manifest.files().count());
    assert_eq!(have_files, 0);
    let entries: Vec<(&str, Vec<u8>)> = files
        .iter()
        .map(|f| (f.as_str(), std::fs::read(tree.source(f).unwrap()).unwrap()))
        .collect();
    send_stream(&mut agent, &tar_zst(&entries));
    let AgentMsg::Received { files: got, .. } = agent.recv() else {
        panic!("expected received")
    };
    assert_eq!(got as usize, files.len());
    agent.send(&ControllerMsg::Run {
        force: false,
        stop_after: Some(installer_proto::plan::StepKind::InitRegistry),
    });
    let (events, done) = agent.answer();
    let AgentMsg::Done(outcome) = done else {
        panic!("expected done, got {done:?}")
    };
    assert!(outcome.ok, "{outcome:?} {events:?}");
    assert!(
        !root.join("var/lib/fixture/init-kube.env").exists(),
        "ran past stop_after"
    );
    agent.send(&ControllerMsg::Run {
        force: false,
        stop_after: None,
    });
    let (_, done) = agent.answer();
    assert!(matches!(done, AgentMsg::Done(o) if o.ok && o.ran == 1));
    agent.bye();

    let mut agent = Agent::start(root.path());
    agent.send(&ControllerMsg::Offer {
        plan: Box::new(plan),
        dry_run: false,
    });
    let AgentMsg::Need(Need { files, .. }) = agent.recv() else {
        panic!("expected need")
    };
    assert!(files.is_empty(), "{files:?}");
    agent.bye();
}

#[test]
fn paths_outside_the_rootfs_and_unrequested_or_corrupt_content_are_refused() {
    let root = TestRoot::new();
    let (plan, _) = plan();
    let before = snapshot(root.path());
    for (path, data, needle) in [
        ("../../../../escaped", b"x".to_vec(), "refused"),
        ("/etc/passwd", b"x".to_vec(), "refused"),
        (
            "etc/not-in-plan",
            b"x".to_vec(),
            "not a file this host asked for",
        ),
        ("etc/static.conf", b"tampered".to_vec(), "does not match"),
    ] {
        let mut agent = Agent::start(root.path());
        agent.send(&ControllerMsg::Offer {
            plan: Box::new(plan.clone()),
            dry_run: false,
        });
        assert!(matches!(agent.recv(), AgentMsg::Need(_)));
        send_stream(&mut agent, &tar_zst(&[(path, data)]));
        match agent.recv() {
            AgentMsg::Error { message } => assert!(message.contains(needle), "{path}: {message}"),
            other => panic!("{path}: expected an error, got {other:?}"),
        }
        agent.bye();
        assert!(!root.path().parent().unwrap().join("escaped").exists());
    }
    // Nothing visible changed outside the agent's own cluster directory, and nothing of the
    // refused content is in the rootfs copy.
    let after = snapshot(root.path());
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
    assert!(
        after
            .keys()
            // The cluster directory, and the host's list of the clusters it carries.
            .all(|k| k.starts_with("var/lib/sealer")
                || k.starts_with("var/lib/installer-agent")
                || before.contains_key(k)),
        "{after:?}"
    );
    assert!(!root.rootfs_copy().join("etc/static.conf").exists());
}

#[test]
fn a_plan_with_an_escaping_path_is_refused_before_anything_is_written() {
    let root = TestRoot::new();
    let (mut plan, _) = plan();
    plan.manifest
        .entries
        .push(installer_proto::manifest::Entry {
            path: "../outside".into(),
            mode: 0o644,
            kind: installer_proto::manifest::EntryKind::File {
                size: 1,
                sha256: "00".repeat(32),
            },
        });
    let before = snapshot(root.path());
    let mut agent = Agent::start(root.path());
    agent.send(&ControllerMsg::Offer {
        plan: Box::new(plan),
        dry_run: false,
    });
    match agent.recv() {
        AgentMsg::Error { message } => assert!(message.contains("plan is invalid"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    agent.bye();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_different_protocol_version_is_refused() {
    let root = TestRoot::new();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("installer-agent"))
        .args(["serve", "--root"])
        .arg(root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let _: AgentMsg = read_msg(&mut stdout).unwrap().unwrap();
    write_msg(
        &mut stdin,
        &ControllerMsg::Hello {
            protocol_version: 999,
            controller_version: "x".into(),
        },
    )
    .unwrap();
    stdin.flush().unwrap();
    match read_msg::<_, AgentMsg>(&mut stdout).unwrap().unwrap() {
        AgentMsg::Error { message } => assert!(message.contains("protocol 999"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(!child.wait().unwrap().success());
}

#[test]
fn an_offer_or_clean_while_another_agent_holds_the_lock_is_answered_busy() {
    let root = TestRoot::new();
    let (plan, _) = plan();
    let mut first = Agent::start(root.path());
    first.send(&ControllerMsg::Offer {
        plan: Box::new(plan.clone()),
        dry_run: false,
    });
    assert!(matches!(first.recv(), AgentMsg::Need(_)));
    let before = snapshot(root.path());
    let mut second = Agent::start(root.path());
    second.send(&ControllerMsg::Offer {
        plan: Box::new(plan),
        dry_run: false,
    });
    match second.recv() {
        AgentMsg::Busy { message } => assert!(
            message.contains("another installer-agent is running on this host"),
            "{message}"
        ),
        other => panic!("expected busy, got {other:?}"),
    }
    second.send(&ControllerMsg::Clean {
        cluster: "other".into(),
        data_root: "/var/lib/sealer/data".into(),
        keep_rootfs: false,
        plugins: Vec::new(),
        env: Default::default(),
        remove_agent: false,
        force: false,
    });
    match second.answer() {
        (_, AgentMsg::Busy { message }) => assert!(
            message.contains("another installer-agent is running on this host"),
            "{message}"
        ),
        (_, other) => panic!("expected busy, got {other:?}"),
    }
    second.bye();
    assert_same_tree(&before, &snapshot(root.path()));
    first.bye();
}

/// The plan's files as one compressed tar stream cut in two where `first` ends: the first
/// part holds exactly the files `first` keeps (the encoder flushed there), the second the
/// rest and the stream's end.
fn stream_in_two(
    files: &[String],
    tree: &installer_proto::rootfs::MergedTree,
    first: impl Fn(&str) -> bool,
) -> (Vec<u8>, Vec<u8>) {
    let (early, late): (Vec<&String>, Vec<&String>) = files.iter().partition(|f| first(f));
    let encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    let mut builder = tar::Builder::new(encoder);
    let append = |b: &mut tar::Builder<_>, path: &str| {
        let data = std::fs::read(tree.source(path).unwrap()).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut header, path, &data[..]).unwrap();
    };
    for f in &early {
        append(&mut builder, f);
    }
    builder.get_mut().flush().unwrap();
    let cut = builder.get_ref().get_ref().len();
    for f in &late {
        append(&mut builder, f);
    }
    let all = builder.into_inner().unwrap().finish().unwrap();
    (all[..cut].to_vec(), all[cut..].to_vec())
}

/// Offers `plan`; the files the agent needs.
fn offer(agent: &mut Agent, plan: &Plan) -> Vec<String> {
    agent.send(&ControllerMsg::Offer {
        plan: Box::new(plan.clone()),
        dry_run: false,
    });
    let AgentMsg::Need(Need { files, .. }) = agent.recv() else {
        panic!("expected need")
    };
    files
}

/// Waits for the answers to a run whose files were sent: the files' (`Received`, or
/// `Error` when refused) and the run's `Done`.
fn files_and_done(agent: &mut Agent) -> (Result<u64, String>, installer_proto::event::Outcome) {
    let (mut files, mut done) = (None, None);
    while files.is_none() || done.is_none() {
        match agent.recv() {
            AgentMsg::Event(_) => {}
            AgentMsg::Received { files: n, .. } => files = Some(Ok(n)),
            AgentMsg::Error { message } => files = Some(Err(message)),
            AgentMsg::Done(o) => done = Some(o),
            other => panic!("unexpected {other:?}"),
        }
    }
    (files.unwrap(), done.unwrap())
}

/// Reads events until `step` is reported done; the events read.
fn until_done(agent: &mut Agent, step: &str) -> Vec<installer_proto::event::Event> {
    let mut events = Vec::new();
    loop {
        match agent.recv() {
            AgentMsg::Event(e) => {
                let done = matches!(&e, installer_proto::event::Event::StepDone { step: s, .. } if s == step);
                events.push(e);
                if done {
                    return events;
                }
            }
            other => panic!("expected events up to {step} done, got {other:?} after {events:?}"),
        }
    }
}

#[test]
fn steps_start_while_their_files_arrive_and_each_waits_for_its_own() {
    let root = TestRoot::new();
    let (plan, tree) = plan();
    let mut agent = Agent::start(root.path());
    let files = offer(&mut agent, &plan);
    assert!(files.iter().any(|f| f.starts_with("bin/")));
    assert!(files.iter().any(|f| f.starts_with("etc/")));
    let (bin, rest) = stream_in_two(&files, &tree, |f| f.starts_with("bin/"));
    agent.send(&ControllerMsg::Run {
        force: false,
        stop_after: Some(installer_proto::plan::StepKind::InitRegistry),
    });
    write_chunk(&mut agent.stdin, &bin).unwrap();
    agent.stdin.flush().unwrap();
    // install-bin finishes with only bin/ sent: the steps run while the rest is to come.
    until_done(&mut agent, "install-bin");
    assert!(root.join("usr/local/bin/fixture-hello").is_file());
    let rendered = root.rootfs_copy().join("etc/app/app.conf");
    assert!(!rendered.exists(), "render-templates waits for etc/");

    write_chunk(&mut agent.stdin, &rest).unwrap();
    agent.send(&ControllerMsg::FilesEnd);
    let (received, outcome) = files_and_done(&mut agent);
    assert_eq!(received, Ok(files.len() as u64));
    assert!(outcome.ok, "{outcome:?}");
    assert!(rendered.is_file(), "rendered once etc/ arrived");
    for f in &files {
        assert_eq!(
            std::fs::read(root.rootfs_copy().join(f)).unwrap(),
            std::fs::read(tree.source(f).unwrap()).unwrap(),
            "{f} in place"
        );
    }
    assert!(
        !root
            .join(&format!("var/lib/sealer/data/{CLUSTER}/staging"))
            .exists(),
        "staging is gone once everything is in place"
    );
    agent.bye();
}

#[test]
fn a_stream_that_ends_before_a_steps_files_fails_that_step_and_the_next_apply_completes() {
    let root = TestRoot::new();
    let (plan, tree) = plan();
    let mut agent = Agent::start(root.path());
    let files = offer(&mut agent, &plan);
    let (bin, _) = stream_in_two(&files, &tree, |f| f.starts_with("bin/"));
    agent.send(&ControllerMsg::Run {
        force: false,
        stop_after: None,
    });
    // The stream ends after bin/ (its tar end missing too).
    write_chunk(&mut agent.stdin, &bin).unwrap();
    agent.send(&ControllerMsg::FilesEnd);
    let (refused, outcome) = files_and_done(&mut agent);
    assert!(!outcome.ok);
    assert_eq!(outcome.failed_step.as_deref(), Some("render-templates"));
    let error = outcome.error.unwrap();
    assert!(error.contains("its files did not arrive"), "{error}");
    let refused = refused.unwrap_err();
    assert!(
        refused.contains("stream") || refused.contains("did not arrive"),
        "{refused}"
    );
    agent.bye();

    // The next apply is sent what is missing and completes.
    let mut agent = Agent::start(root.path());
    let left = offer(&mut agent, &plan);
    assert!(
        !left.is_empty() && left.iter().all(|f| !f.starts_with("bin/")),
        "{left:?}"
    );
    let (head, tail) = stream_in_two(&left, &tree, |_| true);
    let all = [head, tail].concat();
    agent.send(&ControllerMsg::Run {
        force: false,
        stop_after: None,
    });
    write_chunk(&mut agent.stdin, &all).unwrap();
    agent.send(&ControllerMsg::FilesEnd);
    let (received, outcome) = files_and_done(&mut agent);
    assert_eq!(received, Ok(left.len() as u64));
    assert!(outcome.ok, "{outcome:?}");
    agent.bye();
}
