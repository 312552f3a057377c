//! Splitting a Clusterfile into its documents and deciding what each one is, before any of
//! them is read strictly: the kind decides which closed shape a document must have.

use super::ClusterfileError;
use super::locate::{self, NodePath, Seg};
use serde::Deserialize;
use yaml_serde::Value;

/// Why parsing failed, before it is turned into a positioned message.
#[derive(Debug)]
pub(super) enum Failure {
    /// The YAML reader (syntax, types, unknown fields) reported it with its own position.
    Yaml(yaml_serde::Error),
    /// A check found it; the node is located afterwards.
    At(Problem),
}

/// A problem at a node of a document.
#[derive(Debug)]
pub(super) struct Problem {
    pub doc: usize,
    pub path: NodePath,
    pub message: String,
}

impl Failure {
    /// A problem at `segs` of `doc` (its value, or its key when `at_key`), worded as
    /// `path: what; expected`.
    pub(super) fn at(
        doc: usize,
        segs: &[Seg],
        at_key: bool,
        what: &str,
        expected: &str,
    ) -> Failure {
        let where_ = locate::render(segs);
        let message = if where_.is_empty() {
            format!("{what}; {expected}")
        } else {
            format!("{where_}: {what}; {expected}")
        };
        let path = if at_key {
            NodePath::key(segs)
        } else {
            NodePath::value(segs)
        };
        Failure::At(Problem { doc, path, message })
    }

    pub(super) fn into_error(self, file: &str, text: &str) -> ClusterfileError {
        let (line, column, message) = match self {
            Failure::Yaml(e) => {
                let (line, column, message) = yaml_message(&e);
                // The reader places a duplicate key at the start of its mapping; point at
                // the second occurrence, which is the one to remove.
                match duplicated_key(&message)
                    .and_then(|key| second_occurrence(text, line, column, key))
                {
                    Some((l, c)) => (l, c, message),
                    None => (line, column, message),
                }
            }
            Failure::At(p) => {
                let (line, column) = locate::locate(text, p.doc, &p.path);
                (line, column, p.message)
            }
        };
        ClusterfileError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

impl Problem {
    /// The warning this problem is when it does not stop the file: located in `text`.
    pub(super) fn into_warning(self, file: &str, text: &str) -> super::ClusterfileWarning {
        let (line, column) = locate::locate(text, self.doc, &self.path);
        super::ClusterfileWarning {
            file: file.to_string(),
            line,
            column,
            message: self.message,
        }
    }
}

impl From<yaml_serde::Error> for Failure {
    fn from(e: yaml_serde::Error) -> Failure {
        Failure::Yaml(e)
    }
}

/// The position and a `what; expected` wording of a YAML reader error. The reader appends
/// ` at line L column C` to its messages; the position moves to the front instead.
fn yaml_message(e: &yaml_serde::Error) -> (usize, usize, String) {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let mut msg = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    if let Some(i) = msg.find(&suffix) {
        msg.replace_range(i..i + suffix.len(), "");
    }
    (line, column, reword(msg))
}

/// serde's wording turned into `what; expected`: serde words type and field errors as
/// "…, expected …", which becomes the expected part.
pub(super) fn reword(mut msg: String) -> String {
    if let Some(i) = msg.find(", expected ") {
        msg.replace_range(i..i + 2, "; ");
    } else if msg.contains("missing field") {
        msg.push_str("; add it to this mapping");
    } else if msg.contains("duplicate field") || msg.contains("duplicate entry") {
        msg.push_str("; give each key once");
    } else if !msg.contains(';') {
        msg.push_str("; fix the YAML syntax here (indentation, quoting, `key: value`)");
    }
    msg
}

/// The key a duplicate-key message names (`duplicate entry with key "k"` for free-form
/// mappings, ``duplicate field `k` `` for fixed shapes).
fn duplicated_key(message: &str) -> Option<&str> {
    let (open, close) = if message.contains("duplicate entry with key \"") {
        ("duplicate entry with key \"", '"')
    } else if message.contains("duplicate field `") {
        ("duplicate field `", '`')
    } else {
        return None;
    };
    let rest = &message[message.find(open)? + open.len()..];
    Some(&rest[..rest.find(close)?])
}

/// Where `key` is written for the second time in the block mapping whose first key is at
/// `line`:`column` (1-based). `None` for a flow mapping (`{a: 1, a: 2}`) or when not found.
fn second_occurrence(text: &str, line: usize, column: usize, key: &str) -> Option<(usize, usize)> {
    let indent = column.checked_sub(1)?;
    let is_key = |rest: &str| {
        [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                rest.strip_prefix(k.as_str())
                    .is_some_and(|after| after.trim_start().starts_with(':'))
            })
    };
    let mut seen = 0;
    for (i, l) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let first = i + 1 == line;
        let lead = l.len() - l.trim_start_matches(' ').len();
        let body = l.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if !first && (lead < indent || body.starts_with("---") && lead == 0) {
            break;
        }
        // On the first line the key may follow a `- `; on later ones it sits at the indent.
        let at = if first {
            l.get(indent..)
        } else {
            (lead == indent).then_some(body)
        };
        if at.is_some_and(is_key) {
            seen += 1;
            if seen == 2 {
                return Some((i + 1, column));
            }
        }
    }
    None
}

