//! Go's comparison functions `eq ne lt le gt ge`: values compare within their basic kind
//! (bool, int, uint, float, string), signed and unsigned integers with each other, and any
//! other mix is an error, as in Go. Ours alone: an undefined key is the string "" here.

use super::value::Value;

/// The basic kinds Go's comparisons know.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
    /// `nil`, or a list or the env: not a basic kind.
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Missing(_) => Kind::Str,
        Value::Nil | Value::List(_) | Value::Env => Kind::Other,
    }
}

const INCOMPATIBLE: &str = "incompatible types for comparison";
const BAD_TYPE: &str = "invalid type for comparison";

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::Byte(b) => i64::from(*b),
        _ => 0,
    }
}

/// Whether `a == b`, or why they cannot be compared.
fn equal(a: &Value, b: &Value) -> Result<bool, &'static str> {
    // `nil` compares with anything, and equals only `nil`.
    if *a == Value::Nil || *b == Value::Nil {
        return Ok(a == b);
    }
    let (ka, kb) = (kind(a), kind(b));
    if ka != kb {
        return match (ka, kb) {
            (Kind::Int | Kind::Uint, Kind::Int | Kind::Uint) => Ok(int(a) == int(b)),
            _ => Err(INCOMPATIBLE),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        _ if ka == Kind::Other => return Err(BAD_TYPE),
        _ if ka == Kind::Str => a.text() == b.text(),
        _ => int(a) == int(b),
    })
}

/// `eq a b c…`: whether `a` equals any of the others, tried in order (so a later operand
/// of the wrong kind is not reached once one is equal, as in Go).
pub(super) fn eq(args: &[Value]) -> Result<bool, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err("wrong number of args for eq: want at least 1 got 0".into());
    };
    if matches!(first, Value::List(_) | Value::Env) {
        return Err(BAD_TYPE.into());
    }
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for other in rest {
        if equal(first, other)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lt a b`.
fn less(a: &Value, b: &Value) -> Result<bool, &'static str> {
    let (ka, kb) = (kind(a), kind(b));
    if ka == Kind::Other || kb == Kind::Other {
        return Err(BAD_TYPE);
    }
    if ka != kb {
        return match (ka, kb) {
            (Kind::Int | Kind::Uint, Kind::Int | Kind::Uint) => Ok(int(a) < int(b)),
            _ => Err(INCOMPATIBLE),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(_), _) => return Err(BAD_TYPE),
        (Value::Float(x), Value::Float(y)) => x < y,
        _ if ka == Kind::Str => a.text() < b.text(),
        _ => int(a) < int(b),
    })
}

/// `ne`, `lt`, `le`, `gt`, `ge` of exactly two operands.
pub(super) fn ordered(name: &str, args: &[Value]) -> Result<bool, String> {
    let [a, b] = args else {
        return Err(format!(
            "wrong number of args for {name}: want 2 got {}",
            args.len()
        ));
    };
    let r = match name {
        "ne" => eq(args).map(|e| !e)?,
        "lt" => less(a, b)?,
        "le" => less(a, b)? || eq(args)?,
        "gt" => !(less(a, b)? || eq(args)?),
        _ => !less(a, b)?,
    };
    Ok(r)
}
