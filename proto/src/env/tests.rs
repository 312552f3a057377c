//! Environment tests: keys, entries, built-ins and their derived values, merge order.

use super::*;

#[test]
fn keys_are_shell_identifiers() {
    for ok in ["A", "_x", "PodCIDR", "a_1"] {
        assert!(is_valid_key(ok), "{ok}");
    }
    for bad in ["", "1A", "docker-dir", "A B", "É"] {
        assert!(!is_valid_key(bad), "{bad}");
    }
    assert_eq!(
        parse_entry("docker-dir=/x").unwrap_err().to_string(),
        "env key \"docker-dir\" is invalid: keys must match [A-Za-z_][A-Za-z0-9_]* so scripts can read them"
    );
    assert_eq!(
        parse_entry("A=b=c").unwrap(),
        ("A".to_string(), "b=c".to_string())
    );
    assert!(matches!(
        parse_entry("novalue"),
        Err(EnvError::NotKeyValue { .. })
    ));
    let env = parse_entries(&["A=1", "A=2", "B="]).unwrap();
    assert_eq!(env["A"], "2");
    assert_eq!(env["B"], "");
}

#[test]
fn nul_bytes_are_refused_in_keys_and_values() {
    assert_eq!(
        parse_entry("A=x\0y").unwrap_err(),
        EnvError::NulInValue { key: "A".into() }
    );
    assert_eq!(
        parse_entries(&["B=1", "A=\0"]).unwrap_err().to_string(),
        "the value of env key \"A\" holds a NUL byte, which no process environment can carry; remove it"
    );
    assert!(matches!(
        parse_entry("A\0B=1"),
        Err(EnvError::BadKey { .. })
    ));
    assert!(check_value("A", "no nul, but \u{1} and \n are fine").is_ok());
}

#[test]
fn kubeadm_api_version_boundaries() {
    for (v, want) in [
        ("v1.14.10", "kubeadm.k8s.io/v1beta1"),
        ("1.15.0", "kubeadm.k8s.io/v1beta2"),
        ("v1.22.17", "kubeadm.k8s.io/v1beta2"),
        ("v1.23.0", "kubeadm.k8s.io/v1beta3"),
        ("v1.30.1", "kubeadm.k8s.io/v1beta3"),
        ("v1.23.0-rc.1", "kubeadm.k8s.io/v1beta3"),
        ("v1.13", "kubeadm.k8s.io/v1beta1"),
    ] {
        assert_eq!(kubeadm_api_version(v), Some(want), "{v}");
    }
    assert_eq!(kubeadm_api_version("latest"), None);
}

#[test]
fn cri_sockets() {
    assert_eq!(cri_socket("docker"), Some("/var/run/dockershim.sock"));
    assert_eq!(
        cri_socket("containerd"),
        Some("/run/containerd/containerd.sock")
    );
    assert_eq!(cri_socket("crio"), None);
}

#[test]
fn pause_image_is_rehomed() {
    let list = "# images\nregistry.k8s.io/kube-apiserver:v1.23.0\n\n\"registry.k8s.io/pause:3.6\"\nk8s.gcr.io/pause:3.2\n";
    assert_eq!(
        pause_image(list, "sea.hub:5000").as_deref(),
        Some("sea.hub:5000/pause:3.6")
    );
    assert_eq!(
        pause_image("pause@sha256:abc", "r:1").as_deref(),
        Some("r:1/pause@sha256:abc")
    );
    assert_eq!(pause_image("registry.k8s.io/pauser:1", "r:1"), None);
}

#[test]
fn service_ips_from_cidr() {
    assert_eq!(
        service_ips("10.96.0.0/22").unwrap(),
        ("10.96.0.1".to_string(), "10.96.0.10".to_string())
    );
    assert_eq!(
        service_ips("10.96.3.7/22,fd00::/108").unwrap(),
        ("10.96.0.1".to_string(), "10.96.0.10".to_string())
    );
    assert_eq!(
        service_ips("fd00:10::/108").unwrap(),
        ("fd00:10::1".to_string(), "fd00:10::a".to_string())
    );
    assert!(service_ips("10.96.0.0").is_err());
    assert!(service_ips("10.96.0.0/31").is_err());
    assert!(service_ips("nonsense/8").is_err());
}

