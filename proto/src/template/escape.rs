//! The escapers of Go's `html`, `js` and `urlquery` functions. Each returns `None` as soon
//! as its text passes [`MAX_TEXT`], so an escaped string is never built past the limit.

use super::limits::MAX_TEXT;
use super::quote::is_print;

/// `template.HTMLEscapeString`.
pub(super) fn html(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if out.len() > MAX_TEXT {
            return None;
        }
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    (out.len() <= MAX_TEXT).then_some(out)
}

/// `template.JSEscapeString` (Go 1.19: the backquote is kept).
pub(super) fn js(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if out.len() > MAX_TEXT {
            return None;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if c < ' ' => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() || is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    (out.len() <= MAX_TEXT).then_some(out)
}

/// `url.QueryEscape`: unreserved bytes kept, a space as `+`, the rest `%XX`.
pub(super) fn urlquery(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if out.len() > MAX_TEXT {
            return None;
        }
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    (out.len() <= MAX_TEXT).then_some(out)
}
