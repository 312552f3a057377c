//! Link resolution tests: chains, cycles, escapes and the directory handle.

use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;

/// A tree from `path: kind` pairs: `d` a directory, `f` a file, `-> t` a link.
struct Mem(BTreeMap<String, Node>);

fn tree(items: &[(&str, &str)]) -> Mem {
    Mem(items
        .iter()
        .map(|(p, k)| {
            let node = match *k {
                "d" => Node::Dir,
                "f" => Node::File,
                link => Node::Link(link.strip_prefix("-> ").unwrap().to_string()),
            };
            (p.to_string(), node)
        })
        .collect())
}

impl Lookup for Mem {
    fn node(&self, path: &str) -> io::Result<Node> {
        Ok(self.0.get(path).cloned().unwrap_or(Node::Missing))
    }
}

fn res(t: &Mem, link: &str) -> Result<Resolved, LinkError> {
    let Some(Node::Link(target)) = t.0.get(link) else {
        panic!("{link} is not a link of the tree")
    };
    resolve(t, link, target)
}

fn ok(t: &Mem, link: &str) -> (String, bool) {
    let r = res(t, link).unwrap_or_else(|e| panic!("{link}: {e}"));
    (r.path, r.exists)
}

fn err(t: &Mem, link: &str) -> String {
    match res(t, link) {
        Ok(r) => panic!("{link} resolved to {r:?}, want a refusal"),
        Err(e) => e.to_string(),
    }
}

/// The chain of the report: each link is inside by its text, the second leaves the tree
/// through the first.
#[test]
fn a_chain_that_is_inside_by_its_text_is_refused() {
    let t = tree(&[
        ("a", "d"),
        ("a/b", "d"),
        ("a/b/c", "d"),
        ("a/b/c/d", "d"),
        ("a/b/c/d/up", "-> ../../../.."),
        ("amd64", "-> a/b/c/d/up/../../../../outside"),
    ]);
    assert_eq!(ok(&t, "a/b/c/d/up"), (String::new(), true));
    assert_eq!(
        err(&t, "amd64"),
        r#"symlink "amd64" -> "a/b/c/d/up/../../../../outside" leads outside the rootfs (to "<rootfs>/../../../../outside", via "a/b/c/d/up" -> "../../../.."); every link must resolve to a path inside the rootfs"#
    );
}

