//! sealer's other forms of what this version acts on: kubeadm documents, v0.8 plugins.

use super::{parse_err, parse_ok};
use crate::clusterfile::PluginSpec;
use installer_proto::plan::HookPhase;

/// A Clusterfile as sealer v0.9's docs shape one that tunes kubeadm: the Cluster, then a
/// ClusterConfiguration and a KubeletConfiguration.
const WITH_KUBEADM: &str = "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: tuned
spec:
  image: kubernetes:v1.25.6
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
    - ips: [10.0.0.3]
      roles: [node]
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.25.6
networking:
  podSubnet: 100.64.0.0/10
  serviceSubnet: 10.96.0.0/22
apiServer:
  certSANs: [apiserver.cluster.local, 10.0.0.2]
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 200
";

#[test]
fn kubeadm_documents_are_kept_for_the_merge_with_a_warning_each() {
    let cf = parse_ok(WITH_KUBEADM);
    assert_eq!(cf.kubeadm.len(), 2);
    let first: yaml_serde::Value = yaml_serde::from_str(&cf.kubeadm[0]).unwrap();
    assert_eq!(first["kind"].as_str(), Some("ClusterConfiguration"));
    assert_eq!(
        first["networking"]["podSubnet"].as_str(),
        Some("100.64.0.0/10")
    );
    let second: yaml_serde::Value = yaml_serde::from_str(&cf.kubeadm[1]).unwrap();
    assert_eq!(second["maxPods"].as_u64(), Some(200));
    let shown: Vec<String> = cf.warnings.iter().map(ToString::to_string).collect();
    let why = "merged into each host's etc/kubeadm.yml (this document's fields over the rootfs's), where a bootstrap that follows finds it; installer itself does not run kubeadm";
    assert_eq!(
        shown,
        [
            format!("/srv/site/Clusterfile:14:7: kind: ClusterConfiguration: {why}"),
            format!("/srv/site/Clusterfile:23:7: kind: KubeletConfiguration: {why}"),
        ]
    );
}

#[test]
fn a_kubeadm_document_of_another_group_is_refused_at_its_api_version() {
    let text = WITH_KUBEADM.replace(
        "apiVersion: kubelet.config.k8s.io/v1beta1",
        "apiVersion: kubeadm.k8s.io/v1beta3",
    );
    assert_eq!(
        parse_err(&text).replace("Clusterfile:", ""),
        r#"22:13: apiVersion: "kubeadm.k8s.io/v1beta3" is not an apiVersion of KubeletConfiguration; expected apiVersion: kubelet.config.k8s.io/<version>, such as kubelet.config.k8s.io/v1beta3"#
    );
}

fn v08_plugin(on: &str, action: &str) -> String {
    format!(
        "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: old
spec:
  image: r
  hosts:
    - ips: [10.0.0.2, 10.0.0.3]
      roles: [master]
    - ips: [10.0.0.4, 10.0.0.5]
      roles: [node]
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: tune
spec:
  type: SHELL
  action: {action}
  on: {on}
  data: sysctl -w vm.max_map_count=262144
"
    )
}

#[test]
fn a_v08_on_selects_hosts_by_role_label_ip_and_range_with_a_warning() {
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("master", &["master"], &[]),
        ("node-role.kubernetes.io/master=", &["master"], &[]),
        ("10.0.0.4,10.0.0.5", &[], &["10.0.0.4", "10.0.0.5"]),
        ("10.0.0.3-10.0.0.4", &[], &["10.0.0.3", "10.0.0.4"]),
    ];
    for (on, roles, ips) in cases {
        let cf = parse_ok(&v08_plugin(&format!("\"{on}\""), "PostInstall"));
        let p: &PluginSpec = &cf.plugins[0];
        assert_eq!(p.scope, roles, "{on}");
        assert_eq!(p.ips, ips, "{on}");
        assert_eq!(p.phases, [HookPhase::PostInitHost]);
        let runs: Vec<&str> = cf
            .hosts
            .iter()
            .filter(|h| p.applies_to(h))
            .map(|h| h.ip.as_str())
            .collect();
        let want: Vec<&str> = if roles.is_empty() {
            ips.to_vec()
        } else {
            vec!["10.0.0.2", "10.0.0.3"]
        };
        assert_eq!(runs, want, "{on}");
        let warning = cf.warnings.last().unwrap().to_string();
        assert!(
            warning.starts_with("/srv/site/Clusterfile:20:3: spec.on: sealer v0.8's name for scope; read as the hosts with "),
            "{warning}"
        );
    }
}

