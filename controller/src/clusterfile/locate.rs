//! Finding where a node is written, for errors found after parsing (a duplicate IP, a
//! missing master, an invalid env key…).
//!
//! yaml_serde does not expose spans, but it does attach the position of the node being
//! read to any error raised while reading that node. So to locate `spec.hosts[1].ips[0]`
//! the document is read again with a visitor that walks down that path, skipping
//! everything else, and raises an error as soon as it stands on the target; the error's
//! location is the node's position. Errors are rare, so the second read costs nothing in
//! the normal case, and positions come from the same parser that read the values.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// One step of a path into a YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seg {
    /// A mapping key the code names.
    Key(&'static str),
    /// A mapping key found in the file (an unknown field, a path from the reader).
    Named(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a document, and whether an error is about the key of its last mapping step
/// (e.g. a field that must be removed) rather than the value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(super) struct NodePath {
    pub segs: Vec<Seg>,
    pub at_key: bool,
}

impl NodePath {
    /// The path of a value.
    pub(super) fn value(segs: &[Seg]) -> NodePath {
        NodePath {
            segs: segs.to_vec(),
            at_key: false,
        }
    }

    /// The path of a mapping key (the last segment must be a [`Seg::Key`]).
    pub(super) fn key(segs: &[Seg]) -> NodePath {
        NodePath {
            segs: segs.to_vec(),
            at_key: true,
        }
    }
}

/// Renders a path the way yaml_serde renders paths in its own errors: `spec.hosts[1].ips`.
pub(super) fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Named(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The 1-based line and column of the node at `path` in document `doc` of `text`. When the
/// path does not exist (a missing field), the nearest existing ancestor is given; `(1, 1)`
/// when not even the document can be read.
pub(super) fn locate(text: &str, doc: usize, path: &NodePath) -> (usize, usize) {
    let mut segs = path.segs.clone();
    let mut at_key = path.at_key;
    loop {
        if let Some(pos) = try_locate(text, doc, &segs, at_key) {
            return pos;
        }
        if segs.pop().is_none() {
            return (1, 1);
        }
        at_key = false;
    }
}

fn try_locate(text: &str, doc: usize, segs: &[Seg], at_key: bool) -> Option<(usize, usize)> {
    let de = yaml_serde::Deserializer::from_str(text).nth(doc)?;
    match (Seek { segs, at_key }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

/// The marker error raised on the target; only its location is used.
fn found<E: de::Error>() -> E {
    E::custom("found")
}

/// Walks down `segs`; returns `Ok(())` when the path does not exist, an error (carrying the
/// position) when it stands on the target.
struct Seek<'a> {
    segs: &'a [Seg],
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Seek<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.segs.is_empty() {
            Err(found())
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.segs.split_first() else {
            return Err(found());
        };
        let mut index = 0;
        // Every element must be consumed: the parser checks the sequence's length when the
        // visitor returns and would report that, at the wrong place, as the answer.
        loop {
            let more = if *first == Seg::Index(index) {
                seq.next_element_seed(Seek {
                    segs: rest,
                    at_key: self.at_key,
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.segs.split_first() else {
            return Err(found());
        };
        let want = match first {
            Seg::Key(k) => Some(*k),
            Seg::Named(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        };
        let raise_on_key = rest.is_empty() && self.at_key;
        while let Some(hit) = map.next_key_seed(KeySeek {
            want,
            raise: raise_on_key,
        })? {
            if hit {
                map.next_value_seed(Seek {
                    segs: rest,
                    at_key: self.at_key,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads a mapping key; `Ok(true)` when it is the wanted one, an error when it is and the
/// key itself is the target.
struct KeySeek<'a> {
    want: Option<&'a str>,
    raise: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeek<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeek<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        let hit = self.want == Some(v);
        if hit && self.raise {
            return Err(found());
        }
        Ok(hit)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
a: 1
---
spec:
  hosts:
    - ips: [10.0.0.1, 10.0.0.2]
      roles: [master]
    - ips:
        - 10.0.0.3
  name: x
";

    fn at(doc: usize, segs: &[Seg], key: bool) -> (usize, usize) {
        let path = if key {
            NodePath::key(segs)
        } else {
            NodePath::value(segs)
        };
        locate(TEXT, doc, &path)
    }

    #[test]
    fn nodes_keys_and_fallbacks() {
        use Seg::{Index as I, Key as K};
        assert_eq!(at(0, &[K("a")], false), (1, 4));
        assert_eq!(at(0, &[K("a")], true), (1, 1));
        assert_eq!(
            at(1, &[K("spec"), K("hosts"), I(0), K("ips"), I(1)], false),
            (5, 23)
        );
        assert_eq!(
            at(1, &[K("spec"), K("hosts"), I(1), K("ips"), I(0)], false),
            (8, 11)
        );
        assert_eq!(at(1, &[K("spec"), K("name")], true), (9, 3));
        assert_eq!(at(1, &[K("spec"), K("hosts")], true), (4, 3));
        // A missing field points at the mapping that lacks it.
        assert_eq!(
            at(1, &[K("spec"), K("hosts"), I(1), K("env")], true),
            (7, 7)
        );
        assert_eq!(at(1, &[K("spec"), K("hosts"), I(5)], false), (5, 5));
        assert_eq!(at(7, &[K("x")], false), (1, 1));
        assert_eq!(
            render(&[K("spec"), K("hosts"), I(1), K("ips")]),
            "spec.hosts[1].ips"
        );
    }
}
