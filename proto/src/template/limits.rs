//! What one render may cost. The step budget alone bounds how many nodes run, not how much
//! text they make: `replace "x" $a $a` squares a string, and a range repeats its body, so a
//! few steps could ask for gigabytes and abort the agent. Every string a render builds is
//! therefore sized *before* it is allocated, and refused over [`MAX_TEXT`]; the output is
//! checked as it grows; and all text built in one render is summed against [`MAX_BUILT`]
//! (variables keep strings alive, so bounding each one alone would not bound memory).
//! Reading big strings costs steps too, so scanning one in a loop cannot run for hours.

use super::value::Value;
use std::fmt;

/// The largest output one template may render, and the largest string (or list) any step
/// of a render may build: 64 MiB. Real rootfs templates render a few KiB; a generous bound
/// still keeps a hostile or broken template from taking the host's memory.
pub const MAX_TEXT: usize = 64 << 20;

/// All the text one render may build, in total: 256 MiB.
pub const MAX_BUILT: usize = 256 << 20;

/// The most steps one render may take.
pub const MAX_STEPS: u64 = 10_000_000;

/// Bytes a function may read for one step; a function's cost in steps is the text it is
/// given divided by this.
const BYTES_PER_STEP: usize = 64;

/// What a list element costs beside its text: the value and its shared string's counts.
pub(super) const ITEM_OVERHEAD: usize = size_of::<Value>() + 2 * size_of::<usize>();

/// `n` bytes as the limits are written: `67108864 bytes (64 MiB)`.
fn bytes(n: usize) -> String {
    format!("{n} bytes ({} MiB)", n >> 20)
}

/// The message for a function whose result would pass [`MAX_TEXT`]; `size` is the size it
/// would have had, when known before building it.
pub(super) fn too_big(what: &str, size: Option<usize>) -> String {
    let would = match size {
        Some(n) => format!("would build {n} bytes"),
        None => "would build more".to_string(),
    };
    format!(
        "{what} {would}, over the limit of {} for any text a template builds; look for replace or print applied to its own result, or a range over a long list",
        bytes(MAX_TEXT)
    )
}

/// The message for output that would pass [`MAX_TEXT`].
pub(super) fn output_too_big(size: usize) -> String {
    format!(
        "the rendered file would grow to {size} bytes, over the limit of {} for one template's output; look for a range over a long list around here",
        bytes(MAX_TEXT)
    )
}

/// The costs of one render so far.
#[derive(Debug, Default)]
pub(super) struct Meter {
    built: usize,
    steps: u64,
}

impl Meter {
    /// Counts `n` steps.
    pub(super) fn steps(&mut self, n: u64) -> Result<(), String> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            return Err("template does too much work (over ten million steps)".to_string());
        }
        Ok(())
    }

    /// Counts reading `n` bytes of text.
    pub(super) fn read(&mut self, n: usize) -> Result<(), String> {
        self.steps((n / BYTES_PER_STEP) as u64)
    }

    /// Allows building `size` bytes for `what`, before they are allocated.
    pub(super) fn build(&mut self, what: &str, size: usize) -> Result<(), String> {
        if size > MAX_TEXT {
            return Err(too_big(what, Some(size)));
        }
        self.built = self.built.saturating_add(size);
        if self.built > MAX_BUILT {
            return Err(format!(
                "{what}: the template has built over {} of text in this render, the limit for one template; look for replace or print inside a range",
                bytes(MAX_BUILT)
            ));
        }
        Ok(())
    }
}

/// A string that refuses to grow past [`MAX_TEXT`]: each piece is checked before it is
/// copied in, so an oversized result is never allocated. As a [`fmt::Write`] it fails with
/// [`fmt::Error`] at the limit, which is how `printf`'s and `quote`'s formatting stop.
#[derive(Debug, Default)]
pub(super) struct Capped {
    text: String,
}

impl Capped {
    /// Appends `piece`, or returns `false` and leaves the text as it was.
    pub(super) fn push(&mut self, piece: &str) -> bool {
        if self.text.len().saturating_add(piece.len()) > MAX_TEXT {
            return false;
        }
        self.text.push_str(piece);
        true
    }

    /// The text built.
    pub(super) fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push(s) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// The length of `v`'s text, computed without building it.
pub(super) fn text_len(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::Int(n) => decimal_len(*n),
        Value::Byte(b) => decimal_len(i64::from(*b)),
        // A float prints in at most a few dozen bytes.
        Value::Float(_) => v.text().len(),
        Value::Nil => 5,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        // `[a b c]`
        Value::List(items) => items
            .iter()
            .map(text_len)
            .fold(2 + items.len().saturating_sub(1), usize::saturating_add),
        Value::Env | Value::Missing(_) => 0,
    }
}

/// The length of `n` written in decimal.
fn decimal_len(n: i64) -> usize {
    let sign = usize::from(n < 0);
    let mut digits = 1;
    let mut rest = n.unsigned_abs();
    while rest >= 10 {
        rest /= 10;
        digits += 1;
    }
    sign + digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn text_len_matches_the_text() {
        let list = Value::List(Arc::from(vec![
            Value::Str("ab".into()),
            Value::Int(-120),
            Value::Bool(false),
        ]));
        for v in [
            Value::Str("héllo".into()),
            Value::Int(0),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Bool(true),
            Value::Float(1.5e-7),
            Value::Byte(200),
            Value::Nil,
            Value::List(Arc::from(Vec::new())),
            list,
        ] {
            assert_eq!(text_len(&v), v.text().len(), "{v:?}");
        }
    }

    #[test]
    fn capped_refuses_before_growing() {
        let mut c = Capped::default();
        assert!(c.push("abc"));
        let big = "x".repeat(MAX_TEXT - 2);
        assert!(!c.push(&big));
        assert_eq!(c.into_string(), "abc");
    }

    #[test]
    fn meter_counts_each_string_and_the_total() {
        let mut m = Meter::default();
        assert!(m.build("print", MAX_TEXT).is_ok());
        let err = m.build("replace", MAX_TEXT + 1).unwrap_err();
        assert!(
            err.starts_with(
                "replace would build 67108865 bytes, over the limit of 67108864 bytes (64 MiB)"
            ),
            "{err}"
        );
        for _ in 0..3 {
            assert!(m.build("print", MAX_TEXT).is_ok());
        }
        assert!(
            m.build("print", 1)
                .unwrap_err()
                .contains("268435456 bytes (256 MiB)")
        );
    }
}
