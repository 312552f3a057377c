//! End to end, the fan-out through the cluster's own registry (SPEC §5.3): three systemd
//! hosts, the master the only registry host. The controller sends the rootfs to the master
//! only; the master pushes what the nodes lack into its `sealer-registry` (TLS, the cluster
//! CA) and the nodes fetch it from there, every file verified against the plan. A second
//! apply moves nothing; `clean --keep-rootfs` takes back the blobs the push added and
//! leaves the registry's own data; clean puts every host back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;

/// sha256 of every regular file of host `i`'s rootfs copy, but the registry's storage, the
/// registry's certificates and what the host rendered with its own values.
fn rootfs_files(cluster: &testenv::hosts::Cluster, i: usize, rootfs: &str) -> String {
    sh(
        cluster,
        i,
        &format!(
            "cd {rootfs} && find . \\( -path ./registry -o -path ./certs \\) -prune -o -type f -print | sort | \
             while read -r f; do [ -e \"$f.tmpl\" ] || sha256sum \"$f\"; done"
        ),
    )
}

#[test]
fn nodes_fetch_their_files_from_the_registry_and_clean_takes_the_pushed_blobs_back() {
    let fixture = fixture_rootfs();
    let (cluster, ips) = up(3, &fixture.dir);
    let before: Vec<_> = (0..3).map(|i| cluster.snapshot(i).unwrap()).collect();
    let rootfs = format!("/var/lib/sealer/data/{}/rootfs", cluster.name());
    let (master, nodes) = (&ips[0], &ips[1..]);

    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let published: Vec<_> = run
        .of_type("published")
        .into_iter()
        .filter(|e| e["host"] == master.as_str())
        .collect();
    assert_eq!(published.len(), 1, "{}", run.describe());
    assert!(published[0]["pushed"].as_u64().unwrap() > 0);
    assert_eq!(published[0]["failed"], 0, "{}", run.describe());
    assert!(run.files_sent(master) > 0);
    for node in nodes {
        assert_eq!(run.status(node)["status"], "ok", "{node}");
        let fetched: Vec<_> = run
            .of_type("fetched")
            .into_iter()
            .filter(|e| e["host"] == node.as_str())
            .collect();
        assert_eq!(fetched.len(), 1, "{node}: {}", run.describe());
        assert!(fetched[0]["files"].as_u64().unwrap() > 0);
        assert_eq!(fetched[0]["left"], 0);
        assert_eq!(fetched[0]["from"], serde_json::json!([master]));
        assert_eq!(
            (run.files_sent(node), run.bytes_sent(node)),
            (0, 0),
            "{node}: the controller sends the nodes nothing"
        );
    }
    assert!(
        run.of_type("warning").is_empty(),
        "{:?}",
        run.of_type("warning")
    );
    let on_master = rootfs_files(&cluster, 0, &rootfs);
    assert!(on_master.contains("./bin/"), "{on_master}");
    for i in 1..3 {
        assert_eq!(
            rootfs_files(&cluster, i, &rootfs),
            on_master,
            "node{}",
            i + 1
        );
        sh(&cluster, i, &format!("test ! -e {rootfs}/registry"));
    }

    // The push went through the registry's API into its storage: a blob per file.
    let storage = format!("{rootfs}/registry/docker/registry/v2");
    let tool = on_master
        .lines()
        .find(|l| l.contains("./bin/"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let blob = format!("{storage}/blobs/sha256/{}/{tool}/data", &tool[..2]);
    sh(&cluster, 0, &format!("test -f {blob}"));
    let own_data = sh(
        &cluster,
        0,
        &format!("ls {storage}/repositories | grep -v '^sealer-installer$'"),
    );
    assert!(
        !own_data.trim().is_empty(),
        "the rootfs's own registry data"
    );

    // Nothing changed: nothing pushed, fetched, sent or run.
    let again = installer(&cluster, &["apply"]);
    assert_eq!(again.code, 0, "{}", again.describe());
    assert!(
        again.of_type("published").is_empty(),
        "{}",
        again.describe()
    );
    assert!(again.of_type("fetched").is_empty(), "{}", again.describe());
    for ip in &ips {
        assert_eq!(again.started(ip), Vec::<String>::new(), "{ip}");
        assert_eq!(again.files_sent(ip), 0, "{ip}");
    }

    // With the rootfs kept, what the push added goes and the registry's own data stays.
    let kept = installer(&cluster, &["clean", "--keep-rootfs"]);
    assert_eq!(kept.code, 0, "{}", kept.describe());
    sh(&cluster, 0, &format!("test ! -e {blob}"));
    sh(
        &cluster,
        0,
        &format!("test ! -e {storage}/repositories/sealer-installer"),
    );
    let still = sh(
        &cluster,
        0,
        &format!("ls {storage}/repositories | grep -v '^sealer-installer$'"),
    );
    assert_eq!(still, own_data);

    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    for (i, snap) in before.iter().enumerate() {
        assert_as_before(&cluster, i, snap);
    }
}