#[test]
fn dotdot_after_a_link_steps_back_from_where_the_link_led() {
    let t = tree(&[
        ("bin", "d"),
        ("opt", "d"),
        ("opt/k8s", "d"),
        ("opt/k8s/bin", "d"),
        ("opt/k8s/bin/kubectl", "f"),
        ("bin/k8s", "-> ../opt/k8s/bin"),
        // By its text `bin/k8s/..` is `bin`; through the link it is `opt/k8s`.
        ("etc", "-> bin/k8s/../bin/kubectl"),
        ("up2", "-> bin/k8s/../../.."),
        ("up3", "-> bin/k8s/../../../.."),
    ]);
    assert_eq!(ok(&t, "etc"), ("opt/k8s/bin/kubectl".into(), true));
    assert_eq!(ok(&t, "up2"), (String::new(), true));
    let e = err(&t, "up3");
    assert!(
        e.contains(r#"(to "<rootfs>/..", via "bin/k8s" -> "../opt/k8s/bin")"#),
        "{e}"
    );
}

#[test]
fn absolute_targets_are_refused_anywhere_in_the_chain() {
    let t = tree(&[
        ("etc", "d"),
        ("etc/shadow", "-> /etc/shadow"),
        ("etc/alias", "-> shadow"),
        ("etc/deep", "-> alias/../x"),
    ]);
    assert!(
        err(&t, "etc/shadow").contains(r#"leads outside the rootfs (to "/etc/shadow")"#),
        "{}",
        err(&t, "etc/shadow")
    );
    assert_eq!(
        err(&t, "etc/alias"),
        r#"symlink "etc/alias" -> "shadow" leads outside the rootfs (to "/etc/shadow", via "etc/shadow" -> "/etc/shadow"); every link must resolve to a path inside the rootfs"#
    );
    let e = err(&t, "etc/deep");
    assert!(
        e.contains(
            r#"(to "/etc/x", via "etc/alias" -> "shadow", then "etc/shadow" -> "/etc/shadow")"#
        ),
        "{e}"
    );
}

#[test]
fn links_to_links_resolve_to_the_end_of_the_chain() {
    let t = tree(&[
        ("cri", "d"),
        ("cri/containerd", "f"),
        ("bin", "d"),
        ("bin/a", "-> b"),
        ("bin/b", "-> ../cri"),
        ("bin/c", "-> a/containerd"),
    ]);
    assert_eq!(ok(&t, "bin/a"), ("cri".into(), true));
    assert_eq!(ok(&t, "bin/c"), ("cri/containerd".into(), true));
}

#[test]
fn loops_are_refused_with_the_cycle() {
    let t = tree(&[
        ("a", "-> b"),
        ("b", "-> a"),
        ("self", "-> self"),
        ("d", "d"),
        ("d/x", "-> ../d/x/y"),
    ]);
    let e = err(&t, "a");
    assert_eq!(
        e,
        r#"symlink "a" -> "b" does not resolve: more than 40 links followed ("b" -> "a", "a" -> "b", …); remove the loop"#
    );
    assert!(err(&t, "self").contains("more than 40 links"));
    assert!(err(&t, "d/x").contains("more than 40 links"));
}

#[test]
fn dangling_links_are_judged_by_the_text_of_their_missing_part() {
    let t = tree(&[
        ("etc", "d"),
        ("etc/file", "f"),
        ("etc/later", "-> ../var/lib/x"),
        ("etc/ok", "-> missing/../file"),
        ("etc/out", "-> missing/../../.."),
        ("etc/through-file", "-> file/../../.."),
        ("etc/empty", "-> "),
    ]);
    assert_eq!(ok(&t, "etc/later"), ("var/lib/x".into(), false));
    assert_eq!(ok(&t, "etc/ok"), ("etc/file".into(), false));
    assert!(err(&t, "etc/out").contains(r#"(to "<rootfs>/..")"#));
    assert!(err(&t, "etc/through-file").contains("leads outside"));
    assert_eq!(ok(&t, "etc/empty"), ("etc".into(), true));
}

#[test]
fn control_characters_in_targets_are_refused() {
    let t = tree(&[("a", "-> x\ny"), ("b", "-> a")]);
    assert_eq!(
        err(&t, "a"),
        r#"symlink "a" -> "x\ny": the target contains the control character U+000A; links with control characters are refused"#
    );
    assert!(err(&t, "b").contains(r#""a -> x\ny""#), "{}", err(&t, "b"));
}

#[test]
fn a_directory_on_disk_is_resolved_without_leaving_it() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("rootfs");
    std::fs::create_dir_all(root.join("a/b/c/d")).unwrap();
    std::fs::create_dir_all(top.path().join("outside/.ssh")).unwrap();
    symlink("../../../..", root.join("a/b/c/d/up")).unwrap();
    symlink("a/b/c/d/up/../../../../outside", root.join("amd64")).unwrap();
    symlink("a/b", root.join("ok")).unwrap();
    let t = DirTree::open(&root).unwrap();
    assert_eq!(
        resolve(&t, "ok", "a/b").unwrap(),
        Resolved {
            path: "a/b".into(),
            exists: true
        }
    );
    let e = resolve(&t, "amd64", "a/b/c/d/up/../../../../outside")
        .unwrap_err()
        .to_string();
    // Four `..` above the tree's top, as the kernel would walk them (stopping at `/`).
    let mut leads = root.clone();
    for _ in 0..4 {
        leads.pop();
    }
    assert!(
        e.contains(&format!(
            "(to {}, via",
            quote(&leads.join("outside").display().to_string())
        )),
        "{e}"
    );
    // cap-std itself refuses to open the escaping path.
    let opened = t.dir().open_dir("amd64");
    assert!(opened.is_err(), "cap-std followed the link out of the tree");
}
