//! The values a template computes with: what the env, literals and functions produce.

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
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Arc<[Value]>),
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
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Missing(_) => false,
        }
    }

    /// The value as text for comparisons (`Missing` is ""). A list's text is as long as
    /// `limits::text_len` says; callers that keep it check that first.
    pub(super) fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Int(n) => Cow::Owned(n.to_string()),
            Value::Bool(b) => Cow::Owned(b.to_string()),
            Value::List(l) => Cow::Owned(format!(
                "[{}]",
                l.iter().map(Value::text).collect::<Vec<_>>().join(" ")
            )),
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
