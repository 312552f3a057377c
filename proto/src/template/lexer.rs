//! Splits a template into text and actions, and an action into tokens. Every loop step
//! consumes at least one character or returns, so no input can make it spin.

use super::error::{Pos, TemplateError};
use super::literal;
use super::value::Value;

/// A piece of the template.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Piece {
    /// Literal text, already trimmed by neighbouring `{{-` / `-}}`, and where it starts.
    Text(String, Pos),
    /// The tokens of one `{{ … }}` and where its `{{` is (comments are dropped).
    Action(Vec<(Tok, Pos)>, Pos),
}

/// A token inside an action.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// `.` alone.
    Dot,
    /// `.Name`, possibly chained: `.A.B` is `["A", "B"]`.
    Field(Vec<String>),
    /// `$name` with an optional field chain: `$.A` is `("", ["A"])`, `$` alone `("", [])`.
    Var(String, Vec<String>),
    /// A string literal, escapes resolved.
    Str(String),
    /// An integer literal (also a character constant).
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A keyword or function name.
    Ident(String),
    /// `|`.
    Pipe,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,` (in `range $i, $v :=`).
    Comma,
    /// `.A.B` right after a `)`: fields of the parenthesized value.
    Chain(Vec<String>),
}

/// The characters trim markers remove: Go's set, so output matches sealer byte for byte
/// (a non-breaking space, for one, is kept).
fn is_trim_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Cursor<'a> {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    name: &'a str,
}

impl Cursor<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }
    fn starts(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(k, c)| self.peek(k) == Some(c))
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }
    fn err(&self, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError::at(self.name, pos, message)
    }
    /// A run of word characters (possibly empty).
    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(|c| is_word(*c)) {
            self.bump();
            s.push(c);
        }
        s
    }
    /// `.A.B…` following a value; empty when no `.name` follows.
    fn fields(&mut self) -> Vec<String> {
        let mut path = Vec::new();
        while self.peek(0) == Some('.') && self.peek(1).is_some_and(is_word) {
            self.bump();
            path.push(self.word());
        }
        path
    }
}

/// Splits `src` into pieces, applying the `{{-` / `-}}` trim markers.
pub(super) fn lex(name: &str, src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut cur = Cursor {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        name,
    };
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut text_pos = cur.pos();
    let mut trim_next_text = false;
    while let Some(c) = cur.peek(0) {
        if !cur.starts("{{") {
            if text.is_empty() {
                text_pos = cur.pos();
            }
            cur.bump();
            text.push(c);
            continue;
        }
        let open = cur.pos();
        cur.skip(2);
        // `{{-` trims only when a space follows (`{{-3}}` prints the number -3), as in Go.
        let trim_left = cur.peek(0) == Some('-') && cur.peek(1).is_some_and(is_trim_space);
        if trim_left {
            cur.bump();
        }
        push_text(
            &mut pieces,
            std::mem::take(&mut text),
            text_pos,
            trim_next_text,
            trim_left,
        );
        let (toks, trim_right) = action(&mut cur, open, trim_left)?;
        trim_next_text = trim_right;
        if let Some(toks) = toks {
            pieces.push(Piece::Action(toks, open));
        }
    }
    push_text(&mut pieces, text, text_pos, trim_next_text, false);
    Ok(pieces)
}

/// Adds a text piece that started at `pos`, trimmed as the markers around it say.
fn push_text(
    pieces: &mut Vec<Piece>,
    text: String,
    mut pos: Pos,
    trim_start: bool,
    trim_end: bool,
) {
    let mut t = text.as_str();
    if trim_start {
        t = t.trim_start_matches(is_trim_space);
        // The piece starts after what was trimmed.
        for c in text[..text.len() - t.len()].chars() {
            if c == '\n' {
                pos.line += 1;
                pos.col = 1;
            } else {
                pos.col += 1;
            }
        }
    }
    if trim_end {
        t = t.trim_end_matches(is_trim_space);
    }
    if !t.is_empty() {
        pieces.push(Piece::Text(t.to_string(), pos));
    }
}

/// One action after its `{{` (and `-`): its tokens, or `None` for a comment, and whether
/// `-}}` closed it.
type Action = (Option<Vec<(Tok, Pos)>>, bool);

fn action(cur: &mut Cursor<'_>, open: Pos, trim_left: bool) -> Result<Action, TemplateError> {
    // As in Go, a comment starts right after `{{` or `{{- `; `{{ /*` is no comment.
    let k = usize::from(trim_left);
    if cur.peek(k) == Some('/') && cur.peek(k + 1) == Some('*') {
        cur.skip(k + 2);
        return comment(cur, open).map(|trim| (None, trim));
    }
    let mut toks = Vec::new();
    loop {
        let Some(c) = cur.peek(0) else {
            return Err(cur.err(open, "unclosed action: `{{` without a matching `}}`"));
        };
        let pos = cur.pos();
        if c.is_whitespace() {
            if cur.starts_at_close_trim() {
                cur.skip(4);
                return Ok((Some(toks), true));
            }
            cur.bump();
            continue;
        }
        if cur.starts("}}") {
            cur.skip(2);
            return Ok((Some(toks), false));
        }
        if cur.starts("{{") {
            return Err(cur.err(
                open,
                "unclosed action: `{{` without a matching `}}` before the next `{{`",
            ));
        }
        let tok = match c {
            '|' | '(' | ')' | ',' | '=' => {
                cur.bump();
                match c {
                    '|' => Tok::Pipe,
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Assign,
                }
            }
            ':' if cur.peek(1) == Some('=') => {
                cur.skip(2);
                Tok::Declare
            }
            '"' => Tok::Str(quoted(cur, pos)?),
            '`' => Tok::Str(raw(cur, pos)?),
            '.' if cur.peek(1).is_some_and(|c| c.is_ascii_digit()) => number(cur, pos)?,
            '.' if cur.peek(1).is_some_and(is_word) => Tok::Field(cur.fields()),
            '.' => {
                cur.bump();
                Tok::Dot
            }
            '$' => {
                cur.bump();
                let name = cur.word();
                Tok::Var(name, cur.fields())
            }
            '\'' => char_constant(cur, pos)?,
            c if c.is_ascii_digit() || c == '-' || c == '+' => number(cur, pos)?,
            c if is_word(c) => Tok::Ident(cur.word()),
            other => {
                return Err(cur.err(pos, format!("unexpected character {other:?} in action")));
            }
        };
        let closed = tok == Tok::Close;
        toks.push((tok, pos));
        // `(…).A`, with no blank before the dot, takes a field of the value, as in Go.
        if closed && cur.peek(0) == Some('.') && cur.peek(1).is_some_and(is_word) {
            let pos = cur.pos();
            toks.push((Tok::Chain(cur.fields()), pos));
        }
    }
}

impl Cursor<'_> {
    /// At ` -}}`: Go requires the space, so `{{ 3 -}}` trims and `{{ 3-}}` does not parse.
    fn starts_at_close_trim(&self) -> bool {
        self.peek(0).is_some_and(is_trim_space)
            && self.peek(1) == Some('-')
            && self.peek(2) == Some('}')
            && self.peek(3) == Some('}')
    }
}

/// The rest of `{{/* … */}}` after `/*`; returns whether it ended with `-}}`.
fn comment(cur: &mut Cursor<'_>, open: Pos) -> Result<bool, TemplateError> {
    loop {
        if cur.peek(0).is_none() {
            return Err(cur.err(open, "unclosed comment: `{{/*` without `*/}}`"));
        }
        if cur.starts("*/") {
            cur.skip(2);
            let trim = cur.starts_at_close_trim();
            if trim {
                cur.skip(2);
            }
            if !cur.starts("}}") {
                return Err(cur.err(cur.pos(), "a comment must end with `*/}}` or `*/ -}}`"));
            }
            cur.skip(2);
            return Ok(trim);
        }
        cur.bump();
    }
}

fn quoted(cur: &mut Cursor<'_>, pos: Pos) -> Result<String, TemplateError> {
    cur.bump();
    // The raw text up to the closing quote, then Go's escapes resolved.
    let mut body = String::new();
    loop {
        match cur.bump() {
            None | Some('\n') => {
                return Err(cur.err(pos, "unterminated string: add the closing `\"`"));
            }
            Some('"') => break,
            Some('\\') => {
                body.push('\\');
                match cur.bump() {
                    None | Some('\n') => {
                        return Err(cur.err(pos, "unterminated string: add the closing `\"`"));
                    }
                    Some(c) => body.push(c),
                }
            }
            Some(c) => body.push(c),
        }
    }
    let mut chars = body.chars().peekable();
    let mut s = String::new();
    while chars.peek().is_some() {
        let (v, byte) = literal::unquote_char(&mut chars, '"')
            .map_err(|m| cur.err(pos, format!("string: {m}")))?;
        match char::from_u32(v) {
            Some(c) if !byte || c.is_ascii() => s.push(c),
            _ => {
                return Err(cur.err(
                    pos,
                    format!("string: the escape of byte {v:#x} would not be UTF-8 text; write the character itself or \\u{v:04x}"),
                ));
            }
        }
    }
    Ok(s)
}

