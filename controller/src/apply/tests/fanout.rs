//! The fan-out when the registry cannot serve the files: the in-process hosts run no
//! registry, so the registry host's push finds nothing answering, and the other hosts must
//! still end up with every file — from the controller, after the registry host's first
//! pass, with the run saying why. (The fan-out through a real registry is the e2e suite's.)

use super::{Cluster, snapshot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_whose_fetch_fails_get_the_controllers_stream_and_the_run_says_so() {
    let mut cluster = Cluster::new(3);
    cluster.fan_out = true;
    let applied = cluster.apply(false).await;
    assert_eq!(applied.code, 0, "{}", applied.describe());
    let (master, nodes) = (cluster.ip(0), [cluster.ip(1), cluster.ip(2)]);

    let published = applied.of(&master, "published");
    assert_eq!(published.len(), 1, "{}", applied.describe());
    assert_eq!(published[0]["pushed"], 0);
    assert!(published[0]["failed"].as_u64().unwrap() > 0);
    let warnings: Vec<String> = applied
        .events
        .iter()
        .filter(|e| e["type"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("{master}: ")) && w.contains("not pushed")),
        "{warnings:?}"
    );

    let index =
        |pred: &dyn Fn(&serde_json::Value) -> bool| applied.events.iter().position(pred).unwrap();
    let master_registry_done = index(&|e| {
        e["host"] == master.as_str() && e["event"] == "step_done" && e["step"] == "init-registry"
    });
    for node in &nodes {
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{node}: "))
                && w.contains("could not come from the registry")
                && w.contains("the controller sends them")),
            "{node}: {warnings:?}"
        );
        let sent = applied.of(node, "transfer_done");
        assert_eq!(sent.len(), 1, "{node} is sent its files once");
        assert!(sent[0]["files"].as_u64().unwrap() > 0);
        // Nothing reached the node before the registry host was through its first pass.
        let first_step = index(&|e| e["host"] == node.as_str() && e["event"] == "step_started");
        assert!(master_registry_done < first_step, "{}", applied.describe());
        assert!(applied.phases(node).contains(&"fetch".to_string()));
        assert_eq!(applied.status(node)["status"], "ok");
    }
    // The nodes' copies are the same, but for what each rendered with its own values.
    let rootfs = |i: usize| {
        let mut tree = snapshot(&cluster.root(i).join("var/lib/sealer/data/c1/rootfs"));
        let rendered: Vec<String> = tree
            .keys()
            .filter_map(|k| k.strip_suffix(".tmpl").map(str::to_string))
            .collect();
        tree.retain(|k, _| !rendered.contains(k));
        tree
    };
    assert!(rootfs(1).contains_key("bin/fixture-tool"));
    assert_eq!(rootfs(1), rootfs(2), "the nodes' copies are the same");

    // Nothing changed: nobody lacks anything, so nothing is deferred, pushed or sent.
    let again = cluster.apply(false).await;
    assert_eq!(again.code, 0, "{}", again.describe());
    assert!(
        again.of(&master, "published").is_empty(),
        "{}",
        again.describe()
    );
    for node in &nodes {
        assert!(!again.phases(node).contains(&"fetch".to_string()));
        let sent = again.of(node, "transfer_done");
        assert!(sent.iter().all(|e| e["files"] == 0), "{sent:?}");
    }
}
