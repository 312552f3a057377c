//! Golden tests of the kubeadm merge: each directory under `tests/kubeadm/` holds the
//! rootfs's `etc/kubeadm.yml` as rendered (`rootfs.yml`, absent for a rootfs without one),
//! the Clusterfile's kubeadm documents (`clusterfile.yml`, one per `---` section), the
//! merged file (`expected.yml`) and, when the merge has something to say, its notes
//! (`notes.txt`, one per line).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use installer_proto::kubeadm::{KubeadmError, Where, check_documents, merge, merge_output};
use std::fs;
use std::path::PathBuf;

fn dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kubeadm")
        .join(case)
}

/// The sections of a Clusterfile's kubeadm documents, as the Clusterfile reader gives them.
fn sections(text: &str) -> Vec<String> {
    text.split("\n---\n")
        .map(|s| format!("{}\n", s.trim_end()))
        .collect()
}

fn golden(case: &str) {
    let d = dir(case);
    let read = |name: &str| fs::read_to_string(d.join(name));
    let rootfs = read("rootfs.yml").ok();
    let docs = sections(&read("clusterfile.yml").expect("clusterfile.yml"));
    let merged = merge(rootfs.as_deref(), &docs).unwrap_or_else(|e| panic!("{case}: {e}"));
    let expected = read("expected.yml").expect("expected.yml");
    assert_eq!(merged.text, expected, "{case}: merged text");
    let notes: Vec<String> = read("notes.txt")
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    assert_eq!(merged.notes, notes, "{case}: notes");
    // The merge is stable: merging the same documents into its result changes nothing
    // but what it already reported.
    let again = merge(Some(&merged.text), &docs).unwrap();
    assert_eq!(again.text, merged.text, "{case}: merging twice");
}

#[test]
fn a_basefs_kubeadm_yml_takes_the_clusterfile_settings() {
    golden("basefs");
}

#[test]
fn kinds_only_the_clusterfile_has_are_added_and_other_documents_kept() {
    golden("added-kinds");
}

#[test]
fn empty_values_do_not_override_and_lists_replace() {
    golden("zero-values");
}

#[test]
fn without_a_rootfs_file_the_clusterfile_documents_stand_alone() {
    golden("no-rootfs-file");
}

#[test]
fn the_e2e_fixture_takes_a_pod_subnet_and_keeps_the_rest() {
    golden("e2e-fixture");
}

#[test]
fn every_case_directory_has_a_test() {
    let mut cases: Vec<String> = fs::read_dir(dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert_eq!(
        cases,
        [
            "added-kinds",
            "basefs",
            "e2e-fixture",
            "no-rootfs-file",
            "zero-values"
        ]
    );
}

#[test]
fn without_clusterfile_documents_the_text_is_untouched() {
    let text = "# as rendered\nkind: ClusterConfiguration\napiVersion: kubeadm.k8s.io/v1beta3\nnetworking: {podSubnet: 1.0.0.0/8}\n";
    assert_eq!(merge(Some(text), &[]).unwrap().text, text);
    assert_eq!(merge(None, &[]).unwrap().text, "");
}

fn doc(text: &str) -> String {
    text.to_string()
}

#[test]
fn clusterfile_documents_must_be_kubeadm_kinds_once_each() {
    let cluster = doc("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n");
    let err = check_documents(&[
        cluster.clone(),
        doc("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n"),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the Clusterfile's kubeadm document 2: a second ClusterConfiguration (the first is the Clusterfile's kubeadm document 1); kubeadm takes one document of each kind, so keep one"
    );
    for (bad, says) in [
        (
            "apiVersion: sealer.cloud/v2\nkind: ClusterConfiguration\n",
            "apiVersion \"sealer.cloud/v2\" kind \"ClusterConfiguration\" is not one of kubeadm's documents",
        ),
        (
            "kind: InitConfiguration\n",
            "apiVersion \"\" kind \"InitConfiguration\"",
        ),
        ("- a\n- b\n", "not a mapping with apiVersion and kind"),
        ("# nothing\n", "give exactly one YAML document"),
        (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n",
            "give exactly one YAML document",
        ),
    ] {
        let err = merge(Some(""), &[cluster.clone(), doc(bad)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("the Clusterfile's kubeadm document 2: ") && text.contains(says),
            "{bad:?}: {text}"
        );
    }
}

#[test]
fn rootfs_errors_name_the_line() {
    let cluster = [doc(
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
    )];
    let twice = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
    assert_eq!(
        merge(Some(twice), &cluster).unwrap_err(),
        KubeadmError::Duplicate {
            kind: "ClusterConfiguration".into(),
            first: Where::Rootfs { line: 1 },
            second: Where::Rootfs { line: 4 },
        }
    );
    let broken = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: [1.0.0.0/8\n";
    let err = merge(Some(broken), &cluster).unwrap_err().to_string();
    assert!(
        err.starts_with("etc/kubeadm.yml, the document at line 4: not valid YAML: "),
        "{err}"
    );
}

#[test]
fn a_kind_of_another_api_group_in_the_rootfs_is_not_merged_into() {
    let rootfs = "apiVersion: example.com/v1\nkind: KubeletConfiguration\nmaxPods: 1\n";
    let cf = [doc(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 2\n",
    )];
    assert_eq!(
        merge(Some(rootfs), &cf).unwrap().text,
        format!("{rootfs}---\n{}", cf[0])
    );
}

#[test]
fn only_etc_kubeadm_yml_takes_the_documents() {
    let cf = [doc(
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.27.1\n",
    )];
    let rendered = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.25.0\n";
    assert_eq!(merge_output("etc/other.yml", rendered, &cf), Ok(None));
    assert_eq!(merge_output("etc/kubeadm.yml", rendered, &[]), Ok(None));
    let merged = merge_output("etc/kubeadm.yml", rendered, &cf)
        .unwrap()
        .unwrap();
    assert_eq!(merged.text, cf[0]);
}
