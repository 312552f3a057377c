//! The functions templates may call: sealer's logic and comparison forms, base64, and a few
//! string helpers its rootfs trees use. Logic functions accept undefined keys (they are
//! false / ""); every other function refuses them, so a typo cannot vanish into output.

use super::error::Pos;
use super::eval::Value;
use base64::Engine;

/// An error with the position of the offending argument, when known.
pub type CallError = (Option<Pos>, String);

/// The supported function names, for error messages.
pub const NAMES: &str = "and, or, not, eq, ne, lt, gt, len, default, b64enc, b64dec, printf, print, quote, squote, trim, upper, lower, replace, contains, hasPrefix, hasSuffix, splitList, join, toString";

/// Whether `name` is a function templates may call.
pub fn is_known(name: &str) -> bool {
    NAMES.split(", ").any(|n| n == name)
}

/// The message for a call of a function templates may not use.
pub fn unknown(name: &str) -> String {
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

/// Calls `name` with `args` (a piped value comes last).
pub fn call(name: &str, args: &[(Value, Pos)]) -> Result<Value, CallError> {
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
            Value::Bool(args[1..].iter().any(|(v, _)| v.text() == s(0)))
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
            plain(name, args)?
        }
    })
}

fn plain(name: &str, args: &[(Value, Pos)]) -> Result<Value, CallError> {
    let s = |k: usize| args[k].0.text();
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
            Value::Str(base64::engine::general_purpose::STANDARD.encode(s(0)))
        }
        "b64dec" => {
            arity(name, args, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(0).trim())
                .map_err(|e| (Some(args[0].1), format!("b64dec: not base64: {e}")))?;
            Value::Str(String::from_utf8(bytes).map_err(|_| {
                (
                    Some(args[0].1),
                    "b64dec: the decoded bytes are not UTF-8 text".to_string(),
                )
            })?)
        }
        "print" | "toString" => Value::Str(args.iter().map(|(v, _)| v.text()).collect()),
        "printf" => {
            if args.is_empty() {
                return Err((None, "printf needs a format".into()));
            }
            Value::Str(printf(&s(0), &args[1..])?)
        }
        "quote" => Value::Str(
            args.iter()
                .map(|(v, _)| format!("{:?}", v.text()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::Str(
            args.iter()
                .map(|(v, _)| format!("'{}'", v.text()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "trim" => {
            arity(name, args, 1)?;
            Value::Str(s(0).trim().to_string())
        }
        "upper" => {
            arity(name, args, 1)?;
            Value::Str(s(0).to_uppercase())
        }
        "lower" => {
            arity(name, args, 1)?;
            Value::Str(s(0).to_lowercase())
        }
        "replace" => {
            arity(name, args, 3)?;
            Value::Str(s(2).replace(&s(0), &s(1)))
        }
        "contains" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).contains(&s(0)))
        }
        "hasPrefix" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).starts_with(&s(0)))
        }
        "hasSuffix" => {
            arity(name, args, 2)?;
            Value::Bool(s(1).ends_with(&s(0)))
        }
        "splitList" => {
            arity(name, args, 2)?;
            let (sep, text) = (s(0), s(1));
            Value::List(if text.is_empty() {
                Vec::new()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::Str(p.to_string()))
                    .collect()
            })
        }
        "join" => {
            arity(name, args, 2)?;
            match &args[1].0 {
                Value::List(l) => {
                    Value::Str(l.iter().map(Value::text).collect::<Vec<_>>().join(&s(0)))
                }
                other => Value::Str(other.text()),
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

fn printf(format: &str, args: &[(Value, Pos)]) -> Result<String, CallError> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'd' | 'v' | 'q')) => {
                let Some((v, _)) = next.next() else {
                    return Err((None, format!("printf: %{verb} has no argument")));
                };
                match verb {
                    'q' => out.push_str(&format!("{:?}", v.text())),
                    'd' => match int(v) {
                        Some(n) => out.push_str(&n.to_string()),
                        None => {
                            return Err((
                                None,
                                format!("printf: %d needs an integer, got {:?}", v.text()),
                            ));
                        }
                    },
                    _ => out.push_str(&v.text()),
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
        }
    }
    Ok(out)
}
