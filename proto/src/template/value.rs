//! The values a template computes with: what the env, literals and functions produce. Each
//! stands for one Go type, so that printing, comparing and `printf` treat it as Go treats
//! that type: `Str` is `string`, `Int` is `int`, `Float` is `float64`, `Byte` is the
//! `uint8` that indexing a string gives, `List` is the `[]string` of `splitList` and
//! `slice`, `Env` is the `map[string]string` that is the data.

use super::float;
use std::borrow::Cow;
use std::sync::Arc;

/// A value during evaluation. Strings and lists are shared, not copied, when a value is
/// passed on (to a variable, a function, a range element), so only the text functions
/// build is new memory, and that is what the render's meter (`limits`) counts.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Value {
    /// The whole env (the top-level `.`).
    Env,
    /// A string.
    Str(Arc<str>),
    /// An integer.
    Int(i64),
    /// A float (`1.5`, `1e3`).
    Float(f64),
    /// A byte of a string (`index "abc" 0`).
    Byte(u8),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Arc<[Value]>),
    /// `nil`, which Go allows only as a function's argument.
    Nil,
    /// A key the env does not define.
    Missing(String),
}

impl Value {
    /// Truth as `if` sees it.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Value::Env => true,
            Value::Str(s) => !s.is_empty(),
            Value::Int(n) => *n != 0,
            Value::Float(x) => *x != 0.0,
            Value::Byte(b) => *b != 0,
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Nil | Value::Missing(_) => false,
        }
    }

    /// Go's name of the value's type, as `printf` writes it in `%!d(string=…)`.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Env => "map[string]string",
            Value::Str(_) | Value::Missing(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Byte(_) => "uint8",
            Value::Bool(_) => "bool",
            Value::List(_) => "[]string",
            Value::Nil => "<nil>",
        }
    }

    /// The value as text: what Go's `%v` prints, except that `Missing` is "" (as `eq`
    /// compares it) and the env is "" (the functions that take text refuse it first). A
    /// list's text is as long as `limits::text_len` says; callers that keep it check that
    /// first.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Int(n) => Cow::Owned(n.to_string()),
            Value::Float(x) => Cow::Owned(float::shortest(*x)),
            Value::Byte(b) => Cow::Owned(b.to_string()),
            Value::Bool(b) => Cow::Owned(b.to_string()),
            Value::List(l) => Cow::Owned(format!(
                "[{}]",
                l.iter().map(Value::text).collect::<Vec<_>>().join(" ")
            )),
            Value::Nil => Cow::Borrowed("<nil>"),
            Value::Env | Value::Missing(_) => Cow::Borrowed(""),
        }
    }

    /// The start of the value's text, for messages (a value may be megabytes long).
    pub(super) fn preview(&self) -> String {
        const SHOWN: usize = 40;
        let text = self.text();
        match text.char_indices().nth(SHOWN) {
            Some((end, _)) => format!("{:?}…", &text[..end]),
            None => format!("{text:?}"),
        }
    }
}
