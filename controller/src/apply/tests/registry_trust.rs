//! The registry's TLS material and credentials as apply hands them out: the CA to every
//! host, the certificate and key to the registry host only, the htpasswd to the registry
//! host and the credentials to every host — and clean takes all of it away again.

use super::{Cluster, snapshot};
use crate::registry_tls::{TlsStore, ensure, names_for};
use installer_proto::plan::RegistryAuth;
use installer_proto::secret::Secret;
use std::os::unix::fs::PermissionsExt;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_and_credentials_reach_each_host_by_its_role_and_clean_takes_them_away() {
    let state = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(2);
    let cf = &cluster.inputs.clusterfile;
    let tls = ensure(
        &TlsStore::new(state.path(), &cf.name),
        &names_for(cf),
        false,
    )
    .unwrap();
    let (ca, key) = (tls.ca_pem.clone(), tls.key_pem.expose().to_string());
    let cluster = cluster.with_inputs(|inputs| {
        inputs.registry_tls = Some(tls);
        inputs.clusterfile.registry.auth = Some(RegistryAuth {
            username: "admin".into(),
            password: Secret::new("pw-of-the-registry"),
        });
    });
    let before: Vec<_> = (0..2).map(|i| snapshot(cluster.root(i))).collect();
    let applied = cluster.apply(false).await;
    assert_eq!(applied.code, 0, "{}", applied.describe());

    let rootfs = "var/lib/sealer/data/c1/rootfs";
    for i in 0..2 {
        let root = cluster.root(i);
        for trust in [
            "etc/docker/certs.d/sea.hub:5000/ca.crt",
            "etc/containerd/certs.d/sea.hub:5000/ca.crt",
        ] {
            assert_eq!(
                std::fs::read_to_string(root.join(trust)).unwrap(),
                ca,
                "{trust}"
            );
        }
        let hosts_toml =
            std::fs::read_to_string(root.join("etc/containerd/certs.d/sea.hub:5000/hosts.toml"))
                .unwrap();
        assert!(hosts_toml.contains("server = \"https://sea.hub:5000\""));
        for creds in ["root/.docker/config.json", "var/lib/kubelet/config.json"] {
            let text = std::fs::read_to_string(root.join(creds)).unwrap();
            // admin:pw-of-the-registry
            assert!(
                text.contains("YWRtaW46cHctb2YtdGhlLXJlZ2lzdHJ5"),
                "{creds}: {text}"
            );
            assert_eq!(mode(&root.join(creds)), 0o600, "{creds}");
        }
        let step = applied.steps(&cluster.ip(i), "step_done");
        assert!(step.iter().any(|s| s == "registry-trust"), "{step:?}");
    }
    let master = cluster.root(0).join(rootfs);
    assert_eq!(
        std::fs::read_to_string(master.join("certs/sea.hub.key")).unwrap(),
        key
    );
    assert_eq!(mode(&master.join("certs/sea.hub.key")), 0o600);
    let htpasswd = std::fs::read_to_string(master.join("etc/registry_htpasswd")).unwrap();
    assert!(htpasswd.starts_with("admin:$2y$10$"), "{htpasswd}");
    let node = cluster.root(1).join(rootfs);
    assert!(
        !node.join("certs").exists(),
        "the key is on the registry host only"
    );
    assert!(!node.join("etc/registry_htpasswd").exists());

    // Nothing changed: the step is skipped, and the files stay as they are.
    let again = cluster.apply(false).await;
    assert_eq!(again.code, 0, "{}", again.describe());
    for i in 0..2 {
        let done = again.steps(&cluster.ip(i), "step_done");
        assert!(!done.iter().any(|s| s == "registry-trust"), "{done:?}");
    }

    let cleaned = cluster.clean().await;
    assert_eq!(cleaned.code, 0, "{}", cleaned.describe());
    for (i, before) in before.iter().enumerate() {
        assert_eq!(&snapshot(cluster.root(i)), before, "host {}", cluster.ip(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_material_replaces_the_trust_everywhere_and_restarts_the_registry() {
    let state = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(2);
    let cf = &cluster.inputs.clusterfile;
    let store = TlsStore::new(state.path(), &cf.name);
    let first = ensure(&store, &names_for(cf), false).unwrap();
    let cluster = cluster.with_inputs(|inputs| inputs.registry_tls = Some(first));
    let applied = cluster.apply(false).await;
    assert_eq!(applied.code, 0, "{}", applied.describe());

    // What `--rotate-registry-certs` does: a new CA and certificate from the store.
    let cf = &cluster.inputs.clusterfile;
    let rotated = ensure(&store, &names_for(cf), true).unwrap();
    let new_ca = rotated.ca_pem.clone();
    let cluster = cluster.with_inputs(|inputs| inputs.registry_tls = Some(rotated));
    let again = cluster.apply(false).await;
    assert_eq!(again.code, 0, "{}", again.describe());
    for i in 0..2 {
        let ca = std::fs::read_to_string(
            cluster
                .root(i)
                .join("etc/docker/certs.d/sea.hub:5000/ca.crt"),
        )
        .unwrap();
        assert_eq!(ca, new_ca, "host {}", cluster.ip(i));
        let done = again.steps(&cluster.ip(i), "step_done");
        assert!(done.iter().any(|s| s == "registry-trust"), "{done:?}");
    }
    let master = again.steps(&cluster.ip(0), "step_done");
    assert!(
        master.iter().any(|s| s == "init-registry"),
        "a new certificate restarts the registry: {master:?}"
    );
    let node = again.steps(&cluster.ip(1), "step_done");
    assert!(
        !node.iter().any(|s| s == "init-kube"),
        "nothing else re-runs: {node:?}"
    );
}