fn raw(cur: &mut Cursor<'_>, pos: Pos) -> Result<String, TemplateError> {
    cur.bump();
    let mut s = String::new();
    loop {
        match cur.bump() {
            None => return Err(cur.err(pos, "unterminated raw string: add the closing '`'")),
            Some('`') => return Ok(s),
            // Go drops carriage returns from raw strings.
            Some('\r') => {}
            Some(c) => s.push(c),
        }
    }
}

fn char_constant(cur: &mut Cursor<'_>, pos: Pos) -> Result<Tok, TemplateError> {
    cur.bump();
    let mut body = String::new();
    loop {
        match cur.bump() {
            None | Some('\n') => {
                return Err(cur.err(pos, "unterminated character constant: add the closing `'`"));
            }
            Some('\'') => break,
            Some('\\') => {
                body.push('\\');
                match cur.bump() {
                    None | Some('\n') => {
                        return Err(cur.err(pos, "unterminated character constant"));
                    }
                    Some(c) => body.push(c),
                }
            }
            Some(c) => body.push(c),
        }
    }
    match literal::char_constant(&body) {
        Ok(Value::Int(n)) => Ok(Tok::Int(n)),
        Ok(_) => Err(cur.err(pos, "malformed character constant")),
        Err(m) => Err(cur.err(pos, m)),
    }
}

