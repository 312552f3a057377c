//! Builds the tree of a template from its pieces: text, printed pipelines, the
//! `if`/`with`/`range` blocks with their `else`/`else if` branches and `end`, `break` and
//! `continue`, and the named templates of `define`/`block` with the `template` calls.
//!
//! Everything that can be checked without the env is checked here — block structure,
//! function names, variables declared before use, fields on strings — so the controller's
//! syntax check catches it before any host is touched. Nesting is bounded, so a hostile
//! file cannot exhaust the stack.

mod command;

use super::error::{Pos, TemplateError};
use super::lexer::{Piece, Tok};
use std::collections::HashMap;
use std::sync::Arc;

/// How deep blocks and parentheses may nest. Real templates use two or three levels.
const MAX_DEPTH: usize = 50;

/// One argument of a command.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    /// `.`
    Dot,
    /// `.Key` or `$.Key`: an env key, wherever it appears.
    Field(String),
    /// `$x`; `$` alone (the empty name) is the data of the template being run.
    Var(String),
    /// `$x.A.B`: fields of what `$x` holds (the env, when it holds `.`).
    VarField(String, Vec<String>),
    /// A string, shared with every value made from it.
    Str(Arc<str>),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// A function name.
    Func(String),
    /// `( pipeline )`.
    Sub(Box<Pipeline>),
    /// `( pipeline ).A.B`: fields of its value.
    Chain(Box<Pipeline>, Vec<String>),
}

/// A function call or a single value: `eq .A "x"`, `.Key`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Command {
    /// First is the function (or the value), the rest its arguments.
    pub args: Vec<(Arg, Pos)>,
}

/// `[$x :=] cmd | cmd | …`
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pipeline {
    /// Variables it declares (`$x :=`, or `$i, $v :=` in range) or assigns (`$x =`).
    pub decl: Vec<String>,
    /// `$x = …`: sets a variable declared earlier instead of declaring a new one.
    pub assign: bool,
    /// The commands, never empty.
    pub cmds: Vec<Command>,
    /// Where it starts.
    pub pos: Pos,
}

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    /// Literal text, and where it starts (for an output that grows too large).
    Text(String, Pos),
    /// `{{ pipeline }}`: printed unless it declares or assigns a variable.
    Print(Pipeline),
    /// `if`/`else if`/`else`.
    If {
        /// Conditions with their bodies.
        branches: Vec<(Pipeline, Vec<Node>)>,
        /// The `else` body.
        otherwise: Vec<Node>,
    },
    /// `with` (and `range`, which has the same shape).
    Block {
        /// `with` or `range`.
        range: bool,
        /// The value.
        pipe: Pipeline,
        /// Body, with `.` set to the value (or to each element).
        body: Vec<Node>,
        /// The `else` body: the value is false or the list empty.
        otherwise: Vec<Node>,
    },
    /// `{{ template "name" pipeline }}` (also what a `block` runs).
    Call {
        /// The template's name.
        name: String,
        /// Its data; none gives it no data.
        pipe: Option<Pipeline>,
        /// Where the action is.
        pos: Pos,
    },
    /// `{{ break }}` inside a range.
    Break,
    /// `{{ continue }}` inside a range.
    Continue,
}

/// The templates `define` and `block` name, by name.
pub(super) type Defs = HashMap<String, Vec<Node>>;

/// Whether a template body is empty as Go sees it (only blanks), so another definition
/// may replace it.
fn is_empty(nodes: &[Node]) -> bool {
    nodes.iter().all(
        |n| matches!(n, Node::Text(t, _) if t.trim_matches([' ', '\t', '\r', '\n']).is_empty()),
    )
}

/// Parses the pieces into the main template's nodes and the named templates.
pub(super) fn parse(name: &str, pieces: Vec<Piece>) -> Result<(Vec<Node>, Defs), TemplateError> {
    let mut p = Parser {
        name,
        pieces: pieces.into_iter(),
        vars: Vec::new(),
        depth: 0,
        ranges: 0,
        defs: Defs::new(),
    };
    let (nodes, stop) = p.block()?;
    match stop {
        Stop::Eof => Ok((nodes, p.defs)),
        Stop::End(pos) => Err(p.err(pos, "`end` without a matching if/with/range")),
        Stop::Else(pos, _) => Err(p.err(pos, "`else` without a matching if/with/range")),
    }
}

