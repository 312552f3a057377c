//! Multi-platform indexes: each architecture's image in its subtree, its env for its hosts,
//! platforms left out or missing.

use super::fixtures::{self, Layout, tar};
use super::resolve;
use std::fs;
use tar::EntryType as T;
use testenv::image_layout::LayerCompression as Compression;

#[test]
fn a_two_platform_index_gives_each_architecture_its_image_and_env() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let common = tar(&[
        ("etc/", T::Directory, "", 0o755, b""),
        ("etc/shared.conf", T::Regular, "", 0o644, b"same"),
    ]);
    let own = |arch: &str| {
        tar(&[
            ("bin/", T::Directory, "", 0o755, b""),
            ("bin/kubelet", T::Regular, "", 0o755, arch.as_bytes()),
        ])
    };
    let mut l = Layout::default();
    let amd = l.image(
        "amd64",
        &["Arch=x86", "Same=1"],
        &[
            (common.clone(), Compression::Gzip),
            (own("amd64"), Compression::Gzip),
        ],
    );
    let arm = l.image(
        "arm64",
        &["Arch=arm", "Same=1"],
        &[
            (common, Compression::Gzip),
            (own("arm64"), Compression::Zstd),
        ],
    );
    // docker's layout: index.json names a nested index, which lists the platforms and an
    // attestation manifest (whose blob this layout lacks: it must not be read).
    let missing = fixtures::Desc {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        hex: "0".repeat(64),
        size: 10,
    };
    let nested = l.blob(
        "application/vnd.oci.image.index.v1+json",
        Layout::index_json(&[
            (amd, Some("amd64")),
            (arm, Some("arm64")),
            (missing, Some("unknown")),
        ]),
    );
    l.index(&[(nested, None)]);
    fs::write(site.path().join("multi.tar"), l.tar("")).unwrap();

    let r = resolve("multi.tar", site.path(), cache.path());
    assert_eq!(r.arches(), ["amd64", "arm64"]);
    for (arch, kubelet, env) in [("amd64", "amd64", "x86"), ("arm64", "arm64", "arm")] {
        let tree = r.walk(arch, &[]).unwrap();
        let read = |p: &str| fs::read_to_string(tree.source(p).unwrap()).unwrap();
        assert_eq!(read("bin/kubelet"), kubelet);
        assert_eq!(read("etc/shared.conf"), "same");
        assert!(tree.get("amd64").is_none() && tree.get("arm64").is_none());
        assert_eq!(r.image_env().for_arch(arch)["Arch"], env);
    }
    assert!(r.image_env().base.is_empty());
}

#[test]
fn a_multi_platform_image_without_the_host_architecture_says_so() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let one = tar(&[("f", T::Regular, "", 0o644, b"x")]);
    let mut l = Layout::default();
    let amd = l.image("amd64", &[], &[(one.clone(), Compression::None)]);
    let s390 = l.image("s390x", &[], &[(one.clone(), Compression::None)]);
    // Listed, but its blobs were not saved.
    let arm = Layout::default().image("arm64", &[], &[(one, Compression::None)]);
    l.index(&[
        (amd, Some("amd64")),
        (s390, Some("s390x")),
        (arm, Some("arm64")),
    ]);
    l.write_to(&site.path().join("layout")).unwrap();
    let r = resolve("layout", site.path(), cache.path());
    assert_eq!(r.arches(), ["amd64"]);
    assert!(r.walk("amd64", &[]).is_ok());
    let err = r.walk("arm64", &[]).unwrap_err().to_string();
    assert!(
        err.contains("it has no linux/arm64 image (it has linux/amd64)"),
        "{err}"
    );
}
