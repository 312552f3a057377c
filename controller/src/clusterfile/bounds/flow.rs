//! The flow-nesting pre-scan: finds the first `[`/`{` nested past [`MAX_DEPTH`] in linear
//! time, before libyaml's scanner (quadratic in open flow collections) sees the text.

use super::MAX_DEPTH;

/// Whether `c` ends a line for YAML (1.1, as libyaml reads it).
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The 1-based line and column (in characters, as the YAML parser counts them) of the
/// first `[` or `{` that opens a flow collection deeper than [`MAX_DEPTH`], if any.
///
/// A bracket counts where YAML would read it as a flow indicator: inside flow collections,
/// or where a node starts in block context (after `key: `, `- `, at the start of a line);
/// brackets in quoted strings, comments, block scalars (`|`, `>`) and plain text (`a[1]`)
/// do not. Where this reading is unsure it counts, so a deep file is never let through to
/// the parser; a valid file would need dozens of unclosed brackets in its *structure* to be
/// refused, which no real one has.
pub(in crate::clusterfile) fn flow_too_deep(text: &str) -> Option<(usize, usize)> {
    let mut s = Scan::default();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        if is_break(c) {
            if c == '\r' && next == Some('\n') {
                chars.next();
            }
            s.new_line();
            continue;
        }
        let col = s.col;
        s.col += 1;
        if s.at_line_start {
            if c == ' ' {
                s.indent += 1;
                continue;
            }
            s.at_line_start = false;
            if let Some(parent) = s.block_parent {
                if s.indent > parent {
                    // A line of the block scalar's text.
                    s.skip_line = true;
                    continue;
                }
                s.block_parent = None;
            }
            let rest = &text[at..];
            if s.quote.is_none()
                && s.indent == 0
                && (rest.starts_with("---") || rest.starts_with("..."))
                && rest[3..]
                    .chars()
                    .next()
                    .is_none_or(|n| is_blank(n) || is_break(n))
            {
                // A document marker: whatever the last document left open, the next one
                // starts afresh (the parser would have stopped at the unclosed bracket).
                s.flow = 0;
                s.node_start = true;
                s.in_plain = false;
                chars.next();
                chars.next();
                s.col += 2;
                continue;
            }
        }
        if s.skip_line {
            continue;
        }
        if let Some(q) = s.quote {
            match c {
                // An escape takes the next character (a line break is left to end the line).
                '\\' if q == '"' && next.is_some_and(|n| !is_break(n)) => {
                    chars.next();
                    s.col += 1;
                }
                '\'' if q == '\'' && next == Some('\'') => {
                    chars.next();
                    s.col += 1;
                }
                _ if c == q => {
                    s.quote = None;
                    s.node_start = false;
                    s.in_plain = false;
                }
                _ => {}
            }
            s.prev_blank = false;
            continue;
        }
        if is_blank(c) {
            s.prev_blank = true;
            continue;
        }
        let prev_blank = std::mem::replace(&mut s.prev_blank, false);
        let next_blank = next.is_none_or(|n| is_blank(n) || is_break(n));
        if c == '#' && prev_blank {
            s.skip_line = true;
            continue;
        }
        if s.flow > 0 {
            match c {
                '[' | '{' => {
                    if s.open() {
                        return Some((s.line, col));
                    }
                }
                ']' | '}' => {
                    s.flow -= 1;
                    s.node_start = false;
                    s.in_plain = false;
                }
                ',' => {
                    s.node_start = true;
                    s.in_plain = false;
                }
                // After a quoted key or a collection a `:` needs no space (JSON style).
                ':' if next_blank || !s.in_plain => {
                    s.node_start = true;
                    s.in_plain = false;
                }
                '"' | '\'' if s.node_start => s.quote = Some(c),
                '?' if s.node_start && next_blank => {}
                _ => {
                    if s.node_start {
                        s.node_start = false;
                        s.in_plain = true;
                    }
                }
            }
            continue;
        }
        // Block context.
        if !s.node_start {
            if c == ':' && next_blank {
                s.node_start = true;
                s.in_plain = false;
            }
            continue;
        }
        match c {
            '[' | '{' => {
                if s.open() {
                    return Some((s.line, col));
                }
            }
            '"' | '\'' => {
                s.quote = Some(c);
                s.last_node = col - 1;
            }
            '|' | '>' => {
                // Its text is the following lines indented past the node that owns it.
                s.block_parent = Some(s.last_node);
                s.skip_line = true;
            }
            '-' | '?' | ':' if next_blank => {
                if c != ':' {
                    s.last_node = col - 1;
                }
            }
            '&' | '!' | '*' => {
                // An anchor, tag or alias: the node (if any) follows after a blank.
                while chars
                    .peek()
                    .is_some_and(|&(_, n)| !is_blank(n) && !is_break(n))
                {
                    chars.next();
                    s.col += 1;
                }
            }
            '%' if col == 1 => s.skip_line = true,
            _ => {
                s.node_start = false;
                s.in_plain = true;
                s.last_node = col - 1;
            }
        }
    }
    None
}

/// The state of [`flow_too_deep`].
struct Scan {
    line: usize,
    /// Column of the next character, 1-based.
    col: usize,
    flow: usize,
    quote: Option<char>,
    /// In a block scalar: the indentation its text lines must pass.
    block_parent: Option<usize>,
    /// The rest of the line is a comment or a block scalar's header or text.
    skip_line: bool,
    /// Still in the line's leading spaces, and how many there were.
    at_line_start: bool,
    indent: usize,
    /// The next non-blank character may start a node (so `[` or `"` is an indicator).
    node_start: bool,
    /// Inside a plain (unquoted) scalar.
    in_plain: bool,
    prev_blank: bool,
    /// Column (0-based) of the latest node or `-` started in block context on this line.
    last_node: usize,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            line: 1,
            col: 1,
            flow: 0,
            quote: None,
            block_parent: None,
            skip_line: false,
            at_line_start: true,
            indent: 0,
            node_start: true,
            in_plain: false,
            prev_blank: true,
            last_node: 0,
        }
    }
}

impl Scan {
    fn new_line(&mut self) {
        self.line += 1;
        self.col = 1;
        self.at_line_start = true;
        self.indent = 0;
        self.skip_line = false;
        self.prev_blank = true;
        self.last_node = 0;
        if self.flow == 0 && self.quote.is_none() {
            // A new key, entry, or the continuation of a plain scalar.
            self.node_start = true;
            self.in_plain = false;
        }
    }

    /// Opens a flow collection; `true` when that is one too deep.
    fn open(&mut self) -> bool {
        self.flow += 1;
        self.node_start = true;
        self.in_plain = false;
        self.flow > MAX_DEPTH
    }
}
