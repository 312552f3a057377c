//! What an image may not do: blobs that do not match their digests, layers or whiteouts
//! that reach outside the tree, env values no process can carry. Each refusal names the
//! archive, the blob and the entry, and leaves nothing in the cache.

use super::fixtures::{Layout, tar};
use super::{ENV, cache_entries, layers};
use crate::rootfs::{UnpackLimits, resolve_with};
use std::fs;
use std::path::Path;
use tar::EntryType as T;
use testenv::image_layout::LayerCompression as Compression;

/// Resolves the OCI archive of `layout`; the error text.
fn refused(layout: &Layout) -> (String, String, tempfile::TempDir) {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let archive = site.path().join("image.tar");
    fs::write(&archive, layout.tar("")).unwrap();
    let err = resolve_with(
        "image.tar",
        site.path(),
        cache.path(),
        &UnpackLimits::default(),
    )
    .unwrap_err()
    .to_string();
    let left: Vec<String> = cache_entries(cache.path())
        .into_iter()
        .filter(|e| e != "hashes.json")
        .collect();
    assert!(left.is_empty(), "{err}: left {left:?}");
    (
        err,
        fs::canonicalize(&archive).unwrap().display().to_string(),
        cache,
    )
}

/// The descriptor hexes of a manifest's config and layers, from the layout's files.
fn manifest_parts(l: &Layout, manifest_rel: &str) -> (String, Vec<String>) {
    let m: serde_json::Value = serde_json::from_slice(&l.files[manifest_rel]).unwrap();
    let hex = |v: &serde_json::Value| v["digest"].as_str().unwrap()[7..].to_string();
    let layers = m["layers"].as_array().unwrap().iter().map(hex).collect();
    (hex(&m["config"]), layers)
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let mut l = Layout::default();
    let m = l.image("amd64", ENV, &layers());
    l.index(&[(m.clone(), None)]);
    let (config, layer_hexes) = manifest_parts(&l, &m.rel());

    let mut bad_layer = Layout {
        files: l.files.clone(),
    };
    let rel = format!("blobs/sha256/{}", layer_hexes[1]);
    let blob = bad_layer.files.get_mut(&rel).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0xff;
    let (err, archive, _c) = refused(&bad_layer);
    assert!(
        err.starts_with(&format!(
            "{archive}: layer \"{rel}\": its content has sha256:"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("not sha256:{}", layer_hexes[1])),
        "{err}"
    );

    let mut bad_config = Layout {
        files: l.files.clone(),
    };
    let rel = format!("blobs/sha256/{config}");
    bad_config.files.get_mut(&rel).unwrap()[0] = b' ';
    let (err, archive, _c) = refused(&bad_config);
    assert!(
        err.starts_with(&format!(
            "{archive}: image config \"{rel}\": its content has"
        )),
        "{err}"
    );

    let mut short = Layout {
        files: l.files.clone(),
    };
    let rel = format!("blobs/sha256/{}", layer_hexes[0]);
    short.files.get_mut(&rel).unwrap().pop();
    let (err, _, _c) = refused(&short);
    assert!(err.contains(&format!("layer \"{rel}\": it is ")), "{err}");
    assert!(err.contains("but the image says"), "{err}");

    let mut missing = Layout {
        files: l.files.clone(),
    };
    missing
        .files
        .remove(&format!("blobs/sha256/{}", layer_hexes[2]));
    let (err, _, _c) = refused(&missing);
    assert!(
        err.contains("it is missing; the image is incomplete"),
        "{err}"
    );
}

#[test]
fn a_docker_layer_that_does_not_match_its_diff_id_is_refused() {
    let mut d = Layout::docker("amd64", ENV, &[(super::lower_layer(), Compression::None)]);
    let rel = format!("{:064x}/layer.tar", 0);
    d.files.get_mut(&rel).unwrap()[0] = b'x';
    let (err, archive, _c) = refused(&d);
    assert!(
        err.starts_with(&format!("{archive}: layer \"{rel}\": its content has")),
        "{err}"
    );
}

#[test]
fn layers_and_whiteouts_that_leave_the_tree_are_refused_naming_archive_blob_and_entry() {
    let lower = tar(&[
        ("etc/", T::Directory, "", 0o755, b""),
        ("etc/a", T::Regular, "", 0o644, b"a"),
        ("lnk", T::Symlink, "etc", 0o777, b""),
    ]);
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("../x", tar(&[("../x", T::Regular, "", 0o644, b"x")]), ".."),
        (
            "/abs",
            tar(&[("/abs", T::Regular, "", 0o644, b"x")]),
            "absolute",
        ),
        (
            "out",
            tar(&[("out", T::Symlink, "../../etc/passwd", 0o777, b"")]),
            "",
        ),
        (
            "../.wh.x",
            tar(&[("../.wh.x", T::Regular, "", 0o644, b"")]),
            "..",
        ),
        (
            "etc/.wh...",
            tar(&[("etc/.wh...", T::Regular, "", 0o644, b"")]),
            "outside its own directory",
        ),
        (
            "lnk/.wh.a",
            tar(&[("lnk/.wh.a", T::Regular, "", 0o644, b"")]),
            "below a symlink",
        ),
        (
            "lnk/new",
            tar(&[("lnk/new", T::Regular, "", 0o644, b"x")]),
            "below a symlink",
        ),
    ];
    for (entry, upper, reason) in cases {
        let mut l = Layout::default();
        let m = l.image(
            "amd64",
            &[],
            &[
                (lower.clone(), Compression::None),
                (upper.clone(), Compression::Gzip),
            ],
        );
        l.index(&[(m.clone(), None)]);
        let (_, layer_hexes) = manifest_parts(&l, &m.rel());
        let (err, archive, _c) = refused(&l);
        let named = format!(
            "{archive}:blobs/sha256/{}: entry \"{entry}\": ",
            layer_hexes[1]
        );
        assert!(err.starts_with(&named), "{entry}: {err}");
        assert!(err.contains(reason), "{entry}: {err}");
    }
}

