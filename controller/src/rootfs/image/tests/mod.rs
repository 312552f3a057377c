//! Images as `spec.image`: OCI layouts, OCI archives, docker archives, multi-platform
//! indexes; whiteouts, digests, escapes, the env, and the cache.

mod fixtures;
mod platforms;
mod refusals;

use super::super::{ResolvedRootfs, UnpackLimits, resolve_with};
use fixtures::{Layout, expect, snapshot, tar};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use tar::EntryType as T;
use testenv::image_layout::LayerCompression as Compression;

fn resolve(image: &str, site: &Path, cache: &Path) -> ResolvedRootfs {
    resolve_with(image, site, cache, &UnpackLimits::default()).unwrap()
}

/// The lower layer: a tree with files, a link, directories to hide and one to replace.
fn lower_layer() -> Vec<u8> {
    tar(&[
        ("etc/", T::Directory, "", 0o755, b""),
        ("etc/a.conf", T::Regular, "", 0o644, b"a=1\n"),
        ("etc/gone.conf", T::Regular, "", 0o644, b"x"),
        ("etc/link", T::Symlink, "a.conf", 0o777, b""),
        ("bin/", T::Directory, "", 0o755, b""),
        ("bin/tool", T::Regular, "", 0o755, b"#!/bin/sh\n"),
        ("opaque/", T::Directory, "", 0o755, b""),
        ("opaque/old.txt", T::Regular, "", 0o644, b"old"),
        ("opaque/sub/", T::Directory, "", 0o755, b""),
        ("opaque/sub/deep.txt", T::Regular, "", 0o644, b"deep"),
        ("gonedir/", T::Directory, "", 0o755, b""),
        ("gonedir/f", T::Regular, "", 0o644, b"f"),
        ("replaced/", T::Directory, "", 0o755, b""),
        ("replaced/inner", T::Regular, "", 0o644, b"i"),
    ])
}

/// The upper layer: a whiteout of a file and of a directory, an opaque directory (its own
/// new file before the marker), a changed file, a directory replaced by a file.
fn upper_layer() -> Vec<u8> {
    tar(&[
        ("etc/.wh.gone.conf", T::Regular, "", 0o644, b""),
        ("opaque/", T::Directory, "", 0o750, b""),
        ("opaque/new.txt", T::Regular, "", 0o600, b"new"),
        ("opaque/.wh..wh..opq", T::Regular, "", 0o644, b""),
        ("etc/a.conf", T::Regular, "", 0o640, b"a=2\n"),
        (".wh.gonedir", T::Regular, "", 0o644, b""),
        ("replaced", T::Regular, "", 0o644, b"now a file"),
    ])
}

fn top_layer() -> Vec<u8> {
    tar(&[
        ("scripts/", T::Directory, "", 0o755, b""),
        ("scripts/init.sh", T::Regular, "", 0o755, b"echo init\n"),
        ("etc/hard", T::Link, "etc/a.conf", 0o640, b""),
    ])
}

fn layers() -> Vec<(Vec<u8>, Compression)> {
    vec![
        (lower_layer(), Compression::None),
        (upper_layer(), Compression::Gzip),
        (top_layer(), Compression::Zstd),
    ]
}

/// What the three layers make.
fn expected() -> BTreeMap<String, String> {
    expect(&[
        ("bin", "d 755"),
        ("bin/tool", "f 755 #!/bin/sh\n"),
        ("etc", "d 755"),
        ("etc/a.conf", "f 640 a=2\n"),
        ("etc/hard", "f 640 a=2\n"),
        ("etc/link", "l -> a.conf"),
        ("opaque", "d 750"),
        ("opaque/new.txt", "f 600 new"),
        ("replaced", "f 644 now a file"),
        ("scripts", "d 755"),
        ("scripts/init.sh", "f 755 echo init\n"),
    ])
}

const ENV: &[&str] = &[
    "PATH=/usr/local/bin:/usr/bin",
    "KubeVersion=v1.22.15",
    "Shared=image",
];

