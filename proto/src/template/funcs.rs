//! The functions templates may call: sealer's logic and comparison forms, base64, and a few
//! string helpers its rootfs trees use. Logic functions accept undefined keys (they are
//! false / ""); every other function refuses them, so a typo cannot vanish into output.
//!
//! A function that builds text first works out how large the result will be (or builds it
//! in a [`Capped`] string) and asks the [`Meter`], so an oversized result is refused before
//! it is allocated; reading its arguments costs steps.

use super::error::Pos;
use super::limits::{Capped, ITEM_OVERHEAD, Meter, text_len, too_big};
use super::value::Value;
use base64::Engine;
use std::fmt::Write as _;
use std::sync::Arc;

/// An error with the position of the offending argument, when known.
pub(super) type CallError = (Option<Pos>, String);

/// The supported function names, for error messages.
pub(super) const NAMES: &str = "and, or, not, eq, ne, lt, gt, len, default, b64enc, b64dec, printf, print, quote, squote, trim, upper, lower, replace, contains, hasPrefix, hasSuffix, splitList, join, toString";

/// Whether `name` is a function templates may call.
pub(super) fn is_known(name: &str) -> bool {
    NAMES.split(", ").any(|n| n == name)
}

/// The message for a call of a function templates may not use.
pub(super) fn unknown(name: &str) -> String {
    format!("unknown function {name:?}; supported: {NAMES}")
}

fn defined(args: &[(Value, Pos)]) -> Result<(), CallError> {
    for (v, p) in args {
        if let Value::Missing(key) = v {
            return Err((
                Some(*p),
                format!("undefined key {key:?}: define it in spec.env or the host's env"),
            ));
        }
    }
    Ok(())
}

fn arity(name: &str, args: &[(Value, Pos)], n: usize) -> Result<(), CallError> {
    if args.len() != n {
        return Err((
            None,
            format!("{name} takes {n} argument(s), got {}", args.len()),
        ));
    }
    Ok(())
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string result, once the meter has allowed its size.
fn built(name: &str, meter: &mut Meter, text: String) -> Result<Value, CallError> {
    meter.build(name, text.len()).map_err(|m| (None, m))?;
    Ok(Value::Str(Arc::from(text)))
}

/// Calls `name` with `args` (a piped value comes last), counting its cost on `meter`.
pub(super) fn call(
    name: &str,
    args: &[(Value, Pos)],
    meter: &mut Meter,
) -> Result<Value, CallError> {
    let given = args
        .iter()
        .map(|(v, _)| text_len(v))
        .fold(0, usize::saturating_add);
    meter.read(given).map_err(|m| (None, m))?;
    let s = |k: usize| args[k].0.text();
    Ok(match name {
        "and" => {
            if args.is_empty() {
                return Err((None, "and needs arguments".into()));
            }
            args.iter()
                .find(|(v, _)| !v.truthy())
                .unwrap_or(&args[args.len() - 1])
                .0
                .clone()
        }
        "or" => {
            if args.is_empty() {
                return Err((None, "or needs arguments".into()));
            }
            args.iter()
                .find(|(v, _)| v.truthy())
                .unwrap_or(&args[args.len() - 1])
                .0
                .clone()
        }
        "not" => {
            arity(name, args, 1)?;
            Value::Bool(!args[0].0.truthy())
        }
        "eq" => {
            if args.len() < 2 {
                return Err((None, "eq needs at least 2 arguments".into()));
            }
            let first = s(0);
            Value::Bool(args[1..].iter().any(|(v, _)| v.text() == first))
        }
        "ne" => {
            arity(name, args, 2)?;
            Value::Bool(s(0) != s(1))
        }
        "lt" | "gt" => {
            arity(name, args, 2)?;
            defined(args)?;
            let (a, b) = match (int(&args[0].0), int(&args[1].0)) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err((None, format!("{name} compares integers"))),
            };
            Value::Bool(if name == "lt" { a < b } else { a > b })
        }
        "default" => {
            // sprig's order: `default "x" .Key` or `.Key | default "x"`.
            arity(name, args, 2)?;
            if args[1].0.truthy() {
                args[1].0.clone()
            } else {
                args[0].0.clone()
            }
        }
        _ => {
            defined(args)?;
            plain(name, args, meter)?
        }
    })
}