#[test]
fn a_v08_on_naming_no_host_is_refused() {
    for (on, what) in [
        ("10.0.0.9", "10.0.0.9 is not the IP of any host"),
        (
            "10.0.1.1-10.0.1.9",
            "range 10.0.1.1-10.0.1.9 holds no host's IP",
        ),
        (
            "10.0.0.5-10.0.0.2",
            "range 10.0.0.5-10.0.0.2 ends before it starts",
        ),
        ("gpu", "scope role \"gpu\" is not a role of any host"),
    ] {
        assert_eq!(
            parse_err(&v08_plugin(on, "PreInit")),
            format!(
                "Clusterfile:20:7: spec.on: {what}; expected roles joined by |, among: master, node"
            ),
            "{on}"
        );
    }
}

#[test]
fn every_v08_phase_maps_to_its_v09_phase_or_names_the_one_to_use() {
    for (v08, v09) in [
        ("PreInit", HookPhase::PreInitHost),
        ("PostInstall", HookPhase::PostInitHost),
        ("PreClean", HookPhase::PreCleanHost),
        ("PostClean", HookPhase::PostCleanHost),
    ] {
        let cf = parse_ok(&v08_plugin("master", v08));
        assert_eq!(cf.plugins[0].phases, [v09], "{v08}");
    }
    for (v08, use_) in [
        ("Originally", "use pre-init-host"),
        ("PostInit", "use post-init-host"),
        ("PreInstall", "use post-init-host"),
        ("PreGuest", "use post-init-host"),
        ("ClusterCheck", "has none to check"),
    ] {
        let got = parse_err(&v08_plugin("master", v08));
        assert!(
            got.starts_with(&format!(
                "Clusterfile:19:11: spec.action: phase {v08:?} is sealer v0.8's, and "
            )) && got.contains(use_),
            "{got}"
        );
    }
}

#[test]
fn an_env_key_that_is_no_shell_name_is_kept_for_templates_with_a_warning() {
    let text = "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: keys
spec:
  image: r
  env:
    - etcd-dir=/data/etcd
    - PodCIDR=100.64.0.0/10
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
";
    let cf = parse_ok(text);
    assert_eq!(cf.env["etcd-dir"], "/data/etcd");
    assert_eq!(cf.env["PodCIDR"], "100.64.0.0/10");
    let shown: Vec<String> = cf.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"/srv/site/Clusterfile:8:7: spec.env[0]: env key "etcd-dir" is not a shell name: templates read it as {{ index . "etcd-dir" }}, scripts do not get it"#
        ]
    );
}

#[test]
fn the_registry_certificate_names_are_read_and_checked() {
    let text = |ips: &str| {
        format!(
            "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: tls
spec:
  image: r
  hosts:
    - ips: [10.0.0.2]
      roles: [master]
  registry:
    localRegistry:
      domain: sea.hub
      cert:
        subjectAltName:
          ips: [{ips}]
          dnsNames: [registry.example.com]
"
        )
    };
    let cf = parse_ok(&text("192.168.10.5"));
    assert!(!cf.registry.insecure, "TLS unless insecure: true");
    assert_eq!(
        cf.registry.cert_ips,
        ["192.168.10.5".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(cf.registry.cert_dns, ["registry.example.com"]);
    assert_eq!(
        parse_err(&text("10.0.0.300")),
        r#"Clusterfile:15:17: spec.registry.localRegistry.cert.subjectAltName.ips[0]: "10.0.0.300" is not an IP address; expected an IPv4 or IPv6 address the registry certificate should name"#
    );
}

#[test]
fn a_kubeadm_kind_given_twice_is_refused_at_the_second() {
    let text = format!(
        "{WITH_KUBEADM}---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.25.7\n"
    );
    assert_eq!(
        parse_err(&text),
        "Clusterfile:27:7: kind: a second ClusterConfiguration (the first is at line 14); expected each kubeadm kind once, as kubeadm takes one document of each; keep one"
    );
}