fn env_of(entries: &[&str]) -> installer_proto::env::Env {
    entries
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn oci_layout() -> Layout {
    let mut l = Layout::default();
    let m = l.image("amd64", ENV, &layers());
    l.index(&[(m, None)]);
    l
}

/// The cache's rootfs entries (what a resolve left there).
fn cache_entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache.join("rootfs"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn an_oci_layout_directory_applies_layers_in_order_with_whiteouts() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    oci_layout().write_to(&site.path().join("layout")).unwrap();
    let r = resolve("layout", site.path(), cache.path());
    assert_eq!(snapshot(r.dir()), expected());
    assert!(r.archive().is_none());
    assert_eq!(r.arches(), ["amd64"]);
    assert_eq!(r.image_env().base, env_of(ENV));
    assert!(r.image_env().arches.is_empty());
    let entries = cache_entries(cache.path());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with("image-"), "{entries:?}");

    // Keyed by the manifest: the second run reuses the tree (a file put there stays).
    fs::write(r.dir().join("marker"), "kept").unwrap();
    let again = resolve("layout", site.path(), cache.path());
    assert_eq!(again.dir(), r.dir());
    assert!(again.dir().join("marker").exists());
    assert_eq!(again.image_env(), r.image_env());
}

#[test]
fn an_oci_archive_resolves_like_its_layout_and_is_unpacked_once() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layout = oci_layout();
    // sealer save's plain tar; a compressed one of a named directory; one named by neither.
    let forms = [
        (
            "image.tar",
            fixtures::compress(&layout.tar(""), Compression::None),
        ),
        (
            "image.tar.gz",
            fixtures::compress(&layout.tar("kube/"), Compression::Gzip),
        ),
        (
            "image.oci",
            fixtures::compress(&layout.tar(""), Compression::Zstd),
        ),
    ];
    for (name, bytes) in forms {
        fs::write(site.path().join(name), bytes).unwrap();
        let r = resolve(name, site.path(), cache.path());
        assert_eq!(snapshot(r.dir()), expected(), "{name}");
        assert_eq!(r.image_env().base, env_of(ENV), "{name}");
        assert_eq!(
            r.archive(),
            Some(fs::canonicalize(site.path().join(name)).unwrap().as_path())
        );
        fs::write(r.dir().join("marker"), name).unwrap();
        let again = resolve(name, site.path(), cache.path());
        assert_eq!(again.dir(), r.dir(), "{name}");
        assert_eq!(
            fs::read_to_string(again.dir().join("marker")).unwrap(),
            name
        );
    }
    // One image entry per archive; the unpacked layouts and their blobs are gone.
    let entries = cache_entries(cache.path());
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(
        entries.iter().all(|e| e.starts_with("image-")),
        "{entries:?}"
    );
}

#[test]
fn a_docker_archive_resolves_with_its_env() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // docker load takes a compressed layer.tar too; its diff_id is of the plain tar.
    let docker = Layout::docker(
        "amd64",
        ENV,
        &[
            (lower_layer(), Compression::None),
            (upper_layer(), Compression::Gzip),
            (top_layer(), Compression::None),
        ],
    );
    fs::write(site.path().join("saved.tar"), docker.tar("")).unwrap();
    let r = resolve("saved.tar", site.path(), cache.path());
    assert_eq!(snapshot(r.dir()), expected());
    assert_eq!(r.image_env().base, env_of(ENV));

    // Docker 25's names: config and layers under blobs/sha256/ (no oci-layout here, so
    // manifest.json is what is read).
    let mut renamed = Layout::default();
    let manifest: serde_json::Value =
        serde_json::from_slice(&docker.files["manifest.json"]).unwrap();
    let mut manifest = manifest;
    let mut move_blob = |old: &str| {
        let bytes = docker.files[old].clone();
        let rel = Layout::default().blob("", bytes.clone()).rel();
        renamed.files.insert(rel.clone(), bytes);
        rel
    };
    let config = move_blob(manifest[0]["Config"].as_str().unwrap());
    manifest[0]["Config"] = config.into();
    for layer in manifest[0]["Layers"].as_array_mut().unwrap() {
        // The blob of a layer is its uncompressed tar, so its digest is its diff_id; the
        // gzip layer here is checked by its diff_id all the same.
        *layer = move_blob(layer.as_str().unwrap()).into();
    }
    renamed.files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    fs::write(site.path().join("new.tar"), renamed.tar("")).unwrap();
    let r = resolve("new.tar", site.path(), cache.path());
    assert_eq!(snapshot(r.dir()), expected());
}

#[test]
fn an_image_archive_an_earlier_version_unpacked_as_a_plain_tree_becomes_an_image() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layout = oci_layout();
    let bytes = layout.tar("");
    fs::write(site.path().join("image.tar"), &bytes).unwrap();
    let sha = installer_proto::manifest::sha256_bytes(&bytes);
    layout
        .write_to(&cache.path().join("rootfs").join(&sha))
        .unwrap();
    let r = resolve("image.tar", site.path(), cache.path());
    assert_eq!(snapshot(r.dir()), expected());
    assert_eq!(
        cache_entries(cache.path()),
        [sha.clone(), format!("image-{sha}")]
    );
}

