//! Multi-document YAML text as pieces that can be written back as they were: the merge
//! re-serializes only the documents it changes, so every other document (a kind that is
//! not kubeadm's, a kubeadm kind the Clusterfile does not set, a header of comments) keeps
//! its exact text, comments included.

use super::{KubeadmError, Where};
use yaml_serde::Value;

/// One `---`-separated section of a YAML text.
#[derive(Debug)]
pub(super) struct Piece {
    /// The section's text, without a bare `---` line before it (a comment on that line is
    /// kept as the first line). Always ends with a newline unless empty.
    pub text: String,
    /// The text begins with its own `---` line, one with content after the marker
    /// (`--- |`), which the writer must not double.
    pub own_marker: bool,
    /// The 1-based line of the file the section starts at.
    pub line: usize,
    /// The document, when the section holds any content (not only comments, blank lines,
    /// directives or a `...` end marker).
    pub value: Option<Value>,
}

/// A line that opens a document: `---` at the start of a line, alone or followed by a
/// blank. YAML forbids such a line inside any scalar, so splitting on it is exact.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// What a bare marker line leaves of itself: `Some(comment)` when nothing but blanks and
/// a comment follow `---`, `None` when content follows (the line stays whole).
fn bare_marker_rest(line: &str) -> Option<&str> {
    let rest = line.get(3..)?.trim();
    (rest.is_empty() || rest.starts_with('#')).then_some(rest)
}

/// Whether a line is content to the YAML parser: not blank, not a comment, not a
/// directive (`%YAML`), not a document end (`...`).
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !(t.is_empty() || t.starts_with('#') || line.starts_with('%') || line.trim_end() == "...")
}

/// Splits `text` into its sections and parses each that has content. The parser is given
/// the section after as many blank lines as precede it, so its line numbers are the file's.
pub(super) fn read(text: &str, at: impl Fn(usize) -> Where) -> Result<Vec<Piece>, KubeadmError> {
    let mut pieces = Vec::new();
    let mut current = Piece {
        text: String::new(),
        own_marker: false,
        line: 1,
        value: None,
    };
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !is_marker(line) {
            current.text.push_str(line);
            continue;
        }
        // `i` counts from 0: the marker is on line i + 1, a bare marker's document
        // starts on the next line.
        let done = std::mem::replace(
            &mut current,
            Piece {
                text: String::new(),
                own_marker: false,
                line: i + 2,
                value: None,
            },
        );
        // An empty leading section is no section: the file began with `---`.
        if !(done.line == 1 && done.text.is_empty()) {
            pieces.push(done);
        }
        match bare_marker_rest(line) {
            Some("") => {}
            // The comment stays on its own line, the marker's line.
            Some(comment) => {
                current.text.push_str(comment);
                current.text.push('\n');
                current.line = i + 1;
            }
            None => {
                current.text.push_str(line);
                current.own_marker = true;
                current.line = i + 1;
            }
        }
    }
    if !(current.line == 1 && current.text.is_empty()) || pieces.is_empty() {
        pieces.push(current);
    }
    for piece in &mut pieces {
        if !piece.text.is_empty() && !piece.text.ends_with('\n') {
            piece.text.push('\n');
        }
        if !piece.text.lines().any(is_content) {
            continue;
        }
        let padded = format!("{}{}", "\n".repeat(piece.line - 1), piece.text);
        let value: Value = yaml_serde::from_str(&padded).map_err(|e| KubeadmError::Yaml {
            at: at(piece.line),
            reason: e.to_string(),
        })?;
        piece.value = Some(value);
    }
    Ok(pieces)
}

/// The comment and blank lines a section begins with: kept above the document when the
/// document itself is rewritten.
pub(super) fn leading_comments(text: &str) -> String {
    text.split_inclusive('\n')
        .take_while(|l| !is_content(l) && !l.starts_with("---"))
        .collect()
}

/// Writes sections back as one multi-document text, a bare `---` line between them.
pub(super) fn write<'a>(pieces: impl Iterator<Item = (&'a str, bool)>) -> String {
    let mut out = String::new();
    for (i, (text, own_marker)) in pieces.enumerate() {
        if i > 0 && !own_marker {
            out.push_str("---\n");
        }
        out.push_str(text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(line: usize) -> Where {
        Where::Rootfs { line }
    }

    #[test]
    fn sections_keep_their_text_and_lines() {
        let text = "# header\n---\na: 1\n--- # second\nb: [1,\n  2]\n---\n---\n--- |\n  block\n";
        let pieces = read(text, at).unwrap();
        let summary: Vec<_> = pieces
            .iter()
            .map(|p| (p.text.as_str(), p.own_marker, p.line, p.value.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("# header\n", false, 1, false),
                ("a: 1\n", false, 3, true),
                ("# second\nb: [1,\n  2]\n", false, 4, true),
                ("", false, 8, false),
                ("", false, 9, false),
                ("--- |\n  block\n", true, 9, true),
            ]
        );
        assert_eq!(
            write(pieces.iter().map(|p| (p.text.as_str(), p.own_marker))),
            "# header\n---\na: 1\n---\n# second\nb: [1,\n  2]\n---\n---\n--- |\n  block\n"
        );
    }

    #[test]
    fn a_file_that_starts_with_a_marker_and_an_empty_file() {
        let pieces = read("---\na: 1", at).unwrap();
        assert_eq!(pieces.len(), 1);
        assert_eq!((pieces[0].text.as_str(), pieces[0].line), ("a: 1\n", 2));
        let pieces = read("", at).unwrap();
        assert_eq!(pieces.len(), 1);
        assert!(pieces[0].value.is_none());
    }

    #[test]
    fn parse_errors_carry_the_file_line() {
        let err = read("a: 1\n---\nb: 1\nc: [\n", at).unwrap_err();
        let KubeadmError::Yaml { at, reason } = err else {
            panic!("{err:?}")
        };
        assert_eq!(at, Where::Rootfs { line: 3 });
        assert!(reason.contains("line 5"), "{reason}");
    }

    #[test]
    fn leading_comments_stop_at_content() {
        assert_eq!(
            leading_comments("# a\n\n# b\nkind: X\n# c\n"),
            "# a\n\n# b\n"
        );
        assert_eq!(leading_comments("--- |\n  x\n"), "");
    }
}