fn plain(name: &str, args: &[(Value, Pos)], meter: &mut Meter) -> Result<Value, CallError> {
    let s = |k: usize| args[k].0.text();
    let check = |meter: &mut Meter, size: usize| meter.build(name, size).map_err(|m| (None, m));
    Ok(match name {
        "len" => {
            arity(name, args, 1)?;
            Value::Int(match &args[0].0 {
                Value::List(l) => l.len(),
                v => v.text().chars().count(),
            } as i64)
        }
        "b64enc" => {
            arity(name, args, 1)?;
            let text = s(0);
            check(meter, text.len().div_ceil(3).saturating_mul(4))?;
            Value::Str(Arc::from(
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            ))
        }
        "b64dec" => {
            arity(name, args, 1)?;
            // Decoding only shrinks: the meter counts the result, not a prediction.
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(0).trim())
                .map_err(|e| (Some(args[0].1), format!("b64dec: not base64: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                (
                    Some(args[0].1),
                    "b64dec: the decoded bytes are not UTF-8 text".to_string(),
                )
            })?;
            built(name, meter, text)?
        }
        "print" | "toString" => {
            let size = args
                .iter()
                .map(|(v, _)| text_len(v))
                .fold(0, usize::saturating_add);
            check(meter, size)?;
            Value::Str(
                args.iter()
                    .map(|(v, _)| v.text())
                    .collect::<String>()
                    .into(),
            )
        }
        "printf" => {
            if args.is_empty() {
                return Err((None, "printf needs a format".into()));
            }
            built(name, meter, printf(&s(0), &args[1..])?)?
        }
        "quote" | "squote" => {
            let mut out = Capped::default();
            for (k, (v, _)) in args.iter().enumerate() {
                let sep = if k == 0 { "" } else { " " };
                let text = v.text();
                let fits = if name == "quote" {
                    write!(out, "{sep}{text:?}").is_ok()
                } else {
                    write!(out, "{sep}'{text}'").is_ok()
                };
                if !fits {
                    return Err((None, too_big(name, None)));
                }
            }
            built(name, meter, out.into_string())?
        }
        "trim" => {
            arity(name, args, 1)?;
            built(name, meter, s(0).trim().to_string())?
        }
        "upper" | "lower" => {
            arity(name, args, 1)?;
            let text = s(0);
            let map = if name == "upper" {
                str::to_uppercase
            } else {
                str::to_lowercase
            };
            check(meter, mapped_len(&text, map))?;
            Value::Str(Arc::from(map(&text)))
        }
        "replace" => {
            arity(name, args, 3)?;
            let (old, new, text) = (s(0), s(1), s(2));
            check(meter, replaced_len(&old, &new, &text))?;
            Value::Str(Arc::from(text.replace(&*old, &new)))
        }
        "contains" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).contains(&*s(0)))
        }
        "hasPrefix" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).starts_with(&*s(0)))
        }
        "hasSuffix" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).ends_with(&*s(0)))
        }
        "splitList" => {
            arity(name, args, 2)?;
            let (sep, text) = (s(0), s(1));
            if text.is_empty() {
                Value::List(Arc::from(Vec::new()))
            } else {
                // Each element costs more than its text: size the list before making it.
                let items = if sep.is_empty() {
                    // Rust splits "ab" by "" into "", "a", "b", "".
                    text.chars().count() + 2
                } else {
                    text.matches(&*sep).count() + 1
                };
                let size = items
                    .saturating_mul(ITEM_OVERHEAD)
                    .saturating_add(text.len());
                meter.build(name, size).map_err(|m| {
                    (
                        None,
                        m.replacen(name, &format!("splitList (a list of {items} elements)"), 1),
                    )
                })?;
                Value::List(
                    text.split(&*sep)
                        .map(|p| Value::Str(Arc::from(p)))
                        .collect::<Vec<_>>()
                        .into(),
                )
            }
        }
        "join" => {
            arity(name, args, 2)?;
            match &args[1].0 {
                Value::List(l) => {
                    let sep = s(0);
                    let size = l
                        .iter()
                        .map(text_len)
                        .fold(0, usize::saturating_add)
                        .saturating_add(sep.len().saturating_mul(l.len().saturating_sub(1)));
                    check(meter, size)?;
                    Value::Str(Arc::from(
                        l.iter().map(Value::text).collect::<Vec<_>>().join(&*sep),
                    ))
                }
                Value::Str(_) => args[1].0.clone(),
                other => Value::Str(Arc::from(&*other.text())),
            }
        }
        "template" | "define" | "block" | "call" | "index" | "slice" | "html" | "js"
        | "urlquery" => {
            return Err((
                None,
                format!("function {name:?} is not supported; supported: {NAMES}"),
            ));
        }
        other => {
            return Err((
                None,
                format!("unknown function {other:?}; supported: {NAMES}"),
            ));
        }
    })
}