/// A number as Go's lexer scans it: sign, base prefix, digits with `_`, fraction,
/// exponent; it must not run into a letter.
fn number(cur: &mut Cursor<'_>, pos: Pos) -> Result<Tok, TemplateError> {
    let mut s = String::new();
    let accept = |cur: &mut Cursor<'_>, set: &str, s: &mut String| -> bool {
        match cur.peek(0).filter(|c| set.contains(*c)) {
            Some(c) => {
                cur.bump();
                s.push(c);
                true
            }
            None => false,
        }
    };
    let run = |cur: &mut Cursor<'_>, set: &str, s: &mut String| {
        while let Some(c) = cur.peek(0).filter(|c| set.contains(*c)) {
            cur.bump();
            s.push(c);
        }
    };
    accept(cur, "+-", &mut s);
    let mut digits = "0123456789_";
    if accept(cur, "0", &mut s) {
        if accept(cur, "xX", &mut s) {
            digits = "0123456789abcdefABCDEF_";
        } else if accept(cur, "oO", &mut s) {
            digits = "01234567_";
        } else if accept(cur, "bB", &mut s) {
            digits = "01_";
        }
    }
    run(cur, digits, &mut s);
    if accept(cur, ".", &mut s) {
        run(cur, digits, &mut s);
    }
    if digits.len() == 11 && accept(cur, "eE", &mut s) {
        accept(cur, "+-", &mut s);
        run(cur, "0123456789_", &mut s);
    }
    if digits.len() == 23 && accept(cur, "pP", &mut s) {
        accept(cur, "+-", &mut s);
        run(cur, "0123456789_", &mut s);
    }
    accept(cur, "i", &mut s);
    if cur.peek(0).is_some_and(is_word) || !s.chars().any(|c| c.is_ascii_digit()) {
        while let Some(c) = cur.peek(0).filter(|c| is_word(*c) || *c == '.') {
            cur.bump();
            s.push(c);
        }
        return Err(cur.err(pos, format!("bad number syntax: {s:?}")));
    }
    match literal::number(&s) {
        Ok(Value::Float(x)) => Ok(Tok::Float(x)),
        Ok(Value::Int(n)) => Ok(Tok::Int(n)),
        Ok(_) => Err(cur.err(pos, format!("bad number syntax: {s:?}"))),
        Err(m) => Err(cur.err(pos, m)),
    }
}
