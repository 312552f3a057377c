//! The functions templates may call: Go's builtins (`builtins`, `compare`; `and`/`or`
//! short-circuit in `eval`) and ours: sprig's `default`, base64, and the string helpers
//! sealer's rootfs trees use. Logic functions accept undefined keys (they are false / "");
//! every other function refuses them, so a typo cannot vanish into output.
//!
//! A function that builds text first works out how large the result will be (or builds it
//! in a [`Capped`] string) and asks the [`Meter`], so an oversized result is refused before
//! it is allocated; reading its arguments costs steps.

use super::builtins;
use super::compare;
use super::error::Pos;
use super::limits::{Capped, ITEM_OVERHEAD, Meter, text_len, too_big};
use super::quote::quote;
use super::value::Value;
use crate::env::Env;
use base64::Engine;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// An error with the position of the offending argument, when known.
pub(super) type CallError = (Option<Pos>, String);

/// The supported function names, for error messages.
pub(super) const NAMES: &str = "and, or, not, eq, ne, lt, le, gt, ge, len, index, slice, print, printf, println, html, js, urlquery, default, b64enc, b64dec, quote, squote, trim, upper, lower, replace, contains, hasPrefix, hasSuffix, splitList, join, toString";

/// Whether `name` is a function templates may call.
pub(super) fn is_known(name: &str) -> bool {
    NAMES.split(", ").any(|n| n == name)
}

/// The message for a call of a function templates may not use.
pub(super) fn unknown(name: &str) -> String {
    if name == "call" {
        return "function \"call\" is not supported: the env holds strings, there are no functions to call; supported: ".to_string() + NAMES;
    }
    format!("unknown function {name:?}; supported: {NAMES}")
}

/// What a function may use beside its arguments: the render's meter and the env.
pub(super) struct Ctx<'a> {
    /// Steps and text built so far.
    pub meter: &'a mut Meter,
    /// The host's env.
    pub env: &'a Env,
    /// Env values already turned into shared strings, so a key read in a loop is copied once.
    pub fields: &'a mut HashMap<String, Arc<str>>,
}

impl Ctx<'_> {
    /// The env's value of `key`, or `Missing`.
    pub(super) fn lookup(&mut self, key: &str) -> Result<Value, String> {
        if let Some(v) = self.fields.get(key) {
            return Ok(Value::Str(v.clone()));
        }
        let Some(v) = self.env.get(key) else {
            return Ok(Value::Missing(key.to_string()));
        };
        self.meter.build(&format!("reading {key:?}"), v.len())?;
        let shared: Arc<str> = Arc::from(v.as_str());
        self.fields.insert(key.to_string(), shared.clone());
        Ok(Value::Str(shared))
    }
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

/// Checks that a function got `want` arguments.
pub(super) fn arity(name: &str, got: usize, want: usize) -> Result<(), CallError> {
    if got != want {
        return Err((
            None,
            format!("wrong number of args for {name}: want {want} got {got}"),
        ));
    }
    Ok(())
}

