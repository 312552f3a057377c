//! Bounds on what reading a Clusterfile may cost, checked before the YAML parser sees it.
//!
//! - **Size**: at most [`MAX_BYTES`] are read, so `-f /dev/zero` or a multi-gigabyte file
//!   cannot fill memory. Only regular files are read at all: a FIFO would block forever and
//!   a device never ends.
//! - **Flow nesting**: libyaml's scanner re-checks every open `[`/`{` for each token it
//!   reads, so deep flow nesting costs time quadratic in the input (100,000 `[` took over a
//!   minute). yaml_serde's own recursion limit applies only after the whole document has
//!   been scanned, too late; so [`flow_too_deep`] pre-scans the text and stops at the first
//!   bracket past [`MAX_DEPTH`].
//! - **Nodes**: [`walk`] reads every document once with a visitor that counts nodes and
//!   depth, aliases included: `&a [x, x, …]` used by many `*a` expands to millions of nodes
//!   (the later passes build a value of each), so the expanded size is capped at
//!   [`MAX_NODES`]. Block nesting (indentation) is scanned in linear time, and is caught
//!   here, with the parser's position, at the same [`MAX_DEPTH`].
//!
//! A real Clusterfile is a few KiB, nests five or six levels and has a few hundred nodes;
//! every bound is far above that.

use super::docs::Failure;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// The largest Clusterfile read: 4 MiB. A Clusterfile with Config documents carrying whole
/// configuration files is still well under 1 MiB.
pub const MAX_BYTES: u64 = 4 << 20;

/// How deep flow collections, block collections or both may nest.
pub const MAX_DEPTH: usize = 64;

/// How many YAML nodes a Clusterfile may have, counting each alias as the nodes it stands
/// for: a quarter of a million (a thousand hosts take about ten thousand).
pub const MAX_NODES: usize = 250_000;

/// What the depth errors say is expected.
const DEPTH_EXPECTED: &str =
    "expected a Clusterfile nested a few levels deep (look for unclosed `[` or `{`)";

/// The message for nesting past [`MAX_DEPTH`].
pub(super) fn depth_message() -> String {
    format!("nesting deeper than {MAX_DEPTH} levels; {DEPTH_EXPECTED}")
}

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
pub(super) fn flow_too_deep(text: &str) -> Option<(usize, usize)> {
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

/// Reads every document of `text` once, counting nodes (aliases expanded) and depth; the
/// first problem, a YAML error included, is returned with the parser's position.
pub(super) fn walk(text: &str) -> Result<(), Failure> {
    let nodes = Cell::new(0);
    for de in yaml_serde::Deserializer::from_str(text) {
        Walk {
            nodes: &nodes,
            depth: 0,
        }
        .deserialize(de)?;
    }
    Ok(())
}

/// A visitor that reads any node and everything under it, counting.
#[derive(Clone, Copy)]
struct Walk<'a> {
    nodes: &'a Cell<usize>,
    depth: usize,
}

impl Walk<'_> {
    /// Counts one node; an error (placed by the parser at this node) past a bound.
    fn count<E: de::Error>(self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > MAX_NODES {
            return Err(E::custom(format!(
                "more than {MAX_NODES} YAML nodes, counting each alias as the nodes it repeats; expected a Clusterfile of ordinary size (an alias used many times on a large anchor multiplies it)"
            )));
        }
        Ok(())
    }

    /// Counts a collection and returns the walker for its children, one level deeper.
    fn inner<E: de::Error>(self) -> Result<Self, E> {
        self.count()?;
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(depth_message()));
        }
        Ok(Walk {
            nodes: self.nodes,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.count()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.count()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.count()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        let ((), variant) = data.variant_seed(inner)?;
        de::VariantAccess::newtype_variant_seed(variant, inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep(open: &str, n: usize) -> String {
        format!("a: {}\n", open.repeat(n))
    }

    #[test]
    fn deep_flow_nesting_is_found_at_its_bracket() {
        assert_eq!(flow_too_deep(&deep("[", 64)), None);
        assert_eq!(flow_too_deep(&deep("[", 65)), Some((1, 68)));
        assert_eq!(flow_too_deep(&deep("{a: ", 100)), Some((1, 4 + 64 * 4)));
        assert_eq!(
            flow_too_deep(&format!("- {}", "[".repeat(100_000))),
            Some((1, 67))
        );
        // Closed brackets do not add up; a new document starts at depth 0.
        let many = format!("a: {}\n", "[[x]], ".repeat(1000));
        assert_eq!(flow_too_deep(&many), None);
        let docs = format!("{}---\n{}", deep("[", 60), deep("[", 60));
        assert_eq!(flow_too_deep(&docs), None);
        // Multi-line flow and JSON-style keys.
        let json = format!("a: {}\n", "{\"k\":[\n".repeat(40));
        assert_eq!(flow_too_deep(&json), Some((33, 1)));
    }

    #[test]
    fn brackets_in_text_are_not_nesting() {
        let b = "[".repeat(200);
        for text in [
            format!("a: \"{b}\"\n"),
            format!("a: '{b}''{b}'\n"),
            format!("a: x{b}\n"),
            format!("a: x y {b}\n"),
            format!("a: 1 # {b}\n"),
            format!("# {b}\nb: 2\n"),
            format!("a: |\n  {b}\n  x\n\n  {b}\nb: 2\n"),
            format!("- data: >-\n    {b}\n  other: 1\n"),
            format!("a: [\"{b}\", '{b}', x]\n"),
            format!("a: \"multi\n  line {b}\"\n"),
            format!("a: {{k: \"\\\"{b}\"}}\n"),
        ] {
            assert_eq!(flow_too_deep(&text), None, "{text}");
        }
        // In flow context a bracket always opens a collection, even right after text (the
        // parser then stops there with a syntax error).
        let glued = format!("a: [x{b}]\n");
        assert_eq!(flow_too_deep(&glued), Some((1, 69)));
        // After the block scalar ends, brackets count again.
        let after = format!("a: |\n  {b}\nb: {b}\n");
        assert_eq!(flow_too_deep(&after), Some((3, 68)));
        // Line breaks YAML knows besides \n end a comment too.
        let cr = format!("a: 1 # x\r\nb: {b}\n");
        assert_eq!(flow_too_deep(&cr), Some((2, 68)));
    }

    #[test]
    fn the_walk_counts_aliases_and_block_depth() {
        let fine = "a: &x [1, 2, 3]\nb: [*x, *x]\n";
        assert!(walk(fine).is_ok());
        let bomb = format!(
            "a: &x [{}]\nb: [{}]\n",
            vec!["1"; 1000].join(", "),
            vec!["*x"; 1000].join(", ")
        );
        let Err(Failure::Yaml(e)) = walk(&bomb) else {
            panic!("alias bomb accepted")
        };
        assert!(e.to_string().contains("more than 250000 YAML nodes"), "{e}");
        let mut block = String::new();
        for i in 0..70 {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        let Err(Failure::Yaml(e)) = walk(&block) else {
            panic!("deep block nesting accepted")
        };
        // The parser names the path to the node, as in its other messages.
        assert!(e.to_string().starts_with("k0.k1.k2."), "{e}");
        assert!(
            e.to_string().contains(": nesting deeper than 64 levels"),
            "{e}"
        );
        assert_eq!(e.location().map(|l| l.line()), Some(65));
    }
}
