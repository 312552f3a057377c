//! The one error type of the engine, and the source position every stage reports.

/// A position in the template source, 1-based; the column counts characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
}

/// A template error: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct TemplateError {
    /// The template's name (its rootfs path).
    pub file: String,
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based, in characters.
    pub col: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl TemplateError {
    /// An error in template `file` at `pos`.
    pub(super) fn at(file: &str, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError {
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }
}