/// Calls `name` with `args` (a piped value comes last), counting its cost on the meter.
pub(super) fn call(
    name: &str,
    args: &[(Value, Pos)],
    ctx: &mut Ctx<'_>,
) -> Result<Value, CallError> {
    let given = args
        .iter()
        .map(|(v, _)| text_len(v))
        .fold(0, usize::saturating_add);
    ctx.meter.read(given).map_err(|m| (None, m))?;
    let values = || args.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>();
    Ok(match name {
        // Evaluated lazily by `eval`; here only when named without operands.
        "and" | "or" => {
            let Some(last) = args.last() else {
                return Err((
                    None,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            };
            let decides = |v: &Value| v.truthy() == (name == "or");
            args.iter()
                .find(|(v, _)| decides(v))
                .unwrap_or(last)
                .0
                .clone()
        }
        "eq" => Value::Bool(compare::eq(&values()).map_err(|m| (None, m))?),
        "ne" => Value::Bool(compare::ordered(name, &values()).map_err(|m| (None, m))?),
        "lt" | "le" | "gt" | "ge" => {
            defined(args)?;
            Value::Bool(compare::ordered(name, &values()).map_err(|m| (None, m))?)
        }
        "not" => builtins::call(name, &values(), ctx)?,
        "default" => {
            // sprig's order: `default "x" .Key` or `.Key | default "x"`.
            arity(name, args.len(), 2)?;
            if args[1].0.truthy() {
                args[1].0.clone()
            } else {
                args[0].0.clone()
            }
        }
        _ if builtins::is_builtin(name) => {
            defined(args)?;
            builtins::call(name, &values(), ctx)?
        }
        _ => {
            defined(args)?;
            plain(name, args, ctx.meter)?
        }
    })
}

/// A string result, once the meter has allowed its size.
fn built(name: &str, meter: &mut Meter, text: String) -> Result<Value, CallError> {
    meter.build(name, text.len()).map_err(|m| (None, m))?;
    Ok(Value::Str(Arc::from(text)))
}

/// Our functions whose parameters are all strings (as in sprig, whose signatures sealer's
/// templates are written for): Go refuses any other value passed to them.
const STRING_PARAMS: [&str; 10] = [
    "b64enc",
    "b64dec",
    "trim",
    "upper",
    "lower",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "splitList",
];

fn plain(name: &str, args: &[(Value, Pos)], meter: &mut Meter) -> Result<Value, CallError> {
    if STRING_PARAMS.contains(&name)
        && let Some((v, p)) = args.iter().find(|(v, _)| !matches!(v, Value::Str(_)))
    {
        return Err((
            Some(*p),
            format!(
                "{name} takes strings, not {} {}",
                v.type_name(),
                v.preview()
            ),
        ));
    }
    let s = |k: usize| args[k].0.text();
    let check = |meter: &mut Meter, size: usize| meter.build(name, size).map_err(|m| (None, m));
    Ok(match name {
        "b64enc" => {
            arity(name, args.len(), 1)?;
            let text = s(0);
            check(meter, text.len().div_ceil(3).saturating_mul(4))?;
            Value::Str(Arc::from(
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            ))
        }
        "b64dec" => {
            arity(name, args.len(), 1)?;
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
        "toString" => {
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
        "quote" | "squote" => {
            let mut out = Capped::default();
            for (k, (v, _)) in args.iter().enumerate() {
                let sep = if k == 0 { "" } else { " " };
                let text = v.text();
                let fits = if name == "quote" {
                    out.push(sep) && out.push(&quote(&text, false))
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
            arity(name, args.len(), 1)?;
            built(name, meter, s(0).trim().to_string())?
        }
        "upper" | "lower" => {
            arity(name, args.len(), 1)?;
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
            arity(name, args.len(), 3)?;
            let (old, new, text) = (s(0), s(1), s(2));
            check(meter, replaced_len(&old, &new, &text))?;
            Value::Str(Arc::from(text.replace(&*old, &new)))
        }
        "contains" => {
            arity(name, args.len(), 2)?;
            Value::Bool(s(1).contains(&*s(0)))
        }
        "hasPrefix" => {
            arity(name, args.len(), 2)?;
            Value::Bool(s(1).starts_with(&*s(0)))
        }
        "hasSuffix" => {
            arity(name, args.len(), 2)?;
            Value::Bool(s(1).ends_with(&*s(0)))
        }
        "splitList" => {
            arity(name, args.len(), 2)?;
            let (sep, text) = (s(0), s(1));
            if text.is_empty() {
                Value::List(Arc::from(Vec::new()))
            } else {
                // Each element costs more than its text: size the list before making it.
                let items = if sep.is_empty() {
                    // Go's strings.Split (sprig's splitList) makes each character one.
                    text.chars().count()
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
                let items: Vec<Value> = if sep.is_empty() {
                    text.char_indices()
                        .map(|(k, c)| Value::Str(Arc::from(&text[k..k + c.len_utf8()])))
                        .collect()
                } else {
                    text.split(&*sep)
                        .map(|p| Value::Str(Arc::from(p)))
                        .collect()
                };
                Value::List(items.into())
            }
        }
        "join" => {
            arity(name, args.len(), 2)?;
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
