//! Text from a host on its way to the operator's terminal. Script output, failure tails and
//! messages naming rootfs paths are written by whoever wrote the rootfs; printed raw, an
//! escape sequence in them can retitle the terminal, clear the screen, move the cursor over
//! earlier lines, or — on some terminals — answer queries by typing into the operator's
//! shell. [`for_terminal`] removes every control sequence and control character; what is
//! kept on disk (the per-host log) stays as the script wrote it. [`json_line`] is the NDJSON
//! form: JSON already escapes C0 controls, and it also escapes DEL and C1 controls, which
//! JSON allows raw but some terminals act on, so a `-o json` stream read on a terminal is as
//! safe and decodes to the very same text.

use serde::Serialize;
use std::borrow::Cow;
use std::io;

/// What an inner carriage return is shown as: it stays visible, but can no longer move the
/// cursor back over the text before it (`ok\rFAILED` must not read as `FAILED`).
pub const CR_SHOWN_AS: char = '\u{240d}';

/// The text with every terminal control removed: ESC sequences (CSI, OSC, DCS, SOS, PM, APC
/// and the two- and three-character forms), their 8-bit C1 forms, every other C0 and C1
/// control and DEL, and the bidirectional-override characters that reorder what a line
/// appears to say. Tab and newline are kept (callers join lines with newlines on purpose); a
/// carriage return right before a newline or the end is dropped, any other is shown as
/// [`CR_SHOWN_AS`]. Borrows when there is nothing to remove.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_care) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        state = match state {
            State::Text => text_char(c, &mut chars, &mut out),
            State::Esc => match c {
                '[' => State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => State::Str,
                '\u{20}'..='\u{2f}' => State::EscIntermediate,
                '\u{30}'..='\u{7e}' => State::Text,
                '\u{1b}' => State::Esc,
                // Not a sequence after all: the ESC goes, the character is judged alone.
                _ => text_char(c, &mut chars, &mut out),
            },
            State::EscIntermediate => match c {
                '\u{20}'..='\u{2f}' => State::EscIntermediate,
                '\u{30}'..='\u{7e}' => State::Text,
                _ => text_char(c, &mut chars, &mut out),
            },
            State::Csi => match c {
                // Parameter and intermediate bytes, then one final byte.
                '\u{20}'..='\u{3f}' => State::Csi,
                '\u{40}'..='\u{7e}' => State::Text,
                _ => text_char(c, &mut chars, &mut out),
            },
            // A string's content is dropped up to its terminator. A newline ends it here
            // too: the opening never reaches the terminal, so nothing is left to swallow
            // the lines that follow.
            State::Str => match c {
                '\u{07}' | '\u{9c}' => State::Text,
                '\u{1b}' => State::StrEsc,
                '\n' => {
                    out.push('\n');
                    State::Text
                }
                _ => State::Str,
            },
            State::StrEsc => match c {
                '\\' => State::Text,
                '\n' => {
                    out.push('\n');
                    State::Text
                }
                '\u{1b}' => State::StrEsc,
                _ => State::Str,
            },
        };
    }
    Cow::Owned(out)
}

/// Where [`for_terminal`] is inside an escape sequence.
#[derive(Clone, Copy)]
enum State {
    Text,
    Esc,
    EscIntermediate,
    Csi,
    /// OSC, DCS, SOS, PM or APC: runs to BEL or ST.
    Str,
    /// An ESC inside a string: `\` makes it ST.
    StrEsc,
}

/// Whether `c` is anything [`for_terminal`] removes or changes.
fn needs_care(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n') || is_bidi_control(c)
}

/// The explicit bidirectional embeddings, overrides and isolates (the "Trojan Source"
/// characters): they make a line display in another order than it reads.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One character outside any sequence: kept, dropped, or the start of a sequence.
fn text_char(
    c: char,
    rest: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
) -> State {
    match c {
        '\u{1b}' => State::Esc,
        '\u{9b}' => State::Csi,
        '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => State::Str,
        '\t' | '\n' => {
            out.push(c);
            State::Text
        }
        '\r' => {
            // `\r\n` and a trailing `\r` are line ends; only an inner one overwrites.
            if !matches!(rest.peek(), None | Some('\n' | '\r')) {
                out.push(CR_SHOWN_AS);
            }
            State::Text
        }
        c if needs_care(c) => State::Text,
        c => {
            out.push(c);
            State::Text
        }
    }
}