#[test]
fn the_image_env_reaches_the_plan_under_spec_env() {
    use crate::plan::build_plan_with_image;
    use installer_proto::facts::Facts;
    use installer_proto::plan::Timeouts;

    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rootfs = tar(&[
        (
            "Metadata",
            T::Regular,
            "",
            0o644,
            br#"{"version":"v1.22.15","arch":"amd64"}"#,
        ),
        ("etc/", T::Directory, "", 0o755, b""),
    ]);
    let mut l = Layout::default();
    let m = l.image(
        "amd64",
        &["FromImage=image", "Shared=image", "HostLevel=image"],
        &[(rootfs, Compression::None)],
    );
    l.index(&[(m, None)]);
    l.write_to(&site.path().join("layout")).unwrap();
    let r = resolve("layout", site.path(), cache.path());
    let cf = crate::clusterfile::parse_with_env(
        "Clusterfile",
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: layout\n  env: [Shared=cluster]\n  hosts:\n    - ips: [10.0.0.1]\n      roles: [master]\n      env: [HostLevel=host]\n",
        &|_| None,
    )
    .unwrap();
    let host = cf.host("10.0.0.1").unwrap();
    let facts = Facts {
        arch: "x86_64".into(),
        hostname: "m0".into(),
        ..Facts::default()
    };
    let tree = r.merged("amd64", &[]).unwrap();
    let plan = build_plan_with_image(
        &cf,
        host,
        &facts,
        &tree,
        r.image_env(),
        true,
        Timeouts::default(),
    )
    .unwrap();
    assert_eq!(plan.env["FromImage"], "image");
    assert_eq!(plan.env["Shared"], "cluster");
    assert_eq!(plan.env["HostLevel"], "host");
    assert_eq!(plan.env["HostIP"], "10.0.0.1");
}

#[test]
fn plain_archives_with_image_like_names_stay_plain_trees() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // A manifest.json that is no docker manifest, an index.json without oci-layout.
    let plain = tar(&[
        ("manifest.json", T::Regular, "", 0o644, br#"{"apps":["a"]}"#),
        ("index.json", T::Regular, "", 0o644, b"{}"),
        ("etc/", T::Directory, "", 0o755, b""),
        ("etc/.wh.kept", T::Regular, "", 0o644, b"a plain file"),
    ]);
    fs::write(site.path().join("r.tar"), &plain).unwrap();
    let r = resolve("r.tar", site.path(), cache.path());
    assert_eq!(
        snapshot(r.dir()),
        expect(&[
            ("etc", "d 755"),
            ("etc/.wh.kept", "f 644 a plain file"),
            ("index.json", "f 644 {}"),
            ("manifest.json", r#"f 644 {"apps":["a"]}"#),
        ])
    );
    assert!(r.image_env().base.is_empty());
    let entries = cache_entries(cache.path());
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].starts_with("image-"), "{entries:?}");
}

#[test]
fn a_whiteout_of_a_link_removes_the_link_and_a_top_level_opaque_marker_hides_everything_below() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let lower = tar(&[
        ("etc/", T::Directory, "", 0o755, b""),
        ("etc/a", T::Regular, "", 0o644, b"a"),
        ("lnk", T::Symlink, "etc", 0o777, b""),
    ]);
    let cases = [
        (
            "link",
            tar(&[(".wh.lnk", T::Regular, "", 0o644, b"")]),
            expect(&[("etc", "d 755"), ("etc/a", "f 644 a")]),
        ),
        (
            "opaque",
            tar(&[
                ("./.wh..wh..opq", T::Regular, "", 0o644, b""),
                ("only", T::Regular, "", 0o644, b"o"),
            ]),
            expect(&[("only", "f 644 o")]),
        ),
    ];
    for (name, upper, want) in cases {
        let mut l = Layout::default();
        let m = l.image(
            "amd64",
            &[],
            &[
                (lower.clone(), Compression::None),
                (upper, Compression::None),
            ],
        );
        l.index(&[(m, None)]);
        l.write_to(&site.path().join(name)).unwrap();
        let r = resolve(name, site.path(), cache.path());
        assert_eq!(snapshot(r.dir()), want, "{name}");
    }
}
