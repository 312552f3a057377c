//! The field-by-field merge of one kind: the Clusterfile's document over the rootfs's, with
//! the rules sealer gets from `mergo.Merge(clusterfileSide, rootfsSide)` (no options) on
//! kubeadm's Go types, restated for untyped YAML:
//!
//! - a mapping (a Go struct or map) merges key by key: keys of both sides are kept, the
//!   rootfs's in their order, then the Clusterfile's new ones in theirs;
//! - any other value of the Clusterfile that is not empty replaces the rootfs's whole —
//!   lists included (mergo keeps a non-empty destination slice; it never merges elements);
//! - an empty value of the Clusterfile (`null`, `false`, `0`, `""`, `[]`, `{}`) counts as
//!   unset, as Go's zero values do for mergo: the rootfs's value stays. This is sealer's
//!   behaviour, surprising as it is (`serializeImagePulls: false` does not turn off a
//!   rootfs's `true`), so each such case is reported as a note;
//! - the one exception is `ClusterConfiguration.apiServer.certSANs`: both lists are joined,
//!   the Clusterfile's first, duplicates dropped, as sealer's `LoadFromClusterfile` and
//!   `Merge` join them before mergo runs. (In between, sealer's `NewKubeadmConfig` sets
//!   the list to SANs of its own making, which drops the Clusterfile's; that looks
//!   unintended and is not copied: the user's names are kept.)

use yaml_serde::{Mapping, Value};

/// The path of the list whose items both sides contribute.
const JOINED_LIST: (&str, &[&str]) = ("ClusterConfiguration", &["apiServer", "certSANs"]);

/// Merges `cf` (the Clusterfile's document) over `rootfs` (the same kind's document of the
/// rootfs file); `notes` gains a line for each Clusterfile value that counted as unset.
pub(super) fn merge_document(
    kind: &str,
    cf: Mapping,
    rootfs: Mapping,
    notes: &mut Vec<String>,
) -> Mapping {
    let mut path = Vec::new();
    let mut m = Merger { kind, notes };
    m.mapping(cf, rootfs, &mut path)
}

struct Merger<'a> {
    kind: &'a str,
    notes: &'a mut Vec<String>,
}

impl Merger<'_> {
    fn mapping(&mut self, mut cf: Mapping, rootfs: Mapping, path: &mut Vec<String>) -> Mapping {
        let mut out = Mapping::with_capacity(rootfs.len() + cf.len());
        for (key, theirs) in rootfs {
            let value = match cf.shift_remove(&key) {
                Some(ours) => {
                    path.push(key_name(&key));
                    let v = self.value(ours, theirs, path);
                    path.pop();
                    v
                }
                None => theirs,
            };
            out.insert(key, value);
        }
        // What only the Clusterfile has is taken as written, empty or not.
        for (key, ours) in cf {
            out.insert(key, ours);
        }
        out
    }

    fn value(&mut self, cf: Value, rootfs: Value, path: &mut Vec<String>) -> Value {
        if is_empty(&cf) {
            if is_empty(&rootfs) {
                return cf;
            }
            if !cf.is_null() {
                self.notes.push(format!(
                    "{} {}: the Clusterfile's {} does not replace etc/kubeadm.yml's {}: as in sealer, an empty value (false, 0, \"\", [] or {{}}) counts as unset",
                    self.kind,
                    path.join("."),
                    short(&cf),
                    short(&rootfs)
                ));
            }
            return rootfs;
        }
        match (cf, rootfs) {
            (Value::Mapping(ours), Value::Mapping(theirs)) => {
                Value::Mapping(self.mapping(ours, theirs, path))
            }
            (Value::Sequence(ours), Value::Sequence(theirs)) if self.joins(path) => {
                let mut joined: Vec<Value> = Vec::with_capacity(ours.len() + theirs.len());
                for item in ours.into_iter().chain(theirs) {
                    if !joined.contains(&item) {
                        joined.push(item);
                    }
                }
                Value::Sequence(joined)
            }
            (ours, _) => ours,
        }
    }

    fn joins(&self, path: &[String]) -> bool {
        self.kind == JOINED_LIST.0
            && path
                .iter()
                .map(String::as_str)
                .eq(JOINED_LIST.1.iter().copied())
    }
}

/// Whether mergo would take the value for Go's zero value of its type.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f == 0.0),
        Value::String(s) => s.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        Value::Tagged(_) => false,
    }
}

/// A mapping key as a path component.
fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => short(other),
    }
}

/// A value in a note: scalars as written, collections by what they are.
fn short(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        Value::Sequence(_) => "list".into(),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Mapping(_) => "mapping".into(),
        Value::Tagged(t) => format!("{} value", t.tag),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(yaml: &str) -> Mapping {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn merged(kind: &str, cf: &str, rootfs: &str) -> (String, Vec<String>) {
        let mut notes = Vec::new();
        let m = merge_document(kind, map(cf), map(rootfs), &mut notes);
        (yaml_serde::to_string(&m).unwrap(), notes)
    }

    #[test]
    fn mappings_merge_lists_replace_scalars_win() {
        let (out, notes) = merged(
            "KubeProxyConfiguration",
            "mode: ipvs\nipvs:\n  excludeCIDRs: [10.0.0.0/8]\n  strictARP: true\nnew: 1\n",
            "mode: iptables\nipvs:\n  excludeCIDRs: [1.1.1.1/32, 2.2.2.2/32]\n  scheduler: rr\nkeep: x\n",
        );
        assert_eq!(
            out,
            "mode: ipvs\nipvs:\n  excludeCIDRs:\n  - 10.0.0.0/8\n  scheduler: rr\n  strictARP: true\nkeep: x\nnew: 1\n"
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn empty_values_count_as_unset_and_are_noted() {
        let (out, notes) = merged(
            "KubeletConfiguration",
            "serializeImagePulls: false\nmaxPods: 0\ncgroupDriver:\nextra: \"\"\n",
            "serializeImagePulls: true\nmaxPods: 110\ncgroupDriver: systemd\n",
        );
        assert_eq!(
            out,
            "serializeImagePulls: true\nmaxPods: 110\ncgroupDriver: systemd\nextra: ''\n"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("KubeletConfiguration serializeImagePulls: the Clusterfile's false does not replace etc/kubeadm.yml's true"),
            "{}",
            notes[0]
        );
    }

    #[test]
    fn cert_sans_are_joined_only_there() {
        let (out, _) = merged(
            "ClusterConfiguration",
            "apiServer:\n  certSANs: [b, c, b]\n  extraVolumes: [x]\n",
            "apiServer:\n  certSANs: [a, c]\n  extraVolumes: [y, z]\n",
        );
        assert_eq!(
            out,
            "apiServer:\n  certSANs:\n  - b\n  - c\n  - a\n  extraVolumes:\n  - x\n"
        );
        // The same path in another kind is an ordinary list.
        let (out, _) = merged(
            "InitConfiguration",
            "apiServer:\n  certSANs: [b]\n",
            "apiServer:\n  certSANs: [a]\n",
        );
        assert_eq!(out, "apiServer:\n  certSANs:\n  - b\n");
    }
}
