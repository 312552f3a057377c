//! The node walk: every document read once by a visitor that counts nodes (aliases
//! expanded) and depth, so an alias bomb or deep block nesting stops with the parser's
//! position before any later pass builds values of it.

use super::{MAX_DEPTH, MAX_NODES, depth_message};
use crate::clusterfile::docs::Failure;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// Reads every document of `text` once, counting nodes (aliases expanded) and depth; the
/// first problem, a YAML error included, is returned with the parser's position.
pub(in crate::clusterfile) fn walk(text: &str) -> Result<(), Failure> {
    let nodes = Cell::new(0);
    for de in yaml_serde::Deserializer::from_str(text) {
        Walk {
            nodes: &nodes,
            depth: 0,
        }
        .deserialize(de)?;
    }
    Ok(())
}

/// A visitor that reads any node and everything under it, counting.
#[derive(Clone, Copy)]
struct Walk<'a> {
    nodes: &'a Cell<usize>,
    depth: usize,
}

impl Walk<'_> {
    /// Counts one node; an error (placed by the parser at this node) past a bound.
    fn count<E: de::Error>(self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > MAX_NODES {
            return Err(E::custom(format!(
                "more than {MAX_NODES} YAML nodes, counting each alias as the nodes it repeats; expected a Clusterfile of ordinary size (an alias used many times on a large anchor multiplies it)"
            )));
        }
        Ok(())
    }

    /// Counts a collection and returns the walker for its children, one level deeper.
    fn inner<E: de::Error>(self) -> Result<Self, E> {
        self.count()?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(depth_message()));
        }
        Ok(Walk {
            nodes: self.nodes,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.count()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.count()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.count()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        let ((), variant) = data.variant_seed(inner)?;
        de::VariantAccess::newtype_variant_seed(variant, inner)
    }
}
