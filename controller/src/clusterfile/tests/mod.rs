use super::*;
use installer_proto::plan::HookPhase;

/// The environment the tests parse with: no process environment involved.
fn env(key: &str) -> Option<String> {
    match key {
        "HOME" => Some("/home/op".into()),
        "SSH_PASS" => Some("s3cret".into()),
        "KEY_PASS" => Some("phrase".into()),
        _ => None,
    }
}

fn parse_ok(text: &str) -> Clusterfile {
    match parse_with_env("/srv/site/Clusterfile", text, &env) {
        Ok(cf) => cf,
        Err(e) => panic!("{e}"),
    }
}

fn parse_err(text: &str) -> String {
    match parse_with_env("Clusterfile", text, &env) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A complete sealer v2 Clusterfile in the documented form, with the per-host overrides,
/// a plugin and both Config strategies.
const FULL: &str = include_str!("../../../tests/data/clusterfile-full.yaml");

#[test]
fn full_sealer_clusterfile() {
    let cf = parse_ok(FULL);
    assert_eq!(cf.name, "my-cluster");
    assert_eq!(cf.image, "rootfs");
    assert_eq!(cf.dir(), Path::new("/srv/site"));
    assert_eq!(cf.data_root, "/data/sealer");
    assert_eq!(cf.container_runtime, "containerd");
    assert_eq!(cf.env["SvcCIDR"], "10.96.0.0/22");
    assert_eq!(cf.env["Quoted"], "\"a b\" $(x)");
    assert_eq!(
        cf.registry,
        RegistrySpec {
            domain: "hub.local".into(),
            port: 5001,
            ha: false,
            insecure: true,
            cert_ips: Vec::new(),
            cert_dns: Vec::new(),
            auth: None,
        }
    );
    assert_eq!(
        cf.host_aliases,
        vec![(
            "192.168.0.100".to_string(),
            vec!["harbor.example.com".to_string(), "harbor".to_string()]
        )]
    );
    let ips: Vec<_> = cf.hosts.iter().map(|h| h.ip.as_str()).collect();
    assert_eq!(
        ips,
        ["192.168.0.2", "192.168.0.3", "192.168.0.4", "192.168.0.5"]
    );
    assert_eq!(cf.master0().ip, "192.168.0.2");
    let reg: Vec<_> = cf.registry_hosts().iter().map(|h| h.ip.clone()).collect();
    assert_eq!(reg, ["192.168.0.2"], "ha: false → master0 only");

    let m = &cf.hosts[1];
    assert_eq!(m.roles, ["master"]);
    assert_eq!(m.env["StorageDevice"], "/dev/vde");
    assert_eq!(m.ssh.user, "root");
    assert_eq!(m.ssh.port, 2222, "number port, host override");
    assert_eq!(m.ssh.passwd.as_ref().map(Secret::expose), Some("Other123"));
    assert_eq!(m.ssh.pk.as_deref(), Some(Path::new("/home/op/.ssh/id_rsa")));
    assert_eq!(m.ssh.pk_passwd.as_ref().map(Secret::expose), Some("phrase"));

    let n = &cf.hosts[3];
    assert_eq!(n.roles, ["node", "gpu"]);
    assert_eq!(n.ssh.user, "ops");
    assert_eq!(n.ssh.port, 22, "string port from spec.ssh");
    assert_eq!(n.ssh.passwd.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(
        n.ssh.pk.as_deref(),
        Some(Path::new("/srv/site/keys/node_ed25519"))
    );
    assert!(n.env.is_empty());
    // Secrets never reach Debug output.
    let debug = format!("{cf:?}");
    assert!(!debug.contains("s3cret") && !debug.contains("Other123") && !debug.contains("phrase"));

    assert_eq!(
        cf.plugins,
        vec![PluginSpec {
            name: "pre_init_disk".into(),
            phases: vec![HookPhase::PreInitHost, HookPhase::PostCleanHost],
            scope: vec!["master".into(), "gpu".into()],
            ips: Vec::new(),
            data: "set -x\nif [ -b \"${StorageDevice}\" ] && [[ ! -e /data ]]; then { mkfs.ext4 \"$StorageDevice\"; }; fi\nawk '{print $1}' /proc/mounts | grep -q '^/data$' || echo \"[warn] not mounted\"\n".into(),
        }]
    );
    assert!(cf.plugins[0].applies_to(n));
    let mut plain_node = n.clone();
    plain_node.roles = vec!["node".to_string()];
    assert!(!cf.plugins[0].applies_to(&plain_node));
    assert_eq!(cf.configs.len(), 2);
    assert_eq!(cf.configs[0].strategy, ConfigStrategy::Overwrite);
    assert_eq!(cf.configs[1].strategy, ConfigStrategy::Merge);
    assert_eq!(cf.configs[1].path, "etc/kubeadm.yml");
}

#[test]
fn minimal_clusterfile_gets_the_defaults() {
    let cf = parse_ok(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  image: /srv/rootfs.tar.zst\n  hosts:\n  - ips: [10.0.0.1, 10.0.0.2]\n    roles: [master]\n  - ips: [10.0.0.3]\n    roles: [node]\n",
    );
    assert_eq!(cf.data_root, "/var/lib/sealer/data");
    assert_eq!(cf.container_runtime, "docker");
    assert_eq!(
        cf.registry,
        RegistrySpec {
            domain: "sea.hub".into(),
            port: 5000,
            ha: true,
            insecure: false,
            cert_ips: Vec::new(),
            cert_dns: Vec::new(),
            auth: None,
        }
    );
    let reg: Vec<_> = cf.registry_hosts().iter().map(|h| h.ip.clone()).collect();
    assert_eq!(reg, ["10.0.0.1", "10.0.0.2"], "ha → every master");
    let h = &cf.hosts[2];
    assert_eq!((h.ssh.user.as_str(), h.ssh.port), ("root", 22));
    assert!(h.ssh.passwd.is_none() && h.ssh.pk.is_none() && h.ssh.pk_passwd.is_none());
    assert!(cf.plugins.is_empty() && cf.configs.is_empty());
}

#[test]
fn unquoted_numeric_password_is_kept_as_written() {
    // sealer issue #1602: `passwd: 000000` failed because YAML read it as a number.
    let cf = parse_ok(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: r\n  ssh: {passwd: 000000}\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n",
    );
    assert_eq!(
        cf.hosts[0].ssh.passwd.as_ref().map(Secret::expose),
        Some("000000")
    );
}

const HEAD: &str =
    "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: rootfs\n";

/// `HEAD` + `hosts`-less spec lines + the given lines: builds a Cluster document.
fn cluster(spec_lines: &str) -> String {
    format!("{HEAD}{spec_lines}")
}

const HOSTS: &str = "  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n";

fn with_hosts(spec_lines: &str) -> String {
    format!("{HEAD}{HOSTS}{spec_lines}")
}

fn plugin_doc(spec_lines: &str) -> String {
    format!(
        "{HEAD}{HOSTS}---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: p\nspec:\n{spec_lines}"
    )
}

fn config_doc(spec_lines: &str) -> String {
    format!(
        "{HEAD}{HOSTS}---\napiVersion: sealer.io/v1\nkind: Config\nmetadata:\n  name: c\nspec:\n{spec_lines}"
    )
}

fn bad_cases() -> Vec<(String, &'static str)> {
    vec![
        // The misspelt key is reported, and so is the key it was meant to be.
        (cluster("  hostz: []\n"), "Clusterfile:6:3: spec: missing field `hosts`; add it to this mapping\nClusterfile:7:3: spec: unknown field `hostz`; expected one of `image`, `env`, `ssh`, `hosts`, `containerRuntime`, `registry`, `hostAliases`, `dataRoot`, `cmd`, `cmd_args`, `appNames`\n2 problems in all; fix them and run again"),
        (with_hosts("  ssh:\n    passwrd: x\n"), "Clusterfile:11:5: spec.ssh: unknown field `passwrd`; expected one of `user`, `passwd`, `pk`, `pkPasswd`, `port`, `encrypted`"),
        (with_hosts("  ssh:\n    port: 70000\n"), r#"Clusterfile:11:11: spec.ssh.port: port 70000 is out of range; expected a number from 1 to 65535, written as 22 or "22""#),
        (with_hosts("  ssh:\n    port: \"ssh\"\n"), r#"Clusterfile:11:11: spec.ssh.port: port "ssh" is not a number; expected a number from 1 to 65535, written as 22 or "22""#),
        (with_hosts("  ssh: {port: 0}\n"), r#"Clusterfile:10:15: spec.ssh.port: port 0 is out of range; expected a number from 1 to 65535, written as 22 or "22""#),
        (cluster("  env: [A=1]\n"), "Clusterfile:6:3: spec: missing field `hosts`; add it to this mapping"),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: [node]\n"), "Clusterfile:7:3: spec.hosts: no host has the role master; expected at least one host with roles: [master] (the first one is master0)"),
        (with_hosts("  env:\n    - A=1\n    - docker dir=/x\n"), r#"Clusterfile:12:7: spec.env[1]: env key "docker dir" is invalid; expected a key without blanks or control characters; a shell name ([A-Za-z_][A-Za-z0-9_]*) reaches scripts too"#),
        (with_hosts("  env: [JUSTAKEY]\n"), r#"Clusterfile:10:9: spec.env[0]: "JUSTAKEY" is not KEY=VALUE; expected KEY=VALUE (the value may be empty)"#),
        (with_hosts("  env: [SvcCIDR=10.96.0.0]\n"), r#"Clusterfile:10:9: spec.env[0]: SvcCIDR "10.96.0.0" is not a usable CIDR; expected a CIDR such as 10.96.0.0/12 (KubeSvcIP and DNSSvcIP derive from it)"#),
        (cluster("  hosts:\n    - ips: [10.0.0.1, 10.0.0.2]\n      roles: [master]\n    - ips:\n        - 10.0.0.3\n        - 10.0.0.2\n      roles: [node]\n"), "Clusterfile:12:11: spec.hosts[1].ips[1]: IP 10.0.0.2 is listed twice (also at spec.hosts[0].ips[1]); expected each host once"),
        (cluster("  hosts:\n    - ips: [10.0.0.300]\n      roles: [master]\n"), r#"Clusterfile:8:13: spec.hosts[0].ips[0]: "10.0.0.300" is not an IP address; expected an IPv4 or IPv6 address such as 192.168.0.2"#),
        (cluster("  hosts:\n    - ips: []\n      roles: [master]\n"), "Clusterfile:8:12: spec.hosts[0].ips: no IPs; expected at least one IP address"),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: [master, \"node|gpu\"]\n"), r#"Clusterfile:9:23: spec.hosts[0].roles[1]: role "node|gpu" is invalid; expected master, node or a custom name of letters, digits, '-', '_' and '.'"#),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: []\n"), "Clusterfile:9:14: spec.hosts[0].roles: no roles; expected master, node or a custom role name"),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: master\n"), r#"Clusterfile:9:14: spec.hosts[0].roles: invalid type: string "master"; expected a sequence"#),
        ("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: My_Cluster\nspec:\n  image: r\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n".to_string(), r#"Clusterfile:4:9: metadata.name: cluster name "My_Cluster" is invalid; expected 1-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit (it becomes part of paths on every host)"#),
        (with_hosts("  dataRoot: var/lib/sealer\n"), r#"Clusterfile:10:13: spec.dataRoot: dataRoot "var/lib/sealer" is not a clean absolute path; expected an absolute path without '.', '..' or empty components, such as /var/lib/sealer/data"#),
        (with_hosts("  dataRoot: /var/lib\n"), r#"Clusterfile:10:13: spec.dataRoot: dataRoot "/var/lib" is refused: /var/lib is a system directory; expected a directory of installer's own, such as /var/lib/sealer/data (clean must never work among files installer did not create)"#),
        (with_hosts("  dataRoot: /\n"), r#"Clusterfile:10:13: spec.dataRoot: dataRoot "/" is refused: / is a system directory; expected a directory of installer's own, such as /var/lib/sealer/data (clean must never work among files installer did not create)"#),
        (with_hosts("  containerRuntime:\n    type: crio\n"), r#"Clusterfile:11:11: spec.containerRuntime.type: container runtime "crio" is not supported; expected docker or containerd"#),
        (with_hosts("  ssh:\n    user: ops\n    passwd: ${NOT_SET}\n"), "Clusterfile:12:13: spec.ssh.passwd: environment variable NOT_SET is not set; expected NOT_SET exported where installer runs (the Clusterfile reads the secret from ${NOT_SET})"),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n      ssh: {pkPasswd: \"${NOPE}\"}\n"), "Clusterfile:10:23: spec.hosts[0].ssh.pkPasswd: environment variable NOPE is not set; expected NOPE exported where installer runs (the Clusterfile reads the secret from ${NOPE})"),
        (with_hosts("  ssh: {encrypted: true}\n"), "Clusterfile:10:9: spec.ssh.encrypted: not supported (sealer's encrypted passwords use a key published in its source); write the password as ${ENV_NAME} and export ENV_NAME instead"),
        (with_hosts("  registry:\n    externalRegistry: {domain: r.example.com}\n"), "Clusterfile:11:5: spec.registry.externalRegistry: not supported (this version runs the local registry only); remove it"),
        (with_hosts("  registry:\n    localRegistry:\n      domain: \"sea hub\"\n"), r#"Clusterfile:12:15: spec.registry.localRegistry.domain: domain "sea hub" is not a host name; expected a name such as sea.hub (letters, digits, '-' and '.')"#),
        (with_hosts("  hostAliases:\n    - ip: harbor\n      hostnames: [h]\n"), r#"Clusterfile:11:11: spec.hostAliases[0].ip: "harbor" is not an IP address; expected an IPv4 or IPv6 address"#),
        (with_hosts("  hostAliases:\n    - ip: 10.0.0.9\n      hostnames: [\"a b\"]\n"), r#"Clusterfile:12:19: spec.hostAliases[0].hostnames[0]: "a b" is not a host name; expected letters, digits, '-' and '.' (it is written to /etc/hosts)"#),
        (format!("{}---\nkind: Foo\napiVersion: v1\n", with_hosts("")), r#"Clusterfile:11:7: kind: unknown kind "Foo"; expected Cluster, Plugin or Config"#),
        (format!("{}---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: ClusterConfiguration\nnetworking: {{}}\n", with_hosts("")), r#"Clusterfile:11:13: apiVersion: "kubelet.config.k8s.io/v1beta1" is not an apiVersion of ClusterConfiguration; expected apiVersion: kubeadm.k8s.io/<version>, such as kubeadm.k8s.io/v1beta3"#),
        (format!("{}---\n{}", with_hosts(""), with_hosts("")), "Clusterfile:12:7: kind: a second Cluster document (the first is at line 2); expected exactly one Cluster per Clusterfile"),
        ("apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\nspec: {type: SHELL, action: pre-init-host, scope: master, data: x}\n".to_string(), "Clusterfile:1:1: no kind: Cluster document; expected one document with apiVersion: sealer.io/v2 and kind: Cluster listing the hosts"),
        ("apiVersion: sealer.io/v1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: r\n".to_string(), r#"Clusterfile:1:13: apiVersion: "sealer.io/v1" is not supported for kind Cluster; expected one of sealer.io/v2, sealer.cloud/v2, cluster.sealer.cool/v2 (the v1 form with masters/nodes is not supported; list hosts under spec.hosts)"#),
        (format!("{}---\n- a\n- b\n", with_hosts("")), "Clusterfile:11:1: this document is a list; expected a mapping with apiVersion and kind"),
        (format!("{}---\napiVersion: sealer.io/v1\nmetadata: {{name: x}}\n", with_hosts("")), "Clusterfile:11:1: this document has no kind; expected Cluster, Plugin or Config"),
        (plugin_doc("  type: HOSTNAME\n  action: PreInit\n  scope: master\n  data: x\n"), r#"Clusterfile:16:9: spec.type: plugin type "HOSTNAME" is not supported; expected SHELL"#),
        (plugin_doc("  type: SHELL\n  action: pre-init-host|post-install\n  scope: master\n  data: x\n"), r#"Clusterfile:17:11: spec.action: phase "post-install" is one of sealer's cluster phases, which this version does not run; expected pre-init-host, post-init-host, pre-clean-host or post-clean-host, joined by |"#),
        (plugin_doc("  type: SHELL\n  action: pre-init-hots\n  scope: master\n  data: x\n"), r#"Clusterfile:17:11: spec.action: unknown phase "pre-init-hots"; expected pre-init-host, post-init-host, pre-clean-host or post-clean-host, joined by |"#),
        (plugin_doc("  type: SHELL\n  action: pre-init-host\n  scope: master|nodes\n  data: x\n"), r#"Clusterfile:18:10: spec.scope: scope role "nodes" is not a role of any host; expected roles joined by |, among: master"#),
        (plugin_doc("  type: SHELL\n  action: pre-init-host\n  data: x\n"), "Clusterfile:16:3: spec.scope: no scope (sealer runs such a plugin on no host); expected roles joined by |, among: master"),
        (plugin_doc("  type: SHELL\n  action: pre-init-host\n  scope: master\n  'on': master\n  data: x\n"), "Clusterfile:19:3: spec.on: both scope and on are given (on is sealer v0.8's name for scope); keep scope only"),
        (plugin_doc("  type: SHELL\n  action: pre-init-host\n  scope: master\n  data: \"\"\n"), "Clusterfile:19:9: spec.data: data is empty; expected the shell text to run"),
        (format!("{}---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: p}}\nspec: {{type: SHELL, action: pre-init-host, scope: master, data: x}}\n---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: p}}\nspec: {{type: SHELL, action: post-init-host, scope: master, data: y}}\n", with_hosts("")), r#"Clusterfile:18:18: metadata.name: plugin "p" is defined twice (first at line 13); expected unique plugin names"#),
        (format!("{}---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {{name: \"a b\"}}\nspec: {{type: SHELL, action: pre-init-host, scope: master, data: x}}\n", with_hosts("")), r#"Clusterfile:13:18: metadata.name: plugin name "a b" is invalid; expected letters, digits, '-', '_' and '.' (it names the step)"#),
        (config_doc("  path: ../etc/passwd\n  data: x\n"), r#"Clusterfile:16:9: spec.path: path "../etc/passwd" is not a clean relative path inside the rootfs; expected a relative path without '.', '..' or empty components, such as etc/daemon.json"#),
        (config_doc("  path: /etc/docker/daemon.json\n  data: x\n"), r#"Clusterfile:16:9: spec.path: path "/etc/docker/daemon.json" is not a clean relative path inside the rootfs; expected a relative path without '.', '..' or empty components, such as etc/daemon.json"#),
        (config_doc("  path: etc/a.yaml\n  strategy: patch\n  data: x\n"), r#"Clusterfile:17:13: spec.strategy: strategy "patch" is not supported; expected overwrite or merge"#),
        (config_doc("  path: etc/a.yaml\n  strategy: merge\n  data: |\n    a: [1\n"), "Clusterfile:18:9: spec.data: data is not valid YAML (did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence at line 1 column 4); expected YAML to merge into the file (strategy: merge)"),
        (config_doc("  path: etc/a.yaml\n  process: toJson\n  data: x\n"), "Clusterfile:17:3: spec.process: not supported (applications and value processing are not part of this version); remove it"),
        (format!("{HEAD}  hosts:\n    - ips: [10.0.0.1]\n     roles: [master]\n"), "Clusterfile:9:6: did not find expected '-' indicator, while parsing a block collection at line 8 column 5; fix the YAML syntax here (indentation, quoting, `key: value`)"),
        (format!("{HEAD}  image: again\n{HOSTS}"), r#"Clusterfile:7:3: spec: duplicate entry with key "image"; give each key once"#),
        (format!("{HEAD}  hosts:\n    - ips: [10.0.0.1]\n      # a comment\n      roles: [master]\n      ips: [10.0.0.2]\n"), r#"Clusterfile:11:7: spec.hosts[0]: duplicate entry with key "ips"; give each key once"#),
        (format!("{HEAD}{HOSTS}  env: {{A: 1, A: 2}}\n"), r#"Clusterfile:10:8: spec.env: duplicate entry with key "A"; give each key once"#),
        (with_hosts("  hostAliases: [10.0.0.9]\n"), r#"Clusterfile:10:17: spec.hostAliases[0]: invalid type: string "10.0.0.9"; expected a mapping with ip and hostnames"#),
        (String::new(), "Clusterfile:1:1: no kind: Cluster document; expected one document with apiVersion: sealer.io/v2 and kind: Cluster listing the hosts"),
        // A NUL cannot reach a script's environment: refused here, not at the first script.
        (with_hosts("  env: [\"A=x\\0y\"]\n"), r#"Clusterfile:10:9: spec.env[0]: the value of env key "A" holds a NUL byte; expected a value without NUL (no process environment can carry one, so every script would fail)"#),
        (cluster("  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n      env:\n        - B=ok\n        - \"C=\\0\"\n"), r#"Clusterfile:12:11: spec.hosts[0].env[1]: the value of env key "C" holds a NUL byte; expected a value without NUL (no process environment can carry one, so every script would fail)"#),
        (with_hosts("  env: [\"A\\0B=1\"]\n"), r#"Clusterfile:10:9: spec.env[0]: env key "A\0B" is invalid; expected a key without blanks or control characters; a shell name ([A-Za-z_][A-Za-z0-9_]*) reaches scripts too"#),
        // Bounds: deep flow nesting stops at its bracket before the parser runs.
        (with_hosts(&format!("  env: {}\n", "[".repeat(100_000))), "Clusterfile:10:72: nesting deeper than 64 levels; expected a Clusterfile nested a few levels deep (look for unclosed `[` or `{`)"),
        (with_hosts(&format!("  env: [{}]\n", "{a: ".repeat(70))), "Clusterfile:10:261: nesting deeper than 64 levels; expected a Clusterfile nested a few levels deep (look for unclosed `[` or `{`)"),
        // …and block nesting where the parser finds it.
        (with_hosts(&format!("  env:\n{}", (0..70).map(|i| format!("{}- \n", " ".repeat(4 + 2 * i))).collect::<String>())), &*DEEP_BLOCK),
        // An anchor repeated by aliases counts as often as it is used (the parser places the
        // error inside the anchor, at the node being repeated when the count ran out).
        (with_hosts(&format!("  env: &e [{}]\n  hostAliases: [{}]\n", vec!["A=1"; 600].join(", "), vec!["*e"; 600].join(", "))), "Clusterfile:10:2807: spec.hostAliases[414][559]: more than 250000 YAML nodes, counting each alias as the nodes it repeats; expected a Clusterfile of ordinary size (an alias used many times on a large anchor multiplies it)"),
        (format!("{}# {}\n", with_hosts(""), "x".repeat(4 << 20)), "Clusterfile:10:4194171: the Clusterfile goes on past 4194304 bytes (4 MiB) here, the most installer reads; expected a Clusterfile of a few KiB (is -f naming the right file?)"),
    ]
}

/// The message for 70 nested block sequences (the path names each level).
static DEEP_BLOCK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "Clusterfile:73:129: spec.env{}: nesting deeper than 64 levels; expected a Clusterfile nested a few levels deep (look for unclosed `[` or `{{`)",
        "[0]".repeat(62)
    )
});

/// A Clusterfile the way sealer saves one, with older apiVersions and the fields sealer
/// accepts but this version does not act on: it parses, and each such line gets one
/// warning at its position, in file order.
const AS_SEALER_SAVES: &str = "apiVersion: sealer.cloud/v2
kind: Cluster
metadata:
  name: saved
  creationTimestamp: null
  labels: {team: infra}
  annotations: {note: kept}
spec:
  image: rootfs
  hosts:
    - ips: [10.0.0.1]
      roles: [master]
      labels: {ssd: \"true\"}
      taints: [\"dedicated=infra:NoSchedule\"]
  cmd: [\"kubectl get nodes\"]
  registry:
    localRegistry:
      insecure: false
      cert: {}
status: {}
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: p
  creationTimestamp: null
spec: {type: SHELL, action: pre-init-host, scope: master, data: x}
status: {}
---
apiVersion: sealer.io/v1
kind: Config
metadata: {name: c}
spec: {path: etc/x.yaml, data: \"a: 1\"}
";

#[test]
fn what_sealer_saves_is_accepted_with_a_warning_for_each_line_not_acted_on() {
    let cf = parse_ok(AS_SEALER_SAVES);
    assert_eq!(cf.name, "saved");
    assert_eq!(cf.plugins.len(), 1);
    assert_eq!(cf.configs.len(), 1);
    let shown: Vec<String> = cf.warnings.iter().map(|w| w.to_string()).collect();
    let file = "/srv/site/Clusterfile";
    let labels = "accepted and not acted on: node labels and taints are set on a running cluster, and this version prepares hosts without bootstrapping one";
    assert_eq!(
        shown,
        [
            format!(
                "{file}:1:13: apiVersion sealer.cloud/v2 is an older name for Cluster; read as sealer.io/v2 (write that to silence this)"
            ),
            format!("{file}:13:7: spec.hosts[0].labels: {labels}"),
            format!("{file}:14:7: spec.hosts[0].taints: {labels}"),
            format!(
                "{file}:15:3: spec.cmd: accepted and not acted on: applications need a running cluster, and this version prepares hosts without bootstrapping one"
            ),
            format!(
                "{file}:22:13: apiVersion sealer.aliyun.com/v1alpha1 is an older name for Plugin; read as sealer.io/v1 (write that to silence this)"
            ),
        ]
    );
    // The canonical forms say nothing.
    assert!(parse_ok(FULL).warnings.is_empty());
}

/// sealer's v1 form, as its v0.8 docs shape one.
const V1_FORM: &str = "apiVersion: sealer.aliyun.com/v1alpha1
kind: Cluster
metadata:
  name: my-cluster
spec:
  image: registry.example.com/kubernetes:v1.19.8
  provider: BAREMETAL
  ssh:
    passwd: ${SSH_PASS}
  network:
    podCIDR: 100.64.0.0/10
  certSANS: [aliyun-inc.com, 10.0.0.2]
  masters:
    ipList: [192.168.0.2, 192.168.0.3, 192.168.0.4]
  nodes:
    ipList: [192.168.0.5, 192.168.0.6]
";

#[test]
fn the_v1_form_is_refused_with_the_hosts_block_to_paste() {
    let got = parse_err(V1_FORM);
    assert_eq!(
        got,
        "Clusterfile:13:3: spec.masters: this is sealer's v1 Cluster form (masters/nodes), which installer does not read; \
         expected the v2 form: set apiVersion: sealer.io/v2, remove provider, network, certSANS, and replace masters and nodes under spec with\n  \
         hosts:\n    - ips: [192.168.0.2, 192.168.0.3, 192.168.0.4]\n      roles: [master]\n    \
         - ips: [192.168.0.5, 192.168.0.6]\n      roles: [node]\n"
    );
    // Pasted as told, the file parses: the block is the whole fix.
    let mut fixed = V1_FORM.replace("sealer.aliyun.com/v1alpha1", "sealer.io/v2");
    fixed.replace_range(
        fixed.find("  provider:").unwrap()..fixed.find("  ssh:").unwrap(),
        "",
    );
    // network and certSANS come last in this file: cut from network on.
    let network = fixed.find("  network:").unwrap();
    fixed.truncate(network);
    let block = got.split_once("under spec with\n").unwrap().1;
    fixed.push_str(block);
    let cf = parse_ok(&fixed);
    assert_eq!(cf.hosts.len(), 5);
    assert_eq!(cf.master0().ip, "192.168.0.2");
}

#[test]
fn bad_inputs_name_the_position_and_what_is_expected() {
    let mut failures = Vec::new();
    for (text, want) in bad_cases() {
        let got = parse_err(&text);
        if got != want {
            failures.push(format!("input:\n{text}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn load_reads_the_file_and_the_process_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Clusterfile");
    let text = format!("{HEAD}  ssh: {{passwd: \"${{PATH}}\", pk: id_ed25519}}\n{HOSTS}");
    std::fs::write(&path, text).unwrap();
    let cf = load(&path).unwrap();
    assert_eq!(cf.source, path);
    assert_eq!(cf.dir(), dir.path());
    let ssh = &cf.hosts[0].ssh;
    assert_eq!(
        ssh.passwd.as_ref().map(Secret::expose),
        std::env::var("PATH").ok().as_deref()
    );
    assert_eq!(
        ssh.pk.as_deref(),
        Some(dir.path().join("id_ed25519").as_path())
    );

    let missing = dir.path().join("nope");
    let err = load(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("reading Clusterfile {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn load_refuses_what_is_not_a_bounded_utf8_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = |path: &Path, what: &str| {
        let err = load(path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "Clusterfile {}: {what}, not a regular file; expected the path of a Clusterfile with -f",
                path.display()
            )
        );
    };
    not_a_file(Path::new("/dev/zero"), "a character device");
    not_a_file(dir.path(), "a directory");
    // A FIFO with no writer: opening it for reading would block forever.
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    not_a_file(&fifo, "a FIFO (named pipe)");
    // A link to a device is judged by what it points at.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    not_a_file(&link, "a character device");

    let path = dir.path().join("Clusterfile");
    let mut bytes = format!("{HEAD}{HOSTS}  env: [\"A=").into_bytes();
    bytes.extend_from_slice(b"caf\xe9\"]\n");
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:10:15: byte 0xE9 is not UTF-8 text; expected a Clusterfile saved as UTF-8",
            path.display()
        )
    );

    // Larger than 4 MiB: only the first 4 MiB and a byte are read.
    let mut big = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut big, format!("{HEAD}{HOSTS}").as_bytes()).unwrap();
    big.set_len(1 << 40).unwrap(); // a sparse terabyte
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:10:", path.display()))
            && err.contains("goes on past 4194304 bytes (4 MiB) here"),
        "{err}"
    );
    assert_eq!(MAX_BYTES, 4 << 20);
}

mod errors;
mod forms;

#[test]
fn registry_credentials_are_read_with_the_password_a_secret() {
    let reg = |lines: &str| with_hosts(&format!("  registry:\n    localRegistry:\n{lines}"));
    let cf = parse_ok(&reg("      username: admin\n      password: ${SSH_PASS}\n"));
    let auth = cf.registry.auth.as_ref().unwrap();
    assert_eq!(auth.username, "admin");
    assert_eq!(
        auth.password.expose(),
        "s3cret",
        "read from the environment"
    );
    assert!(!format!("{cf:?}").contains("s3cret"), "never printed");
    assert_eq!(
        parse_err(&reg("      username: admin\n")),
        "Clusterfile:12:17: spec.registry.localRegistry.username: username is given without password; give both (the password may be ${ENV_NAME}), or neither for a registry without auth"
    );
    assert_eq!(
        parse_err(&reg("      username: admin\n      password: ${NOT_SET}\n")),
        "Clusterfile:13:17: spec.registry.localRegistry.password: environment variable NOT_SET is not set; expected NOT_SET exported where installer runs (the Clusterfile reads the secret from ${NOT_SET})"
    );
    let bad_user = parse_err(&reg("      username: 'a:b'\n      password: x\n"));
    assert!(
        bad_user.starts_with(
            "Clusterfile:12:17: spec.registry.localRegistry.username: user name \"a:b\" is invalid"
        ),
        "{bad_user}"
    );
}
