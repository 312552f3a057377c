//! Every problem of a file in one run.

use super::parse_err;
use crate::clusterfile::{MAX_ERRORS, parse_with_env};

/// Five different mistakes, in three documents: a misspelt field, a bad env key, a
/// duplicate IP, a Plugin without scope, a Config leaving the rootfs.
const FIVE_MISTAKES: &str = "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: five
spec:
  image: r
  env:
    - etcd dir=/data/etcd
  hosts:
    - ips: [10.0.0.2, 10.0.0.3]
      roles: [master]
    - ips: [10.0.0.3]
      roles: [node]
  registy: {}
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: tune
spec:
  type: SHELL
  action: pre-init-host
  data: echo hi
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: escape
spec:
  path: ../etc/passwd
  data: x
";

#[test]
fn a_file_with_five_mistakes_gets_five_positioned_errors_in_file_order() {
    let got = parse_err(FIVE_MISTAKES);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            r#"Clusterfile:8:7: spec.env[0]: env key "etcd dir" is invalid; expected a key without blanks or control characters; a shell name ([A-Za-z_][A-Za-z0-9_]*) reaches scripts too"#,
            "Clusterfile:12:13: spec.hosts[1].ips[0]: IP 10.0.0.3 is listed twice (also at spec.hosts[0].ips[1]); expected each host once",
            "Clusterfile:14:3: spec: unknown field `registy`; expected one of `image`, `env`, `ssh`, `hosts`, `containerRuntime`, `registry`, `hostAliases`, `dataRoot`, `cmd`, `cmd_args`, `appNames`",
            // The host in error is left out of the hosts the scope is checked against.
            "Clusterfile:21:3: spec.scope: no scope (sealer runs such a plugin on no host); expected roles joined by |, among: master",
            r#"Clusterfile:30:9: spec.path: path "../etc/passwd" is not a clean relative path inside the rootfs; expected a relative path without '.', '..' or empty components, such as etc/daemon.json"#,
            "5 problems in all; fix them and run again",
        ]
    );
}

#[test]
fn a_file_with_hundreds_of_mistakes_shows_the_first_fifty_and_counts_the_rest() {
    let mut text = String::from(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: many\nspec:\n  image: r\n  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n  env:\n",
    );
    for i in 0..120 {
        text.push_str(&format!("    - bad key {i}=x\n"));
    }
    let err = parse_with_env("Clusterfile", &text, &|_| None).unwrap_err();
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), MAX_ERRORS + 2, "{shown}");
    assert!(
        lines[0].starts_with("Clusterfile:11:7: spec.env[0]: "),
        "{}",
        lines[0]
    );
    assert!(lines[MAX_ERRORS - 1].starts_with("Clusterfile:60:7: spec.env[49]: "));
    assert_eq!(lines[MAX_ERRORS], "… and 70 more (the first 50 are shown)");
    assert_eq!(
        lines[MAX_ERRORS + 1],
        "120 problems in all; fix them and run again"
    );
}

#[test]
fn a_shape_error_stops_the_checks_of_its_document_but_not_of_the_others() {
    // `hosts` has the wrong type: the Cluster's own checks would work on a guess, so they
    // do not run; the Config is still checked.
    let text = "apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: Bad_Name
spec:
  image: r
  hosts: 10.0.0.1
---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: c
spec:
  path: /etc/x
  data: x
";
    let got = parse_err(text);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert!(
        lines[0].starts_with("Clusterfile:7:10: spec.hosts: invalid type: string \"10.0.0.1\""),
        "{got}"
    );
    assert!(
        lines[1].starts_with("Clusterfile:14:9: spec.path: "),
        "{got}"
    );
}
