//! Go's quoting (`strconv.Quote`, `QuoteToASCII`, `QuoteRune`, `CanBackquote`) and its
//! test of a printable character, which `%q`, `%#U`, `quote` and `js` rely on.

/// Whether Go's `unicode.IsPrint` holds for `c`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space. Rust's standard library has no general categories, so
/// outside ASCII this is an approximation: control and space characters are not printable
/// (as in Go), and neither are the format characters, private-use areas and non-characters
/// listed below; an unassigned code point counts as printable here, where Go escapes it.
pub(super) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890 | 0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xFDD0..=0xFDEF | 0xFFFE | 0xFFFF
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..=0x10FFFF)
}

/// Appends `c` escaped as Go's quoting does when it may not appear as itself.
fn escape(out: &mut String, c: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

fn quote_with(s: &str, quote: char, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
            out.push(c);
        } else if is_print(c) && (!ascii || c.is_ascii()) {
            out.push(c);
        } else {
            escape(&mut out, c);
        }
    }
    out.push(quote);
    out
}

/// `strconv.Quote`, or `QuoteToASCII` when `ascii`.
pub(super) fn quote(s: &str, ascii: bool) -> String {
    quote_with(s, '"', ascii)
}

/// `strconv.QuoteRune`, or `QuoteRuneToASCII` when `ascii`.
pub(super) fn quote_rune(c: char, ascii: bool) -> String {
    quote_with(c.encode_utf8(&mut [0; 4]), '\'', ascii)
}

/// `strconv.CanBackquote`: whether `s` can be written as a raw string.
pub(super) fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| !((c < ' ' && c != '\t') || c == '`' || c == '\u{7f}' || c == '\u{feff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quoting() {
        assert_eq!(
            quote("a\"\\\n\u{1}\u{7f}é\u{200b}😀", false),
            "\"a\\\"\\\\\\n\\x01\\x7fé\\u200b😀\""
        );
        assert_eq!(quote("é😀", true), "\"\\u00e9\\U0001f600\"");
        assert_eq!(quote_rune('\'', false), "'\\''");
        assert_eq!(quote_rune('"', false), "'\"'");
        assert!(can_backquote("a\tb") && !can_backquote("a`b"));
    }
}
