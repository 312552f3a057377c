//! Apply's phase list on in-process hosts: what ships, what runs, what is reported once.

use super::*;
use std::collections::BTreeSet;

/// Each step appears at most once in `steps`; returns them as a set.
fn once(steps: &[String]) -> BTreeSet<String> {
    let set: BTreeSet<String> = steps.iter().cloned().collect();
    assert_eq!(
        set.len(),
        steps.len(),
        "a step was reported twice: {steps:?}"
    );
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_apply_ships_and_runs_each_step_once_and_a_second_skips_each_once() {
    let cluster = Cluster::new(1);
    let ip = cluster.ip(0);

    let first = cluster.apply(false).await;
    assert_eq!(first.code, 0, "{}", first.describe());
    assert_eq!(first.phases(&ip), ["preflight", "ship", "steps", "steps"]);
    let shipped = first.of(&ip, "transfer_done");
    assert_eq!(shipped.len(), 1);
    let files = shipped[0]["files"].as_u64().unwrap();
    assert!(files > 0);
    let done = once(&first.steps(&ip, "step_done"));
    assert!(done.iter().any(|s| s.contains("init-kube")), "{done:?}");
    // The first pass's steps come up again, skipped, in the second: not reported again.
    assert!(first.steps(&ip, "step_skipped").is_empty());
    let status = first.status(&ip);
    assert_eq!(status["status"], "ok");
    assert_eq!(status["ran"].as_u64().unwrap(), done.len() as u64);
    assert_eq!(status["skipped"], 0);
    assert_eq!(status["files_sent"].as_u64().unwrap(), files);
    let order = std::fs::read_to_string(cluster.root(0).join("var/lib/fixture/order")).unwrap();
    let registry = order.lines().position(|s| s == "init-registry").unwrap();
    let kube = order.lines().position(|s| s == "init-kube").unwrap();
    assert!(registry < kube, "{order}");

    let again = cluster.apply(false).await;
    assert_eq!(again.code, 0, "{}", again.describe());
    assert!(again.steps(&ip, "step_done").is_empty());
    assert_eq!(once(&again.steps(&ip, "step_skipped")), done);
    let status = again.status(&ip);
    assert_eq!(status["ran"], 0);
    assert_eq!(status["skipped"].as_u64().unwrap(), done.len() as u64);
    assert_eq!(status["files_sent"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_reports_every_step_once() {
    let cluster = Cluster::new(1);
    let ip = cluster.ip(0);
    let before = snapshot(cluster.root(0));

    let dry = cluster.apply(true).await;
    assert_eq!(dry.code, 0, "{}", dry.describe());
    assert_eq!(
        snapshot(cluster.root(0)),
        before,
        "a dry run changed the host"
    );
    assert_eq!(dry.phases(&ip), ["preflight", "ship", "steps"], "one pass");
    assert!(dry.of(&ip, "transfer_done").is_empty(), "nothing is sent");
    assert!(dry.steps(&ip, "step_started").is_empty());
    let would = once(&dry.steps(&ip, "would_run"));

    let real = cluster.apply(false).await;
    assert_eq!(real.code, 0, "{}", real.describe());
    assert_eq!(would, once(&real.steps(&ip, "step_done")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_stops_its_host_and_the_next_apply_resumes_there() {
    let cluster = Cluster::new(1);
    let ip = cluster.ip(0);
    let switch = cluster.root(0).join("fixture-fail-at");
    std::fs::write(&switch, "init-kube").unwrap();

    let failed = cluster.apply(false).await;
    assert_eq!(failed.code, 1, "{}", failed.describe());
    let status = failed.status(&ip);
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["phase"], "steps");
    let step = status["step"].as_str().unwrap();
    assert!(step.contains("init-kube"), "{status}");
    assert_eq!(failed.steps(&ip, "step_failed"), [step]);
    let done_before = once(&failed.steps(&ip, "step_done"));
    assert!(!done_before.is_empty());

    std::fs::remove_file(&switch).unwrap();
    let resumed = cluster.apply(false).await;
    assert_eq!(resumed.code, 0, "{}", resumed.describe());
    let done_now = once(&resumed.steps(&ip, "step_done"));
    assert!(done_now.contains(step), "{done_now:?}");
    assert!(done_now.is_disjoint(&done_before), "{done_now:?} ran again");
    assert_eq!(once(&resumed.steps(&ip, "step_skipped")), done_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_failing_in_the_first_pass_stops_alone_and_the_other_finishes() {
    let cluster = Cluster::new(2);
    let (master, node) = (cluster.ip(0), cluster.ip(1));
    std::fs::write(
        cluster.root(1).join("fixture-fail-at"),
        "init-container-runtime",
    )
    .unwrap();

    let run = cluster.apply(false).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let failed = run.status(&node);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["phase"], "steps");
    assert!(
        failed["step"]
            .as_str()
            .unwrap()
            .contains("init-container-runtime")
    );
    assert_eq!(
        run.phases(&node),
        ["preflight", "ship", "steps"],
        "no second pass"
    );
    assert_eq!(run.status(&master)["status"], "ok", "{}", run.describe());
    assert_eq!(run.phases(&master), ["preflight", "ship", "steps", "steps"]);
    let done = once(&run.steps(&master, "step_done"));
    assert!(done.iter().any(|s| s.contains("init-kube")), "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_after_apply_undoes_every_host() {
    let cluster = Cluster::new(2);
    let before: Vec<_> = (0..2).map(|i| snapshot(cluster.root(i))).collect();
    let applied = cluster.apply(false).await;
    assert_eq!(applied.code, 0, "{}", applied.describe());
    assert!(cluster.root(0).join("usr/local/bin/fixture-hello").exists());

    let cleaned = cluster.clean().await;
    assert_eq!(cleaned.code, 0, "{}", cleaned.describe());
    for (i, before) in before.iter().enumerate() {
        let ip = cluster.ip(i);
        assert_eq!(cleaned.phases(&ip), ["preflight", "clean"]);
        let status = cleaned.status(&ip);
        assert_eq!(status["status"], "ok", "{status}");
        assert!(status["ran"].as_u64().unwrap() > 0, "{status}");
        assert_eq!(&snapshot(cluster.root(i)), before, "host {ip}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_needing_an_undefined_key_stops_the_run_before_any_byte_is_sent() {
    let overlay = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overlay.path().join("etc")).unwrap();
    std::fs::write(
        overlay.path().join("etc/kubeadm.yml.tmpl"),
        "kind: ClusterConfiguration\nnetworking:\n  podSubnet: {{ .PodCIDR }}\n# {{ .HostName }}\n",
    )
    .unwrap();
    let cluster = Cluster::with_layers(1, vec![overlay.path().to_path_buf()]);
    let before = snapshot(cluster.root(0));
    let Err(failure) = cluster.try_apply(false).await else {
        panic!("an undefined key was not caught before shipping");
    };
    assert_eq!(failure.exit_code(), crate::exit::BAD_INPUT);
    let message = failure.to_string();
    assert!(
        message.starts_with("etc/kubeadm.yml.tmpl:3:17: undefined key \"PodCIDR\"")
            && message.contains(&format!("(on {})", cluster.ip(0)))
            && message.ends_with("Nothing was sent to any host."),
        "{message}"
    );
    // HostName comes from the facts, so that line rendered; and the host is as it was.
    assert!(!message.contains("HostName"), "{message}");
    assert_eq!(snapshot(cluster.root(0)), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_registry_host_keeps_the_others_at_the_registry_barrier() {
    let cluster = Cluster::new(2);
    let (master, node) = (cluster.ip(0), cluster.ip(1));
    std::fs::write(cluster.root(0).join("fixture-fail-at"), "init-registry").unwrap();

    let run = cluster.apply(false).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let failed = run.status(&master);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["step"], "init-registry", "{failed}");
    let held = run.status(&node);
    assert_eq!(held["status"], "not_reached", "{held}");
    assert_eq!(
        held["reason"],
        format!(
            "not reached: registry host {master} failed at init-registry; the steps after init-registry pull from it"
        )
    );
    // The node ran its first pass, and nothing after the barrier.
    assert_eq!(run.phases(&node), ["preflight", "ship", "steps"]);
    let order = std::fs::read_to_string(cluster.root(1).join("var/lib/fixture/order")).unwrap();
    assert!(!order.contains("init-kube"), "{order}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubeadm_merge_that_would_fail_on_the_host_stops_the_run_before_shipping() {
    // The rootfs's kubeadm.yml names ClusterConfiguration twice, which kubeadm refuses:
    // merging the Clusterfile's ClusterConfiguration into it cannot work.
    let overlay = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overlay.path().join("etc")).unwrap();
    std::fs::write(
        overlay.path().join("etc/kubeadm.yml.tmpl"),
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
    )
    .unwrap();
    let docs = "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 100.64.0.0/10\n";
    let cluster = Cluster::custom(1, vec![overlay.path().to_path_buf()], docs);
    let before = snapshot(cluster.root(0));
    let Err(failure) = cluster.try_apply(false).await else {
        panic!("a failing kubeadm merge was not caught before shipping");
    };
    let message = failure.to_string();
    assert!(
        message.starts_with("etc/kubeadm.yml: ") && message.contains("ClusterConfiguration"),
        "{message}"
    );
    assert!(
        message.contains(&format!("(on {})", cluster.ip(0))),
        "{message}"
    );
    assert_eq!(snapshot(cluster.root(0)), before);
}