/// Why a run of nodes ended.
enum Stop {
    Eof,
    End(Pos),
    /// `else`, or `else if …` with the tokens after `if` and the position of `if`.
    Else(Pos, Option<(Vec<(Tok, Pos)>, Pos)>),
}

struct Parser<'a> {
    name: &'a str,
    pieces: std::vec::IntoIter<Piece>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    depth: usize,
    /// How many ranges enclose the current node, for `break` and `continue`.
    ranges: usize,
    defs: Defs,
}

/// The keywords that start their own action.
const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

impl Parser<'_> {
    fn err(&self, pos: Pos, message: impl Into<String>) -> TemplateError {
        TemplateError::at(self.name, pos, message)
    }

    fn enter(&mut self, pos: Pos) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels; split the template"),
            ));
        }
        Ok(())
    }

    /// Nodes up to the end of input, an `end` or an `else`. Variables declared in them
    /// go out of scope at that point, as in Go.
    fn block(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mark = self.vars.len();
        let mut nodes = Vec::new();
        let stop = loop {
            let Some(piece) = self.pieces.next() else {
                break Stop::Eof;
            };
            let (toks, open) = match piece {
                Piece::Text(t, pos) => {
                    nodes.push(Node::Text(t, pos));
                    continue;
                }
                Piece::Action(toks, open) => (toks, open),
            };
            let Some((first, pos)) = toks.first().cloned() else {
                return Err(self.err(open, "empty action `{{ }}`"));
            };
            let kw = match &first {
                Tok::Ident(kw) => kw.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if let Some((_, p)) = toks.get(1) {
                        return Err(self.err(*p, "unexpected text after `end`"));
                    }
                    break Stop::End(pos);
                }
                "else" => match toks.get(1) {
                    None => break Stop::Else(pos, None),
                    Some((Tok::Ident(k), p)) if k == "if" => {
                        break Stop::Else(pos, Some((toks[2..].to_vec(), *p)));
                    }
                    Some((_, p)) => {
                        return Err(self.err(*p, "after `else` only `if …` may follow"));
                    }
                },
                "if" => {
                    self.enter(pos)?;
                    let node = self.if_block(&toks[1..], pos)?;
                    nodes.push(node);
                    self.depth -= 1;
                }
                "with" | "range" => {
                    self.enter(pos)?;
                    let node = self.with_block(kw == "range", &toks[1..], pos)?;
                    nodes.push(node);
                    self.depth -= 1;
                }
                "break" | "continue" => {
                    if let Some((_, p)) = toks.get(1) {
                        return Err(self.err(*p, format!("unexpected text after `{kw}`")));
                    }
                    if self.ranges == 0 {
                        return Err(self.err(pos, format!("`{kw}` outside of a range")));
                    }
                    nodes.push(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" => {
                    if self.depth > 0 {
                        return Err(self.err(
                            pos,
                            "`define` inside a block; define templates at the top level",
                        ));
                    }
                    let name = self.template_name(&toks, open)?;
                    if let Some((_, p)) = toks.get(2) {
                        return Err(self.err(*p, "unexpected text after the name of `define`"));
                    }
                    self.enter(pos)?;
                    let body = self.definition("define", open)?;
                    self.depth -= 1;
                    self.add_def(name, body, pos)?;
                }
                "template" | "block" => {
                    let name = self.template_name(&toks, open)?;
                    let pipe = match toks.get(2..) {
                        Some(rest) if !rest.is_empty() => {
                            Some(self.pipeline(rest, rest[0].1, false)?)
                        }
                        _ => None,
                    };
                    if kw == "block" {
                        self.enter(pos)?;
                        let body = self.definition("block", open)?;
                        self.depth -= 1;
                        self.add_def(name.clone(), body, pos)?;
                    }
                    nodes.push(Node::Call { name, pipe, pos });
                }
                _ => nodes.push(Node::Print(self.pipeline(&toks, pos, false)?)),
            }
        };
        self.vars.truncate(mark);
        Ok((nodes, stop))
    }

    /// The name after `define`, `template` or `block`.
    fn template_name(&self, toks: &[(Tok, Pos)], open: Pos) -> Result<String, TemplateError> {
        match toks.get(1) {
            Some((Tok::Str(name), _)) => Ok(name.clone()),
            Some((_, p)) => Err(self.err(*p, "expected the template's name as a string")),
            None => Err(self.err(open, "expected the template's name as a string")),
        }
    }

    /// The body of a `define` or `block`, up to its `end`: a template of its own, which
    /// sees no variables but `$` and is in no range.
    fn definition(&mut self, kw: &str, open: Pos) -> Result<Vec<Node>, TemplateError> {
        let vars = std::mem::take(&mut self.vars);
        let ranges = std::mem::replace(&mut self.ranges, 0);
        let (body, stop) = self.block()?;
        self.vars = vars;
        self.ranges = ranges;
        match stop {
            Stop::End(_) => Ok(body),
            Stop::Else(p, _) => Err(self.err(p, format!("`else` inside `{kw}`"))),
            Stop::Eof => Err(self.err(open, format!("`{kw}` without `end`"))),
        }
    }

    /// Records a named template; a non-empty one may not be defined twice.
    fn add_def(&mut self, name: String, body: Vec<Node>, pos: Pos) -> Result<(), TemplateError> {
        match self.defs.get(&name) {
            Some(old) if !is_empty(old) => {
                if !is_empty(&body) {
                    return Err(self.err(pos, format!("template {name:?} is defined twice")));
                }
            }
            _ => {
                self.defs.insert(name, body);
            }
        }
        Ok(())
    }

    fn if_block(&mut self, toks: &[(Tok, Pos)], open: Pos) -> Result<Node, TemplateError> {
        // Variables declared in the conditions stay visible up to the `end`.
        let mark = self.vars.len();
        let mut branches = Vec::new();
        let mut cond = self.pipeline(toks, open, false)?;
        let otherwise = loop {
            let (body, stop) = self.block()?;
            branches.push((cond, body));
            match stop {
                Stop::End(_) => break Vec::new(),
                Stop::Else(_, Some((toks, p))) => cond = self.pipeline(&toks, p, false)?,
                Stop::Else(_, None) => break self.last_else("if", open)?,
                Stop::Eof => return Err(self.err(open, "`if` without `end`")),
            }
        };
        self.vars.truncate(mark);
        Ok(Node::If {
            branches,
            otherwise,
        })
    }

    fn with_block(
        &mut self,
        range: bool,
        toks: &[(Tok, Pos)],
        open: Pos,
    ) -> Result<Node, TemplateError> {
        let kw = if range { "range" } else { "with" };
        let mark = self.vars.len();
        let pipe = self.pipeline(toks, open, range)?;
        self.ranges += usize::from(range);
        let body = self.block();
        self.ranges -= usize::from(range);
        let (body, stop) = body?;
        let otherwise = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Else(_, None) => self.last_else(kw, open)?,
            Stop::Else(p, Some(_)) => {
                return Err(self.err(
                    p,
                    format!("`else if` inside `{kw}`; nest an `if` in its `else`"),
                ));
            }
            Stop::Eof => return Err(self.err(open, format!("`{kw}` without `end`"))),
        };
        self.vars.truncate(mark);
        Ok(Node::Block {
            range,
            pipe,
            body,
            otherwise,
        })
    }

    /// The body of a final `else`, which must end with `end`.
    fn last_else(&mut self, kw: &str, open: Pos) -> Result<Vec<Node>, TemplateError> {
        let (otherwise, stop) = self.block()?;
        match stop {
            Stop::End(_) => Ok(otherwise),
            Stop::Else(p, _) => {
                Err(self.err(p, format!("`else` after the final `else` of this `{kw}`")))
            }
            Stop::Eof => Err(self.err(open, format!("`{kw}` without `end`"))),
        }
    }
}
