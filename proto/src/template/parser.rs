//! Builds the tree of a template from its pieces: text, printed pipelines, and the
//! `if`/`with`/`range` blocks with their `else`/`else if` branches and `end`.
//!
//! Everything that can be checked without the env is checked here — block structure,
//! function names, variables declared before use, fields on strings — so the controller's
//! syntax check catches it before any host is touched. Nesting is bounded, so a hostile
//! file cannot exhaust the stack.

use super::error::{Pos, TemplateError};
use super::funcs;
use super::lexer::{Piece, Tok};
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
    /// `$x`; `$` alone (the empty name) is the whole env.
    Var(String),
    /// A string, shared with every value made from it.
    Str(Arc<str>),
    /// An integer.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// A function name.
    Func(String),
    /// `( pipeline )`.
    Sub(Box<Pipeline>),
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
}

/// Parses the pieces into nodes.
pub(super) fn parse(name: &str, pieces: Vec<Piece>) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        name,
        pieces: pieces.into_iter(),
        vars: Vec::new(),
        depth: 0,
    };
    let (nodes, stop) = p.block()?;
    match stop {
        Stop::Eof => Ok(nodes),
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
}

/// Go constructs this engine refuses, with the reason given to the author.
const UNSUPPORTED: [&str; 5] = ["define", "template", "block", "break", "continue"];

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
                kw if UNSUPPORTED.contains(&kw) => {
                    return Err(self.err(
                        pos,
                        format!(
                            "`{kw}` is not supported; rootfs templates may use if/else, with, range, variables, pipelines and functions"
                        ),
                    ));
                }
                _ => nodes.push(Node::Print(self.pipeline(&toks, pos, false)?)),
            }
        };
        self.vars.truncate(mark);
        Ok((nodes, stop))
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
        let (body, stop) = self.block()?;
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

    /// Parses `[$a[, $b] := | $a =] cmd (| cmd)*`.
    fn pipeline(
        &mut self,
        toks: &[(Tok, Pos)],
        pos: Pos,
        range: bool,
    ) -> Result<Pipeline, TemplateError> {
        let var = |t: &Tok| match t {
            Tok::Var(v, path) if !v.is_empty() && path.is_empty() => Some(v.clone()),
            _ => None,
        };
        let (decl, assign, rest) = match toks {
            [
                (a, _),
                (Tok::Comma, _),
                (b, _),
                (Tok::Declare, _),
                rest @ ..,
            ] if range => match (var(a), var(b)) {
                (Some(a), Some(b)) => (vec![a, b], false, rest),
                _ => return Err(self.err(pos, "expected `range $index, $element := …`")),
            },
            [(a, p), (op @ (Tok::Declare | Tok::Assign), _), rest @ ..] => {
                let Some(a) = var(a) else {
                    return Err(self.err(
                        *p,
                        "only a variable such as `$x` can be declared or assigned",
                    ));
                };
                let assign = *op == Tok::Assign;
                if assign && !self.vars.contains(&a) {
                    return Err(self.err(
                        *p,
                        format!("${a} is assigned before it is declared; write `${a} := …` first"),
                    ));
                }
                (vec![a], assign, rest)
            }
            _ => (Vec::new(), false, toks),
        };
        let Some((_, first)) = rest.first() else {
            return Err(self.err(pos, "missing value in action"));
        };
        let mut cmds = Vec::new();
        let mut k = 0;
        while k < rest.len() {
            let (cmd, used) = self.command(&rest[k..])?;
            cmds.push(cmd);
            k += used;
            if let Some((t, p)) = rest.get(k) {
                if *t != Tok::Pipe {
                    return Err(self.err(*p, "expected `|` or the end of the action"));
                }
                k += 1;
                if k == rest.len() {
                    return Err(self.err(*p, "missing command after `|`"));
                }
            }
        }
        // Declared after the value is parsed: `$x := $x` reads the outer `$x`, as in Go.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            decl,
            assign,
            cmds,
            pos: *first,
        })
    }

    /// One command: arguments up to `|`, an unmatched `)` or the end. Returns the tokens used.
    fn command(&mut self, toks: &[(Tok, Pos)]) -> Result<(Command, usize), TemplateError> {
        let mut args = Vec::new();
        let mut k = 0;
        while let Some((t, p)) = toks.get(k) {
            let p = *p;
            let arg = match t {
                Tok::Pipe | Tok::Close => break,
                Tok::Dot => Arg::Dot,
                Tok::Field(path) => self.field(path, p)?,
                Tok::Var(v, path) if v.is_empty() && !path.is_empty() => self.field(path, p)?,
                Tok::Var(v, path) => {
                    if !v.is_empty() && !self.vars.contains(v) {
                        return Err(self.err(
                            p,
                            format!("undefined variable ${v}; declare it first with `${v} := …`"),
                        ));
                    }
                    if let Some(f) = path.first() {
                        return Err(
                            self.err(p, format!("${v} holds a string, which has no field .{f}"))
                        );
                    }
                    Arg::Var(v.clone())
                }
                Tok::Str(s) => Arg::Str(Arc::from(s.as_str())),
                Tok::Int(n) => Arg::Int(*n),
                Tok::Ident(w) if w == "true" || w == "false" => Arg::Bool(w == "true"),
                Tok::Ident(w) if ["if", "else", "end", "range", "with"].contains(&w.as_str()) => {
                    return Err(self.err(p, format!("`{w}` must start its own action")));
                }
                Tok::Ident(w) if funcs::is_known(w) => Arg::Func(w.clone()),
                Tok::Ident(w) => return Err(self.err(p, funcs::unknown(w))),
                Tok::Open => {
                    let close = matching_close(&toks[k..])
                        .ok_or_else(|| self.err(p, "unclosed `(`: add the matching `)`"))?;
                    self.enter(p)?;
                    let inner = self.pipeline(&toks[k + 1..k + close], p, false)?;
                    self.depth -= 1;
                    k += close;
                    Arg::Sub(Box::new(inner))
                }
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return Err(self.err(
                        p,
                        "`:=`, `=` and `,` may only follow the variables at the start of an action",
                    ));
                }
            };
            args.push((arg, p));
            k += 1;
        }
        match toks.first() {
            Some((Tok::Close, p)) if args.is_empty() => Err(self.err(*p, "unexpected `)`")),
            Some((_, p)) if args.is_empty() => Err(self.err(*p, "missing value before `|`")),
            _ => Ok((Command { args }, k)),
        }
    }

    fn field(&self, path: &[String], pos: Pos) -> Result<Arg, TemplateError> {
        match path {
            [key] => Ok(Arg::Field(key.clone())),
            _ => Err(self.err(
                pos,
                format!(
                    ".{}: env values are strings and have no fields; write .{}",
                    path.join("."),
                    path.first().map(String::as_str).unwrap_or_default()
                ),
            )),
        }
    }
}

/// Index of the `)` matching the `(` at index 0.
fn matching_close(toks: &[(Tok, Pos)]) -> Option<usize> {
    let mut depth = 0usize;
    for (k, (t, _)) in toks.iter().enumerate() {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}