/// `value` as one line of JSON, with DEL and the C1 controls escaped as `\u00XX` besides
/// what JSON escapes anyway: the line decodes to exactly the same value.
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, C1Escaping);
    value.serialize(&mut ser)?;
    // serde_json writes valid UTF-8; the escapes added are ASCII.
    String::from_utf8(buf).map_err(|e| serde_json::Error::io(io::Error::other(e)))
}

/// A compact formatter that also escapes DEL and C1 controls inside strings.
struct C1Escaping;

impl serde_json::ser::Formatter for C1Escaping {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if ('\u{7f}'..='\u{9f}').contains(&c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Hostile lines and what the terminal may be shown of them.
    const HOSTILE: &[(&str, &str)] = &[
        // OSC 0 retitles the window; BEL ends it.
        ("\x1b]0;pwned title\x07after", "after"),
        // OSC 8 hyperlink ended by ST, text in between kept.
        ("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click"),
        // OSC 52 would write the clipboard.
        ("\x1b]52;c;ZWNobyBwd25lZA==\x07x", "x"),
        ("before\x1b[2Jafter", "beforeafter"),
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;31;48;5;196mx\x1b[m", "x"),
        // Cursor up and erase line: rewrites what was printed before.
        ("\x1b[1A\x1b[2Kfake ok", "fake ok"),
        // 8-bit CSI and OSC.
        ("a\u{9b}2Jb", "ab"),
        ("a\u{9d}0;title\u{9c}b", "ab"),
        // DCS (e.g. a DECRQSS query whose answer is typed back), APC, PM, SOS.
        ("a\x1bP$q\"p\x1b\\b", "ab"),
        ("a\x1b_apc\x1b\\b\x1b^pm\x07c\x1bXsos\x1b\\d", "abcd"),
        // Two- and three-character ESC forms: reset, keypad, charset.
        ("a\x1bcb\x1b=c\x1b(0d", "abcd"),
        ("bell\x07", "bell"),
        ("back\x08\x08\x08\x08evil", "backevil"),
        ("nul\0del\x7fc1\u{85}end", "nuldelc1end"),
        ("tab\tkept", "tab\tkept"),
        // Carriage returns: an overwrite stays visible, line ends disappear.
        ("rm -rf /\rok    ", "rm -rf /\u{240d}ok    "),
        ("10%\r50%\r100%", "10%\u{240d}50%\u{240d}100%"),
        ("crlf\r", "crlf"),
        ("crlf\r\r", "crlf"),
        ("one\r\ntwo", "one\ntwo"),
        // Bidi overrides reorder the display.
        ("user\u{202e}gnp.exe", "usergnp.exe"),
        // Unterminated sequences take nothing past the line.
        ("x\x1b]0;never ends", "x"),
        ("x\x1b]0;never ends\nnext line", "x\nnext line"),
        ("x\x1b[12", "x"),
        ("x\x1b", "x"),
        // An ESC that starts no sequence goes alone.
        ("x\x1b\ny", "x\ny"),
        ("x\x1b\u{e9}y", "x\u{e9}y"),
        ("plain text, ünïcödé ✓", "plain text, ünïcödé ✓"),
    ];

    #[test]
    fn hostile_lines_reach_the_terminal_without_controls() {
        for (line, shown) in HOSTILE {
            let got = for_terminal(line);
            assert_eq!(got, *shown, "{line:?}");
            assert!(
                !got.chars().any(needs_care),
                "{line:?} still has controls: {got:?}"
            );
        }
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            for_terminal("install-bin: done\n    tail"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_lines_escape_c1_and_decode_to_the_same_text() {
        for (line, _) in HOSTILE {
            let json = json_line(&serde_json::json!({ "line": line })).unwrap();
            assert!(!json.chars().any(char::is_control), "{json:?}");
            let back: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(back["line"], *line);
        }
        assert_eq!(
            json_line(&serde_json::json!({ "a": "x\u{9b}2J\u{7f}" })).unwrap(),
            r#"{"a":"x\u009b2J\u007f"}"#
        );
    }
}
