//! The manifest tests: what a received manifest may hold, and its digest.

use super::*;

fn dir(p: &str) -> Entry {
    Entry {
        path: p.into(),
        mode: 0o755,
        kind: EntryKind::Dir,
    }
}

fn link(p: &str, target: &str) -> Entry {
    Entry {
        path: p.into(),
        mode: 0o777,
        kind: EntryKind::Symlink {
            target: target.into(),
        },
    }
}

/// What an agent receives is checked by where its links lead in the tree it will
/// build, not by their text: the chain from the report places a link that, on the host,
/// resolves to `/etc/shadow` from `<dataRoot>/<cluster>/rootfs`.
#[test]
fn validate_resolves_links_through_the_tree() {
    let chain = Manifest {
        entries: vec![
            dir("a"),
            dir("a/b"),
            dir("a/b/c"),
            dir("a/b/c/d"),
            link("a/b/c/d/up", "../../../.."),
            dir("etc"),
            link("etc/shadow", "../a/b/c/d/up/../../../../etc/shadow"),
        ],
    };
    let err = chain.validate().unwrap_err().to_string();
    assert_eq!(
        err,
        r#"symlink "etc/shadow" -> "../a/b/c/d/up/../../../../etc/shadow" leads outside the rootfs (to "<rootfs>/../../../../etc/shadow", via "a/b/c/d/up" -> "../../../.."); every link must resolve to a path inside the rootfs"#
    );
    // Forward references are fine: the link is resolved against the whole manifest.
    let fine = Manifest::from_entries(vec![
        link("bin", "opt/bin"),
        dir("opt"),
        dir("opt/bin"),
        link("x", "bin/../opt"),
    ]);
    assert!(fine.is_ok(), "{fine:?}");
    let looped = Manifest::from_entries(vec![link("a", "b"), link("b", "a/x")]);
    assert!(
        looped
            .unwrap_err()
            .to_string()
            .contains("more than 40 links followed"),
    );
}

#[test]
fn validate_refuses_control_characters_in_names_and_targets() {
    let file = |p: &str| Entry {
        path: p.into(),
        mode: 0o755,
        kind: EntryKind::File {
            size: 0,
            sha256: "0".repeat(64),
        },
    };
    let m = Manifest {
        entries: vec![dir("bin"), file("bin/evil\nname")],
    };
    assert_eq!(
        m.validate().unwrap_err().to_string(),
        r#""bin/evil\nname": contains the control character U+000A; rename it (names with control characters are refused)"#
    );
    let m = Manifest {
        entries: vec![link("l", "a\u{1b}[2Jb")],
    };
    let err = m.validate().unwrap_err().to_string();
    assert!(err.contains("U+001B") && !err.contains('\u{1b}'), "{err}");
}

#[test]
fn validate_rejects_received_garbage() {
    let file = |p: &str| Entry {
        path: p.into(),
        mode: 0o644,
        kind: EntryKind::File {
            size: 0,
            sha256: "0".repeat(64),
        },
    };
    let m = Manifest {
        entries: vec![file("../x")],
    };
    assert!(m.validate().is_err());
    let m = Manifest {
        entries: vec![file("dir/x")],
    };
    assert!(
        m.validate()
            .unwrap_err()
            .to_string()
            .contains("parent directory")
    );
    let m = Manifest {
        entries: vec![file("b"), file("a")],
    };
    assert!(m.validate().is_err());
}

#[test]
fn without_respects_component_boundaries() {
    let d = |p: &str| Entry {
        path: p.into(),
        mode: 0o755,
        kind: EntryKind::Dir,
    };
    let m = Manifest::from_entries(vec![
        d("registry"),
        d("registry/docker"),
        d("registry2"),
        d("etc"),
    ])
    .unwrap();
    let kept: Vec<_> = m
        .without("registry")
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(kept, ["etc", "registry2"]);
}

#[test]
fn digest_changes_with_content_and_mode() {
    let f = |mode, h: char| {
        Manifest::from_entries(vec![Entry {
            path: "a".into(),
            mode,
            kind: EntryKind::File {
                size: 1,
                sha256: h.to_string().repeat(64),
            },
        }])
        .unwrap()
    };
    assert_eq!(f(0o644, 'a').digest(), f(0o644, 'a').digest());
    assert_ne!(f(0o644, 'a').digest(), f(0o755, 'a').digest());
    assert_ne!(f(0o644, 'a').digest(), f(0o644, 'b').digest());
}
