//! Go's builtin functions other than the comparisons (`compare`) and the short-circuiting
//! `and`/`or` (which `eval` runs, as they must not evaluate every operand): `not len index
//! slice print printf println html js urlquery`, with Go's rules for which values each
//! accepts. `index . "etcd-dir"` reads env keys that are not Go identifiers; a key the env
//! lacks is undefined, like `.Key`.

use super::escape;
use super::funcs::{CallError, Ctx, arity};
use super::limits::{text_len, too_big};
use super::printf;
use super::value::Value;
use super::verbs::FmtError;
use std::sync::Arc;

/// Whether `name` is one of these builtins.
pub(super) fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "not"
            | "len"
            | "index"
            | "slice"
            | "print"
            | "printf"
            | "println"
            | "html"
            | "js"
            | "urlquery"
    )
}

fn fmt_error(name: &str, e: FmtError) -> CallError {
    match e {
        FmtError::Full => (None, too_big(name, None)),
        FmtError::Unsupported(what) => (None, format!("{name}: {what} is not supported")),
    }
}

/// A string result, once the meter has allowed its size.
fn built(name: &str, ctx: &mut Ctx<'_>, text: String) -> Result<Value, CallError> {
    ctx.meter.build(name, text.len()).map_err(|m| (None, m))?;
    Ok(Value::Str(Arc::from(text)))
}

/// An index of a string or list of `cap` elements (Go allows `cap` itself, for slicing).
fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    let n = match v {
        Value::Int(n) => *n,
        Value::Byte(b) => i64::from(*b),
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    match usize::try_from(n) {
        Ok(k) if k <= cap => Ok(k),
        _ => Err(format!("index out of range: {n}")),
    }
}

/// `index item i j …`.
fn index(args: &[Value], ctx: &mut Ctx<'_>) -> Result<Value, String> {
    let Some((item, indexes)) = args.split_first() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    let mut item = item.clone();
    if item == Value::Nil {
        return Err("index of untyped nil".into());
    }
    for idx in indexes {
        item = match &item {
            Value::Env => match idx {
                Value::Str(key) => ctx.lookup(key)?,
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            Value::List(l) => {
                let k = index_arg(idx, l.len())?;
                l.get(k)
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {k}"))?
            }
            Value::Str(s) => {
                let k = index_arg(idx, s.len())?;
                Value::Byte(
                    *s.as_bytes()
                        .get(k)
                        .ok_or_else(|| format!("index out of range: {k}"))?,
                )
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// `slice item [i [j [k]]]`: `item[i:j]` (`item[i:j:k]` checks `k` too).
fn slice(args: &[Value], ctx: &mut Ctx<'_>) -> Result<Value, String> {
    let Some((item, indexes)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::Nil => return Err("slice of untyped nil".into()),
        Value::Str(_) if indexes.len() == 3 => return Err("cannot 3-index slice a string".into()),
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0, len, len];
    for (k, i) in indexes.iter().enumerate() {
        idx[k] = index_arg(i, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::Str(s) => {
            // Go slices bytes; a cut inside a character would not be text.
            let part = s.get(idx[0]..idx[1]).ok_or_else(|| {
                format!(
                    "slice {}:{} would cut a UTF-8 character in two",
                    idx[0], idx[1]
                )
            })?;
            ctx.meter
                .build("slice", part.len())
                .map_err(|m| m.to_string())?;
            Value::Str(Arc::from(part))
        }
        Value::List(l) => Value::List(Arc::from(&l[idx[0]..idx[1]])),
        // Only strings and lists got past the match above.
        other => other.clone(),
    })
}

/// The exact length of `print`'s or `println`'s text, when it can be known without
/// building it (not with the env among the operands), so that an oversized result is
/// refused with its size.
fn sprint_len(name: &str, args: &[Value]) -> Option<usize> {
    if args.contains(&Value::Env) {
        return None;
    }
    let text = args.iter().map(text_len).fold(0, usize::saturating_add);
    let is_string = |v: &Value| matches!(v, Value::Str(_) | Value::Missing(_));
    let spaces = if name == "println" {
        args.len()
    } else {
        args.windows(2)
            .filter(|w| !is_string(&w[0]) && !is_string(&w[1]))
            .count()
    };
    Some(text.saturating_add(spaces))
}

/// The text `html`, `js` and `urlquery` escape: a lone string as it is, else as `print`
/// would write the operands.
fn escaped_text(name: &str, args: &[Value], ctx: &Ctx<'_>) -> Result<String, CallError> {
    match args {
        [Value::Str(s)] => Ok(s.to_string()),
        _ => {
            // Go prints a nil operand here as the text "<no value>".
            let args: Vec<Value> = args
                .iter()
                .map(|v| match v {
                    Value::Nil => Value::Str(Arc::from("<no value>")),
                    other => other.clone(),
                })
                .collect();
            printf::sprint(ctx.env, &args).map_err(|e| fmt_error(name, e))
        }
    }
}

/// Calls builtin `name` (the caller has refused undefined keys where Go's rules need it).
pub(super) fn call(name: &str, args: &[Value], ctx: &mut Ctx<'_>) -> Result<Value, CallError> {
    let plain = |r: Result<Value, String>| r.map_err(|m| (None, m));
    Ok(match name {
        "not" => {
            arity(name, args.len(), 1)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            arity(name, args.len(), 1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Env => ctx.env.len(),
                Value::Nil => return Err((None, "len of nil pointer".into())),
                other => return Err((None, format!("len of type {}", other.type_name()))),
            } as i64)
        }
        "index" => plain(index(args, ctx))?,
        "slice" => plain(slice(args, ctx))?,
        "print" | "println" | "printf" => {
            if name != "printf"
                && let Some(size) = sprint_len(name, args)
            {
                ctx.meter.build(name, size).map_err(|m| (None, m))?;
            }
            let text = match name {
                "print" => printf::sprint(ctx.env, args),
                "println" => printf::sprintln(ctx.env, args),
                _ => match args.split_first() {
                    Some((Value::Str(format), rest)) => printf::sprintf(ctx.env, format, rest),
                    Some((other, _)) => {
                        return Err((
                            None,
                            format!(
                                "printf's format must be a string, not {}",
                                other.type_name()
                            ),
                        ));
                    }
                    None => {
                        return Err((
                            None,
                            "wrong number of args for printf: want at least 1 got 0".into(),
                        ));
                    }
                },
            }
            .map_err(|e| fmt_error(name, e))?;
            built(name, ctx, text)?
        }
        "html" | "js" | "urlquery" => {
            let text = escaped_text(name, args, ctx)?;
            let escaped = match name {
                "html" => escape::html(&text),
                "js" => escape::js(&text),
                _ => escape::urlquery(&text),
            }
            .ok_or_else(|| (None, too_big(name, None)))?;
            built(name, ctx, escaped)?
        }
        other => return Err((None, format!("{other} is not a builtin"))),
    })
}