#[test]
fn an_env_value_with_a_nul_is_refused_naming_the_key() {
    let one = tar(&[("f", T::Regular, "", 0o644, b"x")]);
    let mut l = Layout::default();
    let m = l.image(
        "amd64",
        &["GOOD=1", "BAD=a\0b"],
        &[(one, Compression::None)],
    );
    l.index(&[(m, None)]);
    let (err, archive, _c) = refused(&l);
    assert!(
        err.starts_with(&format!("{archive}: image config ")),
        "{err}"
    );
    assert!(err.contains("\"BAD\" holds a NUL byte"), "{err}");
}

#[test]
fn an_image_named_in_a_layout_directory_cannot_reach_outside_it() {
    // A docker manifest naming a layer outside the archive's tree.
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut d = Layout::docker(
        "amd64",
        &[],
        &[(
            tar(&[("f", T::Regular, "", 0o644, b"x")]),
            Compression::None,
        )],
    );
    let manifest: serde_json::Value = serde_json::from_slice(&d.files["manifest.json"]).unwrap();
    let mut manifest = manifest;
    manifest[0]["Layers"][0] = "../../outside/layer.tar".into();
    d.files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    let dir = site.path().join("saved");
    d.write_to(&dir).unwrap();
    fs::create_dir_all(site.path().join("outside")).unwrap();
    fs::write(site.path().join("outside/layer.tar"), b"x").unwrap();
    let err = resolve_with("saved", site.path(), cache.path(), &UnpackLimits::default())
        .unwrap_err()
        .to_string();
    let dir = fs::canonicalize(Path::new(&dir)).unwrap();
    assert!(
        err.starts_with(&format!(
            "{}: layer \"../../outside/layer.tar\": cannot open it",
            dir.display()
        )),
        "{err}"
    );
}