/// What a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Empty or `null` (skipped, as sealer does).
    Empty,
    /// `kind: Cluster`.
    Cluster,
    /// `kind: Plugin`.
    Plugin,
    /// `kind: Config`.
    Config,
    /// One of kubeadm's kinds (`ClusterConfiguration`, …).
    Kubeadm,
}

/// kubeadm's and kubelet's kinds, which sealer passes to `kubeadm init`.
const BOOTSTRAP_KINDS: [&str; 5] = [
    "InitConfiguration",
    "ClusterConfiguration",
    "JoinConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
];

/// The API group each kubeadm kind belongs to; any version of it is accepted, as sealer
/// passes the documents on without reading the version.
fn kubeadm_group(kind: &str) -> &'static str {
    match kind {
        "KubeletConfiguration" => "kubelet.config.k8s.io",
        "KubeProxyConfiguration" => "kubeproxy.config.k8s.io",
        _ => "kubeadm.k8s.io",
    }
}

/// A kubeadm document: its `apiVersion` must be of the kind's group; accepted with a
/// warning saying where it goes.
fn kubeadm_kind(
    doc: usize,
    kind: &str,
    map: &yaml_serde::Mapping,
    warnings: &mut Vec<Problem>,
) -> Result<Kind, Failure> {
    let group = kubeadm_group(kind);
    let expected = format!("expected apiVersion: {group}/<version>, such as {group}/v1beta3");
    match map.get("apiVersion") {
        Some(Value::String(api))
            if api
                .strip_prefix(group)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|v| !v.is_empty() && !v.contains('/')) => {}
        Some(Value::String(api)) => {
            return Err(Failure::at(
                doc,
                &[Seg::Key("apiVersion")],
                false,
                &format!("{api:?} is not an apiVersion of {kind}"),
                &expected,
            ));
        }
        Some(_) => {
            return Err(Failure::at(
                doc,
                &[Seg::Key("apiVersion")],
                false,
                "not a string",
                &expected,
            ));
        }
        None => {
            return Err(Failure::at(
                doc,
                &[],
                false,
                &format!("kind {kind} has no apiVersion"),
                &expected,
            ));
        }
    }
    warnings.push(Problem {
        doc,
        path: NodePath::value(&[Seg::Key("kind")]),
        message: format!(
            "kind: {kind}: merged into each host's etc/kubeadm.yml (this document's fields over the rootfs's), where a bootstrap that follows finds it; installer itself does not run kubeadm"
        ),
    });
    Ok(Kind::Kubeadm)
}

const KINDS_EXPECTED: &str = "expected Cluster, Plugin or Config";

/// The `apiVersion`s sealer's own documents and tests use for each kind, the canonical one
/// first. Any of them is accepted; one that is not the canonical one gets a warning.
const CLUSTER_APIS: &[&str] = &["sealer.io/v2", "sealer.cloud/v2", "cluster.sealer.cool/v2"];
const HOOK_APIS: &[&str] = &[
    "sealer.io/v1",
    "sealer.io/v2",
    "sealer.io/v1alpha1",
    "sealer.aliyun.com/v1alpha1",
    "sealer.aliyun.com/v2alpha1",
    "sealer.com/v1alpha1",
];

/// Reads every document loosely and classifies it. A document that cannot be classified
/// adds its problem to `errors` and counts as empty, so the others are still read; a syntax
/// error ends the reading (the YAML reader cannot go past it). Accepted forms that deserve a
/// word (an old `apiVersion`) are added to `warnings`.
pub(super) fn classify(
    text: &str,
    warnings: &mut Vec<Problem>,
    errors: &mut Vec<Failure>,
) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = match Option::<Value>::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e.into());
                return kinds;
            }
        };
        let kind = match classify_one(doc, value, warnings) {
            Ok(kind) => kind,
            Err(failure) => {
                errors.push(failure);
                Kind::Empty
            }
        };
        if kind == Kind::Cluster
            && let Some(first) = kinds.iter().position(|k| *k == Kind::Cluster)
        {
            let (line, _) = locate::locate(text, first, &NodePath::value(&[Seg::Key("kind")]));
            errors.push(Failure::at(
                doc,
                &[Seg::Key("kind")],
                false,
                &format!("a second Cluster document (the first is at line {line})"),
                "expected exactly one Cluster per Clusterfile",
            ));
            kinds.push(Kind::Empty);
            continue;
        }
        kinds.push(kind);
    }
    if !kinds.contains(&Kind::Cluster) && errors.is_empty() {
        errors.push(Failure::at(
            0,
            &[],
            false,
            "no kind: Cluster document",
            "expected one document with apiVersion: sealer.io/v2 and kind: Cluster listing the hosts",
        ));
    }
    kinds
}

