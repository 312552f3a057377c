//! Reading one document into the closed shape of its kind, finding every shape error in it
//! (unknown fields, wrong types) in one run rather than one per run.
//!
//! serde stops at the first error. So the document is read once from the text, which gives
//! the reader's own position and wording for the first error; then the node that error is
//! about is set aside in the document's loose value and the value is read again, and so on.
//! Errors found on the value carry its path, and the path gives the position (`locate`).

use super::docs::{Failure, Problem, reword};
use super::locate::{NodePath, Seg, render};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use yaml_serde::Value;

/// How many shape errors one document may add before reading it stops.
const MAX_PER_DOC: usize = 50;

/// Reads document `doc` of `text` from `de` into `T`. Every shape error goes to `errors`.
/// The result is `Some` when the document is usable for the checks that follow: it read
/// without error, or every error was an unknown field (setting one aside changes nothing
/// else). After a wrong type the value is `None`, so no check runs on a guess.
pub(super) fn read<T: DeserializeOwned>(
    text: &str,
    doc: usize,
    de: yaml_serde::Deserializer<'_>,
    errors: &mut Vec<Failure>,
) -> Option<T> {
    let first = match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => return Some(v),
        Err(e) => e,
    };
    let mut path = segments(first.path());
    let mut harmless = is_unknown_field(&first.inner().to_string());
    errors.push(Failure::Yaml(first.into_inner()));
    let mut value = loose(text, doc)?;
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    for _ in 1..MAX_PER_DOC {
        let segs = path.take()?;
        if !remove(&mut value, &segs) {
            return None;
        }
        removed.push(segs);
        let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return harmless.then_some(v),
            Err(e) => e,
        };
        let segs = segments(e.path());
        if segs.as_ref().is_some_and(|s| removed.contains(s)) {
            // The node set aside is what the shape now lacks: nothing new to say.
            return None;
        }
        let message = e.inner().to_string();
        if let Some(field) = missing_field(&message) {
            // A required field that was set aside above is not missing from the file.
            let ours = segs.as_ref().is_some_and(|s| {
                let mut full = s.clone();
                full.push(Seg::Named(field.to_string()));
                removed.contains(&full)
            });
            if !ours {
                errors.push(problem(doc, segs.unwrap_or_default(), &message, false));
            }
            return None;
        }
        let unknown = is_unknown_field(&message);
        harmless &= unknown;
        let Some(here) = segs else {
            errors.push(problem(doc, Vec::new(), &message, false));
            return None;
        };
        errors.push(problem(doc, here.clone(), &message, unknown));
        path = Some(here);
    }
    None
}

/// The document's loose value, read again (only on the error path).
fn loose(text: &str, doc: usize) -> Option<Value> {
    let de = yaml_serde::Deserializer::from_str(text).nth(doc)?;
    Value::deserialize(de).ok()
}

/// A problem at `segs`, worded as the reader words its own: `parent: unknown field …` at
/// the key for an unknown field, `path: invalid type …` at the value otherwise.
fn problem(doc: usize, segs: Vec<Seg>, message: &str, unknown: bool) -> Failure {
    let shown = if unknown {
        &segs[..segs.len().saturating_sub(1)]
    } else {
        &segs[..]
    };
    let where_ = render(shown);
    let message = if where_.is_empty() {
        reword(message.to_string())
    } else {
        reword(format!("{where_}: {message}"))
    };
    let path = if unknown {
        NodePath::key(&segs)
    } else {
        NodePath::value(&segs)
    };
    Failure::At(Problem { doc, path, message })
}

/// The path serde was at, as segments; `None` when part of it cannot be named.
fn segments(path: &serde_path_to_error::Path) -> Option<Vec<Seg>> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|s| match s {
            Segment::Map { key } => Some(Seg::Named(key.clone())),
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn is_unknown_field(message: &str) -> bool {
    message.contains("unknown field `")
}

/// The field a `missing field `x`` message names.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.split("missing field `").nth(1)?;
    rest.split('`').next()
}

/// Sets aside the node at `segs`; `false` when there is none (reading must stop, or it
/// would find the same error again).
fn remove(value: &mut Value, segs: &[Seg]) -> bool {
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parents {
        let next = match (seg, node) {
            (Seg::Named(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Seg::Key(k), Value::Mapping(m)) => m.get_mut(*k),
            (Seg::Index(i), Value::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        node = next;
    }
    match (last, node) {
        (Seg::Named(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Seg::Key(k), Value::Mapping(m)) => m.remove(*k).is_some(),
        // An element cannot be taken out without renumbering the rest; null reads as
        // "absent" for optional elements and as a type error for the others, which stops.
        (Seg::Index(i), Value::Sequence(s)) => match s.get_mut(*i) {
            Some(v) if !v.is_null() => {
                *v = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}