#[test]
fn host_env_layers_and_derives() {
    let input = BuiltinInputs {
        host_ip: "10.0.0.2".into(),
        host_name: "node1".into(),
        master0_ip: "10.0.0.1".into(),
        cluster_name: "c".into(),
        arch: "amd64".into(),
        rootfs_dir: "/var/lib/sealer/data/c/rootfs".into(),
        registry_domain: "sea.hub".into(),
        registry_port: 5000,
        container_runtime: "containerd".into(),
        kube_version: Some("v1.20.2".into()),
        image_list: Some("registry.k8s.io/pause:3.2\n".into()),
    };
    let cluster = parse_entries(&["SvcCIDR=10.96.0.0/16", "PodCIDR=100.64.0.0/10"]).unwrap();
    let host = parse_entries(&["PodCIDR=100.65.0.0/16", "RegistryURL=mirror:5000"]).unwrap();
    let env = host_env(&input, &cluster, &host).unwrap();
    assert_eq!(env["HostIP"], "10.0.0.2");
    assert_eq!(env["KubeadmAPIVersion"], "kubeadm.k8s.io/v1beta2");
    assert_eq!(env["CriSocket"], "/run/containerd/containerd.sock");
    assert_eq!(
        env["PauseImage"], "mirror:5000/pause:3.2",
        "re-homed to the user's RegistryURL"
    );
    assert_eq!(env["KubeSvcIP"], "10.96.0.1");
    assert_eq!(env["DNSSvcIP"], "10.96.0.10");
    assert_eq!(env["PodCIDR"], "100.65.0.0/16", "host env wins");
    assert_eq!(
        env["RegistryURL"], "mirror:5000",
        "user env overrides built-ins"
    );
    let plain = host_env(&input, &cluster, &Env::new()).unwrap();
    assert_eq!(plain["PauseImage"], "sea.hub:5000/pause:3.2");
    let own = parse_entries(&["RegistryURL=mirror:5000", "PauseImage=mine/pause:1"]).unwrap();
    assert_eq!(
        host_env(&input, &Env::new(), &own).unwrap()["PauseImage"],
        "mine/pause:1",
        "a user PauseImage wins over the re-homed one"
    );
    let without = BuiltinInputs {
        kube_version: None,
        image_list: None,
        ..input
    };
    let env = host_env(&without, &Env::new(), &Env::new()).unwrap();
    assert!(!env.contains_key("KubeadmAPIVersion"));
    assert!(!env.contains_key("PauseImage"));
    assert!(!env.contains_key("KubeSvcIP"));
}

#[test]
fn metadata_parses_loosely() {
    let m = Metadata::parse(r#"{"version":"v1.19.8","arch":"amd64","variant":"v8"}"#).unwrap();
    assert_eq!(m.version.as_deref(), Some("v1.19.8"));
    assert!(Metadata::parse("not json").is_err());
}

#[test]
fn keys_that_are_no_shell_names_reach_templates_but_not_scripts() {
    for ok in ["etcd-dir", "a.b", "PodCIDR", "x/y"] {
        assert!(is_template_key(ok), "{ok}");
    }
    for bad in ["", "a b", "a=b", "a\0b", "a\nb", "a\tb"] {
        assert!(!is_template_key(bad), "{bad:?}");
    }
    let env = parse_entries(&["PodCIDR=1", "SvcCIDR=2"]).unwrap();
    let mut with_dash = env.clone();
    with_dash.insert("etcd-dir".into(), "/data".into());
    assert_eq!(for_scripts(&with_dash), env);
}