fn classify_one(
    doc: usize,
    value: Option<Value>,
    warnings: &mut Vec<Problem>,
) -> Result<Kind, Failure> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Kind::Empty),
        Some(Value::Mapping(map)) => map,
        Some(other) => {
            let found = match other {
                Value::Sequence(_) => "a list",
                Value::Tagged(_) => "a tagged value",
                _ => "a plain value",
            };
            return Err(Failure::at(
                doc,
                &[],
                false,
                &format!("this document is {found}"),
                "expected a mapping with apiVersion and kind",
            ));
        }
    };
    let kind = match map.get("kind") {
        None => {
            return Err(Failure::at(
                doc,
                &[],
                false,
                "this document has no kind",
                KINDS_EXPECTED,
            ));
        }
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => {
            return Err(Failure::at(
                doc,
                &[Seg::Key("kind")],
                false,
                "kind is not a string",
                KINDS_EXPECTED,
            ));
        }
    };
    let (result, apis) = match kind.as_str() {
        "Cluster" => (Kind::Cluster, CLUSTER_APIS),
        "Plugin" => (Kind::Plugin, HOOK_APIS),
        "Config" => (Kind::Config, HOOK_APIS),
        k if BOOTSTRAP_KINDS.contains(&k) => return kubeadm_kind(doc, k, &map, warnings),
        "Application" => {
            return Err(Failure::at(
                doc,
                &[Seg::Key("kind")],
                false,
                "Application needs a running cluster, and cluster bootstrap is not part of this version",
                "remove this document",
            ));
        }
        other => {
            return Err(Failure::at(
                doc,
                &[Seg::Key("kind")],
                false,
                &format!("unknown kind {other:?}"),
                KINDS_EXPECTED,
            ));
        }
    };
    if result == Kind::Cluster
        && let Some(refusal) = v1_form(doc, &map)
    {
        return Err(refusal);
    }
    let want_api = apis[0];
    match map.get("apiVersion") {
        Some(Value::String(api)) if api == want_api => Ok(result),
        Some(Value::String(api)) if apis.contains(&api.as_str()) => {
            warnings.push(Problem {
                doc,
                path: NodePath::value(&[Seg::Key("apiVersion")]),
                message: format!(
                    "apiVersion {api} is an older name for {kind}; read as {want_api} (write that to silence this)"
                ),
            });
            Ok(result)
        }
        Some(Value::String(api)) => {
            let hint = if result == Kind::Cluster && api.ends_with("/v1") {
                " (the v1 form with masters/nodes is not supported; list hosts under spec.hosts)"
            } else {
                ""
            };
            Err(Failure::at(
                doc,
                &[Seg::Key("apiVersion")],
                false,
                &format!("{api:?} is not supported for kind {kind}"),
                &format!("expected one of {}{hint}", apis.join(", ")),
            ))
        }
        Some(_) => Err(Failure::at(
            doc,
            &[Seg::Key("apiVersion")],
            false,
            "not a string",
            &format!("expected {want_api}"),
        )),
        None => Err(Failure::at(
            doc,
            &[],
            false,
            &format!("kind {kind} has no apiVersion"),
            &format!("expected apiVersion: {want_api}"),
        )),
    }
}

/// sealer's v1 Cluster (`spec.masters.ipList`, `spec.nodes.ipList`, whatever its
/// `apiVersion`): refused with the v2 `hosts:` block to paste, built from the file's own IPs,
/// so one edit gets a working file.
fn v1_form(doc: usize, map: &yaml_serde::Mapping) -> Option<Failure> {
    let spec = map.get("spec")?.as_mapping()?;
    let ips_of = |key: &str| -> Vec<String> {
        let list = spec
            .get(key)
            .and_then(Value::as_mapping)
            .and_then(|m| m.get("ipList"))
            .and_then(Value::as_sequence);
        list.map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let (masters, nodes) = (ips_of("masters"), ips_of("nodes"));
    let at = if spec.contains_key("masters") {
        "masters"
    } else if spec.contains_key("nodes") {
        "nodes"
    } else {
        return None;
    };
    let mut block = String::from("  hosts:\n");
    for (ips, role) in [(&masters, "master"), (&nodes, "node")] {
        if !ips.is_empty() {
            block += &format!("    - ips: [{}]\n      roles: [{role}]\n", ips.join(", "));
        }
    }
    let dropped: Vec<&str> = ["provider", "network", "certSANS"]
        .into_iter()
        .filter(|k| spec.contains_key(*k))
        .collect();
    let also = if dropped.is_empty() {
        String::new()
    } else {
        format!(", remove {}", dropped.join(", "))
    };
    Some(Failure::at(
        doc,
        &[Seg::Key("spec"), Seg::Key(at)],
        true,
        "this is sealer's v1 Cluster form (masters/nodes), which installer does not read",
        &format!(
            "expected the v2 form: set apiVersion: sealer.io/v2{also}, and replace masters and nodes under spec with\n{block}"
        ),
    ))
}