/// The length of `map(text)` for a case mapping, which can lengthen text (ß → SS), found
/// by mapping a MiB at a time so that sizing never holds more than a few MiB. Chunks are
/// cut at char boundaries; lower's final-sigma rule only swaps two letters of equal
/// length, so the sum is exact.
fn mapped_len(text: &str, map: fn(&str) -> String) -> usize {
    const CHUNK: usize = 1 << 20;
    let mut total = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = CHUNK.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        total = total.saturating_add(map(&rest[..end]).len());
        rest = &rest[end..];
    }
    total
}

/// The length of `text.replace(old, new)`, without building it.
fn replaced_len(old: &str, new: &str, text: &str) -> usize {
    // An empty pattern matches at every char boundary, both ends included.
    let hits = if old.is_empty() {
        text.chars().count() + 1
    } else {
        text.matches(old).count()
    };
    (text.len() - hits * old.len()).saturating_add(hits.saturating_mul(new.len()))
}

/// Go's `printf` for the verbs rootfs templates use; the result is built in a [`Capped`]
/// string, so a format that repeats a long argument stops at the limit.
fn printf(format: &str, args: &[(Value, Pos)]) -> Result<String, CallError> {
    let mut out = Capped::default();
    let overflow = || (None, too_big("printf", None));
    let mut next = args.iter();
    let mut chars = format.chars();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        if c != '%' {
            if !out.push(c.encode_utf8(&mut buf)) {
                return Err(overflow());
            }
            continue;
        }
        let fits = match chars.next() {
            Some('%') => out.push("%"),
            Some(verb @ ('s' | 'd' | 'v' | 'q')) => {
                let Some((v, _)) = next.next() else {
                    return Err((None, format!("printf: %{verb} has no argument")));
                };
                match verb {
                    'q' => write!(out, "{:?}", v.text()).is_ok(),
                    'd' => match int(v) {
                        Some(n) => out.push(&n.to_string()),
                        None => {
                            return Err((
                                None,
                                format!("printf: %d needs an integer, got {}", v.preview()),
                            ));
                        }
                    },
                    _ => out.push(&v.text()),
                }
            }
            other => {
                return Err((
                    None,
                    format!(
                        "printf: unsupported verb %{}; use %s, %d, %v, %q",
                        other.map(String::from).unwrap_or_default()
                    ),
                ));
            }
        };
        if !fits {
            return Err(overflow());
        }
    }
    Ok(out.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_what_is_built() {
        // Over a MiB of two-byte letters, so chunks are cut next to char boundaries, and a
        // final sigma, which lower-cases differently at a word's end.
        let text = format!("{}ΣΑΣ ß İ x", "ΐ".repeat(700_001));
        for map in [str::to_uppercase, str::to_lowercase] {
            assert_eq!(mapped_len(&text, map), map(&text).len());
        }
        for (old, new, text) in [
            ("x", "yy", "axbxc"),
            ("", "--", "héllo"),
            ("ab", "", "abab"),
            ("q", "z", ""),
        ] {
            assert_eq!(
                replaced_len(old, new, text),
                text.replace(old, new).len(),
                "{old:?} {new:?} {text:?}"
            );
        }
    }
}
